-- Push due ticks of periodic entries, each with the next due time a client reckoned. A
-- tick is pushed only while its entry is still due at the time the client read, and that
-- time moves forward in the same step (a compare-and-set): however many clients race
-- over one tick, exactly one pushes it, and a late one changes nothing.
-- KEYS[1] schedule_due  zset  entry name -> when it is next due (server ms)
-- KEYS[2] queue         list  waiting messages
-- ARGV per tick: the entry's name, the due time read, the next due time (later than
-- that; "": none, the entry stays without one), the message ("": push none, an entry
-- whose stored cadence or payload is unreadable)
-- Returns how many messages were pushed.
local bad = oz_wrong_type(KEYS[1], "zset", KEYS[2], "list")
if bad then return redis.error_reply(bad) end
local now = oz_now_ms()
local pushed = {}
for i = 1, #ARGV, 4 do
  local name, due, following, raw = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local score, next_due = tonumber(redis.call("ZSCORE", KEYS[1], name) or ""), tonumber(following)
  local ahead = following == "" or (next_due and due and next_due > due)
  if score and score == due and due <= now and ahead then
    if following == "" then
      redis.call("ZREM", KEYS[1], name)
    else
      redis.call("ZADD", KEYS[1], "XX", following, name)
    end
    if raw ~= "" then pushed[#pushed + 1] = raw end
  end
end
oz_push_all("LPUSH", KEYS[2], pushed)
return #pushed
