local r, q, e = KEYS[1], KEYS[2], KEYS[3]
local runId = ARGV[1]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'ws')
if not v[1] then return {'not-found', '', record(r, runId, nowUs), 0} end
if TERMINAL[v[1]] then return {'not-active', v[1], record(r, runId, nowUs), 0} end
pushSignal(q, ARGV[2], ARGV[3])
if v[2] == ARGV[2] then
  redis.call('HSET', r, 'due', fmt(now))
  bump(r, nowUs)
  if v[1] == ST.waiting then publish(ARGV[4], 'ready', runId) end
end
-- ARGV[5], when given: the history event of the signal
local seq = 0
if ARGV[5] then seq = appendEvent(r, e, 5) end
return {'ok', v[1], record(r, runId, nowUs), seq}
