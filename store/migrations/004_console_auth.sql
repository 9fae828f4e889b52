-- 004_console_auth: officer accounts, their districts, console sessions,
-- the login throttle, who-did-what columns on audit_log, and the role the
-- console's queries run as.
--
-- The console role: the daemon's console connections act as
-- remigate_console (SET ROLE per transaction, see store_pool.c, or a
-- login role that is a member of it: postgres.console_dsn).  It is not a
-- superuser, does not own the tables and cannot bypass row-level security,
-- so the policies on the tables it reads (migration 005 and later) hold
-- even against a wrong query in C.  Roles belong to the whole cluster:
-- another database migrated on the same server finds it already there.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'remigate_console')
    THEN
        CREATE ROLE remigate_console NOLOGIN NOSUPERUSER NOCREATEDB
            NOCREATEROLE NOINHERIT NOBYPASSRLS;
    END IF;
END
$$;

-- The migrating user (the daemon's postgres.dsn) may act as it.
GRANT remigate_console TO CURRENT_USER;

-- Who is asking, set per transaction by the console (set_config(...,
-- true)): the officer's id, role and districts.  Empty or unset: nobody,
-- no role, no district.  Policies read these and nothing else.
CREATE FUNCTION remigate_officer_id() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('remigate.officer', true), '')::bigint
$$;

CREATE FUNCTION remigate_officer_role() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('remigate.role', true), '')
$$;

CREATE FUNCTION remigate_officer_districts() RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_to_array(
        nullif(current_setting('remigate.districts', true), ''), ','),
        '{}'::text[])
$$;

CREATE TABLE officers (
    id              bigserial PRIMARY KEY,
    username        text NOT NULL UNIQUE
                    CHECK (username ~ '^[a-z0-9][a-z0-9._-]{2,31}$'),
    role            text NOT NULL
                    CHECK (role IN ('admin', 'officer', 'analyst')),
    pw_hash         text NOT NULL,          -- crypto_pwhash_str (argon2id)
    pw_changed_at   timestamptz NOT NULL DEFAULT now(),
    totp_enc        bytea,                  -- sealed TOTP secret, or NULL
    totp_enabled    boolean NOT NULL DEFAULT false,
    totp_last_step  bigint,                 -- a code is good once
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz,
    CHECK (NOT totp_enabled OR totp_enc IS NOT NULL)
);

CREATE TABLE officer_districts (
    officer_id      bigint NOT NULL REFERENCES officers (id),
    district        text NOT NULL CHECK (district ~ '^[A-Z0-9-]{1,16}$'),
    PRIMARY KEY (officer_id, district)
);

-- One row per console login.  The cookie's value is never stored: id_hash
-- is its SHA-256, so a copy of the table opens no session.
CREATE TABLE console_sessions (
    id_hash         bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    officer_id      bigint NOT NULL REFERENCES officers (id),
    csrf            text NOT NULL,
    source          text,                   -- client address at login
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    ended_why       text CHECK (ended_why IN ('logout', 'idle', 'absolute',
                                              'disabled', 'password'))
);

CREATE INDEX console_sessions_officer_idx ON console_sessions (officer_id)
    WHERE ended_at IS NULL;

-- Failed logins per key ('u:' username or 'a:' source address): the delay
-- grows with failures and is capped; a success or a quiet period resets it.
CREATE TABLE login_throttle (
    key             text PRIMARY KEY,
    failures        int NOT NULL DEFAULT 0,
    last_failure_at timestamptz NOT NULL DEFAULT now(),
    blocked_until   timestamptz
);

-- Who did it: the officer (NULL for the command line or an unknown
-- username), their role then, the client address, and how it ended.
-- actor stays the readable name ("cli" for the command line).
ALTER TABLE audit_log
    ADD COLUMN actor_id bigint REFERENCES officers (id),
    ADD COLUMN role text,
    ADD COLUMN source text,
    ADD COLUMN outcome text NOT NULL DEFAULT 'ok'
        CHECK (outcome IN ('ok', 'failed', 'denied'));

-- The audit reader: newest first, by officer, by action, by target.
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at DESC, id DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC, id DESC);

-- What the console role may touch here.  No UPDATE or DELETE on audit_log
-- (and its trigger refuses them for everyone).  Grants on the record
-- tables come with their policies (005).
GRANT USAGE ON SCHEMA public TO remigate_console;
GRANT SELECT, INSERT, UPDATE ON officers TO remigate_console;
GRANT SELECT, INSERT, DELETE ON officer_districts TO remigate_console;
GRANT SELECT, INSERT, UPDATE ON console_sessions TO remigate_console;
GRANT SELECT, INSERT, UPDATE, DELETE ON login_throttle TO remigate_console;
GRANT SELECT, INSERT ON audit_log TO remigate_console;
GRANT USAGE ON SEQUENCE officers_id_seq, audit_log_id_seq
    TO remigate_console;
