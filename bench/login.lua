-- bench/login.lua -- wrk script: console logins at a steady pace.  Each
-- connection posts POST /api/login with BENCH_USER / BENCH_PASSWORD (env)
-- and waits BENCH_DELAY_MS (default 100) before the next, so the rate is
-- about connections / (delay + latency); done() prints the rate reached,
-- the answers that were not 200 and the latency.
local user = os.getenv("BENCH_USER") or "bench"
local pw = os.getenv("BENCH_PASSWORD") or ""
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "100")
local threads = {}
non200 = 0

function setup(thread)
    table.insert(threads, thread)
end

function request()
    return wrk.format("POST", "/api/login",
        {["Content-Type"] = "application/json"},
        string.format('{"username":"%s","password":"%s"}', user, pw))
end

function delay()
    return pause
end

function response(status, headers, body)
    if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
    local bad = 0
    for _, t in ipairs(threads) do bad = bad + t:get("non200") end
    io.write(string.format(
        "RESULT logins_per_s=%.1f logins=%d not_200=%d p50_ms=%.1f p99_ms=%.1f\n",
        summary.requests / (summary.duration / 1e6), summary.requests, bad,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
