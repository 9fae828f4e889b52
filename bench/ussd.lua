-- bench/ussd.lua -- wrk script: every connection runs whole registrations
-- over POST /ussd/at, one after another, the way an aggregator would send
-- them: a fresh sessionId and phone number per registration, one more
-- answer per request, joined with '*'.  Run it with as many threads as
-- connections (-t N -c N): a thread then owns one connection and its
-- dialogue, so steps arrive in order.
--
-- BENCH_ANSWERS (env) replaces the answers (separated by '|'); the default
-- is part 1 of a registration in Bangla for remigate's shipped flows (the
-- district by its first letters; parts 2 and 3 follow on later dials).
-- done() prints steps/s, registrations, errors and latency percentiles.

local default = "1|1|1|রহিমা বেগম|2|১৯৯০|চট্ট|১২৩৪৫৬৭৮৯০|98|1"
local answers = {}
for a in string.gmatch(os.getenv("BENCH_ANSWERS") or default, "[^|]+") do
    answers[#answers + 1] = a
end

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

local step, reg, text, phone, sid, run
completed, errors, early = 0, 0, 0

local function fresh()
    reg = reg + 1
    step = 0
    text = ""
    -- unique across runs too: a number that registered before would get a
    -- different (shorter) dialogue
    sid = "b" .. run .. "-" .. tid .. "-" .. reg
    phone = string.format("8801%d%08d", 3 + tid % 7,
                          (run + tid * 1000003 + reg) % 100000000)
end

function init(args)
    math.randomseed(os.time() * 1000 + tid)
    run = math.random(0, 99999999)
    reg = 0
    fresh()
end

function request()
    local body = "sessionId=" .. sid .. "&serviceCode=%2A247%23&phoneNumber=" ..
                 phone .. "&networkCode=47001&text=" .. enc(text)
    return wrk.format("POST", "/ussd/at",
        {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

function response(status, headers, body)
    local kind = string.sub(body or "", 1, 4)
    if status ~= 200 or (kind ~= "CON " and kind ~= "END ") then
        errors = errors + 1
        fresh()
        return
    end
    if step == #answers then
        if kind == "END " then completed = completed + 1 else errors = errors + 1 end
        fresh()
        return
    end
    if kind == "END " then
        early = early + 1
        fresh()
        return
    end
    step = step + 1
    text = (step == 1) and answers[1] or (text .. "*" .. answers[step])
end

function done(summary, latency, requests)
    local c, e, x = 0, 0, 0
    for _, t in ipairs(threads) do
        c = c + t:get("completed")
        e = e + t:get("errors")
        x = x + t:get("early")
    end
    local secs = summary.duration / 1e6
    io.write(string.format(
        "RESULT steps_per_s=%.0f registrations=%d errors=%d early_end=%d " ..
        "http_errors=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f\n",
        summary.requests / secs, c, e, x,
        summary.errors.status + summary.errors.connect + summary.errors.read +
            summary.errors.write + summary.errors.timeout,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
