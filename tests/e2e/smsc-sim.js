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
 *
 * The code: sim/pdu.js (the wire format and text encodings), sim/state.js
 * (the record and what the two sides share), sim/sessions.js (the SMPP
 * server: binds, submit_sm, receipts, MOs), sim/control.js (the control
 * API), sim/config.js (the environment above).
 */

const config = require('./sim/config');
const { state } = require('./sim/state');
const sessions = require('./sim/sessions');
const control = require('./sim/control');

if (!(config.SMSC_PORT > 0) || !(config.CONTROL_PORT > 0)) {
    console.error('smsc-sim: set SMSC_PORT and CONTROL_PORT');
    process.exit(2);
}

const server = sessions.createServer();
const controlServer = control.createServer();

server.listen(config.SMSC_PORT, '127.0.0.1', () => {
    controlServer.listen(config.CONTROL_PORT, '127.0.0.1', () => {
        console.log('smsc-sim: SMPP on 127.0.0.1:' + config.SMSC_PORT +
            ', control on 127.0.0.1:' + config.CONTROL_PORT);
    });
});

const stop = () => {
    for (const s of state.sessions) {
        s.destroy();
    }
    server.close();
    controlServer.close();
    process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
