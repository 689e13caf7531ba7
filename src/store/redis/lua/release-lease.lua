local r = KEYS[1]
local runId = ARGV[1]
local v = redis.call('HMGET', r, 'lt', 'st', 'cc')
if v[1] ~= ARGV[2] then return {0} end
local now, nowUs = clock()
redis.call('HDEL', r, 'lo', 'lt', 'le')
local st = v[2]
if DUE_ON_RELEASE[st] then
  redis.call('HSET', r, 'due', fmt(now))
end
redis.call('HSET', r, 'ua', fmt(now))
bump(r, nowUs)
-- rule F2: with scope `step`, a released lease gives the slot back (a new slot epoch: see redis.keys.ts)
if parseCc(v[3]) == 'step' then
  redis.call('HDEL', r, 'sh')
  redis.call('HSET', r, 'se', redis.call('HGET', r, 'iv'))
end
publish(ARGV[3], 'ready', runId)
return {1, record(r, runId, nowUs)}
