-- Resolve-or-create, atomically: every presented identifier → one person.
-- ARGV (flat, no JSON to decode): now, who, new_id, cards_on ('' for none), n, then n
-- times system, value, strong ('1' / '0'), then attribute name, value pairs.
-- Rules (see empi.py): strong identifiers decide; other identifiers are linked to the
-- person only when presented with a strong one; a person that only weak identifiers made
-- (provisional) is merged into the strong person when a strong identifier and one of its
-- identifiers are presented together; two different strong persons are never merged here.
local INDEXED = {birth_date = 'dob', phone = 'phone', name_key = 'name'}  -- attribute → index
local req = {now = ARGV[1], who = ARGV[2], new_id = ARGV[3], ids = {}, attrs = {}}
if ARGV[4] ~= '' then req.cards_on = ARGV[4] end
local n = tonumber(ARGV[5])
for i = 1, n do
  local b = 3 + 3 * i
  req.ids[i] = {ARGV[b], ARGV[b + 1], ARGV[b + 2] == '1' and 1 or 0}
end
for j = 6 + 3 * n, #ARGV, 2 do
  req.attrs[ARGV[j]] = ARGV[j + 1]
end

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
local linked_to = {}    -- identifier → the person id its key held (false: none)
local keys = {}
for i, id in ipairs(req.ids) do
  keys[i] = P .. 'id:' .. id[1] .. '|' .. id[2]
end
local held = redis.call('MGET', unpack(keys))
for i, id in ipairs(req.ids) do
  if id[3] == 1 then strong_present = true end
  local ref = id[1] .. '|' .. id[2]
  local pid = held[i]
  linked_to[ref] = pid or false
  if pid and not found[pid] then  -- (a person's identifiers usually all hold its id)
    local strong
    pid, strong = follow_strong(pid)
    if not found[pid] then
      found[pid] = {strong = strong}
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
local promoted = false

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
  if not created and not found[person].strong then
    redis.call('HSET', key, 'strong', '1')  -- a provisional person becomes strong
    promoted = true
  end
end

-- link identifiers: all of them with a strong one present, else only to a new person
-- (an identifier's key changes above only when it already held a person: read once)
local linked = {}
if strong_present or created then
  for _, id in ipairs(req.ids) do
    local ref = id[1] .. '|' .. id[2]
    if not linked_to[ref] then
      linked_to[ref] = person
      redis.call('SET', P .. 'id:' .. ref, person)
      table.insert(linked, ref)
    end
  end
  if #linked > 0 then
    redis.call('SADD', key .. ':ids', unpack(linked))
  end
end
if #linked > 0 then
  redis.call('RPUSH', key .. ':history', cjson.encode(
    {event = created and 'created' or 'linked', identifiers = linked, at = req.now, by = req.who}))
end
-- attributes as sent, where they differ from those kept (with the indexes that find a
-- person by them): a returning patient presented as before writes nothing at all, so the
-- call has no append-only file write to wait for
local names, fields = {}, {}
for field, _ in pairs(req.attrs) do
  table.insert(names, field)
end
if #names > 0 then
  local kept = redis.call('HMGET', key, unpack(names))
  for i, field in ipairs(names) do
    local value = req.attrs[field]
    if kept[i] ~= value then
      table.insert(fields, field)
      table.insert(fields, value)
      local index = INDEXED[field]
      if index then
        redis.call('SADD', P .. index .. ':' .. value, person)
      end
    end
  end
end
if #fields > 0 or #linked > 0 or #changes > 0 or promoted or created then
  redis.call('HSET', key, 'updated', req.now, unpack(fields))
end
return cjson.encode({person = person, created = created, conflict = conflict, cards = cards,
                     identifiers = redis.call('SMEMBERS', key .. ':ids'), changes = changes})
