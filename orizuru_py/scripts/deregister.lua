-- A consumer closes: everything still in its processing list goes back to the front
-- of the queue, oldest next up, and its registration is removed.
-- KEYS[1] consumers   zset  consumer name -> deadline (ms)
-- KEYS[2] processing  list  this consumer's messages (newest at the left)
-- KEYS[3] queue       list  waiting messages (next up at the right)
-- ARGV[1] consumer name
-- Returns how many messages were handed back.
local moved = 0
while redis.call("LMOVE", KEYS[2], KEYS[3], "LEFT", "RIGHT") do
  moved = moved + 1
end
redis.call("ZREM", KEYS[1], ARGV[1])
return moved
