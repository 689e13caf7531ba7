import { createHash } from 'node:crypto';

/**
 * Lua scripts of the Redis store. Every state change of a run is one of the per-run scripts below: it touches only
 * that run's keys (one hash tag, so one Cluster slot), reads the clock with `TIME`, and returns the run's
 * *index record* so the client can update the global indexes (see `APPLY_INDEX`).
 *
 * Run hash fields: `id` run id, `wf` workflow, `ver` version, `st` status, `in` input, `out` output, `err` error
 * (JSON), `cur` current step, `state`, `ni` next input, `ws` wait signal, `wu` wait until (ms), `rs` resume status,
 * `cr` cancel requested (`1` compensate / `0` not), `pr` pause requested (`1`/`0`), `due` due at (ms), `lo` lease
 * owner, `lt` lease token, `le` lease expires at (ms), `ca` created at, `ua` updated at, `fa` finished at (ms),
 * `iv` version of the run's index record (strictly increasing, at least the store clock in microseconds), `gen`
 * generation of the run id (absent: 1).
 *
 * An index record is `{runId, exists, iv, workflow, status, createdAt, claimAt, finishedAt}`, all strings; `claimAt`
 * is the earliest time the run may be claimed (max of `due` and the lease expiry) or -1 when it is not due.
 *
 * Damaged fields (written by hand or by a bug) never make a script fail halfway: numbers are read with `num`, which
 * gives nil for anything but a plain integer, and every script checks its arguments before its first write. A run
 * whose `st` is not a status is never claimed (parked); a damaged `due` or lease expiry makes a claimable run due, so
 * that a worker claims it, sees the damage the decoder reports and fails the run.
 */
export interface LuaScript {
  name: string;
  lua: string;
  sha: string;
}

function script(name: string, body: string): LuaScript {
  const lua = `-- cairn:${name}\n${PRELUDE}\n${body}`;
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const PRELUDE = `
local CLAIMABLE = {pending = true, running = true, sleeping = true, waiting = true, compensating = true}
local TERMINAL = {completed = true, compensated = true, failed = true, cancelled = true}
local function fmt(n) return string.format('%d', n) end
local function num(v)
  if type(v) ~= 'string' then return nil end
  local digits = string.match(v, '^%-?(%d+)$')
  if not digits or #digits > 16 then return nil end
  return tonumber(v)
end
local function clock()
  local t = redis.call('TIME')
  local s, us = tonumber(t[1]), tonumber(t[2])
  return s * 1000 + math.floor(us / 1000), s * 1000000 + us
end
local function claimAt(st, due, le)
  if not st or not CLAIMABLE[st] or not due then return -1 end
  local d = num(due) or 0
  local l = num(le)
  if l and l > d then return l end
  return d
end
local function bump(run, nowUs)
  local n = (num(redis.call('HGET', run, 'iv')) or 0) + 1
  if nowUs > n then n = nowUs end
  redis.call('HSET', run, 'iv', fmt(n))
end
local function record(run, runId, nowUs)
  local v = redis.call('HMGET', run, 'wf', 'st', 'ca', 'due', 'le', 'fa', 'iv')
  if not v[2] and redis.call('EXISTS', run) == 0 then return {runId, '0', fmt(nowUs), '', '', '-1', '-1', '-1'} end
  local ca, fa = num(v[3]), num(v[6])
  return {runId, '1', fmt(num(v[7]) or 0), v[1] or '', v[2] or '', ca and fmt(ca) or '', fmt(claimAt(v[2], v[4], v[5])),
    fa and fmt(fa) or '-1'}
end
local function snapshot(run, steps)
  return {redis.call('HGETALL', run), redis.call('HGETALL', steps)}
end
local function publish(channel, kind, runId)
  redis.call('PUBLISH', channel, cjson.encode({type = kind, runId = runId}))
end
local function popSignal(q, name)
  local h = num(redis.call('HGET', q, 'h:' .. name)) or 0
  local t = num(redis.call('HGET', q, 't:' .. name)) or 0
  if h >= t then return nil end
  h = h + 1
  local field = 'v:' .. fmt(h) .. ':' .. name
  local payload = redis.call('HGET', q, field)
  redis.call('HDEL', q, field)
  if h >= t then redis.call('HDEL', q, 'h:' .. name, 't:' .. name) else redis.call('HSET', q, 'h:' .. name, fmt(h)) end
  if payload then return payload end
  return nil
end
local function pushSignal(q, name, payload)
  local t = (num(redis.call('HGET', q, 't:' .. name)) or 0) + 1
  redis.call('HSET', q, 't:' .. name, fmt(t), 'v:' .. fmt(t) .. ':' .. name, payload)
end
`;

/**
 * KEYS: run, steps, signals. ARGV: runId, workflow, version, input, state, hasCurrentStep, currentStep,
 * onConflict, leaseOwner, hasLease, leaseMs, leaseToken, channel, then (stepIndex, stepJson) pairs.
 * Returns {created, snapshot, record, previousWorkflow}: the snapshot is the run as this call left it (the created
 * run with its lease, or the kept one). A replacement gets the replaced run's generation + 1 and an index version
 * above the replaced run's, so nothing written for the replaced run (index records, late commits) can override it.
 */
export const CREATE_RUN = script('createRun', `
local r, s, q = KEYS[1], KEYS[2], KEYS[3]
local runId = ARGV[1]
local now, nowUs = clock()
local exists = redis.call('EXISTS', r) == 1
if exists and ARGV[8] == 'keep' then
  return {0, snapshot(r, s), record(r, runId, nowUs), ''}
end
local leased = ARGV[10] == '1'
local leaseMs = num(ARGV[11])
if leased and not leaseMs then return redis.error_reply('cairn: createRun: leaseMs must be an integer') end
for i = 14, #ARGV, 2 do
  if not num(ARGV[i]) then return redis.error_reply('cairn: createRun: a step index must be an integer') end
end
local iv, gen, prevWf = 0, 1, ''
if exists then
  local p = redis.call('HMGET', r, 'iv', 'wf', 'gen')
  iv = num(p[1]) or 0
  prevWf = p[2] or ''
  local g = num(p[3])
  if g and g > 1 then gen = g end
  gen = gen + 1
  redis.call('DEL', r, s, q)
end
local n = iv + 1
if nowUs > n then n = nowUs end
local ts = fmt(now)
local st = 'pending'
if leased then st = 'running' end
redis.call('HSET', r, 'id', runId, 'wf', ARGV[2], 'ver', ARGV[3], 'st', st, 'in', ARGV[4], 'state', ARGV[5],
  'pr', '0', 'due', ts, 'ca', ts, 'ua', ts, 'iv', fmt(n), 'gen', fmt(gen))
if ARGV[6] == '1' then redis.call('HSET', r, 'cur', ARGV[7]) end
if leased then redis.call('HSET', r, 'lo', ARGV[9], 'lt', ARGV[12], 'le', fmt(now + leaseMs)) end
for i = 14, #ARGV, 2 do redis.call('HSET', s, ARGV[i], ARGV[i + 1]) end
if exists then publish(ARGV[13], 'control', runId) end
if not leased then publish(ARGV[13], 'ready', runId) end
return {1, snapshot(r, s), record(r, runId, nowUs), prevWf}
`);

/** KEYS: run, steps. ARGV: runId. Returns {snapshot, record}. */
export const READ_RUN = script('readRun', `
local now, nowUs = clock()
return {snapshot(KEYS[1], KEYS[2]), record(KEYS[1], ARGV[1], nowUs)}
`);

/**
 * Fenced claim of one run. KEYS: run, steps. ARGV: runId, owner, leaseMs, token, workflowCount, workflows...
 * (workflowCount -1: no filter). Returns {1, snapshot, record, recovered} or {0, record}.
 */
export const CLAIM_RUN = script('claimRun', `
local r, s = KEYS[1], KEYS[2]
local runId = ARGV[1]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'due', 'le', 'lt', 'wf')
if not v[1] then return {0, record(r, runId, nowUs)} end
local leaseMs = num(ARGV[3])
if not leaseMs then return redis.error_reply('cairn: claimRun: leaseMs must be an integer') end
local at = claimAt(v[1], v[2], v[3])
local ok = at ~= -1 and at <= now
local count = tonumber(ARGV[5])
if ok and count >= 0 then
  local found = false
  for i = 6, 5 + count do if ARGV[i] == v[5] then found = true end end
  ok = found
end
if not ok then return {0, record(r, runId, nowUs)} end
local recovered = 0
if v[4] then recovered = 1 end
local st = v[1]
if st == 'pending' or st == 'sleeping' then st = 'running' end
redis.call('HSET', r, 'lo', ARGV[2], 'lt', ARGV[4], 'le', fmt(now + leaseMs), 'st', st, 'ua', fmt(now))
bump(r, nowUs)
return {1, snapshot(r, s), record(r, runId, nowUs), recovered}
`);

/** KEYS: run. ARGV: token, leaseMs. Returns {0} or {1, cancelRequested ('' none), pauseRequested}. */
export const RENEW_LEASE = script('renewLease', `
local r = KEYS[1]
local v = redis.call('HMGET', r, 'lt', 'cr', 'pr')
if v[1] ~= ARGV[1] then return {0} end
local leaseMs = num(ARGV[2])
if not leaseMs then return redis.error_reply('cairn: renewLease: leaseMs must be an integer') end
local now, nowUs = clock()
redis.call('HSET', r, 'le', fmt(now + leaseMs))
bump(r, nowUs)
return {1, v[2] or '', v[3] or '0'}
`);

/** KEYS: run. ARGV: runId, token, channel. Returns {0} or {1, record}. */
export const RELEASE_LEASE = script('releaseLease', `
local r = KEYS[1]
local runId = ARGV[1]
local v = redis.call('HMGET', r, 'lt', 'st')
if v[1] ~= ARGV[2] then return {0} end
local now, nowUs = clock()
redis.call('HDEL', r, 'lo', 'lt', 'le')
local st = v[2]
if not TERMINAL[st] and st ~= 'paused' and st ~= 'waiting' and st ~= 'sleeping' then
  redis.call('HSET', r, 'due', fmt(now))
end
redis.call('HSET', r, 'ua', fmt(now))
bump(r, nowUs)
publish(ARGV[3], 'ready', runId)
return {1, record(r, runId, nowUs)}
`);

/**
 * The fenced commit of RunPatch, rules 1-7 of the interface, in one script. KEYS: run, steps, signals.
 * ARGV: runId, token, leaseMs, channel, then ops: 'st' v | 'state' v | 'cur' v | 'cur-' | 'out' v | 'out-' |
 * 'err' v | 'err-' | 'step' index json | 'due' delayMs | 'dueat' epochMs | 'due-' | 'wait' name timeoutMs('' none) |
 * 'rel' | 'cc'. The ops are checked before the first write (an invalid one writes nothing).
 * Returns {0} or {1, paused, cancel ('' none, '0' no compensation, else compensate), consumed, payload, record,
 * indexDirty}.
 */
export const COMMIT = script('commit', `
local r, s, q = KEYS[1], KEYS[2], KEYS[3]
local runId = ARGV[1]
local p = redis.call('HMGET', r, 'lt', 'st', 'due', 'le', 'pr', 'cr')
if p[1] ~= ARGV[2] then return {0} end
local ARITY = {st = 1, state = 1, cur = 1, ['cur-'] = 0, out = 1, ['out-'] = 0, err = 1, ['err-'] = 0, step = 2,
  due = 1, dueat = 1, ['due-'] = 0, wait = 2, rel = 0, cc = 0}
local leaseMs = num(ARGV[3])
if not leaseMs then return redis.error_reply('cairn: commit: leaseMs must be an integer') end
local i = 5
while i <= #ARGV do
  local op = ARGV[i]
  local n = ARITY[op]
  if not n then return redis.error_reply('cairn: unknown commit op') end
  if i + n > #ARGV then return redis.error_reply('cairn: commit op without its arguments') end
  if (op == 'step' or op == 'due' or op == 'dueat') and not num(ARGV[i + 1]) then
    return redis.error_reply('cairn: commit: ' .. op .. ' needs an integer')
  end
  if op == 'wait' and ARGV[i + 2] ~= '' and not num(ARGV[i + 2]) then
    return redis.error_reply('cairn: commit: wait needs an integer timeout')
  end
  i = i + 1 + n
end
local now, nowUs = clock()
local oldSt = p[2]
local oldClaim = claimAt(p[2], p[3], p[4])
local release, clearCancel = false, false
local waitName, waitTimeout = nil, nil
i = 5
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'st' then redis.call('HSET', r, 'st', ARGV[i + 1])
  elseif op == 'state' then redis.call('HSET', r, 'state', ARGV[i + 1])
  elseif op == 'cur' then redis.call('HSET', r, 'cur', ARGV[i + 1])
  elseif op == 'cur-' then redis.call('HDEL', r, 'cur')
  elseif op == 'out' then redis.call('HSET', r, 'out', ARGV[i + 1])
  elseif op == 'out-' then redis.call('HDEL', r, 'out')
  elseif op == 'err' then redis.call('HSET', r, 'err', ARGV[i + 1])
  elseif op == 'err-' then redis.call('HDEL', r, 'err')
  elseif op == 'step' then redis.call('HSET', s, ARGV[i + 1], ARGV[i + 2])
  elseif op == 'due' then redis.call('HSET', r, 'due', fmt(now + num(ARGV[i + 1])))
  elseif op == 'dueat' then redis.call('HSET', r, 'due', fmt(num(ARGV[i + 1])))
  elseif op == 'due-' then redis.call('HDEL', r, 'due')
  elseif op == 'wait' then waitName = ARGV[i + 1]; waitTimeout = ARGV[i + 2]
  elseif op == 'rel' then release = true
  elseif op == 'cc' then clearCancel = true
  end
  i = i + 1 + ARITY[op]
end
redis.call('HDEL', r, 'ni', 'ws', 'wu')
local consumed = nil
if waitName then
  consumed = popSignal(q, waitName)
  if consumed then
    redis.call('HSET', r, 'st', 'running', 'ni', consumed)
  else
    redis.call('HSET', r, 'st', 'waiting', 'ws', waitName)
    if waitTimeout ~= '' then
      local wu = fmt(now + num(waitTimeout))
      redis.call('HSET', r, 'wu', wu, 'due', wu)
    else
      redis.call('HDEL', r, 'due')
    end
    release = true
  end
end
local st = redis.call('HGET', r, 'st')
local cr = p[6]
local paused = 0
if TERMINAL[st] then
  redis.call('HDEL', r, 'due', 'cr', 'rs')
  redis.call('HSET', r, 'pr', '0', 'fa', fmt(now))
  -- NOTE: signals queued for a run that ended are never delivered (a retry starts with none): drop them here.
  redis.call('DEL', q)
  cr = false
  release = true
elseif st and p[5] == '1' and not cr and st ~= 'paused' then
  if (not release) or (not redis.call('HGET', r, 'due')) then
    if st ~= 'waiting' then redis.call('HSET', r, 'due', fmt(now)) end
  end
  redis.call('HSET', r, 'rs', st, 'st', 'paused', 'pr', '0')
  st = 'paused'
  paused = 1
  release = true
end
if clearCancel then
  redis.call('HDEL', r, 'cr')
  cr = false
end
local cancel = ''
if cr and not TERMINAL[st] then
  cancel = cr
  redis.call('HSET', r, 'due', fmt(now))
end
if release then
  redis.call('HDEL', r, 'lo', 'lt', 'le')
else
  redis.call('HSET', r, 'le', fmt(now + leaseMs))
end
redis.call('HSET', r, 'ua', fmt(now))
bump(r, nowUs)
local due = num(redis.call('HGET', r, 'due'))
if TERMINAL[st] then
  publish(ARGV[4], 'finished', runId)
elseif release and due and due <= now and st ~= 'paused' then
  publish(ARGV[4], 'ready', runId)
end
local rec = record(r, runId, nowUs)
local newClaim = tonumber(rec[7])
local dirty = 0
if st ~= oldSt or (newClaim ~= -1 and (oldClaim == -1 or newClaim < oldClaim)) then dirty = 1 end
local got = 0
if consumed then got = 1 end
return {1, paused, cancel, got, consumed or '', rec, dirty}
`);

/**
 * KEYS: run, signals. ARGV: runId, token, name.
 * Returns {0} or {1, got, payload, timedOut, record}.
 */
export const TAKE_SIGNAL = script('takeSignal', `
local r, q = KEYS[1], KEYS[2]
local runId = ARGV[1]
local v = redis.call('HMGET', r, 'lt', 'wu')
if v[1] ~= ARGV[2] then return {0} end
local now, nowUs = clock()
local payload = popSignal(q, ARGV[3])
if payload then
  redis.call('HSET', r, 'st', 'running', 'ni', payload, 'ua', fmt(now))
  redis.call('HDEL', r, 'ws', 'wu')
  bump(r, nowUs)
  return {1, 1, payload, 0, record(r, runId, nowUs)}
end
local timedOut = 0
local wu = num(v[2])
if wu and wu <= now then timedOut = 1 end
return {1, 0, '', timedOut, record(r, runId, nowUs)}
`);

/** KEYS: run, signals. ARGV: runId, name, payload, channel. Returns {outcome, status, record}. */
export const SEND_SIGNAL = script('sendSignal', `
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
  if v[1] == 'waiting' then publish(ARGV[4], 'ready', runId) end
end
return {'ok', v[1], record(r, runId, nowUs)}
`);

/** KEYS: run. ARGV: runId, action, compensate ('1'/'0'), channel. Returns {outcome, status, record}. */
export const CONTROL = script('control', `
local r = KEYS[1]
local runId, action, channel = ARGV[1], ARGV[2], ARGV[4]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'le', 'pr', 'cr', 'rs')
local st = v[1]
if not st then return {'not-found', '', record(r, runId, nowUs)} end
local le = num(v[2])
local liveLease = le and le > now
-- NOTE: a damaged resume status resumes as pending, which every live run can go back to.
local rs = v[5]
if not CLAIMABLE[rs] then rs = 'pending' end
local function done(outcome) return {outcome, st, record(r, runId, nowUs)} end
if action == 'pause' then
  if TERMINAL[st] then return done('not-active') end
  if st == 'paused' or v[3] == '1' then return done('noop') end
  if liveLease then
    redis.call('HSET', r, 'pr', '1')
    publish(channel, 'control', runId)
  else
    redis.call('HSET', r, 'rs', st, 'st', 'paused')
    redis.call('HDEL', r, 'lo', 'lt', 'le')
    if st ~= 'waiting' and st ~= 'sleeping' then redis.call('HSET', r, 'due', fmt(now)) end
  end
elseif action == 'resume' then
  if TERMINAL[st] then return done('not-active') end
  if st == 'paused' then
    redis.call('HSET', r, 'st', rs)
    redis.call('HDEL', r, 'rs')
    publish(channel, 'ready', runId)
  elseif v[3] == '1' then
    redis.call('HSET', r, 'pr', '0')
  else
    return done('noop')
  end
elseif action == 'cancel' then
  if st == 'cancelled' or st == 'compensating' or v[4] then return done('noop') end
  if TERMINAL[st] then return done('not-active') end
  redis.call('HSET', r, 'cr', ARGV[3], 'pr', '0')
  if st == 'paused' then
    redis.call('HSET', r, 'st', rs)
    redis.call('HDEL', r, 'rs')
  end
  redis.call('HSET', r, 'due', fmt(now))
  if liveLease then publish(channel, 'control', runId) else publish(channel, 'ready', runId) end
elseif action == 'retry' then
  if st ~= 'failed' then return done('invalid-state') end
  redis.call('HSET', r, 'st', 'pending', 'due', fmt(now))
  redis.call('HDEL', r, 'err', 'fa')
  publish(channel, 'ready', runId)
else
  return redis.error_reply('cairn: unknown control action')
end
redis.call('HSET', r, 'ua', fmt(now))
bump(r, nowUs)
return done('ok')
`);

/**
 * Deletes one run if it is terminal, of one of the statuses and finished before now - olderThanMs.
 * KEYS: run, steps, signals. ARGV: runId, olderThanMs, statuses... Returns {deleted, record}.
 */
export const PURGE_RUN = script('purgeRun', `
local r, s, q = KEYS[1], KEYS[2], KEYS[3]
local runId = ARGV[1]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'fa', 'iv', 'wf')
if not v[1] then return {0, record(r, runId, nowUs)} end
local wanted = false
for i = 3, #ARGV do if ARGV[i] == v[1] then wanted = true end end
local fa, older = num(v[2]), tonumber(ARGV[2])
if TERMINAL[v[1]] and wanted and fa and fa < now - older then
  local n = (num(v[3]) or 0) + 1
  if nowUs > n then n = nowUs end
  redis.call('DEL', r, s, q)
  return {1, {runId, '0', fmt(n), v[4] or '', '', '-1', '-1', '-1'}}
end
return {0, record(r, runId, nowUs)}
`);

/**
 * Claim candidates from the global due indexes (one slot). KEYS: kicks, due zsets... ARGV: count, graceMs, kickLimit.
 * Returns {runIds in due order, orphaned kick members}. Marks kicks seen for the first time with the time.
 */
export const CLAIM_CANDIDATES = script('claimCandidates', `
local now = clock()
local n = tonumber(ARGV[1])
local items = {}
for i = 2, #KEYS do
  local got = redis.call('ZRANGE', KEYS[i], '-inf', fmt(now), 'BYSCORE', 'LIMIT', 0, n, 'WITHSCORES')
  for j = 1, #got, 2 do items[#items + 1] = {got[j], tonumber(got[j + 1])} end
end
table.sort(items, function(a, b)
  if a[2] ~= b[2] then return a[2] < b[2] end
  return a[1] < b[1]
end)
local out, seen = {}, {}
for _, it in ipairs(items) do
  if #out >= n then break end
  if not seen[it[1]] then
    seen[it[1]] = true
    out[#out + 1] = it[1]
  end
end
local fresh = redis.call('ZRANGE', KEYS[1], 0, 0, 'BYSCORE', 'LIMIT', 0, ARGV[3])
for _, m in ipairs(fresh) do redis.call('ZADD', KEYS[1], 'XX', fmt(now), m) end
local orphans = redis.call('ZRANGE', KEYS[1], 1, fmt(now - tonumber(ARGV[2])), 'BYSCORE', 'LIMIT', 0, ARGV[3])
return {out, orphans}
`);

/** Purge candidates (one slot). KEYS: finished zsets. ARGV: olderThanMs, limit. Returns run ids. */
export const PURGE_CANDIDATES = script('purgeCandidates', `
local now = clock()
local cutoff = '(' .. fmt(now - tonumber(ARGV[1]))
local out = {}
for i = 1, #KEYS do
  local got = redis.call('ZRANGE', KEYS[i], '-inf', cutoff, 'BYSCORE', 'LIMIT', 0, ARGV[2])
  for _, id in ipairs(got) do out[#out + 1] = id end
end
return out
`);

/**
 * Applies index records to the global indexes (one slot), idempotently: a record older than (or as old as) the one
 * last applied for that run is ignored, so records may arrive late, twice or out of order. A repair record (read
 * because the index disagreed with the run) is applied when as old as the last one: same version, different data
 * means the run was edited behind the store's back.
 * KEYS: created, meta, kicks, due, by-status x10, finished x4, then per workflow group: due, by-workflow,
 * by-workflow-status x10. ARGV: groupCount, group workflows..., then records of 11 fields: runId, exists, iv,
 * workflow, status, createdAt, claimAt, finishedAt, kick member ('' none), extra workflow ('' none), repair ('1'/'0').
 * Each record is applied on its own: one of a damaged run is repaired (a status that is not one is indexed as parked,
 * a creation time that is not a number keeps the run's current score) and one that still fails is skipped, so it
 * never holds back the others. Returns {applied, skipped, first skip error ('' none)}.
 */
export const APPLY_INDEX = script('applyIndex', `
local STATUSES = {'pending', 'running', 'sleeping', 'waiting', 'paused', 'compensating', 'completed', 'compensated', 'failed', 'cancelled'}
local SIDX = {}
for i, st in ipairs(STATUSES) do SIDX[st] = i end
local FIDX = {completed = 1, compensated = 2, failed = 3, cancelled = 4}
local PARKED = 'paused'
local C, M, K, DUE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local G = tonumber(ARGV[1])
local groups = {}
for g = 1, G do groups[ARGV[1 + g]] = 18 + (g - 1) * 12 + 1 end
local function dropGroup(wf, id)
  local b = groups[wf]
  if not b then return end
  for j = b, b + 11 do redis.call('ZREM', KEYS[j], id) end
end
local function parseMeta(meta)
  if not meta then return nil end
  local a = string.find(meta, '|', 1, true)
  if not a then return nil end
  local b = string.find(meta, '|', a + 1, true)
  if not b then return nil end
  local iv = num(string.sub(meta, 1, a - 1))
  if not iv then return nil end
  return iv, string.sub(meta, a + 1, b - 1), string.sub(meta, b + 1)
end
local function apply(id, exists, iv, wf, st, ca, claim, fa, extra, repair)
  local newIv = num(iv)
  if not newIv then error('index version ' .. iv .. ' is not an integer') end
  local meta = redis.call('HGET', M, id)
  local oldIv, oldSt, oldWf = parseMeta(meta)
  if oldIv and (oldIv > newIv or (oldIv == newIv and repair ~= '1')) then return 0 end
  if oldIv then
    if SIDX[oldSt] then redis.call('ZREM', KEYS[4 + SIDX[oldSt]], id) end
    if FIDX[oldSt] then redis.call('ZREM', KEYS[14 + FIDX[oldSt]], id) end
    if oldWf ~= wf or exists ~= '1' then
      dropGroup(oldWf, id)
    elseif SIDX[oldSt] and groups[wf] then
      redis.call('ZREM', KEYS[groups[wf] + 1 + SIDX[oldSt]], id)
    end
  else
    for j = 5, 18 do redis.call('ZREM', KEYS[j], id) end
    if exists ~= '1' then dropGroup(wf, id)
    elseif groups[wf] then for j = 2, 11 do redis.call('ZREM', KEYS[groups[wf] + j], id) end end
  end
  if extra ~= '' and extra ~= wf then dropGroup(extra, id) end
  if exists ~= '1' then
    redis.call('ZREM', C, id)
    redis.call('ZREM', DUE, id)
    dropGroup(wf, id)
    redis.call('HDEL', M, id)
    return 1
  end
  local b = groups[wf]
  if not b then error('no keys for the workflow of run ' .. id) end
  if not SIDX[st] then
    st = PARKED
    claim = '-1'
    fa = '-1'
  end
  local score = num(ca) or num(redis.call('ZSCORE', C, id)) or 0
  redis.call('ZADD', C, score, id)
  redis.call('ZADD', KEYS[4 + SIDX[st]], score, id)
  redis.call('ZADD', KEYS[b + 1], score, id)
  redis.call('ZADD', KEYS[b + 1 + SIDX[st]], score, id)
  local at = num(claim)
  if at and at ~= -1 then
    redis.call('ZADD', DUE, at, id)
    redis.call('ZADD', KEYS[b], at, id)
  else
    redis.call('ZREM', DUE, id)
    redis.call('ZREM', KEYS[b], id)
  end
  local finished = num(fa)
  if FIDX[st] and finished and finished ~= -1 then redis.call('ZADD', KEYS[14 + FIDX[st]], finished, id) end
  redis.call('HSET', M, id, fmt(newIv) .. '|' .. st .. '|' .. wf)
  return 1
end
local applied, skipped, firstError = 0, 0, ''
local i = G + 2
while i + 10 <= #ARGV do
  local id, kick = ARGV[i], ARGV[i + 8]
  if kick ~= '' then redis.call('ZREM', K, kick) end
  local ok, result = pcall(apply, id, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6],
    ARGV[i + 7], ARGV[i + 9], ARGV[i + 10])
  if ok then
    applied = applied + result
  else
    skipped = skipped + 1
    if firstError == '' then
      if type(result) == 'table' then result = result.err end
      firstError = 'run ' .. id .. ': ' .. tostring(result)
    end
  end
  i = i + 11
end
return {applied, skipped, firstError}
`);

export const ALL_SCRIPTS: readonly LuaScript[] = [
  CREATE_RUN,
  READ_RUN,
  CLAIM_RUN,
  RENEW_LEASE,
  RELEASE_LEASE,
  COMMIT,
  TAKE_SIGNAL,
  SEND_SIGNAL,
  CONTROL,
  PURGE_RUN,
  CLAIM_CANDIDATES,
  PURGE_CANDIDATES,
  APPLY_INDEX,
];
