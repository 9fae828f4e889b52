#!/usr/bin/env node
'use strict';
/*
 * smsc-sim.js -- an SMPP 3.4 SMSC that Kannel's bearerbox binds to, for the
 * end-to-end tests and the local stack.
 *
 * It plays the operator's side: it starts USSD dialogues and sends SMS MOs
 * (deliver_sm), answers every submit_sm, sends delivery receipts when asked
 * for them, and can be told to misbehave.  Every PDU that crosses the wire
 * is recorded with its raw bytes and an independent decoding of those bytes
 * (not the smpp package's own), so tests can assert on TLVs, data coding,
 * length and the absence of a UDH.
 *
 * Environment:
 *   SMSC_PORT      SMPP port on 127.0.0.1 (required)
 *   CONTROL_PORT   HTTP control API port on 127.0.0.1 (required)
 *   USSD_SYSID     system_id of the USSD bind (default "ussd")
 *   SMS_SYSID      system_id of the SMS bind (default "sms")
 *   USSD_PW        when set, the USSD bind's password must match
 *   SMS_PW         when set, the SMS bind's password must match
 *   SIM_STRICT=1   refuse binds whose system_id is neither of the two
 *   USSD_CODE      default destination of a USSD start (default "*247#")
 *   SHORT_CODE     default destination of an SMS MO
 *   SIM_DLR_DELAY_MS  delay before a delivery receipt (default 20; a
 *                  receipt rule's delay_ms overrides it)
 *   SIM_NODELAY=1  TCP_NODELAY on the SMPP sockets.  Without it, a
 *                  deliver_sm sent just after the simulator's own
 *                  submit_sm_resp waits (Nagle) for bearerbox's delayed
 *                  ACK, about 40 ms: a closed-loop benchmark pays that on
 *                  every step (bench/kannel)
 *
 * Binds: bind_transceiver (also _transmitter, _receiver) is accepted with
 * any system_id unless SIM_STRICT=1; the role of a bind is "ussd" or "sms"
 * when its system_id is USSD_SYSID or SMS_SYSID, else the system_id.
 * Every submit_sm gets submit_sm_resp with a message_id counting up from
 * 1000001 and, when registered_delivery & 3 == 1, a receipt deliver_sm
 * (esm_class 0x04, receipted_message_id, message_state, body
 * "id:N sub:001 dlvrd:001 submit date:.. done date:.. stat:DELIVRD
 * err:000 text:..") on the same bind.  Which stat, after how long, and
 * whether before the submit_sm_resp, is set per destination by the
 * receipt rules (POST /receipts); the default is DELIVRD after
 * SIM_DLR_DELAY_MS.  Each part of a concatenated SMS is a submit_sm of
 * its own, with its own id and receipt.
 *
 * Control API on 127.0.0.1:CONTROL_PORT (JSON bodies and answers):
 *   POST /ussd {msisdn, text, op=1, session=0, seq=0, end=false, to,
 *               dcs, timeout=10000, bind, service_type="USSD",
 *               expect_answer=true, think_ms=0}
 *       Sends a deliver_sm on the USSD bind: service_type, source msisdn
 *       (TON/NPI 1/1), destination `to` (default: the `to` of this
 *       msisdn+session's start, else the text of an op-1 start, else
 *       USSD_CODE), ussd_service_op = op, its_session_info =
 *       [session, seq << 1 | end], data_coding 0 with GSM 03.38 bytes when
 *       the text is all GSM, else 8 with UTF-16BE (`dcs` forces one).
 *       Waits for the submit_sm on the same bind's role to that msisdn
 *       whose its_session_info session byte equals `session` (or that has
 *       no its_session_info); an SMS to the same number does not count.
 *       200 {n, text, data_coding, ussd_service_op, its_session_info (hex),
 *       sm_length, esm_class, has_udh, udh_hex (the UDH's bytes, null when
 *       none), service_type, source_addr,
 *       destination_addr, registered_delivery, message_id, tlvs
 *       {"0501": hex, ...}, raw_hex}; 504 on timeout; 502 when the
 *       deliver_sm was refused; 503 with no USSD bind; 400 on bad input.
 *       expect_answer=false: 200 {n, deliver_status} once deliver_sm_resp
 *       came (for USSN confirms and aborts).
 *       With a session limit (POST /faults session_limit_ms), each
 *       dialogue (msisdn and session byte) has a clock of simulated time
 *       that starts at its op-1 start: every MO adds think_ms (how long
 *       the caller took to read the screen and type) and round_trip_ms.
 *       An MO that would take the clock past the limit is not sent: the
 *       operator has ended the dialogue, as one does after its session
 *       time, and the application hears nothing of it.  The answer is
 *       then 200 {cut: true, elapsed_ms, session_limit_ms}; the caller's
 *       next move is a new dial (op 1, a new session byte).
 *   POST /sms {msisdn, to=SHORT_CODE, text, dcs, bind}
 *       Sends an SMS deliver_sm (no TLVs) on the SMS bind; 200 {n,
 *       deliver_status: 0} once Kannel acked it.
 *   GET /mt?msisdn=..&since=N&wait=MS
 *       submit_sm received for that msisdn (all when omitted) with record
 *       number n > since, as the /ussd answer plus {role, bind}; throttled
 *       ones left out.  wait: long-poll up to MS ms until one exists.
 *   GET /pdus?since=N   every recorded PDU (enquire_link excepted): {n, t
 *       (ms), dir in|out, bind, role, raw_hex, command, command_status,
 *       sequence_number, and for submit_sm/deliver_sm every field, tlvs,
 *       text, has_udh, throttled, message_id}.
 *   GET /counts  counters since the start or the last /reset, cheap to
 *               read during a long run: {submit_sm: {role: N} (answered with
 *               status 0), throttled: {role: N} (ESME_RTHROTTLED),
 *               queue_full: {role: N} (ESME_RMSGQFUL), receipts: {stat: N},
 *               receipts_early: N (sent before their submit_sm_resp)}.
 *   POST /reset         forgets the record, the faults, the receipt rules
 *                       and the counters (binds stay).
 *   POST /receipts {default: RULE, rules: [RULE, ...]}
 *       Replaces the receipt rules (both keys optional: an absent default
 *       is DELIVRD after SIM_DLR_DELAY_MS, absent rules none).  A RULE is
 *       {msisdn: "8801.." | ["8801..", ...], re: "regex on the
 *       destination digits", stat, delay_ms, err, pre, before_resp}; the
 *       first rule whose msisdn (any of them) or re matches a submit_sm's
 *       destination applies, else the default.  stat: DELIVRD, EXPIRED,
 *       DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD, ENROUTE (sent with
 *       the SMPP message_state of that name, 2 3 4 5 6 7 8 1) or NONE (no
 *       receipt at all); delay_ms: after the submit_sm_resp (default
 *       SIM_DLR_DELAY_MS); err: the receipt's err: field (3 characters,
 *       default 000 for DELIVRD, 001 otherwise); pre: stats of
 *       intermediate receipts sent before the final one, delay_ms / 2
 *       after the response (e.g. ["ENROUTE"]); before_resp: true sends
 *       the (final) receipt before the submit_sm_resp that carries its
 *       message id (as some SMSCs do under load; Kannel then has no
 *       record of the id and drops it).  Answers the rules in force; 400
 *       (rules unchanged) on an unknown stat or a bad regex.
 *   POST /faults {duplicate_next_deliver: bool, throttle_next_n: N,
 *               throttle_rate: N, throttle_role: ROLE, throttle_status:
 *               "throttled" | "qfull",
 *               delay_ms: MS, drop_bind: true | system_id | role,
 *               session_limit_ms: MS, round_trip_ms: MS}
 *       duplicate: the next deliver_sm is sent twice; throttle: the next N
 *       submit_sm get ESME_RTHROTTLED (0x58); throttle_rate: at most N
 *       submit_sm a second (a sliding second) are taken on the binds of
 *       throttle_role (default "sms"; "*": every bind), the others get
 *       ESME_RTHROTTLED, or ESME_RMSGQFUL (0x14, "message queue full")
 *       with throttle_status "qfull" (0: no limit, the default); delay:
 *       every submit_sm_resp
 *       waits MS ms (0 to stop); drop_bind: closes those binds now (Kannel
 *       binds again after its reconnect-delay); session_limit_ms: the
 *       operator's USSD session time, on the simulated clock above (0:
 *       none, the default), round_trip_ms added to it for every MO.
 *       Answers the fault state and {dropped: count}.
 *   GET /health  {up: true, binds, ussd_binds, sms_binds, by_role, pdus,
 *               cuts (dialogues ended by the session limit)}.
 */

const http = require('http');
const url = require('url');
const smpp = require('smpp');

const SMSC_PORT = parseInt(process.env.SMSC_PORT || '', 10);
const CONTROL_PORT = parseInt(process.env.CONTROL_PORT || '', 10);
if (!(SMSC_PORT > 0) || !(CONTROL_PORT > 0)) {
    console.error('smsc-sim: set SMSC_PORT and CONTROL_PORT');
    process.exit(2);
}
const ROLE_IDS = {
    ussd: process.env.USSD_SYSID || 'ussd',
    sms: process.env.SMS_SYSID || 'sms',
};
const USSD_CODE = process.env.USSD_CODE || '*247#';
const ROLE_PW = {
    ussd: process.env.USSD_PW,
    sms: process.env.SMS_PW,
};
const STRICT = process.env.SIM_STRICT === '1';
const DLR_DELAY_MS = parseInt(process.env.SIM_DLR_DELAY_MS || '20', 10);

const CMD = {
    generic_nack: 0x80000000,
    bind_receiver: 0x00000001,
    bind_transmitter: 0x00000002,
    submit_sm: 0x00000004,
    submit_sm_resp: 0x80000004,
    deliver_sm: 0x00000005,
    deliver_sm_resp: 0x80000005,
    unbind: 0x00000006,
    bind_transceiver: 0x00000009,
    enquire_link: 0x00000015,
};
const CMD_NAME = {};
for (const k of Object.keys(CMD)) {
    CMD_NAME[CMD[k]] = k;
}
const TAG = {
    ussd_service_op: 0x0501,
    its_session_info: 0x1383,
    receipted_message_id: 0x001e,
    message_state: 0x0427,
    message_payload: 0x0424,
};
const ESME_RTHROTTLED = 0x58;
const ESME_RMSGQFUL = 0x14;
/* Receipt stats and the SMPP message_state sent with each. */
const MESSAGE_STATE = {
    ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5,
    ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8,
};
const ESME_RINVPASWD = 0x0e;
const ESME_RINVSYSID = 0x0f;

/* ---- GSM 03.38 default alphabet (unpacked, one septet per octet) ---- */

const GSM_BASIC =
    '@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r' +
    '\u00c5\u00e5\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398' +
    '\u039e\u001b\u00c6\u00e6\u00df\u00c9 !"#\u00a4%&\'()*+,-./0123456789' +
    ':;<=>?\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7' +
    '\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0';
const GSM_EXT = {
    0x0a: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2f: '\\',
    0x3c: '[', 0x3d: '~', 0x3e: ']', 0x40: '|', 0x65: '\u20ac',
};
if (GSM_BASIC.length !== 128) {
    throw new Error('GSM table has ' + GSM_BASIC.length + ' entries');
}
const GSM_ENC = new Map();
for (let i = 0; i < 128; i++) {
    if (i !== 0x1b) {
        GSM_ENC.set(GSM_BASIC[i], [i]);
    }
}
for (const k of Object.keys(GSM_EXT)) {
    GSM_ENC.set(GSM_EXT[k], [0x1b, Number(k)]);
}

/* Returns a Buffer of unpacked GSM septets, or null when some character
 * has no GSM encoding. */
function gsmEncode(text) {
    const out = [];
    for (const ch of text) {
        const code = GSM_ENC.get(ch);
        if (!code) {
            return null;
        }
        out.push(...code);
    }
    return Buffer.from(out);
}

function gsmDecode(buf) {
    let s = '';
    for (let i = 0; i < buf.length; i++) {
        const b = buf[i] & 0x7f;
        if (b === 0x1b && i + 1 < buf.length) {
            const e = GSM_EXT[buf[i + 1] & 0x7f];
            s += e !== undefined ? e : ' ';
            i++;
        } else {
            s += GSM_BASIC[b];
        }
    }
    return s;
}

function ucs2Encode(text) {
    const le = Buffer.from(text, 'utf16le');
    const be = Buffer.alloc(le.length);
    for (let i = 0; i + 1 < le.length; i += 2) {
        be[i] = le[i + 1];
        be[i + 1] = le[i];
    }
    return be;
}

function ucs2Decode(buf) {
    const n = buf.length & ~1;
    const le = Buffer.alloc(n);
    for (let i = 0; i < n; i += 2) {
        le[i] = buf[i + 1];
        le[i + 1] = buf[i];
    }
    return le.toString('utf16le');
}

/* Text of a short_message by data_coding: UCS-2 for 0x08, Latin-1 for
 * 0x03, raw bytes shown as Latin-1 for 8-bit, GSM otherwise. */
function decodeText(buf, dcs) {
    if ((dcs & 0x0c) === 0x08 || dcs === 0x08) {
        return ucs2Decode(buf);
    }
    if (dcs === 0x03) {
        return buf.toString('latin1');
    }
    if ((dcs & 0x0c) === 0x04) {
        return buf.toString('latin1');
    }
    return gsmDecode(buf);
}

/* ---- independent decoder of raw PDU bytes ---- */

function readCString(buf, off) {
    let end = off;
    while (end < buf.length && buf[end] !== 0) {
        end++;
    }
    return [buf.slice(off, end).toString('latin1'), Math.min(end + 1,
        buf.length)];
}

/* Decodes header, and for submit_sm / deliver_sm the mandatory fields,
 * short_message and every TLV (as hex).  Never throws on short input. */
function decodeRaw(raw) {
    const d = {
        command_length: raw.length >= 4 ? raw.readUInt32BE(0) : 0,
        command_id: raw.length >= 8 ? raw.readUInt32BE(4) : 0,
        command_status: raw.length >= 12 ? raw.readUInt32BE(8) : 0,
        sequence_number: raw.length >= 16 ? raw.readUInt32BE(12) : 0,
    };
    d.command = CMD_NAME[d.command_id] || ('0x' + d.command_id.toString(16));
    if (d.command !== 'submit_sm' && d.command !== 'deliver_sm') {
        return d;
    }
    try {
        let off = 16;
        let v;
        [d.service_type, off] = readCString(raw, off);
        d.source_addr_ton = raw[off++];
        d.source_addr_npi = raw[off++];
        [d.source_addr, off] = readCString(raw, off);
        d.dest_addr_ton = raw[off++];
        d.dest_addr_npi = raw[off++];
        [d.destination_addr, off] = readCString(raw, off);
        d.esm_class = raw[off++];
        d.protocol_id = raw[off++];
        d.priority_flag = raw[off++];
        [v, off] = readCString(raw, off);
        d.schedule_delivery_time = v;
        [v, off] = readCString(raw, off);
        d.validity_period = v;
        d.registered_delivery = raw[off++];
        d.replace_if_present_flag = raw[off++];
        d.data_coding = raw[off++];
        d.sm_default_msg_id = raw[off++];
        d.sm_length = raw[off++];
        const sm = raw.slice(off, off + d.sm_length);
        off += d.sm_length;
        d.tlvs = {};
        while (off + 4 <= raw.length) {
            const tag = raw.readUInt16BE(off);
            const len = raw.readUInt16BE(off + 2);
            const val = raw.slice(off + 4, off + 4 + len);
            d.tlvs[tag.toString(16).padStart(4, '0')] = val.toString('hex');
            off += 4 + len;
        }
        d.has_udh = (d.esm_class & 0x40) !== 0;
        let body = sm;
        if (d.has_udh && sm.length > 0) {
            d.udh_hex = sm.slice(0, sm[0] + 1).toString('hex');
            body = sm.slice(sm[0] + 1);
        }
        if (sm.length === 0 && d.tlvs['0424']) {
            body = Buffer.from(d.tlvs['0424'], 'hex');
        }
        d.short_message_hex = sm.toString('hex');
        d.text = decodeText(body, d.data_coding);
        const op = d.tlvs['0501'];
        d.ussd_service_op = op !== undefined ? parseInt(op || '0', 16) : null;
        d.its_session_info = d.tlvs['1383'] !== undefined ?
            d.tlvs['1383'] : null;
    } catch (e) {
        d.decode_error = String(e && e.message || e);
    }
    return d;
}

/* ---- state ---- */

let records = [];      /* every PDU seen or sent */
let recordNo = 0;
let waiters = [];      /* USSD requests waiting for their answer */
let mtWaiters = [];    /* GET /mt?wait= requests */
let messageId = 1000000;
let faults = {};
const sessions = new Set();

function resetFaults() {
    faults = {
        duplicate_next_deliver: false,
        throttle_next_n: 0,
        throttle_rate: 0,
        throttle_role: 'sms',
        throttle_status: 'throttled',
        delay_ms: 0,
        session_limit_ms: 0,
        round_trip_ms: 0,
    };
    takenAt = [];
}
/* when the submit_sm taken under throttle_rate were taken (ms), oldest
 * first, the last second's only */
let takenAt = [];
/* receipt rules (POST /receipts) */
let receiptRules = { default: { stat: 'DELIVRD', delay_ms: DLR_DELAY_MS },
    rules: [] };
let counts;
function resetCounts() {
    counts = { submit_sm: {}, throttled: {}, queue_full: {}, receipts: {},
        receipts_early: 0 };
}
resetCounts();
function bump(obj, key) {
    obj[key] = (obj[key] || 0) + 1;
}
/* simulated time of each USSD dialogue ("msisdn/session"), in ms */
const clocks = new Map();
let cuts = 0;
resetFaults();

function record(dir, sess, raw, extra) {
    const d = decodeRaw(raw);
    const r = Object.assign({
        n: ++recordNo,
        t: Date.now(),
        dir: dir,
        bind: sess ? sess.simSystemId || null : null,
        role: sess ? sess.simRole || null : null,
        raw_hex: raw.toString('hex'),
    }, d, extra || {});
    records.push(r);
    return r;
}

/* Capture the exact bytes of every PDU: received ones through the parser,
 * sent ones through the serializer. */
const origFromBuffer = smpp.PDU.prototype.fromBuffer;
smpp.PDU.prototype.fromBuffer = function (buffer) {
    Object.defineProperty(this, '_raw', {
        value: Buffer.from(buffer.slice(0, buffer.readUInt32BE(0))),
        enumerable: false, writable: true,
    });
    return origFromBuffer.call(this, buffer);
};
const origToBuffer = smpp.PDU.prototype.toBuffer;
smpp.PDU.prototype.toBuffer = function () {
    const b = origToBuffer.call(this);
    Object.defineProperty(this, '_raw', {
        value: b, enumerable: false, writable: true,
    });
    return b;
};

function normMsisdn(s) {
    return String(s || '').replace(/^\+/, '').replace(/^00/, '');
}

function bindsOf(role) {
    return [...sessions].filter((s) => s.simBound && s.simRole === role);
}

let rr = 0;
function pickBind(role, systemId) {
    let list = [...sessions].filter((s) => s.simBound);
    if (systemId) {
        list = list.filter((s) => s.simSystemId === systemId);
    } else {
        list = list.filter((s) => s.simRole === role);
    }
    if (list.length === 0) {
        return null;
    }
    return list[rr++ % list.length];
}

/* Sends a PDU and records it; calls back with the response record (or
 * null when the session closed or no response came in 15 s). */
function sendPdu(sess, pdu, cb) {
    let done = false;
    const finish = (r) => {
        if (!done) {
            done = true;
            clearTimeout(timer);
            if (cb) {
                cb(r);
            }
        }
    };
    const timer = setTimeout(() => finish(null), 15000);
    const ok = sess.send(pdu, (resp) => {
        finish(record('in', sess, resp._raw || Buffer.alloc(0)));
    });
    if (!ok) {
        finish(null);
        return null;
    }
    return record('out', sess, pdu._raw || pdu.toBuffer());
}

function respond(sess, pdu, opts) {
    const resp = pdu.response(opts || {});
    sess.send(resp);
    record('out', sess, resp._raw || Buffer.alloc(0));
}

function ymdhm(d) {
    const p = (n) => String(n).padStart(2, '0');
    return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) +
        p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

/* The receipt rule for a destination: the first rule that matches, else
 * the default. */
function receiptRule(dst) {
    for (const r of receiptRules.rules) {
        if (r.msisdns && r.msisdns.includes(dst)) {
            return r;
        }
        if (r.regex && r.regex.test(dst)) {
            return r;
        }
    }
    return receiptRules.default;
}

/* Sends a receipt for submit_sm record sub, whose message id is id, with
 * stat (one of MESSAGE_STATE) and err. */
function sendReceipt(sess, sub, id, stat, err) {
    const now = new Date();
    const body = 'id:' + id + ' sub:001 dlvrd:' +
        (stat === 'DELIVRD' ? '001' : '000') + ' submit date:' +
        ymdhm(now) + ' done date:' + ymdhm(now) +
        ' stat:' + stat + ' err:' +
        (err !== undefined ? err : stat === 'DELIVRD' ? '000' : '001') +
        ' text:' +
        String(sub.text || '').replace(/[^\x20-\x7e]/g, '.').slice(0, 20);
    const pdu = new smpp.PDU('deliver_sm', {
        service_type: '',
        source_addr_ton: sub.dest_addr_ton,
        source_addr_npi: sub.dest_addr_npi,
        source_addr: sub.destination_addr,
        dest_addr_ton: sub.source_addr_ton,
        dest_addr_npi: sub.source_addr_npi,
        destination_addr: sub.source_addr,
        esm_class: 0x04,
        data_coding: 0,
        short_message: Buffer.from(body, 'latin1'),
        receipted_message_id: id,
        message_state: MESSAGE_STATE[stat],
    });
    if (sess.simBound) {
        bump(counts.receipts, stat);
        sendPdu(sess, pdu, null);
    }
}

/* Should this submit_sm be refused under throttle_rate? */
function overRate(sess) {
    if (!(faults.throttle_rate > 0) || (faults.throttle_role !== '*' &&
        faults.throttle_role !== sess.simRole)) {
        return false;
    }
    const now = Date.now();
    while (takenAt.length > 0 && takenAt[0] <= now - 1000) {
        takenAt.shift();
    }
    if (takenAt.length >= faults.throttle_rate) {
        return true;
    }
    takenAt.push(now);
    return false;
}

function onSubmit(sess, pdu) {
    const r = record('in', sess, pdu._raw || Buffer.alloc(0));
    const answer = () => {
        if (faults.throttle_next_n > 0 || overRate(sess)) {
            const qfull = faults.throttle_next_n === 0 &&
                faults.throttle_status === 'qfull';
            if (faults.throttle_next_n > 0) {
                faults.throttle_next_n--;
            }
            r.throttled = true;
            bump(qfull ? counts.queue_full : counts.throttled, sess.simRole);
            respond(sess, pdu, { command_status: qfull ? ESME_RMSGQFUL :
                ESME_RTHROTTLED });
            return;
        }
        const id = String(++messageId);
        r.message_id = id;
        bump(counts.submit_sm, sess.simRole);
        const wants = (r.registered_delivery & 0x03) === 0x01;
        const rule = wants ? receiptRule(normMsisdn(r.destination_addr)) :
            null;
        const stat = rule ? rule.stat || 'DELIVRD' : 'NONE';
        const delay = rule && rule.delay_ms !== undefined ? rule.delay_ms :
            DLR_DELAY_MS;
        if (stat !== 'NONE' && rule.before_resp) {
            counts.receipts_early++;
            sendReceipt(sess, r, id, stat, rule.err);
        }
        respond(sess, pdu, { message_id: id });
        deliverToWaiters(r);
        if (stat === 'NONE' || rule.before_resp) {
            return;
        }
        for (const p of rule.pre || []) {
            setTimeout(() => sendReceipt(sess, r, id, p, rule.err),
                Math.floor(delay / 2));
        }
        setTimeout(() => sendReceipt(sess, r, id, stat, rule.err), delay);
    };
    if (faults.delay_ms > 0) {
        setTimeout(answer, faults.delay_ms);
    } else {
        answer();
    }
}

function deliverToWaiters(r) {
    const dst = normMsisdn(r.destination_addr);
    const sessByte = r.its_session_info ?
        parseInt(r.its_session_info.slice(0, 2), 16) : null;
    for (let i = 0; i < waiters.length; i++) {
        const w = waiters[i];
        if (w.msisdn !== dst || w.role !== r.role) {
            continue;
        }
        if (sessByte !== null && sessByte !== w.session) {
            continue;
        }
        waiters.splice(i, 1);
        w.resolve(r);
        break;
    }
    const left = [];
    for (const w of mtWaiters) {
        if (w.msisdn === dst) {
            w.resolve();
        } else {
            left.push(w);
        }
    }
    mtWaiters = left;
}

/* ---- SMPP server ---- */

const server = smpp.createServer((sess) => {
    if (process.env.SIM_NODELAY === '1') {
        sess.socket.setNoDelay(true);
    }
    sessions.add(sess);
    sess.simBound = false;
    sess.on('error', () => {});
    sess.on('close', () => {
        sessions.delete(sess);
    });
    const onBind = (pdu) => {
        record('in', sess, pdu._raw || Buffer.alloc(0));
        const sid = String(pdu.system_id || '');
        let role = null;
        for (const k of Object.keys(ROLE_IDS)) {
            if (ROLE_IDS[k] === sid) {
                role = k;
            }
        }
        if (!role && STRICT) {
            respond(sess, pdu, { command_status: ESME_RINVSYSID });
            return;
        }
        if (role && ROLE_PW[role] !== undefined &&
            String(pdu.password || '') !== ROLE_PW[role]) {
            respond(sess, pdu, { command_status: ESME_RINVPASWD });
            return;
        }
        sess.simSystemId = sid;
        sess.simRole = role || sid;
        sess.simBound = true;
        respond(sess, pdu, { system_id: 'remigate-sim' });
    };
    sess.on('bind_transceiver', onBind);
    sess.on('bind_transmitter', onBind);
    sess.on('bind_receiver', onBind);
    sess.on('enquire_link', (pdu) => {
        sess.send(pdu.response());
    });
    sess.on('unbind', (pdu) => {
        record('in', sess, pdu._raw || Buffer.alloc(0));
        sess.simBound = false;
        sess.send(pdu.response());
        sess.close();
    });
    sess.on('submit_sm', (pdu) => onSubmit(sess, pdu));
    sess.on('unknown', (pdu) => {
        record('in', sess, pdu._raw || Buffer.alloc(0));
        sess.send(pdu.response());
    });
});
server.on('error', (e) => {
    console.error('smsc-sim: SMPP server: ' + e.message);
    process.exit(1);
});

/* ---- MO construction ---- */

/* Returns {buf, dcs} for text, honouring a forced dcs when given. */
function encodeMo(text, forcedDcs) {
    if (forcedDcs === 8) {
        return { buf: ucs2Encode(text), dcs: 8 };
    }
    if (forcedDcs !== undefined && forcedDcs !== null) {
        const g = gsmEncode(text);
        return { buf: g || Buffer.from(text, 'latin1'), dcs: forcedDcs };
    }
    const g = gsmEncode(text);
    if (g) {
        return { buf: g, dcs: 0 };
    }
    return { buf: ucs2Encode(text), dcs: 8 };
}

/* Sends one deliver_sm (twice when the duplicate fault is armed); calls
 * back with the first deliver_sm's record and its response record. */
function sendMo(sess, fields, cb) {
    const dup = faults.duplicate_next_deliver;
    faults.duplicate_next_deliver = false;
    const pdu = new smpp.PDU('deliver_sm', fields);
    let first = null;
    first = sendPdu(sess, pdu, (resp) => {
        cb(first, resp);
    });
    if (!first) {
        cb(null, null);
        return;
    }
    if (dup) {
        const again = new smpp.PDU('deliver_sm', fields);
        sendPdu(sess, again, null);
    }
}

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

/* ---- HTTP control API ---- */

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
        dst = USSD_CODE;
    }
    if (op === 1) {
        dialled.set(key, dst);
    }
    return dst;
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
    if (faults.session_limit_ms > 0) {
        const key = msisdn + '/' + session;
        const t = (op === 1 ? 0 : clocks.get(key) || 0) + think +
            faults.round_trip_ms;
        if (op !== 1 && t > faults.session_limit_ms) {
            /* the operator ended this dialogue: the MO never leaves */
            clocks.delete(key);
            cuts++;
            reply(res, 200, { cut: true, elapsed_ms: t,
                session_limit_ms: faults.session_limit_ms });
            return;
        }
        clocks.set(key, t);
    }
    const enc = encodeMo(text, forced);
    const its = Buffer.from([session, (seq << 1) | (b.end ? 1 : 0)]);
    const fields = {
        service_type: b.service_type === undefined ? 'USSD' :
            String(b.service_type),
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: msisdn,
        dest_addr_ton: 0,
        dest_addr_npi: 0,
        destination_addr: ussdTo(msisdn, session, op, text, b.to),
        esm_class: 0,
        data_coding: enc.dcs,
        short_message: enc.buf,
        ussd_service_op: op,
        its_session_info: its,
    };
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
            waiters = waiters.filter((w) => w !== waiter);
            if (!settled) {
                settled = true;
                reply(res, 504, { error: 'no submit_sm for ' + msisdn +
                    ' session ' + session + ' within ' + timeout + ' ms' });
            }
        }, timeout);
        waiters.push(waiter);
    }
    sendMo(sess, fields, (first, resp) => {
        if (settled) {
            return;
        }
        if (!first || !resp || resp.command_status !== 0) {
            settled = true;
            clearTimeout(waiter.timer);
            waiters = waiters.filter((w) => w !== waiter);
            reply(res, 502, { error: 'deliver_sm not accepted',
                deliver_status: resp ? resp.command_status : null });
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
    const enc = encodeMo(text, forced);
    const fields = {
        service_type: '',
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: msisdn,
        dest_addr_ton: 0,
        dest_addr_npi: 0,
        destination_addr: String(b.to === undefined ?
            (process.env.SHORT_CODE || '') : b.to),
        esm_class: 0,
        data_coding: enc.dcs,
        short_message: enc.buf,
    };
    sendMo(sess, fields, (first, resp) => {
        if (!first || !resp || resp.command_status !== 0) {
            reply(res, 502, { error: 'deliver_sm not accepted',
                deliver_status: resp ? resp.command_status : null });
            return;
        }
        reply(res, 200, { n: first.n, deliver_status: 0 });
    });
}

function listMt(q) {
    const msisdn = q.msisdn !== undefined ? normMsisdn(q.msisdn) : null;
    const since = parseInt(q.since || '0', 10) || 0;
    return records.filter((r) => r.dir === 'in' &&
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
        mtWaiters = mtWaiters.filter((x) => x !== w);
        reply(res, 200, listMt(q));
    }, wait);
    w.resolve = () => {
        clearTimeout(timer);
        reply(res, 200, listMt(q));
    };
    mtWaiters.push(w);
}

function handleFaults(res, b) {
    if (b.duplicate_next_deliver !== undefined) {
        faults.duplicate_next_deliver = !!b.duplicate_next_deliver;
    }
    if (b.throttle_next_n !== undefined) {
        const n = intIn(b.throttle_next_n, 0, 1000000, 0);
        if (Number.isNaN(n)) {
            reply(res, 400, { error: 'throttle_next_n: integer >= 0' });
            return;
        }
        faults.throttle_next_n = n;
    }
    if (b.throttle_rate !== undefined) {
        const n = intIn(b.throttle_rate, 0, 1000000, 0);
        if (Number.isNaN(n)) {
            reply(res, 400, { error: 'throttle_rate: integer >= 0' });
            return;
        }
        faults.throttle_rate = n;
        takenAt = [];
    }
    if (b.throttle_role !== undefined) {
        faults.throttle_role = String(b.throttle_role);
    }
    if (b.throttle_status !== undefined) {
        if (b.throttle_status !== 'throttled' &&
            b.throttle_status !== 'qfull') {
            reply(res, 400, { error: 'throttle_status: throttled or qfull' });
            return;
        }
        faults.throttle_status = b.throttle_status;
    }
    if (b.delay_ms !== undefined) {
        const n = intIn(b.delay_ms, 0, 600000, 0);
        if (Number.isNaN(n)) {
            reply(res, 400, { error: 'delay_ms: integer 0-600000' });
            return;
        }
        faults.delay_ms = n;
    }
    for (const k of ['session_limit_ms', 'round_trip_ms']) {
        if (b[k] !== undefined) {
            const n = intIn(b[k], 0, 3600000, 0);
            if (Number.isNaN(n)) {
                reply(res, 400, { error: k + ': integer 0-3600000' });
                return;
            }
            faults[k] = n;
            clocks.clear();
        }
    }
    let dropped = 0;
    if (b.drop_bind) {
        for (const s of [...sessions]) {
            if (b.drop_bind === true || b.drop_bind === s.simSystemId ||
                b.drop_bind === s.simRole) {
                s.simBound = false;
                s.destroy();
                sessions.delete(s);
                dropped++;
            }
        }
    }
    reply(res, 200, Object.assign({ dropped: dropped }, faults));
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
        d.delay_ms = DLR_DELAY_MS;
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
    receiptRules = { default: d, rules: rules };
    reply(res, 200, { default: ruleJson(d), rules: rules.map(ruleJson) });
}

function health() {
    const bound = [...sessions].filter((s) => s.simBound);
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
        pdus: records.length,
        cuts: cuts,
    };
}

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
        reply(res, 200, records.filter((r) => r.n > since));
        break;
    }
    case 'POST /reset':
        withBody(() => {
            records = [];
            dialled.clear();
            clocks.clear();
            resetFaults();
            resetCounts();
            receiptRules = { default: { stat: 'DELIVRD',
                delay_ms: DLR_DELAY_MS }, rules: [] };
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
        reply(res, 200, counts);
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

server.listen(SMSC_PORT, '127.0.0.1', () => {
    control.listen(CONTROL_PORT, '127.0.0.1', () => {
        console.log('smsc-sim: SMPP on 127.0.0.1:' + SMSC_PORT +
            ', control on 127.0.0.1:' + CONTROL_PORT);
    });
});

const stop = () => {
    for (const s of sessions) {
        s.destroy();
    }
    server.close();
    control.close();
    process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
