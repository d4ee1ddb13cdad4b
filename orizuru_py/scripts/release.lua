-- Hand a worker's unstarted messages back to the front of the queue, uncounted (no
-- handler saw them), oldest next up. At most `limit` per call: call again until none
-- are left, so no call blocks the server for long.
-- KEYS[1] prefetch  list  the worker's taken, unstarted messages
-- KEYS[2] queue     list  waiting messages (next up at the right)
-- ARGV[1] limit
-- Returns {moved, left}.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list")
if bad then return redis.error_reply(bad) end
local moved = 0
while moved < tonumber(ARGV[1]) and redis.call("LMOVE", KEYS[1], KEYS[2], "LEFT", "RIGHT") do
  moved = moved + 1
end
return {moved, redis.call("LLEN", KEYS[1])}
