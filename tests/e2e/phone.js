#!/usr/bin/env node
'use strict';
/*
 * phone.js -- a feature phone in the terminal, for the local stack
 * (scripts/stack up; run it as scripts/phone).
 *
 * It talks to the SMSC simulator's control API (SMSC_CONTROL_URL from
 * var/stack.env), so every screen it shows went simulator -> Kannel ->
 * remigate -> Kannel -> simulator, as on a real network.
 *
 *   *247#          dial a USSD code (any *...# starts a new dialogue)
 *   1, রহিমা, ...  while a dialogue is open: your answer to the screen
 *   hangup         drop the open dialogue without an answer, as when the
 *                  caller presses Cancel or the network loses the call
 *                  (the next dial offers to continue where you left off)
 *   sms TEXT       send TEXT as an SMS to the short code (REG, HELP, ...)
 *   Ctrl-D         quit
 *
 * Each screen is shown wrapped to the width of a small phone display, with
 * a footer like "== CON ucs2 61/80": continue or end, the encoding it came
 * in (data_coding 8 = UCS-2, else GSM 7-bit) and its length against the
 * USSD limit (80 UCS-2 or 182 GSM characters).  SMS that arrive for this
 * number (confirmations, replies to keywords) are shown as they come.
 *
 *   scripts/phone [--msisdn 8801712345678] [--width 24]   (0: no wrapping)
 */
const http = require('http');
const readline = require('readline');

const ctl = process.env.SMSC_CONTROL_URL;
const shortCode = process.env.SHORT_CODE || '16247';
const ussdCode = process.env.USSD_CODE || '*247#';
let msisdn = '8801712345678';
let width = 24;
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--msisdn' && process.argv[i + 1]) msisdn = process.argv[++i];
  else if (a === '--width' && process.argv[i + 1]) width = parseInt(process.argv[++i], 10) || 0;
  else {
    console.error('usage: scripts/phone [--msisdn 8801712345678] [--width 24]');
    process.exit(2);
  }
}
if (!/^[0-9]{8,15}$/.test(msisdn)) {
  console.error(`phone: ${msisdn} is not a number in international form (8801712345678)`);
  process.exit(2);
}
if (!ctl) {
  console.error('phone: SMSC_CONTROL_URL is not set (run scripts/stack up, then scripts/phone)');
  process.exit(2);
}
const tty = process.stdin.isTTY;

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

// Word-wrap one line to `width` visible characters (grapheme clusters, so a
// Bangla letter with its vowel sign counts once); a word longer than a
// line is cut.
const seg = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
function graphemes(s) { return [...seg.segment(s)].map((x) => x.segment); }
function wrap(line) {
  if (!width) return [line];
  const out = [];
  let cur = [];
  for (const word of line.split(' ')) {
    let g = graphemes(word);
    if (cur.length && cur.length + 1 + g.length > width) {
      out.push(cur.join(''));
      cur = [];
    }
    if (cur.length) cur.push(' ');
    while (cur.length + g.length > width) {
      const room = width - cur.length;
      out.push(cur.concat(g.slice(0, room)).join(''));
      cur = [];
      g = g.slice(room);
    }
    cur = cur.concat(g);
  }
  out.push(cur.join(''));
  return out;
}

// How the network counts a screen: UTF-16 units in UCS-2, else characters.
function footer(mt, end) {
  const ucs2 = mt.data_coding === 8;
  const units = ucs2 ? Buffer.byteLength(mt.text, 'utf16le') / 2 : [...mt.text].length;
  return `== ${end ? 'END' : 'CON'} ${ucs2 ? 'ucs2' : 'gsm7'} ${units}/${ucs2 ? 80 : 182}`;
}

let session = null; // the open dialogue: {id, seq}
let nextSession = Math.floor(Math.random() * 200) + 1;
let seenMt = 0; // the last submit_sm record number looked at for SMS
let rl = null;

// Print above the prompt without losing what the user is typing.
function print(text) {
  if (rl && tty) {
    readline.clearLine(process.stdout, 0);
    readline.cursorTo(process.stdout, 0);
  }
  console.log(text);
  if (rl && tty) rl.prompt(true);
}

function show(mt) {
  const end = mt.ussd_service_op === 17 || mt.ussd_service_op === 3 ||
              (mt.tlvs && mt.tlvs['0501'] === '11');
  const lines = mt.text.split('\n').flatMap(wrap);
  const bar = '  +' + '-'.repeat((width || 24) + 2);
  console.log([bar, ...lines.map((l) => '  | ' + l), bar, '  ' + footer(mt, end)].join('\n'));
  if (end) session = null;
}

async function ussd(text) {
  const dial = /^\*[0-9*]+#$/.test(text);
  if (dial || !session) {
    // a new dial drops whatever dialogue was open, as on a real phone
    session = { id: nextSession, seq: 0 };
    nextSession = (nextSession % 250) + 1;
  }
  const body = session.seq === 0
    ? { msisdn, text, op: 1, session: session.id, seq: 0 }
    : { msisdn, text, op: 18, session: session.id, seq: session.seq };
  session.seq += 1;
  const r = await call('POST', '/ussd', body);
  if (r.status !== 200) {
    const why = r.status === 504 ? 'no answer in time'
      : r.status === 503 ? 'Kannel is not bound to the simulator'
        : `${r.status} ${JSON.stringify(r.body)}`;
    console.log(`  (network: ${why}; the dialogue is over, dial again)`);
    session = null;
    return;
  }
  show(r.body);
}

// A concatenated SMS arrives as parts, each with a UDH naming its reference,
// the number of parts and its own place: [ref, total, seq] or null.
function concatInfo(udhHex) {
  if (!udhHex) return null;
  const u = Buffer.from(udhHex, 'hex');
  for (let i = 1; i + 1 < u.length; i += 2 + u[i + 1]) {
    const iei = u[i];
    const len = u[i + 1];
    if (iei === 0x00 && len === 3) return [u[i + 2], u[i + 3], u[i + 4]];
    if (iei === 0x08 && len === 4) return [(u[i + 2] << 8) | u[i + 3], u[i + 4], u[i + 5]];
  }
  return null;
}

const partial = new Map(); // "source/ref" -> {total, parts: [], first: ms}

function showSms(source, text) {
  const lines = text.split('\n').flatMap(wrap).map((l) => '  | ' + l);
  print(`  [SMS from ${source}]\n${lines.join('\n')}`);
}

// A whole SMS (or the parts of one that never completed, after 30 s) to
// show; the handset joins the parts as a phone does.
function takeSms(mt) {
  const c = concatInfo(mt.udh_hex);
  if (!c || c[1] < 2) return [mt.text];
  const key = `${mt.source_addr}/${c[0]}`;
  let p = partial.get(key);
  if (!p) {
    p = { total: c[1], parts: [], first: Date.now() };
    partial.set(key, p);
  }
  p.parts[c[2] - 1] = mt.text;
  if (p.parts.filter((x) => x !== undefined).length < p.total) return [];
  partial.delete(key);
  return [p.parts.join('')];
}

function staleSms() {
  const out = [];
  for (const [key, p] of partial) {
    if (Date.now() - p.first < 30000) continue;
    partial.delete(key);
    const have = [];
    for (let i = 0; i < p.total; i++) have.push(p.parts[i] === undefined ? `[part ${i + 1}/${p.total} missing]` : p.parts[i]);
    out.push([key.split('/')[0], have.join('')]);
  }
  return out;
}

// Shows the SMS that came since the last look; returns how many.
async function pollSms(waitMs) {
  let shown = 0;
  try {
    const r = await call('GET', `/mt?msisdn=${msisdn}&since=${seenMt}${waitMs ? '&wait=' + waitMs : ''}`);
    if (r.status === 200 && Array.isArray(r.body)) {
      for (const mt of r.body) {
        if (mt.n > seenMt) seenMt = mt.n;
        if (mt.role !== 'sms') continue;
        for (const text of takeSms(mt)) {
          showSms(mt.source_addr, text);
          shown++;
        }
      }
    }
    for (const [source, text] of staleSms()) {
      showSms(source, text);
      shown++;
    }
  } catch (e) { /* the simulator is gone: the next step says so */ }
  return shown;
}

async function main() {
  // SMS sent to this number before now are old news
  try {
    const r = await call('GET', `/mt?msisdn=${msisdn}`);
    if (r.status === 200 && Array.isArray(r.body)) {
      for (const mt of r.body) if (mt.n > seenMt) seenMt = mt.n;
    }
  } catch (e) {
    console.error(`phone: cannot reach the SMSC simulator at ${ctl} (${e.message}); is the stack up?`);
    process.exit(1);
  }
  console.log(`phone ${msisdn}: dial ${ussdCode}, answer each screen, "hangup" to drop a dialogue,\n` +
              `"sms TEXT" to text ${shortCode} (REG, HELP, STATUS, STOP); Ctrl-D quits`);
  rl = readline.createInterface({ input: process.stdin, output: process.stdout, prompt: '> ' });
  let polling = false;
  const timer = setInterval(async () => {
    if (polling) return;
    polling = true;
    await pollSms(0);
    polling = false;
  }, 1000);
  rl.prompt();
  for await (const line of rl) {
    const t = line.trim();
    if (!tty) console.log(t); // a transcript from a pipe shows what was typed
    try {
      if (/^sms\s/i.test(t)) {
        const r = await call('POST', '/sms', { msisdn, to: shortCode, text: t.slice(4).trim() });
        console.log(r.status === 200 ? '  (sent)' : `  (not sent: ${r.status} ${JSON.stringify(r.body)})`);
      } else if (t === 'hangup') {
        console.log(session ? '  (dialogue dropped)' : '  (no dialogue open)');
        session = null;
      } else if (!session && !/^\*[0-9*]+#$/.test(t)) {
        if (t !== '') console.log(`  (dial a USSD code first, like ${ussdCode})`);
      } else if (t !== '') {
        await ussd(t);
      }
    } catch (e) {
      console.log(`  (cannot reach the SMSC simulator at ${ctl}: ${e.message})`);
    }
    rl.prompt();
  }
  clearInterval(timer);
  // an SMS on its way (the confirmation after the last screen) still shows
  while (polling) await new Promise((res) => setTimeout(res, 50));
  const end = Date.now() + (tty ? 0 : 3000);
  while (!(await pollSms(Math.max(0, end - Date.now()))) && Date.now() < end) { /* wait */ }
  console.log('');
}

main();
