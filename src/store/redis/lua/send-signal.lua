local r, q = KEYS[1], KEYS[2]
local runId = ARGV[1]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'ws')
if not v[1] then return {'not-found', '', record(r, runId, nowUs)} end
if TERMINAL[v[1]] then return {'not-active', v[1], record(r, runId, nowUs)} end
pushSignal(q, ARGV[2], ARGV[3])
if v[2] == ARGV[2] then
  redis.call('HSET', r, 'due', fmt(now))
  bump(r, nowUs)
  if v[1] == ST.waiting then publish(ARGV[4], 'ready', runId) end
end
return {'ok', v[1], record(r, runId, nowUs)}
