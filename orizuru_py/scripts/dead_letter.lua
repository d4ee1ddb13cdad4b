-- Move messages from a processing list to the dead-letter list, with a reason.
-- KEYS[1] processing  list  the consumer's messages
-- KEYS[2] dead        list  dead-letter records
-- ARGV[1] reason, ARGV[2..] the messages' exact bytes
-- Returns how many were moved (a message no longer there is skipped).
local now, moved = oz_now_ms(), 0
for i = 2, #ARGV do
  if redis.call("LREM", KEYS[1], -1, ARGV[i]) == 1 then
    redis.call("LPUSH", KEYS[2], oz_dead_record(ARGV[i], ARGV[1], now))
    moved = moved + 1
  end
end
return moved
