-- Shared by the EMPI scripts (prepended when they are loaded).
local P = 'gw:empi:'

-- the surviving person a (possibly merged) person id stands for
local function follow(pid)
  for _ = 1, 32 do
    local into = redis.call('HGET', P .. 'person:' .. pid, 'merged_into')
    if not into or into == '' then return pid end
    pid = into
  end
  return pid
end

-- the same, with whether that person is strong (one read per person followed)
local function follow_strong(pid)
  for _ = 1, 32 do
    local h = redis.call('HMGET', P .. 'person:' .. pid, 'merged_into', 'strong')
    if not h[1] or h[1] == '' then return pid, h[2] == '1' end
    pid = h[1]
  end
  return pid, redis.call('HGET', P .. 'person:' .. pid, 'strong') == '1'
end
