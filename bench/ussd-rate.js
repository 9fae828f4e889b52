// bench/ussd-rate.js -- USSD steps at a fixed rate, open loop: whole
// registrations over POST /ussd/at, as bench/ussd.lua sends them (a fresh
// sessionId and phone number per registration, one more answer per step,
// joined with '*'), but on a schedule instead of as fast as the answers
// come back.  wrk's closed loop measures throughput: each connection sends
// its next step when the last one is answered, so a slow step slows the
// load down and the steps it delayed are never counted.  Here a new
// caller starts a registration every STEPS / RATE seconds (STEPS = the
// dial and its answers, 11 by default) whatever happened to the others,
// and each of their steps is due GAP_MS (default 100) after the one
// before: RATE steps a second once the first registrations are under way
// (about a second).  A step's latency is counted from when it was due.  A
// step cannot leave before its own caller's previous step is answered (the
// session would refuse it): it is then sent at that answer, still timed
// from when it was due, and counted as late; no caller ever waits for
// another.  BENCH_ANSWERS (env, separated by '|') replaces the answers, as
// in bench/ussd.lua.  Prints one line in bench/ussd.lua's format, plus
// what was offered, how many steps were late, and the registrations' last
// steps alone (the ones that store the record in PostgreSQL):
//   RESULT steps_per_s=N registrations=N errors=N early_end=N
//          http_errors=N p50_ms=N p90_ms=N p99_ms=N p999_ms=N
//          offered_per_s=N late=N max_ms=N last_p50_ms=N last_p99_ms=N
//          driver_cpu_s=N driver_lag_p99_ms=N
// (the driver's own CPU time and the p99 of its event loop's delay: when
// that is large, the driver itself was slow to send and to read)
//
//   node bench/ussd-rate.js BASE_URL RATE SECS [GAP_MS]
'use strict';
const http = require('http');
const { monitorEventLoopDelay } = require('perf_hooks');

const [base, rateArg, secsArg, gapArg] = process.argv.slice(2);
const rate = Number(rateArg || 500);
const secs = Number(secsArg || 20);
const gapMs = Number(gapArg || 100);
if (!base || !(rate > 0) || !(secs > 0) || !(gapMs >= 0)) {
  console.error('usage: node bench/ussd-rate.js BASE_URL RATE SECS [GAP_MS]');
  process.exit(2);
}
const answers = (process.env.BENCH_ANSWERS ||
  '1|1|1|রহিমা বেগম|2|১৯৯০|চট্ট|১২৩৪৫৬৭৮৯০|98|1').split('|').filter((a) => a);
const nsteps = answers.length + 1;
const u = new URL('/ussd/at', base);
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
const run = Math.floor(Math.random() * 1e8);
const nregs = Math.max(1, Math.round((rate * secs) / nsteps));
const lat = [];
const latEnd = [];
let completed = 0;
let errors = 0;
let early = 0;
let httpErrors = 0;
let late = 0;
let sent = 0;

const now = () => process.hrtime.bigint();
const sleepUntil = (t) => {
  const ms = Number(t - now()) / 1e6;
  return ms >= 1 ? new Promise((r) => setTimeout(r, ms)) : null;
};

// one POST; resolves with [status, body], or [0, ''] on a transport error
function post(sid, phone, text) {
  const body = `sessionId=${encodeURIComponent(sid)}&serviceCode=%2A247%23` +
    `&phoneNumber=${phone}&networkCode=47001&text=${encodeURIComponent(text)}`;
  return new Promise((resolve) => {
    let over = false;
    const end = (v) => { if (!over) { over = true; resolve(v); } };
    const req = http.request({
      method: 'POST', hostname: u.hostname, port: u.port, path: u.pathname, agent,
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        'Content-Length': Buffer.byteLength(body),
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => end([res.statusCode, Buffer.concat(chunks).toString('utf8')]));
      res.on('error', () => end([0, '']));
    });
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.on('error', () => end([0, '']));
    req.end(body);
  });
}

// one caller's registration, started at start (hrtime ns)
async function registration(k, start) {
  // unique across runs too: a number that registered before would get a
  // different (shorter) dialogue
  const sid = `r${run}-${k}`;
  const n = (run + k * 7919) % 100000000;
  const phone = `8801${3 + (k % 7)}${String(n).padStart(8, '0')}`;
  let text = '';
  for (let step = 0; step < nsteps; step++) {
    const due = start + BigInt(Math.round(step * gapMs * 1e6));
    const w = sleepUntil(due);
    if (w) await w; else if (now() - due > 1000000n) late++;
    sent++;
    const [status, body] = await post(sid, phone, text);
    const ms = Number(now() - due) / 1e6;
    lat.push(ms);
    if (step === nsteps - 1) latEnd.push(ms);
    const kind = body.slice(0, 4);
    if (status === 0) { httpErrors++; return; }
    if (status !== 200 || (kind !== 'CON ' && kind !== 'END ')) { errors++; return; }
    if (step === nsteps - 1) {
      if (kind === 'END ') completed++; else errors++;
      return;
    }
    if (kind === 'END ') { early++; return; }
    text = step === 0 ? answers[0] : `${text}*${answers[step]}`;
  }
}

function pct(s, p) {
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

(async () => {
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const every = (1e9 * nsteps) / rate;
  const regs = [];
  for (let k = 0; k < nregs; k++) {
    const start = t0 + BigInt(Math.round(k * every));
    const w = sleepUntil(start);
    if (w) await w;
    regs.push(registration(k, start));
  }
  await Promise.all(regs);
  agent.destroy();
  lag.disable();
  const cpu = process.cpuUsage(cpu0);
  const s = Float64Array.from(lat).sort();
  const e = Float64Array.from(latEnd).sort();
  const f = (x) => x.toFixed(2);
  console.log(`RESULT steps_per_s=${(lat.length / secs).toFixed(0)} registrations=${completed} ` +
    `errors=${errors} early_end=${early} http_errors=${httpErrors} ` +
    `p50_ms=${f(pct(s, 50))} p90_ms=${f(pct(s, 90))} p99_ms=${f(pct(s, 99))} ` +
    `p999_ms=${f(pct(s, 99.9))} offered_per_s=${(sent / secs).toFixed(0)} late=${late} ` +
    `max_ms=${f(s.length ? s[s.length - 1] : NaN)} ` +
    `last_p50_ms=${f(pct(e, 50))} last_p99_ms=${f(pct(e, 99))} ` +
    `driver_cpu_s=${f((cpu.user + cpu.system) / 1e6)} driver_lag_p99_ms=${f(lag.percentile(99) / 1e6)}`);
})().catch((err) => { console.error(err.message); process.exit(1); });
