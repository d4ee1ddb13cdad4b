-- Take messages out of a consumer's list without delivering them, and count them:
-- expired ones (their ttl passed before they were taken), or ones whose cancellation
-- was seen only after a blocking take moved them. Frees their unique keys. A take has
-- just moved them to the newest end of the list: only that end is looked at.
-- KEYS[1] list           list  the consumer's prefetch or processing list
-- KEYS[2] cancel         hash  message id -> cancellation state
-- KEYS[3] unique         hash  unique key -> message id
-- KEYS[4] unique_expiry  zset  unique key -> when it lapses (ms)
-- KEYS[5] counts         hash  totals (expired, cancelled)
-- ARGV[1] "expired" or "cancelled", ARGV[2] the messages' ids, packed (each: its length
-- in one byte, then it), ARGV[3] at most this many elements looked at
-- Returns one 1 (dropped) or 0 (kept: not cancelled, or not seen) per message.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "hash", KEYS[3], "hash", KEYS[4], "zset",
                          KEYS[5], "hash")
if bad then return redis.error_reply(bad) end
local ids, out = oz_ids(ARGV[2]), {}
local wanted = {}
for i, id in ipairs(ids) do
  out[i] = 0
  if ARGV[1] == "expired" or redis.call("HEXISTS", KEYS[2], oz_unpacked(id)) == 1 then
    wanted[#wanted + 1] = i
  end
end
local packed = {}
for _, i in ipairs(wanted) do packed[#packed + 1] = ids[i] end
local taken = oz_take_ids(KEYS[1], packed, tonumber(ARGV[3]), true, false)
for j, i in ipairs(wanted) do
  local raw = taken[j]
  if raw then
    out[i] = 1
    if ARGV[1] == "expired" then
      oz_free_unique(raw, KEYS[3], KEYS[4])
      redis.call("HINCRBY", KEYS[5], "expired", 1)
    else
      oz_dropped(raw, KEYS[2], KEYS[3], KEYS[4], KEYS[5])
    end
  end
end
return out
