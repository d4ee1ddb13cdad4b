-- Read part of a queue's list or sorted set without moving anything, and send back only
-- the first bytes of each element: what an operator sees costs the same whatever the
-- messages weigh (a 50 MB message sends its length and head, not 50 MB). Bounded per
-- call: at most ARGV[3] elements, and it stops after the element that brings the bytes
-- read past ARGV[5] (each call reads at least one, so the caller always advances).
-- KEYS[1] source  list or zset  the queue, unack or dead list, or the delayed set
-- ARGV[1] "list", "zset" or "dead" (a list of dead-letter records)
-- ARGV[2] first position, in the order messages are acted on: from the tail of a list
--         (the next taken, the oldest dead), from the lowest score of a set (soonest due)
-- ARGV[3] how many at most
-- ARGV[4] bytes of each message (and of each dead letter's reason) to send; -1: all
-- ARGV[5] bytes this call may read before it stops
-- Returns {next position, or -1 at the end; then per element {stored size, head,
-- reason, reason's size, extra}}: size and head are the message's (for a dead letter,
-- of the original bytes inside the record); extra is the score (zset), the record's
-- 8 bytes of dead_ms (dead), or "" (a list, or a dead record that is not one).
local kind, first, count = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cut, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local bad = oz_wrong_type(KEYS[1], kind == "zset" and "zset" or "list")
if bad then return redis.error_reply(bad) end

local function head(s, from)
  if cut < 0 then return string.sub(s, from) end
  return string.sub(s, from, from + cut - 1)
end

local out, read, pos = {0}, 0, first
while pos < first + count and (read < budget or pos == first) do
  local stored, extra = nil, ""
  if kind == "zset" then
    local found = redis.call("ZRANGE", KEYS[1], pos, pos, "WITHSCORES")
    stored, extra = found[1], found[2]
  else
    stored = redis.call("LINDEX", KEYS[1], -(pos + 1))
  end
  if not stored then
    out[1] = -1
    return out
  end
  local item = {#stored, head(stored, 1), "", 0, extra}
  if kind == "dead" and #stored >= 16 and string.sub(stored, 1, 4) == "OZD\1" then
    local a, b, c, d = string.byte(stored, 5, 8)
    local n = a * 16777216 + b * 65536 + c * 256 + d
    if #stored >= 16 + n then
      local shown = cut < 0 and n or math.min(n, cut)
      item = {#stored - 16 - n, head(stored, 17 + n), string.sub(stored, 9, 8 + shown), n,
              string.sub(stored, 9 + n, 16 + n)}
    end
  end
  if not oz_is_tombstone(stored) then out[#out + 1] = item end  -- a deleted message's mark
  read = read + #stored
  pos = pos + 1
end
out[1] = pos
return out
