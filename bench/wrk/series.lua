-- wrk script: single 100-byte appends, POST /v1/log/{identifier}, exactly once:
-- each carries Coworker-Connection and a Coworker-Series one above the last.
--
-- One Coworker connection per wrk socket, and so one socket per thread: run
-- with -c equal to -t (setup() refuses anything else). Why: DESIGN §3 answers
-- a series below the highest accepted that is not pending with 409 superseded,
-- and wrk tells a script neither which socket asks for a request nor which one
-- an answer came on. Two sockets sharing a connection would race their series
-- to the server (the later one arriving first makes the earlier a straggler),
-- and a connection per socket cannot be told apart in request(). With one
-- socket per thread, one message is in flight per connection, the client's
-- duty in DESIGN §3. The socket's first request is POST /v1/connect (setup()
-- cannot do HTTP); its answer's id is used from then on. A message answered
-- 5xx or 429, or not answered (wrk reconnects after a socket error), is
-- resubmitted unchanged, same series (common.session).
-- Identifiers: COWORKER_IDS or k0..k999, as single.lua.
--
--   wrk -t16 -c16 -d5s -s bench/wrk/series.lua http://127.0.0.1:7001
local common = dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "common.lua")

common.session(1, function(connection, series)
  return wrk.format("POST", "/v1/log/" .. common.identifier(series),
                    {["Content-Type"] = "application/octet-stream",
                     ["Coworker-Connection"] = connection,
                     ["Coworker-Series"] = tostring(series)}, common.body)
end)

common.install{per_request = 1, one_socket_per_thread = true}
