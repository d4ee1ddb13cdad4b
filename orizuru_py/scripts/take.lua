-- Register the consumer, then move up to n waiting messages into its list, oldest
-- first, in one atomic step. Nothing is taken while the queue is paused; messages
-- with a pending cancellation are dropped instead of taken. A worker whose handler is
-- quick takes "started": straight into its processing list (the batch is one chunk),
-- except messages delivered before (and bytes that are no message), which go to its
-- prefetch list to start alone.
-- KEYS[1] consumers      zset    consumer id -> deadline (ms)
-- KEYS[2] queue          list    waiting messages (taken from the right)
-- KEYS[3] dest           list    the consumer's prefetch (a worker) or processing list
-- KEYS[4] paused         string  present while the queue is paused
-- KEYS[5] cancel         hash    message id -> cancellation state
-- KEYS[6] unique         hash    unique key -> message id
-- KEYS[7] unique_expiry  zset    unique key -> when it lapses (ms)
-- KEYS[8] counts         hash    totals (cancelled, tombstones:queue)
-- KEYS[9] processing     list    the consumer's processing list (for "started")
-- ARGV[1] consumer id, ARGV[2] deadline (server ms as the consumer reckons it from its
-- last beat: no TIME call here; it only ever raises the registered one), ARGV[3] n,
-- ARGV[4] "started" for a quick worker's take, else ""
-- Returns one flat array (each table in a reply costs the server about a microsecond):
-- {1 if the consumer was not registered, 1 if paused, the length of its lists, dest and
-- processing (above what the client holds: a reply was lost), cancellations pending, u,
-- the u positions of the messages taken to dest rather than started, the messages
-- taken, oldest first}.
local function reply(fresh, paused, length, pending, unstarted, taken)
  local out = {fresh, paused, length, pending, #unstarted}
  for _, i in ipairs(unstarted) do out[#out + 1] = i end
  for _, raw in ipairs(taken) do out[#out + 1] = raw end
  return out
end
local pending = redis.call("HLEN", KEYS[5])
local started = ARGV[4] == "started"
if ARGV[3] == "1" and pending == 0 then
  -- One message and no cancellation pending (a next(); a worker whose handler is slow):
  -- the common case, for a quarter less server time. LMOVE checks both lists' types
  -- before it moves, every later write or read that a wrong type refuses undoes the
  -- move, and the registration comes last, so no key's type is read first and a take
  -- that fails still changes nothing.
  local paused = redis.call("EXISTS", KEYS[4])
  local into, raw = started and KEYS[9] or KEYS[3], false
  local function refused(err, key, kind)  -- undo the move; the error names the key
    if raw then redis.call("LMOVE", into, KEYS[2], "LEFT", "RIGHT") end
    return redis.error_reply(oz_wrong_type(key, kind) or err.err)
  end
  if paused == 0 then
    local moved = redis.pcall("LMOVE", KEYS[2], into, "RIGHT", "LEFT")
    if type(moved) == "table" then
      return redis.error_reply(oz_wrong_type(KEYS[2], "list", into, "list") or moved.err)
    end
    raw = moved
  end
  if raw and started and oz_deliveries(raw) ~= 0 then  -- it starts alone: to the prefetch
    local moved = redis.pcall("LMOVE", into, KEYS[3], "LEFT", "LEFT")
    if type(moved) == "table" then return refused(moved, KEYS[3], "list") end
    into = KEYS[3]
  end
  local length = redis.pcall("LLEN", KEYS[3])
  if type(length) == "table" then return refused(length, KEYS[3], "list") end
  if KEYS[9] ~= KEYS[3] then  -- a worker: its processing list too
    local more = redis.pcall("LLEN", KEYS[9])
    if type(more) == "table" then return refused(more, KEYS[9], "list") end
    length = length + more
  end
  local fresh = redis.pcall("ZADD", KEYS[1], "GT", ARGV[2], ARGV[1])
  if type(fresh) == "table" then return refused(fresh, KEYS[1], "zset") end
  if raw and oz_is_tombstone(raw) then  -- a deleted message's mark, if any are counted:
    local tombs = redis.pcall("HGET", KEYS[8], "tombstones:queue")  -- else a pusher's garbage,
    if type(tombs) == "string" and tonumber(tombs) > 0 then         -- dead-lettered as such
      redis.call("LPOP", into)
      redis.call("HINCRBY", KEYS[8], "tombstones:queue", -1)
      raw, length = false, length - 1
    end
  end
  if not raw then return {fresh, paused, length, 0, 0} end
  if into == KEYS[3] and started then return {fresh, paused, length, 0, 1, 1, raw} end
  return {fresh, paused, length, 0, 0, raw}
end
local bad = oz_wrong_type(KEYS[1], "zset", KEYS[2], "list", KEYS[3], "list")
if not bad and started then bad = oz_wrong_type(KEYS[9], "list") end
if not bad and pending > 0 then
  bad = oz_wrong_type(KEYS[6], "hash", KEYS[7], "zset", KEYS[8], "hash")
end
if bad then return redis.error_reply(bad) end
local fresh = redis.call("ZADD", KEYS[1], "GT", ARGV[2], ARGV[1])
if redis.call("EXISTS", KEYS[4]) == 1 then
  return reply(fresh, 1, oz_held(KEYS[3], KEYS[9], redis.call("LLEN", KEYS[3])), pending, {}, {})
end
local tombs = redis.pcall("HGET", KEYS[8], "tombstones:queue")  -- an error: none counted
local taken = redis.call("RPOP", KEYS[2], ARGV[3])
if not taken then
  return reply(fresh, 0, oz_held(KEYS[3], KEYS[9], redis.call("LLEN", KEYS[3])), pending, {}, {})
end
if type(tombs) == "string" and tonumber(tombs) > 0 then
  local kept = {}
  for _, raw in ipairs(taken) do
    if oz_is_tombstone(raw) then redis.call("HINCRBY", KEYS[8], "tombstones:queue", -1)
    else kept[#kept + 1] = raw end
  end
  taken = kept
end
if pending > 0 then taken = oz_drop_cancelled(taken, KEYS[5], KEYS[6], KEYS[7], KEYS[8]) end
if not started then
  local length = oz_held(KEYS[3], KEYS[9], oz_push_all("LPUSH", KEYS[3], taken))
  return reply(fresh, 0, length, pending, {}, taken)
end
local now, later, unstarted = {}, {}, {}
for i, raw in ipairs(taken) do
  local deliveries = oz_deliveries(raw)
  if deliveries ~= 0 then  -- delivered before (it starts alone), or no message at all
    later[#later + 1] = raw
    unstarted[#unstarted + 1] = i
  else
    now[#now + 1] = raw
  end
end
oz_push_all("LPUSH", KEYS[9], now)
local length = oz_held(KEYS[3], KEYS[9], oz_push_all("LPUSH", KEYS[3], later))
return reply(fresh, 0, length, pending, unstarted, taken)
