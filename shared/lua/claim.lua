-- Claim up to ARGV[1] jobs of one model into a destination list (a worker's in-flight list,
-- or the Celery queue a prefork worker reads), atomically, and return their messages.
-- Re-queued messages (a dead worker's, in the model's Celery list) go first: they had their
-- turn. Then the lanes, high first, except that every ARGV[3]th batch starts with the low lane
-- and every other ARGV[3]th with the normal one, when they hold work: no lane starves. ARGV[2]
-- is 1 for the first claim of a batch (the one that takes a turn). The doorbell is left with
-- one token per claimable job (up to ARGV[4]), so idle workers wake while work remains.
local queue, messages, doorbell, destination, turns, clocks = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local lanes, arrivals, names = {KEYS[7], KEYS[8], KEYS[9]}, {KEYS[10], KEYS[11], KEYS[12]}, {'high', 'normal', 'low'}
local wanted, period, cap = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
local moved = {}
if queue ~= destination then
  while #moved < wanted do
    local message = redis.call('LMOVE', queue, destination, 'RIGHT', 'LEFT')
    if not message then break end
    moved[#moved + 1] = message
  end
end
local order = {1, 2, 3}
if ARGV[2] == '1' and period > 0 then
  local turn = redis.call('INCR', turns) % period
  local first = nil
  if turn == 0 then first = 3 elseif turn == math.floor(period / 2) then first = 2 end
  if first and redis.call('ZCARD', lanes[first]) > 0 then
    order = {first}
    for i = 1, 3 do if i ~= first then order[#order + 1] = i end end
  end
end
for _, i in ipairs(order) do
  if #moved >= wanted then break end
  local popped = redis.call('ZPOPMIN', lanes[i], wanted - #moved)
  for j = 1, #popped, 2 do
    local id = popped[j]
    local message = redis.call('HGET', messages, id)
    if message then
      redis.call('HDEL', messages, id)
      redis.call('LPUSH', destination, message)
      moved[#moved + 1] = message
    end
    redis.call('ZREM', arrivals[i], id)
  end
  if #popped > 0 then redis.call('HSET', clocks, names[i], popped[#popped]) end
end
local left = redis.call('ZCARD', lanes[1]) + redis.call('ZCARD', lanes[2]) + redis.call('ZCARD', lanes[3])
if queue ~= destination then left = left + redis.call('LLEN', queue) end
left = math.min(left, cap)
local tokens = redis.call('LLEN', doorbell)
if left == 0 then
  redis.call('DEL', doorbell)
elseif tokens > left then
  redis.call('LTRIM', doorbell, 0, left - 1)
elseif tokens < left then
  for _ = tokens + 1, left do redis.call('LPUSH', doorbell, 1) end
end
return moved
