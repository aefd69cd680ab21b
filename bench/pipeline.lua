-- wrk script: send DEPTH pipelined GET / requests per write (default 16).
-- Usage: wrk -t1 -c50 -d5s -s bench/pipeline.lua http://127.0.0.1:PORT/ -- 16
-- wrk matches each response to a request, so req/s counts single requests.
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end
