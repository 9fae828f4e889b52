// bench/review-load.js -- officers working their queues at once: SESSIONS
// sessions (each an officer of one district, logged in once, one after
// another before the clock starts), each in a
// loop for SECS seconds: the queue's first page (GET /api/records), the
// next page (its cursor), then the first record of the page opened (GET
// /api/records/{ref}, an audit row each).  One request at a time per
// session.  Prints one REVIEW line per kind with count, p50, p99 and max
// in milliseconds, and the errors.  THINK_MS (default 0: each session
// sends its next request as soon as the last one is answered) makes each
// session wait a random 0..2*THINK_MS ms before each request, as an
// officer reading the page would.
//
// CPU_PIDS=name:pid,...: also prints, for the measured window, the CPU
// seconds (user + system, from /proc) of each named pid and its children
// (the daemon and its workers, the postmaster and its backends), and this
// process's own, so the figures say what the daemon and PostgreSQL got.
//
//   [THINK_MS=N] [CPU_PIDS=...] node bench/review-load.js BASE_URL PASSWORD USER1,USER2,... SECS
'use strict';
const http = require('http');
const fs = require('fs');

const [base, password, users, secsArg] = process.argv.slice(2);
const secs = Number(secsArg || 30);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
const thinkMs = Number(process.env.THINK_MS || 0);
const think = () => (thinkMs > 0
  ? new Promise((r) => setTimeout(r, Math.random() * 2 * thinkMs))
  : Promise.resolve());

function request(method, path, body, cookie) {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    const data = body ? JSON.stringify(body) : null;
    const headers = {};
    if (data) headers['Content-Type'] = 'application/json';
    if (cookie) headers.Cookie = cookie;
    const t0 = process.hrtime.bigint();
    const req = http.request({ method, hostname: u.hostname, port: u.port, path: u.pathname + u.search, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode,
        headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        ms: Number(process.hrtime.bigint() - t0) / 1e6,
      }));
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

const lat = { first: [], next: [], open: [] };
let errors = 0;

async function login(user) {
  const r = await request('POST', '/api/login', { username: user, password });
  if (r.status !== 200) throw new Error(`login ${user}: ${r.status} ${r.body}`);
  return String(r.headers['set-cookie']).split(';')[0];
}

async function session(cookie) {
  const end = Date.now() + secs * 1000;
  while (Date.now() < end) {
    await think();
    const a = await request('GET', '/api/records?limit=50', null, cookie);
    if (a.status !== 200) { errors++; continue; }
    lat.first.push(a.ms);
    const page = JSON.parse(a.body);
    if (page.next) {
      await think();
      const b = await request('GET', `/api/records?limit=50&cursor=${encodeURIComponent(page.next)}`, null, cookie);
      if (b.status === 200) lat.next.push(b.ms); else errors++;
    }
    if (page.items.length) {
      await think();
      const ref = page.items[Math.floor(Math.random() * page.items.length)].ref;
      const c = await request('GET', `/api/records/${ref}`, null, cookie);
      if (c.status === 200) lat.open.push(c.ms);
      else if (errors++ === 0) console.error(`open ${ref}: ${c.status} ${c.body.slice(0, 200)}`);
    }
  }
}

// CPU ticks (utime + stime) of each named root pid and its children.
function cpuTicks(roots) {
  const out = {};
  for (const r of roots) out[r.name] = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    let st;
    try { st = fs.readFileSync(`/proc/${d}/stat`, 'utf8'); } catch (e) { continue; }
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(f[1]);
    for (const r of roots) {
      if (Number(d) === r.pid || ppid === r.pid) out[r.name] += Number(f[11]) + Number(f[12]);
    }
  }
  return out;
}

const cpuRoots = (process.env.CPU_PIDS || '').split(',').filter(Boolean)
  .map((x) => { const [name, pid] = x.split(':'); return { name, pid: Number(pid) }; });

function pct(a, p) {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

(async () => {
  const list = users.split(',');
  const cookies = [];
  for (const u of list) cookies.push(await login(u)); // one at a time: not measured
  const c0 = cpuTicks(cpuRoots), u0 = process.cpuUsage();
  const t0 = Date.now();
  await Promise.all(cookies.map(session));
  const took = (Date.now() - t0) / 1000;
  const c1 = cpuTicks(cpuRoots), u1 = process.cpuUsage(u0);
  for (const k of ['first', 'next', 'open']) {
    const a = lat[k];
    console.log(`REVIEW ${k} sessions=${list.length} think_ms=${thinkMs} n=${a.length} req/s=${(a.length / took).toFixed(0)} ` +
      `p50=${pct(a, 50).toFixed(1)} p99=${pct(a, 99).toFixed(1)} max=${pct(a, 100).toFixed(1)} errors=${errors}`);
  }
  if (cpuRoots.length) {
    const parts = cpuRoots.map((r) => `${r.name}=${((c1[r.name] - c0[r.name]) / 100).toFixed(1)}`);
    console.log(`CPU s window=${took.toFixed(1)} node=${((u1.user + u1.system) / 1e6).toFixed(1)} ${parts.join(' ')}`);
  }
})().catch((e) => { console.error(e.message); process.exit(1); });
