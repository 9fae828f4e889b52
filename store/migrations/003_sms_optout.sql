-- 003_sms_optout: numbers that sent STOP (or বন্ধ) get no programme notices
-- until they send START (or চালু).  Kept apart from returnees: a number may
-- opt out before it ever registers.
CREATE TABLE sms_optout (
    msisdn          text PRIMARY KEY CHECK (msisdn ~ '^[0-9]{8,15}$'),
    opted_out       boolean NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now()
);
