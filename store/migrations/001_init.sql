-- 001_init: returnees (one current profile per phone number), submissions
-- (every completed flow, append-only, unique idempotency key) and the
-- audit log.  Applied by `remigate migrate` inside one transaction.

CREATE TABLE returnees (
    id              bigserial PRIMARY KEY,
    msisdn          text NOT NULL UNIQUE
                    CHECK (msisdn ~ '^[0-9]{8,15}$'),
    name            text,
    sex             text CHECK (sex IN ('m', 'f', 'x')),
    birth_year      int CHECK (birth_year BETWEEN 1900 AND 2100),
    division        text,
    district        text,
    country         text CHECK (country ~ '^[A-Z]{2}$'),
    years_abroad    int CHECK (years_abroad BETWEEN 0 AND 100),
    return_year     int CHECK (return_year BETWEEN 1900 AND 2100),
    reason          text,
    education       text,
    skills          text[] NOT NULL DEFAULT '{}',
    need            text,
    lang            text,
    channel         text CHECK (channel IN ('ussd', 'sms')),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'verified', 'rejected')),
    ref             text UNIQUE,
    nid_enc         bytea,
    nid_hash        bytea,
    passport_enc    bytea,
    passport_hash   bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    verified_by     bigint,     -- officers(id) once that table exists
    verified_at     timestamptz,
    reject_reason   text,
    CHECK (status <> 'rejected' OR reject_reason IS NOT NULL),
    CHECK ((nid_enc IS NULL) = (nid_hash IS NULL)),
    CHECK ((passport_enc IS NULL) = (passport_hash IS NULL))
);

-- The officer queue: pending records of one district, oldest first.
CREATE INDEX returnees_queue_idx ON returnees (district, status, created_at);
-- Dashboards.
CREATE INDEX returnees_sex_idx ON returnees (sex);
CREATE INDEX returnees_birth_year_idx ON returnees (birth_year);
CREATE INDEX returnees_education_idx ON returnees (education);
CREATE INDEX returnees_country_idx ON returnees (country);
CREATE INDEX returnees_skills_idx ON returnees USING gin (skills);
-- Duplicate ID numbers, found without decrypting.
CREATE INDEX returnees_nid_hash_idx ON returnees (nid_hash)
    WHERE nid_hash IS NOT NULL;
CREATE INDEX returnees_passport_hash_idx ON returnees (passport_hash)
    WHERE passport_hash IS NOT NULL;

CREATE TABLE submissions (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    kind            text NOT NULL,          -- register, update_skills, ...
    ref             text NOT NULL,
    msisdn          text NOT NULL,
    lang            text,
    channel         text,
    answers         jsonb NOT NULL,         -- never an ID number in clear
    started_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    returnee_id     bigint REFERENCES returnees (id)
);

CREATE INDEX submissions_returnee_idx ON submissions (returnee_id, created_at);
CREATE INDEX submissions_msisdn_idx ON submissions (msisdn, created_at);

CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,
    action          text NOT NULL,
    target          text,
    detail          jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_log_target_idx ON audit_log (target, at);

-- Append-only: rows of submissions and audit_log are never changed or
-- removed (submissions may only have returnee_id filled in once).
CREATE FUNCTION remigate_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'submissions'
       AND OLD.returnee_id IS NULL
       AND (to_jsonb(NEW) - 'returnee_id') = (to_jsonb(OLD) - 'returnee_id')
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER submissions_append_only
    BEFORE UPDATE OR DELETE ON submissions
    FOR EACH ROW EXECUTE FUNCTION remigate_append_only();
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION remigate_append_only();
