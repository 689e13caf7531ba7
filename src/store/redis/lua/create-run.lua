-- KEYS: run, steps, signals, events, signal ids: a replace deletes them all (not the run id's children list: its
-- children stay linked to it, see redis.keys.ts).
local r, s, q, e, ids = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local runId = ARGV[1]
local now, nowUs = clock()
local exists = redis.call('EXISTS', r) == 1
local leased = ARGV[10] == '1'
local leaseMs = num(ARGV[11])
if leased and not leaseMs then return redis.error_reply('cairn: createRun: leaseMs must be an integer') end
local eventCount = num(ARGV[14])
-- ARGV[15], ARGV[16]: whether the run has a pipeline fingerprint, and the fingerprint; the events follow
if not eventCount or eventCount < 0 or 16 + eventCount > #ARGV then
  return redis.error_reply('cairn: createRun: the event count must be an integer within the arguments')
end
local firstStep = 17 + eventCount
-- The options section, when the run has any (after the events): `opt`, priority ('' for 0), cc, rl (see
-- redis.fields.ts; '' none), due kind ('' now, `in` a delay, `at` an instant), due value (ms), admission ('' none: see
-- flowClaim in prelude.lua), debounce ('' none, `own`: the key's run is this call's, `fold`: another call's), the
-- debounce key's first time (ms), delay (ms) and max delay (ms, '' none).
local o = nil
if ARGV[firstStep] == 'opt' then
  if firstStep + 10 > #ARGV then return redis.error_reply('cairn: createRun: options without their values') end
  local a = firstStep
  o = {pri = ARGV[a + 1], cc = ARGV[a + 2], rl = ARGV[a + 3], dueKind = ARGV[a + 4], dueValue = ARGV[a + 5],
    adm = ARGV[a + 6], db = ARGV[a + 7], dbFirst = ARGV[a + 8], dbDelay = ARGV[a + 9], dbMax = ARGV[a + 10]}
  if o.pri ~= '' and not num(o.pri) then return redis.error_reply('cairn: createRun: the priority must be an integer') end
  if o.dueKind ~= '' and not num(o.dueValue) then return redis.error_reply('cairn: createRun: the due time must be an integer') end
  if o.db ~= '' and not (num(o.dbFirst) and num(o.dbDelay) and (o.dbMax == '' or num(o.dbMax))) then
    return redis.error_reply('cairn: createRun: the debounce times must be integers')
  end
  firstStep = firstStep + 11
end
if (#ARGV - firstStep + 1) % 2 ~= 0 then return redis.error_reply('cairn: createRun: a step without its record') end
for i = firstStep, #ARGV, 2 do
  if not num(ARGV[i]) then return redis.error_reply('cairn: createRun: a step index must be an integer') end
end
local due = now
if o and o.dueKind == 'in' then due = now + num(o.dueValue) elseif o and o.dueKind == 'at' then due = num(o.dueValue) end
-- Rule D, in the slot of the key's run (`runId`): fold this call's input and state into it while it is pending and was
-- never claimed (no step entry, no lease), due in the delay but no later than the key's first time + max delay; a run
-- that cannot take a fold any more is `stale` (the store points the key at a new run). A key's run that does not exist
-- is created here, with this call's values, while the key's first time is recent (its creator has not written it yet,
-- or died first); past LIM.debounceGraceMs it is gone for good (purged): `stale`, by its creator too.
local debounced = ''
if o and o.db ~= '' then
  local cap = num(o.dbMax)
  due = now + num(o.dbDelay)
  if o.db == 'fold' and cap and num(o.dbFirst) + cap < due then due = num(o.dbFirst) + cap end
  leased = false
  if not exists and now - num(o.dbFirst) > LIM.debounceGraceMs then
    return {0, snapshot(r, s), record(r, runId, nowUs), '', 0, false, 'stale'}
  end
  if exists then
    if o.db == 'own' then return {0, snapshot(r, s), record(r, runId, nowUs), '', 0, false, 'own'} end
    local v = redis.call('HMGET', r, 'st', 'lt')
    if v[1] == ST.pending and not v[2] and redis.call('HLEN', s) == 0 then
      redis.call('HSET', r, 'in', ARGV[4], 'state', ARGV[5], 'due', fmt(due), 'ua', fmt(now))
      bump(r, nowUs)
      return {0, snapshot(r, s), record(r, runId, nowUs), '', 0, false, 'folded'}
    end
    return {0, snapshot(r, s), record(r, runId, nowUs), '', 0, false, 'stale'}
  end
  debounced = o.db == 'own' and 'created' or 'folded'
end
if exists and ARGV[8] == 'keep' then
  return {0, snapshot(r, s), record(r, runId, nowUs), '', 0, false, ''}
end
-- Rule F4: leased at once only when due now and, for a run with limits, admitted by the index slot beforehand (a new
-- run only: a replaced one is created pending, and claimed like any other)
local cc, rl = '', ''
if o then cc, rl = o.cc, o.rl end
-- Admission `new` (when one node holds every key: KEYS[6], KEYS[7] are the index slot's flow entries and meta): what
-- FLOW_INDEX `new` does, in this script, so a start with limits is one script. As there, only a new run that would be
-- leased at once gets one (an id the index knows gets none), and it takes its slot and begin in the index now.
if o and o.adm == 'new' then
  o.adm = ''
  local FC, M = KEYS[6], KEYS[7]
  if leased and due <= now and not exists and ARGV[8] == 'keep' and (cc ~= '' or rl ~= '') and FC and M then
    o.adm = admitNew(FC, M, runId, cc, rl, now)
  end
end
local admSlot, admBegin = nil, nil
if o then admSlot, admBegin = string.match(o.adm, '^%d+:([01]):([01])$') end
local wanted = leased
if leased and due > now then leased = false end
if leased and (cc ~= '' or rl ~= '') then
  if exists or not admSlot or (cc ~= '' and admSlot ~= '1') or (rl ~= '' and admBegin ~= '1') then leased = false end
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
  'pr', '0', 'due', fmt(due), 'ca', ts, 'ua', ts, 'iv', fmt(n), 'gen', fmt(gen))
if ARGV[6] == '1' then redis.call('HSET', r, 'cur', ARGV[7]) end
if ARGV[15] == '1' then redis.call('HSET', r, 'pl', ARGV[16]) end
if leased then redis.call('HSET', r, 'lo', ARGV[9], 'lt', ARGV[12], 'le', fmt(now + leaseMs)) end
if o then
  if o.pri ~= '' and num(o.pri) ~= 0 then redis.call('HSET', r, 'pri', o.pri) end
  if cc ~= '' then redis.call('HSET', r, 'cc', cc) end
  if rl ~= '' then redis.call('HSET', r, 'rl', rl) end
  -- a run with limits starts its first slot epoch; an admitted slot is held (the index holds it for this run id)
  if cc ~= '' or rl ~= '' then redis.call('HSET', r, 'se', fmt(n)) end
  if cc ~= '' and not exists and admSlot == '1' then redis.call('HSET', r, 'sh', '1') end
end
-- a run not leased although the caller asked for it starts without the step the caller would have run (`running`)
local k = 0
for i = firstStep, #ARGV, 2 do
  local keep = true
  if wanted and not leased then
    local ok, step = pcall(cjson.decode, ARGV[i + 1])
    keep = not (ok and type(step) == 'table' and step.status == ST.running)
  end
  if keep then
    if wanted and not leased then
      redis.call('HSET', s, fmt(k), ARGV[i + 1])
      k = k + 1
    else
      redis.call('HSET', s, ARGV[i], ARGV[i + 1])
    end
  end
end
-- a new run's history starts at seq 1 (a replaced run's was deleted above)
local lastSeq = 0
if eventCount > 0 then
  local at = {}
  for j = 1, eventCount do at[j] = 16 + j end
  lastSeq = appendEvents(e, 0, at)
  redis.call('HSET', r, 'hs', fmt(lastSeq))
end
if exists then publish(ARGV[13], 'control', runId) end
if not leased and due <= now then publish(ARGV[13], 'ready', runId) end
return {1, snapshot(r, s), record(r, runId, nowUs), prevWf, lastSeq, prevVer, debounced}
