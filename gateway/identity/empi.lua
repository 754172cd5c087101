-- Resolve-or-create, atomically: every presented identifier → one person.
-- ARGV[1] = JSON {ids: [[system, value, strong(0/1)], ...], new_id, now, who, attrs}
-- Rules (see empi.py): strong identifiers decide; other identifiers are linked to the
-- person only when presented with a strong one; a person that only weak identifiers made
-- (provisional) is merged into the strong person when a strong identifier and one of its
-- identifiers are presented together; two different strong persons are never merged here.
local req = cjson.decode(ARGV[1])

-- card status in force on req.cards_on (when given), read in the same round trip; a
-- cancelled card refuses the visit before anything is written
local cards = {}
if req.cards_on then
  for i, id in ipairs(req.ids) do
    local st = redis.call('HMGET', P .. 'card:' .. id[1] .. '|' .. id[2], 'status', 'effective', 'reason')
    if st[1] and st[2] and st[2] <= req.cards_on then
      cards[i] = {st[1], st[2], st[3] or ''}
      if st[1] == 'cancelled' then
        return cjson.encode({refused = i - 1, cards = cards})
      end
    else
      cards[i] = false
    end
  end
end


local strong_present = false
local found = {}        -- person id → {strong = bool}
local order = {}
for _, id in ipairs(req.ids) do
  if id[3] == 1 then strong_present = true end
  local pid = redis.call('GET', P .. 'id:' .. id[1] .. '|' .. id[2])
  if pid then
    pid = follow(pid)
    if not found[pid] then
      found[pid] = {strong = redis.call('HGET', P .. 'person:' .. pid, 'strong') == '1'}
      table.insert(order, pid)
    end
  end
end

-- the person: the first strong person found, else the first found, else a new one
local person, conflict = nil, nil
for _, pid in ipairs(order) do
  if found[pid].strong then
    if person and person ~= pid then conflict = pid elseif not person then person = pid end
  end
end
if not person then person = order[1] end
local created = false
if not person then
  person = req.new_id
  created = true
  redis.call('HSET', P .. 'person:' .. person, 'created', req.now, 'status', 'active',
             'strong', strong_present and '1' or '0')
end
local key = P .. 'person:' .. person
local changes = {}

-- provisional persons presented together with a strong identifier join the person
if strong_present then
  for _, pid in ipairs(order) do
    if pid ~= person and not found[pid].strong then
      for _, member in ipairs(redis.call('SMEMBERS', P .. 'person:' .. pid .. ':ids')) do
        redis.call('SET', P .. 'id:' .. member, person)
        redis.call('SADD', key .. ':ids', member)
      end
      redis.call('HSET', P .. 'person:' .. pid, 'status', 'merged', 'merged_into', person)
      redis.call('RPUSH', P .. 'person:' .. pid .. ':history', cjson.encode(
        {event = 'merged', into = person, at = req.now, by = req.who,
         why = 'presented together with a strong identifier'}))
      table.insert(changes, {event = 'absorbed', person = pid})
    end
  end
  redis.call('HSET', key, 'strong', '1')
end

-- link identifiers: all of them with a strong one present, else only to a new person
local linked = {}
for _, id in ipairs(req.ids) do
  local k = P .. 'id:' .. id[1] .. '|' .. id[2]
  local current = redis.call('GET', k)
  if not current and (strong_present or created) then
    redis.call('SET', k, person)
    redis.call('SADD', key .. ':ids', id[1] .. '|' .. id[2])
    table.insert(linked, id[1] .. '|' .. id[2])
  end
end
if #linked > 0 then
  redis.call('RPUSH', key .. ':history', cjson.encode(
    {event = created and 'created' or 'linked', identifiers = linked, at = req.now, by = req.who}))
end
for field, value in pairs(req.attrs) do
  redis.call('HSET', key, field, value)
end
redis.call('HSET', key, 'updated', req.now)
if req.attrs.birth_date then
  redis.call('SADD', P .. 'dob:' .. req.attrs.birth_date, person)
end
if req.attrs.phone then
  redis.call('SADD', P .. 'phone:' .. req.attrs.phone, person)
end
if req.attrs.name_key then
  redis.call('SADD', P .. 'name:' .. req.attrs.name_key, person)
end
return cjson.encode({person = person, created = created, conflict = conflict, cards = cards,
                     identifiers = redis.call('SMEMBERS', key .. ':ids'), changes = changes})
