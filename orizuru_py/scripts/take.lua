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
-- Returns {1 if the consumer was not registered, 1 if paused, {messages oldest first},
-- the length of its lists, dest and processing (above what the client holds: a reply was
-- lost), cancellations pending,
-- {positions of the messages taken to dest rather than started}}.
local pending = redis.call("HLEN", KEYS[5])
local started = ARGV[4] == "started"
local bad = oz_wrong_type(KEYS[1], "zset", KEYS[2], "list", KEYS[3], "list")
if not bad and started then bad = oz_wrong_type(KEYS[9], "list") end
if not bad and pending > 0 then
  bad = oz_wrong_type(KEYS[6], "hash", KEYS[7], "zset", KEYS[8], "hash")
end
if bad then return redis.error_reply(bad) end
local fresh = redis.call("ZADD", KEYS[1], "GT", ARGV[2], ARGV[1])
if redis.call("EXISTS", KEYS[4]) == 1 then
  return {fresh, 1, {}, oz_held(KEYS[3], KEYS[9], redis.call("LLEN", KEYS[3])), pending, {}}
end
local tombs = redis.pcall("HGET", KEYS[8], "tombstones:queue")  -- an error: none counted
local taken = redis.call("RPOP", KEYS[2], ARGV[3])
if not taken then return {fresh, 0, {}, oz_held(KEYS[3], KEYS[9], redis.call("LLEN", KEYS[3])), pending, {}} end
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
  return {fresh, 0, taken, length, pending, {}}
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
return {fresh, 0, taken, length, pending, unstarted}
