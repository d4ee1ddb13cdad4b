-- The periodic entries of a queue that are due, for a client to reckon when each is due
-- next (Lua cannot read a cron expression) and push it with schedule_push.lua. Reads only.
-- KEYS[1] schedule          hash  entry name -> its cadence (msgpack)
-- KEYS[2] schedule_payload  hash  entry name -> its payload, encoded
-- KEYS[3] schedule_due      zset  entry name -> when it is next due (server ms)
-- ARGV[1] at most this many entries
-- Returns the server's time (ms); when the next entry not returned is due (-1: none; the
-- server's time when more are due now); then per due entry its name, due time, cadence
-- and payload (false where missing).
local now = oz_now_ms()
local limit = tonumber(ARGV[1])
local due = redis.call("ZRANGEBYSCORE", KEYS[3], "-inf", now, "WITHSCORES", "LIMIT", 0, limit)
local upcoming = -1
if #due == 2 * limit then
  upcoming = now
else
  local after = redis.call("ZRANGEBYSCORE", KEYS[3], "(" .. now, "+inf", "WITHSCORES", "LIMIT", 0, 1)
  if #after == 2 then upcoming = tonumber(after[2]) end
end
local out = {now, upcoming}
for i = 1, #due, 2 do
  local name = due[i]
  out[#out + 1] = name
  out[#out + 1] = tonumber(due[i + 1])
  out[#out + 1] = redis.call("HGET", KEYS[1], name)
  out[#out + 1] = redis.call("HGET", KEYS[2], name)
end
return out
