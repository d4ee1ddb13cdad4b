-- Look through one page of a queue's list or sorted set for a message by id, and act on
-- it in the same step: an operator's search, bounded per call. Pages go from the head
-- of a list (index 0, the newest) and the top of a sorted set (the latest due): pushes,
-- takes and promotions never move an element from ahead of the cursor to behind it.
-- KEYS[1] target         list or zset  the queue, unack, dead, processing or prefetch
--                                      list, or the delayed set
-- KEYS[2] queue          list  waiting messages (a revived dead letter goes here)
-- KEYS[3] cancel         hash  message id -> cancellation state
-- KEYS[4] unique         hash  unique key -> message id
-- KEYS[5] unique_expiry  zset  unique key -> when it lapses (ms)
-- KEYS[6] counts         hash  totals (cancelled, tombstones:ROLE)
-- ARGV[1] "list", "zset" or "dead" (a list of dead-letter records), ARGV[2] message id,
-- ARGV[3] first index, ARGV[4] page size, ARGV[5] action: "find" (look only), "delete"
-- (remove it, free its unique key), "cancel" (delete, and count it cancelled),
-- "revive" (a dead letter: back to the queue with a fresh delivery count, taking its
-- unique key again for ARGV[7] ms), ARGV[6] the list's role (queue, unack, dead),
-- ARGV[8] how far from an end a list element is removed at once: deeper, removing it
-- would scan half the list, so a tombstone takes its place (whoever pops it drops it)
-- Returns {index found, -1 (not in this page), or -2 (a dead letter not revived: another
-- live message holds its unique key); the stored bytes or ""; next first index or -1}.
local kind, id, first, size, action = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local bad = oz_wrong_type(KEYS[1], kind == "zset" and "zset" or "list")
if not bad and action ~= "find" then
  bad = oz_wrong_type(KEYS[2], "list", KEYS[3], "hash", KEYS[4], "hash", KEYS[5], "zset", KEYS[6], "hash")
end
if bad then return redis.error_reply(bad) end
local stored_as, or_as = oz_packed_of(id)  -- compared with each element's packed id
local page
if kind == "zset" then
  page = redis.call("ZREVRANGE", KEYS[1], first, first + size - 1)
else
  page = redis.call("LRANGE", KEYS[1], first, first + size - 1)
end
for j, stored in ipairs(page) do
  local raw = stored
  if kind == "dead" then
    raw = ""
    if #stored >= 16 and string.sub(stored, 1, 4) == "OZD\1" then
      local a, b, c, d = string.byte(stored, 5, 8)
      raw = string.sub(stored, 17 + a * 16777216 + b * 65536 + c * 256 + d)
    end
  end
  local packed = oz_deliveries(raw) and oz_packed_id(raw)
  if packed and (packed == stored_as or packed == or_as) then
    local index = first + j - 1
    if action ~= "find" then
      if action == "revive"
          and not oz_retake_unique(raw, KEYS[4], KEYS[5], oz_now_ms(), tonumber(ARGV[7])) then
        return {-2, stored, -1}
      end
      if kind == "zset" then
        redis.call("ZREM", KEYS[1], stored)
      else
        local tomb = "\0orizuru-removed\0" .. id
        local len = redis.call("LLEN", KEYS[1])
        redis.call("LSET", KEYS[1], index, tomb)
        if math.min(index, len - 1 - index) < tonumber(ARGV[8]) then
          redis.call("LREM", KEYS[1], index < len / 2 and 1 or -1, tomb)
        else
          redis.call("HINCRBY", KEYS[6], "tombstones:" .. ARGV[6], 1)
        end
      end
      if action == "revive" then
        redis.call("LPUSH", KEYS[2], oz_with_deliveries(raw, 0))
      else
        oz_free_unique(raw, KEYS[4], KEYS[5])
      end
      if action == "cancel" then
        redis.call("HDEL", KEYS[3], id)
        redis.call("HINCRBY", KEYS[6], "cancelled", 1)
      end
    end
    return {index, stored, -1}
  end
end
if #page < size then return {-1, "", -1} end
return {-1, "", first + size}
