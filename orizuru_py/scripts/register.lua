-- A consumer's heartbeat: registered as alive until now + timeout (server clock), and
-- what it publishes for operators (stats, top, dashboard, metrics) stored beside it.
-- KEYS[1] consumers  zset  consumer id -> deadline (ms)
-- KEYS[2] info       hash  consumer id -> what it published
-- KEYS[3] cancel     hash  message id -> cancellation state
-- ARGV[1] consumer id, ARGV[2] timeout (ms), ARGV[3] what it publishes
-- Returns {1 when the consumer was not registered (first beat, or reaped by the GC),
-- the server's time (ms), cancellations pending}.
local bad = oz_wrong_type(KEYS[1], "zset", KEYS[2], "hash", KEYS[3], "hash")
if bad then return redis.error_reply(bad) end
local now = oz_now_ms()
local fresh = redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call("HSET", KEYS[2], ARGV[1], ARGV[3])
return {fresh, now, redis.call("HLEN", KEYS[3])}
