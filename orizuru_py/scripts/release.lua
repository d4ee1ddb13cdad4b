-- Hand messages a consumer holds but will not handle back to the front of the queue,
-- uncounted (they were never handled). Messages no longer there are skipped.
-- KEYS[1] processing  list  the consumer's messages
-- KEYS[2] queue       list  waiting messages (next up at the right)
-- ARGV    the messages' exact bytes, oldest first
-- Returns how many were handed back.
local moved = 0
for i = #ARGV, 1, -1 do
  if redis.call("LREM", KEYS[1], -1, ARGV[i]) == 1 then
    redis.call("RPUSH", KEYS[2], ARGV[i])
    moved = moved + 1
  end
end
return moved
