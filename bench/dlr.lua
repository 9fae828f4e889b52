-- bench/dlr.lua -- wrk script: delivery reports the way smsbox's dlr-url
-- brings them (GET /kannel/dlr?id=&status=&answer=&ts=&key=), for the ids
-- listed one a line in the file DLR_IDS (env), with the key DLR_KEY: each
-- id gets a report 8 (submitted) and then 1 (delivered), ids taken in
-- turn by the threads (after the last one they start again: repeated
-- reports, answered 200 and counted, changing no state).
-- done() prints requests/s, non-2xx answers and latency percentiles.

local ids = {}
for line in io.lines(os.getenv("DLR_IDS")) do ids[#ids + 1] = line end
local key = os.getenv("DLR_KEY") or ""
local answer = "id%3A0123456789+sub%3A001+dlvrd%3A001+submit+date%3A2612031000" ..
    "+done+date%3A2612031000+stat%3ADELIVRD+err%3A000+text%3ABench"

local threads = {}
local counter = 0

function setup(thread)
    thread:set("tid", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

function init(args)
    n = 0
    stride = counter
    bad = 0
end

function request()
    local i = tid + n * stride
    n = n + 1
    local id = ids[(math.floor(i / 2) % #ids) + 1]
    local status = (i % 2 == 0) and 8 or 1
    return wrk.format("GET", "/kannel/dlr?id=" .. id .. "&status=" .. status ..
        "&answer=" .. answer .. "&ts=1796270400&key=" .. key)
end

function response(status, headers, body)
    if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
    local bads = 0
    for _, t in ipairs(threads) do bads = bads + t:get("bad") end
    io.write(string.format("DLRS requests=%d secs=%.1f per_s=%.1f not_200=%d " ..
        "p50_ms=%.1f p99_ms=%.1f\n", summary.requests, summary.duration / 1e6,
        summary.requests / (summary.duration / 1e6), bads,
        latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
