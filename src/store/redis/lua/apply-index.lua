local SIDX, FIDX = {}, {}
for i, st in ipairs(STATUSES) do SIDX[st] = i end
for i, st in ipairs(TERMINAL_LIST) do FIDX[st] = i end
local C, M, K, DUE = KEYS[AK.created], KEYS[AK.meta], KEYS[AK.kicks], KEYS[AK.due]
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
-- xd: the due key of another pair that may hold the run ('' none): a replaced run's previous pair, or the key a
-- claimer found a stale entry in
local function apply(id, exists, iv, wf, st, ca, claim, fa, ver, extra, xd, repair)
  local newIv = num(iv)
  if not newIv then error('index version ' .. iv .. ' is not an integer') end
  local meta = redis.call('HGET', M, id)
  local oldIv, oldSt, oldWf = parseMeta(meta)
  if oldIv and (oldIv > newIv or (oldIv == newIv and repair ~= '1')) then return 0 end
  local dk = dueKey(wf, ver)
  if xd and xd ~= dk then redis.call('ZREM', xd, id) end
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
    redis.call('ZREM', DUE, id)
    dropGroup(wf, id)
    if dk then redis.call('ZREM', dk, id) end
    redis.call('HDEL', M, id)
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
  local at = num(claim)
  if at and at ~= -1 then
    redis.call('ZADD', DUE, at, id)
    redis.call('ZADD', dk, at, id)
  else
    redis.call('ZREM', DUE, id)
    redis.call('ZREM', dk, id)
  end
  local finished = num(fa)
  if FIDX[st] and finished and finished ~= -1 then redis.call('ZADD', finishedKey(st), finished, id) end
  redis.call('HSET', M, id, fmt(newIv) .. '|' .. st .. '|' .. wf)
  return 1
end
local applied, skipped, firstError = 0, 0, ''
local i = G + 2 * D + 3
while i + 12 <= #ARGV do
  local id, kick = ARGV[i], ARGV[i + 9]
  if kick ~= '' then redis.call('ZREM', K, kick) end
  local xd = dues[tonumber(ARGV[i + 11]) or 0]
  local ok, result = pcall(apply, id, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6],
    ARGV[i + 7], ARGV[i + 8], ARGV[i + 10], xd, ARGV[i + 12])
  if ok then
    applied = applied + result
  else
    skipped = skipped + 1
    if firstError == '' then
      if type(result) == 'table' then result = result.err end
      firstError = 'run ' .. id .. ': ' .. tostring(result)
    end
  end
  i = i + 13
end
return {applied, skipped, firstError}
