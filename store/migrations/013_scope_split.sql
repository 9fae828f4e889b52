-- 013_scope_split: row-level security that PostgreSQL can use an index
-- for, and the queue's duplicate flag for a whole page at once.
--
-- The policy of 005 was one expression for every console role:
--     remigate_scope_all() OR district = ANY (remigate_scope_districts())
-- The OR keeps the planner from using (district, status, created_at, id)
-- for an officer's queue: it walked every district's pending rows oldest
-- first and filtered (about 64 rows read per row shown at 1,000,000
-- returnees).  Now admins act as a role of their own:
--
--   remigate_console        officers and analysts (and every console
--                           transaction that is not an admin's):
--                           district = ANY (remigate_scope_districts())
--   remigate_console_admin  a member of remigate_console (its grants and
--                           policies), with one more permissive policy,
--                           remigate_scope_all()
--
-- Permissive policies are OR-ed, so an admin transaction sees what 005
-- showed it; an officer's carries the district condition alone, which is
-- an index condition.  Neither half is looser than 005: the admin role
-- sees every row only when remigate.role is also 'admin', and an admin
-- transaction left as remigate_console sees no row at all (its district
-- list is empty).  The console picks the role per transaction
-- (store_pool_config.admin_role).
--
-- Rows without a district of their own (submissions, decisions,
-- corrections, sms_out) were visible when returnee_id IN (SELECT id FROM
-- returnees): PostgreSQL runs that as a hashed subplan of every returnee
-- in scope, built once per query (7 ms for an officer's district, 1.4 s
-- for an admin at 1,000,000 returnees, to read one record's history).
-- EXISTS with the returnee's id looks one row up by its key, still under
-- returnees' own policy: the same rows, found by the primary key.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles
                   WHERE rolname = 'remigate_console_admin') THEN
        CREATE ROLE remigate_console_admin NOLOGIN NOSUPERUSER NOBYPASSRLS
            IN ROLE remigate_console;
    END IF;
    EXECUTE format('GRANT remigate_console_admin TO %I', current_user);
END
$$;

-- A console login of its own (postgres.console_dsn: a LOGIN member of
-- remigate_console) must be able to act as the admin role as well, or
-- admins' requests would fail after this migration.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT m.rolname
        FROM pg_auth_members a
        JOIN pg_roles g ON g.oid = a.roleid
        JOIN pg_roles m ON m.oid = a.member
        WHERE g.rolname = 'remigate_console' AND m.rolcanlogin
          AND NOT m.rolsuper
    LOOP
        EXECUTE format('GRANT remigate_console_admin TO %I', r.rolname);
    END LOOP;
END
$$;

DROP POLICY returnees_scope ON returnees;
CREATE POLICY returnees_scope ON returnees TO remigate_console
    USING (district = ANY (remigate_scope_districts()))
    WITH CHECK (district = ANY (remigate_scope_districts()));
CREATE POLICY returnees_admin ON returnees TO remigate_console_admin
    USING (remigate_scope_all())
    WITH CHECK (remigate_scope_all());

DROP POLICY submissions_scope ON submissions;
DROP POLICY decisions_scope ON decisions;
DROP POLICY corrections_scope ON corrections;
DROP POLICY sms_out_scope ON sms_out;
CREATE POLICY submissions_scope ON submissions TO remigate_console
    USING (EXISTS (SELECT 1 FROM returnees r WHERE r.id = returnee_id));
CREATE POLICY decisions_scope ON decisions TO remigate_console
    USING (EXISTS (SELECT 1 FROM returnees r WHERE r.id = returnee_id));
CREATE POLICY corrections_scope ON corrections TO remigate_console
    USING (EXISTS (SELECT 1 FROM returnees r WHERE r.id = returnee_id));
CREATE POLICY sms_out_scope ON sms_out TO remigate_console
    USING (EXISTS (SELECT 1 FROM returnees r WHERE r.id = returnee_id));

-- Which of the records p_ids have a possible duplicate (another record
-- with the same NID or passport keyed hash, in any district): the queue's
-- flag for a page in one call instead of remigate_duplicates() per row.
-- Runs as the owner to see other districts, so it answers only for ids
-- the caller may see itself (the rule of the policies above); it returns
-- ids, never another record's data.  PL/pgSQL rather than SQL: a SECURITY
-- DEFINER SQL function is planned again on every call (about 0.6 ms of a
-- page under load); PL/pgSQL keeps its plan for the connection.
CREATE FUNCTION remigate_duplicate_ids(p_ids bigint[]) RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(r.id ORDER BY r.id), '{}')
        FROM returnees r
        WHERE r.id = ANY (p_ids)
          AND (remigate_scope_all()
               OR r.district = ANY (remigate_scope_districts()))
          AND (EXISTS (SELECT 1 FROM returnees o
                       WHERE o.nid_hash = r.nid_hash AND o.id <> r.id)
            OR EXISTS (SELECT 1 FROM returnees o
                       WHERE o.passport_hash = r.passport_hash
                         AND o.id <> r.id)));
END
$$;
REVOKE ALL ON FUNCTION remigate_duplicate_ids(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remigate_duplicate_ids(bigint[])
    TO remigate_console;

-- The duplicate panel of 005, unchanged in what it returns, in PL/pgSQL
-- for the same reason (its plan kept instead of made on each record
-- opened).
CREATE OR REPLACE FUNCTION remigate_duplicates(p_ref text)
RETURNS TABLE (ref text, district text, status text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT o.ref, o.district, o.status
    FROM returnees r
    JOIN returnees o ON o.id <> r.id
        AND ((r.nid_hash IS NOT NULL AND o.nid_hash = r.nid_hash)
          OR (r.passport_hash IS NOT NULL
              AND o.passport_hash = r.passport_hash))
    WHERE r.ref = p_ref
      AND (remigate_scope_all()
           OR r.district = ANY (remigate_scope_districts()))
    ORDER BY o.created_at, o.id
    LIMIT 20;
END
$$;
