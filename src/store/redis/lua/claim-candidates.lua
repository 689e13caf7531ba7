-- KEYS: kicks, flow entries (`...:fc`), due zsets. ARGV: count, graceMs, kickLimit, reserve (admissions that reserve
-- what they need: the first `reserve` candidates; later ones are only checked).
local FC = KEYS[2]
local IX = string.sub(FC, 1, #FC - 3)
local now = clock()
local n = tonumber(ARGV[1])
local reserve = tonumber(ARGV[4]) or n
-- the priority levels present, highest first (0: the due keys themselves, see redis.keys.ts)
local levels, known = {0}, {[0] = true}
for d = 3, #KEYS do
  for _, p in ipairs(redis.call('ZRANGE', KEYS[d] .. ':pl', 0, -1)) do
    local v = num(p)
    if v and not known[v] then
      known[v] = true
      levels[#levels + 1] = v
    end
  end
end
table.sort(levels, function(a, b) return a > b end)
-- Rules F1-F4: a run with limits is admitted here (see admitFlow in prelude.lua) or passed over; a run passed over
-- takes no place among the candidates (no head-of-line blocking), so the due keys are read further, a page at a time,
-- up to `budget` entries in all. A run passed over leaves the due range: by its rate limit until its window frees, by
-- its concurrency limit until a slot of its key is given back (parkRun in prelude.lua), so the next read goes further.
local out, from, tokens, seen, pushed, parked = {}, {}, {}, {}, {}, {}
local budget = 1000 + 10 * n
for _, p in ipairs(levels) do
  if #out >= n or budget <= 0 then break end
  local offset = 0
  while #out < n and budget > 0 do
    local items, more = {}, false
    for d = 3, #KEYS do
      local key = KEYS[d]
      if p ~= 0 then key = key .. ':p:' .. fmt(p) end
      local got = redis.call('ZRANGE', key, '-inf', fmt(now), 'BYSCORE', 'LIMIT', offset, n, 'WITHSCORES')
      for j = 1, #got, 2 do items[#items + 1] = {got[j], tonumber(got[j + 1]), d - 2, key} end
      if #got >= 2 * n then more = true end
    end
    table.sort(items, function(a, b)
      if a[2] ~= b[2] then return a[2] < b[2] end
      if a[1] ~= b[1] then return a[1] < b[1] end
      return a[3] < b[3]
    end)
    for _, it in ipairs(items) do
      if #out >= n then break end
      budget = budget - 1
      local id = it[1]
      if not seen[id] then
        seen[id] = true
        local entry = redis.call('HGET', FC, id)
        local token, freeAt = '', nil
        if entry then
          local flags, se, cc, rl = string.match(entry, '^([a-z]*)|(%d+)|([^|]*)|([^|]*)$')
          if flags and not string.find(flags, 'c', 1, true) then
            local needSlot = not string.find(flags, 'h', 1, true)
            local needBegin = string.find(flags, 'f', 1, true) ~= nil
            local why
            token, why, freeAt = admitFlow(IX, id, se, cc, rl, needSlot, needBegin, #out < reserve, now)
            if why == 'concurrency' then
              local _, climit, ckey = parseCc(cc)
              parked[#parked + 1] = {id, ckey, climit, KEYS[it[3] + 2], p, it[2]}
            elseif token and cc ~= '' then
              dropWaiter(IX, id)
            end
          elseif flags then
            token = se .. ':0:0'
          end
        end
        if token then
          out[#out + 1] = id
          from[#from + 1] = it[3]
          tokens[#tokens + 1] = token
        elseif freeAt then
          pushed[#pushed + 1] = {it[4], freeAt, id}
        end
      end
    end
    if not more then break end
    offset = offset + n
  end
end
for _, x in ipairs(pushed) do redis.call('ZADD', x[1], 'XX', x[2], x[3]) end
for k, x in ipairs(parked) do parkRun(IX, x[1], x[2], x[3], x[4], x[5], x[6], now, (k % 32) / 32) end
-- the read stopped at its budget and moved entries out of the due range: a next read goes further
local more = 0
if budget <= 0 and #pushed + #parked > 0 then more = 1 end
local fresh = redis.call('ZRANGE', KEYS[1], 0, 0, 'BYSCORE', 'LIMIT', 0, ARGV[3])
for _, m in ipairs(fresh) do redis.call('ZADD', KEYS[1], 'XX', fmt(now), m) end
local orphans = redis.call('ZRANGE', KEYS[1], 1, fmt(now - tonumber(ARGV[2])), 'BYSCORE', 'LIMIT', 0, ARGV[3])
return {out, orphans, from, tokens, more}
