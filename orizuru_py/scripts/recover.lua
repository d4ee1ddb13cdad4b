-- A consumer's messages go back to the queue, a chunk per call: when it closes, or when
-- the GC reaps it because its deadline passed (checked here, so a consumer that has just
-- beaten is never reaped). What it took and never handed out (its prefetch list) goes to
-- the front uncounted; what it handed to the application and nobody settled goes to the
-- front with this delivery counted, or to the dead-letter list at max_attempts. Once
-- both lists are empty its registration and published info are removed.
-- KEYS[1] consumers      zset  consumer id -> deadline (ms)
-- KEYS[2] info           hash  consumer id -> what it published
-- KEYS[3] processing     list  handed to the application (newest at the left)
-- KEYS[4] prefetch       list  taken, never handed out
-- KEYS[5] queue          list  waiting messages (next up at the right)
-- KEYS[6] dead           list  dead-letter records
-- KEYS[7] unique         hash  unique key -> message id
-- KEYS[8] unique_expiry  zset  unique key -> when it lapses (ms)
-- KEYS[9] counts         hash  totals (reaped, recovered, dead_lettered)
-- KEYS[10] cancel        hash  message id -> cancellation state (a dead letter's is forgotten)
-- ARGV[1] consumer id, ARGV[2] max_attempts (0: no limit), ARGV[3] at most this many
-- moved per call, ARGV[4] "reap" (only past its deadline) or "close" (its own close)
-- Returns {0 not done (alive, or not registered) / 1 done / 2 more to move, requeued,
-- dead-lettered, handed back uncounted}.
local now = oz_now_ms()
local reap = ARGV[4] == "reap"
if reap then
  local deadline = redis.call("ZSCORE", KEYS[1], ARGV[1])
  if not deadline or tonumber(deadline) >= now then return {0, 0, 0, 0} end
end
local bad = oz_wrong_type(KEYS[1], "zset", KEYS[2], "hash", KEYS[3], "list", KEYS[4], "list",
                          KEYS[9], "hash")
local holds = not bad and redis.call("EXISTS", KEYS[3], KEYS[4]) > 0
if holds then  -- only what moves messages needs the queue's other keys
  bad = oz_wrong_type(KEYS[5], "list", KEYS[6], "list", KEYS[7], "hash", KEYS[8], "zset",
                      KEYS[10], "hash")
end
if bad then return redis.error_reply(bad) end
local limit, released = tonumber(ARGV[3]), 0
-- the prefetch list newest first, each RPUSHed in turn: its oldest is next up
local moving = limit >= 1 and redis.call("LPOP", KEYS[4], limit)
if moving then released = #moving; oz_push_all("RPUSH", KEYS[5], moving) end
local requeued, dead = oz_return_all("LPOP", KEYS[3], KEYS[5], KEYS[6], tonumber(ARGV[2]), now,
                                     "RPUSH", limit - released, KEYS[7], KEYS[8], KEYS[10])
if reap and requeued + released > 0 then
  redis.call("HINCRBY", KEYS[9], "recovered", requeued + released)
end
if dead > 0 then redis.call("HINCRBY", KEYS[9], "dead_lettered", dead) end
if redis.call("EXISTS", KEYS[3], KEYS[4]) > 0 then return {2, requeued, dead, released} end
redis.call("ZREM", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
if reap then redis.call("HINCRBY", KEYS[9], "reaped", 1) end
return {1, requeued, dead, released}
