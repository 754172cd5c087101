-- One outbox (gateway/store.py: Outbox), written atomically: the visit's tracking record,
-- its queue entries, marks, hash fields and counts — or nothing, when its `unless` key
-- exists (an HL7 message already accepted under the same sender and MSH-10).
-- KEYS: the tracking record, then each stream, mark, hash and sorted set in ARGV's order,
-- then the `unless` key (when there is one).
-- ARGV: ttl, unless (index into KEYS, 0: none), #entries, #marks, #hash fields, #counts,
-- then per entry: #fields, field, value, ...; per mark: value, ttl; per hash field:
-- name, value; per count: member; then the record's fields and values.
-- Returns 1 once written, 0 when the `unless` key exists (nothing written).
local guard = tonumber(ARGV[2])
if guard > 0 and redis.call('EXISTS', KEYS[guard]) == 1 then
  return 0
end
local ne, nm, nh, nc = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local a, k = 7, 2
for _ = 1, ne do
  local nf = tonumber(ARGV[a])
  redis.call('XADD', KEYS[k], '*', unpack(ARGV, a + 1, a + 2 * nf))
  a = a + 1 + 2 * nf
  k = k + 1
end
for _ = 1, nm do
  redis.call('SET', KEYS[k], ARGV[a], 'EX', ARGV[a + 1])
  a = a + 2
  k = k + 1
end
for _ = 1, nh do
  redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 1])
  a = a + 2
  k = k + 1
end
for _ = 1, nc do
  redis.call('ZINCRBY', KEYS[k], 1, ARGV[a])
  a = a + 1
  k = k + 1
end
redis.call('HSET', KEYS[1], unpack(ARGV, a, #ARGV))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
