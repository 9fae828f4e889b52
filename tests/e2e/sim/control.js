'use strict';
/*
 * sim/control.js -- the simulator's HTTP control API, the one the tests
 * drive (documented at the top of smsc-sim.js): POST /ussd and /sms send
 * deliver_sm (USSD dialogues under the session limit's simulated clock);
 * GET /mt (with its long poll) and /pdus read the record; POST /faults,
 * /receipts and /reset change how the SMSC behaves; GET /counts and
 * /health.  JSON bodies and answers; bad input is a 400 that changes
 * nothing.
 */

const http = require('http');
const url = require('url');
const config = require('./config');
const { MESSAGE_STATE, normMsisdn, encodeMo } = require('./pdu');
const { state, resetFaults, resetReceipts, resetCounts } =
    require('./state');
const { bindsOf, pickBind, sendMo } = require('./sessions');

/* simulated time of each USSD dialogue ("msisdn/session"), in ms */
const clocks = new Map();
let cuts = 0;           /* dialogues ended by the session limit */

/* What POST /ussd and GET /mt tell of a submit_sm record. */
function summary(r) {
    return {
        n: r.n,
        text: r.text,
        data_coding: r.data_coding,
        ussd_service_op: r.ussd_service_op,
        its_session_info: r.its_session_info,
        sm_length: r.sm_length,
        esm_class: r.esm_class,
        has_udh: r.has_udh,
        udh_hex: r.udh_hex || null,
        service_type: r.service_type,
        source_addr: r.source_addr,
        destination_addr: r.destination_addr,
        registered_delivery: r.registered_delivery,
        message_id: r.message_id || null,
        tlvs: r.tlvs,
        raw_hex: r.raw_hex,
    };
}

function reply(res, status, obj) {
    const body = JSON.stringify(obj) + '\n';
    res.writeHead(status, {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
}

function readJson(req, cb) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        const s = Buffer.concat(chunks).toString('utf8').trim();
        if (!s) {
            cb(null, {});
            return;
        }
        try {
            const v = JSON.parse(s);
            if (v === null || typeof v !== 'object' || Array.isArray(v)) {
                cb('body must be a JSON object');
                return;
            }
            cb(null, v);
        } catch (e) {
            cb('bad JSON: ' + e.message);
        }
    });
}

/* v as an integer in lo..hi, dflt when absent, NaN when it is not one. */
function intIn(v, lo, hi, dflt) {
    if (v === undefined || v === null || v === '') {
        return dflt;
    }
    const n = Number(v);
    if (!Number.isInteger(n) || n < lo || n > hi) {
        return NaN;
    }
    return n;
}

/* Destination of a USSD MO: as asked, else the code this dialogue started
 * with, else the dialled text of a start, else USSD_CODE. */
const dialled = new Map();
function ussdTo(msisdn, session, op, text, to) {
    const key = msisdn + '/' + session;
    let dst;
    if (to !== undefined) {
        dst = String(to);
    } else if (op !== 1 && dialled.has(key)) {
        dst = dialled.get(key);
    } else if (op === 1 && /^[*#0-9]+$/.test(text)) {
        dst = text;
    } else {
        dst = config.USSD_CODE;
    }
    if (op === 1) {
        dialled.set(key, dst);
    }
    return dst;
}

/* The fields of an MO's deliver_sm from msisdn to dst: the text in GSM
 * 03.38 when it can be, else UCS-2 (forcedDcs: that data_coding). */
function moFields(serviceType, msisdn, dst, text, forcedDcs) {
    const enc = encodeMo(text, forcedDcs);
    return {
        service_type: serviceType,
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: msisdn,
        dest_addr_ton: 0,
        dest_addr_npi: 0,
        destination_addr: dst,
        esm_class: 0,
        data_coding: enc.dcs,
        short_message: enc.buf,
    };
}

/* 502: Kannel refused the deliver_sm, or its response did not come. */
function replyNotAccepted(res, resp) {
    reply(res, 502, { error: 'deliver_sm not accepted',
        deliver_status: resp ? resp.command_status : null });
}

function handleUssd(res, b) {
    const msisdn = normMsisdn(b.msisdn);
    const text = b.text === undefined ? '' : String(b.text);
    const op = intIn(b.op, 0, 255, 1);
    const session = intIn(b.session, 0, 255, 0);
    const seq = intIn(b.seq, 0, 127, 0);
    const timeout = intIn(b.timeout, 0, 600000, 10000);
    const forced = intIn(b.dcs, 0, 255, null);
    if (!/^[0-9]{3,20}$/.test(msisdn) || [op, session, seq, timeout,
        forced].some(Number.isNaN)) {
        reply(res, 400, { error: 'need msisdn (digits), op 0-255, ' +
            'session 0-255, seq 0-127, timeout ms, dcs 0-255' });
        return;
    }
    const think = intIn(b.think_ms, 0, 3600000, 0);
    if (Number.isNaN(think)) {
        reply(res, 400, { error: 'think_ms: integer 0-3600000' });
        return;
    }
    const sess = pickBind('ussd', b.bind);
    if (!sess) {
        reply(res, 503, { error: 'no USSD bind' });
        return;
    }
    if (state.faults.session_limit_ms > 0) {
        const key = msisdn + '/' + session;
        const t = (op === 1 ? 0 : clocks.get(key) || 0) + think +
            state.faults.round_trip_ms;
        if (op !== 1 && t > state.faults.session_limit_ms) {
            /* the operator ended this dialogue: the MO never leaves */
            clocks.delete(key);
            cuts++;
            reply(res, 200, { cut: true, elapsed_ms: t,
                session_limit_ms: state.faults.session_limit_ms });
            return;
        }
        clocks.set(key, t);
    }
    const serviceType = b.service_type === undefined ? 'USSD' :
        String(b.service_type);
    const dst = ussdTo(msisdn, session, op, text, b.to);
    const its = Buffer.from([session, (seq << 1) | (b.end ? 1 : 0)]);
    /* the TLVs go on the wire in this order */
    const fields = Object.assign(moFields(serviceType, msisdn, dst, text,
        forced), { ussd_service_op: op, its_session_info: its });
    let settled = false;
    const waiter = {
        msisdn: msisdn,
        role: sess.simRole,
        session: session,
        resolve: (r) => {
            if (settled) {
                return;
            }
            settled = true;
            clearTimeout(waiter.timer);
            reply(res, 200, summary(r));
        },
    };
    const expectAnswer = b.expect_answer !== false;
    if (expectAnswer) {
        waiter.timer = setTimeout(() => {
            state.waiters = state.waiters.filter((w) => w !== waiter);
            if (!settled) {
                settled = true;
                reply(res, 504, { error: 'no submit_sm for ' + msisdn +
                    ' session ' + session + ' within ' + timeout + ' ms' });
            }
        }, timeout);
        state.waiters.push(waiter);
    }
    sendMo(sess, fields, (first, resp) => {
        if (settled) {
            return;
        }
        if (!first || !resp || resp.command_status !== 0) {
            settled = true;
            clearTimeout(waiter.timer);
            state.waiters = state.waiters.filter((w) => w !== waiter);
            replyNotAccepted(res, resp);
            return;
        }
        if (!expectAnswer) {
            settled = true;
            reply(res, 200, { n: first.n, deliver_status: 0 });
        }
    });
}

function handleSms(res, b) {
    const msisdn = normMsisdn(b.msisdn);
    const text = b.text === undefined ? '' : String(b.text);
    const forced = intIn(b.dcs, 0, 255, null);
    if (!/^[0-9]{3,20}$/.test(msisdn) || Number.isNaN(forced)) {
        reply(res, 400, { error: 'need msisdn (digits), to, text' });
        return;
    }
    const sess = pickBind('sms', b.bind);
    if (!sess) {
        reply(res, 503, { error: 'no SMS bind' });
        return;
    }
    const fields = moFields('', msisdn, String(b.to === undefined ?
        config.SHORT_CODE : b.to), text, forced);
    sendMo(sess, fields, (first, resp) => {
        if (!first || !resp || resp.command_status !== 0) {
            replyNotAccepted(res, resp);
            return;
        }
        reply(res, 200, { n: first.n, deliver_status: 0 });
    });
}

function listMt(q) {
    const msisdn = q.msisdn !== undefined ? normMsisdn(q.msisdn) : null;
    const since = parseInt(q.since || '0', 10) || 0;
    return state.records.filter((r) => r.dir === 'in' &&
        r.command === 'submit_sm' && !r.throttled && r.n > since &&
        (msisdn === null || normMsisdn(r.destination_addr) === msisdn))
        .map((r) => Object.assign(summary(r), { role: r.role,
            bind: r.bind }));
}

function handleMt(res, q) {
    let list = listMt(q);
    const wait = intIn(q.wait, 0, 600000, 0);
    if (list.length > 0 || !(wait > 0)) {
        reply(res, 200, list);
        return;
    }
    /* Long poll: answer as soon as a matching submit_sm arrives. */
    const w = { msisdn: q.msisdn !== undefined ? normMsisdn(q.msisdn) : '' };
    const timer = setTimeout(() => {
        state.mtWaiters = state.mtWaiters.filter((x) => x !== w);
        reply(res, 200, listMt(q));
    }, wait);
    w.resolve = () => {
        clearTimeout(timer);
        reply(res, 200, listMt(q));
    };
    state.mtWaiters.push(w);
}

function handleFaults(res, b) {
    if (b.duplicate_next_deliver !== undefined) {
        state.faults.duplicate_next_deliver =
            !!b.duplicate_next_deliver;
    }
    if (b.throttle_next_n !== undefined) {
        const n = intIn(b.throttle_next_n, 0, 1000000, 0);
        if (Number.isNaN(n)) {
            reply(res, 400, { error: 'throttle_next_n: integer >= 0' });
            return;
        }
        state.faults.throttle_next_n = n;
    }
    if (b.throttle_rate !== undefined) {
        const n = intIn(b.throttle_rate, 0, 1000000, 0);
        if (Number.isNaN(n)) {
            reply(res, 400, { error: 'throttle_rate: integer >= 0' });
            return;
        }
        state.faults.throttle_rate = n;
        state.takenAt = [];
    }
    if (b.throttle_role !== undefined) {
        state.faults.throttle_role = String(b.throttle_role);
    }
    if (b.throttle_status !== undefined) {
        if (b.throttle_status !== 'throttled' &&
            b.throttle_status !== 'qfull') {
            reply(res, 400, { error: 'throttle_status: throttled or qfull' });
            return;
        }
        state.faults.throttle_status = b.throttle_status;
    }
    if (b.delay_ms !== undefined) {
        const n = intIn(b.delay_ms, 0, 600000, 0);
        if (Number.isNaN(n)) {
            reply(res, 400, { error: 'delay_ms: integer 0-600000' });
            return;
        }
        state.faults.delay_ms = n;
    }
    for (const k of ['session_limit_ms', 'round_trip_ms']) {
        if (b[k] !== undefined) {
            const n = intIn(b[k], 0, 3600000, 0);
            if (Number.isNaN(n)) {
                reply(res, 400, { error: k + ': integer 0-3600000' });
                return;
            }
            state.faults[k] = n;
            clocks.clear();
        }
    }
    let dropped = 0;
    if (b.drop_bind) {
        for (const s of [...state.sessions]) {
            if (b.drop_bind === true || b.drop_bind === s.simSystemId ||
                b.drop_bind === s.simRole) {
                s.simBound = false;
                s.destroy();
                state.sessions.delete(s);
                dropped++;
            }
        }
    }
    reply(res, 200, Object.assign({ dropped: dropped }, state.faults));
}

/* A receipt rule from its JSON, or a string saying what is wrong. */
function parseRule(j, isDefault) {
    if (j === null || typeof j !== 'object' || Array.isArray(j)) {
        return 'a rule is an object';
    }
    const r = { stat: j.stat === undefined ? 'DELIVRD' :
        String(j.stat).toUpperCase() };
    if (r.stat !== 'NONE' && MESSAGE_STATE[r.stat] === undefined) {
        return 'unknown stat ' + r.stat;
    }
    if (j.delay_ms !== undefined) {
        r.delay_ms = intIn(j.delay_ms, 0, 3600000, 0);
        if (Number.isNaN(r.delay_ms)) {
            return 'delay_ms: integer 0-3600000';
        }
    }
    if (j.err !== undefined) {
        r.err = String(j.err);
        if (!/^[0-9A-Fa-f]{3}$/.test(r.err)) {
            return 'err: 3 hex digits';
        }
    }
    r.pre = [];
    for (const p of j.pre || []) {
        const st = String(p).toUpperCase();
        if (MESSAGE_STATE[st] === undefined) {
            return 'unknown stat in pre: ' + st;
        }
        r.pre.push(st);
    }
    r.before_resp = !!j.before_resp;
    if (!isDefault) {
        if (j.msisdn !== undefined) {
            r.msisdns = (Array.isArray(j.msisdn) ? j.msisdn : [j.msisdn])
                .map(normMsisdn);
        }
        if (j.re !== undefined) {
            try {
                r.regex = new RegExp(String(j.re));
            } catch (e) {
                return 're: ' + e.message;
            }
        }
        if (!r.msisdns && !r.regex) {
            return 'a rule needs msisdn or re';
        }
    }
    return r;
}

function ruleJson(r) {
    const o = Object.assign({}, r);
    if (r.regex) {
        o.re = r.regex.source;
        delete o.regex;
    }
    if (r.msisdns) {
        o.msisdn = r.msisdns;
        delete o.msisdns;
    }
    return o;
}

function handleReceipts(res, b) {
    const d = parseRule(b.default === undefined ? {} : b.default, true);
    if (typeof d === 'string') {
        reply(res, 400, { error: 'default: ' + d });
        return;
    }
    if (b.default === undefined || b.default.delay_ms === undefined) {
        d.delay_ms = config.DLR_DELAY_MS;
    }
    const rules = [];
    for (const j of b.rules || []) {
        const r = parseRule(j, false);
        if (typeof r === 'string') {
            reply(res, 400, { error: 'rules: ' + r });
            return;
        }
        rules.push(r);
    }
    state.receiptRules = { default: d, rules: rules };
    reply(res, 200, { default: ruleJson(d), rules: rules.map(ruleJson) });
}

function health() {
    const bound = [...state.sessions].filter((s) => s.simBound);
    const byRole = {};
    for (const s of bound) {
        byRole[s.simRole] = (byRole[s.simRole] || 0) + 1;
    }
    return {
        up: true,
        binds: bound.length,
        ussd_binds: bindsOf('ussd').length,
        sms_binds: bindsOf('sms').length,
        by_role: byRole,
        pdus: state.records.length,
        cuts: cuts,
    };
}

/* The control server (not listening yet); exits the process on its
 * errors. */
function createServer() {
    const control = http.createServer((req, res) => {
        const u = url.parse(req.url, true);
        const route = req.method + ' ' + u.pathname;
        const withBody = (fn) => readJson(req, (err, b) => {
            if (err) {
                reply(res, 400, { error: err });
                return;
            }
            fn(b);
        });
        switch (route) {
        case 'POST /ussd':
            withBody((b) => handleUssd(res, b));
            break;
        case 'POST /sms':
            withBody((b) => handleSms(res, b));
            break;
        case 'GET /mt':
            handleMt(res, u.query);
            break;
        case 'GET /pdus': {
            const since = parseInt(u.query.since || '0', 10) || 0;
            reply(res, 200, state.records.filter((r) => r.n > since));
            break;
        }
        case 'POST /reset':
            withBody(() => {
                state.records = [];
                dialled.clear();
                clocks.clear();
                resetFaults();
                resetCounts();
                resetReceipts();
                reply(res, 200, { reset: true });
            });
            break;
        case 'POST /faults':
            withBody((b) => handleFaults(res, b));
            break;
        case 'POST /receipts':
            withBody((b) => handleReceipts(res, b));
            break;
        case 'GET /counts':
            reply(res, 200, state.counts);
            break;
        case 'GET /health':
            reply(res, 200, health());
            break;
        default:
            reply(res, 404, { error: 'no route ' + route });
        }
    });
    control.on('error', (e) => {
        console.error('smsc-sim: control server: ' + e.message);
        process.exit(1);
    });
    return control;
}

module.exports = {
    createServer,
};
