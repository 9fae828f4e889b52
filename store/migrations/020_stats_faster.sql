-- 020_stats_faster: what 015's summary still counted from returnees, from
-- the summary too (bench/RESULTS.md has the figures before and after).
--
-- (1) The pairs asked for one district.  015 kept two-way tables of two
-- value dimensions for the whole country only, so an officer's
-- destination x skill (the console's two-way view) or need x reason over
-- the largest district grouped a fifth of returnees (1.0-1.9 s at
-- 1,000,000).  Those kinds are now kept per district as well.  Keeping
-- every pair per district would make the summary about as large as the
-- facts themselves (45 pairs x every returnee), so only the pairs named
-- here are; another is added by setting its dist and running
-- remigate_stats_retrack() and remigate_stats_rebuild().
--
-- (2) The funnel's median days to a decision (012 sorted every decision:
-- 1.6-4.2 s at 1,000,000).  The summary now keeps, per district and
-- month of registration, how many decisions took each number of days
-- rounded as 012 shows it (a value dimension "days", one decimal, '' for
-- records not decided).  Since the rounding is monotone, the median's
-- rounded value is the bucket of the middle decision when their number
-- is odd, or when the two middle ones share a bucket; otherwise the two
-- exact values are read from returnees by an index (the largest of the
-- lower bucket, the smallest of the upper), and interpolated as
-- percentile_cont does.  The same numbers as 012 either way
-- (tests/integration/test_stats_summary.sh compares them).
--
-- (3) The indicator "returnees by destination x reason x year of return"
-- (019 grouped every verified returnee for it): a value dimension
-- "indicator_returns" holds the three values of a verified returnee as
-- one JSON array (NULL kept apart from any value; '' for the others),
-- kept per district, and remigate_indicator_returns() reads it as
-- remigate_stats() reads the other kinds.
--
-- (4) The rebuild writes each kind with its own INSERT ... SELECT ...
-- GROUP BY from an unlogged copy of the stored values (scanned in
-- parallel, unlike a temporary table, and not limited by temp_buffers),
-- and says how far it is (a NOTICE per kind, with its rows and seconds).

UPDATE stats_kinds SET dist = true
WHERE (da, db) IN (('skill', 'country'), ('reason', 'need'));
INSERT INTO stats_kinds (id, da, db, dist)
VALUES ((SELECT max(id) + 1 FROM stats_kinds), 'days', '', true);
INSERT INTO stats_kinds (id, da, db, dist)
VALUES ((SELECT max(id) + 1 FROM stats_kinds), 'indicator_returns', '', true);

-- The days from registration to the status of r, as 012's median reads
-- them (extract's numeric, then double precision).
CREATE FUNCTION remigate_stats_days_of(p_status_at timestamptz,
                                       p_created_at timestamptz)
RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT (extract(epoch FROM p_status_at - p_created_at) / 86400)::float8
$$;
-- (Anyone may call it: plain arithmetic, and the index below evaluates
-- it for whoever writes returnees.)

-- The two middle decisions of a district, when their buckets differ.
CREATE INDEX returnees_decided_days_idx ON returnees
    (coalesce(district, ''), remigate_stats_days_of(status_at, created_at),
     created_at)
    WHERE status IN ('verified', 'rejected');

CREATE OR REPLACE FUNCTION remigate_stats_val_sql(p_dim text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_dim
        WHEN '' THEN ''''''
        WHEN 'age_band' THEN 'coalesce(r.birth_year::text, ''unknown'')'
        WHEN 'return_year' THEN 'coalesce(r.return_year::text, ''unknown'')'
        WHEN 'week' THEN
            'to_char(r.created_at AT TIME ZONE ''Asia/Dhaka'', ''IYYY-"W"IW'')'
        WHEN 'skill' THEN 'sk.s'
        WHEN 'days' THEN
            'CASE WHEN r.status IN (''verified'', ''rejected'') THEN'
            ' round(remigate_stats_days_of(r.status_at, r.created_at)'
            '::numeric, 1)::text ELSE '''' END'
        WHEN 'indicator_returns' THEN
            'CASE WHEN r.status = ''verified'' THEN jsonb_build_array('
            'r.country, r.reason, r.return_year)::text ELSE '''' END'
        ELSE format('coalesce(r.%I, ''unknown'')', p_dim)
    END
$$;

-- remigate_stats_track(), the triggers' function, written again from the
-- kinds (as 015 wrote it): after a change of stats_kinds.
CREATE FUNCTION remigate_stats_retrack() RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $do$
DECLARE
    append text := 'INSERT INTO stats_delta (kind, district, mon, status,'
        ' sex, a, b, n, p)'
        ' SELECT kind, district, mon, status, sex, a, b, sum(n), sum(p)'
        ' FROM (%s) f GROUP BY 1, 2, 3, 4, 5, 6, 7'
        ' HAVING sum(n) <> 0 OR sum(p) <> 0';
    ins text := format(append, remigate_stats_facts_sql('new_rows', false));
    del text := format(append, format(
        'SELECT kind, district, mon, status, sex, a, b, -n AS n, -p AS p'
        ' FROM (%s) o', remigate_stats_facts_sql('old_rows', false)));
    upd text := format(append, format(
        '%s UNION ALL SELECT kind, district, mon, status, sex, a, b, -n, -p'
        ' FROM (%s) o', remigate_stats_facts_sql('new_rows', false),
        remigate_stats_facts_sql('old_rows', false)));
BEGIN
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION remigate_stats_track() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $b$
DECLARE
    rows bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        %s;
    ELSIF TG_OP = 'UPDATE' THEN
        %s;
    ELSE
        %s;
    END IF;
    GET DIAGNOSTICS rows = ROW_COUNT;
    IF rows > 0 AND nextval('stats_delta_seq') %% 64 = 0 THEN
        PERFORM remigate_stats_fold();
    END IF;
    RETURN NULL;
END
$b$$f$, ins, upd, del);
END
$do$;
REVOKE ALL ON FUNCTION remigate_stats_retrack() FROM PUBLIC;
SELECT remigate_stats_retrack();

-- stats_counts again from every returnee, kind by kind (015's contract:
-- blocks writes to returnees meanwhile; returns the rows written).  A
-- NOTICE after each kind says how far it is.
CREATE OR REPLACE FUNCTION remigate_stats_rebuild() RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp SET jit = off
SET work_mem = '256MB' SET maintenance_work_mem = '512MB' AS $$
DECLARE
    k record;
    rows bigint;
    total bigint := 0;
    kinds int := (SELECT count(*) FROM stats_kinds);
    done int := 0;
    t0 timestamptz := clock_timestamp();
    t timestamptz;
BEGIN
    LOCK TABLE returnees IN SHARE MODE;
    TRUNCATE stats_counts, stats_delta;
    -- the key's index built once at the end, not row by row
    ALTER TABLE stats_counts DROP CONSTRAINT stats_counts_pkey;
    -- every stored value once per returnee, not once per kind
    IF to_regclass('stats_rebuild_src') IS NOT NULL THEN
        DROP TABLE stats_rebuild_src;   -- a rebuild stopped half-way
    END IF;
    EXECUTE format('CREATE UNLOGGED TABLE stats_rebuild_src AS'
        ' SELECT coalesce(r.district, '''') AS district, %s AS mon,'
        ' r.status, coalesce(r.sex, '''') AS sex, %s, r.skills'
        ' FROM returnees r',
        'date_trunc(''month'', r.created_at AT TIME ZONE'
        ' ''Asia/Dhaka'')::date',
        (SELECT string_agg(remigate_stats_val_sql(d) || ' AS ' || d, ', ')
         FROM unnest(ARRAY['division', 'age_band', 'education', 'country',
                           'reason', 'need', 'return_year', 'channel',
                           'week', 'days', 'indicator_returns']) d));
    ANALYZE stats_rebuild_src;
    RAISE NOTICE 'remigate_stats_rebuild: values of % returnees copied (% s)',
        (SELECT reltuples::bigint FROM pg_class
         WHERE oid = 'stats_rebuild_src'::regclass),
        round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
    -- the kinds kept per district from the copy, then their country-wide
    -- rows from those; the others country-wide from the copy
    FOR k IN SELECT * FROM stats_kinds ORDER BY NOT dist, id LOOP
        t := clock_timestamp();
        EXECUTE format(
            'INSERT INTO stats_counts (kind, district, mon, status, sex, a,'
            ' b, n, p)'
            ' SELECT %s::smallint, %s, r.mon, r.status, r.sex, %s, %s, %s,'
            ' count(*) FROM stats_rebuild_src r %s'
            ' GROUP BY 2, 3, 4, 5, 6, 7',
            k.id, CASE WHEN k.dist THEN 'r.district' ELSE '''*''' END,
            CASE k.da WHEN 'skill' THEN 'sk.s' WHEN '' THEN ''''''
                 ELSE 'r.' || k.da END,
            CASE k.db WHEN '' THEN '''''' ELSE 'r.' || k.db END,
            CASE WHEN k.da = 'skill' THEN 'sum(sk.c)' ELSE 'count(*)' END,
            CASE WHEN k.da = 'skill' THEN remigate_stats_skills_sql() END);
        GET DIAGNOSTICS rows = ROW_COUNT;
        total := total + rows;
        IF k.dist THEN
            INSERT INTO stats_counts (kind, district, mon, status, sex, a, b,
                                      n, p)
            SELECT c.kind, '*', c.mon, c.status, c.sex, c.a, c.b, sum(c.n),
                   sum(c.p)
            FROM stats_counts c WHERE c.kind = k.id
            GROUP BY 1, 3, 4, 5, 6, 7;
            GET DIAGNOSTICS rows = ROW_COUNT;
            total := total + rows;
        END IF;
        done := done + 1;
        RAISE NOTICE 'remigate_stats_rebuild: kind % of % (%): % rows, % s',
            done, kinds, concat_ws(' x ', nullif(k.da, ''), nullif(k.db, ''),
                                   CASE WHEN k.dist THEN 'district' END),
            total, round(extract(epoch FROM clock_timestamp() - t)::numeric, 1);
    END LOOP;
    DROP TABLE stats_rebuild_src;
    t := clock_timestamp();
    ALTER TABLE stats_counts ADD CONSTRAINT stats_counts_pkey
        PRIMARY KEY (kind, district, mon, status, sex, a, b);
    RAISE NOTICE 'remigate_stats_rebuild: % rows, key built in % s, % s in all',
        total, round(extract(epoch FROM clock_timestamp() - t)::numeric, 1),
        round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
    RETURN total;
END
$$;
REVOKE ALL ON FUNCTION remigate_stats_rebuild() FROM PUBLIC;
SELECT remigate_stats_rebuild();

-- 012's remigate_stats_days(), the same arguments, checks and rows, from
-- the summary's "days" kind (see the top of this file).
CREATE OR REPLACE FUNCTION remigate_stats_days(p_district text, p_from date,
                                               p_to date)
RETURNS TABLE (district text, decided bigint, median_days numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
SET jit = off AS $$
DECLARE
    who text := coalesce(current_setting('remigate.role', true), '');
    scope text[] := CASE WHEN who = 'officer'
                         THEN remigate_scope_districts() END;
    dkind smallint := (SELECT k.id FROM stats_kinds k WHERE k.da = 'days');
    f date := coalesce(p_from, '-infinity');
    e date := coalesce(p_to + 1, 'infinity');   -- the end, exclusive
    lo date;                    -- the months read from stats_counts:
    hi date;                    -- lo <= mon < hi
    r1 date;                    -- the days read from returnees:
    r2 date;                    -- [f, r1) and [r2, e)
    x record;
    ia bigint;                  -- the middle decisions' ranks (0-based)
    ib bigint;
    ba numeric;                 -- and their buckets
    bb numeric;
    va double precision;
    vb double precision;
    seen bigint;
    i int;
BEGIN
    IF who NOT IN ('admin', 'officer', 'analyst') THEN
        RAISE EXCEPTION 'remigate_stats_days: no console role'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    lo := CASE WHEN f = '-infinity' THEN f
               WHEN f = date_trunc('month', f)::date THEN f
               ELSE (date_trunc('month', f) + interval '1 month')::date END;
    hi := CASE WHEN e = 'infinity' THEN e
               ELSE date_trunc('month', e)::date END;
    IF lo >= hi THEN
        lo := 'infinity';       -- all of it from returnees
        hi := 'infinity';
    END IF;
    r1 := least(lo, e);
    r2 := greatest(hi, lo, f);
    FOR x IN
        WITH h AS (
            SELECT c.district AS d, c.a, c.n FROM stats_counts c
            WHERE c.kind = dkind AND c.district <> '*'
              AND c.mon >= lo AND c.mon < hi
              AND c.status IN ('verified', 'rejected')
              AND (p_district IS NULL OR c.district = p_district)
              AND (scope IS NULL OR c.district = ANY (scope))
            UNION ALL
            SELECT c.district, c.a, c.n FROM stats_delta c
            WHERE c.kind = dkind AND c.district <> '*'
              AND c.mon >= lo AND c.mon < hi
              AND c.status IN ('verified', 'rejected')
              AND (p_district IS NULL OR c.district = p_district)
              AND (scope IS NULL OR c.district = ANY (scope))
            UNION ALL
            SELECT coalesce(r.district, ''), round(remigate_stats_days_of(
                       r.status_at, r.created_at)::numeric, 1)::text, 1
            FROM returnees r
            WHERE (f < r1 OR r2 < e)
              AND r.status IN ('verified', 'rejected')
              AND (p_district IS NULL OR r.district = p_district)
              AND (scope IS NULL OR r.district = ANY (scope))
              AND ((r.created_at >= (f::timestamp AT TIME ZONE 'Asia/Dhaka')
                    AND r.created_at < (r1::timestamp AT TIME ZONE 'Asia/Dhaka'))
                   OR (r.created_at >= (r2::timestamp AT TIME ZONE 'Asia/Dhaka')
                    AND r.created_at < (e::timestamp AT TIME ZONE 'Asia/Dhaka')))),
        g AS (SELECT h.d, h.a::numeric AS b, sum(h.n)::bigint AS n FROM h
              GROUP BY 1, 2 HAVING sum(h.n) <> 0)
        SELECT g.d, array_agg(g.b ORDER BY g.b) AS bs,
               array_agg(g.n ORDER BY g.b) AS ns, sum(g.n)::bigint AS c
        FROM g GROUP BY g.d
        ORDER BY coalesce(nullif(g.d, ''), 'unknown')
    LOOP
        -- percentile_cont(0.5): the value at rank (c - 1) / 2, between
        -- ranks ia and ib
        ia := (x.c - 1) / 2;
        ib := x.c / 2;
        seen := 0;
        ba := NULL;
        bb := NULL;
        FOR i IN 1 .. cardinality(x.bs) LOOP
            IF ba IS NULL AND seen + x.ns[i] > ia THEN ba := x.bs[i]; END IF;
            IF seen + x.ns[i] > ib THEN bb := x.bs[i]; EXIT; END IF;
            seen := seen + x.ns[i];
        END LOOP;
        district := coalesce(nullif(x.d, ''), 'unknown');
        decided := x.c;
        IF ba = bb THEN
            median_days := ba;
        ELSE
            SELECT max(remigate_stats_days_of(r.status_at, r.created_at))
            INTO va FROM returnees r
            WHERE coalesce(r.district, '') = x.d
              AND r.status IN ('verified', 'rejected')
              AND remigate_stats_days_of(r.status_at, r.created_at)
                  BETWEEN (ba - 0.06)::float8 AND (ba + 0.06)::float8
              AND round(remigate_stats_days_of(r.status_at, r.created_at)
                        ::numeric, 1) = ba
              AND r.created_at >= (f::timestamp AT TIME ZONE 'Asia/Dhaka')
              AND r.created_at < (e::timestamp AT TIME ZONE 'Asia/Dhaka');
            SELECT min(remigate_stats_days_of(r.status_at, r.created_at))
            INTO vb FROM returnees r
            WHERE coalesce(r.district, '') = x.d
              AND r.status IN ('verified', 'rejected')
              AND remigate_stats_days_of(r.status_at, r.created_at)
                  BETWEEN (bb - 0.06)::float8 AND (bb + 0.06)::float8
              AND round(remigate_stats_days_of(r.status_at, r.created_at)
                        ::numeric, 1) = bb
              AND r.created_at >= (f::timestamp AT TIME ZONE 'Asia/Dhaka')
              AND r.created_at < (e::timestamp AT TIME ZONE 'Asia/Dhaka');
            median_days := round((va + 0.5 * (vb - va))::numeric, 1);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- 019's remigate_indicator_returns(), the same arguments, checks and rows,
-- from the summary's "indicator_returns" kind.
CREATE OR REPLACE FUNCTION remigate_indicator_returns(p_district text,
                                                      p_sex text,
                                                      p_from date, p_to date,
                                                      p_k int)
RETURNS TABLE (country text, reason text, return_year text, n bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
SET jit = off AS $$
DECLARE
    who text := coalesce(current_setting('remigate.role', true), '');
    scope text[] := CASE WHEN who = 'officer'
                         THEN remigate_scope_districts() END;
    ikind smallint := (SELECT k.id FROM stats_kinds k
                       WHERE k.da = 'indicator_returns');
    -- the summary's rows read: one district's, the officer's, or the
    -- whole country's ('*')
    levels text[] := CASE WHEN p_district IS NOT NULL THEN ARRAY[p_district]
                          WHEN scope IS NOT NULL THEN scope
                          ELSE ARRAY['*'] END;
    f date := coalesce(p_from, '-infinity');
    e date := coalesce(p_to + 1, 'infinity');   -- the end, exclusive
    lo date;                    -- the months read from stats_counts:
    hi date;                    -- lo <= mon < hi
    r1 date;                    -- the days read from returnees:
    r2 date;                    -- [f, r1) and [r2, e)
    grand bigint := 0;
BEGIN
    IF who NOT IN ('admin', 'officer', 'analyst') THEN
        RAISE EXCEPTION 'remigate_indicator_returns: no console role'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF who = 'analyst' AND coalesce(p_k, 0) < 3 THEN
        RAISE EXCEPTION 'remigate_indicator_returns: k below 3 for an analyst'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    lo := CASE WHEN f = '-infinity' THEN f
               WHEN f = date_trunc('month', f)::date THEN f
               ELSE (date_trunc('month', f) + interval '1 month')::date END;
    hi := CASE WHEN e = 'infinity' THEN e
               ELSE date_trunc('month', e)::date END;
    IF lo >= hi THEN
        lo := 'infinity';       -- all of it from returnees
        hi := 'infinity';
    END IF;
    r1 := least(lo, e);
    r2 := greatest(hi, lo, f);
    FOR country, reason, return_year, n IN
        WITH h AS (
            SELECT c.a, c.n FROM stats_counts c
            WHERE c.kind = ikind AND c.district = ANY (levels)
              AND c.mon >= lo AND c.mon < hi AND c.status = 'verified'
              AND (p_sex IS NULL OR c.sex = p_sex)
              AND (scope IS NULL OR c.district = ANY (scope))
            UNION ALL
            SELECT c.a, c.n FROM stats_delta c
            WHERE c.kind = ikind AND c.district = ANY (levels)
              AND c.mon >= lo AND c.mon < hi AND c.status = 'verified'
              AND (p_sex IS NULL OR c.sex = p_sex)
              AND (scope IS NULL OR c.district = ANY (scope))
            UNION ALL
            SELECT jsonb_build_array(r.country, r.reason,
                                     r.return_year)::text, 1
            FROM returnees r
            WHERE (f < r1 OR r2 < e) AND r.status = 'verified'
              AND (p_district IS NULL OR r.district = p_district)
              AND (scope IS NULL OR r.district = ANY (scope))
              AND (p_sex IS NULL OR r.sex = p_sex)
              AND ((r.created_at >= (f::timestamp AT TIME ZONE 'Asia/Dhaka')
                    AND r.created_at < (r1::timestamp AT TIME ZONE 'Asia/Dhaka'))
                   OR (r.created_at >= (r2::timestamp AT TIME ZONE 'Asia/Dhaka')
                    AND r.created_at < (e::timestamp AT TIME ZONE 'Asia/Dhaka'))))
        SELECT h.a::jsonb ->> 0, h.a::jsonb ->> 1, h.a::jsonb ->> 2,
               sum(h.n)::bigint
        FROM h GROUP BY 1, 2, 3 HAVING sum(h.n) <> 0
        ORDER BY 3, 1, 2
    LOOP
        grand := grand + n;
        RETURN NEXT;
    END LOOP;
    IF who = 'analyst' AND grand BETWEEN 1 AND p_k - 1 THEN
        RAISE EXCEPTION 'remigate_indicator_returns: fewer than k people match'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'too_few';
    END IF;
END
$$;
