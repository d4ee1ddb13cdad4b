-- The last step of a cancellation that did not find the message waiting or delayed:
-- decide from where it was seen, and from whether a take dropped it meanwhile.
-- KEYS[1] cancel  hash  message id -> state .. marked ms (see cancel_mark.lua)
-- ARGV[1] message id, ARGV[2] where it was seen: "processing" (in a handler: not
-- cancelled, the mark stays so its guard shows it), "prefetch" (unstarted in a worker's
-- hand: the worker drops it), or "" (nowhere)
-- Returns 1 when the message will never be delivered, 0 when it could not be cancelled.
local bad = oz_wrong_type(KEYS[1], "hash")
if bad then return redis.error_reply(bad) end
local state = redis.call("HGET", KEYS[1], ARGV[1])
if not state then return 0 end
local kind, since = string.sub(state, 1, 1), string.sub(state, 2)
if kind == "d" then
  redis.call("HDEL", KEYS[1], ARGV[1])
  return 1
end
if kind == "p" then return 1 end
if kind == "f" then return 0 end
if ARGV[2] == "processing" then
  redis.call("HSET", KEYS[1], ARGV[1], "f" .. since)
  return 0
end
if ARGV[2] == "prefetch" then
  redis.call("HSET", KEYS[1], ARGV[1], "p" .. since)
  return 1
end
redis.call("HDEL", KEYS[1], ARGV[1])
return 0
