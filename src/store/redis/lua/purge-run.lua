-- KEYS: run, steps, signals, events, signal ids (the children list stays: see create-run.lua).
local r = KEYS[1]
local runId = ARGV[1]
local now, nowUs = clock()
local v = redis.call('HMGET', r, 'st', 'fa', 'iv', 'wf', 'ver', 'par')
if not v[1] then return {0, record(r, runId, nowUs)} end
local wanted = false
for i = 3, #ARGV do if ARGV[i] == v[1] then wanted = true end end
local fa, older = num(v[2]), tonumber(ARGV[2])
if TERMINAL[v[1]] and wanted and fa and fa < now - older then
  local n = (num(v[3]) or 0) + 1
  if nowUs > n then n = nowUs end
  redis.call('DEL', unpack(KEYS))
  return {1, {runId, '0', fmt(n), v[4] or '', '', '-1', '-1', '-1', v[5] or ''}, v[6] or ''}
end
return {0, record(r, runId, nowUs)}
