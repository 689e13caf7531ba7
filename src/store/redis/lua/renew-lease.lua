local r = KEYS[1]
local v = redis.call('HMGET', r, 'lt', 'cr', 'pr')
if v[1] ~= ARGV[1] then return {0} end
local leaseMs = num(ARGV[2])
if not leaseMs then return redis.error_reply('cairn: renewLease: leaseMs must be an integer') end
local now, nowUs = clock()
redis.call('HSET', r, 'le', fmt(now + leaseMs))
bump(r, nowUs)
return {1, v[2] or '', v[3] or '0'}
