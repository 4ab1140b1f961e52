-- wrk script for bench/memory.py soak: a repeating cycle of 10 requests against
-- bench/apps/mixed_asgi.py: 5 GET / (hello), 4 POST /echo with a 64 KiB body, and one
-- GET / with "Connection: close" (the server closes, wrk reconnects: connection churn).
local cycle = {}
local i = 0

init = function(args)
   local body = string.rep("x", 65536)
   local post = wrk.format("POST", "/echo", {["Content-Type"] = "application/octet-stream"}, body)
   local get = wrk.format("GET", "/")
   local close = wrk.format("GET", "/", {["Connection"] = "close"})
   cycle = {get, post, get, post, get, post, get, post, get, close}
end

request = function()
   i = i % #cycle + 1
   return cycle[i]
end
