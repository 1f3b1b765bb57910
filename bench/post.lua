-- POST /api/v1/users with an email unique across threads and runs (RUN names the run).
local run = os.getenv("RUN") or "0"
local counter = 0
local threads = 0

setup = function(thread)
  threads = threads + 1
  thread:set("thread_number", threads)  -- a global in that thread's own Lua state
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"email":"bench-%s-%d-%d@example.com","full_name":"Bench"}',
    run, thread_number or 0, counter)
  return wrk.format("POST", "/api/v1/users", {["Content-Type"] = "application/json"}, body)
end
