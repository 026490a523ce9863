-- Shared by single.lua, series.lua and window.lua (each loads it with dofile).
-- wrk makes one Lua state for setup() and done() and one per thread, and each
-- state runs the script, so each holds its own copy of what is here:
-- - the identifiers and the 100-byte body the scripts send;
-- - `counts` and `statuses`, globals per thread (done() reads them with
--   thread:get, which copies flat tables only: a nested one crashes wrk 4.1):
--   appends and connects answered 2xx, resubmissions, other answers by status;
-- - a session: one Coworker connection and the message or window in flight
--   on it, resubmitted unchanged after a 5xx, a 429 or a socket error
--   (series.lua, window.lua);
-- - setup() and done(): one summary per run, and exit status 1 when any
--   answer was not 2xx, any socket error happened or nothing was appended,
--   so that bench/wrk/run (or anyone running wrk by hand) can tell.
local common = {}

-- COWORKER_IDS (comma-separated) when set, else k0..k999: about 16 per bucket
-- of 64, so every bucket, and so every leader, gets its share.
common.ids = {}
for id in string.gmatch(os.getenv("COWORKER_IDS") or "", "[^,]+") do
  common.ids[#common.ids + 1] = id
end
if #common.ids == 0 then
  for i = 0, 999 do common.ids[i + 1] = "k" .. i end
end
common.body = string.rep("x", 100)

-- Per thread. `thread_index` is set by setup() before the thread starts.
counts = {connects = 0, appends = 0, resubmissions = 0}
statuses = {}
thread_index = 0

-- The n-th identifier of this thread: threads start apart so that they do not
-- walk the buckets in step.
function common.identifier(n)
  return common.ids[(n + thread_index * 101) % #common.ids + 1]
end

-- Counts one answer that is not 2xx, by status; true for a 2xx.
function common.record(status)
  if status >= 200 and status < 300 then return true end
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  return false
end

-- wrk gives a script no way to tell its thread's sockets apart, so a script
-- whose requests must not overlap (one Coworker connection, series in order)
-- needs one socket per thread: -c equal to -t. Read from our own command line,
-- wrk's defaults (-t2 -c10) when a flag is absent.
local function one_socket_per_thread()
  local file = io.open("/proc/self/cmdline", "rb")
  if not file then return true end  -- not Linux: trust the caller
  local args = {}
  for arg in file:read("*a"):gmatch("([^%z]*)%z") do args[#args + 1] = arg end
  file:close()
  local flags = {t = "2", c = "10"}
  local long = {threads = "t", connections = "c"}
  local i = 2
  while i <= #args and args[i] ~= "--" do
    local short, rest = args[i]:match("^%-([tc])(.*)$")
    local name, value = args[i]:match("^%-%-(%a+)=?(.*)$")
    if long[name] then short, rest = long[name], value end
    if short then
      if rest == "" then i = i + 1; rest = args[i] or "" end
      flags[short] = rest
    end
    i = i + 1
  end
  return flags.t == flags.c
end

-- A session on this thread's one socket: a Coworker connection, asked for by
-- the socket's first request (POST /v1/connect; setup() cannot do HTTP), then
-- requests built by make(connection, first_series), each taking `span`
-- consecutive series. Exactly one request is in flight, so the series reach
-- every bucket in order and none is refused as a straggler. DESIGN §2: a 5xx,
-- a 429 or no answer (wrk reconnects after a socket error and asks for a
-- request again) means the same request again, same series. Any other 4xx
-- would come back the same: the request is dropped and the next goes on.
function common.session(span, make)
  local connection, series, pending = nil, 0, nil
  request = function()
    -- Formatted here, not when the script loads: wrk adds Host after that.
    if connection == nil then return wrk.format("POST", "/v1/connect", nil, "") end
    if pending == nil then
      pending = make(connection, series + 1)
      series = series + span
    else
      counts.resubmissions = counts.resubmissions + 1
    end
    return pending
  end
  response = function(status, headers, body)
    local ok = common.record(status)
    if connection == nil then
      connection = ok and body:match('"connection"%s*:%s*"([^"]+)"') or nil
      if connection then counts.connects = counts.connects + 1 end
    elseif ok then
      counts.appends = counts.appends + 1
      pending = nil
    elseif status < 500 and status ~= 429 then
      pending = nil
      -- 409 connection_expired or unknown_connection: a new connection. After
      -- superseded (not logged, never will be) higher series go on.
      if status == 409 and not body:find('"superseded"', 1, true) then
        connection, series = nil, 0
      end
    end
  end
end

local threads = {}
local script = "?"  -- the script's file name, set by install()

-- Defines setup() and done(). options.per_request: how many messages one
-- append request carries; options.one_socket_per_thread: refuse a run with -c
-- other than -t.
function common.install(options)
  script = debug.getinfo(2, "S").source:match("([^/]+)$")  -- the caller's file
  setup = function(thread)
    if options.one_socket_per_thread and #threads == 0 and not one_socket_per_thread() then
      io.stderr:write(script .. ": one Coworker connection per socket: run with -c equal to -t\n")
      os.exit(2)
    end
    threads[#threads + 1] = thread
    thread:set("thread_index", #threads - 1)
  end
  done = function(summary, latency)
    common.summarize(summary, latency, options.per_request)
  end
end

local function ms(microseconds) return string.format("%.2f ms", microseconds / 1000) end

-- Prints the run's summary from wrk's figures and every thread's counts, and
-- exits 1 when the run saw anything but 2xx answers.
function common.summarize(summary, latency, per_request)
  local seconds = summary.duration / 1e6
  local appends, connects, resubmissions, refusals = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    appends = appends + c.appends
    connects = connects + c.connects
    resubmissions = resubmissions + c.resubmissions
    for status, n in pairs(thread:get("statuses")) do
      refusals[status] = (refusals[status] or 0) + n
    end
  end
  local refused, by_status = 0, {}
  for status, n in pairs(refusals) do
    refused = refused + n
    by_status[#by_status + 1] = status .. " x" .. n
  end
  table.sort(by_status)
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  print(string.format("%s: %d threads, %.2f s", script, #threads, seconds))
  print(string.format("  requests %d, %.0f requests/s (appends answered 2xx: %d; connects: %d)",
                      summary.requests, summary.requests / seconds, appends, connects))
  if per_request > 1 then
    print(string.format("  messages %d, %.0f messages/s (%d per window)", appends * per_request,
                        appends * per_request / seconds, per_request))
  end
  print("  non-2xx: " .. (refused == 0 and "none" or table.concat(by_status, ", ")) ..
        (resubmissions > 0 and string.format(" (%d resubmissions)", resubmissions) or ""))
  print(string.format("  socket errors: connect %d, read %d, write %d, timeout %d",
                      e.connect, e.read, e.write, e.timeout))
  print(string.format("  latency p50 %s, p90 %s, p99 %s, p99.9 %s, max %s",
                      ms(latency:percentile(50)), ms(latency:percentile(90)),
                      ms(latency:percentile(99)), ms(latency:percentile(99.9)), ms(latency.max)))
  if refused > 0 or socket_errors > 0 or appends == 0 then
    print("  verdict: FAILED (" .. (appends == 0 and "nothing appended" or "not all 2xx") .. ")")
    io.stdout:flush()
    os.exit(1)
  end
  print("  verdict: ok")
end

return common
