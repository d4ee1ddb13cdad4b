-- Return rejected messages to the back of the queue, one more delivery counted, or
-- to the dead-letter list once delivered max_attempts times.
-- KEYS[1] unack  list  rejected messages (oldest at the right)
-- KEYS[2] queue  list  waiting messages
-- KEYS[3] dead   list  dead-letter records
-- ARGV[1] max_attempts (0: no limit), ARGV[2] at most this many per call
-- Returns {requeued, dead-lettered}.
local now, max_attempts = oz_now_ms(), tonumber(ARGV[1])
local requeued, dead = 0, 0
for _ = 1, tonumber(ARGV[2]) do
  local raw = redis.call("RPOP", KEYS[1])
  if not raw then break end
  if oz_return(raw, KEYS[2], KEYS[3], max_attempts, now, "LPUSH") == 1 then
    requeued = requeued + 1
  else
    dead = dead + 1
  end
end
return {requeued, dead}
