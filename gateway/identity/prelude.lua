-- Shared by the EMPI scripts (prepended when they are loaded).
local P = 'gw:empi:'

-- the surviving person a (possibly merged) person id stands for, and whether it is strong
-- (one read per person followed)
local function follow_strong(pid)
  for _ = 1, 32 do
    local h = redis.call('HMGET', P .. 'person:' .. pid, 'merged_into', 'strong')
    if not h[1] or h[1] == '' then return pid, h[2] == '1' end
    pid = h[1]
  end
  return pid, redis.call('HGET', P .. 'person:' .. pid, 'strong') == '1'
end

-- the surviving person alone
local function follow(pid)
  return (follow_strong(pid))
end
