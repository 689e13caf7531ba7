local start = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local out, more = {}, 0
for i = 1, #KEYS do
  local got = redis.call('ZRANGE', KEYS[i], start, start + n - 1)
  for _, m in ipairs(got) do out[#out + 1] = m end
  if #got >= n then more = 1 end
end
return {out, more}
