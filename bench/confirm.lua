-- bench/confirm.lua -- wrk script for bench/completions: each request is
-- the last step ("1", confirm) of a different caller whose session
-- bench/completions prepared at the confirm screen, so each one is a
-- completion written to PostgreSQL.  Caller i has sessionId "c<i>" and
-- phone 88017<i as 8 digits>; thread t of T takes i = t, t + T, ...
-- BENCH_TEXT is the AT text up to the confirm screen; BENCH_N the number of
-- prepared callers; BENCH_THREADS the thread count.
local text = os.getenv("BENCH_TEXT")
local total = tonumber(os.getenv("BENCH_N"))
local nthreads = tonumber(os.getenv("BENCH_THREADS"))
local threads = {}
local counter = 0

function setup(thread)
    thread:set("tid", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

local function enc(s)
    return (string.gsub(s, "[^%w%-%._~]", function(c)
        return string.format("%%%02X", string.byte(c))
    end))
end

local i
done_ok, bad, exhausted = 0, 0, 0

function init(args)
    i = tid
end

function request()
    if i >= total then
        -- every prepared caller confirmed: the figure is void (more callers)
        exhausted = 1
        wrk.thread:stop()
    end
    local body = "sessionId=c" .. i .. "&serviceCode=%2A247%23&phoneNumber=" ..
                 string.format("88017%08d", i) .. "&text=" .. enc(text .. "*1")
    i = i + nthreads
    return wrk.format("POST", "/ussd/at",
        {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

function response(status, headers, body)
    if status == 200 and string.sub(body, 1, 4) == "END " then
        done_ok = done_ok + 1
    else
        bad = bad + 1
    end
end

function done(summary, latency, requests)
    local ok, b, x = 0, 0, 0
    for _, t in ipairs(threads) do
        ok = ok + t:get("done_ok")
        b = b + t:get("bad")
        x = x + t:get("exhausted")
    end
    io.write(string.format(
        "COMPLETIONS per_s=%.0f ended=%d bad=%d ran_out=%d p50_ms=%.2f p99_ms=%.2f\n",
        summary.requests / (summary.duration / 1e6), ok, b, x,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
