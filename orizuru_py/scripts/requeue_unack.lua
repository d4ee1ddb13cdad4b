-- Return rejected messages to the back of the queue, one more delivery counted, or
-- to the dead-letter list once delivered max_attempts times.
-- KEYS[1] unack  list  rejected messages (oldest at the right)
-- KEYS[2] queue  list  waiting messages
-- KEYS[3] dead   list  dead-letter records
-- ARGV[1] max_attempts (0: no limit), ARGV[2] at most this many per call
-- Returns {requeued, dead-lettered}.
local requeued, dead = oz_return_all("RPOP", KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]),
                                     oz_now_ms(), "LPUSH", tonumber(ARGV[2]))
return {requeued, dead}
