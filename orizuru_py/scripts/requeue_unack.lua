-- Return rejected messages to the back of the queue, one more delivery counted, or
-- to the dead-letter list once delivered max_attempts times (forgetting its
-- cancellation mark). Tombstones (see find.lua) are dropped.
-- KEYS[1] unack          list  rejected messages (oldest at the right)
-- KEYS[2] queue          list  waiting messages
-- KEYS[3] dead           list  dead-letter records
-- KEYS[4] unique         hash  unique key -> message id
-- KEYS[5] unique_expiry  zset  unique key -> when it lapses (ms)
-- KEYS[6] counts         hash  totals (dead_lettered, tombstones:unack)
-- KEYS[7] cancel         hash  message id -> cancellation state
-- ARGV[1] max_attempts (0: no limit), ARGV[2] at most this many per call
-- Returns {requeued, dead-lettered}.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list", KEYS[3], "list", KEYS[4], "hash",
                          KEYS[5], "zset", KEYS[6], "hash", KEYS[7], "hash")
if bad then return redis.error_reply(bad) end
local requeued, dead = oz_return_all("RPOP", KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]),
                                     oz_now_ms(), "LPUSH", tonumber(ARGV[2]), KEYS[4], KEYS[5],
                                     KEYS[7], KEYS[6], "tombstones:unack")
if dead > 0 then redis.call("HINCRBY", KEYS[6], "dead_lettered", dead) end
return {requeued, dead}
