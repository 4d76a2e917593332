-- wrk: every request a registration of a new person (WPATH, QKEY from the environment).
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function init(args)
  counter = 0
  question = os.getenv("QKEY")
  path = os.getenv("WPATH")
  prefix = os.getenv("EMAIL_PREFIX") or "w"
end
function request()
  counter = counter + 1
  local body = '{"firstName":"Load","lastName":"Test","email":"' .. prefix .. tid .. 'x' .. counter ..
    '@example.com","responses":[{"questionKey":"' .. question .. '","responseText":"benchmark"}]}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
