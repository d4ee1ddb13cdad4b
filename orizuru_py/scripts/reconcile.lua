-- Make a consumer's list agree with what the consumer knows it holds, one window at a
-- time from the oldest end, after the consumer read that window: messages it does not
-- know go back to the queue, those it knows move to the newest end (when the list is
-- longer than the window: the next window is then the next elements). Elements that
-- came into view since the read (others were settled meanwhile) are left where they
-- are, for the next window.
-- KEYS[1] list           list  the consumer's prefetch or processing list
-- KEYS[2] queue          list  waiting messages (next up at the right)
-- KEYS[3] unack          list  rejected messages, returned by the GC with a delivery counted
-- ARGV[1] the ids it knows, packed (each: its length in one byte, then it); ARGV[2] the ids
-- no application code saw (a move whose reply was lost): to the front of the queue,
-- uncounted; ARGV[3] the ids handed out whose settling was given up or cancelled in
-- flight: to the unack list, this delivery counted; ARGV[4] the window's size
-- Returns {elements sorted, handed back, returned counted}.
local bad = oz_wrong_type(KEYS[1], "list", KEYS[2], "list", KEYS[3], "list")
if bad then return redis.error_reply(bad) end
local want = {}
for kind = 1, 3 do
  for _, id in ipairs(oz_ids(ARGV[kind])) do
    local slots = want[id]
    if not slots then slots = {0, 0, 0}; want[id] = slots end
    slots[kind] = slots[kind] + 1
  end
end
local len = redis.call("LLEN", KEYS[1])
local n = math.min(len, tonumber(ARGV[4]))
if n == 0 then return {0, 0, 0} end
local window = redis.call("LRANGE", KEYS[1], -n, -1)
local known, stay, rest, back, counted = {}, {}, {}, {}, {}
for j = n, 1, -1 do  -- oldest first
  local raw = window[j]
  local slots, kind = want[oz_packed_id(raw)], 0
  if slots then
    for k = 1, 3 do
      if kind == 0 and slots[k] > 0 then kind = k; slots[k] = slots[k] - 1 end
    end
  end
  if kind == 2 then back[#back + 1] = raw
  elseif kind == 3 then counted[#counted + 1] = raw
  else
    rest[#rest + 1] = raw
    if kind == 1 then known[#known + 1] = raw else stay[#stay + 1] = raw end
  end
end
local sorted = #known + #back + #counted
if #back + #counted == 0 and (n == len or #known == 0) then return {sorted, 0, 0} end
redis.call("LTRIM", KEYS[1], 0, -n - 1)
local function reversed(t)
  local r = {}
  for j = #t, 1, -1 do r[#r + 1] = t[j] end
  return r
end
if n == len then  -- the whole list: nothing to move on to, order kept
  oz_push_all("RPUSH", KEYS[1], reversed(rest))
else
  oz_push_all("LPUSH", KEYS[1], known)
  oz_push_all("RPUSH", KEYS[1], reversed(stay))
end
oz_push_all("RPUSH", KEYS[2], reversed(back))
oz_push_all("LPUSH", KEYS[3], counted)
return {sorted, #back, #counted}
