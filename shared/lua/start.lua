-- Move a queued (or redelivered running) job to running and return its record as a flat
-- field/value list; {-1} when it had already ended (a redelivery), {-2} when it is still queued
-- past its max_queue_s deadline (it never starts: its worker expires it), {} when gone.
-- A first start counts the job's submit-to-start wait in its lane's histogram.
-- On its first start a job that asked for ``started`` gets that event's body fixed now, as
-- a snapshot of the job, and its delivery queued in this same step.
local job, snapshot, webhook_queue, outstanding, open_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local deadlines, waits = KEYS[6], KEYS[7]
local args = cjson.decode(ARGV[1])
local status = redis.call('HGET', job, 'status')
if not status then return {} end
if status ~= 'queued' and status ~= 'running' then return {-1} end
if status == 'queued' then
  local deadline = redis.call('HGET', job, 'deadline')
  if deadline and tonumber(deadline) < tonumber(args.now) then return {-2} end
  redis.call('ZREM', deadlines, args.id)
  if tonumber(redis.call('HGET', job, 'attempts') or '0') == 0 then
    local waited = tonumber(args.now) - tonumber(redis.call('HGET', job, 'created_at'))
    local bucket = '+Inf'
    for i, bound in ipairs(args.wait_bounds) do
      if waited <= bound then bucket = args.wait_labels[i] break end
    end
    local series = redis.call('HGET', job, 'model') .. '|' .. (redis.call('HGET', job, 'priority') or 'normal')
    redis.call('HINCRBY', waits, series .. '|' .. bucket, 1)
    redis.call('HINCRBY', waits, series .. '|count', 1)
    redis.call('HINCRBYFLOAT', waits, series .. '|sum', waited)
  end
end
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
