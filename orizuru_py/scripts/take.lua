-- Register the consumer, then move up to n waiting messages into its processing
-- list, oldest first, in one atomic step.
-- KEYS[1] consumers   zset  consumer name -> deadline (ms)
-- KEYS[2] queue       list  waiting messages (taken from the right)
-- KEYS[3] processing  list  this consumer's messages
-- ARGV[1] consumer name, ARGV[2] deadline (server ms, as the consumer reckons it from
-- its last heartbeat: no TIME call on the hot path), ARGV[3] n
-- Returns {1 if the consumer was not registered, {messages oldest first}, length of
-- the processing list}: a length above what the client holds means a reply was lost.
local fresh = redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
local taken = redis.call("RPOP", KEYS[2], ARGV[3])
if not taken then
  return {fresh, {}, redis.call("LLEN", KEYS[3])}
end
return {fresh, taken, oz_push_all("LPUSH", KEYS[3], taken)}
