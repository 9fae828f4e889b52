#!/usr/bin/env node
'use strict';
/*
 * fake-remigate.js -- a fixed HTTP responder standing in for remigate in
 * tests/e2e/kannel-smoke.sh, which checks the Kannel configuration alone.
 * It is not a model of remigate: every other end-to-end test talks to the
 * real daemon.
 *
 *   GET /kannel/mo   wrong or missing key: 403.  USSD start
 *                    (ussd_service_op byte 0x01): a continue screen with
 *                    ussd_service_op=2 and the MO's its_session_info bytes
 *                    echoed.  USSD answer (0x12): a Bangla end screen,
 *                    X-Kannel-Coding: 2, ussd_service_op=17 and the end bit
 *                    set in its_session_info.  SMS: 200 with an empty body.
 *   GET /kannel/dlr  200 "ok".
 *   GET /requests    every request seen: {path, query (raw), params
 *                    (decoded as UTF-8), bytes (op/sess as hex)}.
 *   GET /health      200.
 *
 * Environment: FAKE_PORT (required), KANNEL_SECRET (required).
 */

const http = require('http');

const PORT = parseInt(process.env.FAKE_PORT || '', 10);
const SECRET = process.env.KANNEL_SECRET || '';
if (!(PORT > 0) || !SECRET) {
    console.error('fake-remigate: set FAKE_PORT and KANNEL_SECRET');
    process.exit(2);
}

const CONTINUE_TEXT = 'Welcome\n1. Jobs\n2. Remittance';
const END_TEXT_BN = 'ধন্যবাদ। আপনার অনুরোধ গ্রহণ করা হয়েছে। ' +
    'শীঘ্রই একটি এসএমএস পাবেন। আবার আসবেন।';

/* Percent-decodes one query component to raw bytes ('+' is a space). */
function pctBytes(s) {
    const out = [];
    for (let i = 0; i < s.length; i++) {
        const c = s[i];
        if (c === '+') {
            out.push(0x20);
        } else if (c === '%' && /^[0-9a-fA-F]{2}$/.test(s.substr(i + 1, 2))) {
            out.push(parseInt(s.substr(i + 1, 2), 16));
            i += 2;
        } else {
            out.push(...Buffer.from(c, 'utf8'));
        }
    }
    return Buffer.from(out);
}

function parseQuery(q) {
    const p = {};
    for (const part of (q || '').split('&')) {
        if (!part) {
            continue;
        }
        const eq = part.indexOf('=');
        const k = pctBytes(eq < 0 ? part : part.slice(0, eq)).toString();
        p[k] = pctBytes(eq < 0 ? '' : part.slice(eq + 1));
    }
    return p;
}

function pct(buf) {
    return [...buf].map((b) => '%' + b.toString(16).padStart(2, '0')
        .toUpperCase()).join('');
}

const seen = [];

function send(res, status, headers, body) {
    const b = Buffer.from(body, 'utf8');
    res.writeHead(status, Object.assign({
        'Content-Type': 'text/plain; charset=UTF-8',
        'Content-Length': b.length,
    }, headers));
    res.end(b);
}

const server = http.createServer((req, res) => {
    const qpos = req.url.indexOf('?');
    const path = qpos < 0 ? req.url : req.url.slice(0, qpos);
    const query = qpos < 0 ? '' : req.url.slice(qpos + 1);
    const p = parseQuery(query);
    const entry = { path: path, query: query, params: {}, bytes: {} };
    for (const k of Object.keys(p)) {
        entry.params[k] = p[k].toString('utf8');
        entry.bytes[k] = p[k].toString('hex');
    }
    if (path !== '/requests' && path !== '/health') {
        seen.push(entry);
    }
    if (path === '/health') {
        send(res, 200, {}, 'ok');
    } else if (path === '/requests') {
        const body = JSON.stringify(seen);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(body);
    } else if (path === '/kannel/dlr') {
        send(res, 200, {}, 'ok');
    } else if (path === '/kannel/mo') {
        if (!p.key || p.key.toString() !== SECRET) {
            send(res, 403, {}, 'forbidden');
            return;
        }
        const smsc = p.smsc ? p.smsc.toString() : '';
        if (smsc !== 'ussd') {
            send(res, 200, {}, '');
            return;
        }
        const op = p.op && p.op.length === 1 ? p.op[0] : -1;
        const sess = p.sess && p.sess.length === 2 ? p.sess :
            Buffer.from([0, 0]);
        if (op === 0x01) {
            send(res, 200, {
                'X-Kannel-Meta-Data': '?smpp?ussd_service_op=2&' +
                    'its_session_info=' + pct(sess),
            }, CONTINUE_TEXT);
        } else {
            const end = Buffer.from([sess[0], sess[1] | 1]);
            send(res, 200, {
                'X-Kannel-Coding': '2',
                'X-Kannel-Meta-Data': '?smpp?ussd_service_op=17&' +
                    'its_session_info=' + pct(end),
            }, END_TEXT_BN);
        }
    } else {
        send(res, 404, {}, 'not found');
    }
});
server.on('error', (e) => {
    console.error('fake-remigate: ' + e.message);
    process.exit(1);
});
server.listen(PORT, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
