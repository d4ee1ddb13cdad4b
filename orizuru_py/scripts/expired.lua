-- List the consumers whose deadline has passed (read only; reap.lua re-checks).
-- KEYS[1] consumers  zset  consumer name -> deadline (ms)
-- ARGV[1] at most this many
return redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", "(" .. oz_now_ms(), "LIMIT", 0, tonumber(ARGV[1]))
