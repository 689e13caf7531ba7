-- KEYS: the parent's run, its children list. ARGV: the parent's id, token, then the ids of the children about to be
-- spawned.
-- Step 0 of a parent's `children` commit (the parent's slot), fenced by the lease token: reads the clock once for the
-- children's createdAt, and lists every id not listed yet under the parent (write-ahead: when the process dies after
-- step 1 and before the parent's commit, the held children it created are still found by `listRuns({ parentRunId })`,
-- so a cancel of the parent cancels them; an id whose run is missing or names another parent is dropped by the list).
-- It also starts the parent's children state (`ce` 0, when absent) before any child is created or linked: a linked
-- live run (or a held child cancelled at once) that ends before the parent's commit is then counted by its
-- `child-ended.lua`, which leaves a parent without children state alone.
-- Returns false when the token is not the run's (nothing written), else the time in ms.
local r, c = KEYS[1], KEYS[2]
if redis.call('HGET', r, 'lt') ~= ARGV[2] then return false end
local now = clock()
redis.call('HSETNX', r, 'ce', '0')
for i = 3, #ARGV do
  if not redis.call('ZSCORE', c, ARGV[i]) then redis.call('ZADD', c, now, ARGV[i]) end
end
return now
