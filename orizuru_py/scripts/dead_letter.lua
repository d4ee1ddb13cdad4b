-- Move messages from a processing list to the dead-letter list, with a reason, freeing
-- their unique keys and forgetting cancellations of messages that were in flight.
-- KEYS[1] processing     list  the consumer's messages
-- KEYS[2] dead           list  dead-letter records
-- KEYS[3] cancel         hash  message id -> cancellation state
-- KEYS[4] unique         hash  unique key -> message id
-- KEYS[5] unique_expiry  zset  unique key -> when it lapses (ms)
-- ARGV[1] reason, ARGV[2] "ids": ARGV[3] the messages' ids, packed (each: its length in
-- one byte, then it); or "raw": ARGV[3] the exact bytes of one that is no message at all
-- (garbage a take just moved: it has no id)
-- Returns how many were moved (a message no longer there is skipped).
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list", KEYS[3], "hash", KEYS[4], "hash",
                          KEYS[5], "zset")
if bad then return redis.error_reply(bad) end
local now = oz_now_ms()
if ARGV[2] == "raw" then
  if redis.call("LREM", KEYS[1], 1, ARGV[3]) == 0 then return 0 end
  redis.call("LPUSH", KEYS[2], oz_dead_record(ARGV[3], ARGV[1], now))
  return 1
end
local moved = 0
for _, raw in ipairs(oz_remove(KEYS[1], oz_ids(ARGV[3]), 5000)) do
  if raw then
    redis.call("LPUSH", KEYS[2], oz_dead_record(raw, ARGV[1], now))
    oz_free_unique(raw, KEYS[4], KEYS[5])
    redis.call("HDEL", KEYS[3], oz_id(raw))
    moved = moved + 1
  end
end
return moved
