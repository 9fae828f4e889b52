-- 031_stats_pairs_day: what 030 still read slowly at 5,000,000 returnees
-- (bench/RESULTS.md, "Dashboard counts at 5,000,000 returnees, migration
-- 031").
--
-- (1) A two-way table of two value dimensions for the whole country over
-- a period that cuts months (age band x skill, education x skill, age
-- band x week, ... from 10 March to 20 July) read its whole months from
-- the summary and counted the days cut off them from returnees: 9 + 11
-- days of everyone, about 180,000 records, grouped (and their skills
-- unnested) on every call.  Every such pair now has a day grain for the
-- whole country (stats_kinds.daily, not per district), as destination x
-- skill has had since 021: the cut days are read from it, each end as the
-- days it keeps of its month or the whole month less the days it leaves
-- out (028), and no whole-country table counts returnees any more.  44
-- more facts per registration (one per pair at the country's level; the
-- eight skill pairs one per skill); their rows are summed here from
-- returnees, each pair in the key's order, not by a rebuild.  The
-- registrations wait meanwhile (SHARE lock on returnees).  Per district
-- (an officer, a district filter) a pair's cut days still come from
-- returnees, bounded by the district (030).
--
-- (2) The district dimension for the whole country (district x age band,
-- district x skill, ...) over such a period read its summary rows with
-- "district <> '*'", which no index serves: every row of the kind -- for
-- the day grain every day since the first registration -- was read to
-- keep the period's.  remigate_stats_core now reads those rows by the
-- key, one range of months or days per district that has rows of the
-- kind (found by a walk of the key: one probe per district); stats_delta,
-- small, is read as before.
--
-- The numbers are the same (tests/integration/test_stats_summary.sh
-- compares every table with 011's scan, and reads the whole country's
-- pairs over periods cutting months from the summary alone).

-- no registration between the triggers' new facts and the rows below
LOCK TABLE returnees IN SHARE MODE;
SET LOCAL work_mem = '256MB';
SET LOCAL jit = off;

-- every pair without a day grain for the whole country gets one (an owner
-- may have added some, as docs/dashboards.md says how: those are kept);
-- its rows from returnees: each stored value once per returnee, then each
-- pair grouped from that copy and written in the key's order
DO $$
DECLARE
    ids smallint[];
    k record;
BEGIN
    WITH n AS (
        INSERT INTO stats_kinds (id, da, db, dist, daily)
        SELECT (SELECT max(id) FROM stats_kinds)
               + row_number() OVER (ORDER BY m.id), m.da, m.db, false, true
        FROM stats_kinds m
        WHERE m.da <> '' AND m.db <> '' AND NOT m.daily AND NOT m.flat
          AND NOT m.whole
          AND NOT EXISTS (SELECT 1 FROM stats_kinds d
                          WHERE d.da = m.da AND d.db = m.db AND d.daily
                            AND NOT d.flat AND d.nation)
        RETURNING id)
    SELECT array_agg(id ORDER BY id) INTO ids FROM n;
    IF ids IS NULL THEN
        RETURN;
    END IF;
    PERFORM remigate_stats_retrack();
    EXECUTE format('CREATE TEMP TABLE stats_pair_day_src AS'
        ' SELECT (r.created_at AT TIME ZONE ''Asia/Dhaka'')::date AS day,'
        ' r.status, coalesce(r.sex, '''') AS sex, %s, r.skills'
        ' FROM returnees r',
        (SELECT string_agg(remigate_stats_val_sql(d) || ' AS ' || d, ', ')
         FROM unnest(ARRAY['division', 'age_band', 'education', 'country',
                           'reason', 'need', 'return_year', 'channel',
                           'week']) d));
    ANALYZE stats_pair_day_src;
    FOR k IN SELECT * FROM stats_kinds WHERE id = ANY (ids) ORDER BY id LOOP
        EXECUTE format(
            'INSERT INTO stats_counts (kind, district, mon, status, sex, a, b,'
            ' n, p)'
            ' SELECT %s, ''*'', r.day, r.status, r.sex, %s, %s, %s,'
            ' count(*) FROM stats_pair_day_src r %s GROUP BY 3, 4, 5, 6, 7'
            ' ORDER BY 3, 4, 5, 6, 7',
            k.id,
            CASE WHEN k.da = 'skill' THEN 'sk.s' ELSE 'r.' || k.da END,
            'r.' || k.db,
            CASE WHEN k.da = 'skill' THEN 'sum(sk.c)' ELSE 'count(*)' END,
            CASE WHEN k.da = 'skill' THEN remigate_stats_skills_sql() END);
    END LOOP;
    DROP TABLE stats_pair_day_src;
END
$$;

-- 028's remigate_stats_core (015's contract): the same reads, and for the
-- whole country's district dimension the summary's rows by the key (see
-- (2)).
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
    dl text[];                  -- the districts with rows of the kinds read
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
        -- by day: the flat twin per district where the monthly kind read
        -- is one, else the kind with status and sex
        SELECT k.id INTO dkind FROM stats_kinds k
            WHERE k.da = ka AND k.db = kb AND k.daily
              AND (NOT k.flat OR (fkind IS NOT NULL AND k.dist))
              AND (k.dist OR NOT per_district)
            ORDER BY k.flat DESC LIMIT 1;
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
    IF kind IS NOT NULL AND (kdist OR NOT per_district)
       AND (f < r1 OR r2 < e) THEN
        -- the cut days come from the daily kind or from returnees: of the
        -- months [ll, hh) with
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

    -- the whole country per district (the district dimension, no district
    -- filter, no officer): the districts that have rows of the kinds read,
    -- one probe of the key each, so that their rows are read by the key
    -- (district = ANY) and not every row of the kind ("district <> '*'")
    IF per_district AND p_district IS NULL AND p_scope IS NULL THEN
        WITH RECURSIVE w(k, d) AS (
            SELECT x.k, (SELECT c.district FROM stats_counts c
                         WHERE c.kind = x.k ORDER BY c.district LIMIT 1)
            FROM unnest(ARRAY[CASE WHEN lo < hi THEN kind END,
                              CASE WHEN f < r1 OR r2 < e THEN dkind END]) x(k)
            WHERE x.k IS NOT NULL
            UNION ALL
            SELECT w.k, (SELECT c.district FROM stats_counts c
                         WHERE c.kind = w.k AND c.district > w.d
                         ORDER BY c.district LIMIT 1)
            FROM w WHERE w.d IS NOT NULL)
        SELECT coalesce(array_agg(DISTINCT w.d), '{}') INTO dl FROM w
        WHERE w.d IS NOT NULL AND w.d <> '*';
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
                CASE WHEN NOT per_district THEN 'c.district = ''*'''
                     WHEN dl IS NOT NULL AND d = 'stats_counts'
                     THEN 'c.district = ANY ($15)'
                     ELSE 'c.district <> ''*''' END);
        END LOOP;
    END IF;
    IF (f < r1 OR r2 < e) AND dkind IS NOT NULL THEN
        -- the cut days from the daily kind, the whole country's or per
        -- district: [a1, b1) counted s1 times, [a2, b2) s2 times (each
        -- range its own condition, so each is a range of the key)
        FOREACH d IN ARRAY ARRAY['stats_counts', 'stats_delta'] LOOP
            src := coalesce(src || ' UNION ALL ', '') || format(
                'SELECT c.district, c.status, c.sex, c.a, c.b, c.n * $13,'
                ' c.p * $13'
                ' FROM %1$s c'
                ' WHERE c.kind = $12 AND %2$s'
                '  AND c.mon >= $8 AND c.mon < $9'
                '  AND ($4::text IS NULL OR c.status = $4)'
                '  AND ($5::text IS NULL OR c.district = $5)'
                '  AND ($6::text IS NULL OR c.sex = $6)'
                '  AND ($7::text[] IS NULL OR c.district = ANY ($7))'
                ' UNION ALL '
                'SELECT c.district, c.status, c.sex, c.a, c.b, c.n * $14,'
                ' c.p * $14'
                ' FROM %1$s c'
                ' WHERE c.kind = $12 AND %2$s'
                '  AND c.mon >= $10 AND c.mon < $11'
                '  AND ($4::text IS NULL OR c.status = $4)'
                '  AND ($5::text IS NULL OR c.district = $5)'
                '  AND ($6::text IS NULL OR c.sex = $6)'
                '  AND ($7::text[] IS NULL OR c.district = ANY ($7))', d,
                CASE WHEN NOT per_district THEN 'c.district = ''*'''
                     WHEN dl IS NOT NULL AND d = 'stats_counts'
                     THEN 'c.district = ANY ($15)'
                     ELSE 'c.district <> ''*''' END);
        END LOOP;
    ELSE
        -- each range of days its own query: [a1, b1) counted s1 times
        -- ($8, $9, $13), [a2, b2) s2 times ($10, $11, $14)
        FOREACH c IN ARRAY ARRAY[1, 2] LOOP
            CONTINUE WHEN (c = 1 AND a1 >= b1) OR (c = 2 AND a2 >= b2);
            src := coalesce(src || ' UNION ALL ', '') || format(
                'SELECT coalesce(r.district, '''') AS district, r.status,'
                ' coalesce(r.sex, '''') AS sex, %1$s AS a, %2$s AS b,'
                ' %3$s::bigint * $%6$s AS n, $%6$s::bigint AS p'
                ' FROM returnees r %4$s'
                ' WHERE ($4::text IS NULL OR r.status = $4)'
                '  AND ($5::text IS NULL OR r.district = $5)'
                '  AND ($6::text IS NULL OR r.sex = $6)'
                '  AND ($7::text[] IS NULL OR r.district = ANY ($7))'
                '  AND r.created_at >= ($%5$s::timestamp AT TIME ZONE'
                ' ''Asia/Dhaka'')'
                '  AND r.created_at < ($%7$s::timestamp AT TIME ZONE'
                ' ''Asia/Dhaka'')',
                remigate_stats_val_sql(ka), remigate_stats_val_sql(kb),
                CASE WHEN ka = 'skill' THEN 'sk.c' ELSE '1' END,
                CASE WHEN ka = 'skill' THEN remigate_stats_skills_sql() END,
                CASE c WHEN 1 THEN 8 ELSE 10 END,
                CASE c WHEN 1 THEN 13 ELSE 14 END,
                CASE c WHEN 1 THEN 9 ELSE 11 END);
        END LOOP;
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
              b2, dkind, s1, s2, dl;
END
$$;
REVOKE ALL ON FUNCTION remigate_stats_core(text, text, text, text, text,
    date, date, text[]) FROM PUBLIC;
