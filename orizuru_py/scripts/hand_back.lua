-- Hand back to the front of the queue, uncounted, messages a consumer finds in its lists
-- without knowing them: taken by a move whose reply was lost (and maybe resent by the
-- client), so no application code ever saw them. Messages no longer there are skipped.
-- KEYS[1] list   list  the consumer's prefetch or processing list
-- KEYS[2] queue  list  waiting messages (next up at the right)
-- ARGV[1] the messages' ids, packed (each: its length in one byte, then it), oldest first
-- Returns how many were handed back.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list")
if bad then return redis.error_reply(bad) end
local taken, back = oz_remove(KEYS[1], oz_ids(ARGV[1]), 5000), {}
for i = #taken, 1, -1 do
  if taken[i] then back[#back + 1] = taken[i] end
end
oz_push_all("RPUSH", KEYS[2], back)
return #back
