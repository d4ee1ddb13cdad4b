-- The first step of a cancellation: mark the message, so every take, start or blocking
-- take that meets it from now on drops it instead of delivering it.
-- KEYS[1] cancel  hash  message id -> state .. marked ms: "w" a cancel() is looking for
--                       it, "d" dropped while it looked, "p" it waits unstarted in a
--                       worker's hand, "f" it was in flight when cancelled
-- ARGV[1] message id
-- Returns "" when newly marked, else the state already there.
local bad = oz_wrong_type(KEYS[1], "hash")
if bad then return redis.error_reply(bad) end
if redis.call("HSETNX", KEYS[1], ARGV[1], "w" .. oz_now_ms()) == 1 then return "" end
return string.sub(redis.call("HGET", KEYS[1], ARGV[1]), 1, 1)
