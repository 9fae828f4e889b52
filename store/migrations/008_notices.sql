-- 008_notices: programmes, notices, their audience, the outbox (one row
-- per recipient, at most once per person per notice) and replies of
-- interest.
--
-- The rules that decide who gets a notice live here, as SQL, once:
-- notice_audience() is both the preview and what approval freezes
-- (notice_freeze()), so the count an officer was shown is the count that
-- is queued.  notice_claim() is the dispatcher's only way to a recipient:
-- it locks queued rows (FOR UPDATE SKIP LOCKED, so several daemons never
-- take the same row), re-checks opt-out and the per-person cap, writes
-- the sms_out row and marks the recipient 'claimed'; the caller commits
-- before it calls Kannel, and a claimed row never becomes 'queued' again
-- except through notice_sent(..., 'requeue') -- Kannel said nothing was
-- sent.  notice_sweep() turns rows claimed too long ago into 'unknown'
-- (the daemon died between commit and answer: never sent again), rows
-- with no final report by validity + 1 h into 'expired', and finished
-- notices into 'completed'.  Delivery reports reach the outbox through a
-- trigger on sms_out, which keeps its own monotonic lattice (002).

-- Education codes in order (config/lists/education.conf): a notice's
-- minimum compares ranks.  Unknown codes have no rank and never match a
-- minimum.
CREATE FUNCTION remigate_education_rank(code text) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_position(ARRAY['none', 'primary', 'jsc', 'ssc', 'hsc',
                                'diploma', 'bachelor'], code)
$$;

CREATE TABLE programmes (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL
                    CHECK (kind IN ('training', 'job', 'loan', 'other')),
    title_bn        text NOT NULL CHECK (length(title_bn) BETWEEN 1 AND 200),
    title_en        text CHECK (length(title_en) BETWEEN 1 AND 200),
    provider        text,
    place           text,
    capacity        int CHECK (capacity > 0),
    deadline        date,
    phone           text CHECK (phone ~ '^\+?[0-9]{3,15}$'),
    reply_code      text NOT NULL UNIQUE
                    CHECK (reply_code ~ '^[A-Z][A-Z0-9]{1,7}$'),
    created_by      bigint REFERENCES officers (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notices (
    id              bigserial PRIMARY KEY,
    programme_id    bigint NOT NULL REFERENCES programmes (id),
    state           text NOT NULL DEFAULT 'draft'
                    CHECK (state IN ('draft', 'submitted', 'approved',
                                     'sending', 'paused', 'completed',
                                     'cancelled')),
    -- why a paused notice is paused: 'window' resumes by itself when the
    -- send window opens, 'officer' only when someone resumes it
    paused_why      text CHECK (paused_why IN ('window', 'officer')),
    text_bn         text NOT NULL,          -- templates as written
    text_en         text,
    sms_bn          text,                   -- rendered, with the footer:
    sms_en          text,                   -- what is sent (set on submit)
    parts_bn        int,
    parts_en        int,
    ucs2_en         boolean,                -- English needs UCS-2 too
    -- the audience: AND across fields, OR within one; empty = any
    districts       text[] NOT NULL DEFAULT '{}',
    sexes           text[] NOT NULL DEFAULT '{}',
    age_min         int CHECK (age_min BETWEEN 0 AND 120),
    age_max         int CHECK (age_max BETWEEN 0 AND 120),
    countries       text[] NOT NULL DEFAULT '{}',
    skills          text[] NOT NULL DEFAULT '{}',   -- any of
    education_min   text CHECK (education_min IS NULL OR
                                remigate_education_rank(education_min)
                                IS NOT NULL),
    return_year_min int,
    return_year_max int,
    needs           text[] NOT NULL DEFAULT '{}',
    langs           text[] NOT NULL DEFAULT '{}',
    statuses        text[] NOT NULL DEFAULT '{verified}',
    recent_days     int NOT NULL DEFAULT 30 CHECK (recent_days BETWEEN 0
                                                   AND 365),
    hourly_cap      int CHECK (hourly_cap > 0),
    send_after      timestamptz,            -- not before (NULL: approval)
    vetting_ref     text,                   -- the regulator's reference
    author_id       bigint REFERENCES officers (id),
    approver_id     bigint REFERENCES officers (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    submitted_at    timestamptz,
    approved_at     timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    audience        int,                    -- rows frozen at approval
    version         int NOT NULL DEFAULT 1,
    CHECK (age_min IS NULL OR age_max IS NULL OR age_min <= age_max),
    CHECK (return_year_min IS NULL OR return_year_max IS NULL
           OR return_year_min <= return_year_max),
    CHECK (statuses <@ ARRAY['pending', 'needs_info', 'verified']),
    -- four eyes: whoever approves did not write it
    CHECK (approver_id IS NULL OR author_id IS NULL
           OR approver_id <> author_id),
    CHECK (state NOT IN ('approved', 'sending', 'paused', 'completed')
           OR (approver_id IS NOT NULL OR author_id IS NULL)),
    CHECK ((state = 'paused') = (paused_why IS NOT NULL)),
    CHECK (state IN ('draft', 'cancelled') OR sms_bn IS NOT NULL)
);

CREATE INDEX notices_state_idx ON notices (state)
    WHERE state IN ('approved', 'sending', 'paused');

-- One row per recipient of a notice.  state and reason: notices.h
-- NOTICES_RSTATES.
CREATE TABLE notice_outbox (
    id              bigserial PRIMARY KEY,
    notice_id       bigint NOT NULL REFERENCES notices (id),
    returnee_id     bigint NOT NULL REFERENCES returnees (id),
    msisdn          text NOT NULL CHECK (msisdn ~ '^[0-9]{8,15}$'),
    district        text,
    lang            text NOT NULL CHECK (lang IN ('bn', 'en')),
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('skipped', 'queued', 'claimed',
                                     'accepted', 'unknown', 'failed',
                                     'submitted', 'rejected', 'buffered',
                                     'delivered', 'expired', 'undelivered',
                                     'cancelled')),
    reason          text,                   -- skipped: opted_out, freq_cap,
                                            -- recent; failed: http_NNN;
                                            -- unknown: timeout, lost;
                                            -- final: the receipt's stat
    sms_id          uuid UNIQUE REFERENCES sms_out (id),
    parts           int,
    claimed_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    claimed_at      timestamptz,
    answered_at     timestamptz,            -- Kannel's answer came
    expires_at      timestamptz,            -- validity + 1 h
    final_at        timestamptz,
    UNIQUE (notice_id, returnee_id),
    UNIQUE (notice_id, msisdn),
    CHECK (state NOT IN ('claimed', 'accepted') OR sms_id IS NOT NULL),
    CHECK (state <> 'queued' OR sms_id IS NULL)
);

-- The dispatcher's queue, the per-person cap, the sweeper, the report.
CREATE INDEX notice_outbox_queued_idx ON notice_outbox (notice_id, id)
    WHERE state = 'queued';
CREATE INDEX notice_outbox_msisdn_idx ON notice_outbox (msisdn, claimed_at)
    WHERE claimed_at IS NOT NULL;
CREATE INDEX notice_outbox_open_idx ON notice_outbox (claimed_at)
    WHERE state IN ('claimed', 'accepted', 'submitted', 'buffered',
                    'rejected');
CREATE INDEX notice_outbox_notice_state_idx ON notice_outbox (notice_id,
                                                              state);

-- Replies of interest: a reply code (or "1") from a number a notice went
-- to.  Once per notice and number.
CREATE TABLE notice_interest (
    id              bigserial PRIMARY KEY,
    notice_id       bigint NOT NULL REFERENCES notices (id),
    outbox_id       bigint REFERENCES notice_outbox (id),
    returnee_id     bigint REFERENCES returnees (id),
    msisdn          text NOT NULL CHECK (msisdn ~ '^[0-9]{8,15}$'),
    said            text NOT NULL,          -- the code as typed
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (notice_id, msisdn)
);

-- Receipt stat, the way notices_receipt_parse() (ntc_core.c) reads it:
-- the value of the first "stat:" key (start of text or after white
-- space, any case) before the free "text:" field, upper-cased; NULL when
-- there is none.  test_notices_sql checks the two agree.
CREATE FUNCTION remigate_receipt_stat(answer text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT upper(substring(
        regexp_replace(answer, '(^|[ \t])[tT][eE][xX][tT]:.*$', '')
        FROM '(?:^|[ \t])[sS][tT][aA][tT]:([^ \t]*)'))
$$;

-- The recipient state a sms_out DLR type and receipt lead to
-- (notices_dlr_rstate() in ntc_core.c).
CREATE FUNCTION remigate_dlr_rstate(t smallint, answer text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN t IS NULL THEN NULL
        WHEN t & 1 <> 0 THEN 'delivered'
        WHEN t & 2 <> 0 THEN
            CASE
                WHEN remigate_receipt_stat(answer) = 'EXPIRED' THEN 'expired'
                WHEN coalesce(remigate_receipt_stat(answer), '') = ''
                     AND t & 32 <> 0 THEN 'expired'
                ELSE 'undelivered'
            END
        WHEN t & 4 <> 0 THEN 'buffered'
        WHEN t & 8 <> 0 THEN 'submitted'
        WHEN t & 16 <> 0 THEN 'rejected'
    END
$$;

-- Notice SMS that may have reached msisdn since a time: every claimed row
-- but those Kannel or the SMSC refused.  The per-person cap counts these.
CREATE FUNCTION notice_sent_since(p_msisdn text, p_since timestamptz)
RETURNS int
LANGUAGE sql STABLE AS $$
    SELECT count(*)::int FROM notice_outbox
     WHERE msisdn = p_msisdn AND claimed_at > p_since
       AND state NOT IN ('queued', 'skipped', 'failed', 'rejected',
                         'cancelled')
$$;

-- Is msisdn over the cap at p_at: p_cap_n in p_cap_days days, or
-- least(p_cap_day, 3) in 24 h (BTRC: never more than 3 a day)?
CREATE FUNCTION notice_capped(p_msisdn text, p_at timestamptz, p_cap_n int,
                              p_cap_days int, p_cap_day int)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT notice_sent_since(p_msisdn,
                             p_at - make_interval(days => p_cap_days))
               >= p_cap_n
        OR notice_sent_since(p_msisdn, p_at - interval '24 hours')
               >= least(greatest(p_cap_day, 1), 3)
$$;

-- Who a notice goes to at p_at, one row per eligible returnee; skip says
-- why one is left out (opted_out, recent: got this notice or the same
-- programme within recent_days, freq_cap), NULL when they get it.  lang:
-- English when the returnee chose it and the notice has English.  Age is
-- the year in Dhaka minus the birth year.
CREATE FUNCTION notice_audience(p_notice bigint, p_at timestamptz,
                                p_cap_n int, p_cap_days int, p_cap_day int)
RETURNS TABLE (returnee_id bigint, msisdn text, district text, lang text,
               skip text)
LANGUAGE sql STABLE AS $$
    WITH n AS (
        SELECT n.*,
               extract(year FROM (p_at AT TIME ZONE 'UTC')
                                 + interval '6 hours')::int AS yr
          FROM notices n WHERE n.id = p_notice
    )
    SELECT r.id, r.msisdn, r.district,
           CASE WHEN r.lang = 'en' AND n.text_en IS NOT NULL THEN 'en'
                ELSE 'bn' END,
           CASE
               WHEN coalesce(o.opted_out, false) THEN 'opted_out'
               WHEN EXISTS (
                   SELECT 1 FROM notice_outbox x
                     JOIN notices xn ON xn.id = x.notice_id
                    WHERE x.msisdn = r.msisdn
                      AND (x.notice_id = n.id
                           OR xn.programme_id = n.programme_id)
                      AND x.claimed_at > p_at
                          - make_interval(days => n.recent_days)
                      AND x.state NOT IN ('queued', 'skipped', 'failed',
                                          'rejected', 'cancelled'))
                   THEN 'recent'
               WHEN notice_capped(r.msisdn, p_at, p_cap_n, p_cap_days,
                                  p_cap_day) THEN 'freq_cap'
           END
      FROM n
      JOIN returnees r ON r.status = ANY (n.statuses)
      LEFT JOIN sms_optout o ON o.msisdn = r.msisdn
     WHERE (cardinality(n.districts) = 0 OR r.district = ANY (n.districts))
       AND (cardinality(n.sexes) = 0 OR r.sex = ANY (n.sexes))
       AND (n.age_min IS NULL OR r.birth_year <= n.yr - n.age_min)
       AND (n.age_max IS NULL OR r.birth_year >= n.yr - n.age_max)
       AND (cardinality(n.countries) = 0 OR r.country = ANY (n.countries))
       AND (cardinality(n.skills) = 0 OR r.skills && n.skills)
       AND (n.education_min IS NULL
            OR remigate_education_rank(r.education)
               >= remigate_education_rank(n.education_min))
       AND (n.return_year_min IS NULL OR r.return_year >= n.return_year_min)
       AND (n.return_year_max IS NULL OR r.return_year <= n.return_year_max)
       AND (cardinality(n.needs) = 0 OR r.need = ANY (n.needs))
       AND (cardinality(n.langs) = 0 OR coalesce(r.lang, 'bn') = ANY (n.langs))
$$;

-- Freeze the audience into the outbox: everyone notice_audience() finds,
-- 'queued' or 'skipped' with the reason.  Rows already there stay as
-- they are (run again, it adds only the newly eligible).  Returns the
-- number of rows queued by this call.
CREATE FUNCTION notice_freeze(p_notice bigint, p_at timestamptz, p_cap_n int,
                              p_cap_days int, p_cap_day int)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    v_n int;
BEGIN
    WITH ins AS (
        INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, district,
                                   lang, state, reason, final_at)
        SELECT p_notice, a.returnee_id, a.msisdn, a.district, a.lang,
               CASE WHEN a.skip IS NULL THEN 'queued' ELSE 'skipped' END,
               a.skip, CASE WHEN a.skip IS NULL THEN NULL ELSE p_at END
          FROM notice_audience(p_notice, p_at, p_cap_n, p_cap_days,
                               p_cap_day) a
        ON CONFLICT DO NOTHING
        RETURNING state
    )
    SELECT count(*) FILTER (WHERE state = 'queued') INTO v_n FROM ins;
    UPDATE notices SET audience = (SELECT count(*) FROM notice_outbox
                                    WHERE notice_id = p_notice)
     WHERE id = p_notice;
    RETURN v_n;
END
$$;

-- Claim up to p_limit queued recipients of notices in 'sending' (of
-- p_notice only, when given) for p_worker.  Each one is re-checked: an
-- opted-out number is skipped (opted_out), one over the cap is skipped
-- (freq_cap), one of a notice at its hourly cap stays queued.  A number
-- another transaction is claiming for right now is left for a later
-- claim (the cap is counted under a per-number advisory lock, so two
-- daemons cannot both pass it).  For the rest: a sms_out row (kind
-- 'notice', the rendered text of the recipient's language) and the row
-- 'claimed' with expires_at = now + validity + 1 h.  The caller must
-- commit before it hands any of them to Kannel.
CREATE FUNCTION notice_claim(p_worker text, p_limit int, p_validity_min int,
                             p_cap_n int, p_cap_days int, p_cap_day int,
                             p_notice bigint DEFAULT NULL)
RETURNS TABLE (outbox_id bigint, notice_id bigint, sms_id uuid,
               msisdn text, body text, ucs2 boolean, parts int)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_id uuid;
    v_en boolean;
BEGIN
    FOR r IN
        SELECT o.id, o.notice_id, o.msisdn, o.lang, n.sms_bn, n.sms_en,
               n.parts_bn, n.parts_en, n.ucs2_en, n.hourly_cap
          FROM notice_outbox o JOIN notices n ON n.id = o.notice_id
         WHERE o.state = 'queued' AND n.state = 'sending'
           AND (p_notice IS NULL OR o.notice_id = p_notice)
         ORDER BY o.notice_id, o.id
         LIMIT p_limit
           FOR UPDATE OF o SKIP LOCKED
    LOOP
        IF NOT pg_try_advisory_xact_lock(hashtext('remigate.notice.msisdn'),
                                         hashtext(r.msisdn)) THEN
            CONTINUE;
        END IF;
        IF EXISTS (SELECT 1 FROM sms_optout s
                    WHERE s.msisdn = r.msisdn AND s.opted_out) THEN
            UPDATE notice_outbox SET state = 'skipped', reason = 'opted_out',
                   final_at = now()
             WHERE id = r.id;
            CONTINUE;
        END IF;
        IF notice_capped(r.msisdn, now(), p_cap_n, p_cap_days, p_cap_day) THEN
            UPDATE notice_outbox SET state = 'skipped', reason = 'freq_cap',
                   final_at = now()
             WHERE id = r.id;
            CONTINUE;
        END IF;
        IF r.hourly_cap IS NOT NULL AND (
               SELECT count(*) FROM notice_outbox x
                WHERE x.notice_id = r.notice_id
                  AND x.claimed_at > now() - interval '1 hour')
               >= r.hourly_cap THEN
            CONTINUE;
        END IF;
        v_en := r.lang = 'en' AND r.sms_en IS NOT NULL;
        v_id := gen_random_uuid();
        INSERT INTO sms_out (id, msisdn, kind, text, coding)
        VALUES (v_id, r.msisdn, 'notice',
                CASE WHEN v_en THEN r.sms_en ELSE r.sms_bn END,
                CASE WHEN v_en AND NOT coalesce(r.ucs2_en, true) THEN 0
                     ELSE 2 END);
        UPDATE notice_outbox o
           SET state = 'claimed', sms_id = v_id, claimed_at = now(),
               claimed_by = p_worker,
               parts = CASE WHEN v_en THEN r.parts_en ELSE r.parts_bn END,
               expires_at = now() + make_interval(mins => p_validity_min)
                            + interval '1 hour'
         WHERE o.id = r.id;
        outbox_id := r.id;
        notice_id := r.notice_id;
        sms_id := v_id;
        msisdn := r.msisdn;
        body := CASE WHEN v_en THEN r.sms_en ELSE r.sms_bn END;
        ucs2 := NOT v_en OR coalesce(r.ucs2_en, true);
        parts := CASE WHEN v_en THEN r.parts_en ELSE r.parts_bn END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- What Kannel said about a claimed recipient: 'accepted' (2xx),
-- 'requeue' (nothing was sent: connection refused, 503), 'failed' (4xx:
-- it will never take it), 'unknown' (it may have left).  Only a row still
-- 'claimed' (or 'unknown', when the answer comes after the sweep) and
-- still holding p_sms changes; a delivery report that came first wins
-- over 'accepted'.  Returns the row's state after it.
CREATE FUNCTION notice_sent(p_outbox bigint, p_sms uuid, p_outcome text,
                            p_reason text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
BEGIN
    IF p_outcome NOT IN ('accepted', 'requeue', 'failed', 'unknown') THEN
        RAISE EXCEPTION 'notice_sent: outcome %', p_outcome
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE notice_outbox o SET
           state = CASE p_outcome WHEN 'requeue' THEN 'queued'
                                  ELSE p_outcome END,
           reason = CASE WHEN p_outcome IN ('failed', 'unknown')
                         THEN p_reason END,
           sms_id = CASE WHEN p_outcome = 'requeue' THEN NULL
                         ELSE o.sms_id END,
           claimed_at = CASE WHEN p_outcome = 'requeue' THEN NULL
                             ELSE o.claimed_at END,
           claimed_by = CASE WHEN p_outcome = 'requeue' THEN NULL
                             ELSE o.claimed_by END,
           expires_at = CASE WHEN p_outcome = 'requeue' THEN NULL
                             ELSE o.expires_at END,
           answered_at = now(),
           final_at = CASE WHEN p_outcome IN ('failed', 'unknown')
                           THEN now() END
     WHERE o.id = p_outbox AND o.sms_id = p_sms
       AND (o.state = 'claimed'
            OR (o.state = 'unknown' AND p_outcome IN ('accepted', 'failed')))
    RETURNING o.state INTO v_state;
    IF v_state IS NULL THEN
        SELECT o.state INTO v_state FROM notice_outbox o WHERE o.id = p_outbox;
    END IF;
    RETURN v_state;
END
$$;

-- Housekeeping, run by the dispatcher now and then: rows 'claimed' for
-- longer than p_lost_after (the daemon that claimed them died between
-- its commit and Kannel's answer) become 'unknown' (reason 'lost') and
-- are never sent again; rows with no final report by their expires_at
-- become 'expired' (reason 'no_report'); notices in 'sending' with no
-- recipient left to send or hear of are 'completed'.  Returns the number
-- of rows and notices changed.
CREATE FUNCTION notice_sweep(p_lost_after interval)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    v_a int;
    v_b int;
    v_c int;
BEGIN
    UPDATE notice_outbox SET state = 'unknown', reason = 'lost',
           final_at = now()
     WHERE state = 'claimed' AND claimed_at < now() - p_lost_after;
    GET DIAGNOSTICS v_a = ROW_COUNT;
    UPDATE notice_outbox SET state = 'expired', reason = 'no_report',
           final_at = now()
     WHERE state IN ('accepted', 'submitted', 'buffered', 'rejected')
       AND claimed_at IS NOT NULL AND expires_at < now();
    GET DIAGNOSTICS v_b = ROW_COUNT;
    UPDATE notices n SET state = 'completed', finished_at = now(),
           updated_at = now(), version = version + 1
     WHERE n.state = 'sending'
       AND NOT EXISTS (SELECT 1 FROM notice_outbox o
                        WHERE o.notice_id = n.id
                          AND o.state IN ('queued', 'claimed', 'accepted',
                                          'submitted', 'buffered',
                                          'rejected'));
    GET DIAGNOSTICS v_c = ROW_COUNT;
    RETURN v_a + v_b + v_c;
END
$$;

-- Delivery reports: sms_out's own lattice decides whether a report moves
-- the message forward (store_sms.c); when it does, the recipient follows.
-- A late real report also replaces 'expired' by timeout ('no_report') and
-- a report for an 'unknown' row says it did leave.
CREATE FUNCTION notice_outbox_dlr() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_state text := remigate_dlr_rstate(NEW.dlr_state, NEW.dlr_answer);
BEGIN
    IF v_state IS NULL THEN
        RETURN NEW;
    END IF;
    UPDATE notice_outbox o SET
           state = v_state,
           reason = CASE WHEN v_state IN ('expired', 'undelivered',
                                          'delivered', 'rejected')
                         THEN remigate_receipt_stat(NEW.dlr_answer) END,
           final_at = CASE WHEN v_state IN ('expired', 'undelivered',
                                            'delivered')
                           THEN now() END
     WHERE o.sms_id = NEW.id
       AND (o.state IN ('claimed', 'unknown', 'accepted', 'submitted',
                        'buffered', 'rejected')
            OR (o.state = 'expired' AND o.reason = 'no_report'));
    RETURN NEW;
END
$$;

CREATE TRIGGER sms_out_notice_dlr
    AFTER UPDATE OF dlr_state ON sms_out
    FOR EACH ROW
    WHEN (NEW.kind = 'notice'
          AND NEW.dlr_state IS DISTINCT FROM OLD.dlr_state)
    EXECUTE FUNCTION notice_outbox_dlr();

-- The console: officers see and write notices of their own districts (a
-- notice with no district is everyone's: admins only); admins see all;
-- analysts none of it.  The dispatcher runs as the tables' owner.
ALTER TABLE notices ENABLE ROW LEVEL SECURITY;
ALTER TABLE notice_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE notice_interest ENABLE ROW LEVEL SECURITY;

CREATE FUNCTION remigate_notice_visible(p_districts text[]) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT remigate_officer_role() = 'admin'
        OR (remigate_officer_role() = 'officer'
            AND cardinality(p_districts) > 0
            AND p_districts <@ remigate_officer_districts())
$$;

CREATE POLICY notices_console ON notices TO remigate_console
    USING (remigate_notice_visible(districts))
    WITH CHECK (remigate_notice_visible(districts));
CREATE POLICY notice_outbox_console ON notice_outbox TO remigate_console
    USING (EXISTS (SELECT 1 FROM notices n WHERE n.id = notice_id))
    WITH CHECK (EXISTS (SELECT 1 FROM notices n WHERE n.id = notice_id));
CREATE POLICY notice_interest_console ON notice_interest TO remigate_console
    USING (EXISTS (SELECT 1 FROM notices n WHERE n.id = notice_id));

GRANT SELECT, INSERT ON programmes TO remigate_console;
GRANT SELECT, INSERT, UPDATE ON notices TO remigate_console;
GRANT SELECT, INSERT, UPDATE ON notice_outbox TO remigate_console;
GRANT SELECT ON notice_interest TO remigate_console;
GRANT SELECT ON sms_optout TO remigate_console;
GRANT USAGE ON SEQUENCE programmes_id_seq, notices_id_seq,
    notice_outbox_id_seq TO remigate_console;
