-- KEYS: due zsets (their priority levels are read too, see redis.keys.ts). ARGV: start rank, count.
local start = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local keys = {}
for i = 1, #KEYS do
  keys[#keys + 1] = KEYS[i]
  for _, p in ipairs(redis.call('ZRANGE', KEYS[i] .. ':pl', 0, -1)) do keys[#keys + 1] = KEYS[i] .. ':p:' .. p end
end
local out, more = {}, 0
for _, key in ipairs(keys) do
  local got = redis.call('ZRANGE', key, start, start + n - 1)
  for _, m in ipairs(got) do out[#out + 1] = m end
  if #got >= n then more = 1 end
end
return {out, more}
