'use strict';
/*
 * sim/pdu.js -- the SMPP 3.4 wire format as the simulator reads and writes
 * it, independent of the smpp package: command ids, TLV tags and status
 * codes; the GSM 03.38 default alphabet (unpacked septets) and UCS-2
 * (UTF-16BE) text encodings; decodeRaw(), which decodes a PDU's raw bytes
 * (header, and for submit_sm / deliver_sm every mandatory field, the
 * short_message, its UDH and every TLV); encodeMo(), the text of an MO as
 * bytes and a data_coding; normMsisdn(), an address without "+" or "00".
 */

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

/* ---- addresses and MO text ---- */

/* An address as the record compares it: without a leading "+" or "00". */
function normMsisdn(s) {
    return String(s || '').replace(/^\+/, '').replace(/^00/, '');
}

/* Returns {buf, dcs} for an MO's text: GSM 03.38 when every character has
 * an encoding, else UCS-2; a forced dcs is honoured (8: UCS-2, else GSM or
 * Latin-1 bytes). */
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

module.exports = {
    CMD,
    CMD_NAME,
    TAG,
    ESME_RTHROTTLED,
    ESME_RMSGQFUL,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    MESSAGE_STATE,
    gsmEncode,
    gsmDecode,
    ucs2Encode,
    ucs2Decode,
    decodeText,
    readCString,
    decodeRaw,
    normMsisdn,
    encodeMo,
};
