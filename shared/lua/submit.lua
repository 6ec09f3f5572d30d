-- Store a new job and LPUSH its Celery message, or, when the model already holds its cap
-- of unfinished jobs, store nothing. Returns -1 when stored, else the backlog that left no
-- room. The cap is checked in the same script that counts the job, so concurrent submits
-- can never overshoot it. ARGV[1] is a JSON table; ARGV[2..] are the record's field/value pairs.
local job, submitted, pending, queue = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local args = cjson.decode(ARGV[1])
if args.cap > 0 then
  local backlog = 0
  for _, count in ipairs(redis.call('HVALS', pending)) do
    local n = tonumber(count)
    if n > 0 then backlog = backlog + n end
  end
  if backlog >= args.cap then return backlog end
end
redis.call('HSET', job, unpack(ARGV, 2))
redis.call('EXPIRE', job, args.ttl)
redis.call('HINCRBY', submitted, args.model, 1)
redis.call('HINCRBY', pending, args.version, 1)
redis.call('LPUSH', queue, args.message)
return -1
