-- KEYS: layout, layout lock, created, meta, due. ARGV: op, token, lockMs, current layout.
local layout, lock = KEYS[1], KEYS[2]
local op, token, current = ARGV[1], ARGV[2], num(ARGV[4])
if not current then return redis.error_reply('cairn: indexLayout: the layout must be an integer') end
if op == 'begin' then
  local found = num(redis.call('GET', layout))
  if found and found >= current then return {fmt(found), 0} end
  if not found and redis.call('EXISTS', KEYS[3], KEYS[4], KEYS[5]) == 0 then
    -- a new (or empty) store: nothing to migrate
    redis.call('SET', layout, fmt(current))
    return {fmt(current), 0}
  end
  if redis.call('SET', lock, token, 'NX', 'PX', ARGV[3]) then return {fmt(found or 1), 1} end
  return {fmt(found or 1), 0}
elseif op == 'renew' then
  if redis.call('GET', lock) ~= token then return {'', 0} end
  redis.call('PEXPIRE', lock, ARGV[3])
  return {'', 1}
elseif op == 'done' then
  local found = num(redis.call('GET', layout))
  if not found or found < current then redis.call('SET', layout, fmt(current)) end
  if redis.call('GET', lock) == token then redis.call('DEL', lock) end
  return {fmt(current), 1}
elseif op == 'release' then
  if redis.call('GET', lock) == token then redis.call('DEL', lock) end
  return {'', 1}
end
return redis.error_reply('cairn: indexLayout: unknown op ' .. tostring(op))
