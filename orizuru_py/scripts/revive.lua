-- Move dead-lettered messages back to the queue with a fresh delivery count.
-- Records whose original bytes are not an envelope (garbage) stay dead.
-- KEYS[1] dead   list  dead-letter records (oldest at the right)
-- KEYS[2] queue  list  waiting messages
-- ARGV[1] at most this many records examined
-- Returns {revived, left dead}.
local records = redis.call("LRANGE", KEYS[1], -tonumber(ARGV[1]), -1)
local revived = 0
for i = #records, 1, -1 do
  local rec = records[i]
  local a, b, c, d = string.byte(rec, 5, 8)
  local raw = string.sub(rec, 17 + a * 16777216 + b * 65536 + c * 256 + d)
  if string.sub(rec, 1, 4) == "OZD\1" and oz_deliveries(raw) ~= nil then
    redis.call("LREM", KEYS[1], -1, rec)
    redis.call("LPUSH", KEYS[2], oz_with_deliveries(raw, 0))
    revived = revived + 1
  end
end
return {revived, #records - revived}
