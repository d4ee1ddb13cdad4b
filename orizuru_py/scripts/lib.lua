-- Helpers put before each script by scripts.py (Redis scripts cannot import): only
-- the ones a script uses, so keep one function per paragraph, callees first.
--
-- Envelope:     "OZ" .. version (3, or 4 with extensions) .. deliveries (uint16 BE)
--               .. id (15 bytes) .. [version 4: #ext (uint16) .. ext] .. payload;
--               earlier, still read: "OZ" .. version (1, or 2 with extensions)
--               .. deliveries (uint32 BE) .. enqueued_ms (uint64) .. #id (1 byte) .. id
--               .. [version 2: #ext (uint16) .. ext] .. payload
--               ext: tag (1 unique key, 2 expiry, 3 trace context; a reader skips
--               a tag it does not know) .. #value (uint16) .. value
-- Message id:   the ASCII id of versions 1 and 2; the 15 bytes of versions 3 and 4 as 30
--               hex digits (as the client names it: cancel marks, unique keys).
-- Packed id:    #id (1 byte) .. id as stored; a 15-byte id has #id 0 (oz_ids).
-- Dead record:  "OZD\1" .. #reason (uint32) .. reason .. dead_ms (2 x uint32) .. original bytes
-- Every script checks the type of each key it may write before its first write
-- (oz_wrong_type), or, where a command checks it anyway (take.lua's one message: LMOVE),
-- undoes its move when a later write is refused, so a script that fails changes nothing.

local function oz_now_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- nil when every key is missing or of its kind, else an error text for the first that
-- is not: oz_wrong_type(key1, "list", key2, "hash", ...)
local function oz_wrong_type(...)
  local args = {...}
  for i = 1, #args, 2 do
    local t = redis.call("TYPE", args[i])["ok"]
    if t ~= "none" and t ~= args[i + 1] then
      return "WRONGTYPE orizuru: " .. args[i] .. " holds a " .. t .. ", not a " .. args[i + 1]
    end
  end
  return nil
end

-- A message deleted from deep in a long list leaves this mark where it stood (removing
-- it there would cost the whole list): whoever pops one drops it, and lowers the list's
-- count of them (the counts hash field "tombstones:" .. the list's role).
local function oz_is_tombstone(raw)
  return string.byte(raw, 1) == 0 and string.sub(raw, 1, 17) == "\0orizuru-removed\0"
end

-- Deliveries so far, or nil when raw is not an envelope this version knows.
local function oz_deliveries(raw)
  if string.sub(raw, 1, 2) ~= "OZ" then return nil end
  local v = string.byte(raw, 3)
  if v == 3 or v == 4 then
    if #raw < 20 then return nil end
    local a, b = string.byte(raw, 4, 5)
    return a * 256 + b
  end
  if (v ~= 1 and v ~= 2) or #raw < 16 then return nil end
  local a, b, c, d = string.byte(raw, 4, 7)
  return a * 16777216 + b * 65536 + c * 256 + d
end

-- raw with its delivery count n (two bytes of version 3 and 4 stop at 65535).
local function oz_with_deliveries(raw, n)
  if string.byte(raw, 3) >= 3 then
    return string.sub(raw, 1, 3) .. struct.pack(">I2", math.min(n, 65535)) .. string.sub(raw, 6)
  end
  return string.sub(raw, 1, 3) .. struct.pack(">I4", n) .. string.sub(raw, 8)
end

-- The 15 bytes of s from `at` on as 30 hex digits: in C (struct, bit) where a
-- string.format of 15 bytes cost a settling call of 1,000 messages 3 ms.
local function oz_hex15(s, at)
  local a, b, c, d = struct.unpack(">I4I4I4I2", s, at)
  return bit.tohex(a, 8) .. bit.tohex(b, 8) .. bit.tohex(c, 8) .. bit.tohex(d, 4)
      .. bit.tohex(string.byte(s, at + 14), 2)
end

-- The message id (callers have checked raw with oz_deliveries).
local function oz_id(raw)
  if string.byte(raw, 3) >= 3 then return oz_hex15(raw, 6) end
  return string.sub(raw, 17, 16 + string.byte(raw, 16))
end

-- The unique key a version 2 or 4 envelope carries, or nil.
local function oz_unique_key(raw)
  local v, at = string.byte(raw, 3), 21
  if v == 2 then at = 17 + string.byte(raw, 16) elseif v ~= 4 then return nil end
  local hi, lo = string.byte(raw, at, at + 1)
  if not lo then return nil end
  local stop = at + 2 + hi * 256 + lo
  at = at + 2
  while at + 2 < stop do
    local tag, h, l = string.byte(raw, at, at + 2)
    local size = h * 256 + l
    if tag == 1 then return string.sub(raw, at + 3, at + 2 + size) end
    at = at + 3 + size
  end
  return nil
end

-- Free the unique key of raw, if it has one and it still names this message.
local function oz_free_unique(raw, unique, unique_expiry)
  local key = oz_unique_key(raw)
  if key and redis.call("HGET", unique, key) == oz_id(raw) then
    redis.call("HDEL", unique, key)
    redis.call("ZREM", unique_expiry, key)
  end
end

-- Take the unique key of raw again for it (a dead letter revived): true when it carries
-- none, or the key is free (or lapsed) and now names it for unique_for ms; false when
-- another live message holds it.
local function oz_retake_unique(raw, unique, unique_expiry, now, unique_for)
  local key = oz_unique_key(raw)
  if not key then return true end
  local live = redis.call("HGET", unique, key)
  if live and live ~= oz_id(raw) and tonumber(redis.call("ZSCORE", unique_expiry, key) or 0) > now then
    return false
  end
  redis.call("HSET", unique, key, oz_id(raw))
  redis.call("ZADD", unique_expiry, now + unique_for, key)
  return true
end

local function oz_dead_record(raw, reason, now)
  return "OZD\1" .. struct.pack(">I4", #reason) .. reason
      .. struct.pack(">I4I4", math.floor(now / 4294967296), now % 4294967296) .. raw
end

-- LPUSH/RPUSH many values, in chunks small enough for unpack(); returns the length.
local function oz_push_all(cmd, key, values)
  if #values == 0 then return redis.call("LLEN", key) end
  local length
  for i = 1, #values, 1000 do
    length = redis.call(cmd, key, unpack(values, i, math.min(i + 999, #values)))
  end
  return length
end

-- Up to `limit` messages, popped from `source` with `pop` (LPOP/RPOP) in one call, whose
-- delivery ended without an ack (rejected, or handed to a consumer that died): count
-- each, then push it to queue with `push` (LPUSH: back of the line; RPUSH: next up), or
-- to dead once it has been delivered max_attempts times (0: no limit), freeing its
-- unique key and forgetting a cancellation mark. With `counts`, a tombstone popped is
-- dropped and the count `tombs` of them lowered. One push per list, in the order popped
-- (a push per message cost as much again). Returns requeued, dead-lettered.
local function oz_return_all(pop, source, queue, dead, max_attempts, now, push, limit, unique,
                             unique_expiry, cancel, counts, tombs)
  local raws = limit >= 1 and redis.call(pop, source, limit)
  if not raws then return 0, 0 end
  local back, records = {}, {}
  for _, raw in ipairs(raws) do
    local n = oz_deliveries(raw)
    if counts and oz_is_tombstone(raw) then
      redis.call("HINCRBY", counts, tombs, -1)
    elseif n == nil then
      records[#records + 1] = oz_dead_record(raw, "undecodable: not an orizuru envelope", now)
    elseif max_attempts > 0 and n + 1 >= max_attempts then
      records[#records + 1] = oz_dead_record(raw, "max attempts reached (" .. (n + 1)
                                             .. " deliveries)", now)
      oz_free_unique(raw, unique, unique_expiry)
      redis.call("HDEL", cancel, oz_id(raw))
    else
      back[#back + 1] = oz_with_deliveries(raw, n + 1)
    end
  end
  if #back > 0 then oz_push_all(push, queue, back) end
  if #records > 0 then oz_push_all("LPUSH", dead, records) end
  return #back, #records
end

-- How many messages a consumer's lists hold, given its destination list's length: that,
-- and when the destination is its prefetch list, its processing list's too.
local function oz_held(dest, processing, dest_len)
  if dest == processing then return dest_len end
  return dest_len + redis.call("LLEN", processing)
end

-- The ids packed in one argument (each is its length, one byte, then its bytes; 0: a
-- 15-byte id), each kept in that packed form: it is how an envelope stores its id
-- (oz_packed_id).
local function oz_ids(packed)
  local ids, at = {}, 1
  while at <= #packed do
    local n = string.byte(packed, at)
    if n == 0 then n = 15 end
    ids[#ids + 1] = string.sub(packed, at, at + n)
    at = at + 1 + n
  end
  return ids
end

-- A list element's id in packed form: the id's length byte (0 for 15 bytes) and the id.
local function oz_packed_id(raw)
  if (string.byte(raw, 3) or 0) >= 3 then return "\0" .. string.sub(raw, 6, 20) end
  return string.sub(raw, 16, 16 + (string.byte(raw, 16) or 0))
end

-- The message id of a packed id (as oz_id names it).
local function oz_unpacked(packed)
  if string.byte(packed, 1) == 0 then return oz_hex15(packed, 2) end
  return string.sub(packed, 2)
end

-- The two packed forms a message id can be stored in: as ASCII (versions 1 and 2), and
-- when it is 30 hex digits, as its 15 bytes (versions 3 and 4).
local function oz_packed_of(id)
  local ascii = string.char(#id) .. id
  if #id ~= 30 or string.find(id, "[^0-9a-f]") then return ascii, ascii end
  return ascii, "\0" .. (string.gsub(id, "..", function(h) return string.char(tonumber(h, 16)) end))
end

-- The fast path of settling a batch: if the oldest k elements of the list key are, in
-- order, the messages whose ids are `packed` (as sent), remove them and return them
-- oldest first; else nil (then oz_remove). Compares one string.
local function oz_oldest(key, packed, k)
  local tail = redis.call("LRANGE", key, -k, -1)
  if #tail ~= k then return nil end
  local seen = {}
  for i = k, 1, -1 do seen[k - i + 1] = oz_packed_id(tail[i]) end
  if table.concat(seen) ~= packed then return nil end
  redis.call("LTRIM", key, 0, -k - 1)
  local oldest = {}
  for i = 1, k do oldest[i] = tail[k - i + 1] end
  return oldest
end

-- Take the messages with these ids (in packed form, see oz_ids) out of the list key,
-- looking at no more than `budget` of its elements: from its oldest end (the right), or
-- with `head` from its newest end (the left). The elements looked at and not wanted stay
-- where they were; with `rotate` (oldest end only) they move to the newest end instead,
-- so that the next call looks at the next ones (the caller keeps any other rotation out
-- meanwhile). Equal ids are separate copies (a push a client resent). Returns taken
-- (taken[i] the message for ids[i], or false), how many elements it looked at, and the
-- list's length before.
local function oz_take_ids(key, ids, budget, head, rotate)
  local k, taken, want = #ids, {}, {}
  for i = k, 1, -1 do
    taken[i] = false
    local slots = want[ids[i]]
    if slots then slots[#slots + 1] = i else want[ids[i]] = {i} end
  end
  local len = redis.call("LLEN", key)
  local n = math.min(len, budget)
  if k == 0 or n == 0 then return taken, 0, len end
  local window
  if head then window = redis.call("LRANGE", key, 0, n - 1)
  else window = redis.call("LRANGE", key, -n, -1) end
  local kept, found = {}, 0
  for step = 1, n do
    local raw = window[head and step or n - step + 1]  -- the nearer end first
    local slots = want[oz_packed_id(raw)]
    if slots and #slots > 0 then
      taken[table.remove(slots)] = raw
      found = found + 1
    else
      kept[#kept + 1] = raw
    end
  end
  if found == 0 and not rotate then return taken, n, len end
  local back = {}
  for j = #kept, 1, -1 do back[#back + 1] = kept[j] end
  if head then
    redis.call("LTRIM", key, n, -1)
    oz_push_all("LPUSH", key, back)
  else
    redis.call("LTRIM", key, 0, -n - 1)
    if rotate then oz_push_all("LPUSH", key, kept) else oz_push_all("RPUSH", key, back) end
  end
  return taken, n, len
end

-- Whether the message raw has a pending cancellation; if so drop it: mark the cancel
-- done ("d") for a cancel() still looking for it, forget the mark otherwise, free its
-- unique key and count it. The caller has taken raw out of its list.
local function oz_dropped(raw, cancel, unique, unique_expiry, counts)
  if not oz_deliveries(raw) then return false end
  local id = oz_id(raw)
  local state = redis.call("HGET", cancel, id)
  if not state then return false end
  if string.sub(state, 1, 1) == "w" then
    redis.call("HSET", cancel, id, "d" .. string.sub(state, 2))
  else
    redis.call("HDEL", cancel, id)
  end
  oz_free_unique(raw, unique, unique_expiry)
  redis.call("HINCRBY", counts, "cancelled", 1)
  return true
end

-- The messages of `raws` that are not cancelled (the others are dropped).
local function oz_drop_cancelled(raws, cancel, unique, unique_expiry, counts)
  local kept = {}
  for _, raw in ipairs(raws) do
    if not oz_dropped(raw, cancel, unique, unique_expiry, counts) then kept[#kept + 1] = raw end
  end
  return kept
end

-- Rate limits (start.lua): admit, in order, the messages taken[i] at the positions of
-- `order` against their limiters (KEYS[8 + 2j], KEYS[9 + 2j]: limiter j's starts in its
-- window and its pause; ARGV[8 + j]: its key, "" the queue's own; ARGV[8 + L + i]: the
-- limiter of message i). A throttled one gets status 4 and waits uncounted: on the
-- delayed set until its limiter frees (a keyed one), or at the front of the queue (the
-- queue's own); `throttled` tells stats when each limiter frees. Returns the admitted
-- positions, and the ms until the queue's own limiter frees (0 when it let all through).
local function oz_admit(order, taken, status, limit, per, L, queue, delayed, throttled)
  local now = oz_now_ms()
  local room, frees = {}, {}
  for j = 1, L do
    redis.call("ZREMRANGEBYSCORE", KEYS[8 + 2 * j], "-inf", now - per)
    local paused = redis.call("PTTL", KEYS[9 + 2 * j])
    if paused > 0 then
      room[j], frees[j] = 0, now + paused
    else
      room[j] = limit - redis.call("ZCARD", KEYS[8 + 2 * j])
    end
  end
  local admitted, back, wait = {}, {}, 0
  for _, i in ipairs(order) do
    local j = tonumber(ARGV[8 + L + i])
    if room[j] > 0 then
      room[j] = room[j] - 1
      redis.call("ZADD", KEYS[8 + 2 * j], now, oz_id(taken[i]) .. "@" .. now)
      admitted[#admitted + 1] = i
    else
      if not frees[j] then
        local oldest = redis.call("ZRANGE", KEYS[8 + 2 * j], 0, 0, "WITHSCORES")
        frees[j] = (tonumber(oldest[2]) or now) + per
      end
      status[i] = 4
      if ARGV[8 + j] == "" then
        back[#back + 1] = taken[i]
        wait = math.max(wait, frees[j] - now)
      else
        redis.call("ZADD", delayed, frees[j], taken[i])
      end
    end
  end
  for m = #back, 1, -1 do redis.call("RPUSH", queue, back[m]) end  -- the oldest next up
  for j = 1, L do
    redis.call("PEXPIRE", KEYS[8 + 2 * j], per)
    if frees[j] then
      redis.call("HSET", throttled, ARGV[8 + j], frees[j])
    else
      redis.call("HDEL", throttled, ARGV[8 + j])
    end
  end
  return admitted, wait
end
