-- 005_review: officers' decisions on records, and district scoping by
-- row-level security.
--
-- Statuses: pending | needs_info | verified | rejected (existing rows keep
-- theirs).  Every change of a returnees row bumps its version (the
-- console's If-Match); a status change stamps status_at.  A decision is one
-- call of remigate_decide() (or remigate_correct()) inside the console's
-- transaction: the record, a decisions row and, when the returnee is told,
-- an sms_out row held until the undo window has passed (hold_state 'held',
-- send_after).  The daemon claims held rows whose time has come
-- (hold_state 'sending', committed before sendsms is called: at most once);
-- remigate_undo() within the window cancels the row and restores the
-- previous state.
--
-- Scope.  The console's queries run as role remigate_console, which owns
-- nothing and is neither superuser nor BYPASSRLS.  Each transaction sets,
-- with set_config(..., true) so nothing outlives it:
--   remigate.officer    the officer's id
--   remigate.role       admin | officer | analyst
--   remigate.districts  the officer's district codes, comma-separated
-- An admin sees every row; an officer the rows of their districts; an
-- analyst (aggregates only) and a transaction that set nothing see none.
-- The tables' owner (the phone side's connections, the SMS sender) is not
-- subject to the policies: RLS is enabled, not forced, because the owner
-- writes every district's registrations.  Rows without a district of
-- their own (submissions, decisions, corrections, sms_out) are visible when
-- their returnee is: the policy's subquery on returnees is itself under
-- returnees' policy.

-- The console's role (also made by 004; either may come first).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'remigate_console')
    THEN
        CREATE ROLE remigate_console NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
    EXECUTE format('GRANT remigate_console TO %I', current_user);
END
$$;

-- ------------------------------------------------------------------------
-- Statuses, version, flags

ALTER TABLE returnees DROP CONSTRAINT IF EXISTS returnees_status_check;
ALTER TABLE returnees ADD CONSTRAINT returnees_status_check
    CHECK (status IN ('pending', 'needs_info', 'verified', 'rejected'));

ALTER TABLE returnees
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN status_at timestamptz,
    -- needs_info: the reason code; rejected: reject_reason (001) holds it
    ADD COLUMN info_reason text,
    ADD COLUMN reject_note text,
    ADD COLUMN decided_by bigint,           -- officer of the last decision
    -- a verified returnee changed an identity field: the fields changed
    ADD COLUMN changed_since_verified text[],
    ADD CONSTRAINT returnees_info_reason_check
        CHECK (status <> 'needs_info' OR info_reason IS NOT NULL);

UPDATE returnees SET status_at = coalesce(verified_at, updated_at);
ALTER TABLE returnees ALTER COLUMN status_at SET NOT NULL,
    ALTER COLUMN status_at SET DEFAULT now();

-- Every change is a new version; a status change is dated.
CREATE FUNCTION remigate_returnee_versioned() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.version := OLD.version + 1;
        NEW.updated_at := now();
        IF NEW.status IS DISTINCT FROM OLD.status THEN
            NEW.status_at := now();
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER returnees_versioned BEFORE UPDATE ON returnees
    FOR EACH ROW EXECUTE FUNCTION remigate_returnee_versioned();

-- The queue: a district's records of one status, oldest first, and the
-- same over every district (admins); (created_at, id) is the keyset.
DROP INDEX returnees_queue_idx;
CREATE INDEX returnees_queue_idx ON returnees (district, status, created_at, id);
CREATE INDEX returnees_status_idx ON returnees (status, created_at, id);

-- ------------------------------------------------------------------------
-- Decisions, corrections, held SMS

CREATE TABLE decisions (
    id              bigserial PRIMARY KEY,
    returnee_id     bigint NOT NULL REFERENCES returnees (id),
    officer_id      bigint NOT NULL,
    action          text NOT NULL CHECK (action IN ('verify', 'correct',
                        'needs_info', 'reject', 'reopen', 'revoke')),
    reason          text,
    note            text,
    from_status     text NOT NULL,
    to_status       text NOT NULL,
    version         bigint NOT NULL,    -- the record's version it made
    prev            jsonb NOT NULL,     -- what undo puts back
    sms_id          uuid,               -- sms_out row, when one is sent
    created_at      timestamptz NOT NULL DEFAULT now(),
    undo_until      timestamptz NOT NULL,
    undone_at       timestamptz,
    undone_by       bigint
);

CREATE INDEX decisions_returnee_idx ON decisions (returnee_id, created_at);

CREATE TABLE corrections (
    id              bigserial PRIMARY KEY,
    decision_id     bigint NOT NULL REFERENCES decisions (id),
    returnee_id     bigint NOT NULL REFERENCES returnees (id),
    field           text NOT NULL,
    old_value       jsonb,
    new_value       jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX corrections_returnee_idx ON corrections (returnee_id, created_at);

-- Corrections are history: never changed, never removed.
CREATE TRIGGER corrections_append_only
    BEFORE UPDATE OR DELETE ON corrections
    FOR EACH ROW EXECUTE FUNCTION remigate_append_only();

ALTER TABLE sms_out
    ADD COLUMN returnee_id bigint REFERENCES returnees (id),
    -- held: waits for send_after (undo window); sending: claimed by the
    -- sender (committed before sendsms); cancelled: undone, never sent.
    -- NULL: sent at once, as before.
    ADD COLUMN hold_state text
        CHECK (hold_state IN ('held', 'sending', 'cancelled')),
    ADD COLUMN send_after timestamptz,
    ADD CONSTRAINT sms_out_hold_check
        CHECK ((hold_state IS NULL) = (send_after IS NULL));

CREATE INDEX sms_out_held_idx ON sms_out (send_after)
    WHERE hold_state = 'held';
CREATE INDEX sms_out_returnee_idx ON sms_out (returnee_id, created_at)
    WHERE returnee_id IS NOT NULL;

-- ------------------------------------------------------------------------
-- Scope

-- Is this transaction an admin's?
CREATE FUNCTION remigate_scope_all() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('remigate.role', true), '') = 'admin'
$$;

-- The districts of this transaction's officer ('{}' for other roles).
CREATE FUNCTION remigate_scope_districts() RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN coalesce(current_setting('remigate.role', true), '') = 'officer'
        THEN coalesce(string_to_array(
            nullif(current_setting('remigate.districts', true), ''), ','),
            '{}')
        ELSE '{}'::text[]
    END
$$;

-- The officer id set for this transaction (NULL: none).
CREATE FUNCTION remigate_scope_officer() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('remigate.officer', true), '')::bigint
$$;

ALTER TABLE returnees ENABLE ROW LEVEL SECURITY;
ALTER TABLE submissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE decisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE corrections ENABLE ROW LEVEL SECURITY;
ALTER TABLE sms_out ENABLE ROW LEVEL SECURITY;

-- WITH CHECK as well: an officer cannot move a record out of their scope.
CREATE POLICY returnees_scope ON returnees TO remigate_console
    USING (remigate_scope_all() OR district = ANY (remigate_scope_districts()))
    WITH CHECK (remigate_scope_all()
                OR district = ANY (remigate_scope_districts()));
CREATE POLICY submissions_scope ON submissions TO remigate_console
    USING (returnee_id IN (SELECT id FROM returnees));
CREATE POLICY decisions_scope ON decisions TO remigate_console
    USING (returnee_id IN (SELECT id FROM returnees));
CREATE POLICY corrections_scope ON corrections TO remigate_console
    USING (returnee_id IN (SELECT id FROM returnees));
CREATE POLICY sms_out_scope ON sms_out TO remigate_console
    USING (returnee_id IN (SELECT id FROM returnees));

GRANT SELECT, UPDATE ON returnees TO remigate_console;
GRANT SELECT ON submissions TO remigate_console;
GRANT SELECT, INSERT, UPDATE ON decisions, sms_out TO remigate_console;
GRANT SELECT, INSERT ON corrections TO remigate_console;
GRANT USAGE ON SEQUENCE decisions_id_seq, corrections_id_seq
    TO remigate_console;
GRANT INSERT ON audit_log TO remigate_console;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO remigate_console;

-- The duplicate panel: other records with the same NID or passport keyed
-- hash as record p_ref, in any district -- reference, district and status
-- only.  Runs as the owner to see other districts, so it first checks, with
-- the same rule as the policy, that the caller may see p_ref itself.
CREATE FUNCTION remigate_duplicates(p_ref text)
RETURNS TABLE (ref text, district text, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT o.ref, o.district, o.status
    FROM returnees r
    JOIN returnees o ON o.id <> r.id
        AND ((r.nid_hash IS NOT NULL AND o.nid_hash = r.nid_hash)
          OR (r.passport_hash IS NOT NULL AND o.passport_hash = r.passport_hash))
    WHERE r.ref = p_ref
      AND (remigate_scope_all() OR r.district = ANY (remigate_scope_districts()))
    ORDER BY o.created_at, o.id
    LIMIT 20
$$;
REVOKE ALL ON FUNCTION remigate_duplicates(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remigate_duplicates(text) TO remigate_console;

-- ------------------------------------------------------------------------
-- Decisions

-- What undo needs to put a record back.
CREATE FUNCTION remigate_decision_prev(r returnees) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('status', r.status,
        'status_at', r.status_at, 'info_reason', r.info_reason,
        'reject_reason', r.reject_reason, 'reject_note', r.reject_note,
        'verified_by', r.verified_by, 'verified_at', r.verified_at,
        'decided_by', r.decided_by,
        'changed_since_verified', to_jsonb(r.changed_since_verified))
$$;

-- One decision on record p_ref at version p_version, as the officer of
-- this transaction (remigate.officer), under the caller's row-level
-- security.  p_action: verify | needs_info | reject | reopen | revoke
-- (correct is remigate_correct()).  The SMS texts for the returnee in each
-- language (p_sms_bn, p_sms_en, with their codings; NULL: no SMS) are
-- chosen by the record's lang and held p_hold_s seconds.
-- outcome: ok | not_found (no such record in scope) | stale (version) |
-- bad_state (not allowed from this status) | not_admin (a final decision
-- changed by a non-admin) | no_reason (every action but verify needs one) |
-- no_officer.
CREATE FUNCTION remigate_decide(p_ref text, p_version bigint, p_action text,
    p_reason text, p_note text, p_sms_id uuid, p_sms_bn text,
    p_coding_bn int, p_sms_en text, p_coding_en int, p_hold_s int,
    OUT outcome text, OUT status text, OUT version bigint,
    OUT sms_at timestamptz, OUT decision_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r returnees;
    officer bigint := remigate_scope_officer();
    admin boolean := remigate_scope_all();
    to_st text;
    sms text;
    coding int;
BEGIN
    IF officer IS NULL THEN
        outcome := 'no_officer';
        RETURN;
    END IF;
    SELECT * INTO r FROM returnees t WHERE t.ref = p_ref FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    status := r.status;
    version := r.version;
    IF r.version <> p_version THEN
        outcome := 'stale';
        RETURN;
    END IF;
    to_st := CASE
        WHEN p_action = 'verify' AND r.status IN ('pending', 'needs_info')
            THEN 'verified'
        WHEN p_action = 'needs_info' AND r.status = 'pending'
            THEN 'needs_info'
        WHEN p_action = 'reject' AND r.status IN ('pending', 'needs_info')
            THEN 'rejected'
        WHEN p_action = 'reopen' AND r.status = 'rejected' THEN 'pending'
        WHEN p_action = 'revoke' AND r.status = 'verified' THEN 'rejected'
    END;
    IF to_st IS NULL THEN
        outcome := 'bad_state';
        RETURN;
    END IF;
    IF p_action IN ('reopen', 'revoke') AND NOT admin THEN
        outcome := 'not_admin';
        RETURN;
    END IF;
    IF p_action <> 'verify' AND coalesce(p_reason, '') = '' THEN
        outcome := 'no_reason';
        RETURN;
    END IF;

    INSERT INTO decisions (returnee_id, officer_id, action, reason, note,
        from_status, to_status, version, prev, undo_until)
    VALUES (r.id, officer, p_action, p_reason, p_note, r.status, to_st, 0,
        remigate_decision_prev(r), now() + make_interval(secs => p_hold_s))
    RETURNING id INTO decision_id;

    UPDATE returnees t SET status = to_st, decided_by = officer,
        info_reason = CASE WHEN to_st = 'needs_info' THEN p_reason END,
        reject_reason = CASE WHEN to_st = 'rejected' THEN p_reason END,
        reject_note = CASE WHEN to_st = 'rejected' THEN p_note END,
        verified_by = CASE WHEN to_st = 'verified' THEN officer END,
        verified_at = CASE WHEN to_st = 'verified' THEN now() END,
        changed_since_verified = CASE WHEN to_st = 'verified' THEN NULL
            ELSE t.changed_since_verified END
    WHERE t.id = r.id
    RETURNING t.status, t.version INTO status, version;

    IF coalesce(r.lang, 'bn') = 'en' AND p_sms_en IS NOT NULL THEN
        sms := p_sms_en;
        coding := p_coding_en;
    ELSE
        sms := p_sms_bn;
        coding := p_coding_bn;
    END IF;
    IF sms IS NOT NULL AND p_sms_id IS NOT NULL THEN
        sms_at := now() + make_interval(secs => p_hold_s);
        INSERT INTO sms_out (id, msisdn, kind, text, coding, returnee_id,
            hold_state, send_after)
        VALUES (p_sms_id, r.msisdn, 'confirmation', sms, coding, r.id,
            'held', sms_at);
    END IF;
    UPDATE decisions d SET version = remigate_decide.version,
        sms_id = CASE WHEN sms_at IS NOT NULL THEN p_sms_id END
    WHERE d.id = decision_id;
    outcome := 'ok';
END
$$;

-- Correct fields of record p_ref at version p_version, then verify it: one
-- corrections row per field whose value changes (old -> new), one
-- decisions row (action correct).  p_fields is a JSON object of field ->
-- new value among: name, sex, birth_year, division, district, country,
-- years_abroad, return_year, reason, education, skills (array of codes),
-- need; the caller has validated the values.  Outcomes as remigate_decide()
-- plus bad_field (a field not in that list: nothing is changed).
CREATE FUNCTION remigate_correct(p_ref text, p_version bigint,
    p_fields jsonb, p_sms_id uuid, p_sms_bn text, p_coding_bn int,
    p_sms_en text, p_coding_en int, p_hold_s int,
    OUT outcome text, OUT status text, OUT version bigint,
    OUT sms_at timestamptz, OUT decision_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r returnees;
    old_row jsonb;
    new_row jsonb;
    f text;
    v jsonb;
    changed jsonb := '{}';
    allowed text[] := ARRAY['name', 'sex', 'birth_year', 'division',
        'district', 'country', 'years_abroad', 'return_year', 'reason',
        'education', 'skills', 'need'];
    d record;
BEGIN
    IF jsonb_typeof(p_fields) <> 'object' OR p_fields = '{}' THEN
        outcome := 'bad_field';
        RETURN;
    END IF;
    FOR f IN SELECT jsonb_object_keys(p_fields) LOOP
        IF NOT f = ANY (allowed) THEN
            outcome := 'bad_field';
            RETURN;
        END IF;
    END LOOP;
    IF remigate_scope_officer() IS NULL THEN
        outcome := 'no_officer';
        RETURN;
    END IF;
    SELECT * INTO r FROM returnees t WHERE t.ref = p_ref FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    status := r.status;
    version := r.version;
    IF r.version <> p_version THEN
        outcome := 'stale';
        RETURN;
    END IF;
    IF r.status NOT IN ('pending', 'needs_info') THEN
        outcome := 'bad_state';
        RETURN;
    END IF;
    old_row := to_jsonb(r);
    FOR f, v IN SELECT * FROM jsonb_each(p_fields) LOOP
        IF old_row -> f IS DISTINCT FROM v THEN
            changed := changed || jsonb_build_object(f, v);
        END IF;
    END LOOP;
    new_row := old_row || changed;
    UPDATE returnees t SET
        name = new_row ->> 'name', sex = new_row ->> 'sex',
        birth_year = (new_row ->> 'birth_year')::int,
        division = new_row ->> 'division', district = new_row ->> 'district',
        country = new_row ->> 'country',
        years_abroad = (new_row ->> 'years_abroad')::int,
        return_year = (new_row ->> 'return_year')::int,
        reason = new_row ->> 'reason', education = new_row ->> 'education',
        skills = ARRAY(SELECT jsonb_array_elements_text(
            coalesce(new_row -> 'skills', '[]'))),
        need = new_row ->> 'need'
    WHERE t.id = r.id AND changed <> '{}';
    -- the record as corrected, at its new version, is what gets verified
    SELECT * INTO d FROM remigate_decide(p_ref,
        (SELECT t.version FROM returnees t WHERE t.id = r.id), 'verify',
        NULL, NULL, p_sms_id, p_sms_bn, p_coding_bn, p_sms_en, p_coding_en,
        p_hold_s);
    outcome := d.outcome;
    status := d.status;
    version := d.version;
    sms_at := d.sms_at;
    decision_id := d.decision_id;
    IF d.outcome <> 'ok' THEN
        RAISE EXCEPTION 'remigate_correct: verify after correcting: %',
            d.outcome;
    END IF;
    -- undo puts the old values back as well
    UPDATE decisions x SET action = 'correct',
        prev = x.prev || jsonb_build_object('fields',
            (SELECT coalesce(jsonb_object_agg(k, old_row -> k), '{}')
             FROM jsonb_object_keys(changed) k))
    WHERE x.id = decision_id;
    INSERT INTO corrections (decision_id, returnee_id, field, old_value,
        new_value)
    SELECT decision_id, r.id, k, old_row -> k, changed -> k
    FROM jsonb_object_keys(changed) k;
END
$$;

-- Undo the latest decision on record p_ref, within its window, before its
-- SMS has left: the record goes back to what it was (fields corrected by
-- it too) and the held SMS is cancelled.  Only the officer who made it, or
-- an admin.  outcome: ok | not_found | nothing (no decision to undo) |
-- too_late (window passed, SMS claimed, or the record changed since) |
-- not_yours | no_officer.
CREATE FUNCTION remigate_undo(p_ref text, OUT outcome text,
    OUT status text, OUT version bigint, OUT decision_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r returnees;
    d decisions;
    officer bigint := remigate_scope_officer();
    p jsonb;
    fields jsonb;
BEGIN
    IF officer IS NULL THEN
        outcome := 'no_officer';
        RETURN;
    END IF;
    SELECT * INTO r FROM returnees t WHERE t.ref = p_ref FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    status := r.status;
    version := r.version;
    SELECT * INTO d FROM decisions x WHERE x.returnee_id = r.id
        ORDER BY x.id DESC LIMIT 1 FOR UPDATE;
    IF NOT FOUND OR d.undone_at IS NOT NULL THEN
        outcome := 'nothing';
        RETURN;
    END IF;
    decision_id := d.id;
    IF d.officer_id <> officer AND NOT remigate_scope_all() THEN
        outcome := 'not_yours';
        RETURN;
    END IF;
    IF d.undo_until <= now() OR d.version <> r.version THEN
        outcome := 'too_late';
        RETURN;
    END IF;
    IF d.sms_id IS NOT NULL THEN
        UPDATE sms_out s SET hold_state = 'cancelled'
        WHERE s.id = d.sms_id AND s.hold_state = 'held';
        IF NOT FOUND THEN
            outcome := 'too_late';
            RETURN;
        END IF;
    END IF;
    p := d.prev;
    fields := coalesce(p -> 'fields', '{}');
    UPDATE returnees t SET status = p ->> 'status',
        info_reason = p ->> 'info_reason',
        reject_reason = p ->> 'reject_reason',
        reject_note = p ->> 'reject_note',
        verified_by = (p ->> 'verified_by')::bigint,
        verified_at = (p ->> 'verified_at')::timestamptz,
        decided_by = (p ->> 'decided_by')::bigint,
        changed_since_verified = CASE
            WHEN jsonb_typeof(p -> 'changed_since_verified') = 'array'
            THEN ARRAY(SELECT jsonb_array_elements_text(
                p -> 'changed_since_verified')) END,
        name = CASE WHEN fields ? 'name' THEN fields ->> 'name'
            ELSE t.name END,
        sex = CASE WHEN fields ? 'sex' THEN fields ->> 'sex' ELSE t.sex END,
        birth_year = CASE WHEN fields ? 'birth_year'
            THEN (fields ->> 'birth_year')::int ELSE t.birth_year END,
        division = CASE WHEN fields ? 'division' THEN fields ->> 'division'
            ELSE t.division END,
        district = CASE WHEN fields ? 'district' THEN fields ->> 'district'
            ELSE t.district END,
        country = CASE WHEN fields ? 'country' THEN fields ->> 'country'
            ELSE t.country END,
        years_abroad = CASE WHEN fields ? 'years_abroad'
            THEN (fields ->> 'years_abroad')::int ELSE t.years_abroad END,
        return_year = CASE WHEN fields ? 'return_year'
            THEN (fields ->> 'return_year')::int ELSE t.return_year END,
        reason = CASE WHEN fields ? 'reason' THEN fields ->> 'reason'
            ELSE t.reason END,
        education = CASE WHEN fields ? 'education'
            THEN fields ->> 'education' ELSE t.education END,
        skills = CASE WHEN fields ? 'skills' THEN ARRAY(SELECT
            jsonb_array_elements_text(fields -> 'skills')) ELSE t.skills END,
        need = CASE WHEN fields ? 'need' THEN fields ->> 'need'
            ELSE t.need END
    WHERE t.id = r.id
    RETURNING t.status, t.version INTO status, version;
    -- the status it had, and since when
    UPDATE returnees t SET status_at = (p ->> 'status_at')::timestamptz
    WHERE t.id = r.id AND p ? 'status_at'
    RETURNING t.version INTO version;
    UPDATE decisions x SET undone_at = now(), undone_by = officer
    WHERE x.id = d.id;
    outcome := 'ok';
END
$$;

REVOKE ALL ON FUNCTION remigate_decide(text, bigint, text, text, text, uuid,
    text, int, text, int, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION remigate_correct(text, bigint, jsonb, uuid, text, int,
    text, int, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION remigate_undo(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remigate_decide(text, bigint, text, text, text,
    uuid, text, int, text, int, int) TO remigate_console;
GRANT EXECUTE ON FUNCTION remigate_correct(text, bigint, jsonb, uuid, text,
    int, text, int, int) TO remigate_console;
GRANT EXECUTE ON FUNCTION remigate_undo(text) TO remigate_console;
