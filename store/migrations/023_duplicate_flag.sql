-- 023_duplicate_flag: the queue's "possible duplicate" flag stored on the
-- record and kept right by triggers, instead of computed for every page
-- (remigate_duplicate_ids() of 013 was 39 % of PostgreSQL's time under
-- the console's back-to-back load; bench/RESULTS.md).
--
-- returnees.possible_duplicate is what remigate_duplicate_ids() answers
-- for the record: another record, in any district and of any status,
-- has the same NID keyed hash or the same passport keyed hash.  It is a
-- column of returnees, so the row-level security of 013 covers it: the
-- console reads the flag of the rows it may see, never another
-- district's.  remigate_duplicate_ids() and remigate_duplicates() stay
-- as they were (the record's panel, and the reference the tests compare
-- the flag with).
--
-- Kept by one statement-level trigger per event (transition tables, as
-- 015's): the ID hashes a statement adds to or takes from a group (an
-- insert's, a delete's, an update's old and new ones when they change),
-- and the records whose flag a statement set by hand; then every member
-- of those groups gets the flag it should have.  Only the members whose
-- flag changes are written (a second record with an NID flags the first;
-- a record leaving a pair unflags the other), and nothing at all when
-- none changes.
--
-- Concurrency: a statement cannot see another transaction's uncommitted
-- rows, so two registrations of one NID in parallel would each find no
-- twin.  Every group a statement touches is therefore locked first, by
-- its row in duplicate_keys (made on first use, the rows locked FOR
-- UPDATE in hash order) and held to the commit: the second registration
-- waits for the first to commit, then -- READ COMMITTED, each statement
-- sees what committed before it -- finds it and flags both.  Row locks
-- live in the rows, not in the lock table, so a statement of a million
-- rows cannot run the lock table out of memory; such a statement (more
-- than 10,000 hashes) locks duplicate_keys whole instead and recomputes
-- every flag (remigate_duplicate_rebuild(), a few seconds at 1,000,000).
-- Two transactions that change the same groups in opposite orders (two
-- registration batches, an NID moved between two records at once) can
-- deadlock; PostgreSQL cancels one and the store runs a failed batch
-- again one by one.  Writers to returnees must use READ COMMITTED (the
-- daemon does): a REPEATABLE READ transaction would not see what
-- committed while it waited.
--
-- A flag change alone is no new version of the record: 005's trigger
-- leaves version and updated_at as they were (an officer's page stays
-- current and their decision is not refused as stale because a twin
-- registered elsewhere).

ALTER TABLE returnees
    ADD COLUMN possible_duplicate boolean NOT NULL DEFAULT false;

-- One row per ID keyed hash a write has touched: the lock of its group.
-- Never read by the console (no grant; row-level security with no policy
-- should one be given).  Rows whose group is empty again stay: a hash.
CREATE TABLE duplicate_keys (
    hash    bytea PRIMARY KEY
);
ALTER TABLE duplicate_keys ENABLE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION remigate_returnee_versioned() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    was returnees := OLD;
BEGIN
    was.possible_duplicate := NEW.possible_duplicate;
    IF NEW IS DISTINCT FROM was THEN
        NEW.version := OLD.version + 1;
        NEW.updated_at := now();
        IF NEW.status IS DISTINCT FROM OLD.status THEN
            NEW.status_at := now();
        END IF;
    END IF;
    RETURN NEW;
END
$$;

-- Every record's flag from scratch: this migration, a bulk statement, or
-- a check after a load with the triggers disabled.  Locks duplicate_keys
-- whole (every writer of an ID waits) to the caller's commit.  Returns
-- the number of flags changed.
CREATE FUNCTION remigate_duplicate_rebuild() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
SET work_mem = '64MB' AS $$
DECLARE
    rows bigint;
BEGIN
    LOCK TABLE duplicate_keys IN EXCLUSIVE MODE;
    PERFORM set_config('remigate.duplicate_sync', 'on', true);
    WITH dn AS (SELECT nid_hash AS h FROM returnees
                WHERE nid_hash IS NOT NULL GROUP BY 1 HAVING count(*) > 1),
         dp AS (SELECT passport_hash AS h FROM returnees
                WHERE passport_hash IS NOT NULL GROUP BY 1 HAVING count(*) > 1)
    UPDATE returnees r SET possible_duplicate = NOT r.possible_duplicate
    WHERE r.possible_duplicate <>
        coalesce(r.nid_hash IN (SELECT h FROM dn)
                 OR r.passport_hash IN (SELECT h FROM dp), false);
    GET DIAGNOSTICS rows = ROW_COUNT;
    PERFORM set_config('remigate.duplicate_sync', '', true);
    RETURN rows;
END
$$;
REVOKE ALL ON FUNCTION remigate_duplicate_rebuild() FROM PUBLIC;

-- The triggers' function.  Definer's rights: a console transaction sees
-- and may update only its districts' records, and the groups span all.
-- remigate.duplicate_sync is set while it writes flags itself, so that
-- its own UPDATE does not start it again.
CREATE FUNCTION remigate_duplicate_track() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    keys bytea[];
    ids bigint[];
BEGIN
    IF current_setting('remigate.duplicate_sync', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT k.h ORDER BY k.h) INTO keys
        FROM new_rows n, LATERAL (VALUES (n.nid_hash), (n.passport_hash)) k(h)
        WHERE k.h IS NOT NULL;
        SELECT array_agg(n.id) INTO ids
        FROM new_rows n WHERE n.possible_duplicate;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT k.h ORDER BY k.h) INTO keys
        FROM old_rows o, LATERAL (VALUES (o.nid_hash), (o.passport_hash)) k(h)
        WHERE k.h IS NOT NULL;
    ELSE
        SELECT array_agg(DISTINCT k.h ORDER BY k.h) INTO keys
        FROM old_rows o JOIN new_rows n ON n.id = o.id,
        LATERAL (VALUES (o.nid_hash), (o.passport_hash), (n.nid_hash),
                        (n.passport_hash)) k(h)
        WHERE k.h IS NOT NULL
          AND (o.nid_hash, o.passport_hash)
              IS DISTINCT FROM (n.nid_hash, n.passport_hash);
        -- and the records themselves (a record with no ID left is in no
        -- group), with those whose flag was set by hand
        SELECT array_agg(n.id) INTO ids
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE (o.nid_hash, o.passport_hash, o.possible_duplicate)
              IS DISTINCT FROM (n.nid_hash, n.passport_hash,
                                n.possible_duplicate);
    END IF;
    IF keys IS NULL AND ids IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(keys) > 10000 THEN
        PERFORM remigate_duplicate_rebuild();
        RETURN NULL;
    END IF;
    IF keys IS NOT NULL THEN
        INSERT INTO duplicate_keys (hash)
        SELECT k FROM unnest(keys) k ORDER BY k ON CONFLICT DO NOTHING;
        PERFORM 1 FROM duplicate_keys WHERE hash = ANY (keys)
        ORDER BY hash FOR UPDATE;
    END IF;
    -- the members whose flag is not what it should be, if any
    ids := ARRAY(
        SELECT r.id
        FROM returnees r
        WHERE r.id IN (SELECT id FROM returnees WHERE nid_hash = ANY (keys)
                       UNION ALL
                       SELECT id FROM returnees
                       WHERE passport_hash = ANY (keys)
                       UNION ALL
                       SELECT unnest(ids))
          AND r.possible_duplicate <> (
              EXISTS (SELECT 1 FROM returnees o
                      WHERE o.nid_hash = r.nid_hash AND o.id <> r.id)
              OR EXISTS (SELECT 1 FROM returnees o
                         WHERE o.passport_hash = r.passport_hash
                           AND o.id <> r.id)));
    IF cardinality(ids) > 0 THEN
        PERFORM set_config('remigate.duplicate_sync', 'on', true);
        UPDATE returnees SET possible_duplicate = NOT possible_duplicate
        WHERE id = ANY (ids);
        PERFORM set_config('remigate.duplicate_sync', '', true);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION remigate_duplicate_track() FROM PUBLIC;

CREATE TRIGGER returnees_duplicate_ins AFTER INSERT ON returnees
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION remigate_duplicate_track();
CREATE TRIGGER returnees_duplicate_upd AFTER UPDATE ON returnees
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION remigate_duplicate_track();
CREATE TRIGGER returnees_duplicate_del AFTER DELETE ON returnees
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION remigate_duplicate_track();

-- The flags of the records there are, with returnees' other triggers
-- (005's version, 015's counts: a flag is neither) off meanwhile, then
-- each as it was (on, or on ALWAYS).
DO $$
DECLARE
    t record;
    was text[][] := '{}';
BEGIN
    FOR t IN SELECT tgname, tgenabled FROM pg_trigger
             WHERE tgrelid = 'returnees'::regclass AND NOT tgisinternal
               AND tgenabled IN ('O', 'A') ORDER BY tgname LOOP
        EXECUTE format('ALTER TABLE returnees DISABLE TRIGGER %I', t.tgname);
        was := was || ARRAY[ARRAY[t.tgname::text, t.tgenabled::text]];
    END LOOP;
    PERFORM remigate_duplicate_rebuild();
    FOR i IN 1 .. coalesce(array_length(was, 1), 0) LOOP
        EXECUTE format('ALTER TABLE returnees ENABLE %s TRIGGER %I',
                       CASE WHEN was[i][2] = 'A' THEN 'ALWAYS' ELSE '' END,
                       was[i][1]);
    END LOOP;
END
$$;
