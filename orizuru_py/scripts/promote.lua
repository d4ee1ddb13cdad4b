-- Move due delayed messages to the queue. Atomic, so any number of promoters
-- may run at once without duplicating a message.
-- KEYS[1] delayed  zset  message -> due time (server ms)
-- KEYS[2] queue    list  waiting messages
-- ARGV[1] at most this many per call
-- Returns how many were promoted.
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", oz_now_ms(), "LIMIT", 0, tonumber(ARGV[1]))
if #due == 0 then return 0 end
local bad = oz_wrong_type(KEYS[2], "list")
if bad then return redis.error_reply(bad) end
for i = 1, #due, 1000 do
  redis.call("ZREM", KEYS[1], unpack(due, i, math.min(i + 999, #due)))
end
oz_push_all("LPUSH", KEYS[2], due)
return #due
