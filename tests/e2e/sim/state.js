'use strict';
/*
 * sim/state.js -- what the SMPP sessions and the control API share: the
 * record of every PDU (record()), the bound sessions, the USSD and GET /mt
 * requests waiting for a submit_sm, the faults in force, the receipt rules
 * and the counters, and the functions that reset them (POST /reset, POST
 * /faults).  They live in one object, `state`, so that a field one module
 * replaces (records = [] on POST /reset) is the one the others read.
 */

const config = require('./config');
const { decodeRaw } = require('./pdu');

const state = {
    records: [],        /* every PDU seen or sent */
    recordNo: 0,        /* the last record's n (not reset) */
    waiters: [],        /* USSD requests waiting for their answer */
    mtWaiters: [],      /* GET /mt?wait= requests */
    faults: {},
    /* when the submit_sm taken under throttle_rate were taken (ms), oldest
     * first, the last second's only */
    takenAt: [],
    receiptRules: null, /* receipt rules (POST /receipts) */
    counts: null,
    sessions: new Set(),
};

function resetFaults() {
    state.faults = {
        duplicate_next_deliver: false,
        throttle_next_n: 0,
        throttle_rate: 0,
        throttle_role: 'sms',
        throttle_status: 'throttled',
        delay_ms: 0,
        session_limit_ms: 0,
        round_trip_ms: 0,
    };
    state.takenAt = [];
}

/* no rules; DELIVRD after SIM_DLR_DELAY_MS */
function resetReceipts() {
    state.receiptRules = { default: { stat: 'DELIVRD',
        delay_ms: config.DLR_DELAY_MS }, rules: [] };
}

function resetCounts() {
    state.counts = { submit_sm: {}, throttled: {}, queue_full: {},
        receipts: {}, receipts_early: 0 };
}

function bump(obj, key) {
    obj[key] = (obj[key] || 0) + 1;
}

resetFaults();
resetReceipts();
resetCounts();

/* Records a PDU that crossed the wire on sess (null: none) with its
 * decoding and extra; returns the record. */
function record(dir, sess, raw, extra) {
    const d = decodeRaw(raw);
    const r = Object.assign({
        n: ++state.recordNo,
        t: Date.now(),
        dir: dir,
        bind: sess ? sess.simSystemId || null : null,
        role: sess ? sess.simRole || null : null,
        raw_hex: raw.toString('hex'),
    }, d, extra || {});
    state.records.push(r);
    return r;
}

module.exports = {
    state,
    resetFaults,
    resetReceipts,
    resetCounts,
    bump,
    record,
};
