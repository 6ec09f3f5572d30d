-- The one way a webhook delivery is queued; prepended to every script that queues one, so
-- every caller keeps the same books: the message on the webhook queue, the delivery marked
-- outstanding (the lost-delivery sweep queues it again if it never ends), and the event
-- marked open (a completed event waits while its started event is open).
local function queue_delivery(queue_key, outstanding_key, open_key, message, member, now, ttl)
  redis.call('LPUSH', queue_key, message)
  redis.call('ZADD', outstanding_key, now, member)
  redis.call('SET', open_key, 1, 'EX', ttl)
end

-- True when a job's stored webhook (JSON) asked for ``event``.
local function wants_event(webhook, event)
  if not webhook then return false end
  for _, wanted in ipairs(cjson.decode(webhook).events or {}) do
    if wanted == event then return true end
  end
  return false
end
