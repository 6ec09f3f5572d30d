-- Move a queued (or redelivered running) job to running and return its record as a flat
-- field/value list; {-1} when it had already ended (a redelivery), {} when it is gone.
-- On its first start a job that asked for ``started`` gets that event's body fixed now, as
-- a snapshot of the job, and its delivery queued in this same step.
local job, snapshot, webhook_queue, outstanding, open_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local args = cjson.decode(ARGV[1])
local status = redis.call('HGET', job, 'status')
if not status then return {} end
if status ~= 'queued' and status ~= 'running' then return {-1} end
redis.call('HSET', job, 'status', 'running', 'started_at', args.now, 'worker', args.worker)
redis.call('HINCRBY', job, 'attempts', 1)
if wants_event(redis.call('HGET', job, 'webhook'), 'started') and redis.call('EXISTS', snapshot) == 0 then
  local values = redis.call('HMGET', job, unpack(args.fields))
  local record = {}
  for i, name in ipairs(args.fields) do
    if values[i] then
      record[#record + 1] = name
      record[#record + 1] = values[i]
    end
  end
  redis.call('HSET', snapshot, unpack(record))
  redis.call('EXPIRE', snapshot, args.ttl)
  queue_delivery(webhook_queue, outstanding, open_key, args.message, args.member, args.now, args.ttl)
end
return redis.call('HGETALL', job)
