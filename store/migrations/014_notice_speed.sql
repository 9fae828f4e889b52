-- 014_notice_speed: a notice's preview and its freeze at a million
-- returnees (issue 11: preview <= 1 s, approval <= 60 s;
-- bench/notices-audience, bench/RESULTS.md).
--
-- Same audience, same reasons, same rows as 008/010 (test_notices_sql.sh
-- holds them to SQL of its own); what changes is how PostgreSQL gets
-- there:
--
-- * The criteria are written into the query as constants, and only those
--   the notice sets (notice_audience_sql()).  010 compared each returnee
--   with the notice's columns through a joined row, which the planner
--   cannot see into: it guessed 211 people of a million, probed the
--   opt-out index once per returnee and sorted the result on disk.  With
--   constants it knows the audience's size, hashes the small sets and
--   can use parallel workers.
-- * The people to leave out (opted out, recently notified, over the
--   per-person cap) are one small set, numbers with their reason, built
--   once from sms_optout and the look-back period of the outbox and
--   joined to returnees by number.
-- * The preview (notice_preview()) counts by district, language and
--   reason in one pass and builds its JSON from those few hundred groups;
--   010's preview read the audience five times.
-- * The functions the console's row-level security policies call only
--   read settings, and are marked parallel safe: a policy that calls a
--   parallel-unsafe function keeps the whole query on one process.
--
-- The freeze (notice_freeze()) stays one INSERT ... SELECT.  Of the
-- 21.4 s it took for a million rows on a quiet machine, 7.8 s were the
-- per-row triggers of notice_outbox's three foreign keys: a query per row
-- and key, and for returnee_id a lock on every returnee row, which
-- rewrote and logged every page of returnees.  The keys to notices and
-- returnees become the same rules checked once per statement over its new
-- rows (notice_outbox_refs(), below); sms_id's stays (it is set one row
-- at a time, at claim).  ON CONFLICT DO NOTHING, which looked into every
-- unique index before each row, is left to a second freeze of a notice.
-- And UNIQUE (sms_id) indexed a NULL for every queued row: it becomes a
-- unique index of the rows that have an SMS (the same rule: NULLs never
-- collided).

ALTER FUNCTION remigate_education_rank(text) PARALLEL SAFE;
ALTER FUNCTION remigate_scope_all() PARALLEL SAFE;
ALTER FUNCTION remigate_scope_districts() PARALLEL SAFE;
ALTER FUNCTION remigate_scope_officer() PARALLEL SAFE;
ALTER FUNCTION remigate_officer_role() PARALLEL SAFE;
ALTER FUNCTION remigate_officer_districts() PARALLEL SAFE;
ALTER FUNCTION remigate_notice_visible(text[]) PARALLEL SAFE;

ALTER TABLE notice_outbox DROP CONSTRAINT notice_outbox_sms_id_key;
CREATE UNIQUE INDEX notice_outbox_sms_id_key ON notice_outbox (sms_id)
    WHERE sms_id IS NOT NULL;

-- notice_outbox.notice_id and .returnee_id name rows that exist, and a
-- notices or returnees row that outbox rows name is neither deleted, nor
-- given another id, nor truncated away: what the foreign keys of 008
-- said, checked per statement.  A statement that writes outbox rows
-- takes an advisory lock shared, one that deletes notices or returnees
-- takes it exclusively (until commit), so an insert and a delete that
-- cross cannot both pass: whichever checks second waits for the other to
-- commit and then sees it (every writer here runs READ COMMITTED, where
-- each query of a trigger function sees what committed before it).
-- Definer's rights: like a foreign key, the check sees rows row-level
-- security hides from the console.
ALTER TABLE notice_outbox DROP CONSTRAINT notice_outbox_notice_id_fkey,
                          DROP CONSTRAINT notice_outbox_returnee_id_fkey;

CREATE FUNCTION notice_outbox_refs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_bad bigint;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('remigate.notice_outbox'),
                                         hashtext('refs'));
    SELECT k.notice_id INTO v_bad
      FROM (SELECT DISTINCT notice_id FROM outbox_new) k
     WHERE NOT EXISTS (SELECT 1 FROM notices n WHERE n.id = k.notice_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'notice_outbox: notice % does not exist', v_bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT k.returnee_id INTO v_bad
      FROM outbox_new k
     WHERE NOT EXISTS (SELECT 1 FROM returnees r WHERE r.id = k.returnee_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'notice_outbox: returnee % does not exist', v_bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER notice_outbox_refs_ins AFTER INSERT ON notice_outbox
    REFERENCING NEW TABLE AS outbox_new
    FOR EACH STATEMENT EXECUTE FUNCTION notice_outbox_refs();
-- An outbox row's notice and returnee never change.
CREATE FUNCTION notice_outbox_refs_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.notice_id <> OLD.notice_id OR NEW.returnee_id <> OLD.returnee_id
    THEN
        RAISE EXCEPTION 'notice_outbox: a row keeps its notice and returnee'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER notice_outbox_refs_upd
    BEFORE UPDATE OF notice_id, returnee_id ON notice_outbox
    FOR EACH ROW EXECUTE FUNCTION notice_outbox_refs_fixed();

-- The other side: deleting notices or returnees that outbox rows name.
CREATE FUNCTION notice_outbox_parent_lock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('remigate.notice_outbox'),
                                  hashtext('refs'));
    RETURN NULL;
END
$$;

CREATE FUNCTION notice_outbox_parent_gone() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_bad bigint;
BEGIN
    IF TG_TABLE_NAME = 'notices' THEN
        SELECT o.notice_id INTO v_bad FROM notice_outbox o
         WHERE o.notice_id IN (SELECT id FROM parent_old) LIMIT 1;
    ELSE
        SELECT o.returnee_id INTO v_bad FROM notice_outbox o
         WHERE o.returnee_id IN (SELECT id FROM parent_old) LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION '%: % % is still named by notice_outbox',
            TG_TABLE_NAME, TG_TABLE_NAME, v_bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION notice_outbox_parent_id() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.id <> OLD.id AND EXISTS (
           SELECT 1 FROM notice_outbox o
            WHERE CASE WHEN TG_TABLE_NAME = 'notices' THEN o.notice_id
                       ELSE o.returnee_id END = OLD.id) THEN
        RAISE EXCEPTION '%: % % is still named by notice_outbox',
            TG_TABLE_NAME, TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION notice_outbox_parent_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM notice_outbox) THEN
        RAISE EXCEPTION '%: notice_outbox still names its rows (empty it first)',
            TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER notices_outbox_lock BEFORE DELETE ON notices
    FOR EACH STATEMENT EXECUTE FUNCTION notice_outbox_parent_lock();
CREATE TRIGGER notices_outbox_gone AFTER DELETE ON notices
    REFERENCING OLD TABLE AS parent_old
    FOR EACH STATEMENT EXECUTE FUNCTION notice_outbox_parent_gone();
CREATE TRIGGER notices_outbox_id BEFORE UPDATE OF id ON notices
    FOR EACH ROW EXECUTE FUNCTION notice_outbox_parent_id();
CREATE TRIGGER notices_outbox_truncate BEFORE TRUNCATE ON notices
    FOR EACH STATEMENT EXECUTE FUNCTION notice_outbox_parent_truncate();
CREATE TRIGGER returnees_outbox_lock BEFORE DELETE ON returnees
    FOR EACH STATEMENT EXECUTE FUNCTION notice_outbox_parent_lock();
CREATE TRIGGER returnees_outbox_gone AFTER DELETE ON returnees
    REFERENCING OLD TABLE AS parent_old
    FOR EACH STATEMENT EXECUTE FUNCTION notice_outbox_parent_gone();
CREATE TRIGGER returnees_outbox_id BEFORE UPDATE OF id ON returnees
    FOR EACH ROW EXECUTE FUNCTION notice_outbox_parent_id();
CREATE TRIGGER returnees_outbox_truncate BEFORE TRUNCATE ON returnees
    FOR EACH STATEMENT EXECUTE FUNCTION notice_outbox_parent_truncate();

-- The SELECT of notice p_notice's audience at p_at, as text: columns
-- returnee_id, msisdn, district, lang, skip (notice_audience()'s), the
-- notice's criteria as quoted constants.  A notice that does not exist
-- has no one.  Age is the year in Dhaka minus the birth year; an
-- education minimum takes the codes ranked at or above it (an unknown
-- code has no rank and never matches).
CREATE FUNCTION notice_audience_sql(p_notice bigint, p_at timestamptz,
                                    p_cap_n int, p_cap_days int,
                                    p_cap_day int)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    n notices;
    v_yr int := extract(year FROM (p_at AT TIME ZONE 'UTC')
                                  + interval '6 hours')::int;
    v_at text := quote_literal(p_at) || '::timestamptz';
    w text;
BEGIN
    SELECT * INTO n FROM notices WHERE id = p_notice;
    IF NOT FOUND THEN
        RETURN 'SELECT NULL::bigint AS returnee_id, NULL::text AS msisdn,'
               ' NULL::text AS district, NULL::text AS lang,'
               ' NULL::text AS skip WHERE false';
    END IF;
    w := format('r.status = ANY (%L::text[])', n.statuses);
    IF cardinality(n.districts) > 0 THEN
        w := w || format(' AND r.district = ANY (%L::text[])', n.districts);
    END IF;
    IF cardinality(n.sexes) > 0 THEN
        w := w || format(' AND r.sex = ANY (%L::text[])', n.sexes);
    END IF;
    IF n.age_min IS NOT NULL THEN
        w := w || format(' AND r.birth_year <= %s', v_yr - n.age_min);
    END IF;
    IF n.age_max IS NOT NULL THEN
        w := w || format(' AND r.birth_year >= %s', v_yr - n.age_max);
    END IF;
    IF cardinality(n.countries) > 0 THEN
        w := w || format(' AND r.country = ANY (%L::text[])', n.countries);
    END IF;
    IF cardinality(n.skills) > 0 THEN
        w := w || format(' AND r.skills && %L::text[]', n.skills);
    END IF;
    IF n.education_min IS NOT NULL THEN
        w := w || format(' AND r.education = ANY (%L::text[])',
            (SELECT coalesce(array_agg(e.code), '{}')
               FROM unnest(ARRAY['none', 'primary', 'jsc', 'ssc', 'hsc',
                                 'diploma', 'bachelor']) e(code)
              WHERE remigate_education_rank(e.code)
                    >= remigate_education_rank(n.education_min)));
    END IF;
    IF n.return_year_min IS NOT NULL THEN
        w := w || format(' AND r.return_year >= %s', n.return_year_min);
    END IF;
    IF n.return_year_max IS NOT NULL THEN
        w := w || format(' AND r.return_year <= %s', n.return_year_max);
    END IF;
    IF cardinality(n.needs) > 0 THEN
        w := w || format(' AND r.need = ANY (%L::text[])', n.needs);
    END IF;
    IF cardinality(n.langs) > 0 THEN
        w := w || format(' AND coalesce(r.lang, ''bn'') = ANY (%L::text[])',
                         n.langs);
    END IF;
    -- left out: opted out first, then recently notified (this notice or
    -- its programme within recent_days), then over the cap (cap_n in
    -- cap_days days, or least(cap_day, 3) in 24 h); the outbox rows that
    -- count are the ones that may have reached the phone
    RETURN format($q$
SELECT r.id AS returnee_id, r.msisdn, r.district, %1$s AS lang, x.skip
  FROM returnees r
  LEFT JOIN (
    SELECT coalesce(o.msisdn, s.msisdn) AS msisdn,
           CASE WHEN o.msisdn IS NOT NULL THEN 'opted_out'
                WHEN s.recent THEN 'recent'
                ELSE 'freq_cap' END AS skip
      FROM (SELECT msisdn FROM sms_optout WHERE opted_out) o
      FULL JOIN (
        SELECT x.msisdn,
               bool_or((x.notice_id = %2$s OR xn.programme_id = %3$s)
                       AND x.claimed_at > %4$s - make_interval(days => %5$s))
                   AS recent,
               count(*) FILTER (WHERE x.claimed_at > %4$s
                                - make_interval(days => %6$s)) AS in_period,
               count(*) FILTER (WHERE x.claimed_at > %4$s
                                - interval '24 hours') AS in_day
          FROM notice_outbox x JOIN notices xn ON xn.id = x.notice_id
         WHERE x.claimed_at > %4$s - make_interval(days => %7$s)
           AND x.state NOT IN ('queued', 'skipped', 'failed', 'rejected',
                               'cancelled')
         GROUP BY x.msisdn) s ON s.msisdn = o.msisdn
     WHERE o.msisdn IS NOT NULL OR s.recent OR s.in_period >= %8$s
        OR s.in_day >= %9$s) x ON x.msisdn = r.msisdn
 WHERE %10$s$q$,
        CASE WHEN n.text_en IS NOT NULL
             THEN 'CASE WHEN r.lang = ''en'' THEN ''en'' ELSE ''bn'' END'
             ELSE '''bn''::text' END,
        n.id, n.programme_id, v_at, n.recent_days, p_cap_days,
        greatest(p_cap_days, n.recent_days, 1), p_cap_n,
        least(greatest(p_cap_day, 1), 3), w);
END
$$;

-- Who a notice goes to at p_at: as 010, one row per returnee who matches,
-- skip saying why one is left out (opted_out, recent, freq_cap) or NULL.
CREATE OR REPLACE FUNCTION notice_audience(p_notice bigint,
                                           p_at timestamptz, p_cap_n int,
                                           p_cap_days int, p_cap_day int)
RETURNS TABLE (returnee_id bigint, msisdn text, district text, lang text,
               skip text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE notice_audience_sql(p_notice, p_at, p_cap_n,
                                             p_cap_days, p_cap_day);
END
$$;

-- What composing shows: eligible, by language, skipped by reason, and
-- eligible by district with counts under 5 as "<5" (a district with no
-- one eligible is absent), as one JSON object.  NULL district: "unknown".
-- For the console's admins and officers only, and a notice the caller may
-- see (remigate_notice_visible(): an officer's notice names only their
-- districts, so its audience is inside their scope).  Definer's rights,
-- so that an officer's preview counts the notices of other districts and
-- countrywide ones that reached a number, as the freeze an admin approves
-- will: under the console's row-level security an officer saw only the
-- outbox of their own notices and could be shown people the cap leaves
-- out.
CREATE FUNCTION notice_preview(p_notice bigint, p_at timestamptz,
                               p_cap_n int, p_cap_days int, p_cap_day int)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v jsonb;
    v_districts text[];
BEGIN
    IF coalesce(current_setting('remigate.role', true), '')
       NOT IN ('admin', 'officer') THEN
        RAISE EXCEPTION 'notice_preview: not an admin or officer'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT districts INTO v_districts FROM notices WHERE id = p_notice;
    IF NOT FOUND OR NOT remigate_notice_visible(v_districts) THEN
        RAISE EXCEPTION 'notice_preview: no notice % for this officer',
            p_notice USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format($q$
WITH d AS (
    SELECT a.district,
           count(*) FILTER (WHERE a.skip IS NULL AND a.lang = 'bn') AS bn,
           count(*) FILTER (WHERE a.skip IS NULL AND a.lang = 'en') AS en,
           count(*) FILTER (WHERE a.skip = 'opted_out') AS opted_out,
           count(*) FILTER (WHERE a.skip = 'recent') AS recent,
           count(*) FILTER (WHERE a.skip = 'freq_cap') AS freq_cap
      FROM (%s) a GROUP BY a.district)
SELECT jsonb_build_object(
    'eligible', (SELECT coalesce(sum(bn + en), 0)::bigint FROM d),
    'bn', (SELECT coalesce(sum(bn), 0)::bigint FROM d),
    'en', (SELECT coalesce(sum(en), 0)::bigint FROM d),
    'skipped', (SELECT coalesce(jsonb_object_agg(k, c), '{}') FROM
                (SELECT k, sum(c)::bigint AS c FROM d,
                        LATERAL (VALUES ('opted_out', opted_out),
                                        ('recent', recent),
                                        ('freq_cap', freq_cap)) v(k, c)
                  GROUP BY k HAVING sum(c) > 0) s),
    'by_district', (SELECT coalesce(jsonb_object_agg(
                        coalesce(district, 'unknown'),
                        CASE WHEN bn + en < 5 THEN to_jsonb('<5'::text)
                             ELSE to_jsonb(bn + en) END), '{}')
                      FROM d WHERE bn + en > 0))$q$,
        notice_audience_sql(p_notice, p_at, p_cap_n, p_cap_days, p_cap_day))
    INTO v;
    RETURN v;
END
$$;
REVOKE ALL ON FUNCTION notice_preview(bigint, timestamptz, int, int, int)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION notice_preview(bigint, timestamptz, int, int, int)
    TO remigate_console;

-- Freeze the audience into the outbox, as 008: everyone the audience
-- finds, 'queued' or 'skipped' with the reason; rows already there stay
-- (run again, it adds only the newly eligible).  Returns the number of
-- rows queued by this call.  The first freeze of a notice is a plain
-- INSERT: ON CONFLICT checked every unique index of every row before
-- inserting it, 40 % of the time of a million rows; a notice's rows are
-- written by its approval only, once (the approval's UPDATE ... WHERE
-- state = 'submitted' lets one transaction through), and should two
-- freezes of one notice ever cross, the unique constraints fail the
-- second rather than queue anyone twice.
CREATE OR REPLACE FUNCTION notice_freeze(p_notice bigint, p_at timestamptz,
                                         p_cap_n int, p_cap_days int,
                                         p_cap_day int)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    v_had boolean;
    v_all bigint;
    v_n int;
BEGIN
    v_had := EXISTS (SELECT 1 FROM notice_outbox WHERE notice_id = p_notice);
    EXECUTE format($q$
WITH ins AS (
    INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, district,
                               lang, state, reason, final_at)
    SELECT %1$s, a.returnee_id, a.msisdn, a.district, a.lang,
           CASE WHEN a.skip IS NULL THEN 'queued' ELSE 'skipped' END,
           a.skip, CASE WHEN a.skip IS NULL THEN NULL ELSE %2$L::timestamptz
                   END
      FROM (%3$s) a
    %4$s
    RETURNING state)
SELECT count(*), count(*) FILTER (WHERE state = 'queued') FROM ins$q$,
        p_notice, p_at,
        notice_audience_sql(p_notice, p_at, p_cap_n, p_cap_days, p_cap_day),
        CASE WHEN v_had THEN 'ON CONFLICT DO NOTHING' ELSE '' END)
    INTO v_all, v_n;
    -- every row of the notice: the ones inserted now, plus, when it had
    -- some before, those
    UPDATE notices SET audience = CASE WHEN v_had
               THEN (SELECT count(*) FROM notice_outbox
                      WHERE notice_id = p_notice)
               ELSE v_all END
     WHERE id = p_notice;
    RETURN v_n;
END
$$;
