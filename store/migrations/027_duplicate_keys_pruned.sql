-- 027_duplicate_keys_pruned: a row of duplicate_keys (023: the lock of one
-- ID hash's group) goes when its group is empty again -- the last record
-- with that NID or passport number corrected to another, or erased.
-- Before, every hash ever written stayed for good.
--
-- The statement that empties a group deletes its row, at the end of the
-- trigger, while it holds that row's lock (taken in hash order, held to
-- the commit); deleting a row one holds takes no other lock, so no new
-- wait and no new deadlock.  A writer of the same hash waits for that
-- lock.  023's way of taking it (INSERT ... ON CONFLICT DO NOTHING, then
-- SELECT ... FOR UPDATE) would find the row gone once the delete commits
-- and go on holding nothing: two such writers of one new hash could then
-- each miss the other's record and neither be flagged.  So the lock is now
-- taken by one INSERT ... ON CONFLICT DO UPDATE ... WHERE false, in the
-- same hash order: PostgreSQL ends it with each row either inserted or
-- locked (a row deleted while it waited is inserted anew), and the
-- always-false WHERE updates nothing but still locks the row it meets (as
-- FOR UPDATE would).  Otherwise the trigger is 025's.
--
-- The rebuild (a statement of more than 10,000 hashes, or the owner's
-- call) holds duplicate_keys whole: it also deletes every row whose group
-- is empty.  This migration does that once for the rows left until now,
-- under the same table lock (writers of ID numbers wait for it).

CREATE OR REPLACE FUNCTION remigate_duplicate_rebuild() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
SET work_mem = '64MB' AS $$
DECLARE
    rows bigint;
BEGIN
    LOCK TABLE duplicate_keys IN EXCLUSIVE MODE;
    DELETE FROM duplicate_keys k
    WHERE NOT EXISTS (SELECT 1 FROM returnees r WHERE r.nid_hash = k.hash)
      AND NOT EXISTS (SELECT 1 FROM returnees r
                      WHERE r.passport_hash = k.hash);
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
        -- each group's row, made or locked, in hash order
        INSERT INTO duplicate_keys AS d (hash)
        SELECT k FROM unnest(keys) k ORDER BY k
        ON CONFLICT (hash) DO UPDATE SET hash = d.hash WHERE false;
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
    -- the rows of the groups this statement emptied (an insert empties
    -- none); their locks are this statement's
    IF TG_OP <> 'INSERT' AND keys IS NOT NULL THEN
        DELETE FROM duplicate_keys d
        WHERE d.hash = ANY (keys)
          AND NOT EXISTS (SELECT 1 FROM returnees r WHERE r.nid_hash = d.hash)
          AND NOT EXISTS (SELECT 1 FROM returnees r
                          WHERE r.passport_hash = d.hash);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION remigate_duplicate_track() FROM PUBLIC;

-- The rows left by the groups emptied before this migration.
LOCK TABLE duplicate_keys IN EXCLUSIVE MODE;
DELETE FROM duplicate_keys k
WHERE NOT EXISTS (SELECT 1 FROM returnees r WHERE r.nid_hash = k.hash)
  AND NOT EXISTS (SELECT 1 FROM returnees r WHERE r.passport_hash = k.hash);
