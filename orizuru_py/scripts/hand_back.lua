-- Hand back to the front of the queue, uncounted, messages a take has just moved into a
-- consumer's list and no application code will see (the consumer closed meanwhile, or
-- a worker stopped before starting them). Only the list's newest end is looked at;
-- messages not seen there are skipped.
-- KEYS[1] list   list  the consumer's prefetch or processing list
-- KEYS[2] queue  list  waiting messages (next up at the right)
-- ARGV[1] the messages' ids, packed (each: its length in one byte, then it), oldest first,
-- ARGV[2] at most this many elements looked at
-- Returns how many were handed back.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list")
if bad then return redis.error_reply(bad) end
local taken, back = oz_take_ids(KEYS[1], oz_ids(ARGV[1]), tonumber(ARGV[2]), true, false), {}
for i = #taken, 1, -1 do
  if taken[i] then back[#back + 1] = taken[i] end
end
oz_push_all("RPUSH", KEYS[2], back)
return #back
