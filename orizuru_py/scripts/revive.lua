-- Move dead-lettered messages back to the queue with a fresh delivery count, taking
-- again the unique key each carries. Each call examines up to `limit` records from the
-- oldest end; a record whose bytes are not a message (garbage, a foreign value), or
-- whose unique key another live message holds now, is rotated to the newest end and
-- kept, so the caller, examining as many records as the list held when it began,
-- reaches every dead letter whatever surrounds it. Tombstones (see find.lua) are dropped.
-- KEYS[1] dead           list  dead-letter records (oldest at the right)
-- KEYS[2] queue          list  waiting messages
-- KEYS[3] unique         hash  unique key -> message id
-- KEYS[4] unique_expiry  zset  unique key -> when it lapses (ms)
-- KEYS[5] counts         hash  totals (tombstones:dead)
-- ARGV[1] limit, ARGV[2] how long (ms) a revived message holds its unique key
-- Returns {revived, kept as garbage, kept because their unique key is taken}.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list", KEYS[3], "hash", KEYS[4], "zset",
                          KEYS[5], "hash")
if bad then return redis.error_reply(bad) end
local now, unique_for = oz_now_ms(), tonumber(ARGV[2])
local revived, garbage, taken = 0, 0, 0
for _ = 1, tonumber(ARGV[1]) do
  local rec = redis.call("RPOP", KEYS[1])
  if not rec then break end
  local raw = nil
  if #rec >= 16 and string.sub(rec, 1, 4) == "OZD\1" then
    local a, b, c, d = string.byte(rec, 5, 8)
    local start = 17 + a * 16777216 + b * 65536 + c * 256 + d
    if start <= #rec then raw = string.sub(rec, start) end
  end
  if oz_is_tombstone(rec) then
    redis.call("HINCRBY", KEYS[5], "tombstones:dead", -1)
  elseif not (raw and oz_deliveries(raw)) then
    redis.call("LPUSH", KEYS[1], rec)
    garbage = garbage + 1
  elseif not oz_retake_unique(raw, KEYS[3], KEYS[4], now, unique_for) then
    redis.call("LPUSH", KEYS[1], rec)
    taken = taken + 1
  else
    redis.call("LPUSH", KEYS[2], oz_with_deliveries(raw, 0))
    revived = revived + 1
  end
end
return {revived, garbage, taken}
