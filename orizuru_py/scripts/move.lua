-- Move one message from a processing list to the back of another list (reject: to the
-- unack list; push: to another queue in this slot). Nothing is pushed when the message
-- is no longer in the processing list, so a recovered message is never copied. A push
-- frees the unique key the message holds in this queue and forgets its cancellation
-- mark: it has left this queue.
-- KEYS[1] processing     list  the consumer's messages
-- KEYS[2] target         list  the unack list, or another queue's list
-- KEYS[3] unique         hash  unique key -> message id (this queue's)
-- KEYS[4] unique_expiry  zset  unique key -> when it lapses (ms)
-- KEYS[5] cancel         hash  message id -> cancellation state (this queue's)
-- ARGV[1] the message's id, packed (its length in one byte, then it), ARGV[2] "1" when
-- it leaves this queue, ARGV[3] at most this many elements looked at, ARGV[4] "1" to
-- move those looked at to the newest end (a pass of a search that goes on)
-- Returns 1 when moved, else {{0}, elements looked at, the list's length}.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list", KEYS[3], "hash", KEYS[4], "zset",
                          KEYS[5], "hash")
if bad then return redis.error_reply(bad) end
local taken, looked, len = oz_take_ids(KEYS[1], oz_ids(ARGV[1]), tonumber(ARGV[3]), false,
                                       ARGV[4] == "1")
local raw = taken[1]
if not raw then return {{0}, looked, len} end
redis.call("LPUSH", KEYS[2], raw)
if ARGV[2] == "1" then
  oz_free_unique(raw, KEYS[3], KEYS[4])
  redis.call("HDEL", KEYS[5], oz_id(raw))
end
return 1
