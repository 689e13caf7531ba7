local r, s = KEYS[1], KEYS[2]
local runId = ARGV[1]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'due', 'le', 'lt', 'wf', 'lo', 'ver')
if not v[1] then return {0, record(r, runId, nowUs)} end
local leaseMs = num(ARGV[3])
if not leaseMs then return redis.error_reply('cairn: claimRun: leaseMs must be an integer') end
local at = claimAt(v[1], v[2], v[3])
local ok = at ~= -1 and at <= now
local count = tonumber(ARGV[5])
if ok and count >= 0 then
  local found = false
  for i = 6, 4 + 2 * count, 2 do if ARGV[i] == v[5] and ARGV[i + 1] == v[7] then found = true end end
  ok = found
end
if not ok then return {0, record(r, runId, nowUs)} end
-- rules F1-F3: the admission (after the pairs; '' none) must cover what the run's limits need. With the flow entries as
-- KEYS[3] (when one node holds every key, the index's too), a run not covered is admitted here, as FLOW_INDEX `admit`
-- would, and one its limits pass over is refused ({0, record}); otherwise {2, record, needs}.
local admitted, needs, refused = claimAdmission(r, s, v[1], ARGV[6 + 2 * math.max(count, 0)], KEYS[3], runId, now)
if refused then return {0, record(r, runId, nowUs)} end
if not admitted then return {2, record(r, runId, nowUs), needs} end
local recovered, orphaned = 0, 0
if v[4] then
  recovered = 1
  orphaned = now - (num(v[3]) or now)
  if orphaned < 0 then orphaned = 0 end
end
local st = v[1]
if STARTED_BY_CLAIM[st] then st = ST.running end
redis.call('HSET', r, 'lo', ARGV[2], 'lt', ARGV[4], 'le', fmt(now + leaseMs), 'st', st, 'ua', fmt(now))
bump(r, nowUs)
return {1, snapshot(r, s), record(r, runId, nowUs), recovered, v[6] or false, orphaned}
