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
