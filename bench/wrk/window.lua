-- wrk script: windows, POST /v1/append, of WINDOW messages (default 64) of
-- 100 bytes each, with a Coworker connection and consecutive series: window k
-- carries series (k-1)*WINDOW+1 .. k*WINDOW, its messages on identifiers
-- COWORKER_IDS or k0..k999 in turn, so a window spans many buckets.
--
-- One Coworker connection per socket and one socket per thread (-c equal to
-- -t), for the reason series.lua gives: one window in flight per connection
-- (DESIGN §3), and a window answered 5xx or 429 (or not at all) is
-- resubmitted unchanged, so whatever of it was logged answers as a duplicate.
-- done() reports messages/s as well (windows answered 2xx x WINDOW).
--
--   WINDOW=64 wrk -t16 -c16 -d5s -s bench/wrk/window.lua http://127.0.0.1:7001
local common = dofile(debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "common.lua")

local window = tonumber(os.getenv("WINDOW") or "64")
assert(window and window >= 1 and window <= 1000, "WINDOW is 1..1000 (DESIGN §3)")

common.session(window, function(connection, first)
  local messages = {}
  for series = first, first + window - 1 do
    messages[#messages + 1] = string.format('{"identifier": "%s", "series": %d, "body": "%s"}',
                                            common.identifier(series), series, common.body)
  end
  return wrk.format("POST", "/v1/append",
                    {["Content-Type"] = "application/json", ["Coworker-Connection"] = connection},
                    '{"messages": [' .. table.concat(messages, ", ") .. "]}")
end)

common.install{per_request = window, one_socket_per_thread = true}
