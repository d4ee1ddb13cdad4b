-- The server's time, the consumers whose deadline has passed by it (read only; recover.lua
-- checks again), and the next deadline to come, so a collector can wake right then.
-- KEYS[1] consumers  zset  consumer id -> deadline (ms)
-- ARGV[1] at most this many
-- Returns {now (ms), {consumer ids}, the next deadline after now (ms) or -1}.
local now = oz_now_ms()
local expired = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", "(" .. now, "LIMIT", 0, tonumber(ARGV[1]))
local next = redis.call("ZRANGEBYSCORE", KEYS[1], now, "+inf", "WITHSCORES", "LIMIT", 0, 1)
return {now, expired, next[2] and tonumber(next[2]) or -1}
