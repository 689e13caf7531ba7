/**
 * The Lua scripts of the schedules (see `RedisScheduleStore`), one constant each.
 * NOTE: kept out of `lua/`: that folder holds exactly the run scripts of `redis.scripts.ts` (the specs pin it), and
 * constants need no file copied at build time.
 */

export const SCHEDULE_CREATE_LUA = `-- cairn:scheduleCreate
-- KEYS[1] schedules hash (id -> record JSON), KEYS[2] due zset (id -> next fire ms)
-- ARGV[1] id, ARGV[2] record JSON (workflow, spec, paused, next?, source)
-- Returns the stored record JSON, or false when the id exists (never replaces).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return false end
local t = redis.call('TIME')
local now = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local rec = cjson.decode(ARGV[2])
rec.version = 1
rec.created = now
rec.updated = now
local body = cjson.encode(rec)
redis.call('HSET', KEYS[1], ARGV[1], body)
if rec.paused ~= true and type(rec.next) == 'string' then redis.call('ZADD', KEYS[2], rec.next, ARGV[1]) end
return body
`;

export const SCHEDULE_ADVANCE_LUA = `-- cairn:scheduleAdvance
-- KEYS[1] schedules hash, KEYS[2] due zset
-- ARGV[1] id, ARGV[2] expected version, ARGV[3] patch JSON (a field set to null is removed)
-- The compare-and-set: applies the patch and adds one to the version only when the stored version is the expected
-- one. Returns the new record JSON, or false (absent, or another version).
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return false end
local rec = cjson.decode(current)
if tonumber(rec.version) ~= tonumber(ARGV[2]) then return false end
for field, value in pairs(cjson.decode(ARGV[3])) do
  if value == cjson.null then rec[field] = nil else rec[field] = value end
end
local t = redis.call('TIME')
rec.version = tonumber(rec.version) + 1
rec.updated = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local body = cjson.encode(rec)
redis.call('HSET', KEYS[1], ARGV[1], body)
if rec.paused ~= true and type(rec.next) == 'string' then
  redis.call('ZADD', KEYS[2], rec.next, ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return body
`;

export const SCHEDULE_DELETE_LUA = `-- cairn:scheduleDelete
-- KEYS[1] schedules hash, KEYS[2] due zset
-- ARGV[1] id, ARGV[2] expected version ('' = any). Returns 1 when deleted, 0 otherwise.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
if ARGV[2] ~= '' and tonumber(cjson.decode(current).version) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

export const SCHEDULE_DUE_LUA = `-- cairn:scheduleDue
-- KEYS[1] schedules hash, KEYS[2] due zset
-- ARGV[1] until (ms), ARGV[2] limit, ARGV[3..] workflows (none: every workflow)
-- Returns up to limit record JSONs due by until, earliest first (ties by id), of those workflows only.
local limit = tonumber(ARGV[2])
local wanted = nil
if #ARGV > 2 then
  wanted = {}
  for i = 3, #ARGV do wanted[ARGV[i]] = true end
end
local out = {}
local offset = 0
while #out < limit * 2 do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', offset, 100)
  if #ids == 0 then break end
  offset = offset + #ids
  for _, id in ipairs(ids) do
    local body = redis.call('HGET', KEYS[1], id)
    if body and (wanted == nil or wanted[cjson.decode(body).workflow]) then
      out[#out + 1] = id
      out[#out + 1] = body
      if #out >= limit * 2 then break end
    end
  end
  if #out >= limit * 2 then break end
end
return out
`;
