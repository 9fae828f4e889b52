#!/usr/bin/env node
'use strict';
/*
 * kannel-load.js CONTROL_URL MODE CONCURRENCY SECONDS -- USSD steps through
 * Kannel, driven through the SMSC simulator's control API (each POST /ussd
 * sends a deliver_sm and returns when Kannel's submit_sm answer arrived).
 *
 * MODE "dialogue": every virtual phone dials *247#, answers language,
 * Register, consent and a name (5 steps), then dials again as a new number.
 * MODE "dial": every step is a dial from a new number (what a service
 * that answers each MO with one fixed text sees; remigate answers it with
 * its first screen).  LABEL (default MODE) names the run in the output.
 * Prints one line:
 *   KANNEL mode=LABEL steps=N steps_per_s=.. errors=N p50_ms=.. p99_ms=..
 *     mean_ms=.. driver_cpu_ms=..
 * (driver_cpu_ms: this script's own CPU time, user and system).
 * BINDS=a,b (environment): phone i sends all its steps on the simulator's
 * bind BINDS[i % n] (bench/capacity: one Kannel pair or two); unset, the
 * simulator picks its USSD bind.
 */
const http = require('http');

const [ctl, mode, conc, secs] = [process.argv[2], process.argv[3],
  +process.argv[4] || 16, +process.argv[5] || 10];
const label = process.argv[6] || mode;
const cpu0 = process.cpuUsage();
const agent = new http.Agent({ keepAlive: true, maxSockets: conc * 2 });
const answers = ['1', '1', '1', 'Karim Uddin'];
const lat = [];
let steps = 0;
let errors = 0;
let counter = 0;
const end = Date.now() + secs * 1000;
const binds = process.env.BINDS ? process.env.BINDS.split(',') : [];

function ussd(body) {
  const data = JSON.stringify(body);
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(ctl + '/ussd', {
      method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
    }, (res) => {
      res.resume();
      res.on('end', () => {
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (res.statusCode === 200) steps++; else errors++;
        resolve(res.statusCode === 200);
      });
    });
    req.on('error', () => { errors++; resolve(false); });
    req.end(data);
  });
}

async function phone(_, k) {
  const bind = binds.length ? { bind: binds[k % binds.length] } : {};
  while (Date.now() < end) {
    const n = counter++;
    const msisdn = '88019' + String(n).padStart(8, '0');
    const session = (n % 250) + 1;
    if (!await ussd({ msisdn, text: '*247#', op: 1, session, seq: 0, timeout: 10000, ...bind })) continue;
    if (mode !== 'dialogue') continue;
    for (let i = 0; i < answers.length && Date.now() < end; i++) {
      if (!await ussd({ msisdn, text: answers[i], op: 18, session, seq: i + 1, timeout: 10000, ...bind })) break;
    }
  }
}

Promise.all(Array.from({ length: conc }, phone)).then(() => {
  lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p / 100 * lat.length))] : 0);
  const mean = lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : 0;
  const cpu = process.cpuUsage(cpu0);
  console.log(`KANNEL mode=${label} steps=${steps} steps_per_s=${(steps / secs).toFixed(0)} ` +
              `errors=${errors} p50_ms=${q(50).toFixed(1)} p99_ms=${q(99).toFixed(1)} ` +
              `mean_ms=${mean.toFixed(1)} driver_cpu_ms=${((cpu.user + cpu.system) / 1000).toFixed(0)}`);
  agent.destroy();
});
