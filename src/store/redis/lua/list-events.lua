-- KEYS: run, events. ARGV: runId, afterSeq, limit. Up to `limit` entries with a seq above afterSeq, oldest first.
local r, e = KEYS[1], KEYS[2]
local after, limit = num(ARGV[2]), num(ARGV[3])
if not after or not limit then return redis.error_reply('cairn: listEvents: afterSeq and limit must be integers') end
if limit <= 0 or redis.call('EXISTS', r) == 0 then return {} end
local oldest = redis.pcall('LINDEX', e, 0)
-- NOTE: no history, or a key of another type (written by hand): none
if type(oldest) ~= 'string' then return {} end
-- NOTE: seqs are contiguous in the list (appends, and trims from the head only), so the first wanted entry is found by
-- arithmetic; a damaged oldest entry reads from the start (the caller drops entries at or below afterSeq).
local first = num(string.match(oldest, '^(%d+):'))
local start = 0
if first and after >= first then start = after - first + 1 end
return redis.call('LRANGE', e, start, start + limit - 1)
