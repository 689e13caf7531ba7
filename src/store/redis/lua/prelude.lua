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
-- Flow control (see redis.keys.ts): a run's concurrency limit `cc` is `<scope>:<limit>:<key>` and its rate limit `rl`
-- `<limit>:<perMs>:<key>` (keys in base64url). One that cannot be read limits nothing (the decoder reports it).
local function parseCc(cc)
  if type(cc) ~= 'string' then return nil end
  local scope, limit, key = string.match(cc, '^(%a+):(%d+):([%w_%-]*)$')
  limit = num(limit)
  if not scope or not limit then return nil end
  return scope, limit, key
end
local function parseRl(rl)
  if type(rl) ~= 'string' then return nil end
  local limit, per, key = string.match(rl, '^(%d+):(%d+):([%w_%-]*)$')
  limit, per = num(limit), num(per)
  if not limit or not per then return nil end
  return limit, per, key
end
-- A run's flow entry for the index (`...:fc`): `<flags>|<slot epoch>|<cc>|<rl>`, or '' for a run without limits.
-- Flags: `h` it holds a slot, `c` a cancel is pending, `f` its first claim is ahead (pending without a step entry).
local function flowEntry(run, st, cc, rl, sh, cr, se)
  if not cc and not rl then return '' end
  local flags = ''
  if sh == '1' then flags = flags .. 'h' end
  if cr then flags = flags .. 'c' end
  if rl and st == ST.pending and redis.call('HLEN', string.sub(run, 1, #run - 1) .. 's') == 0 then flags = flags .. 'f' end
  return flags .. '|' .. (se or '0') .. '|' .. (cc or '') .. '|' .. (rl or '')
end
local function record(run, runId, nowUs)
  local v = redis.call('HMGET', run, 'wf', 'st', 'ca', 'due', 'le', 'fa', 'iv', 'ver', 'pri', 'cc', 'rl', 'sh', 'cr', 'se')
  if not v[2] and redis.call('EXISTS', run) == 0 then return {runId, '0', fmt(nowUs), '', '', '-1', '-1', '-1', '', '', ''} end
  local ca, fa = num(v[3]), num(v[6])
  return {runId, '1', fmt(num(v[7]) or 0), v[1] or '', v[2] or '', ca and fmt(ca) or '', fmt(claimAt(v[2], v[4], v[5])),
    fa and fmt(fa) or '-1', v[8] or '', v[9] or '', flowEntry(run, v[2], v[10], v[11], v[12], v[13], v[14])}
end
-- Rules F1-F3 at a claim, in the run's slot (KEYS run `r`, steps `s`): whether the run may be leased with the admission
-- `adm` (`<slot epoch>:<slot 1/0>:<begin 1/0>`, '' none) given by the index slot. A run without limits, with a pending
-- cancel (F1), holding its slot and not at its first claim needs none. Returns true (and takes the slot: `sh`), or
-- false and what an admission needs: {slot epoch, cc, rl, needs a slot (1/0), needs a begin (1/0)}.
local function flowClaim(r, s, st, adm)
  local f = redis.call('HMGET', r, 'cc', 'rl', 'sh', 'cr', 'se')
  if not f[1] and not f[2] then return true end
  if f[4] then return true end
  local needSlot = parseCc(f[1]) ~= nil and f[3] ~= '1'
  local needBegin = parseRl(f[2]) ~= nil and st == ST.pending and redis.call('HLEN', s) == 0
  if not needSlot and not needBegin then return true end
  local se = f[5] or '0'
  local ase, aslot, abegin = string.match(adm or '', '^(%d+):([01]):([01])$')
  if ase ~= se or (needSlot and aslot ~= '1') or (needBegin and abegin ~= '1') then
    return false, {se, f[1] or '', f[2] or '', needSlot and '1' or '0', needBegin and '1' or '0'}
  end
  if needSlot then redis.call('HSET', r, 'sh', '1') end
  return true
end
-- Rules F2, F3 in the index slot (`ix`: the index key prefix): admits run `id` of slot epoch `se` when its limits let it
-- in now. A run already in its key's holder set (or whose begin is in the window for this epoch) takes nothing more.
-- With `reserve`, takes what it needs (SADD to the holder set, its begin in the window); otherwise only checks.
-- Returns the admission `<se>:<slot 1/0>:<begin 1/0>`, or nil, the limit that passes it over (`concurrency`,
-- `rate-limit`) and, for a rate limit, when its window frees.
local function admitFlow(ix, id, se, cc, rl, needSlot, needBegin, reserve, now)
  local slot, begin = '0', '0'
  local hk, bk, member, rlimit, per
  local _, climit, ckey = parseCc(cc)
  if climit then
    hk = ix .. ':ch:' .. ckey
    if redis.call('SISMEMBER', hk, id) == 1 then slot = '1'
    elseif needSlot then
      if redis.call('SCARD', hk) >= climit then return nil, 'concurrency' end
      if reserve then slot = 'r' end
    end
  end
  local rkey
  rlimit, per, rkey = parseRl(rl)
  if rlimit and needBegin then
    bk = ix .. ':rb:' .. rkey
    member = se .. ':' .. id
    redis.call('ZREMRANGEBYSCORE', bk, '-inf', fmt(now - per))
    if redis.call('ZSCORE', bk, member) then begin = '1'
    else
      if redis.call('ZCARD', bk) >= rlimit then
        local oldest = redis.call('ZRANGE', bk, 0, 0, 'WITHSCORES')
        return nil, 'rate-limit', (tonumber(oldest[2]) or now) + per
      end
      if reserve then begin = 'r' end
    end
  end
  if slot == 'r' then
    redis.call('SADD', hk, id)
    slot = '1'
  end
  if begin == 'r' then
    redis.call('ZADD', bk, now, member)
    redis.call('ZREMRANGEBYRANK', bk, 0, -(rlimit + 1))
    redis.call('PEXPIRE', bk, per)
    begin = '1'
  end
  return se .. ':' .. slot .. ':' .. begin
end
-- Concurrency waiters (rule F2, see redis.keys.ts), in the index slot (`ix`). A run that is due but finds its key's
-- slots all held (a claim passes it over, or its index update finds the key full) is parked (`parkRun`): its due
-- entries are pushed to now + a park interval, and it is remembered in its key's waiters zset `<ix>:cw:<key>` (scores
-- 0, members `<order>|<runId>`: the lexically first member is the first in claim order, higher priority then earlier
-- original score) and in `<ix>:cp` (runId →
-- `<pushes>|<pushed score>|<original score>|<key>|<order>|<due keys>`, the due keys as suffixes of `ix`,
-- `|`-separated). A slot given back wakes the head waiter (`wakeWaiters`): its due entries go back to their original
-- score, only where they are still at the pushed one. A run whose index entry is applied is dropped from its key's
-- waiters (`dropWaiter`). A wake-up that is missed costs a parked run no more than its park interval: its pushed score
-- comes due and a claim checks it again.
local PARK_BASE_MS, PARK_CAP_MS, MAX_SAFE = 1000, 30000, 9007199254740991
local function waiterOrder(p, orig)
  local head = 'b'
  if p > 0 then head = 'a' .. string.format('%016d', MAX_SAFE - math.min(p, MAX_SAFE))
  elseif p < 0 then head = 'c' .. string.format('%016d', math.min(-p, MAX_SAFE)) end
  return head .. string.format('%016d', math.min(math.max(orig, 0), MAX_SAFE))
end
-- a waiter's `...:cp` entry: {pushes, pushed score, original score, key, order, {due key suffixes}}, or nil
local function parseWaiter(info)
  if type(info) ~= 'string' then return nil end
  local c, pushed, orig, key, order, rest = string.match(info, '^(%d+)|(%-?%d+)|(%-?%d+)|([^|]*)|([a-c]%d*)|(.*)$')
  if not c then return nil end
  local dues = {}
  for suffix in string.gmatch(rest, '[^|]+') do dues[#dues + 1] = suffix end
  return {count = tonumber(c), pushed = tonumber(pushed), orig = tonumber(orig), key = key, order = order, dues = dues}
end
local function dropWaiter(ix, id)
  local cp = ix .. ':cp'
  local info = redis.call('HGET', cp, id)
  if not info then return end
  local w = parseWaiter(info)
  if w then redis.call('ZREM', ix .. ':cw:' .. w.key, w.order .. '|' .. id) end
  redis.call('HDEL', cp, id)
end
-- Parks run `id` (concurrency key `ckey`), found blocked at `score` in the due key `base` at priority level `p`: its
-- entries in `base` and in the global due key (when `base` is a version's) are pushed. A run found at its pushed score
-- (or at its original one) is parked again for longer, keeping its original score and place among the waiters.
-- The park interval is 1 s, doubled at each park in a row, and at least 1 s per `limit` waiters ahead of the run (they
-- take the key's slots first: a run deep in the line is not checked again before its turn can come), at most 30 s;
-- `spread` (0 to 1) shortens it by up to a quarter, so that runs parked together come due apart.
local function parkRun(ix, id, ckey, limit, base, p, score, now, spread)
  local cp = ix .. ':cp'
  local level = ''
  if p ~= 0 then level = ':p:' .. fmt(p) end
  local count, orig, dues, known = 0, score, {}, {}
  local w = parseWaiter(redis.call('HGET', cp, id))
  if w then
    redis.call('ZREM', ix .. ':cw:' .. w.key, w.order .. '|' .. id)
    if w.key == ckey and (w.pushed == score or w.orig == score) then
      count, orig = w.count, w.orig
      for _, suffix in ipairs(w.dues) do
        if not known[suffix] then
          known[suffix] = true
          dues[#dues + 1] = suffix
        end
      end
    end
  end
  for _, key in ipairs({base .. level, ix .. ':due' .. level}) do
    local suffix = string.sub(key, #ix + 1)
    if string.sub(key, 1, #ix) == ix and not known[suffix] then
      known[suffix] = true
      dues[#dues + 1] = suffix
    end
  end
  count = math.min(count + 1, 16)
  local order, wk = waiterOrder(p, orig), ix .. ':cw:' .. ckey
  redis.call('ZADD', wk, 0, order .. '|' .. id)
  local ahead = math.floor((redis.call('ZRANK', wk, order .. '|' .. id) or 0) / math.max(limit or 1, 1))
  local interval = math.min(PARK_CAP_MS, PARK_BASE_MS * math.max(2 ^ (count - 1), 1 + ahead))
  local pushed = now + math.floor(interval * (1 - (spread or 0) / 4))
  for _, suffix in ipairs(dues) do redis.call('ZADD', ix .. suffix, 'XX', fmt(pushed), id) end
  redis.call('HSET', cp, id, fmt(count) .. '|' .. fmt(pushed) .. '|' .. fmt(orig) .. '|' .. ckey .. '|' .. order .. '|' .. table.concat(dues, '|'))
end
-- A slot of concurrency key `ckey` was given back `n` times: wakes that many waiters of the key, first in claim order
-- first (a waiter whose entries are no longer at their pushed score changed meanwhile: it is dropped, not woken).
local function wakeWaiters(ix, ckey, n)
  local wk, cp = ix .. ':cw:' .. ckey, ix .. ':cp'
  local tries = 0
  while n > 0 and tries < 100 do
    tries = tries + 1
    local head = redis.call('ZRANGE', wk, 0, 0)[1]
    if not head then return end
    redis.call('ZREM', wk, head)
    local id = string.match(head, '^[a-c]%d*|(.*)$')
    local w = id and parseWaiter(redis.call('HGET', cp, id))
    if w and w.order .. '|' .. id == head then
      redis.call('HDEL', cp, id)
      local woke = false
      for _, suffix in ipairs(w.dues) do
        local key = ix .. suffix
        if tonumber(redis.call('ZSCORE', key, id)) == w.pushed then
          redis.call('ZADD', key, 'XX', fmt(w.orig), id)
          woke = true
        end
      end
      if woke then n = n - 1 end
    end
  end
end
-- Rules F2, F3 for one run in the index slot (`fc`: the flow entries, `...:fc`), as a claim script's `2` reply reports
-- what its limits need (slot epoch `se`, cc, rl, needs a slot, needs a begin): the admission is for that epoch. An entry
-- of an older epoch is moved to it first (its holder set membership belonged to the epoch that ended); one of a newer
-- epoch means the report is stale (nil). Returns the admission (see admitFlow) or nil.
local function admitRun(fc, id, se, cc, rl, needSlot, needBegin, now)
  local runSe = tonumber(se)
  if not runSe then return nil end
  local entry = redis.call('HGET', fc, id)
  local old = entry and tonumber(string.match(entry, '^[a-z]*|(%d+)|'))
  if old and old > runSe then return nil end
  local ix = string.sub(fc, 1, #fc - 3)
  local freed
  if not old or old < runSe then
    if entry then
      local _, _, key = parseCc(string.match(entry, '^[a-z]*|%d+|([^|]*)|'))
      if key and redis.call('SREM', ix .. ':ch:' .. key, id) == 1 then freed = key end
    end
    redis.call('HSET', fc, id, (needBegin and 'f' or '') .. '|' .. se .. '|' .. cc .. '|' .. rl)
  end
  local token = admitFlow(ix, id, se, cc, rl, needSlot, needBegin, true, now)
  -- the slot of the older epoch, unless this admission took it again, wakes a waiter of its key
  if freed and redis.call('SISMEMBER', ix .. ':ch:' .. freed, id) == 0 then wakeWaiters(ix, freed, 1) end
  if token and token ~= '' and cc ~= '' then dropWaiter(ix, id) end
  return token
end
-- Rule F4: the admission of a run `createRun` is about to write with a lease (limits `cc`, `rl`), in the index slot
-- of the flow entries `fc` and meta `m`: none ('') for an id the index knows (it exists: kept or replaced, never leased
-- at once). FLOW_INDEX `new` on a Cluster; the create script itself when one node holds every key.
local function admitNew(fc, m, id, cc, rl, now)
  if redis.call('HEXISTS', m, id) == 1 or redis.call('HEXISTS', fc, id) == 1 then return '' end
  return admitFlow(string.sub(fc, 1, #fc - 3), id, '0', cc, rl, cc ~= '', rl ~= '', true, now) or ''
end
-- Rules F1-F3 of a claim script (claim-run.lua, claim-owned-run.lua): the admission `given` (from the index slot, ''
-- none) must cover what the run's limits need (flowClaim). With the flow entries `fc` (one node holds every key) a run
-- not covered is admitted here, as FLOW_INDEX `admit` would. Returns admitted, needs, refused (its limits pass it over).
local function claimAdmission(r, s, st, given, fc, id, now)
  local admitted, needs = flowClaim(r, s, st, given)
  if admitted or not fc then return admitted, needs, false end
  local adm = admitRun(fc, id, needs[1], needs[2], needs[3], needs[4] == '1', needs[5] == '1', now)
  if not adm then return false, needs, true end
  admitted, needs = flowClaim(r, s, st, adm)
  return admitted, needs, false
end
local function snapshot(run, steps)
  return {redis.call('HGETALL', run), redis.call('HGETALL', steps)}
end
local function publish(channel, kind, runId)
  redis.call('PUBLISH', channel, cjson.encode({type = kind, runId = runId}))
end
-- Signal queues (`q`, see redis.keys.ts): per name a FIFO of positions h < pos <= t, each with its payload
-- `v:<pos>:<name>` and its order `o:<pos>:<name>` (the run's send counter `n` when it was queued; absent in a queue
-- written before it existed: taken as sent first); `c` the number of queued signals, all names (the sum of t - h).
-- The number of queued signals of `q`: its `c` field, kept by pushSignal and popSignal. A queue written before `c`
-- existed (or whose `c` is damaged) is counted once from its heads and tails (HSCAN of the `t:` fields only, so its
-- payloads are never read); the next push or pop writes the count.
local function queuedCount(q)
  local c = num(redis.call('HGET', q, 'c'))
  if c and c >= 0 then return c end
  local count, cursor = 0, '0'
  repeat
    local page = redis.call('HSCAN', q, cursor, 'MATCH', 't:*', 'COUNT', 1000)
    cursor = page[1]
    local fields = page[2]
    for k = 1, #fields, 2 do
      local name = string.sub(fields[k], 3)
      local t = num(fields[k + 1]) or 0
      local h = num(redis.call('HGET', q, 'h:' .. name)) or 0
      if t > h then count = count + (t - h) end
    end
  until cursor == '0'
  return count
end
local function popSignal(q, name)
  local h = num(redis.call('HGET', q, 'h:' .. name)) or 0
  local t = num(redis.call('HGET', q, 't:' .. name)) or 0
  if h >= t then return nil end
  local c = queuedCount(q) - 1
  if c < 0 then c = 0 end
  h = h + 1
  local field = 'v:' .. fmt(h) .. ':' .. name
  local payload = redis.call('HGET', q, field)
  redis.call('HDEL', q, field, 'o:' .. fmt(h) .. ':' .. name)
  if h >= t then redis.call('HDEL', q, 'h:' .. name, 't:' .. name) else redis.call('HSET', q, 'h:' .. name, fmt(h)) end
  redis.call('HSET', q, 'c', fmt(c))
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
-- Queues a signal; `count`: the queue's queuedCount, when the caller has read it already.
local function pushSignal(q, name, payload, count)
  local c = (count or queuedCount(q)) + 1
  local t = (num(redis.call('HGET', q, 't:' .. name)) or 0) + 1
  local n = (num(redis.call('HGET', q, 'n')) or 0) + 1
  redis.call('HSET', q, 't:' .. name, fmt(t), 'v:' .. fmt(t) .. ':' .. name, payload, 'o:' .. fmt(t) .. ':' .. name, fmt(n), 'n', fmt(n), 'c', fmt(c))
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
