-- Move one message from a processing list to the back of another list
-- (reject: to the unack list; push: to another queue). Nothing is pushed when the
-- message is no longer in the processing list, so a recovered message is never copied.
-- KEYS[1] processing  list  the consumer's messages
-- KEYS[2] target      list  the unack list, or another queue's list
-- ARGV[1] the message's exact bytes
-- Returns 1 when moved, 0 when it was no longer there.
if redis.call("LREM", KEYS[1], -1, ARGV[1]) == 0 then return 0 end
redis.call("LPUSH", KEYS[2], ARGV[1])
return 1
