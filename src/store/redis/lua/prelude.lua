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
  local v = redis.call('HMGET', run, 'wf', 'st', 'ca', 'due', 'le', 'fa', 'iv', 'ver')
  if not v[2] and redis.call('EXISTS', run) == 0 then return {runId, '0', fmt(nowUs), '', '', '-1', '-1', '-1', ''} end
  local ca, fa = num(v[3]), num(v[6])
  return {runId, '1', fmt(num(v[7]) or 0), v[1] or '', v[2] or '', ca and fmt(ca) or '', fmt(claimAt(v[2], v[4], v[5])),
    fa and fmt(fa) or '-1', v[8] or ''}
end
local function snapshot(run, steps)
  return {redis.call('HGETALL', run), redis.call('HGETALL', steps)}
end
local function publish(channel, kind, runId)
  redis.call('PUBLISH', channel, cjson.encode({type = kind, runId = runId}))
end
-- Signal queues (`q`, see redis.keys.ts): per name a FIFO of positions h < pos <= t, each with its payload
-- `v:<pos>:<name>` and its order `o:<pos>:<name>` (the run's send counter `n` when it was queued; absent in a queue
-- written before it existed: taken as sent first).
local function popSignal(q, name)
  local h = num(redis.call('HGET', q, 'h:' .. name)) or 0
  local t = num(redis.call('HGET', q, 't:' .. name)) or 0
  if h >= t then return nil end
  h = h + 1
  local field = 'v:' .. fmt(h) .. ':' .. name
  local payload = redis.call('HGET', q, field)
  redis.call('HDEL', q, field, 'o:' .. fmt(h) .. ':' .. name)
  if h >= t then redis.call('HDEL', q, 'h:' .. name, 't:' .. name) else redis.call('HSET', q, 'h:' .. name, fmt(h)) end
  if payload then return payload end
  return nil
end
-- The earliest sent queued signal among `names` (a list): removed; returns its payload and name, or nil.
local function popEarliest(q, names)
  if #names == 1 then
    local payload = popSignal(q, names[1])
    if payload then return payload, names[1] end
    return nil
  end
  local best, bestSeq = nil, nil
  for _, name in ipairs(names) do
    local h = num(redis.call('HGET', q, 'h:' .. name)) or 0
    local t = num(redis.call('HGET', q, 't:' .. name)) or 0
    if h < t then
      local seq = num(redis.call('HGET', q, 'o:' .. fmt(h + 1) .. ':' .. name)) or 0
      if not bestSeq or seq < bestSeq then best, bestSeq = name, seq end
    end
  end
  if not best then return nil end
  local payload = popSignal(q, best)
  if payload then return payload, best end
  return nil
end
local function pushSignal(q, name, payload)
  local t = (num(redis.call('HGET', q, 't:' .. name)) or 0) + 1
  local n = (num(redis.call('HGET', q, 'n')) or 0) + 1
  redis.call('HSET', q, 't:' .. name, fmt(t), 'v:' .. fmt(t) .. ':' .. name, payload, 'o:' .. fmt(t) .. ':' .. name, fmt(n), 'n', fmt(n))
end
-- The names of a run's signal wait: `wn` (JSON array of names), or `ws` (one name, as written by earlier releases).
-- A `wn` that cannot be read waits for nothing.
local function waitNames(wn, ws)
  if wn then
    local ok, names = pcall(cjson.decode, wn)
    if ok and type(names) == 'table' then
      local out = {}
      for _, name in ipairs(names) do if type(name) == 'string' then out[#out + 1] = name end end
      return out
    end
    return {}
  end
  if ws then return {ws} end
  return {}
end
-- History (`e`, a list of `<seq>:<body>`): the seq of the run's last event, from its `hs` field (`hs`: the field's
-- value, read by the caller); a missing or damaged one goes on from the newest entry kept (or 0), so that a damaged
-- counter never makes a script fail halfway.
local function lastEventSeq(hs, e)
  local seq = num(hs)
  if seq and seq >= 0 then return seq end
  local newest = redis.pcall('LINDEX', e, -1)
  if type(newest) ~= 'string' then return 0 end
  return num(string.match(newest, '^(%d+):')) or 0
end
local function pushEvents(e, batch)
  local len = redis.pcall('RPUSH', e, unpack(batch))
  if type(len) ~= 'number' then
    -- NOTE: a history key of another type (written by hand) could not be read anyway: it is replaced, so that the
    -- write that appends to it never fails halfway
    redis.call('DEL', e)
    len = redis.call('RPUSH', e, unpack(batch))
  end
  return len
end
-- Appends ARGV[at[1]], ARGV[at[2]] … to the history after seq `seq` and keeps the newest LIM.history entries. Returns
-- the last seq given, which the caller records in the run's `hs` field.
local function appendEvents(e, seq, at)
  local n = #at
  local skip = n - LIM.history
  if skip < 0 then skip = 0 end
  local batch = {}
  for k = skip + 1, n do
    batch[#batch + 1] = fmt(seq + k) .. ':' .. ARGV[at[k]]
    if #batch == 500 or k == n then
      if pushEvents(e, batch) > LIM.history and k == n then
        redis.call('LTRIM', e, -LIM.history, -1)
      end
      batch = {}
    end
  end
  return seq + n
end
-- appendEvents of one event, ARGV[at], recorded in `hs` (for the client requests)
local function appendEvent(r, e, at)
  local seq = appendEvents(e, lastEventSeq(redis.call('HGET', r, 'hs'), e), {at})
  redis.call('HSET', r, 'hs', fmt(seq))
  return seq
end
