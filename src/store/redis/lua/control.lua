-- KEYS: run, steps, signals, events, signal ids (every key that expires with the run: `retry` removes their expiry).
-- ARGV: runId, action, compensate, channel, hasNextInput ('1'/'0'), nextInput, then the history event (optional).
local r, e = KEYS[1], KEYS[4]
local runId, action, channel = ARGV[1], ARGV[2], ARGV[4]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'le', 'pr', 'cr', 'rs', 'cc', 'due')
local st = v[1]
if not st then return {'not-found', '', record(r, runId, nowUs), 0} end
local le = num(v[2])
local liveLease = le and le > now
-- NOTE: a damaged resume status resumes as pending, which every live run can go back to.
local rs = v[5]
if not CLAIMABLE[rs] then rs = ST.pending end
local function done(outcome, seq) return {outcome, st, record(r, runId, nowUs), seq or 0} end
local freed = false
if action == 'pause' then
  if TERMINAL[st] then return done('not-active') end
  if st == ST.paused or v[3] == '1' then return done('noop') end
  if liveLease then
    redis.call('HSET', r, 'pr', '1')
    publish(channel, 'control', runId)
  else
    redis.call('HSET', r, 'rs', st, 'st', ST.paused)
    redis.call('HDEL', r, 'lo', 'lt', 'le')
    -- the run keeps its due time (a start delay, a debounce, a sleep, a backoff, a blocked run's place), except a run
    -- whose (expired) lease this ends was executing, or one without a due time (a held child): due at once, as a
    -- release makes it
    if DUE_ON_RELEASE[st] and (v[2] or not v[7]) then redis.call('HSET', r, 'due', fmt(now)) end
    -- rule F2: with scope `step`, the (expired) lease goes and so does the slot (a new slot epoch, after the bump below)
    if parseCc(v[6]) == 'step' then
      redis.call('HDEL', r, 'sh')
      freed = true
    end
  end
elseif action == 'resume' then
  if TERMINAL[st] then return done('not-active') end
  if st == ST.paused then
    redis.call('HSET', r, 'st', rs)
    redis.call('HDEL', r, 'rs')
    publish(channel, 'ready', runId)
  elseif v[3] == '1' then
    redis.call('HSET', r, 'pr', '0')
  else
    return done('noop')
  end
elseif action == 'cancel' then
  if st == ST.cancelled or st == ST.compensating or v[4] then return done('noop') end
  if TERMINAL[st] then return done('not-active') end
  redis.call('HSET', r, 'cr', ARGV[3], 'pr', '0')
  if st == ST.paused then
    redis.call('HSET', r, 'st', rs)
    redis.call('HDEL', r, 'rs')
  end
  redis.call('HSET', r, 'due', fmt(now))
  if liveLease then publish(channel, 'control', runId) else publish(channel, 'ready', runId) end
elseif action == 'retry' then
  if st ~= ST.failed then return done('invalid-state') end
  redis.call('HSET', r, 'st', ST.pending, 'due', fmt(now))
  redis.call('HDEL', r, 'err', 'fa')
  -- the request's next input (a skip of the failed step), when given
  -- (no signal's payload: its name `nis` goes)
  if ARGV[5] == '1' then
    redis.call('HSET', r, 'ni', ARGV[6])
    redis.call('HDEL', r, 'nis')
  end
  -- a run that ended under a ttl had its keys set to expire: a retried run lives again
  for k = 1, #KEYS do redis.call('PERSIST', KEYS[k]) end
  publish(channel, 'ready', runId)
else
  return redis.error_reply('cairn: unknown control action')
end
redis.call('HSET', r, 'ua', fmt(now))
bump(r, nowUs)
if freed then redis.call('HSET', r, 'se', redis.call('HGET', r, 'iv')) end
-- ARGV[7], when given: the history event of the request (only a recorded one has it)
local seq = 0
if ARGV[7] then seq = appendEvent(r, e, 7) end
return done('ok', seq)
