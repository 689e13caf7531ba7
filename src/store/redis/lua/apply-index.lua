local SIDX, FIDX = {}, {}
for i, st in ipairs(STATUSES) do SIDX[st] = i end
for i, st in ipairs(TERMINAL_LIST) do FIDX[st] = i end
local C, M, K, DUE = KEYS[AK.created], KEYS[AK.meta], KEYS[AK.kicks], KEYS[AK.due]
-- the index key prefix (keys built from it are in this slot: `...:m` is `<prefix>:m`), and the flow entries
local IX = string.sub(M, 1, #M - 2)
local FC = IX .. ':fc'
local G = tonumber(ARGV[1])
-- groups[wf]: position in KEYS of the first key of that workflow's group
local groups = {}
for g = 1, G do groups[ARGV[1 + g]] = AK.groups + (g - 1) * GK.size end
-- dues[d]: the due key of the d-th (workflow, version) pair; dueOf[wf][ver]: the same key by its pair
local D = tonumber(ARGV[G + 2])
local dues, dueOf = {}, {}
for d = 1, D do
  local wf, ver = ARGV[G + 1 + 2 * d], ARGV[G + 2 + 2 * d]
  dues[d] = KEYS[AK.groups + G * GK.size + d - 1]
  if not dueOf[wf] then dueOf[wf] = {} end
  dueOf[wf][ver] = dues[d]
end
local function dueKey(wf, ver)
  local byVer = dueOf[wf]
  if byVer then return byVer[ver] end
  return nil
end
local function statusKey(st) return KEYS[AK.byStatus - 1 + SIDX[st]] end
local function finishedKey(st) return KEYS[AK.finished - 1 + FIDX[st]] end
local function groupStatusKey(b, st) return KEYS[b + GK.byWorkflowStatus - 1 + SIDX[st]] end
local function dropGroup(wf, id)
  local b = groups[wf]
  if not b then return end
  for j = b, b + GK.size - 1 do redis.call('ZREM', KEYS[j], id) end
end
-- Priority levels of a due key (see redis.keys.ts): level 0 is the key itself.
local function dueRem(base, p, id)
  if p == 0 then
    redis.call('ZREM', base, id)
    return
  end
  local key = base .. ':p:' .. fmt(p)
  if redis.call('ZREM', key, id) == 1 and redis.call('ZCARD', key) == 0 then redis.call('ZREM', base .. ':pl', fmt(p)) end
end
local function dueAdd(base, p, score, id)
  if p == 0 then
    redis.call('ZADD', base, score, id)
    return
  end
  redis.call('ZADD', base .. ':p:' .. fmt(p), score, id)
  redis.call('ZADD', base .. ':pl', p, fmt(p))
end
-- `<index version>|<status>|<workflow>`, the version followed by `:<priority>` for a run of non-zero priority
local function parseMeta(meta)
  if not meta then return nil end
  local a = string.find(meta, '|', 1, true)
  if not a then return nil end
  local b = string.find(meta, '|', a + 1, true)
  if not b then return nil end
  local head = string.sub(meta, 1, a - 1)
  local iv, pri = num(head), 0
  if not iv then
    local x, y = string.match(head, '^(%-?%d+):(%-?%d+)$')
    iv, pri = num(x), num(y)
    if not iv or not pri then return nil end
  end
  return iv, string.sub(meta, a + 1, b - 1), string.sub(meta, b + 1), pri
end
-- A flow entry (`<flags>|<slot epoch>|<cc>|<rl>`, see prelude.lua), or nil.
local function parseFlow(entry)
  if type(entry) ~= 'string' then return nil end
  local flags, se, cc, rl = string.match(entry, '^([a-z]*)|(%d+)|([^|]*)|([^|]*)$')
  if not flags then return nil end
  return {flags = flags, se = tonumber(se), cc = cc, rl = rl}
end
local function holders(f)
  local _, _, key = parseCc(f.cc)
  if key then return IX .. ':ch:' .. key, key end
  return nil
end
-- Rule F2's holder sets follow the runs' flow entries: a member leaves its set only when the run is gone or a new slot
-- epoch of it is applied (it ended, was replaced or gave its slot back: see redis.keys.ts); an entry of an older epoch
-- than the one known changes nothing; a run that holds its slot (`h`) is in the set of its epoch. A slot given back
-- wakes a waiter of its key (wakeWaiters in prelude.lua); a run whose entry is applied leaves its key's waiters.
local function applyFlow(id, entry)
  local old = parseFlow(redis.call('HGET', FC, id))
  local new = parseFlow(entry)
  if old or new then dropWaiter(IX, id) end
  local freed, freedKey
  if not new then
    if old then
      local hk, key = holders(old)
      if hk and redis.call('SREM', hk, id) == 1 then freed, freedKey = hk, key end
      redis.call('HDEL', FC, id)
    end
    if freed then wakeWaiters(IX, freedKey, 1) end
    return
  end
  if old and new.se < old.se then return end
  if old and new.se > old.se then
    local hk, key = holders(old)
    if hk and redis.call('SREM', hk, id) == 1 then freed, freedKey = hk, key end
  end
  if string.find(new.flags, 'h', 1, true) then
    local hk = holders(new)
    if hk then redis.call('SADD', hk, id) end
  end
  redis.call('HSET', FC, id, entry)
  if freed and redis.call('SISMEMBER', freed, id) == 0 then wakeWaiters(IX, freedKey, 1) end
end
-- A run that is due now but finds its key's slots all held (rule F2) is parked at once (parkRun in prelude.lua), so that
-- claims do not read it until a slot of its key is given back: a burst of runs of one key never comes between a claim
-- and the runs of other keys. A run with a pending cancel (F1) or a slot it holds needs none.
local NOW
local function parkIfBlocked(id, entry, dk, p, at)
  local f = parseFlow(entry)
  if not f or string.find(f.flags, '[hc]') then return end
  local _, climit, ckey = parseCc(f.cc)
  if not climit then return end
  NOW = NOW or clock()
  if at > NOW then return end
  local hk = IX .. ':ch:' .. ckey
  if redis.call('SCARD', hk) < climit or redis.call('SISMEMBER', hk, id) == 1 then return end
  parkRun(IX, id, ckey, climit, dk, p, at, NOW)
end
-- xd: the due key of another pair that may hold the run ('' none): a replaced run's previous pair, or the key a
-- claimer found a stale entry in
local function apply(id, exists, iv, wf, st, ca, claim, fa, ver, extra, xd, repair, pri, flow)
  local newIv = num(iv)
  if not newIv then error('index version ' .. iv .. ' is not an integer') end
  local meta = redis.call('HGET', M, id)
  local oldIv, oldSt, oldWf, oldPri = parseMeta(meta)
  if oldIv and (oldIv > newIv or (oldIv == newIv and repair ~= '1')) then return 0 end
  -- a priority that cannot be read is 0 (the decoder reports it)
  local p = num(pri) or 0
  oldPri = oldPri or p
  local dk = dueKey(wf, ver)
  if xd and xd ~= dk then
    dueRem(xd, oldPri, id)
    if p ~= oldPri then dueRem(xd, p, id) end
  end
  if oldIv then
    if SIDX[oldSt] then redis.call('ZREM', statusKey(oldSt), id) end
    if FIDX[oldSt] then redis.call('ZREM', finishedKey(oldSt), id) end
    if oldWf ~= wf or exists ~= '1' then
      dropGroup(oldWf, id)
    elseif SIDX[oldSt] and groups[wf] then
      redis.call('ZREM', groupStatusKey(groups[wf], oldSt), id)
    end
  else
    for _, s in ipairs(STATUSES) do redis.call('ZREM', statusKey(s), id) end
    for _, s in ipairs(TERMINAL_LIST) do redis.call('ZREM', finishedKey(s), id) end
    if exists ~= '1' then dropGroup(wf, id)
    elseif groups[wf] then for _, s in ipairs(STATUSES) do redis.call('ZREM', groupStatusKey(groups[wf], s), id) end end
  end
  if extra ~= '' and extra ~= wf then dropGroup(extra, id) end
  if exists ~= '1' then
    redis.call('ZREM', C, id)
    dueRem(DUE, oldPri, id)
    dropGroup(wf, id)
    if dk then dueRem(dk, oldPri, id) end
    redis.call('HDEL', M, id)
    applyFlow(id, '')
    return 1
  end
  local b = groups[wf]
  if not b then error('no keys for the workflow of run ' .. id) end
  if not dk then error('no due key for the workflow version of run ' .. id) end
  if not SIDX[st] then
    st = PARKED
    claim = '-1'
    fa = '-1'
  end
  local score = num(ca) or num(redis.call('ZSCORE', C, id)) or 0
  redis.call('ZADD', C, score, id)
  redis.call('ZADD', statusKey(st), score, id)
  redis.call('ZADD', KEYS[b + GK.byWorkflow], score, id)
  redis.call('ZADD', groupStatusKey(b, st), score, id)
  if oldPri ~= p then
    dueRem(DUE, oldPri, id)
    dueRem(dk, oldPri, id)
  end
  local at = num(claim)
  if at and at ~= -1 then
    dueAdd(DUE, p, at, id)
    dueAdd(dk, p, at, id)
  else
    dueRem(DUE, p, id)
    dueRem(dk, p, id)
  end
  local finished = num(fa)
  if FIDX[st] and finished and finished ~= -1 then redis.call('ZADD', finishedKey(st), finished, id) end
  local head = fmt(newIv)
  if p ~= 0 then head = head .. ':' .. fmt(p) end
  redis.call('HSET', M, id, head .. '|' .. st .. '|' .. wf)
  applyFlow(id, flow)
  if at and at ~= -1 and flow ~= '' then parkIfBlocked(id, flow, dk, p, at) end
  return 1
end
-- Records of 13 fields: the 9 of an index record, kick, extra workflow, extra due pair, repair; a repair flag with a `+`
-- (`0+`, `1+`) says 2 more follow: the run's priority and flow entry (sent only for runs that have either).
local applied, skipped, firstError = 0, 0, ''
local i = G + 2 * D + 3
while i + 12 <= #ARGV do
  local id, kick = ARGV[i], ARGV[i + 9]
  local repair, pri, flow, width = ARGV[i + 12], '', '', 13
  if string.sub(repair, 2) == '+' then
    repair = string.sub(repair, 1, 1)
    pri, flow, width = ARGV[i + 13] or '', ARGV[i + 14] or '', 15
  end
  if kick ~= '' then redis.call('ZREM', K, kick) end
  local xd = dues[tonumber(ARGV[i + 11]) or 0]
  local ok, result = pcall(apply, id, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6],
    ARGV[i + 7], ARGV[i + 8], ARGV[i + 10], xd, repair, pri, flow)
  if ok then
    applied = applied + result
  else
    skipped = skipped + 1
    if firstError == '' then
      if type(result) == 'table' then result = result.err end
      firstError = 'run ' .. id .. ': ' .. tostring(result)
    end
  end
  i = i + width
end
return {applied, skipped, firstError}
