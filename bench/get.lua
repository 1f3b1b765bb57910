-- GET /api/v1/users/{random existing id}; USERS ids were seeded.
local users = tonumber(os.getenv("USERS") or "10000")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/v1/users/" .. math.random(1, users))
end
