-- Add a periodic entry to its queue, or replace it. The same cadence and payload again
-- keep the due time in force: an application that adds its entries at every start
-- neither postpones nor repeats a tick.
-- KEYS[1] schedule          hash  entry name -> its cadence (msgpack)
-- KEYS[2] schedule_payload  hash  entry name -> its payload, encoded
-- KEYS[3] schedule_due      zset  entry name -> when it is next due (server ms)
-- ARGV[1] the name, ARGV[2] the cadence, ARGV[3] the payload, ARGV[4] its first due time
-- Returns the due time in force.
local bad = oz_wrong_type(KEYS[1], "hash", KEYS[2], "hash", KEYS[3], "zset")
if bad then return redis.error_reply(bad) end
local name = ARGV[1]
local due = redis.call("ZSCORE", KEYS[3], name)
if due and redis.call("HGET", KEYS[1], name) == ARGV[2]
    and redis.call("HGET", KEYS[2], name) == ARGV[3] then
  return tonumber(due)
end
redis.call("HSET", KEYS[1], name, ARGV[2])
redis.call("HSET", KEYS[2], name, ARGV[3])
redis.call("ZADD", KEYS[3], ARGV[4], name)
return tonumber(ARGV[4])
