-- Resolve-or-create, atomically: every presented identifier → one person.
-- ARGV (flat strings, nothing to decode): now, who, new_id, cards_on ('' for none), strong
-- (one '1' or '0' per identifier: its length is their number n), the attributes name,
-- birth_date, phone, sex and name_key ('' for one not presented), then the n identifiers
-- as 'system|value'.
-- Reply: {identifiers..., same, cards (or nil), conflict (or nil), created (1 / 0), person}:
-- same = 1, no identifiers listed: they are the presented ones; {0, cards, nil, i, nil}
-- when the card at index i (from 0) is cancelled. cards: per card its {status, effective,
-- reason} in force on cards_on, or nil; nil when none has a status.
-- Rules (see empi.py): strong identifiers decide; other identifiers are linked to the
-- person only when presented with a strong one; a person that only weak identifiers made
-- (provisional) is merged into the strong person when a strong identifier and one of its
-- identifiers are presented together; two different strong persons are never merged here.
-- A returning patient presented as before costs four reads: card keys (EXISTS), identifier
-- keys (MGET), the person's hash (HMGET), the size of its identifier set (SCARD).
local now, who, new_id, cards_on, strong = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local n = #strong
local FIRST = 10  -- ARGV[FIRST + i]: identifier i
local ATTR = 5    -- ARGV[ATTR + j]: attribute j of the person hash's fields 3 .. 7 below

-- card status in force on cards_on (when given), read in the same round trip; a cancelled
-- card refuses the visit before anything is written. Most cards have none: one EXISTS for
-- all of them decides whether each must be read.
local cards = false
if cards_on ~= '' then
  local keys = {}
  for i = 1, n do keys[i] = P .. 'card:' .. ARGV[FIRST + i] end
  if redis.call('EXISTS', unpack(keys)) > 0 then
    cards = {}
    for i = 1, n do
      local st = redis.call('HMGET', keys[i], 'status', 'effective', 'reason')
      if st[1] and st[2] and st[2] <= cards_on then
        cards[i] = {st[1], st[2], st[3] or ''}
        if st[1] == 'cancelled' then return {0, cards, false, i - 1, false} end
      else
        cards[i] = false
      end
    end
  end
end

-- how many of the n identifiers differ (the gateway never sends one twice; a caller may)
local function distinct(count)
  for i = 2, n do
    for j = 1, i - 1 do
      if ARGV[FIRST + i] == ARGV[FIRST + j] then count = count - 1 break end
    end
  end
  return count
end

-- the person an identifier's key held, followed through merges: the surviving person and
-- its hash's merged_into, strong and attribute fields (one read per person followed)
local function survivor(pid)
  for _ = 1, 32 do
    local h = redis.call('HMGET', P .. 'person:' .. pid, 'merged_into', 'strong', 'name',
                         'birth_date', 'phone', 'sex', 'name_key')
    if not h[1] or h[1] == '' then return pid, h end
    pid = h[1]
  end
  return pid, redis.call('HMGET', P .. 'person:' .. pid, 'merged_into', 'strong', 'name',
                         'birth_date', 'phone', 'sex', 'name_key')
end

local id_keys = {}
for i = 1, n do id_keys[i] = P .. 'id:' .. ARGV[FIRST + i] end
local held = redis.call('MGET', unpack(id_keys))
local strong_present = string.find(strong, '1', 1, true) ~= nil

-- the persons found (surviving person id → its hash fields, see survivor), in order; the
-- usual case, every identifier that held one holding the same, follows it once. unheld:
-- some identifier held no person; alike: every one held the first one's.
local found, order, followed = {}, {}, false
local first, unheld, alike = false, false, true
for i = 1, n do
  local pid = held[i]
  if not pid then
    unheld, alike = true, false
  elseif not first then
    first = pid
    local into, h = survivor(pid)
    found[into], order[1] = h, into
  elseif pid ~= first then
    alike = false
    followed = followed or {}
    if not followed[pid] then
      followed[pid] = true
      local into, h = survivor(pid)
      if not found[into] then
        found[into] = h
        order[#order + 1] = into
      end
    end
  end
end

-- the person: the first strong person found, else the first found, else a new one
local person, conflict = nil, false
for _, pid in ipairs(order) do
  if found[pid][2] == '1' then
    if person and person ~= pid then conflict = pid elseif not person then person = pid end
  end
end
if not person then person = order[1] end
local created = false
local kept = found[person]  -- the person's hash fields (nil for a new person)
if not person then person, created = new_id, true end
local key = P .. 'person:' .. person
local changed = created

-- provisional persons presented together with a strong identifier join the person
if strong_present then
  for _, pid in ipairs(order) do
    if pid ~= person and found[pid][2] ~= '1' then
      for _, member in ipairs(redis.call('SMEMBERS', P .. 'person:' .. pid .. ':ids')) do
        redis.call('SET', P .. 'id:' .. member, person)
        redis.call('SADD', key .. ':ids', member)
      end
      redis.call('HSET', P .. 'person:' .. pid, 'status', 'merged', 'merged_into', person)
      redis.call('RPUSH', P .. 'person:' .. pid .. ':history', cjson.encode(
        {event = 'merged', into = person, at = now, by = who,
         why = 'presented together with a strong identifier'}))
      changed = true
    end
  end
end

-- link identifiers: all of them with a strong one present, else only to a new person
-- (an identifier's key changes above only when it already held a person: read once)
local linked = false
if unheld and (strong_present or created) then
  local seen, sets = {}, {}
  linked = {}
  for i = 1, n do
    local ref = ARGV[FIRST + i]
    if not held[i] and not seen[ref] then
      seen[ref] = true
      linked[#linked + 1] = ref
      sets[#sets + 1] = id_keys[i]
      sets[#sets + 1] = person
    end
  end
  if #linked > 0 then
    redis.call('MSET', unpack(sets))
    redis.call('SADD', key .. ':ids', unpack(linked))
    redis.call('RPUSH', key .. ':history', cjson.encode(
      {event = created and 'created' or 'linked', identifiers = linked, at = now, by = who}))
    changed = true
  end
end

-- the person's hash: a new person's creation fields; attributes as sent, where they differ
-- from those kept (with the indexes that find a person by them). A returning patient
-- presented as before writes nothing at all, so the call has no append-only file write to
-- wait for.
local fields
if created then
  fields = {'created', now, 'status', 'active', 'strong', strong_present and '1' or '0',
            'updated', now}
else
  fields = {'updated', now}
  if strong_present and kept[2] ~= '1' then  -- a provisional person becomes strong
    fields[3], fields[4] = 'strong', '1'
    changed = true
  end
end
local before = #fields
-- (each attribute compared in a call of its own: a table of their names would be built
-- again at every run of the script)
local function attribute(j, field, index)
  local value = ARGV[ATTR + j]
  if value ~= '' and (created or kept[2 + j] ~= value) then
    fields[#fields + 1] = field
    fields[#fields + 1] = value
    if index then redis.call('SADD', P .. index .. ':' .. value, person) end
  end
end
attribute(1, 'name')
attribute(2, 'birth_date', 'dob')
attribute(3, 'phone', 'phone')
attribute(4, 'sex')
attribute(5, 'name_key', 'name')
if changed or #fields > before then
  redis.call('HSET', key, unpack(fields))
end

-- the reply: the person's identifiers, then same, cards, conflict, created and the person.
-- Both shortcuts rely on what every script here (empi.lua, merge.lua) does: pointing an
-- identifier's key at a person adds it to that person's set, and no key is ever deleted.
-- A new person's identifiers are the ones just linked (none held a person, so none was
-- ever in its set). A person every presented identifier pointed to has those in its set:
-- when the set has no more members, the identifiers are the presented ones, not sent back
-- (same = 1).
local reply, same = linked, 0
if not created then
  if alike and first == person and redis.call('SCARD', key .. ':ids') == distinct(n) then
    reply, same = {}, 1
  else
    reply = redis.call('SMEMBERS', key .. ':ids')
  end
end
local m = #reply
reply[m + 1], reply[m + 2], reply[m + 3], reply[m + 4], reply[m + 5] =
  same, cards, conflict, created and 1 or 0, person
return reply
