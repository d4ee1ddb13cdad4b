-- Remove many settled messages from a processing list.
-- KEYS[1] processing  list  the consumer's messages (oldest at the right)
-- ARGV    the messages' exact bytes, oldest first
-- Returns #ARGV when all were removed at once, else one 1 (removed) or 0 (no longer
-- there: recovered by the GC) per message.
local k = #ARGV
-- Fast path: a batch acked whole is the k oldest messages of the list, in order;
-- one LRANGE checks it and one LTRIM drops them.
if redis.call("LINDEX", KEYS[1], -1) == ARGV[1] then
  local tail = redis.call("LRANGE", KEYS[1], -k, -1)
  local same = #tail == k
  for i = 1, k do
    if not same then break end
    same = tail[k - i + 1] == ARGV[i]
  end
  if same then
    redis.call("LTRIM", KEYS[1], 0, -k - 1)
    return k
  end
end
-- Scanning from the tail, where the oldest sit, acks in order cost O(1) each.
local out = {}
for i = 1, k do
  out[i] = redis.call("LREM", KEYS[1], -1, ARGV[i])
end
return out
