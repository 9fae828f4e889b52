#!/usr/bin/env node
'use strict';
/*
 * phone.js -- a feature phone in the terminal, for the local stack
 * (scripts/stack up; run it as scripts/phone).
 *
 * It talks to the SMSC simulator's control API (SMSC_CONTROL_URL from
 * var/stack.env), so every screen it shows went simulator -> Kannel ->
 * remigate -> Kannel -> simulator, as on a real network.  Type a USSD code
 * (*247#) to dial; then each line you type is your answer.  A line that
 * starts with "sms " sends the rest as an SMS to the short code.  SMS that
 * arrive for the phone are shown as they come.  Ctrl-D hangs up and quits.
 *
 *   scripts/phone [--msisdn 8801712345678]
 */
const http = require('http');
const readline = require('readline');

const ctl = process.env.SMSC_CONTROL_URL;
const shortCode = process.env.SHORT_CODE || '16247';
let msisdn = '8801712345678';
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--msisdn' && process.argv[i + 1]) msisdn = process.argv[++i];
}
if (!ctl) {
  console.error('phone: SMSC_CONTROL_URL is not set (run scripts/stack up, then scripts/phone)');
  process.exit(2);
}

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body ? JSON.stringify(body) : null;
    const req = http.request(ctl + path, {
      method,
      headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {},
    }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { buf += c; });
      res.on('end', () => {
        let j = null;
        try { j = JSON.parse(buf); } catch (e) { j = { error: buf }; }
        resolve({ status: res.statusCode, body: j });
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

// How the screen counts: UCS-2 units when not all GSM, else characters.
function footer(mt, end) {
  const ucs2 = mt.data_coding === 8;
  const units = ucs2 ? Buffer.byteLength(mt.text, 'utf16le') / 2 : [...mt.text].length;
  return `== ${end ? 'END' : 'CON'} ${ucs2 ? 'ucs2' : 'gsm7'} ${units}/${ucs2 ? 80 : 182}`;
}

let session = null; // {id, seq}
let nextSession = Math.floor(Math.random() * 200) + 1;
let seenMt = 0;

function show(mt) {
  const end = mt.ussd_service_op === '11' || mt.ussd_service_op === 17 ||
              (mt.tlvs && mt.tlvs['0501'] === '11');
  console.log('\n' + mt.text.split('\n').map((l) => '  | ' + l).join('\n'));
  console.log('  ' + footer(mt, end));
  if (end) session = null;
  return end;
}

async function ussd(text) {
  const body = session
    ? { msisdn, text, op: 18, session: session.id, seq: session.seq }
    : { msisdn, text, op: 1, session: nextSession, seq: 0 };
  if (!session) {
    session = { id: nextSession, seq: 0 };
    nextSession = (nextSession % 250) + 1;
  }
  session.seq += 1;
  const r = await call('POST', '/ussd', body);
  if (r.status !== 200) {
    console.log(`  (no answer from the network: ${r.status} ${JSON.stringify(r.body)})`);
    session = null;
    return;
  }
  if (r.body.n > seenMt) seenMt = r.body.n;
  show(r.body);
}

async function pollSms() {
  try {
    const r = await call('GET', `/mt?msisdn=${msisdn}&since=${seenMt}`);
    if (r.status === 200 && Array.isArray(r.body)) {
      for (const mt of r.body) {
        if (mt.n > seenMt) seenMt = mt.n;
        if (mt.role === 'sms') console.log(`\n  [SMS from ${mt.source_addr}] ${mt.text}`);
      }
    }
  } catch (e) { /* the simulator is gone: the prompt says so on the next try */ }
}

async function main() {
  console.log(`phone ${msisdn}: dial a code like *247#, or "sms REG" to text ${shortCode}; Ctrl-D quits`);
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: '> ' });
  const timer = setInterval(pollSms, 1000);
  rl.prompt();
  for await (const line of rl) {
    const t = line.trim();
    try {
      if (t.startsWith('sms ')) {
        const r = await call('POST', '/sms', { msisdn, to: shortCode, text: t.slice(4) });
        console.log(r.status === 200 ? '  (sent)' : `  (not sent: ${r.status})`);
      } else if (!session && !/^\*[0-9*]+#$/.test(t)) {
        console.log('  (dial a USSD code first, like *247#)');
      } else if (t !== '') {
        await ussd(t);
      }
    } catch (e) {
      console.log(`  (cannot reach the SMSC simulator at ${ctl}: ${e.message})`);
    }
    rl.prompt();
  }
  clearInterval(timer);
}

main();
