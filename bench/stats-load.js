// bench/stats-load.js -- dashboard requests at a steady rate: RATE GET
// /api/stats a second (default 20), spread evenly, for SECS seconds, as
// the users given (logged in once before the clock starts), each request
// the next of the dashboard's views in turn (the seed's cuts, the funnel,
// a period, a district) and the next user.  Requests do not wait for each
// other: a slow answer does not lower the rate.  Prints one STATSLOAD line
// with the requests sent, answered 200, errors, p50, p95, p99 and max in
// milliseconds.
//
//   node bench/stats-load.js BASE_URL PASSWORD USER1,USER2,... SECS [RATE]
'use strict';
const http = require('http');

const [base, password, users, secsArg, rateArg] = process.argv.slice(2);
const secs = Number(secsArg || 10);
const rate = Number(rateArg || 20);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const views = [
  'dims=sex', 'dims=district', 'dims=skill', 'dims=sex,age_band',
  'dims=country,skill', 'dims=education,sex', 'dims=district,need',
  'dims=district,status', 'dims=week', 'dims=age_band&status=verified',
  'dims=country,skill&from=2026-03-10&to=2026-07-20',
  'dims=sex,age_band&district=BD-13',
];

function request(method, path, body, cookie) {
  return new Promise((resolve) => {
    const u = new URL(path, base);
    const data = body ? JSON.stringify(body) : null;
    const headers = {};
    if (data) headers['Content-Type'] = 'application/json';
    if (cookie) headers.Cookie = cookie;
    const t0 = process.hrtime.bigint();
    const req = http.request({ method, hostname: u.hostname, port: u.port,
      path: u.pathname + u.search, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e), ms: 0 }));
    if (data) req.write(data);
    req.end();
  });
}

function pct(a, p) {
  if (a.length === 0) return 0;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
}

(async () => {
  const cookies = [];
  for (const u of users.split(',')) {
    const r = await request('POST', '/api/login', { username: u, password });
    if (r.status !== 200) { console.error(`login ${u}: ${r.status} ${r.body}`); process.exit(1); }
    cookies.push(String(r.headers['set-cookie']).split(';')[0]);
  }
  const lat = [];
  let sent = 0, errors = 0, firstError = '';
  const pending = [];
  const t0 = Date.now();
  const total = Math.round(secs * rate);
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sent++;
    pending.push(request('GET', `/api/stats?${views[i % views.length]}`, null,
      cookies[i % cookies.length]).then((r) => {
      if (r.status === 200) lat.push(r.ms);
      else { errors++; if (!firstError) firstError = `${r.status} ${r.body.slice(0, 120)}`; }
    }));
  }
  await Promise.all(pending);
  const f = (x) => x.toFixed(1);
  console.log(`STATSLOAD sent=${sent} ok=${lat.length} errors=${errors} secs=${((Date.now() - t0) / 1000).toFixed(1)}` +
    ` p50_ms=${f(pct(lat, 0.5))} p95_ms=${f(pct(lat, 0.95))} p99_ms=${f(pct(lat, 0.99))} max_ms=${f(pct(lat, 1))}` +
    (firstError ? ` first_error="${firstError}"` : ''));
})();
