local now = clock()
local n = tonumber(ARGV[1])
local items = {}
for i = 2, #KEYS do
  local got = redis.call('ZRANGE', KEYS[i], '-inf', fmt(now), 'BYSCORE', 'LIMIT', 0, n, 'WITHSCORES')
  for j = 1, #got, 2 do items[#items + 1] = {got[j], tonumber(got[j + 1]), i - 1} end
end
table.sort(items, function(a, b)
  if a[2] ~= b[2] then return a[2] < b[2] end
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[3] < b[3]
end)
local out, from, seen = {}, {}, {}
for _, it in ipairs(items) do
  if #out >= n then break end
  if not seen[it[1]] then
    seen[it[1]] = true
    out[#out + 1] = it[1]
    from[#from + 1] = it[3]
  end
end
local fresh = redis.call('ZRANGE', KEYS[1], 0, 0, 'BYSCORE', 'LIMIT', 0, ARGV[3])
for _, m in ipairs(fresh) do redis.call('ZADD', KEYS[1], 'XX', fmt(now), m) end
local orphans = redis.call('ZRANGE', KEYS[1], 1, fmt(now - tonumber(ARGV[2])), 'BYSCORE', 'LIMIT', 0, ARGV[3])
return {out, orphans, from}
