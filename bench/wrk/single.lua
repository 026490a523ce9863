-- wrk script: single 100-byte appends, POST /v1/log/{identifier}, without
-- Coworker-Connection and Coworker-Series: at-least-once (DESIGN §3, "for load
-- tools"), every request a new entry, so any number of sockets per thread.
-- Identifiers from COWORKER_IDS (comma-separated), else k0..k999, round-robin
-- per thread: every bucket, so a participant that does not lead one hops.
--
--   wrk -t2 -c16 -d5s -s bench/wrk/single.lua http://127.0.0.1:7001
--
-- Prints its summary in done() and exits 1 on any non-2xx or socket error.
local common = dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "common.lua")

local requests = {}  -- formatted once: request() only picks the next
local n = 0

init = function()
  for i = 0, #common.ids - 1 do
    requests[i + 1] = wrk.format("POST", "/v1/log/" .. common.identifier(i),
                                 {["Content-Type"] = "application/octet-stream"}, common.body)
  end
end

request = function()
  n = n + 1
  return requests[n % #requests + 1]
end

response = function(status)
  if common.record(status) then counts.appends = counts.appends + 1 end
end

common.install{per_request = 1}
