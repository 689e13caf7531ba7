-- KEYS: the parent's run. ARGV: parentId, failed ('1': the child did not complete), channel.
-- RunPatch rule 4, second half: a linked child ended (its commit returned this parent). The parent's count of live
-- children goes down by one (never below 0), `cf` is set for a child that did not complete, and a parent waiting
-- for its children whose condition now holds becomes due now. A parent that is gone, or keeps no children state
-- (replaced, or restarted since), is left alone. Returns {1, record, indexDirty} or {0} (left alone).
local r = KEYS[1]
local runId = ARGV[1]
local v = redis.call('HMGET', r, 'st', 'co', 'cf', 'cwa', 'cwf', 'rs')
if not v[1] or not v[2] then return {0} end
local now, nowUs = clock()
local open = (num(v[2]) or 0) - 1
if open < 0 then open = 0 end
local failed = v[3] == '1' or ARGV[2] == '1'
redis.call('HSET', r, 'co', fmt(open), 'cf', failed and '1' or '0')
local most = num(v[4])
-- waiting, or paused from waiting
local waiting = v[1] == ST.waiting
if v[1] == ST.paused then waiting = v[6] == ST.waiting end
local dirty = 0
if most and waiting and (open <= most or (v[5] == '1' and failed)) then
  redis.call('HSET', r, 'due', fmt(now))
  dirty = 1
  if v[1] == ST.waiting then publish(ARGV[3], 'ready', runId) end
end
bump(r, nowUs)
return {1, record(r, runId, nowUs), dirty}
