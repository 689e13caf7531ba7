-- Helpers shared by every script (the definitions it reads are rendered by redis.lua-definitions.ts).
local function fmt(n) return string.format('%d', n) end
local function num(v)
  if type(v) ~= 'string' then return nil end
  local digits = string.match(v, '^%-?(%d+)$')
  if not digits or #digits > 16 then return nil end
  return tonumber(v)
end
local function clock()
  local t = redis.call('TIME')
  local s, us = tonumber(t[1]), tonumber(t[2])
  return s * 1000 + math.floor(us / 1000), s * 1000000 + us
end
local function claimAt(st, due, le)
  if not st or not CLAIMABLE[st] or not due then return -1 end
  local d = num(due) or 0
  local l = num(le)
  if l and l > d then return l end
  return d
end
local function bump(run, nowUs)
  local n = (num(redis.call('HGET', run, 'iv')) or 0) + 1
  if nowUs > n then n = nowUs end
  redis.call('HSET', run, 'iv', fmt(n))
end
local function record(run, runId, nowUs)
  local v = redis.call('HMGET', run, 'wf', 'st', 'ca', 'due', 'le', 'fa', 'iv')
  if not v[2] and redis.call('EXISTS', run) == 0 then return {runId, '0', fmt(nowUs), '', '', '-1', '-1', '-1'} end
  local ca, fa = num(v[3]), num(v[6])
  return {runId, '1', fmt(num(v[7]) or 0), v[1] or '', v[2] or '', ca and fmt(ca) or '', fmt(claimAt(v[2], v[4], v[5])),
    fa and fmt(fa) or '-1'}
end
local function snapshot(run, steps)
  return {redis.call('HGETALL', run), redis.call('HGETALL', steps)}
end
local function publish(channel, kind, runId)
  redis.call('PUBLISH', channel, cjson.encode({type = kind, runId = runId}))
end
local function popSignal(q, name)
  local h = num(redis.call('HGET', q, 'h:' .. name)) or 0
  local t = num(redis.call('HGET', q, 't:' .. name)) or 0
  if h >= t then return nil end
  h = h + 1
  local field = 'v:' .. fmt(h) .. ':' .. name
  local payload = redis.call('HGET', q, field)
  redis.call('HDEL', q, field)
  if h >= t then redis.call('HDEL', q, 'h:' .. name, 't:' .. name) else redis.call('HSET', q, 'h:' .. name, fmt(h)) end
  if payload then return payload end
  return nil
end
local function pushSignal(q, name, payload)
  local t = (num(redis.call('HGET', q, 't:' .. name)) or 0) + 1
  redis.call('HSET', q, 't:' .. name, fmt(t), 'v:' .. fmt(t) .. ':' .. name, payload)
end
