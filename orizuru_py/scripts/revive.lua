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
local limit = tonumber(ARGV[1])
local recs = limit >= 1 and redis.call("RPOP", KEYS[1], limit)  -- oldest first
if not recs then return {0, 0, 0} end
local kept, back, garbage, taken = {}, {}, 0, 0
for _, rec in ipairs(recs) do
  local raw = nil
  if #rec >= 16 and string.sub(rec, 1, 4) == "OZD\1" then
    local start = 17 + struct.unpack(">I4", rec, 5)
    if start <= #rec then raw = string.sub(rec, start) end
  end
  if oz_is_tombstone(rec) then
    redis.call("HINCRBY", KEYS[5], "tombstones:dead", -1)
  elseif not (raw and oz_deliveries(raw)) then
    kept[#kept + 1] = rec
    garbage = garbage + 1
  elseif not oz_retake_unique(raw, KEYS[3], KEYS[4], now, unique_for) then
    kept[#kept + 1] = rec
    taken = taken + 1
  else
    back[#back + 1] = oz_with_deliveries(raw, 0)
  end
end
if #kept > 0 then oz_push_all("LPUSH", KEYS[1], kept) end
if #back > 0 then oz_push_all("LPUSH", KEYS[2], back) end
return {#back, garbage, taken}
