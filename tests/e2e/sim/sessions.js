'use strict';
/*
 * sim/sessions.js -- the SMPP side of the simulator: the server Kannel's
 * bearerbox binds to (binds checked against the roles' system_id and
 * password), the answer to every submit_sm (a message id, or a refusal
 * under the throttle faults, late under delay_ms) and the delivery
 * receipts its rule asks for; the deliver_sm of MOs and USSD dialogues
 * (sendMo, twice under duplicate_next_deliver).  Every PDU is recorded
 * with its exact bytes: the smpp package's parser and serializer are
 * wrapped to keep them.
 */

const smpp = require('smpp');
const config = require('./config');
const { ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RINVPASWD, ESME_RINVSYSID,
    MESSAGE_STATE, normMsisdn } = require('./pdu');
const { state, bump, record } = require('./state');

let messageId = 1000000;

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

/* ---- binds and sending ---- */

/* The bound sessions of a role. */
function bindsOf(role) {
    return [...state.sessions].filter((s) => s.simBound && s.simRole === role);
}

/* A bound session: the one of that system_id when given, else of that
 * role, in turn (null when none). */
let rr = 0;
function pickBind(role, systemId) {
    let list = [...state.sessions].filter((s) => s.simBound);
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

/* ---- submit_sm: the answer, throttling, receipts ---- */

function ymdhm(d) {
    const p = (n) => String(n).padStart(2, '0');
    return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) +
        p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

/* The receipt rule for a destination: the first rule that matches, else
 * the default. */
function receiptRule(dst) {
    for (const r of state.receiptRules.rules) {
        if (r.msisdns && r.msisdns.includes(dst)) {
            return r;
        }
        if (r.regex && r.regex.test(dst)) {
            return r;
        }
    }
    return state.receiptRules.default;
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
        bump(state.counts.receipts, stat);
        sendPdu(sess, pdu, null);
    }
}

/* Should this submit_sm be refused under throttle_rate? */
function overRate(sess) {
    const f = state.faults;
    if (!(f.throttle_rate > 0) || (f.throttle_role !== '*' &&
        f.throttle_role !== sess.simRole)) {
        return false;
    }
    const now = Date.now();
    while (state.takenAt.length > 0 && state.takenAt[0] <= now - 1000) {
        state.takenAt.shift();
    }
    if (state.takenAt.length >= f.throttle_rate) {
        return true;
    }
    state.takenAt.push(now);
    return false;
}

function onSubmit(sess, pdu) {
    const r = record('in', sess, pdu._raw || Buffer.alloc(0));
    const answer = () => {
        if (state.faults.throttle_next_n > 0 || overRate(sess)) {
            const qfull = state.faults.throttle_next_n === 0 &&
                state.faults.throttle_status === 'qfull';
            if (state.faults.throttle_next_n > 0) {
                state.faults.throttle_next_n--;
            }
            r.throttled = true;
            bump(qfull ? state.counts.queue_full : state.counts.throttled,
                sess.simRole);
            respond(sess, pdu, { command_status: qfull ? ESME_RMSGQFUL :
                ESME_RTHROTTLED });
            return;
        }
        const id = String(++messageId);
        r.message_id = id;
        bump(state.counts.submit_sm, sess.simRole);
        const wants = (r.registered_delivery & 0x03) === 0x01;
        const rule = wants ? receiptRule(normMsisdn(r.destination_addr)) :
            null;
        const stat = rule ? rule.stat || 'DELIVRD' : 'NONE';
        const delay = rule && rule.delay_ms !== undefined ? rule.delay_ms :
            config.DLR_DELAY_MS;
        if (stat !== 'NONE' && rule.before_resp) {
            state.counts.receipts_early++;
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
    if (state.faults.delay_ms > 0) {
        setTimeout(answer, state.faults.delay_ms);
    } else {
        answer();
    }
}

/* Hands submit_sm record r to the POST /ussd waiting for it (same number,
 * role and session byte; the first one) and answers every GET /mt?wait=
 * for its number. */
function deliverToWaiters(r) {
    const dst = normMsisdn(r.destination_addr);
    const sessByte = r.its_session_info ?
        parseInt(r.its_session_info.slice(0, 2), 16) : null;
    for (let i = 0; i < state.waiters.length; i++) {
        const w = state.waiters[i];
        if (w.msisdn !== dst || w.role !== r.role) {
            continue;
        }
        if (sessByte !== null && sessByte !== w.session) {
            continue;
        }
        state.waiters.splice(i, 1);
        w.resolve(r);
        break;
    }
    const left = [];
    for (const w of state.mtWaiters) {
        if (w.msisdn === dst) {
            w.resolve();
        } else {
            left.push(w);
        }
    }
    state.mtWaiters = left;
}

/* ---- MOs ---- */

/* Sends one deliver_sm (twice when the duplicate fault is armed); calls
 * back with the first deliver_sm's record and its response record. */
function sendMo(sess, fields, cb) {
    const dup = state.faults.duplicate_next_deliver;
    state.faults.duplicate_next_deliver = false;
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

/* ---- SMPP server ---- */

/* The SMPP server (not listening yet); exits the process on its errors. */
function createServer() {
    const server = smpp.createServer((sess) => {
        if (config.NODELAY) {
            sess.socket.setNoDelay(true);
        }
        state.sessions.add(sess);
        sess.simBound = false;
        sess.on('error', () => {});
        sess.on('close', () => {
            state.sessions.delete(sess);
        });
        const onBind = (pdu) => {
            record('in', sess, pdu._raw || Buffer.alloc(0));
            const sid = String(pdu.system_id || '');
            let role = null;
            for (const k of Object.keys(config.ROLE_IDS)) {
                if (config.ROLE_IDS[k] === sid) {
                    role = k;
                }
            }
            if (!role && config.STRICT) {
                respond(sess, pdu, { command_status: ESME_RINVSYSID });
                return;
            }
            if (role && config.ROLE_PW[role] !== undefined &&
                String(pdu.password || '') !== config.ROLE_PW[role]) {
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
    return server;
}

module.exports = {
    bindsOf,
    pickBind,
    sendMo,
    createServer,
};
