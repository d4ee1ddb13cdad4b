-- The GC's tidying, bounded per call: forget unique keys whose unique_for has lapsed,
-- and cancellation marks older than max_age (their cancel() died, or their message
-- left by a way no mark follows, such as a push to another queue).
-- KEYS[1] unique         hash  unique key -> message id
-- KEYS[2] unique_expiry  zset  unique key -> when it lapses (server ms)
-- KEYS[3] cancel         hash  message id -> state .. marked ms
-- ARGV[1] at most this many of each, ARGV[2] HSCAN cursor of the cancel hash,
-- ARGV[3] max age of a mark (ms)
-- Returns {unique keys forgotten, marks forgotten, next HSCAN cursor}.
local bad = oz_wrong_type(KEYS[1], "hash", KEYS[2], "zset", KEYS[3], "hash")
if bad then return redis.error_reply(bad) end
local now, limit = oz_now_ms(), tonumber(ARGV[1])
local lapsed = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", now, "LIMIT", 0, limit)
for _, key in ipairs(lapsed) do
  redis.call("HDEL", KEYS[1], key)
  redis.call("ZREM", KEYS[2], key)
end
local scan = redis.call("HSCAN", KEYS[3], ARGV[2], "COUNT", limit)
local forgotten, fields = 0, scan[2]
for i = 1, #fields, 2 do
  local since = tonumber(string.sub(fields[i + 1], 2)) or 0
  if now - since > tonumber(ARGV[3]) then
    redis.call("HDEL", KEYS[3], fields[i])
    forgotten = forgotten + 1
  end
end
return {#lapsed, forgotten, scan[1]}
