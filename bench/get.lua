-- GET /api/v1/users/{random existing id}; USERS ids were seeded. With no headers of its own,
-- wrk.format sends wrk's (`--header`, the API key).
local users = tonumber(os.getenv("USERS") or "10000")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/v1/users/" .. math.random(1, users))
end
