-- wrk script for the xmpp-post benchmark; run.py prepends the CONFIG table.
-- Each thread sends POSTs (body "<tag>:<thread>:<n>", unique) until its deadline or,
-- with CONFIG.once, until every entry assigned to it was sent once; then it stops
-- sending, waits for its outstanding responses and stops, so no request is left in
-- flight and the 201s counted here are all the requests the server accepted.
local ffi = require("ffi")
pcall(ffi.cdef, [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  started = now()
  first_send = 0
  last_done = 0
  sent = 0
  completed = 0
  ok = 0
  failed = 0
  stopping = false
  next_index = tid + 1
  committed = 0
  own = 0
  for i = tid + 1, #CONFIG.entries, CONFIG.threads do own = own + 1 end
  -- wrk calls request() once on thread 0 before the run, to check the script: that
  -- call must not count or use up an entry.
  probe_pending = (tid == 0)
  requests = {}
  for i, entry in ipairs(CONFIG.entries) do
    local headers = { ["Authorization"] = entry.auth, ["Content-Type"] = "text/plain" }
    if CONFIG.host then headers["Host"] = CONFIG.host end
    requests[i] = { path = entry.path, headers = headers }
  end
end

local function finish_if_idle()
  if stopping and completed == committed then
    local marker = io.open(CONFIG.marker_prefix .. tid, "w")
    if marker then marker:write("done\n"); marker:close() end
    wrk.thread:stop()
  end
end

local function exhausted()
  if CONFIG.once then return committed >= own end
  return now() - started >= CONFIG.seconds
end

function delay()
  if not stopping and exhausted() then stopping = true end
  if stopping then
    finish_if_idle()
    return 3600000
  end
  committed = committed + 1  -- decided here, sent when wrk calls request()
  return 0
end

function request()
  if probe_pending then
    probe_pending = false
    return wrk.format("POST", requests[1].path, requests[1].headers, "probe")
  end
  local entry
  if CONFIG.once then
    entry = requests[next_index] or requests[#requests]
    next_index = next_index + CONFIG.threads
  else
    entry = requests[1]
  end
  if sent == 0 then first_send = now() end
  sent = sent + 1
  if sent > committed then committed = sent end
  local body = CONFIG.tag .. ":" .. tid .. ":" .. sent
  return wrk.format("POST", entry.path, entry.headers, body)
end

function response(status, headers, body)
  completed = completed + 1
  last_done = now()
  if status == 201 then ok = ok + 1 else failed = failed + 1 end
  if not stopping and exhausted() then stopping = true end
  finish_if_idle()
end

function done(summary, latency, reqs)
  local first, last, tot_sent, tot_ok, tot_failed = nil, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    local f = t:get("first_send")
    if f and f > 0 and (first == nil or f < first) then first = f end
    local l = t:get("last_done") or 0
    if l > last then last = l end
    tot_sent = tot_sent + (t:get("sent") or 0)
    tot_ok = tot_ok + (t:get("ok") or 0)
    tot_failed = tot_failed + (t:get("failed") or 0)
  end
  local e = summary.errors
  local out = io.open(CONFIG.result_file, "w")
  out:write(string.format(
    '{"sent": %d, "ok": %d, "failed": %d, "completed": %d, "elapsed": %.6f, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    tot_sent, tot_ok, tot_failed, summary.requests, (first and last - first) or 0,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
  out:close()
end
