-- Remove a held job whose write the replicas did not confirm in time: its submit was answered
-- 503, so it must never run. Returns 1 when it was removed; 0 when it was no longer held.
-- KEYS: the model's held set, the held-since set, the job, the lane messages, the lane
-- arrivals, the deadlines, the submitted counter, the model's pending counts.
-- ARGV: job id, model, version.
local held, since, job, messages, arrivals, deadlines = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local submitted, pending = KEYS[7], KEYS[8]
redis.call('ZREM', since, ARGV[1])
if redis.call('ZREM', held, ARGV[1]) == 0 then return 0 end
if redis.call('HGET', job, 'status') == 'queued' then redis.call('HINCRBY', pending, ARGV[3], -1) end
redis.call('DEL', job)
redis.call('HDEL', messages, ARGV[1])
redis.call('ZREM', arrivals, ARGV[1])
redis.call('ZREM', deadlines, ARGV[1])
redis.call('HINCRBY', submitted, ARGV[2], -1)
return 1
