'use strict';
/*
 * sim/config.js -- the simulator's settings, read once from the
 * environment (documented at the top of smsc-sim.js).  SMSC_PORT and
 * CONTROL_PORT are NaN when unset or not numbers; smsc-sim.js refuses to
 * start then.
 */

module.exports = {
    SMSC_PORT: parseInt(process.env.SMSC_PORT || '', 10),
    CONTROL_PORT: parseInt(process.env.CONTROL_PORT || '', 10),
    /* system_id of each role's bind */
    ROLE_IDS: {
        ussd: process.env.USSD_SYSID || 'ussd',
        sms: process.env.SMS_SYSID || 'sms',
    },
    USSD_CODE: process.env.USSD_CODE || '*247#',
    /* a role's bind password must match when it is set */
    ROLE_PW: {
        ussd: process.env.USSD_PW,
        sms: process.env.SMS_PW,
    },
    STRICT: process.env.SIM_STRICT === '1',
    DLR_DELAY_MS: parseInt(process.env.SIM_DLR_DELAY_MS || '20', 10),
    NODELAY: process.env.SIM_NODELAY === '1',
    SHORT_CODE: process.env.SHORT_CODE || '',
};
