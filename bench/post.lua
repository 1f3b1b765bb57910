-- POST /api/v1/users with an email unique across threads and runs (RUN names the run).
-- The headers given to wrk (`--header`, the API key) go too, with the body's Content-Type.
local run = os.getenv("RUN") or "0"
local counter = 0
local threads = 0
local headers = {}

setup = function(thread)
  threads = threads + 1
  thread:set("thread_number", threads)  -- a global in that thread's own Lua state
end

init = function(args)
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Content-Type"] = "application/json"
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"email":"bench-%s-%d-%d@example.com","full_name":"Bench"}',
    run, thread_number or 0, counter)
  return wrk.format("POST", "/api/v1/users", headers, body)
end
