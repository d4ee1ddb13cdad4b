-- Remove acknowledged messages from a processing list for good, freeing the unique
-- keys they carry and forgetting the cancellations of messages that were in flight.
-- KEYS[1] processing     list  the consumer's messages (oldest at the right)
-- KEYS[2] cancel         hash  message id -> cancellation state
-- KEYS[3] unique         hash  unique key -> message id
-- KEYS[4] unique_expiry  zset  unique key -> when it lapses (ms)
-- ARGV[1] the messages' ids, packed (each: its length in one byte, then it), oldest
-- first; ARGV[2] their number k; ARGV[3] at most this many elements looked at; ARGV[4]
-- "1" to move those looked at and not wanted to the newest end (a pass of a search
-- that goes on); ARGV[5..] the positions (1..k) of the messages that carry a unique key
-- Returns k when all were removed, else {one 1 (removed) or 0 (not seen) per message,
-- elements looked at, the list's length}.
local pending = redis.call("HLEN", KEYS[2])
local bad = oz_wrong_type(KEYS[1], "list")
if not bad and #ARGV > 4 then bad = oz_wrong_type(KEYS[3], "hash", KEYS[4], "zset") end
if bad then return redis.error_reply(bad) end
local k = tonumber(ARGV[2])
local taken = oz_oldest(KEYS[1], ARGV[1], k)
if taken and #ARGV == 4 and pending == 0 then return k end
local ids, looked, len = oz_ids(ARGV[1]), k, 0
if not taken then
  taken, looked, len = oz_take_ids(KEYS[1], ids, tonumber(ARGV[3]), false, ARGV[4] == "1")
end
for j = 5, #ARGV do
  local raw = taken[tonumber(ARGV[j])]
  if raw then oz_free_unique(raw, KEYS[3], KEYS[4]) end
end
local all, out = true, {}
for i = 1, #ids do
  if taken[i] then
    out[i] = 1
    if pending > 0 then
      local id = oz_unpacked(ids[i])
      local state = redis.call("HGET", KEYS[2], id)
      if state and string.sub(state, 1, 1) == "f" then redis.call("HDEL", KEYS[2], id) end
    end
  else
    out[i], all = 0, false
  end
end
if all then return #ids end
return {out, looked, len}
