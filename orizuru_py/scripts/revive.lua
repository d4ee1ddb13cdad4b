-- Move dead-lettered messages back to the queue with a fresh delivery count. Each call
-- examines up to `limit` records from the oldest end; a record whose bytes are not a
-- message (garbage, a foreign value) is rotated to the newest end and kept, so the
-- caller, examining as many records as the list held when it began, reaches every real
-- dead letter whatever surrounds it.
-- KEYS[1] dead   list  dead-letter records (oldest at the right)
-- KEYS[2] queue  list  waiting messages
-- ARGV[1] limit
-- Returns {revived, kept as garbage}.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list")
if bad then return redis.error_reply(bad) end
local revived, kept = 0, 0
for _ = 1, tonumber(ARGV[1]) do
  local rec = redis.call("RPOP", KEYS[1])
  if not rec then break end
  local raw = nil
  if #rec >= 16 and string.sub(rec, 1, 4) == "OZD\1" then
    local a, b, c, d = string.byte(rec, 5, 8)
    local start = 17 + a * 16777216 + b * 65536 + c * 256 + d
    if start <= #rec then raw = string.sub(rec, start) end
  end
  if raw and oz_deliveries(raw) then
    redis.call("LPUSH", KEYS[2], oz_with_deliveries(raw, 0))
    revived = revived + 1
  else
    redis.call("LPUSH", KEYS[1], rec)
    kept = kept + 1
  end
end
return {revived, kept}
