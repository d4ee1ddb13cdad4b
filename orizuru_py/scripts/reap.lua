-- Recover a dead consumer: if its deadline has passed (checked here, so a consumer
-- that has just beaten is never reaped), return every message it held to the front
-- of the queue with one more delivery counted (or to the dead-letter list at
-- max_attempts), and remove its registration.
-- KEYS[1] consumers   zset  consumer name -> deadline (ms)
-- KEYS[2] processing  list  the consumer's messages (newest at the left)
-- KEYS[3] queue       list  waiting messages (next up at the right)
-- KEYS[4] dead        list  dead-letter records
-- ARGV[1] consumer name, ARGV[2] max_attempts (0: no limit)
-- Returns {reaped (0/1), requeued, dead-lettered}.
local now = oz_now_ms()
local deadline = redis.call("ZSCORE", KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) >= now then return {0, 0, 0} end
local requeued, dead = oz_return_all("LPOP", KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[2]), now,
                                     "RPUSH", redis.call("LLEN", KEYS[2]))
redis.call("ZREM", KEYS[1], ARGV[1])
return {1, requeued, dead}
