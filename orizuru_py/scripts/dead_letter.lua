-- Move messages from a processing list to the dead-letter list, with a reason, freeing
-- their unique keys and forgetting cancellations of messages that were in flight.
-- KEYS[1] processing     list  the consumer's messages
-- KEYS[2] dead           list  dead-letter records
-- KEYS[3] cancel         hash  message id -> cancellation state
-- KEYS[4] unique         hash  unique key -> message id
-- KEYS[5] unique_expiry  zset  unique key -> when it lapses (ms)
-- ARGV[1] reason, then either "ids", ARGV[3] the messages' ids, packed (each: its length
-- in one byte, then it), ARGV[4] at most this many elements looked at, ARGV[5] "1" to
-- move those looked at to the newest end (a pass of a search that goes on); or "raw",
-- ARGV[3] the exact bytes of one that is no message at all (garbage: it has no id),
-- ARGV[4] 1 to look for it from the newest end (a take just moved it), -1 from the oldest,
-- ARGV[5] at most this many elements looked at
-- Returns, for "ids", k when all k moved, else {one 1 (moved) or 0 (not seen) per
-- message, elements looked at, the list's length}; for "raw", 1 or 0.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list", KEYS[3], "hash", KEYS[4], "hash",
                          KEYS[5], "zset")
if bad then return redis.error_reply(bad) end
local now = oz_now_ms()
if ARGV[2] == "raw" then
  local from = tonumber(ARGV[4])
  if not redis.call("LPOS", KEYS[1], ARGV[3], "RANK", from, "MAXLEN", tonumber(ARGV[5])) then
    return 0
  end
  redis.call("LREM", KEYS[1], from, ARGV[3])  -- the copy LPOS found, or a nearer one
  redis.call("LPUSH", KEYS[2], oz_dead_record(ARGV[3], ARGV[1], now))
  return 1
end
local ids = oz_ids(ARGV[3])
local taken, looked, len = oz_take_ids(KEYS[1], ids, tonumber(ARGV[4]), false, ARGV[5] == "1")
local cancels = redis.call("EXISTS", KEYS[3]) == 1  -- mostly none: no id to spell out
local out, records, all = {}, {}, true
for i, raw in ipairs(taken) do
  if raw then
    records[#records + 1] = oz_dead_record(raw, ARGV[1], now)
    oz_free_unique(raw, KEYS[4], KEYS[5])
    if cancels then redis.call("HDEL", KEYS[3], oz_id(raw)) end
    out[i] = 1
  else
    out[i], all = 0, false
  end
end
oz_push_all("LPUSH", KEYS[2], records)
if all then return #ids end
return {out, looked, len}
