-- KEYS: run, steps, signals, events, signal ids: a replace deletes them all (not the run id's children list: its
-- children stay linked to it, see redis.keys.ts).
local r, s, q, e, ids = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local runId = ARGV[1]
local now, nowUs = clock()
local exists = redis.call('EXISTS', r) == 1
if exists and ARGV[8] == 'keep' then
  return {0, snapshot(r, s), record(r, runId, nowUs), '', 0, false}
end
local leased = ARGV[10] == '1'
local leaseMs = num(ARGV[11])
if leased and not leaseMs then return redis.error_reply('cairn: createRun: leaseMs must be an integer') end
local eventCount = num(ARGV[14])
-- ARGV[15], ARGV[16]: whether the run has a pipeline fingerprint, and the fingerprint; the events follow
if not eventCount or eventCount < 0 or 16 + eventCount > #ARGV then
  return redis.error_reply('cairn: createRun: the event count must be an integer within the arguments')
end
local firstStep = 17 + eventCount
if (#ARGV - firstStep + 1) % 2 ~= 0 then return redis.error_reply('cairn: createRun: a step without its record') end
for i = firstStep, #ARGV, 2 do
  if not num(ARGV[i]) then return redis.error_reply('cairn: createRun: a step index must be an integer') end
end
local iv, gen, prevWf, prevVer = 0, 1, '', false
if exists then
  local p = redis.call('HMGET', r, 'iv', 'wf', 'gen', 'ver')
  iv = num(p[1]) or 0
  prevWf = p[2] or ''
  prevVer = p[4] or ''
  local g = num(p[3])
  if g and g > 1 then gen = g end
  gen = gen + 1
  redis.call('DEL', r, s, q, e, ids)
else
  -- NOTE: leftovers of a run whose keys expired (or were deleted by hand) one by one
  redis.call('DEL', s, q, e, ids)
end
local n = iv + 1
if nowUs > n then n = nowUs end
local ts = fmt(now)
local st = ST.pending
if leased then st = ST.running end
redis.call('HSET', r, 'id', runId, 'wf', ARGV[2], 'ver', ARGV[3], 'st', st, 'in', ARGV[4], 'state', ARGV[5],
  'pr', '0', 'due', ts, 'ca', ts, 'ua', ts, 'iv', fmt(n), 'gen', fmt(gen))
if ARGV[6] == '1' then redis.call('HSET', r, 'cur', ARGV[7]) end
if ARGV[15] == '1' then redis.call('HSET', r, 'pl', ARGV[16]) end
if leased then redis.call('HSET', r, 'lo', ARGV[9], 'lt', ARGV[12], 'le', fmt(now + leaseMs)) end
for i = firstStep, #ARGV, 2 do redis.call('HSET', s, ARGV[i], ARGV[i + 1]) end
-- a new run's history starts at seq 1 (a replaced run's was deleted above)
local lastSeq = 0
if eventCount > 0 then
  local at = {}
  for k = 1, eventCount do at[k] = 16 + k end
  lastSeq = appendEvents(e, 0, at)
  redis.call('HSET', r, 'hs', fmt(lastSeq))
end
if exists then publish(ARGV[13], 'control', runId) end
if not leased then publish(ARGV[13], 'ready', runId) end
return {1, snapshot(r, s), record(r, runId, nowUs), prevWf, lastSeq, prevVer}
