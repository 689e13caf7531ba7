local now = clock()
local cutoff = '(' .. fmt(now - tonumber(ARGV[1]))
local out = {}
for i = 1, #KEYS do
  local got = redis.call('ZRANGE', KEYS[i], '-inf', cutoff, 'BYSCORE', 'LIMIT', 0, ARGV[2])
  for _, id in ipairs(got) do out[#out + 1] = id end
end
return out
