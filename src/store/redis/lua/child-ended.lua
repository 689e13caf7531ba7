-- KEYS: the parent's run. ARGV: parentId, failed ('1': the child did not complete), channel.
-- RunPatch rule 4, second half: a linked child ended (its commit returned this parent). The parent's count of ended
-- children `ce` goes up by one (monotonic: an increment, never an absolute value, so no end is overwritten by a
-- parent's commit that read an older value), `cf` is set for a child that did not complete, and a parent waiting for
-- its children (`cwe`: the `endedAtLeast` it waits for) whose condition now holds becomes due now. A parent that is
-- gone, or keeps no children state (restarted since; `ce` is written by the parent's first spawn, step 0, before any
-- child of it exists), is left alone. Returns {1, record, indexDirty} or {0} (left alone).
local r = KEYS[1]
local runId = ARGV[1]
local v = redis.call('HMGET', r, 'st', 'ce', 'cf', 'cwe', 'cwf', 'rs')
if not v[1] or not v[2] then return {0} end
local now, nowUs = clock()
local ended = (num(v[2]) or 0) + 1
local failed = v[3] == '1' or ARGV[2] == '1'
redis.call('HSET', r, 'ce', fmt(ended), 'cf', failed and '1' or '0')
local least = num(v[4])
-- waiting, or paused from waiting
local waiting = v[1] == ST.waiting
if v[1] == ST.paused then waiting = v[6] == ST.waiting end
local dirty = 0
if least and waiting and (ended >= least or (v[5] == '1' and failed)) then
  redis.call('HSET', r, 'due', fmt(now))
  dirty = 1
  if v[1] == ST.waiting then publish(ARGV[3], 'ready', runId) end
end
bump(r, nowUs)
return {1, record(r, runId, nowUs), dirty}
