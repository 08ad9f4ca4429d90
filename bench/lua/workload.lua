-- One wrk workload for Clientele. Environment:
--   BENCH_KIND   patch_icp | patch_icp_keyed | get_icp | patch_profile | list_profiles
--                | get_path | post_path | ceiling
--   BENCH_PATH   the path get_path and post_path request
--   BENCH_BODY   the JSON body post_path sends
--   BENCH_IDS    file with one record id per line (not for list/ceiling)
--   BENCH_TOKEN  API key
-- done() prints one JSON line the harness parses.
local kind = os.getenv("BENCH_KIND")
local token = os.getenv("BENCH_TOKEN") or ""
local ids = {}
local ids_file = os.getenv("BENCH_IDS")
if ids_file and ids_file ~= "" then
  for line in io.lines(ids_file) do ids[#ids + 1] = line end
end
-- The seed's PATCH ICP body, with a number in the name: a PATCH that
-- changes nothing writes nothing (no version, no history, no event), so
-- the same body twice would measure a read, not a write.
local function seed_patch()
  return string.format(
    '{"name":"Updated ICP Name %d","leadsPerList":50,"customFilterCriteria":[{"type":"maxPeoplePerCompany","value":5}]}',
    math.random(1, 1000000000))
end

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("seed", math.random(1, 1000000))
  thread:set("thread_number", threads)
end

-- patch_icp_keyed sends a key no request has used: thread, run, counter.
local sent = 0
local run = os.time()

function init(args)
  math.randomseed(seed or os.time())
end

local function pick()
  return ids[math.random(1, #ids)]
end

request = function()
  local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
  if kind == "patch_icp" then
    return wrk.format("PATCH", "/api/v1/entities/icps/" .. pick(), headers, seed_patch())
  elseif kind == "patch_icp_keyed" then
    sent = sent + 1
    headers["Idempotency-Key"] = string.format("bench-%d-%d-%d", run, thread_number or 0, sent)
    return wrk.format("PATCH", "/api/v1/entities/icps/" .. pick(), headers, seed_patch())
  elseif kind == "get_icp" then
    return wrk.format("GET", "/api/v1/entities/icps/" .. pick(), headers)
  elseif kind == "patch_profile" then
    local body = '{"custom_properties":{"clicker":"' .. math.random(1, 1000000) .. '"}}'
    return wrk.format("PATCH", "/v1/hood/profiles/" .. pick(), headers, body)
  elseif kind == "get_path" then
    return wrk.format("GET", os.getenv("BENCH_PATH"), headers)
  elseif kind == "post_path" then
    return wrk.format("POST", os.getenv("BENCH_PATH"), headers, os.getenv("BENCH_BODY"))
  elseif kind == "list_profiles" then
    return wrk.format("GET", "/v1/hood/profiles?organization_id=eq:1007&page=1,20", headers)
  else
    return wrk.format("GET", "/", headers)
  end
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, errors,
    latency:percentile(50), latency:percentile(99), latency.max))
end
