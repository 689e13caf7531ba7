-- KEYS: run, signals. ARGV: runId, token, then the names waited for.
local r, q = KEYS[1], KEYS[2]
local runId = ARGV[1]
local v = redis.call('HMGET', r, 'lt', 'wu')
if v[1] ~= ARGV[2] then return {0} end
local now, nowUs = clock()
local names = {}
for k = 3, #ARGV do names[#names + 1] = ARGV[k] end
local payload, name = popEarliest(q, names)
if payload then
  redis.call('HSET', r, 'st', ST.running, 'ni', payload, 'nis', name, 'ua', fmt(now))
  redis.call('HDEL', r, 'ws', 'wn', 'wu')
  bump(r, nowUs)
  return {1, 1, payload, 0, record(r, runId, nowUs), name}
end
local timedOut = 0
local wu = num(v[2])
if wu and wu <= now then timedOut = 1 end
return {1, 0, '', timedOut, record(r, runId, nowUs), ''}
