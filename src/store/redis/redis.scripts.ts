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
 * `iv` version of the run's index record (strictly increasing, at least the store clock in microseconds).
 *
 * An index record is `{runId, exists, iv, workflow, status, createdAt, claimAt, finishedAt}`, all strings; `claimAt`
 * is the earliest time the run may be claimed (max of `due` and the lease expiry) or -1 when it is not due.
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
local function clock()
  local t = redis.call('TIME')
  local s, us = tonumber(t[1]), tonumber(t[2])
  return s * 1000 + math.floor(us / 1000), s * 1000000 + us
end
local function claimAt(st, due, le)
  if not st or not CLAIMABLE[st] or not due then return -1 end
  local d = tonumber(due)
  if le and tonumber(le) > d then return tonumber(le) end
  return d
end
local function bump(run, nowUs)
  local n = tonumber(redis.call('HGET', run, 'iv') or '0') + 1
  if nowUs > n then n = nowUs end
  redis.call('HSET', run, 'iv', fmt(n))
end
local function record(run, runId, nowUs)
  local v = redis.call('HMGET', run, 'wf', 'st', 'ca', 'due', 'le', 'fa', 'iv')
  if not v[2] then return {runId, '0', fmt(nowUs), '', '', '-1', '-1', '-1'} end
  return {runId, '1', v[7] or '0', v[1], v[2], v[3], fmt(claimAt(v[2], v[4], v[5])), v[6] or '-1'}
end
local function snapshot(run, steps)
  return {redis.call('HGETALL', run), redis.call('HGETALL', steps)}
end
local function publish(channel, kind, runId)
  redis.call('PUBLISH', channel, cjson.encode({type = kind, runId = runId}))
end
local function popSignal(q, name)
  local h = tonumber(redis.call('HGET', q, 'h:' .. name) or '0')
  local t = tonumber(redis.call('HGET', q, 't:' .. name) or '0')
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
  local t = redis.call('HINCRBY', q, 't:' .. name, 1)
  redis.call('HSET', q, 'v:' .. fmt(t) .. ':' .. name, payload)
end
`;

/**
 * KEYS: run, steps, signals. ARGV: runId, workflow, version, input, state, hasCurrentStep, currentStep,
 * onConflict, leaseOwner, hasLease, leaseMs, leaseToken, channel, then (stepIndex, stepJson) pairs.
 * Returns {created, snapshot, record, previousWorkflow}.
 */
export const CREATE_RUN = script('createRun', `
local r, s, q = KEYS[1], KEYS[2], KEYS[3]
local runId = ARGV[1]
local now, nowUs = clock()
local exists = redis.call('EXISTS', r) == 1
if exists and ARGV[8] == 'keep' then
  return {0, snapshot(r, s), record(r, runId, nowUs), ''}
end
local iv, prevWf = 0, ''
if exists then
  local p = redis.call('HMGET', r, 'iv', 'wf')
  iv = tonumber(p[1] or '0')
  prevWf = p[2] or ''
  redis.call('DEL', r, s, q)
end
local n = iv + 1
if nowUs > n then n = nowUs end
local ts = fmt(now)
local leased = ARGV[10] == '1'
local st = 'pending'
if leased then st = 'running' end
redis.call('HSET', r, 'id', runId, 'wf', ARGV[2], 'ver', ARGV[3], 'st', st, 'in', ARGV[4], 'state', ARGV[5],
  'pr', '0', 'due', ts, 'ca', ts, 'ua', ts, 'iv', fmt(n))
if ARGV[6] == '1' then redis.call('HSET', r, 'cur', ARGV[7]) end
if leased then redis.call('HSET', r, 'lo', ARGV[9], 'lt', ARGV[12], 'le', fmt(now + tonumber(ARGV[11]))) end
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
local ok = CLAIMABLE[v[1]] and v[2] and tonumber(v[2]) <= now and ((not v[3]) or tonumber(v[3]) <= now)
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
redis.call('HSET', r, 'lo', ARGV[2], 'lt', ARGV[4], 'le', fmt(now + tonumber(ARGV[3])), 'st', st, 'ua', fmt(now))
bump(r, nowUs)
return {1, snapshot(r, s), record(r, runId, nowUs), recovered}
`);

/** KEYS: run. ARGV: token, leaseMs. Returns {0} or {1, cancelRequested ('' none), pauseRequested}. */
export const RENEW_LEASE = script('renewLease', `
local r = KEYS[1]
local v = redis.call('HMGET', r, 'lt', 'cr', 'pr')
if v[1] ~= ARGV[1] then return {0} end
local now, nowUs = clock()
redis.call('HSET', r, 'le', fmt(now + tonumber(ARGV[2])))
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
 * 'err' v | 'err-' | 'step' index json | 'due' delayMs | 'due-' | 'wait' name timeoutMs('' none) | 'rel' | 'cc'.
 * Returns {0} or {1, paused, cancel ('' none, '1'/'0' compensate), consumed, payload, record, indexDirty}.
 */
export const COMMIT = script('commit', `
local r, s, q = KEYS[1], KEYS[2], KEYS[3]
local runId = ARGV[1]
local p = redis.call('HMGET', r, 'lt', 'st', 'due', 'le', 'pr', 'cr')
if p[1] ~= ARGV[2] then return {0} end
local now, nowUs = clock()
local oldSt = p[2]
local oldClaim = claimAt(p[2], p[3], p[4])
local release, clearCancel = false, false
local waitName, waitTimeout = nil, nil
local i = 5
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'st' then redis.call('HSET', r, 'st', ARGV[i + 1]); i = i + 2
  elseif op == 'state' then redis.call('HSET', r, 'state', ARGV[i + 1]); i = i + 2
  elseif op == 'cur' then redis.call('HSET', r, 'cur', ARGV[i + 1]); i = i + 2
  elseif op == 'cur-' then redis.call('HDEL', r, 'cur'); i = i + 1
  elseif op == 'out' then redis.call('HSET', r, 'out', ARGV[i + 1]); i = i + 2
  elseif op == 'out-' then redis.call('HDEL', r, 'out'); i = i + 1
  elseif op == 'err' then redis.call('HSET', r, 'err', ARGV[i + 1]); i = i + 2
  elseif op == 'err-' then redis.call('HDEL', r, 'err'); i = i + 1
  elseif op == 'step' then redis.call('HSET', s, ARGV[i + 1], ARGV[i + 2]); i = i + 3
  elseif op == 'due' then redis.call('HSET', r, 'due', fmt(now + tonumber(ARGV[i + 1]))); i = i + 2
  elseif op == 'due-' then redis.call('HDEL', r, 'due'); i = i + 1
  elseif op == 'wait' then waitName = ARGV[i + 1]; waitTimeout = ARGV[i + 2]; i = i + 3
  elseif op == 'rel' then release = true; i = i + 1
  elseif op == 'cc' then clearCancel = true; i = i + 1
  else return redis.error_reply('cairn: unknown commit op') end
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
      local wu = fmt(now + tonumber(waitTimeout))
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
  cr = false
  release = true
elseif p[5] == '1' and not cr and st ~= 'paused' then
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
  redis.call('HSET', r, 'le', fmt(now + tonumber(ARGV[3])))
end
redis.call('HSET', r, 'ua', fmt(now))
bump(r, nowUs)
local due = redis.call('HGET', r, 'due')
if TERMINAL[st] then
  publish(ARGV[4], 'finished', runId)
elseif release and due and tonumber(due) <= now and st ~= 'paused' then
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
if v[2] and tonumber(v[2]) <= now then timedOut = 1 end
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
local liveLease = v[2] and tonumber(v[2]) > now
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
    redis.call('HSET', r, 'st', v[5] or 'pending')
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
    redis.call('HSET', r, 'st', v[5] or 'pending')
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
if TERMINAL[v[1]] and wanted and v[2] and tonumber(v[2]) < now - tonumber(ARGV[2]) then
  local n = tonumber(v[3] or '0') + 1
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
 * last applied for that run is ignored, so records may arrive late, twice or out of order.
 * KEYS: created, meta, kicks, due, by-status x10, finished x4, then per workflow group: due, by-workflow,
 * by-workflow-status x10. ARGV: groupCount, group workflows..., then records of 10 fields:
 * runId, exists, iv, workflow, status, createdAt, claimAt, finishedAt, kick member ('' none), extra workflow ('' none).
 */
export const APPLY_INDEX = script('applyIndex', `
local STATUSES = {'pending', 'running', 'sleeping', 'waiting', 'paused', 'compensating', 'completed', 'compensated', 'failed', 'cancelled'}
local SIDX = {}
for i, st in ipairs(STATUSES) do SIDX[st] = i end
local FIDX = {completed = 1, compensated = 2, failed = 3, cancelled = 4}
local C, M, K, DUE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local G = tonumber(ARGV[1])
local groups = {}
for g = 1, G do groups[ARGV[1 + g]] = 18 + (g - 1) * 12 + 1 end
local function dropGroup(wf, id)
  local b = groups[wf]
  if not b then return end
  for j = b, b + 11 do redis.call('ZREM', KEYS[j], id) end
end
local applied = 0
local i = G + 2
while i + 9 <= #ARGV do
  local id, exists, iv, wf, st = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local ca, claim, fa, kick, extra = ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9]
  i = i + 10
  if kick ~= '' then redis.call('ZREM', K, kick) end
  local meta = redis.call('HGET', M, id)
  local oldIv, oldSt, oldWf = nil, nil, nil
  if meta then
    local a = string.find(meta, '|', 1, true)
    local b = string.find(meta, '|', a + 1, true)
    oldIv = tonumber(string.sub(meta, 1, a - 1))
    oldSt = string.sub(meta, a + 1, b - 1)
    oldWf = string.sub(meta, b + 1)
  end
  if (not oldIv) or oldIv < tonumber(iv) then
    applied = applied + 1
    if meta then
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
    else
      local b = groups[wf]
      redis.call('ZADD', C, ca, id)
      redis.call('ZADD', KEYS[4 + SIDX[st]], ca, id)
      redis.call('ZADD', KEYS[b + 1], ca, id)
      redis.call('ZADD', KEYS[b + 1 + SIDX[st]], ca, id)
      if claim ~= '-1' then
        redis.call('ZADD', DUE, claim, id)
        redis.call('ZADD', KEYS[b], claim, id)
      else
        redis.call('ZREM', DUE, id)
        redis.call('ZREM', KEYS[b], id)
      end
      if FIDX[st] and fa ~= '-1' then redis.call('ZADD', KEYS[14 + FIDX[st]], fa, id) end
      redis.call('HSET', M, id, iv .. '|' .. st .. '|' .. wf)
    end
  end
end
return applied
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
