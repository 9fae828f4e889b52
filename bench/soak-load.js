#!/usr/bin/env node
'use strict';
/*
 * soak-load.js CONTROL_URL RATE SECS LEDGER [PREFIX] -- an open-loop driver
 * of whole registrations (part 1, in Bangla) through Kannel, driven through
 * the SMSC simulator's control API (each POST /ussd sends a deliver_sm on
 * the USSD bind and returns when Kannel's submit_sm answer arrived).
 *
 * A new dialogue starts every 1/RATE s on a fixed schedule for SECS s,
 * whatever the earlier ones are doing (open loop); each dials *247#,
 * answers language (Bangla), Register, consent, a name, sex, birth year,
 * a district by its first letters and a NID (Bangla digits), pages the
 * read-back with 98 and confirms with 1.  Between two steps the caller
 * thinks THINK_MIN_MS..THINK_MAX_MS (environment; default 2000..5000, as
 * in the reference's L1).  A step's latency is measured from the time it
 * was meant to be sent (the dialogue's slot for the dial, the end of the
 * think time for the others), so a driver that falls behind counts it.
 * After SECS no new dialogue starts; the ones under way run to their end.
 *
 * Each dialogue ends in one JSON line of LEDGER in the format of
 * tests/faults/driver.py (msisdn, outcome, ref, step, ms, t0, t1; so
 * `driver.py tally` checks it against the rows) plus ts: the intended send
 * time of each step (epoch s).  Outcomes: saved / queued (told a
 * reference), saving (the deadline came with the record's write in
 * flight: stored or not unknown), try_later, busy, lost (told "not
 * saved"), no_answer (no
 * submit_sm in 15 s, or the simulator had no USSD bind: unknown whether
 * the step was applied; also Kannel's own "Service busy" answer when
 * remigate did not answer), other (another END screen).
 * Prints one line at the end:
 *   SOAK dialogues=N steps=N errors=N p50_ms=.. p99_ms=.. driver_cpu_ms=..
 * and every 10 s a progress line "# t=.. started=.. done=.. inflight=..".
 */
const http = require('http');
const fs = require('fs');

const [ctl, rate, secs, ledgerPath] = [process.argv[2], +process.argv[3] || 40,
  +process.argv[4] || 600, process.argv[5]];
const prefix = process.argv[6] || '88019';
const thinkMin = +(process.env.THINK_MIN_MS || 2000);
const thinkMax = +(process.env.THINK_MAX_MS || 5000);
if (!ctl || !ledgerPath) {
  console.error('usage: soak-load.js CONTROL_URL RATE SECS LEDGER [PREFIX]');
  process.exit(2);
}
const ledger = fs.openSync(ledgerPath, 'a');
const agent = new http.Agent({ keepAlive: true, maxSockets: 4096 });
const cpu0 = process.cpuUsage();
const REF = /\b([0-9A-Z]{10})\b/;
const bnDigits = (s) => s.replace(/[0-9]/g, (d) => String.fromCharCode(0x09e6 + +d));
let started = 0;
let done = 0;
let steps = 0;
let errors = 0;
const lat = [];

function post(body) {
  const data = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = http.request(ctl + '/ussd', {
      method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let j = {};
        try { j = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) { /* */ }
        resolve({ status: res.statusCode, text: j.text || '', op: j.ussd_service_op });
      });
    });
    req.on('error', () => resolve({ status: 0, text: '', op: null }));
    req.end(data);
  });
}

// the last screen's outcome, as tests/faults/driver.py classifies it
function classify(text) {
  // Kannel's own answer when remigate did not answer (reply-couldnotfetch
  // and reply-requestfailed of scripts/kannel-config): no answer from the
  // daemon, the step may have been applied
  if (text === 'Service busy, please try again later.') return ['no_answer', null];
  const m = REF.exec(text);
  if (m && text.includes('জমা হলে SMS পাবেন')) return ['queued', m[1]];
  if (m && text.includes('১ম অংশ জমা হলো')) return ['saved', m[1]];
  if (text.includes('উত্তর জমা হচ্ছে') || text.includes('Still saving')) return ['saving', null];
  if (text.includes('জমা করা যায়নি') || text.includes('could not save')) return ['try_later', null];
  if (text.includes('লাইন এখন ব্যস্ত') || text.includes('Service busy')) return ['busy', null];
  if (text.includes('হারিয়ে গেছে') || text.includes('lost your answers')) return ['lost', null];
  return ['other', null];
}

const sleepUntil = (t) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
const think = () => thinkMin + Math.random() * (thinkMax - thinkMin);

async function dialogue(n, slot) {
  const msisdn = prefix + String(n).padStart(13 - prefix.length, '0');
  const session = (n % 255) + 1;
  const nid = String(1 + (n % 9)) + String(n % 1e9).padStart(9, '0');
  const answers = ['1', '1', '1', 'রহিমা বেগম', '2', '১৯৯০', 'চট্ট', bnDigits(nid)];
  const rec = { msisdn, outcome: null, ref: null, step: 0, ms: [], ts: [], t0: slot / 1000 };
  let due = slot;
  let extra = 0;
  let text = '*247#';
  for (let i = 0; ; i++) {
    await sleepUntil(due);
    rec.step = i;
    rec.ts.push(due / 1000);
    const r = await post({ msisdn, text, op: i === 0 ? 1 : 18, session, seq: i & 127, timeout: 15000 });
    const ms = Date.now() - due;
    rec.ms.push(ms);
    lat.push(ms);
    if (r.status !== 200) {
      errors++;
      rec.outcome = 'no_answer';
      rec.text = 'HTTP ' + r.status;
      break;
    }
    steps++;
    if (r.op === 17 || !r.text.length) {
      [rec.outcome, rec.ref] = classify(r.text);
      if (rec.outcome === 'other') rec.text = r.text.slice(0, 160);
      break;
    }
    if (i < answers.length) {
      text = answers[i];
    } else if (extra++ < 12) {
      text = /(^|[^0-9])(98|৯৮)[.)]/.test(r.text) ? '98' : '1';
    } else {
      rec.outcome = 'other';
      rec.text = 'no end: ' + r.text.slice(0, 140);
      break;
    }
    due = Date.now() + think();
  }
  rec.t1 = Date.now() / 1000;
  fs.writeSync(ledger, JSON.stringify(rec) + '\n');
  done++;
}

const t0 = Date.now() + 200;
const total = Math.floor(rate * secs);
const running = [];
const progress = setInterval(() => {
  console.log(`# t=${((Date.now() - t0) / 1000).toFixed(0)} started=${started} done=${done} ` +
              `inflight=${started - done} steps=${steps} errors=${errors}`);
}, 10000);
(async () => {
  for (let n = 0; n < total; n++) {
    const slot = t0 + (n * 1000) / rate;
    await sleepUntil(slot);
    started++;
    running.push(dialogue(n + 1, slot));
  }
  await Promise.all(running);
  clearInterval(progress);
  lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p / 100 * lat.length))] : 0);
  const cpu = process.cpuUsage(cpu0);
  console.log(`SOAK dialogues=${done} steps=${steps} errors=${errors} p50_ms=${q(50)} ` +
              `p99_ms=${q(99)} driver_cpu_ms=${((cpu.user + cpu.system) / 1000).toFixed(0)}`);
  agent.destroy();
  fs.closeSync(ledger);
})();
