-- 021_stats_5m: what 020 still read slowly at 5,000,000 returnees
-- (bench/RESULTS.md, "Dashboard counts at 5,000,000 returnees"), from
-- smaller parts of the summary.
--
-- (1) Kinds without status and sex ("flat": both stored as '').  The
-- funnel's median days reads neither, and 020's "days" kind kept them, so
-- the whole country's funnel grouped ~920,000 rows at 5,000,000.  "days"
-- is now flat (district, month, bucket of 0.1 day), and a second flat
-- kind "days_whole" counts the decisions per whole day (the floor of the
-- rounded bucket, so it is monotone in it too): the median's whole day is
-- found from the few rows of days_whole, and only that day's ten buckets
-- of 0.1 are read from "days", for every district in one query (an
-- index-only scan of stats_counts_days_idx, partial on the funnel's
-- kinds), then the two middle decisions from returnees when they
-- straddle two buckets, as 020 did.  Both are
-- kept by day too, so the days a period cuts off a month are read from
-- those, not from returnees.
--
-- (2) Day-grain kinds ("daily": mon holds the Dhaka day, not the first
-- of the month) for the one-way tables and destination x skill, for the
-- whole country: a period that cuts months reads its whole months from
-- the monthly kinds and the cut days from these, instead of the cut days'
-- returnees (1.2-1.6 s at 5,000,000, 41 days of the busiest months with
-- skills unnested).  Per district (an officer, a district filter, the
-- district dimension) and the other pairs, the cut days still come from
-- returnees: a day grain per district would make the summary about as
-- large as the facts.  Another daily kind is added as 020 said for pairs
-- (insert it, remigate_stats_retrack(), remigate_stats_rebuild()).
--
-- (3) Flat twins, per district only ("nation" false: no '*' rows), of
-- the kinds kept per district (none, the ten one-way tables, destination
-- x skill, reason x need): a view per district with neither a status nor
-- a sex filter nor those dimensions (an officer's destination x skill,
-- district x need) groups these instead of 4 statuses x 4 sexes of rows.
-- The funnel's kinds are per district only as well (it never read '*').
--
-- (4) The indicator destination x reason x year: its JSON arrays are
-- summed per array first and taken apart once per distinct array, not
-- once per summary row (a few thousand arrays, not 115,802 rows).
--
-- The triggers write about 28 more facts per registration (12 daily, 13
-- flat, days_whole, the funnel's two by day, less the '*' days); what
-- that costs is in
-- bench/RESULTS.md.  The numbers are the same as 011/012/019's scans
-- either way (tests/integration/test_stats_summary.sh, periods cutting
-- months at both ends included).

ALTER TABLE stats_kinds
    ADD COLUMN flat boolean NOT NULL DEFAULT false,   -- status, sex ''
    ADD COLUMN daily boolean NOT NULL DEFAULT false,  -- mon: the day
    ADD COLUMN nation boolean NOT NULL DEFAULT true;  -- '*' rows kept
ALTER TABLE stats_kinds DROP CONSTRAINT stats_kinds_da_db_key;
ALTER TABLE stats_kinds ADD CONSTRAINT stats_kinds_da_db_daily_flat_key
    UNIQUE (da, db, daily, flat);
ALTER TABLE stats_kinds ADD CHECK (dist OR nation);

-- the funnel's kinds: per district only, flat
UPDATE stats_kinds SET flat = true, nation = false WHERE da = 'days';
INSERT INTO stats_kinds (id, da, db, dist, flat, nation)
VALUES ((SELECT max(id) + 1 FROM stats_kinds), 'days_whole', '', true, true,
        false);
-- flat twins, per district only, of the kinds read per district
INSERT INTO stats_kinds (id, da, db, dist, flat, nation)
SELECT (SELECT max(id) FROM stats_kinds)
       + row_number() OVER (ORDER BY k.id), k.da, k.db, true, true, false
FROM stats_kinds k
WHERE k.dist AND NOT k.flat AND k.da <> 'indicator_returns';
-- the funnel's by day, per district
INSERT INTO stats_kinds (id, da, db, dist, flat, nation, daily)
SELECT (SELECT max(id) FROM stats_kinds) + o, d.da, '', true, true, false,
       true
FROM unnest(ARRAY['days', 'days_whole']) WITH ORDINALITY d(da, o);
-- the whole country's day grain
INSERT INTO stats_kinds (id, da, db, dist, daily)
SELECT (SELECT max(id) FROM stats_kinds) + o, d.da, d.db, false, true
FROM unnest(ARRAY['', 'division', 'age_band', 'education', 'country',
                  'skill', 'reason', 'need', 'return_year', 'channel',
                  'week', 'skill'],
            ARRAY['', '', '', '', '', '', '', '', '', '', '', 'country'])
     WITH ORDINALITY d(da, db, o);

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
        WHEN 'days_whole' THEN
            'CASE WHEN r.status IN (''verified'', ''rejected'') THEN'
            ' floor(round(remigate_stats_days_of(r.status_at, r.created_at)'
            '::numeric, 1))::text ELSE '''' END'
        WHEN 'indicator_returns' THEN
            'CASE WHEN r.status = ''verified'' THEN jsonb_build_array('
            'r.country, r.reason, r.return_year)::text ELSE '''' END'
        ELSE format('coalesce(r.%I, ''unknown'')', p_dim)
    END
$$;

-- The triggers' facts of the rows of transition table p_src as SQL of
-- (kind, district, mon, status, sex, a, b, n, p): one row per returnee,
-- kind and level, each kind with its own grain (month or day) and its
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
        mon := CASE WHEN k.daily THEN 't.day' ELSE 't.mon' END;
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
-- NOTICE after each kind), each kind at its grain, flat or not.
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
              AND b.da = k.da AND b.db = k.db AND b.daily = k.daily;
        IF base IS NOT NULL THEN
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
SELECT remigate_stats_rebuild();

-- 015's remigate_stats_core (its contract), reading the cut days of a
-- period from the daily kinds where the whole country is asked.
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
        IF NOT per_district THEN
            SELECT k.id INTO dkind FROM stats_kinds k
                WHERE k.da = ka AND k.db = kb AND k.daily AND NOT k.flat;
        END IF;
    ELSE
        lo := 'infinity';       -- all of it from returnees
        hi := 'infinity';
    END IF;
    r1 := least(lo, e);
    r2 := greatest(hi, lo, f);

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
        -- the cut days, whole country, from the daily kind (each range
        -- its own condition, so each is a range of the key)
        FOREACH d IN ARRAY ARRAY['stats_counts', 'stats_delta'] LOOP
            src := coalesce(src || ' UNION ALL ', '') || format(
                'SELECT c.district, c.status, c.sex, c.a, c.b, c.n, c.p'
                ' FROM %s c'
                ' WHERE c.kind = $12 AND c.district = ''*'''
                '  AND c.mon >= $8 AND c.mon < $9'
                '  AND ($4::text IS NULL OR c.status = $4)'
                '  AND ($6::text IS NULL OR c.sex = $6)'
                ' UNION ALL '
                'SELECT c.district, c.status, c.sex, c.a, c.b, c.n, c.p'
                ' FROM %s c'
                ' WHERE c.kind = $12 AND c.district = ''*'''
                '  AND c.mon >= $10 AND c.mon < $11'
                '  AND ($4::text IS NULL OR c.status = $4)'
                '  AND ($6::text IS NULL OR c.sex = $6)', d, d);
        END LOOP;
    ELSIF f < r1 OR r2 < e THEN
        src := coalesce(src || ' UNION ALL ', '') || format(
            'SELECT coalesce(r.district, '''') AS district, r.status,'
            ' coalesce(r.sex, '''') AS sex, %s AS a, %s AS b,'
            ' %s::bigint AS n, 1::bigint AS p FROM returnees r %s'
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
        USING kind, lo, hi, p_status, p_district, p_sex, p_scope, f, r1, r2,
              e, dkind;
END
$$;
REVOKE ALL ON FUNCTION remigate_stats_core(text, text, text, text, text,
    date, date, text[]) FROM PUBLIC;

-- 012's remigate_stats_days(), the same arguments, checks and rows: per
-- district, the whole day of the two middle decisions from "days_whole",
-- then only those days' buckets of 0.1 from "days" (one query for every
-- district), then (only when the two straddle two buckets) their exact
-- values from returnees, as 020.  Whole months from the monthly kinds,
-- the days a period cuts off a month from the daily ones.  The kinds are
-- written into the SQL as constants: the indexes on them are partial.
CREATE OR REPLACE FUNCTION remigate_stats_days(p_district text, p_from date,
                                               p_to date)
RETURNS TABLE (district text, decided bigint, median_days numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
SET jit = off AS $$
DECLARE
    who text := coalesce(current_setting('remigate.role', true), '');
    scope text[] := CASE WHEN who = 'officer'
                         THEN remigate_scope_districts() END;
    wkind smallint := (SELECT k.id FROM stats_kinds k
                       WHERE k.da = 'days_whole' AND NOT k.daily);
    wdkind smallint := (SELECT k.id FROM stats_kinds k
                        WHERE k.da = 'days_whole' AND k.daily);
    tkind smallint := (SELECT k.id FROM stats_kinds k
                       WHERE k.da = 'days' AND NOT k.daily);
    tdkind smallint := (SELECT k.id FROM stats_kinds k
                        WHERE k.da = 'days' AND k.daily);
    f date := coalesce(p_from, '-infinity');
    e date := coalesce(p_to + 1, 'infinity');   -- the end, exclusive
    lo date;                    -- the months read from the monthly kinds:
    hi date;                    -- lo <= mon < hi
    r1 date;                    -- the days read from the daily kinds:
    r2 date;                    -- [f, r1) and [r2, e)
    x record;
    -- per district (in the order returned): its decisions, the whole
    -- days of its two middle ones and the decisions before those days
    ds text[] := '{}';
    cs bigint[] := '{}';
    was int[] := '{}';
    wbs int[] := '{}';
    sas bigint[] := '{}';
    sbs bigint[] := '{}';
    ia bigint;                  -- the middle decisions' ranks (0-based)
    ib bigint;
    wa int;
    wb int;
    sa bigint;
    sb bigint;
    ba numeric;                 -- and their buckets of 0.1 day
    bb numeric;
    va double precision;
    vb double precision;
    seen bigint;
    i int;
    -- the rows of one kind of the funnel's, months [$1, $2) and days
    -- [$3, $4) and [$5, $6), of the districts $7 (NULL: every one)
    part text := 'SELECT c.district AS d, c.a, c.n FROM %1$s c'
        ' WHERE c.kind = %2$s AND c.mon >= $1 AND c.mon < $2'
        '  AND ($7::text[] IS NULL OR c.district = ANY ($7))';
    dpart text := 'SELECT c.district AS d, c.a, c.n FROM %1$s c'
        ' WHERE c.kind = %2$s AND $3 < $4 AND c.mon >= $3 AND c.mon < $4'
        '  AND ($7::text[] IS NULL OR c.district = ANY ($7))'
        ' UNION ALL '
        'SELECT c.district AS d, c.a, c.n FROM %1$s c'
        ' WHERE c.kind = %2$s AND $5 < $6 AND c.mon >= $5 AND c.mon < $6'
        '  AND ($7::text[] IS NULL OR c.district = ANY ($7))';
    dists text[];
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
        lo := 'infinity';       -- all of it from the daily kinds
        hi := 'infinity';
    END IF;
    r1 := least(lo, e);
    r2 := greatest(hi, lo, f);
    dists := CASE WHEN p_district IS NOT NULL THEN ARRAY[p_district]
                  ELSE scope END;
    IF p_district IS NOT NULL AND scope IS NOT NULL
       AND NOT p_district = ANY (scope) THEN
        dists := '{}';
    END IF;

    -- the whole days, per district
    FOR x IN EXECUTE format(
        'WITH h AS (%s UNION ALL %s UNION ALL %s UNION ALL %s),'
        ' g AS (SELECT h.d, h.a::int AS w, sum(h.n)::bigint AS n FROM h'
        '       WHERE h.a <> '''' GROUP BY 1, 2 HAVING sum(h.n) <> 0)'
        ' SELECT g.d, array_agg(g.w ORDER BY g.w) AS ws,'
        '  array_agg(g.n ORDER BY g.w) AS ns, sum(g.n)::bigint AS c'
        ' FROM g GROUP BY g.d ORDER BY coalesce(nullif(g.d, ''''), ''unknown'')',
        format(part, 'stats_counts', wkind), format(dpart, 'stats_counts', wdkind),
        format(part, 'stats_delta', wkind), format(dpart, 'stats_delta', wdkind))
        USING lo, hi, f, r1, r2, e, dists
    LOOP
        -- percentile_cont(0.5): the value at rank (c - 1) / 2, between
        -- ranks ia and ib
        ia := (x.c - 1) / 2;
        ib := x.c / 2;
        seen := 0;
        wa := NULL;
        FOR i IN 1 .. cardinality(x.ws) LOOP
            IF wa IS NULL AND seen + x.ns[i] > ia THEN
                wa := x.ws[i];
                sa := seen;
            END IF;
            IF seen + x.ns[i] > ib THEN
                wb := x.ws[i];
                sb := seen;
                EXIT;
            END IF;
            seen := seen + x.ns[i];
        END LOOP;
        ds := ds || x.d;
        cs := cs || x.c;
        was := was || wa;
        wbs := wbs || wb;
        sas := sas || sa;
        sbs := sbs || sb;
    END LOOP;

    -- the buckets of 0.1 of those days, every district at once
    FOR x IN EXECUTE format(
        'WITH q AS (SELECT * FROM unnest($8::text[], $9::int[], $10::int[])'
        '           WITH ORDINALITY q(d, wa, wb, o)),'
        ' names AS (SELECT DISTINCT q.d, round(w.w + t.k / 10.0, 1)::text AS a'
        '           FROM q CROSS JOIN LATERAL unnest(ARRAY[q.wa, q.wb]) w(w)'
        '           CROSS JOIN generate_series(0, 9) t(k)),'
        ' h AS (SELECT c.district AS d, c.a, c.n FROM names'
        '       JOIN stats_counts c ON c.kind = %1$s AND c.district = names.d'
        '        AND c.a = names.a AND c.mon >= $1 AND c.mon < $2'
        '       UNION ALL'
        '       SELECT c.district, c.a, c.n FROM names'
        '       JOIN stats_counts c ON ($3 < $4 OR $5 < $6)'
        '        AND c.kind = %2$s AND c.district = names.d'
        '        AND c.a = names.a AND ((c.mon >= $3 AND c.mon < $4)'
        '                               OR (c.mon >= $5 AND c.mon < $6))'
        '       UNION ALL'
        '       SELECT c.district, c.a, c.n FROM names'
        '       JOIN stats_delta c ON c.district = names.d AND c.a = names.a'
        '        AND ((c.kind = %1$s AND c.mon >= $1 AND c.mon < $2)'
        '             OR (c.kind = %2$s AND ((c.mon >= $3 AND c.mon < $4)'
        '                                    OR (c.mon >= $5 AND c.mon < $6))))),'
        ' g AS (SELECT h.d, h.a::numeric AS b, sum(h.n)::bigint AS n FROM h'
        '       GROUP BY 1, 2 HAVING sum(h.n) <> 0)'
        ' SELECT q.o, (SELECT array_agg(g.b ORDER BY g.b) FROM g WHERE g.d = q.d) AS bs,'
        '  (SELECT array_agg(g.n ORDER BY g.b) FROM g WHERE g.d = q.d) AS ns'
        ' FROM q ORDER BY q.o', tkind, tdkind)
        USING lo, hi, f, r1, r2, e, NULL::text[], ds, was, wbs
    LOOP
        ia := (cs[x.o] - 1) / 2;
        ib := cs[x.o] / 2;
        wa := was[x.o];
        wb := wbs[x.o];
        ba := NULL;
        bb := NULL;
        sa := sas[x.o];
        sb := sbs[x.o];
        FOR i IN 1 .. coalesce(cardinality(x.bs), 0) LOOP
            IF floor(x.bs[i]) = wa THEN
                IF ba IS NULL AND sa + x.ns[i] > ia THEN
                    ba := x.bs[i];
                END IF;
                sa := sa + x.ns[i];
            END IF;
            IF floor(x.bs[i]) = wb THEN
                IF bb IS NULL AND sb + x.ns[i] > ib THEN
                    bb := x.bs[i];
                END IF;
                sb := sb + x.ns[i];
            END IF;
        END LOOP;
        district := coalesce(nullif(ds[x.o], ''), 'unknown');
        decided := cs[x.o];
        IF ba = bb THEN
            median_days := ba;
        ELSE
            SELECT max(remigate_stats_days_of(r.status_at, r.created_at))
            INTO va FROM returnees r
            WHERE coalesce(r.district, '') = ds[x.o]
              AND r.status IN ('verified', 'rejected')
              AND remigate_stats_days_of(r.status_at, r.created_at)
                  BETWEEN (ba - 0.06)::float8 AND (ba + 0.06)::float8
              AND round(remigate_stats_days_of(r.status_at, r.created_at)
                        ::numeric, 1) = ba
              AND r.created_at >= (f::timestamp AT TIME ZONE 'Asia/Dhaka')
              AND r.created_at < (e::timestamp AT TIME ZONE 'Asia/Dhaka');
            SELECT min(remigate_stats_days_of(r.status_at, r.created_at))
            INTO vb FROM returnees r
            WHERE coalesce(r.district, '') = ds[x.o]
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

-- 020's remigate_indicator_returns(), the same arguments, checks and rows:
-- the summary's rows summed per JSON array (one array is one triple)
-- before each distinct array is taken apart.
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
