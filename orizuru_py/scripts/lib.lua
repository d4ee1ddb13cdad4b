-- Helpers put before each script by scripts.py (Redis scripts cannot import): only
-- the ones a script uses, so keep one function per paragraph, callees first.
--
-- Envelope:     "OZ" .. "\1" .. deliveries (uint32 big-endian) .. enqueued_ms (uint64)
--               .. #id (1 byte) .. id .. payload: 16 bytes of header at least
-- Dead record:  "OZD\1" .. #reason (uint32) .. reason .. dead_ms (2 x uint32) .. original bytes

local function oz_now_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function oz_u32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
                     math.floor(n / 256) % 256, n % 256)
end

-- Deliveries so far, or nil when raw is not an envelope this version knows.
local function oz_deliveries(raw)
  if #raw < 16 or string.sub(raw, 1, 3) ~= "OZ\1" then return nil end
  local a, b, c, d = string.byte(raw, 4, 7)
  return a * 16777216 + b * 65536 + c * 256 + d
end

local function oz_with_deliveries(raw, n)
  return "OZ\1" .. oz_u32(n) .. string.sub(raw, 8)
end

local function oz_dead_record(raw, reason, now)
  return "OZD\1" .. oz_u32(#reason) .. reason
      .. oz_u32(math.floor(now / 4294967296)) .. oz_u32(now % 4294967296) .. raw
end

-- A delivery of raw ended without an ack (rejected, or its consumer died): count it,
-- then push it to queue with `push` (LPUSH: back of the line; RPUSH: next up), or to
-- dead once it has been delivered max_attempts times (0: no limit).
-- Returns 1 when requeued, 0 when dead-lettered.
local function oz_return(raw, queue, dead, max_attempts, now, push)
  local n = oz_deliveries(raw)
  if n == nil then
    redis.call("LPUSH", dead, oz_dead_record(raw, "undecodable: not an orizuru envelope", now))
    return 0
  end
  n = n + 1
  if max_attempts > 0 and n >= max_attempts then
    redis.call("LPUSH", dead, oz_dead_record(raw, "max attempts reached (" .. n .. " deliveries)", now))
    return 0
  end
  redis.call(push, queue, oz_with_deliveries(raw, n))
  return 1
end

-- oz_return up to `limit` messages popped from `source` with `pop` (LPOP/RPOP).
-- Returns requeued, dead-lettered.
local function oz_return_all(pop, source, queue, dead, max_attempts, now, push, limit)
  local requeued, dead_lettered = 0, 0
  for _ = 1, limit do
    local raw = redis.call(pop, source)
    if not raw then break end
    if oz_return(raw, queue, dead, max_attempts, now, push) == 1 then
      requeued = requeued + 1
    else
      dead_lettered = dead_lettered + 1
    end
  end
  return requeued, dead_lettered
end

-- LPUSH/RPUSH many values, in chunks small enough for unpack(); returns the length.
local function oz_push_all(cmd, key, values)
  local length = 0
  for i = 1, #values, 1000 do
    length = redis.call(cmd, key, unpack(values, i, math.min(i + 999, #values)))
  end
  return length
end
