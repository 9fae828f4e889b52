-- bench/dial.lua -- wrk script: dial BENCH_DIALS (default 50000) distinct
-- numbers once each over POST /ussd/at and answer the first screen, which
-- leaves that many live sessions; then every thread stops.  Run with
-- -t N -c N and BENCH_THREADS=N (one connection per thread).  done() prints
-- how many dials were answered.
local total = tonumber(os.getenv("BENCH_DIALS") or "50000")
local threads = {}
local counter = 0

function setup(thread)
    thread:set("tid", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

local n, step, quota
answered = 0

function init(args)
    n = 0
    step = 0
    local threads_n = tonumber(os.getenv("BENCH_THREADS") or "16")
    quota = math.ceil(total / threads_n)
end

local function number()
    return tid * 1000000 + n
end

function request()
    if n >= quota then wrk.thread:stop() end
    local text = step == 0 and "" or "1"
    local body = string.format(
        "sessionId=d%d&serviceCode=%%2A247%%23&phoneNumber=88019%08d&text=%s",
        number(), number(), text)
    return wrk.format("POST", "/ussd/at",
        {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

function response(status, headers, body)
    if step == 0 then
        step = 1
    else
        step = 0
        n = n + 1
        answered = answered + 1
    end
end

function done(summary, latency, requests)
    local a = 0
    for _, t in ipairs(threads) do a = a + t:get("answered") end
    io.write(string.format("DIALS answered=%d\n", a))
end
