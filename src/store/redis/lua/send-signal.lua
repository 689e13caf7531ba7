-- KEYS: run, signals, events, signal ids. ARGV: runId, name, payload, channel, hasId ('1'/'0'), id, maxQueued ('': no
-- bound), then the history event (optional).
local r, q, e, ids = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local runId = ARGV[1]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'wn', 'ws')
if not v[1] then return {'not-found', '', record(r, runId, nowUs), 0} end
-- a repeated id (kept with the run, consumed or not, even once it ended) stores nothing
if ARGV[5] == '1' and redis.call('SISMEMBER', ids, ARGV[6]) == 1 then return {'noop', v[1], record(r, runId, nowUs), 0} end
if TERMINAL[v[1]] then return {'not-active', v[1], record(r, runId, nowUs), 0} end
-- the bound on queued signals (all names): a full queue stores nothing (no signal, no id, no event)
local count = nil
local maxQueued = tonumber(ARGV[7])
if maxQueued then
  count = queuedCount(q)
  if count >= maxQueued then return {'full', v[1], record(r, runId, nowUs), 0} end
end
if ARGV[5] == '1' then redis.call('SADD', ids, ARGV[6]) end
pushSignal(q, ARGV[2], ARGV[3], count)
local waits = false
if v[2] or v[3] then
  for _, name in ipairs(waitNames(v[2], v[3])) do if name == ARGV[2] then waits = true end end
end
if waits then
  redis.call('HSET', r, 'due', fmt(now))
  bump(r, nowUs)
  if v[1] == ST.waiting then publish(ARGV[4], 'ready', runId) end
end
-- ARGV[8], when given: the history event of the signal
local seq = 0
if ARGV[8] then seq = appendEvent(r, e, 8) end
return {'ok', v[1], record(r, runId, nowUs), seq}
