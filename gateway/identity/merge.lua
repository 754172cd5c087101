-- Merge or unmerge two persons, atomically, with history.
-- ARGV[1] = JSON {op: "merge"|"unmerge", survivor, source, now, who, why}
local req = cjson.decode(ARGV[1])
local function exists(pid) return redis.call('EXISTS', P .. 'person:' .. pid) == 1 end

if req.op == 'merge' then
  if not exists(req.survivor) then return cjson.encode({error = 'no person ' .. req.survivor}) end
  if not exists(req.source) then return cjson.encode({error = 'no person ' .. req.source}) end
  local survivor, source = follow(req.survivor), follow(req.source)
  if survivor == source then return cjson.encode({error = 'already the same person', person = survivor}) end
  local moved = redis.call('SMEMBERS', P .. 'person:' .. source .. ':ids')
  for _, member in ipairs(moved) do
    redis.call('SET', P .. 'id:' .. member, survivor)
    redis.call('SADD', P .. 'person:' .. survivor .. ':ids', member)
  end
  redis.call('DEL', P .. 'person:' .. source .. ':ids')
  redis.call('HSET', P .. 'person:' .. source, 'status', 'merged', 'merged_into', survivor, 'updated', req.now)
  if redis.call('HGET', P .. 'person:' .. source, 'strong') == '1' then
    redis.call('HSET', P .. 'person:' .. survivor, 'strong', '1')
  end
  local event = {event = 'merged', into = survivor, moved = moved, at = req.now, by = req.who, why = req.why}
  redis.call('RPUSH', P .. 'person:' .. source .. ':history', cjson.encode(event))
  redis.call('RPUSH', P .. 'person:' .. survivor .. ':history', cjson.encode(
    {event = 'absorbed', source = source, moved = moved, at = req.now, by = req.who, why = req.why}))
  return cjson.encode({person = survivor, source = source, moved = moved})
end

if req.op == 'unmerge' then
  local source = req.source
  if not exists(source) then return cjson.encode({error = 'no person ' .. source}) end
  local into = redis.call('HGET', P .. 'person:' .. source, 'merged_into')
  if not into or into == '' then return cjson.encode({error = 'person ' .. source .. ' is not merged'}) end
  local history = redis.call('LRANGE', P .. 'person:' .. source .. ':history', 0, -1)
  local moved = {}
  for i = #history, 1, -1 do
    local e = cjson.decode(history[i])
    if e.event == 'merged' then moved = e.moved or {}; break end
  end
  local back = {}
  for _, member in ipairs(moved) do
    if redis.call('GET', P .. 'id:' .. member) == into then
      redis.call('SET', P .. 'id:' .. member, source)
      redis.call('SREM', P .. 'person:' .. into .. ':ids', member)
      redis.call('SADD', P .. 'person:' .. source .. ':ids', member)
      table.insert(back, member)
    end
  end
  redis.call('HSET', P .. 'person:' .. source, 'status', 'active', 'merged_into', '', 'updated', req.now)
  redis.call('RPUSH', P .. 'person:' .. source .. ':history', cjson.encode(
    {event = 'unmerged', from = into, restored = back, at = req.now, by = req.who, why = req.why}))
  redis.call('RPUSH', P .. 'person:' .. into .. ':history', cjson.encode(
    {event = 'released', source = source, restored = back, at = req.now, by = req.who, why = req.why}))
  return cjson.encode({person = source, from = into, restored = back})
end
return cjson.encode({error = 'unknown operation'})
