-- Move one message from a processing list to the delayed set, one delivery counted.
-- KEYS[1] processing  list  the consumer's messages
-- KEYS[2] delayed     zset  message -> due time (server ms)
-- ARGV[1] the message's exact bytes, ARGV[2] delay (ms)
-- Returns 1 when moved, 0 when it was no longer there.
if redis.call("LREM", KEYS[1], -1, ARGV[1]) == 0 then return 0 end
local n = oz_deliveries(ARGV[1])
redis.call("ZADD", KEYS[2], oz_now_ms() + tonumber(ARGV[2]), oz_with_deliveries(ARGV[1], (n or 0) + 1))
return 1
