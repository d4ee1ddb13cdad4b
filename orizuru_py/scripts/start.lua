-- A worker's thread starts a chunk: move its messages from the prefetch list (taken,
-- never handed to a handler: uncounted if the worker dies) to the processing list
-- (handed to a handler: counted if it comes back), in one step per chunk. A message
-- with a pending cancellation is dropped instead. With a rate limit, each start counts
-- against its limiter in the same step: one its limiter throttles is not started, and
-- waits uncounted (a keyed limiter's on the delayed set until that window frees, the
-- queue's own at the front of the queue).
-- KEYS[1] prefetch       list  the worker's taken, unstarted messages (oldest at the right)
-- KEYS[2] processing     list  the worker's started messages
-- KEYS[3] cancel         hash  message id -> cancellation state
-- KEYS[4] unique         hash  unique key -> message id
-- KEYS[5] unique_expiry  zset  unique key -> when it lapses (ms)
-- KEYS[6] counts         hash  totals (cancelled)
-- With a rate limit:
-- KEYS[7] queue          list  waiting messages (next up at the right)
-- KEYS[8] delayed        zset  message -> due time (ms)
-- KEYS[9] throttled      hash  limiter key -> when its window frees (ms)
-- KEYS[10, 11, ...]      zset, string: per limiter, its starts in the window (ms) and its
--                        pause (RateLimited)
-- ARGV[1] "1" when resent after a lost reply, ARGV[2] the messages' ids, packed (each:
-- its length in one byte, then it), oldest first, ARGV[3] their number k, ARGV[4] at
-- most this many elements looked at in each list, ARGV[5] "1" to move those looked at
-- and not wanted to the newest end (a pass of a search that goes on); with a rate limit,
-- ARGV[6] the limit, ARGV[7] the window (ms), ARGV[8] the number of limiters L, then
-- each limiter's key ("" the queue's own), then each message's limiter (1 to L)
-- Returns k when all k started, else {one status per message: 1 started, 0 not seen
-- (the GC took it back, or it is further in), 2 cancelled (dropped), 3 already started
-- (by the lost first sending), 4 throttled; elements looked at; the prefetch list's
-- length; ms until the queue's own limiter lets a start through (0: it does)}.
local pending = redis.call("HLEN", KEYS[3])
local limit = tonumber(ARGV[6] or "0")
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list")
if not bad and pending > 0 then
  bad = oz_wrong_type(KEYS[4], "hash", KEYS[5], "zset", KEYS[6], "hash")
end
if not bad and limit > 0 then
  bad = oz_wrong_type(KEYS[7], "list", KEYS[8], "zset", KEYS[9], "hash")
end
if bad then return redis.error_reply(bad) end
local k, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local taken = oz_oldest(KEYS[1], ARGV[2], k)
if taken and pending == 0 and limit == 0 then
  oz_push_all("LPUSH", KEYS[2], taken)
  return k
end
local ids, looked, len = oz_ids(ARGV[2]), k, 0
if not taken then taken, looked, len = oz_take_ids(KEYS[1], ids, budget, false, ARGV[5] == "1") end
local status, started, all, missing = {}, {}, true, {}
for i = 1, #ids do
  local raw = taken[i]
  if not raw then
    status[i], all = 0, false
    if ARGV[1] == "1" then missing[ids[i]] = i end
  elseif pending > 0 and oz_dropped(raw, KEYS[3], KEYS[4], KEYS[5], KEYS[6]) then
    status[i], all = 2, false
  else
    status[i] = 1
    started[#started + 1] = i
  end
end
local wait = 0
if limit > 0 then
  local admitted
  admitted, wait = oz_admit(started, taken, status, limit, tonumber(ARGV[7]), tonumber(ARGV[8]),
                            KEYS[7], KEYS[8], KEYS[9])
  if #admitted < #started then all = false end
  started = admitted
end
local moving = {}
for j, i in ipairs(started) do moving[j] = taken[i] end
oz_push_all("LPUSH", KEYS[2], moving)
if all then return #ids end
if next(missing) then  -- resent: what the lost first sending moved sits at the head
  for _, raw in ipairs(redis.call("LRANGE", KEYS[2], 0, budget - 1)) do
    local i = missing[oz_packed_id(raw)]
    if i then status[i], missing[oz_packed_id(raw)] = 3, nil end
  end
end
return {status, looked, len, wait}
