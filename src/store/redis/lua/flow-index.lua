-- KEYS: flow entries (`...:fc`), meta, debounces (all in the index slot; the holder sets and rate windows named by the
-- runs' limits are too, see redis.keys.ts). ARGV: op, then its arguments.
local FC, M, DB = KEYS[1], KEYS[2], KEYS[3]
local IX = string.sub(FC, 1, #FC - 3)
local op = ARGV[1]
local now = clock()
if op == 'admit' then
  -- per run: runId, slot epoch, cc, rl, needs a slot (1/0), needs a begin (1/0), as the run's slot reported them (a
  -- claim script's `2` reply): see admitRun in prelude.lua
  local out = {}
  for i = 2, #ARGV - 5, 6 do
    out[#out + 1] = admitRun(FC, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4] == '1', ARGV[i + 5] == '1', now) or ''
  end
  return out
elseif op == 'new' then
  -- rule F4, before `createRun` with a lease writes run ARGV[2] (limits ARGV[3], ARGV[4]): an id the index knows
  -- gets no admission (it exists: kept or replaced, never leased at once)
  return admitNew(FC, M, ARGV[2], ARGV[3], ARGV[4], now)
elseif op == 'blocked' then
  -- `blockedBy` of reads. Per run: runId, claimAt (-1 not claimable), slot epoch, cc, rl, holds a slot (1/0), first
  -- claim ahead (1/0). Returns '', `concurrency` or `rate-limit` for each.
  local out = {}
  for i = 2, #ARGV - 6, 7 do
    local id, at, se = ARGV[i], num(ARGV[i + 1]), ARGV[i + 2]
    local why = ''
    if at and at ~= -1 and at <= now then
      local _, climit, ckey = parseCc(ARGV[i + 3])
      local rlimit, per, rkey = parseRl(ARGV[i + 4])
      if climit and ARGV[i + 5] ~= '1' then
        local hk = IX .. ':ch:' .. ckey
        if redis.call('SISMEMBER', hk, id) == 0 and redis.call('SCARD', hk) >= climit then why = 'concurrency' end
      end
      if why == '' and rlimit and ARGV[i + 6] == '1' then
        local bk = IX .. ':rb:' .. rkey
        local mine = num(redis.call('ZSCORE', bk, se .. ':' .. id))
        if not (mine and mine > now - per) and redis.call('ZCOUNT', bk, '(' .. fmt(now - per), '+inf') >= rlimit then
          why = 'rate-limit'
        end
      end
    end
    out[#out + 1] = why
  end
  return out
elseif op == 'debounce' then
  -- rule D: the run of debounce key ARGV[2] and its first time. With no run (or, with ARGV[4], when it is still the
  -- `<runId>|<first>` given there: compare-and-set), the key's run becomes ARGV[3], first now.
  local cur = redis.call('HGET', DB, ARGV[2])
  if cur and cur ~= ARGV[4] then
    local id, first = string.match(cur, '^(.*)|(%d+)$')
    if id then return {id, first} end
  end
  redis.call('HSET', DB, ARGV[2], ARGV[3] .. '|' .. fmt(now))
  return {ARGV[3], fmt(now)}
end
return redis.error_reply('cairn: flowIndex: unknown op ' .. tostring(op))
