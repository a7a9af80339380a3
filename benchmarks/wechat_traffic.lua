-- wrk script for benchmarks/wechat_traffic.py: replays pre-signed, pre-encrypted WeChat pushes
-- in file order, one thread, so that the order of the waves holds across all connections.
--   wrk -t1 -c64 -d10s -s wechat_traffic.lua URL -- pushes.tsv START REPORT
-- pushes.tsv: one push a line, "path?query<TAB>body". START: how many lines were already sent
-- (by the warm-up). The totals are printed as "report <name> <value>" lines.

local pushes = {}
sent = 0 -- globals: read from the thread by done()
answered, silent, failed, exhausted = 0, 0, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local headers = { ["Content-Type"] = "text/xml" }
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    pushes[#pushes + 1] = wrk.format("POST", line:sub(1, tab - 1), headers, line:sub(tab + 1))
  end
  sent = tonumber(args[2])
end

function request()
  if sent >= #pushes then
    exhausted = exhausted + 1
    return wrk.format("GET", "/healthz")
  end
  sent = sent + 1
  return pushes[sent]
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
  elseif body:find("<Encrypt>", 1, true) then
    answered = answered + 1 -- a passive reply, sealed
  elseif #body == 0 then
    silent = silent + 1 -- empty: over the reply budget, pushed later
  end -- anything else answered /healthz, sent when the pushes ran out
end

function done(summary, latency, requests)
  local t = threads[1]
  local e = summary.errors
  local lines = {
    "sent " .. t:get("sent"),
    "answered " .. t:get("answered"),
    "silent " .. t:get("silent"),
    "failed " .. t:get("failed"),
    "exhausted " .. t:get("exhausted"),
    "requests " .. summary.requests,
    "duration_us " .. summary.duration,
    "socket_errors " .. (e.connect + e.read + e.write + e.timeout),
    "p50_us " .. latency:percentile(50),
    "p99_us " .. latency:percentile(99),
    "max_us " .. latency.max,
  }
  for _, line in ipairs(lines) do
    io.write("report " .. line .. "\n")
  end
end
