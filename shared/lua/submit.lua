-- Store a new job and put it in its lane, or store nothing: when the model already holds its
-- cap of unfinished jobs ({'full', backlog}), or when the job asked to start within
-- max_queue_s and the estimated wait of its place is longer ({'busy', wait_s}). Stored, it
-- returns {'queued', position, the model's busy rate in jobs/s}. With args.hold the job goes
-- to the model's held set instead of its lane, unclaimable until ``release.lua`` (or withdrawn). Everything is decided in
-- the script that counts and places the job, so concurrent submits can never overshoot.
-- ARGV[1] is a JSON table; ARGV[2..] are the record's field/value pairs.
local job, submitted, pending, queue, lane = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local arrivals, messages, owners, clocks, doorbell = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local deadlines = KEYS[11]
local args = cjson.decode(ARGV[1])
-- A retried submit (its first try reached Redis, but its reply was lost) changes nothing.
if redis.call('EXISTS', job) == 1 then return {'exists'} end
if args.cap > 0 then
  local backlog = 0
  for _, count in ipairs(redis.call('HVALS', pending)) do
    local n = tonumber(count)
    if n > 0 then backlog = backlog + n end
  end
  if backlog >= args.cap then return {'full', backlog} end
end
-- The fair-share tag: one past the later of the lane's clock and the owner's last tag. That
-- last tag is capped at the lane's newest, so an owner whose jobs were canceled is not held back.
local clock = tonumber(redis.call('HGET', clocks, args.priority) or '0')
local tail = clock
local newest = redis.call('ZRANGE', lane, -1, -1, 'WITHSCORES')
if #newest > 0 then tail = math.max(clock, tonumber(newest[2])) end
local last = tonumber(redis.call('HGET', owners, args.owner) or '0')
local tag = math.max(clock, math.min(last, tail)) + 1
-- Jobs that start first: re-queued ones, every job of a higher lane, and this lane's lower tags.
local higher = redis.call('LLEN', queue)
for i = 1, args.rank - 1 do higher = higher + redis.call('ZCARD', KEYS[11 + i]) end
local ahead = higher + redis.call('ZCOUNT', lane, '-inf', tag)
-- The model's busy rate (shared.service_rate): jobs ended per busy worker-second, times live workers.
local ended, busy = 0, 0
for i = 15, 14 + args.buckets do ended = ended + tonumber(redis.call('GET', KEYS[i]) or '0') end
for i = 15 + args.buckets, 14 + 2 * args.buckets do busy = busy + tonumber(redis.call('GET', KEYS[i]) or '0') end
local rate = 0
if ended > 0 and busy > 0 then
  rate = ended / busy * math.max(1, redis.call('ZCOUNT', KEYS[15 + 2 * args.buckets], args.alive_after, '+inf'))
end
if args.max_queue_s > 0 and rate > 0 then
  local wait = ahead / rate
  if wait > args.max_queue_s then return {'busy', tostring(wait)} end
end
redis.call('HSET', job, unpack(ARGV, 2))
redis.call('EXPIRE', job, args.ttl)
redis.call('HINCRBY', submitted, args.model, 1)
redis.call('HINCRBY', pending, args.version, 1)
redis.call('HSET', owners, args.owner, tag)
redis.call('ZADD', arrivals, args.created_at, args.id)
redis.call('HSET', messages, args.id, args.message)
if args.max_queue_s > 0 then redis.call('ZADD', deadlines, args.deadline, args.id) end
if args.hold then
  redis.call('ZADD', KEYS[16 + 2 * args.buckets], tag, args.id)
  redis.call('ZADD', KEYS[17 + 2 * args.buckets], args.created_at, args.id)
  return {'queued', ahead, tostring(rate)}
end
redis.call('ZADD', lane, tag, args.id)
if redis.call('LLEN', doorbell) < args.doorbell_cap then redis.call('LPUSH', doorbell, 1) end
return {'queued', higher + redis.call('ZRANK', lane, args.id), tostring(rate)}
