-- KEYS: run, steps, signals, events, signal ids (expired with the run), children (the list a `children` commit adds
-- to; it never expires: the children stay linked to the run id).
local r, s, q, e, ids, ch = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local runId = ARGV[1]
local p = redis.call('HMGET', r, 'lt', 'st', 'due', 'le', 'pr', 'cr', 'hs', 'cc', 'rl')
if p[1] ~= ARGV[2] then return {0} end
local leaseMs = num(ARGV[3])
if not leaseMs then return redis.error_reply('cairn: commit: leaseMs must be an integer') end
local i = 5
while i <= #ARGV do
  local op = ARGV[i]
  local n = ARITY[op]
  if not n then return redis.error_reply('cairn: unknown commit op') end
  if i + n > #ARGV then return redis.error_reply('cairn: commit op without its arguments') end
  if (op == OP.putStep or op == OP.dueIn or op == OP.dueAt) and not num(ARGV[i + 1]) then
    return redis.error_reply('cairn: commit: ' .. op .. ' needs an integer')
  end
  if op == OP.expireOnEnd and not ((num(ARGV[i + 1]) or 0) > 0) then
    return redis.error_reply('cairn: commit: ttl needs a positive integer')
  end
  if op == OP.wait then
    if ARGV[i + 2] ~= '' and not num(ARGV[i + 2]) then return redis.error_reply('cairn: commit: wait needs an integer timeout') end
    local ok, names = pcall(cjson.decode, ARGV[i + 1])
    if not ok or type(names) ~= 'table' then return redis.error_reply('cairn: commit: wait needs a JSON array of names') end
  end
  if op == OP.children and not (num(ARGV[i + 1]) and num(ARGV[i + 2]) and num(ARGV[i + 4])) then
    return redis.error_reply('cairn: commit: children needs integers')
  end
  if op == OP.childLink and not num(ARGV[i + 2]) then
    return redis.error_reply('cairn: commit: childLink needs an integer score')
  end
  i = i + 1 + n
end
local now, nowUs = clock()
local oldSt = p[2]
-- a run with limits: its flow entry before the commit (the index is updated when it changes)
local flowBefore = ''
if p[8] or p[9] then
  local f = redis.call('HMGET', r, 'sh', 'se')
  flowBefore = flowEntry(r, p[2], p[8], p[9], f[1], p[6], f[2])
end
local oldClaim = claimAt(p[2], p[3], p[4])
local release, clearCancel = false, false
local waitJson, waitTimeout = nil, nil
local children = nil
local ttl = nil
local keepInput, midStep = false, false
local events = nil
i = 5
while i <= #ARGV do
  local op = ARGV[i]
  if op == OP.restart then
    -- continue-as-new: a fresh incarnation of the run (history, queued signals, signal ids and the children list kept)
    -- NOTE: the children state goes too (`ce` included): in a patch that also spawns, an end counted between step 0
    -- and this commit is dropped with it, and found by the parent's recheck
    redis.call('DEL', s)
    redis.call('HSET', r, 'in', ARGV[i + 1], 'gen', fmt((num(redis.call('HGET', r, 'gen')) or 1) + 1))
    redis.call('HDEL', r, 'ni', 'nis', 'ce', 'cf', 'cwe', 'cwf')
  elseif op == OP.setStatus then redis.call('HSET', r, 'st', ARGV[i + 1])
  elseif op == OP.setState then redis.call('HSET', r, 'state', ARGV[i + 1])
  elseif op == OP.setCurrentStep then redis.call('HSET', r, 'cur', ARGV[i + 1])
  elseif op == OP.clearCurrentStep then redis.call('HDEL', r, 'cur')
  elseif op == OP.setOutput then redis.call('HSET', r, 'out', ARGV[i + 1])
  elseif op == OP.clearOutput then redis.call('HDEL', r, 'out')
  elseif op == OP.setError then redis.call('HSET', r, 'err', ARGV[i + 1])
  elseif op == OP.clearError then redis.call('HDEL', r, 'err')
  elseif op == OP.putStep then redis.call('HSET', s, ARGV[i + 1], ARGV[i + 2])
  elseif op == OP.dueIn then redis.call('HSET', r, 'due', fmt(now + num(ARGV[i + 1])))
  elseif op == OP.dueAt then redis.call('HSET', r, 'due', fmt(num(ARGV[i + 1])))
  elseif op == OP.clearDue then redis.call('HDEL', r, 'due')
  elseif op == OP.wait then waitJson = ARGV[i + 1]; waitTimeout = ARGV[i + 2]
  elseif op == OP.children then children = i
  elseif op == OP.childLink then redis.call('ZADD', ch, num(ARGV[i + 2]), ARGV[i + 1])
  elseif op == OP.release then release = true
  elseif op == OP.clearCancel then clearCancel = true
  elseif op == OP.expireOnEnd then ttl = num(ARGV[i + 1])
  elseif op == OP.keepInput then keepInput = true
  elseif op == OP.midStep then midStep = true
  elseif op == OP.appendEvent then
    events = events or {}
    events[#events + 1] = i + 1
  end
  i = i + 1 + ARITY[op]
end
-- NOTE: a commit without events does no history work (`hs`, read with the fields above, is written with `ua` below).
local lastSeq = 0
if events then lastSeq = appendEvents(e, lastEventSeq(p[7], e), events) end
if keepInput then
  redis.call('HDEL', r, 'ws', 'wn', 'wu', 'cwe', 'cwf')
else
  redis.call('HDEL', r, 'ni', 'nis', 'ws', 'wn', 'wu', 'cwe', 'cwf')
end
local consumed, consumedName = nil, nil
if waitJson then
  consumed, consumedName = popEarliest(q, waitNames(waitJson, nil))
  if consumed then
    redis.call('HSET', r, 'st', ST.running, 'ni', consumed, 'nis', consumedName)
  else
    redis.call('HSET', r, 'st', ST.waiting, 'wn', waitJson)
    if waitTimeout ~= '' then
      local wu = fmt(now + num(waitTimeout))
      redis.call('HSET', r, 'wu', wu, 'due', wu)
    else
      redis.call('HDEL', r, 'due')
    end
    release = true
  end
end
local childrenReady = 0
if children then
  -- rule 8 c-e: the ended spawn entries are added to the parent's monotonic count of ended children (an increment,
  -- never an absolute value: the ends `child-ended.lua` counted since the engine read the count are kept), and the
  -- parent waits until the count reaches `endedAtLeast`, or a child failed (failFast)
  local add, least, failFast = num(ARGV[children + 1]), num(ARGV[children + 2]), ARGV[children + 3] == '1'
  local c = redis.call('HMGET', r, 'ce', 'cf')
  local ended = (num(c[1]) or 0) + add
  if ended >= least or (failFast and c[2] == '1') then
    redis.call('HSET', r, 'st', ST.running)
    childrenReady = 1
  else
    -- NOTE: due again after the recheck interval, not never: a child's end is reported to its parent by a second
    -- script (another slot), and a wake-up lost to a crash between the two is found then
    redis.call('HSET', r, 'st', ST.waiting, 'cwe', fmt(least), 'cwf', failFast and '1' or '0',
      'due', fmt(now + num(ARGV[children + 4])))
    release = true
  end
  redis.call('HSET', r, 'ce', fmt(ended), 'cf', '0')
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
elseif st and p[5] == '1' and not cr and st ~= ST.paused and not midStep then
  -- NOTE: a mid-step write (a heartbeat) leaves the pending pause for the step's end
  if (not release) or (not redis.call('HGET', r, 'due')) then
    if st ~= ST.waiting then redis.call('HSET', r, 'due', fmt(now)) end
  end
  redis.call('HSET', r, 'rs', st, 'st', ST.paused, 'pr', '0')
  st = ST.paused
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
-- rule F2: an ended run gives its slot back; with scope `step`, so does a released one. Either starts a new slot epoch
-- (set after the bump below; an end does for a run with a rate limit too: a retried run begins again)
local newEpoch = false
if (p[8] or p[9]) and (TERMINAL[st] or (release and parseCc(p[8]) == 'step')) then
  redis.call('HDEL', r, 'sh')
  newEpoch = true
end
if release then
  redis.call('HDEL', r, 'lo', 'lt', 'le')
else
  redis.call('HSET', r, 'le', fmt(now + leaseMs))
end
if lastSeq > 0 then
  redis.call('HSET', r, 'ua', fmt(now), 'hs', fmt(lastSeq))
else
  redis.call('HSET', r, 'ua', fmt(now))
end
bump(r, nowUs)
if newEpoch then redis.call('HSET', r, 'se', redis.call('HGET', r, 'iv')) end
local due = num(redis.call('HGET', r, 'due'))
if TERMINAL[st] then
  -- NOTE: the run's keys (q was deleted above) expire with the store's ttl; the global index entries cannot (another
  -- slot): list, purge and reindex drop them once the run is gone.
  if ttl then
    redis.call('PEXPIRE', r, ttl)
    redis.call('PEXPIRE', s, ttl)
    redis.call('PEXPIRE', e, ttl)
    redis.call('PEXPIRE', ids, ttl)
  end
  publish(ARGV[4], 'finished', runId)
elseif release and due and due <= now and st ~= ST.paused then
  publish(ARGV[4], 'ready', runId)
end
local rec = record(r, runId, nowUs)
local newClaim = tonumber(rec[7])
local dirty = 0
if st ~= oldSt or (newClaim ~= -1 and (oldClaim == -1 or newClaim < oldClaim)) or rec[11] ~= flowBefore then dirty = 1 end
local got = 0
if consumed then got = 1 end
-- rule 4: a linked child that ends names its parent, which the store notifies with a second script (its own slot)
local parent = ''
if TERMINAL[st] and oldSt and not TERMINAL[oldSt] then
  local par = redis.call('HGET', r, 'par')
  if par then parent = par end
end
return {1, paused, cancel, got, consumed or '', rec, dirty, lastSeq, consumedName or '', childrenReady, parent, st}
