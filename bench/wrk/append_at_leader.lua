-- wrk script: single 100-byte appends, each to /v1/log/<identifier> where
-- the identifiers (from the environment, comma-separated) are ones whose
-- buckets the target participant leads (bench/cluster_append.sh picks
-- them from /v1/cluster), spread round-robin. At-least-once appends (no
-- Coworker-Connection): each request is a new entry.
local ids = {}
for id in string.gmatch(os.getenv("COWORKER_IDS") or "", "[^,]+") do ids[#ids + 1] = id end
assert(#ids > 0, "COWORKER_IDS is empty")
local body = string.rep("x", 100)
local n = 0

request = function()
  n = n + 1
  return wrk.format("POST", "/v1/log/" .. ids[(n % #ids) + 1],
                    {["Content-Type"] = "application/octet-stream"}, body)
end

response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. "\n")
  end
end
