-- Put a held job (stored, its write confirmed by the replicas) into its lane and ring for it.
-- Returns 1 when it was released; 0 when it was not held (already released or withdrawn) or
-- ended while held (canceled or expired), which leaves nothing to claim.
-- KEYS: the model's held set, the held-since set, the job's lane, the doorbell, the job.
-- ARGV: job id, doorbell cap.
local held, since, lane, doorbell, job = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local tag = redis.call('ZSCORE', held, ARGV[1])
redis.call('ZREM', since, ARGV[1])
if not tag then return 0 end
redis.call('ZREM', held, ARGV[1])
if redis.call('HGET', job, 'status') ~= 'queued' then return 0 end
redis.call('ZADD', lane, tag, ARGV[1])
if redis.call('LLEN', doorbell) < tonumber(ARGV[2]) then redis.call('LPUSH', doorbell, 1) end
return 1
