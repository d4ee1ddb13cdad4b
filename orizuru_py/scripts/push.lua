-- Queue messages that carry a unique key, or are due later. A message whose unique key
-- names a live message (waiting, delayed or in flight, and not lapsed) is not queued:
-- the live message's id is returned in its place.
-- KEYS[1] queue          list  waiting messages
-- KEYS[2] delayed        zset  message -> due time (server ms)
-- KEYS[3] unique         hash  unique key -> message id
-- KEYS[4] unique_expiry  zset  unique key -> when it lapses (server ms)
-- ARGV[1] delay (ms; 0: now), ARGV[2] unique_for (ms), then per message: its unique key
-- ("" for none), its id, its bytes
-- Returns the ids, in order: each message's own, or the live one it duplicates.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "zset", KEYS[3], "hash", KEYS[4], "zset")
if bad then return redis.error_reply(bad) end
local now = oz_now_ms()
local delay, unique_for = tonumber(ARGV[1]), tonumber(ARGV[2])
local ids, queued = {}, {}
for i = 3, #ARGV, 3 do
  local key, id, raw = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local live = nil
  if key ~= "" then
    live = redis.call("HGET", KEYS[3], key)
    if live and tonumber(redis.call("ZSCORE", KEYS[4], key) or 0) <= now then live = nil end
    if not live then
      redis.call("HSET", KEYS[3], key, id)
      redis.call("ZADD", KEYS[4], now + unique_for, key)
    end
  end
  ids[#ids + 1] = live or id
  if not live then
    if delay > 0 then
      redis.call("ZADD", KEYS[2], now + delay, raw)
    else
      queued[#queued + 1] = raw
    end
  end
end
oz_push_all("LPUSH", KEYS[1], queued)
return ids
