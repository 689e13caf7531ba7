-- KEYS: run, signals. ARGV: runId. The signal queues of a live run (HGETALL of `q`); none for an unknown or ended run.
local r, q = KEYS[1], KEYS[2]
local st = redis.call('HGET', r, 'st')
if not st or TERMINAL[st] then return {} end
local all = redis.pcall('HGETALL', q)
-- NOTE: a queue key of another type (written by hand) holds no signal the run could take
if type(all) ~= 'table' or all.err then return {} end
return all
