-- Register a consumer as alive until now + timeout (server clock).
-- KEYS[1] consumers  zset  consumer name -> deadline (ms)
-- ARGV[1] consumer name, ARGV[2] timeout (ms)
-- Returns {1 when the consumer was not registered (first time, or reaped by the GC),
-- the server's time (ms)}: consumers register with their takes on the server's clock.
local now = oz_now_ms()
return {redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1]), now}
