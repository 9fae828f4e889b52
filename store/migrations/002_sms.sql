-- 002_sms: every SMS we send through Kannel's sendsms (sms_out), with what
-- Kannel answered and the latest delivery report.  The row is written
-- before the message goes to Kannel, so a delivery report that overtakes
-- sendsms's own answer still finds it.

-- The order of Kannel's DLR types (dlr-mask bits): smsc-reject (16) <
-- smsc-submit (8) < buffered (4) < final.  Delivered (1) and failed (2,
-- also 2|0x20 expired and 2|0x40 unknown) are final.  A report whose rank
-- is not above the recorded one changes nothing: states never go back, a
-- repeated report is a no-op, and the first final state stays.
CREATE FUNCTION remigate_dlr_rank(t smallint) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN t IS NULL THEN 0
        WHEN t & 3 <> 0 THEN 4
        WHEN t & 4 <> 0 THEN 3
        WHEN t & 8 <> 0 THEN 2
        WHEN t & 16 <> 0 THEN 1
        ELSE 0
    END
$$;

CREATE TABLE sms_out (
    id              uuid PRIMARY KEY,       -- ours, in the dlr-url
    msisdn          text NOT NULL CHECK (msisdn ~ '^[0-9]{8,15}$'),
    kind            text NOT NULL
                    CHECK (kind IN ('reply', 'confirmation', 'notice')),
    text            text NOT NULL,
    coding          smallint NOT NULL CHECK (coding IN (0, 2)),
    created_at      timestamptz NOT NULL DEFAULT now(),
    tries           int NOT NULL DEFAULT 0, -- sendsms requests made
    kannel_status   int,                    -- HTTP status of the last answer
    kannel_answer   text,                   -- its body ("0: Accepted for ...")
    accepted_at     timestamptz,            -- Kannel took it (202)
    failed_at       timestamptz,            -- given up after the retries
    dlr_state       smallint,               -- latest DLR type (1, 2, 4, 8, 16)
    dlr_at          timestamptz,            -- when we got it
    dlr_smsc_at     timestamptz,            -- Kannel's %T
    dlr_answer      text,                   -- the SMSC's receipt text (%A)
    dlr_reports     int NOT NULL DEFAULT 0, -- reports received, repeats too
    CHECK (remigate_dlr_rank(dlr_state) > 0 OR dlr_state IS NULL)
);

CREATE INDEX sms_out_msisdn_idx ON sms_out (msisdn, created_at);
-- Messages Kannel has not confirmed as delivered or failed.
CREATE INDEX sms_out_open_idx ON sms_out (created_at)
    WHERE remigate_dlr_rank(dlr_state) < 4;
