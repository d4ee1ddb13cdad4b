-- Move one message from a processing list to the back of another list (reject: to the
-- unack list; push: to another queue in this slot). Nothing is pushed when the message
-- is no longer in the processing list, so a recovered message is never copied. A push
-- frees the unique key the message holds in this queue: it has left it.
-- KEYS[1] processing     list  the consumer's messages
-- KEYS[2] target         list  the unack list, or another queue's list
-- KEYS[3] unique         hash  unique key -> message id (this queue's)
-- KEYS[4] unique_expiry  zset  unique key -> when it lapses (ms)
-- ARGV[1] the message's id, packed (its length in one byte, then it), ARGV[2] "1" to
-- free its unique key
-- Returns 1 when moved, 0 when it was no longer there.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list", KEYS[3], "hash", KEYS[4], "zset")
if bad then return redis.error_reply(bad) end
local raw = oz_remove(KEYS[1], oz_ids(ARGV[1]), 5000)[1]
if not raw then return 0 end
redis.call("LPUSH", KEYS[2], raw)
if ARGV[2] == "1" then oz_free_unique(raw, KEYS[3], KEYS[4]) end
return 1
