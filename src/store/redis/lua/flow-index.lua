-- KEYS: flow entries (`...:fc`), meta, debounces (all in the index slot; the holder sets and rate windows named by the
-- runs' limits are too, see redis.keys.ts). ARGV: op, then its arguments.
local FC, M, DB = KEYS[1], KEYS[2], KEYS[3]
local IX = string.sub(FC, 1, #FC - 3)
local op = ARGV[1]
local now = clock()
if op == 'admit' then
  -- per run: runId, slot epoch, cc, rl, needs a slot (1/0), needs a begin (1/0), as the run's slot reported them (a
  -- claim script's `2` reply). The admission is for that epoch: an entry of an older one is moved to it first (its
  -- holder set membership belonged to the epoch that ended); one of a newer one means the report is stale.
  local out = {}
  for i = 2, #ARGV - 5, 6 do
    local id, se, cc, rl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local token = ''
    local entry = redis.call('HGET', FC, id)
    local old = entry and tonumber(string.match(entry, '^[a-z]*|(%d+)|'))
    local runSe = tonumber(se)
    if runSe and not (old and old > runSe) then
      local freed
      if not old or old < runSe then
        if entry then
          local _, _, key = parseCc(string.match(entry, '^[a-z]*|%d+|([^|]*)|'))
          if key and redis.call('SREM', IX .. ':ch:' .. key, id) == 1 then freed = key end
        end
        redis.call('HSET', FC, id, (ARGV[i + 5] == '1' and 'f' or '') .. '|' .. se .. '|' .. cc .. '|' .. rl)
      end
      token = admitFlow(IX, id, se, cc, rl, ARGV[i + 4] == '1', ARGV[i + 5] == '1', true, now) or ''
      -- the slot of the older epoch, unless this admission took it again, wakes a waiter of its key
      if freed and redis.call('SISMEMBER', IX .. ':ch:' .. freed, id) == 0 then wakeWaiters(IX, freed, 1) end
      if token ~= '' and cc ~= '' then dropWaiter(IX, id) end
    end
    out[#out + 1] = token
  end
  return out
elseif op == 'new' then
  -- rule F4, before `createRun` with a lease writes run ARGV[2] (limits ARGV[3], ARGV[4]): an id the index knows
  -- gets no admission (it exists: kept or replaced, never leased at once)
  local id = ARGV[2]
  if redis.call('HEXISTS', M, id) == 1 or redis.call('HEXISTS', FC, id) == 1 then return '' end
  return admitFlow(IX, id, '0', ARGV[3], ARGV[4], ARGV[3] ~= '', ARGV[4] ~= '', true, now) or ''
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
