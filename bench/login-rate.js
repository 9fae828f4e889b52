// bench/login-rate.js -- console logins at a fixed rate, open loop: one
// POST /api/login every 1000/RATE ms whatever the answers before it (a
// slow answer does not slow the next login down, as wrk's closed loop
// did), for SECS seconds.  Latency is counted from when each login was
// due.  Prints one line in bench/login.lua's format:
//   RESULT logins_per_s=N logins=N not_200=N p50_ms=N p99_ms=N
// logins_per_s counts the logins answered 200 per second of the run;
// offered_per_s what was sent, codes how many of each HTTP status.
//
//   node bench/login-rate.js BASE_URL USER PASSWORD RATE SECS
'use strict';
const http = require('http');

const [base, user, password, rateArg, secsArg] = process.argv.slice(2);
const rate = Number(rateArg || 20);
const secs = Number(secsArg || 20);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const u = new URL('/api/login', base);
const body = JSON.stringify({ username: user, password });
const lat = [];
let ok = 0;
let bad = 0;
let sent = 0;
const codes = {};

function login(due) {
  return new Promise((resolve) => {
    const req = http.request({
      method: 'POST', hostname: u.hostname, port: u.port, path: u.pathname, agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => {
        const ms = Number(process.hrtime.bigint() - due) / 1e6;
        codes[res.statusCode] = (codes[res.statusCode] || 0) + 1;
        if (res.statusCode === 200) { ok++; lat.push(ms); } else bad++;
        resolve();
      });
    });
    req.on('error', () => { bad++; codes.error = (codes.error || 0) + 1; resolve(); });
    req.end(body);
  });
}

function pct(a, p) {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

(async () => {
  const t0 = process.hrtime.bigint();
  const step = 1e9 / rate;
  const total = Math.round(rate * secs);
  const running = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + BigInt(Math.round(i * step));
    const wait = Number(due - process.hrtime.bigint()) / 1e6;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sent++;
    running.push(login(due));
  }
  await Promise.all(running);
  console.log(`RESULT logins_per_s=${(ok / secs).toFixed(1)} offered_per_s=${(sent / secs).toFixed(1)} ` +
    `logins=${ok} not_200=${bad} p50_ms=${pct(lat, 50).toFixed(1)} p99_ms=${pct(lat, 99).toFixed(1)} ` +
    `codes=${Object.entries(codes).map(([k, v]) => `${k}:${v}`).join(',')}`);
})().catch((e) => { console.error(e.message); process.exit(1); });
