-- Move one message from a processing list to the delayed set, one delivery counted;
-- or, when its handler was rate limited (RateLimited), uncounted, pausing its limiter.
-- KEYS[1] processing  list    the consumer's messages
-- KEYS[2] delayed     zset    message -> due time (server ms)
-- KEYS[3] pause       string  rate limited: its limiter's pause (see start.lua)
-- KEYS[4] throttled   hash    rate limited: limiter key -> when it frees (ms)
-- ARGV[1] the message's id, packed (its length in one byte, then it), ARGV[2] delay (ms),
-- ARGV[3] at most this many elements looked at, ARGV[4] "1" to move those looked at to
-- the newest end (a pass of a search that goes on); rate limited: ARGV[5] its limiter's
-- key ("" the queue's own), which lets nothing start for the delay
-- Returns 1 when moved, else {{0}, elements looked at, the list's length}.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "zset")
if not bad and KEYS[3] then bad = oz_wrong_type(KEYS[3], "string", KEYS[4], "hash") end
if bad then return redis.error_reply(bad) end
local taken, looked, len = oz_take_ids(KEYS[1], oz_ids(ARGV[1]), tonumber(ARGV[3]), false,
                                       ARGV[4] == "1")
local raw = taken[1]
if not raw then return {{0}, looked, len} end
local due = oz_now_ms() + tonumber(ARGV[2])
if not KEYS[3] then
  redis.call("ZADD", KEYS[2], due, oz_with_deliveries(raw, oz_deliveries(raw) + 1))
  return 1
end
redis.call("ZADD", KEYS[2], due, raw)
if tonumber(ARGV[2]) > 0 then
  redis.call("SET", KEYS[3], "1", "PX", ARGV[2])
  redis.call("HSET", KEYS[4], ARGV[5], due)
end
return 1
