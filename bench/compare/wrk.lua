-- wrk script of bench/compare/run, one of two workloads by COMPARE_WORKLOAD:
--   etcd_put  POST /v3/kv/put to etcd's v3 JSON gateway: a 100-byte value
--             under a key no other request uses (12 bytes: "k", the thread's
--             two digits, a nine-digit counter), both base64 as the gateway
--             wants; etcd answers once the put is committed in its fsync'd WAL.
--   get       the URL's path as it is (GET /v1/health, nginx's fixed 200).
-- done() prints one line, `compare: {json}`, with what run reads: requests,
-- answers that were not 2xx/3xx, socket errors, duration, p50 and p99.
--
--   COMPARE_WORKLOAD=etcd_put wrk -t2 -c64 -d10s -s bench/compare/wrk.lua http://127.0.0.1:2379
local workload = os.getenv("COMPARE_WORKLOAD") or "get"

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Standard base64 with padding; the keys are 12 bytes, so no padding there.
local function base64(text)
  local out = {}
  for i = 1, #text, 3 do
    local a, b, c = text:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local quad = {}
    for k = 4, 1, -1 do
      local index = n % 64
      quad[k] = alphabet:sub(index + 1, index + 1)
      n = (n - index) / 64
    end
    if not b then quad[3] = "=" end
    if not c then quad[4] = "=" end
    out[#out + 1] = table.concat(quad)
  end
  return table.concat(out)
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  threads[#threads + 1] = thread
end

thread_index = 0
local counter = 0
local value = base64(string.rep("x", 100))
local headers = {["Content-Type"] = "application/json"}

if workload == "etcd_put" then
  request = function()
    counter = counter + 1
    local key = base64(string.format("k%02d%09d", thread_index % 100, counter))
    return wrk.format("POST", "/v3/kv/put", headers,
                      '{"key":"' .. key .. '","value":"' .. value .. '"}')
  end
end

function done(summary, latency)
  local errors = summary.errors
  print(string.format(
    'compare: {"requests": %d, "not_2xx": %d, "socket_errors": %d, "duration_s": %.3f, ' ..
    '"p50_ms": %.3f, "p99_ms": %.3f}',
    summary.requests, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
