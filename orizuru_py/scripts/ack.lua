-- Remove many settled messages from a processing list.
-- KEYS[1] processing  list  the consumer's messages
-- ARGV    the messages' exact bytes
-- Scans from the tail, where the oldest messages sit, so in-order acks cost O(1) each.
-- Returns one 1 (removed) or 0 (no longer there: recovered by the GC) per message.
local out = {}
for i = 1, #ARGV do
  out[i] = redis.call("LREM", KEYS[1], -1, ARGV[i])
end
return out
