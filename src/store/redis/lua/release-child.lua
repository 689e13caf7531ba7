-- KEYS: the child's run. ARGV: childId, parentId, channel.
-- Step 3 of a parent's `children` commit (RunPatch rule 8b): a held child of that parent (`pending`, not due) becomes
-- due now. Returns {released (1/0), record}.
local r = KEYS[1]
local runId = ARGV[1]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'due', 'par')
if v[1] ~= ST.pending or v[2] or v[3] ~= ARGV[2] then return {0, record(r, runId, nowUs)} end
redis.call('HSET', r, 'due', fmt(now))
bump(r, nowUs)
publish(ARGV[3], 'ready', runId)
return {1, record(r, runId, nowUs)}
