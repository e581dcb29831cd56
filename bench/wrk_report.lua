-- wrk script for bench/lb_overhead.py.
-- WRK_TARGETS="127.0.0.1:P1,127.0.0.1:P2,...": wrk's threads are spread over these addresses
-- in turn (thread i connects to target i mod n), so -t3 with three targets is a client-side
-- round robin over three instances. At the end one line "WRK_JSON {...}" sums the run up.

local targets = {}
for target in string.gmatch(os.getenv("WRK_TARGETS") or "", "[^,]+") do
  local host, port = string.match(target, "^(.+):(%d+)$")
  table.insert(targets, {host = host, port = port})
end
local next_target = 0

function setup(thread)
  if #targets > 0 then
    local t = targets[(next_target % #targets) + 1]
    next_target = next_target + 1
    thread.addr = wrk.lookup(t.host, t.port)[1]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d}, "latency_us": {"mean": %.1f, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
