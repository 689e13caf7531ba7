-- KEYS: the child's run, steps, signals, events, signal ids. ARGV: childId, parentId, workflow, version,
-- input, state, hasPipeline ('1'/'0'), pipeline, createdAt (ms: the time of the parent's commit, read once for all its
-- children), eventCount, then eventCount history bodies.
-- Step 1 of a parent's `children` commit (RunPatch rule 8a): a new id is created `pending` and held (not due) with
-- its parent; the parent's commit then waits for it, and the store releases it after that (release-child.lua).
-- Returns {outcome, record, createdAt, ended}: `ended` is 1 when the id's run existed and had ended (rule 8c: the
-- parent's commit counts it now, it never ends again), else 0 (a live run: counted when it ends, if it is linked).
local r, s, q, e, ids = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local runId, parentId = ARGV[1], ARGV[2]
local createdAt = num(ARGV[9])
if not createdAt then return redis.error_reply('cairn: spawnChild: createdAt must be an integer') end
local eventCount = num(ARGV[10])
if not eventCount or eventCount < 0 or 10 + eventCount ~= #ARGV then
  return redis.error_reply('cairn: spawnChild: the event count must match the arguments')
end
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'par', 'ca')
if v[1] or redis.call('EXISTS', r) == 1 then
  -- an existing id is never replaced
  local ca = v[3] or ''
  local ended = 0
  if v[1] and TERMINAL[v[1]] then ended = 1 end
  if v[2] == parentId then return {'mine', record(r, runId, nowUs), ca, ended} end
  -- another parent's child, or the parent itself: left as is
  if v[2] or runId == parentId then return {'other', record(r, runId, nowUs), ca, ended} end
  redis.call('HSET', r, 'par', parentId)
  if ended == 0 then return {'linked', record(r, runId, nowUs), ca, 0} end
  return {'linked-ended', record(r, runId, nowUs), ca, 1}
end
-- NOTE: leftovers of a run whose keys expired (or were deleted by hand) one by one; its children list stays (see
-- create-run.lua)
redis.call('DEL', s, q, e, ids)
local ts = fmt(createdAt)
redis.call('HSET', r, 'id', runId, 'wf', ARGV[3], 'ver', ARGV[4], 'st', ST.pending, 'in', ARGV[5], 'state', ARGV[6],
  'pr', '0', 'ca', ts, 'ua', ts, 'iv', fmt(nowUs), 'gen', '1', 'par', parentId)
if ARGV[7] == '1' then redis.call('HSET', r, 'pl', ARGV[8]) end
if eventCount > 0 then
  local at = {}
  for k = 1, eventCount do at[k] = 10 + k end
  redis.call('HSET', r, 'hs', fmt(appendEvents(e, 0, at)))
end
return {'created', record(r, runId, nowUs), ts, 0}
