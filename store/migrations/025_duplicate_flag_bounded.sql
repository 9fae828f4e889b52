-- 025_duplicate_flag_bounded: 023's trigger without the work that grew with
-- a group's size.
--
-- 023 recomputed the flag of every member of each group a statement
-- touched.  A group can be large: many callers type the same placeholder
-- NID, or one person registers again and again from new numbers.  Every
-- new member then read the whole group (an NID shared by 3,000 records:
-- 3,000 rows and 6,000 index probes per registration), and registrations
-- slowed as the group grew (bench/login-load, whose callers all give one
-- NID: PostgreSQL's CPU per 20 s run 3.7 -> 8.5 s against 1.3-1.8 s
-- before 023).
--
-- What can change is small.  A member the statement did not change keeps
-- its group: its flag depends on whether the group has another member,
-- and with two or more unchanged members the answer is yes before and
-- after.  So per touched group only one unchanged member can need its
-- flag changed, and only when it is the one unchanged member.  The
-- candidates are therefore: the rows the statement changed (inserted,
-- given other ID hashes, or flagged by hand), and for each touched hash
-- the one unchanged member of a group that has exactly one -- found by
-- reading at most two of them.  Each candidate's flag is then checked
-- with two EXISTS probes (the first other member ends each).  Locking
-- (duplicate_keys, hash order, held to commit) is as in 023.
CREATE OR REPLACE FUNCTION remigate_duplicate_track() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    keys bytea[];
    ids bigint[];
    chg bigint[];
BEGIN
    IF current_setting('remigate.duplicate_sync', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT k.h ORDER BY k.h) INTO keys
        FROM new_rows n, LATERAL (VALUES (n.nid_hash), (n.passport_hash)) k(h)
        WHERE k.h IS NOT NULL;
        SELECT array_agg(n.id) INTO chg FROM new_rows n;
        ids := chg;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT k.h ORDER BY k.h) INTO keys
        FROM old_rows o, LATERAL (VALUES (o.nid_hash), (o.passport_hash)) k(h)
        WHERE k.h IS NOT NULL;
        SELECT array_agg(o.id) INTO chg FROM old_rows o;
    ELSE
        SELECT array_agg(DISTINCT k.h ORDER BY k.h) INTO keys
        FROM old_rows o JOIN new_rows n ON n.id = o.id,
        LATERAL (VALUES (o.nid_hash), (o.passport_hash), (n.nid_hash),
                        (n.passport_hash)) k(h)
        WHERE k.h IS NOT NULL
          AND (o.nid_hash, o.passport_hash)
              IS DISTINCT FROM (n.nid_hash, n.passport_hash);
        -- the records themselves (a record with no ID left is in no
        -- group), with those whose flag was set by hand
        SELECT array_agg(n.id) INTO ids
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE (o.nid_hash, o.passport_hash, o.possible_duplicate)
              IS DISTINCT FROM (n.nid_hash, n.passport_hash,
                                n.possible_duplicate);
        chg := ids;
    END IF;
    IF keys IS NULL AND ids IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(keys) > 10000 THEN
        PERFORM remigate_duplicate_rebuild();
        RETURN NULL;
    END IF;
    chg := coalesce(chg, '{}');
    IF keys IS NOT NULL THEN
        INSERT INTO duplicate_keys (hash)
        SELECT k FROM unnest(keys) k ORDER BY k ON CONFLICT DO NOTHING;
        PERFORM 1 FROM duplicate_keys WHERE hash = ANY (keys)
        ORDER BY hash FOR UPDATE;
        -- the lone unchanged member of each touched group, if any
        ids := coalesce(ids, '{}') || ARRAY(
            SELECT g.a[1]
            FROM unnest(keys) k(h),
            LATERAL (SELECT ARRAY(SELECT x.id FROM returnees x
                                  WHERE x.nid_hash = k.h
                                    AND x.id <> ALL (chg) LIMIT 2) AS a
                     UNION ALL
                     SELECT ARRAY(SELECT x.id FROM returnees x
                                  WHERE x.passport_hash = k.h
                                    AND x.id <> ALL (chg) LIMIT 2)) g
            WHERE cardinality(g.a) = 1);
    END IF;
    -- of the candidates, those whose flag is not what it should be
    ids := ARRAY(
        SELECT r.id
        FROM returnees r
        WHERE r.id = ANY (ids)
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
