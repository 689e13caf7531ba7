local r = KEYS[1]
local v = redis.call('HMGET', r, 'lt', 'cr', 'pr', 'le')
if v[1] ~= ARGV[1] then return {0} end
local leaseMs = num(ARGV[2])
if not leaseMs then return redis.error_reply('cairn: renewLease: leaseMs must be an integer') end
local now, nowUs = clock()
-- a renewal never shortens a lease (the port's rule), so the due index's claim time never lags behind it
local le = now + leaseMs
local old = num(v[4])
if old and old > le then le = old end
redis.call('HSET', r, 'le', fmt(le))
bump(r, nowUs)
return {1, v[2] or '', v[3] or '0'}
