-- End a queued or running job (succeeded, failed, canceled or expired); returns 1 if it moved it.
-- Only a queued job expires (args.only_queued): one that has started is never expired.
-- Only the first terminal transition gets past the status check, so everything counted
-- here is counted once per job: the version's pending count, the metrics, the recent
-- failures, and the completed webhook, queued in the same step so a finished job never
-- lacks its delivery. The input is dropped: it can be megabytes, and no one reads it now.
-- ARGV[1] is a JSON table of the step's scalars; ARGV[2..] are field/value pairs to store.
local job, finished, latency, webhook_queue, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local throughput, outstanding, failures, open_key = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local lane, arrivals, messages, deadlines = KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local args = cjson.decode(ARGV[1])
local status = redis.call('HGET', job, 'status')
if not status then return 0 end
if status ~= 'queued' and (status ~= 'running' or args.only_queued) then return 0 end
redis.call('HSET', job, 'status', args.status, 'finished_at', args.now)
-- A job ended before its claim leaves its lane now: nothing ahead of others, nothing to claim.
if status == 'queued' then
  redis.call('ZREM', lane, args.job_id)
  redis.call('ZREM', arrivals, args.job_id)
  redis.call('HDEL', messages, args.job_id)
end
redis.call('ZREM', deadlines, args.job_id)
redis.call('HDEL', job, 'instances', 'input_npy')
local version = redis.call('HGET', job, 'model_version')
if version then redis.call('HINCRBY', pending, version, -1) end
if args.status ~= 'expired' then  -- the throughput estimate counts work done, not jobs given up
  redis.call('INCR', throughput)
  redis.call('EXPIRE', throughput, 120)
end
for i = 2, #ARGV, 2 do redis.call('HSET', job, ARGV[i], ARGV[i + 1]) end
if args.status == 'failed' then
  local failure = cjson.encode({id = args.job_id, model = redis.call('HGET', job, 'model'),
                                error = redis.call('HGET', job, 'error'), at = tonumber(args.now)})
  redis.call('LPUSH', failures, failure)
  redis.call('LTRIM', failures, 0, args.recent_failures - 1)
end
if wants_event(redis.call('HGET', job, 'webhook'), 'completed') then
  queue_delivery(webhook_queue, outstanding, open_key, args.message, args.member, args.now, args.ttl)
end
redis.call('HINCRBY', finished, args.metric_label, 1)
redis.call('HINCRBY', latency, args.bucket, 1)
redis.call('HINCRBY', latency, 'count', 1)
redis.call('HINCRBYFLOAT', latency, 'sum', args.latency)
-- The announcement is the job as GET shows it now, so a long-poll answers without reading it
-- back; it was built from the caller's copy, so it is only sent if that copy's start is the stored one.
if args.announcement ~= '' and (redis.call('HGET', job, 'started_at') or '') == args.started_at then
  redis.call('PUBLISH', args.channel, args.job_id .. '\n' .. args.announcement)
else
  redis.call('PUBLISH', args.channel, args.job_id)
end
return 1
