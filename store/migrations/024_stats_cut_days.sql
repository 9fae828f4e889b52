-- 024_stats_cut_days: what 021 still read slowly at 5,000,000 returnees
-- (bench/RESULTS.md, "Dashboard counts at 5,000,000 returnees,
-- migration 024").
--
-- (1) A period that cuts months, per district (an officer, a district
-- filter, the district dimension) or for a pair without a daily kind:
-- the days cut off a month still come from returnees, but each end of
-- the period is now read as the days it keeps of its month, or -- when
-- that is more -- as the whole month from the summary less the days it
-- leaves out, counted negative.  A period of 10 March to 20 July read 22
-- + 20 days of returnees; it now reads 9 + 11.  The numbers are the same
-- (tests/integration/test_stats_summary.sh compares every table with
-- 011's scan, periods cutting months at both ends included).
--
-- (2) The indicator destination x reason x year for an officer of the
-- largest districts (148 ms median, 205 ms p95 at 5,000,000: every month's
-- rows of its kind for those districts).  A "whole" kind (stats_kinds
-- .whole: mon is '-infinity', all time in one row per district, status,
-- sex and triple) is kept beside it, per district and for the country;
-- the indicator without a period reads that.  With a period it reads the
-- monthly kind as before.  One more fact per registration and level (2).
-- Its rows are summed here from the monthly kind's (with stats_delta's),
-- not by a rebuild (316 s at 5,000,000).
--
-- (3) The district dimension over a period that cuts months (district,
-- district x status, district x need for the whole country) reads every
-- district's cut days; (1) halves them, and the two kinds those views
-- read by day (none, need) are now kept per district as well as for the
-- country, so they read no returnees at all.  Two more facts per
-- registration; the other daily kinds stay whole-country only.

ALTER TABLE stats_kinds ADD COLUMN whole boolean NOT NULL DEFAULT false;
ALTER TABLE stats_kinds DROP CONSTRAINT stats_kinds_da_db_daily_flat_key;
ALTER TABLE stats_kinds ADD CONSTRAINT stats_kinds_da_db_grain_key
    UNIQUE (da, db, daily, flat, whole);
ALTER TABLE stats_kinds ADD CHECK (NOT (whole AND daily));

-- no registration between the triggers' new facts and the rows below
LOCK TABLE returnees IN SHARE MODE;

INSERT INTO stats_kinds (id, da, db, dist, whole)
VALUES ((SELECT max(id) + 1 FROM stats_kinds), 'indicator_returns', '', true,
        true);
-- the district dimension's kinds by day per district too (see (3))
UPDATE stats_kinds SET dist = true
WHERE daily AND NOT flat AND db = '' AND da IN ('', 'need');

-- The triggers' facts of the rows of transition table p_src as SQL of
-- (kind, district, mon, status, sex, a, b, n, p): one row per returnee,
-- kind and level, each kind with its own grain (month, day or, for a
-- "whole" kind, all time: mon '-infinity') and its
-- status and sex ('' when flat).  p_grouped (015's rebuild) is gone:
-- remigate_stats_rebuild() writes its own SQL since 020.
CREATE OR REPLACE FUNCTION remigate_stats_facts_sql(p_src text,
                                                    p_grouped boolean)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    k record;
    lvl text;
    mon text;
    st text;
    sx text;
    plain text[] := '{}';
    skill text[] := '{}';
BEGIN
    IF p_grouped THEN
        RAISE EXCEPTION 'remigate_stats_facts_sql: grouped facts unused'
            ' since 020';
    END IF;
    FOR k IN SELECT * FROM stats_kinds ORDER BY id LOOP
        mon := CASE WHEN k.daily THEN 't.day'
                    WHEN k.whole THEN '''-infinity''::date' ELSE 't.mon' END;
        st := CASE WHEN k.flat THEN '''''' ELSE 'r.status' END;
        sx := CASE WHEN k.flat THEN '''''' ELSE 'coalesce(r.sex, '''')' END;
        FOREACH lvl IN ARRAY
            CASE WHEN k.nation THEN ARRAY['''*'''] ELSE '{}' END
            || CASE WHEN k.dist THEN ARRAY['coalesce(r.district, '''')']
                    ELSE '{}' END
        LOOP
            IF k.da = 'skill' THEN
                skill := skill || format('(%s, %s, %s, %s, %s, %s)', k.id,
                    lvl, mon, st, sx, remigate_stats_val_sql(k.db));
            ELSE
                plain := plain || format('(%s, %s, %s, %s, %s, %s, %s)',
                    k.id, lvl, mon, st, sx, remigate_stats_val_sql(k.da),
                    remigate_stats_val_sql(k.db));
            END IF;
        END LOOP;
    END LOOP;
    -- the Dhaka day and month once per returnee, not once per kind
    RETURN format(
        'SELECT x.kind::smallint AS kind, x.district, x.mon, x.status,'
        ' x.sex, x.a, x.b, 1::bigint AS n, 1::bigint AS p'
        ' FROM %1$s r CROSS JOIN LATERAL (%5$s) t'
        ' CROSS JOIN LATERAL (VALUES %2$s)'
        ' x(kind, district, mon, status, sex, a, b)'
        ' UNION ALL '
        'SELECT x.kind::smallint, x.district, x.mon, x.status, x.sex, sk.s,'
        ' x.b, sk.c, 1'
        ' FROM %1$s r %3$s CROSS JOIN LATERAL (%5$s) t'
        ' CROSS JOIN LATERAL (VALUES %4$s)'
        ' x(kind, district, mon, status, sex, b)',
        p_src, array_to_string(plain, ', '), remigate_stats_skills_sql(),
        array_to_string(skill, ', '),
        'SELECT date_trunc(''month'', d::timestamp)::date AS mon, d AS day FROM (SELECT'
        ' (r.created_at AT TIME ZONE ''Asia/Dhaka'')::date AS d) d0');
END
$$;


SELECT remigate_stats_retrack();

-- stats_counts again from every returnee, kind by kind (015's contract:
-- blocks writes to returnees meanwhile; returns the rows written; a
-- NOTICE after each kind), each kind at its grain, flat or not; 021's
-- with the whole kinds (024) summed from their monthly kinds.
CREATE OR REPLACE FUNCTION remigate_stats_rebuild() RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp SET jit = off
SET work_mem = '256MB' SET maintenance_work_mem = '512MB' AS $$
DECLARE
    k record;
    base smallint;
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
    DROP INDEX IF EXISTS stats_counts_days_idx;
    DROP INDEX IF EXISTS stats_counts_days_day_idx;
    -- every stored value once per returnee, not once per kind
    IF to_regclass('stats_rebuild_src') IS NOT NULL THEN
        DROP TABLE stats_rebuild_src;   -- a rebuild stopped half-way
    END IF;
    EXECUTE format('CREATE UNLOGGED TABLE stats_rebuild_src AS'
        ' SELECT coalesce(r.district, '''') AS district, %s AS mon,'
        ' (r.created_at AT TIME ZONE ''Asia/Dhaka'')::date AS day,'
        ' r.status, coalesce(r.sex, '''') AS sex, %s, r.skills'
        ' FROM returnees r',
        'date_trunc(''month'', r.created_at AT TIME ZONE'
        ' ''Asia/Dhaka'')::date',
        (SELECT string_agg(remigate_stats_val_sql(d) || ' AS ' || d, ', ')
         FROM unnest(ARRAY['division', 'age_band', 'education', 'country',
                           'reason', 'need', 'return_year', 'channel',
                           'week', 'days', 'days_whole',
                           'indicator_returns']) d));
    ANALYZE stats_rebuild_src;
    RAISE NOTICE 'remigate_stats_rebuild: values of % returnees copied (% s)',
        (SELECT reltuples::bigint FROM pg_class
         WHERE oid = 'stats_rebuild_src'::regclass),
        round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
    -- the kinds kept per district from the copy, then their country-wide
    -- rows from those; the others country-wide from the copy.  A flat
    -- twin is summed from its kind's rows per district, days_whole from
    -- days' (both written before them: lower ids).
    FOR k IN SELECT * FROM stats_kinds ORDER BY NOT dist, id LOOP
        t := clock_timestamp();
        SELECT b.id INTO base FROM stats_kinds b
            WHERE k.flat AND k.dist AND NOT b.flat AND b.dist
              AND b.da = k.da AND b.db = k.db AND b.daily = k.daily
              AND NOT b.whole AND NOT k.whole;
        IF k.whole THEN
            -- all time, summed from its monthly kind's rows per district
            -- (the country's from those below, as for the others)
            INSERT INTO stats_counts (kind, district, mon, status, sex, a, b,
                                      n, p)
            SELECT k.id, c.district, '-infinity', c.status, c.sex, c.a, c.b,
                   sum(c.n), sum(c.p)
            FROM stats_counts c JOIN stats_kinds m ON m.id = c.kind
            WHERE m.da = k.da AND m.db = k.db AND m.flat = k.flat
              AND NOT m.daily AND NOT m.whole
              AND c.district <> CASE WHEN k.dist THEN '*' ELSE '' END
            GROUP BY 2, 4, 5, 6, 7;
        ELSIF base IS NOT NULL THEN
            INSERT INTO stats_counts (kind, district, mon, status, sex, a, b,
                                      n, p)
            SELECT k.id, c.district, c.mon, '', '', c.a, c.b, sum(c.n),
                   sum(c.p)
            FROM stats_counts c WHERE c.kind = base AND c.district <> '*'
            GROUP BY 2, 3, 6, 7;
        ELSIF k.da = 'days_whole' THEN
            INSERT INTO stats_counts (kind, district, mon, status, sex, a, b,
                                      n, p)
            SELECT k.id, c.district, c.mon, '', '',
                   CASE WHEN c.a = '' THEN ''
                        ELSE floor(c.a::numeric)::text END AS w,
                   c.b, sum(c.n), sum(c.p)
            FROM stats_counts c JOIN stats_kinds d ON d.id = c.kind
            WHERE d.da = 'days' AND d.daily = k.daily AND c.district <> '*'
            GROUP BY 2, 3, 6, 7;
        ELSE
            EXECUTE format(
                'INSERT INTO stats_counts (kind, district, mon, status, sex, a,'
                ' b, n, p)'
                ' SELECT %s::smallint, %s, %s, %s, %s, %s, %s, %s,'
                ' count(*) FROM stats_rebuild_src r %s'
                ' GROUP BY 2, 3, 4, 5, 6, 7',
                k.id, CASE WHEN k.dist THEN 'r.district' ELSE '''*''' END,
                CASE WHEN k.daily THEN 'r.day' ELSE 'r.mon' END,
                CASE WHEN k.flat THEN '''''::text' ELSE 'r.status' END,
                CASE WHEN k.flat THEN '''''::text' ELSE 'r.sex' END,
                CASE k.da WHEN 'skill' THEN 'sk.s' WHEN '' THEN ''''''
                     ELSE 'r.' || k.da END,
                CASE k.db WHEN '' THEN '''''' ELSE 'r.' || k.db END,
                CASE WHEN k.da = 'skill' THEN 'sum(sk.c)' ELSE 'count(*)' END,
                CASE WHEN k.da = 'skill' THEN remigate_stats_skills_sql() END);
        END IF;
        GET DIAGNOSTICS rows = ROW_COUNT;
        total := total + rows;
        IF k.dist AND k.nation THEN
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
                                   CASE WHEN k.dist THEN 'district' END,
                                   CASE WHEN k.daily THEN 'day' END,
                                   CASE WHEN k.whole THEN 'all time' END,
                                   CASE WHEN k.flat THEN 'flat' END),
            total, round(extract(epoch FROM clock_timestamp() - t)::numeric, 1);
    END LOOP;
    DROP TABLE stats_rebuild_src;
    t := clock_timestamp();
    ALTER TABLE stats_counts ADD CONSTRAINT stats_counts_pkey
        PRIMARY KEY (kind, district, mon, status, sex, a, b);
    -- the funnel's: a district's buckets (and a kind's rows) without
    -- the table, and the whole days of a few days
    EXECUTE format('CREATE INDEX stats_counts_days_idx ON stats_counts'
                   ' (kind, district, a, mon) INCLUDE (n) WHERE kind IN (%s)',
                   (SELECT string_agg(x.id::text, ', ') FROM stats_kinds x
                    WHERE x.da IN ('days', 'days_whole')));
    EXECUTE format('CREATE INDEX stats_counts_days_day_idx ON stats_counts'
                   ' (kind, mon, district, a) INCLUDE (n) WHERE kind = %s',
                   (SELECT x.id FROM stats_kinds x
                    WHERE x.da = 'days_whole' AND x.daily));
    RAISE NOTICE 'remigate_stats_rebuild: % rows, keys built in % s, % s in all',
        total, round(extract(epoch FROM clock_timestamp() - t)::numeric, 1),
        round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
    RETURN total;
END
$$;
REVOKE ALL ON FUNCTION remigate_stats_rebuild() FROM PUBLIC;

-- those two kinds' rows per district, from returnees (their '*' rows
-- are there already)
DO $$
DECLARE
    k record;
BEGIN
    FOR k IN SELECT * FROM stats_kinds
             WHERE daily AND NOT flat AND db = '' AND da IN ('', 'need') LOOP
        EXECUTE format(
            'INSERT INTO stats_counts (kind, district, mon, status, sex, a, b,'
            ' n, p)'
            ' SELECT %s, coalesce(r.district, ''''),'
            ' (r.created_at AT TIME ZONE ''Asia/Dhaka'')::date, r.status,'
            ' coalesce(r.sex, ''''), %s, '''', count(*), count(*)'
            ' FROM returnees r GROUP BY 2, 3, 4, 5, 6',
            k.id, remigate_stats_val_sql(k.da));
    END LOOP;
END
$$;

-- the whole kind's rows from its monthly kind's, per district and '*'
INSERT INTO stats_counts (kind, district, mon, status, sex, a, b, n, p)
SELECT w.id, c.district, '-infinity', c.status, c.sex, c.a, c.b, sum(c.n),
       sum(c.p)
FROM (SELECT * FROM stats_counts UNION ALL SELECT * FROM stats_delta) c
JOIN stats_kinds m ON m.id = c.kind
JOIN stats_kinds w ON w.whole AND w.da = m.da AND w.db = m.db
                  AND w.flat = m.flat
WHERE NOT m.whole AND NOT m.daily
GROUP BY 1, 2, 4, 5, 6, 7
HAVING sum(c.n) <> 0 OR sum(c.p) <> 0;

-- 021's remigate_stats_core (015's contract): where the days a period
-- cuts off a month come from returnees (per district, or a pair without
-- a daily kind), each end of the period is read either as the days it
-- keeps of its month or, when those are more, as the whole month from
-- the summary less the days it leaves out (counted negative): at most
-- about half a month of returnees per end instead of nearly a whole one.
CREATE OR REPLACE FUNCTION remigate_stats_core(p_dim1 text, p_dim2 text,
                                               p_status text, p_district text,
                                               p_sex text, p_from date,
                                               p_to date, p_scope text[])
RETURNS TABLE (g int, v1 text, v2 text, n bigint, persons bigint)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp SET jit = off AS $$
DECLARE
    vals text[] := ARRAY['division', 'age_band', 'education', 'country',
                         'skill', 'reason', 'need', 'return_year', 'channel',
                         'week'];
    keys text[] := ARRAY['district', 'status', 'sex'];
    d text;
    vd text[] := '{}';
    ka text := '';
    kb text := '';
    kind smallint;
    kdist boolean;
    dkind smallint;             -- the daily kind of (ka, kb), if any
    fkind smallint;             -- its flat twin per district, if any
    per_district boolean;
    f date := coalesce(p_from, '-infinity');
    e date := coalesce(p_to + 1, 'infinity');   -- the end, exclusive
    lo date;                    -- the months read from stats_counts:
    hi date;                    -- lo <= mon < hi
    r1 date;                    -- the cut days, from the daily kind or
    r2 date;                    -- returnees: [f, r1) and [r2, e)
    fm date;                    -- the months around the period's ends
    em date;
    best int;                   -- days of returnees read, the least so far
    c int;
    ll date;                    -- a candidate's months [ll, hh)
    hh date;
    a1 date;                    -- the days read: [a1, b1) counted s1
    b1 date;                    -- times, [a2, b2) counted s2 times (the
    a2 date;                    -- first wholly before the second)
    b2 date;
    s1 int := 1;
    s2 int := 1;
    m text;
    m1 text;
    m2 text;
    src text;
BEGIN
    FOREACH d IN ARRAY ARRAY[p_dim1, coalesce(p_dim2, '-')] LOOP
        IF d = ANY (vals) THEN
            vd := vd || d;
        ELSIF d <> '-' AND NOT d = ANY (keys) THEN
            RAISE EXCEPTION 'remigate_stats: unknown dimension'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF 'skill' = ANY (vd) THEN
        ka := 'skill';
        kb := coalesce((SELECT x FROM unnest(vd) x WHERE x <> 'skill'), '');
    ELSIF cardinality(vd) > 0 THEN
        SELECT x INTO ka FROM unnest(vd) x
            ORDER BY array_position(vals, x) LIMIT 1;
        kb := coalesce((SELECT x FROM unnest(vd) x WHERE x <> ka), '');
    END IF;
    SELECT k.id, k.dist INTO kind, kdist FROM stats_kinds k
        WHERE k.da = ka AND k.db = kb AND NOT k.daily AND NOT k.flat;
    per_district := p_scope IS NOT NULL OR p_district IS NOT NULL
                    OR 'district' IN (p_dim1, coalesce(p_dim2, ''));
    -- per district, without status and sex (no filter, no dimension):
    -- the flat twin's rows, a few times fewer
    IF per_district AND p_status IS NULL AND p_sex IS NULL
       AND NOT 'status' IN (p_dim1, coalesce(p_dim2, ''))
       AND NOT 'sex' IN (p_dim1, coalesce(p_dim2, '')) THEN
        SELECT k.id INTO fkind FROM stats_kinds k
            WHERE k.da = ka AND k.db = kb AND NOT k.daily AND k.flat
              AND k.dist;
        IF fkind IS NOT NULL THEN
            kind := fkind;
        END IF;
    END IF;
    IF kind IS NOT NULL AND (kdist OR NOT per_district) THEN
        lo := CASE WHEN f = '-infinity' THEN f
                   WHEN f = date_trunc('month', f)::date THEN f
                   ELSE (date_trunc('month', f) + interval '1 month')::date
              END;
        hi := CASE WHEN e = 'infinity' THEN e
                   ELSE date_trunc('month', e)::date END;
        SELECT k.id INTO dkind FROM stats_kinds k
            WHERE k.da = ka AND k.db = kb AND k.daily AND NOT k.flat
              AND (k.dist OR NOT per_district);
    ELSE
        lo := 'infinity';       -- all of it from returnees
        hi := 'infinity';
    END IF;
    r1 := least(lo, e);
    r2 := greatest(hi, lo, f);
    a1 := f;
    b1 := r1;
    a2 := r2;
    b2 := e;
    IF kind IS NOT NULL AND (kdist OR NOT per_district) AND dkind IS NULL
       AND (f < r1 OR r2 < e) THEN
        -- the cut days come from returnees: of the months [ll, hh) with
        -- ll the month start before or after f and hh the one before or
        -- after e, the one that reads the fewest days (the first of the
        -- least: the days the period keeps before the days it leaves out)
        fm := CASE WHEN f = '-infinity' THEN f
                   ELSE date_trunc('month', f)::date END;
        em := CASE WHEN e = 'infinity' OR e = date_trunc('month', e)::date
                   THEN e
                   ELSE (date_trunc('month', e) + interval '1 month')::date
              END;
        best := CASE WHEN lo < hi
                     THEN CASE WHEN f = '-infinity' THEN 0 ELSE lo - f END
                          + CASE WHEN e = 'infinity' THEN 0 ELSE e - hi END
                     ELSE e - f END;
        FOREACH ll IN ARRAY ARRAY[lo, fm] LOOP
            FOREACH hh IN ARRAY ARRAY[hi, em] LOOP
                CONTINUE WHEN (ll = lo AND hh = hi) OR ll >= hh;
                c := CASE WHEN f = '-infinity' THEN 0
                          ELSE abs(ll - f) END
                     + CASE WHEN e = 'infinity' THEN 0
                            ELSE abs(e - hh) END;
                IF c < best THEN
                    best := c;
                    lo := ll;
                    hi := hh;
                END IF;
            END LOOP;
        END LOOP;
        IF lo < hi THEN
            IF lo <= f THEN
                a1 := lo; b1 := f; s1 := -1;
            ELSE
                a1 := f; b1 := lo;
            END IF;
            IF hi >= e THEN
                a2 := e; b2 := hi; s2 := -1;
            ELSE
                a2 := hi; b2 := e;
            END IF;
        END IF;
    END IF;

    -- each dimension over the facts x(district, status, sex, a, b, n, p)
    FOREACH d IN ARRAY ARRAY[p_dim1, coalesce(p_dim2, '-')] LOOP
        m := CASE d
            WHEN '-' THEN '''-'''
            WHEN 'district' THEN
                'coalesce(nullif(x.district, ''''), ''unknown'')'
            WHEN 'sex' THEN 'coalesce(nullif(x.sex, ''''), ''unknown'')'
            WHEN 'status' THEN 'x.status'
            WHEN 'age_band' THEN replace(replace(
                'CASE WHEN x.@ = ''unknown'' THEN ''unknown'''
                ' WHEN Y - x.@::int < 18 THEN ''<18'''
                ' WHEN Y - x.@::int < 25 THEN ''18-24'''
                ' WHEN Y - x.@::int >= 60 THEN ''60+'''
                ' ELSE ((Y - x.@::int) / 5 * 5)::text || ''-'' ||'
                ' ((Y - x.@::int) / 5 * 5 + 4)::text END',
                '@', CASE WHEN ka = 'age_band' THEN 'a' ELSE 'b' END),
                'Y', extract(year FROM now())::int::text)
            WHEN ka THEN 'x.a'
            ELSE 'x.b'
        END;
        IF m1 IS NULL THEN m1 := m; ELSE m2 := m; END IF;
    END LOOP;

    IF lo < hi THEN
        FOREACH d IN ARRAY ARRAY['stats_counts', 'stats_delta'] LOOP
            src := coalesce(src || ' UNION ALL ', '') || format(
                'SELECT c.district, c.status, c.sex, c.a, c.b, c.n, c.p'
                ' FROM %s c'
                ' WHERE c.kind = $1 AND c.mon >= $2 AND c.mon < $3 AND %s'
                '  AND ($4::text IS NULL OR c.status = $4)'
                '  AND ($5::text IS NULL OR c.district = $5)'
                '  AND ($6::text IS NULL OR c.sex = $6)'
                '  AND ($7::text[] IS NULL OR c.district = ANY ($7))', d,
                CASE WHEN per_district THEN 'c.district <> ''*'''
                     ELSE 'c.district = ''*''' END);
        END LOOP;
    END IF;
    IF (f < r1 OR r2 < e) AND dkind IS NOT NULL THEN
        -- the cut days from the daily kind, the whole country's or per
        -- district (each range its own condition, so each is a range of
        -- the key)
        FOREACH d IN ARRAY ARRAY['stats_counts', 'stats_delta'] LOOP
            src := coalesce(src || ' UNION ALL ', '') || format(
                'SELECT c.district, c.status, c.sex, c.a, c.b, c.n, c.p'
                ' FROM %1$s c'
                ' WHERE c.kind = $12 AND %2$s'
                '  AND c.mon >= $8 AND c.mon < $9'
                '  AND ($4::text IS NULL OR c.status = $4)'
                '  AND ($5::text IS NULL OR c.district = $5)'
                '  AND ($6::text IS NULL OR c.sex = $6)'
                '  AND ($7::text[] IS NULL OR c.district = ANY ($7))'
                ' UNION ALL '
                'SELECT c.district, c.status, c.sex, c.a, c.b, c.n, c.p'
                ' FROM %1$s c'
                ' WHERE c.kind = $12 AND %2$s'
                '  AND c.mon >= $10 AND c.mon < $11'
                '  AND ($4::text IS NULL OR c.status = $4)'
                '  AND ($5::text IS NULL OR c.district = $5)'
                '  AND ($6::text IS NULL OR c.sex = $6)'
                '  AND ($7::text[] IS NULL OR c.district = ANY ($7))', d,
                CASE WHEN per_district THEN 'c.district <> ''*'''
                     ELSE 'c.district = ''*''' END);
        END LOOP;
    ELSIF a1 < b1 OR a2 < b2 THEN
        -- (a day of [a1, b1) is before b1, one of [a2, b2) is not)
        src := coalesce(src || ' UNION ALL ', '') || format(
            'SELECT coalesce(r.district, '''') AS district, r.status,'
            ' coalesce(r.sex, '''') AS sex, %s AS a, %s AS b,'
            ' %s::bigint * y.s AS n, y.s::bigint AS p FROM returnees r %s'
            ' CROSS JOIN LATERAL (SELECT CASE WHEN r.created_at <'
            ' ($9::timestamp AT TIME ZONE ''Asia/Dhaka'') THEN $13'
            ' ELSE $14 END AS s) y'
            ' WHERE ($4::text IS NULL OR r.status = $4)'
            '  AND ($5::text IS NULL OR r.district = $5)'
            '  AND ($6::text IS NULL OR r.sex = $6)'
            '  AND ($7::text[] IS NULL OR r.district = ANY ($7))'
            '  AND ((r.created_at >= ($8::timestamp AT TIME ZONE ''Asia/Dhaka'')'
            '   AND r.created_at < ($9::timestamp AT TIME ZONE ''Asia/Dhaka''))'
            '   OR (r.created_at >= ($10::timestamp AT TIME ZONE ''Asia/Dhaka'')'
            '   AND r.created_at < ($11::timestamp AT TIME ZONE ''Asia/Dhaka'')))',
            remigate_stats_val_sql(ka), remigate_stats_val_sql(kb),
            CASE WHEN ka = 'skill' THEN 'sk.c' ELSE '1' END,
            CASE WHEN ka = 'skill' THEN remigate_stats_skills_sql() END);
    END IF;
    IF src IS NULL THEN         -- a period that ends before it begins
        src := 'SELECT NULL::text AS district, NULL::text AS status,'
               ' NULL::text AS sex, NULL::text AS a, NULL::text AS b,'
               ' 0::bigint AS n, 0::bigint AS p WHERE false';
    END IF;

    RETURN QUERY EXECUTE format(
        'SELECT grouping(v1, v2)::int, v1, v2, coalesce(sum(n), 0)::bigint,'
        ' coalesce(sum(p), 0)::bigint'
        ' FROM (SELECT %s AS v1, %s AS v2, x.n, x.p FROM (%s) x) y'
        ' GROUP BY GROUPING SETS ((v1, v2), (v1), (v2), ())'
        ' HAVING sum(n) > 0 OR grouping(v1, v2) = 3'
        ' ORDER BY 1, 2, 3', m1, m2, src)
        USING kind, lo, hi, p_status, p_district, p_sex, p_scope, a1, b1, a2,
              b2, dkind, s1, s2;
END
$$;
REVOKE ALL ON FUNCTION remigate_stats_core(text, text, text, text, text,
    date, date, text[]) FROM PUBLIC;

-- 021's remigate_indicator_returns(), the same arguments, checks and
-- rows: without a period, the whole kind's rows (one per district,
-- status, sex and triple) instead of the monthly kind's.
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
                       WHERE k.da = 'indicator_returns' AND NOT k.whole);
    wkind smallint := (SELECT k.id FROM stats_kinds k
                       WHERE k.da = 'indicator_returns' AND k.whole);
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
    IF lo = '-infinity' AND hi = 'infinity' THEN
        ikind := wkind;         -- all time: its mon is '-infinity'
    END IF;
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
        SELECT s.a::jsonb ->> 0, s.a::jsonb ->> 1, s.a::jsonb ->> 2, s.n
        FROM (SELECT h.a, sum(h.n)::bigint AS n FROM h GROUP BY 1
              HAVING sum(h.n) <> 0) s
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
