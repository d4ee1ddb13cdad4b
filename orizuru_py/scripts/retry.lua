-- Move one message from a processing list to the delayed set, one delivery counted.
-- KEYS[1] processing  list  the consumer's messages
-- KEYS[2] delayed     zset  message -> due time (server ms)
-- ARGV[1] the message's id, packed (its length in one byte, then it), ARGV[2] delay (ms),
-- ARGV[3] at most this many elements looked at, ARGV[4] "1" to move those looked at to
-- the newest end (a pass of a search that goes on)
-- Returns 1 when moved, else {{0}, elements looked at, the list's length}.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "zset")
if bad then return redis.error_reply(bad) end
local taken, looked, len = oz_take_ids(KEYS[1], oz_ids(ARGV[1]), tonumber(ARGV[3]), false,
                                       ARGV[4] == "1")
local raw = taken[1]
if not raw then return {{0}, looked, len} end
local due = oz_now_ms() + tonumber(ARGV[2])
redis.call("ZADD", KEYS[2], due, oz_with_deliveries(raw, oz_deliveries(raw) + 1))
return 1
