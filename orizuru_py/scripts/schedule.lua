-- Add new messages to the delayed set, due after a delay on the server clock.
-- KEYS[1] delayed  zset  message -> due time (server ms)
-- ARGV[1] delay (ms), ARGV[2..] messages
local due = oz_now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call("ZADD", KEYS[1], due, ARGV[i])
end
return #ARGV - 1
