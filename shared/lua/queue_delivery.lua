-- Queue one webhook delivery: a redelivery, a lost one found by the sweep, or a due retry.
local webhook_queue, outstanding, open_key, schedule = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local args = cjson.decode(ARGV[1])
-- A due retry leaves the schedule here; the caller that removes it is the one that queues
-- it, so any number of schedulers may race.
if args.scheduled ~= '' and redis.call('ZREM', schedule, args.scheduled) == 0 then return 0 end
queue_delivery(webhook_queue, outstanding, open_key, args.message, args.member, args.now, args.ttl)
return 1
