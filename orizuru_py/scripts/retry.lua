-- Move one message from a processing list to the delayed set, one delivery counted.
-- KEYS[1] processing  list  the consumer's messages
-- KEYS[2] delayed     zset  message -> due time (server ms)
-- ARGV[1] the message's id, packed (its length in one byte, then it), ARGV[2] delay (ms)
-- Returns 1 when moved, 0 when it was no longer there.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "zset")
if bad then return redis.error_reply(bad) end
local raw = oz_remove(KEYS[1], oz_ids(ARGV[1]), 5000)[1]
if not raw then return 0 end
local due = oz_now_ms() + tonumber(ARGV[2])
redis.call("ZADD", KEYS[2], due, oz_with_deliveries(raw, oz_deliveries(raw) + 1))
return 1
