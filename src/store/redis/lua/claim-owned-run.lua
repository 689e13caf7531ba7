local r, s = KEYS[1], KEYS[2]
local runId = ARGV[1]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'due', 'le', 'lt', 'wf', 'lo', 'ver')
if not v[1] then return {0, record(r, runId, nowUs)} end
local leaseMs = num(ARGV[3])
if not leaseMs then return redis.error_reply('cairn: claimOwnedRuns: leaseMs must be an integer') end
local ok = CLAIMABLE[v[1]] and v[2] and v[4] and v[6] == ARGV[2]
local count = tonumber(ARGV[5])
if ok and count >= 0 then
  local found = false
  for i = 6, 4 + 2 * count, 2 do if ARGV[i] == v[5] and ARGV[i + 1] == v[7] then found = true end end
  ok = found
end
if not ok then return {0, record(r, runId, nowUs)} end
-- rules F1-F3, and the admission taken here with KEYS[3], as claim-run.lua
local admitted, needs, refused = claimAdmission(r, s, v[1], ARGV[6 + 2 * math.max(count, 0)], KEYS[3], runId, now)
if refused then return {0, record(r, runId, nowUs)} end
if not admitted then return {2, record(r, runId, nowUs), needs} end
local orphaned = now - (num(v[3]) or now)
if orphaned < 0 then orphaned = 0 end
local st = v[1]
if STARTED_BY_CLAIM[st] then st = ST.running end
redis.call('HSET', r, 'lo', ARGV[2], 'lt', ARGV[4], 'le', fmt(now + leaseMs), 'st', st, 'ua', fmt(now))
bump(r, nowUs)
return {1, snapshot(r, s), record(r, runId, nowUs), 1, v[6], orphaned}
