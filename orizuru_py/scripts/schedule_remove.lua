-- Remove a periodic entry from a queue.
-- KEYS[1] schedule          hash  entry name -> its cadence (msgpack)
-- KEYS[2] schedule_payload  hash  entry name -> its payload, encoded
-- KEYS[3] schedule_due      zset  entry name -> when it is next due (server ms)
-- ARGV[1] the name
-- Returns 1 if the queue had it, else 0.
local bad = oz_wrong_type(KEYS[1], "hash", KEYS[2], "hash", KEYS[3], "zset")
if bad then return redis.error_reply(bad) end
local found = redis.call("HDEL", KEYS[1], ARGV[1]) + redis.call("HDEL", KEYS[2], ARGV[1])
    + redis.call("ZREM", KEYS[3], ARGV[1])
return found > 0 and 1 or 0
