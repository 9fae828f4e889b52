-- 015_stats_summary: the dashboards' counts from a summary kept up to
-- date by triggers, not from a scan of every returnee (011 grouped all of
-- returnees for each view: about 25 s at 5,000,000 rows; bench/RESULTS.md).
--
-- stats_counts holds, per kind of table, the number of returnees (n) and
-- of people behind them (p) for each
--     (month of registration, district, status, sex, value a, value b)
-- where a and b are the values of the kind's "value dimensions" (division,
-- age_band, education, country, skill, reason, need, return_year, channel,
-- week); district, status and sex are key columns of every kind, so the
-- filters and the dimensions district, status and sex cost nothing more.
-- Every kind is kept for the whole country (district '*', what admins and
-- analysts read), the kinds of at most one value dimension also per
-- district (an officer's districts, a district filter, district as a
-- dimension).  A missing value is stored as the dashboards show it
-- ('unknown', 'none' for no skill; '' for a missing district or sex, the
-- key columns), the age band as the birth year (the band depends on the
-- year we are in).  Rows whose counts fell to zero stay (a status change
-- moves a person from one row to another); remigate_stats_rebuild()
-- drops them.
--
-- Periods are Dhaka days: the months wholly inside the period come from
-- the summary, the days of a month cut by the period from returnees
-- (returnees_created_idx); a kind not kept at the level asked (two value
-- dimensions for one district) is counted from returnees, as in 011.  The
-- numbers are the same either way (tests/integration/test_stats.sh).
--
-- Writes: one statement-level trigger per event sums the new rows'
-- facts and the old rows' (negated) per key -- a change that moves
-- nothing writes nothing -- and appends them to stats_delta: no row that
-- other registrations write too is locked, so registrations do not wait
-- for each other (upserting stats_counts itself did: the rows of the
-- month's pending registrations are in every registration's set, and a
-- batch of several held them to its commit, 12x slower in
-- bench/stats-write).  Every 64th such statement, remigate_stats_fold()
-- moves stats_delta into stats_counts, one fold at a time (an advisory
-- lock; a statement that finds a fold running leaves it to the next).
-- Readers add stats_delta to stats_counts.  Each returnee is up to 67
-- facts (plus one per further skill); the cost is in bench/RESULTS.md.

-- Scope: stats_counts is read by remigate_stats() alone (definer's
-- rights, the officer's districts applied by hand as in 011); the
-- console's roles have no grant on it, and row-level security with the
-- policy of returnees guards it should one be given.

CREATE TABLE stats_kinds (
    id      smallint PRIMARY KEY,
    da      text NOT NULL,          -- value dimension of a ('' none)
    db      text NOT NULL,          -- of b ('' none); skill is always da
    dist    boolean NOT NULL,       -- also kept per district
    UNIQUE (da, db)
);

-- The value dimensions, in the order of their pairs.
INSERT INTO stats_kinds (id, da, db, dist)
SELECT row_number() OVER (ORDER BY o1, o2) - 1, d1, d2, d2 = ''
FROM (SELECT '' AS d1, '' AS d2, 0 AS o1, 0 AS o2
      UNION ALL
      SELECT v.d, '', v.o, 0
      FROM unnest(ARRAY['division', 'age_band', 'education', 'country',
                        'skill', 'reason', 'need', 'return_year', 'channel',
                        'week']) WITH ORDINALITY v(d, o)
      UNION ALL
      SELECT CASE WHEN y.d = 'skill' THEN y.d ELSE x.d END,
             CASE WHEN y.d = 'skill' THEN x.d ELSE y.d END, 100 + x.o, y.o
      FROM unnest(ARRAY['division', 'age_band', 'education', 'country',
                        'skill', 'reason', 'need', 'return_year', 'channel',
                        'week']) WITH ORDINALITY x(d, o)
      JOIN unnest(ARRAY['division', 'age_band', 'education', 'country',
                        'skill', 'reason', 'need', 'return_year', 'channel',
                        'week']) WITH ORDINALITY y(d, o) ON y.o > x.o) k;

CREATE TABLE stats_counts (
    kind        smallint NOT NULL REFERENCES stats_kinds (id),
    district    text NOT NULL,      -- '*': every district; '': none given
    mon         date NOT NULL,      -- first day of the Dhaka month
    status      text NOT NULL,
    sex         text NOT NULL,      -- '': none given
    a           text NOT NULL,
    b           text NOT NULL,
    n           bigint NOT NULL,    -- returnees (skill: mentions)
    p           bigint NOT NULL,    -- people behind n
    PRIMARY KEY (kind, district, mon, status, sex, a, b)
);

ALTER TABLE stats_counts ENABLE ROW LEVEL SECURITY;
CREATE POLICY stats_counts_scope ON stats_counts TO remigate_console
    USING (district = ANY (remigate_scope_districts()));
-- Changes not yet in stats_counts (same columns, not unique).
CREATE TABLE stats_delta (LIKE stats_counts);
CREATE INDEX stats_delta_kind_idx ON stats_delta (kind, district, mon);
ALTER TABLE stats_delta ENABLE ROW LEVEL SECURITY;
CREATE POLICY stats_delta_scope ON stats_delta TO remigate_console
    USING (district = ANY (remigate_scope_districts()));
-- counts the statements that appended to stats_delta (every 64th folds)
CREATE SEQUENCE stats_delta_seq;
REVOKE ALL ON stats_kinds, stats_counts, stats_delta, stats_delta_seq
    FROM PUBLIC;

-- A period's days cut off a month are read from returnees by this.
CREATE INDEX returnees_created_idx ON returnees (created_at);

-- The stored value of value dimension p_dim of returnees r ('' none):
-- the SQL, with the skill of sk.s.
CREATE FUNCTION remigate_stats_val_sql(p_dim text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_dim
        WHEN '' THEN ''''''
        WHEN 'age_band' THEN 'coalesce(r.birth_year::text, ''unknown'')'
        WHEN 'return_year' THEN 'coalesce(r.return_year::text, ''unknown'')'
        WHEN 'week' THEN
            'to_char(r.created_at AT TIME ZONE ''Asia/Dhaka'', ''IYYY-"W"IW'')'
        WHEN 'skill' THEN 'sk.s'
        ELSE format('coalesce(r.%I, ''unknown'')', p_dim)
    END
$$;

-- The skills of r, each once with its number of mentions (one 'none'
-- without any), as sk(s, c): a person counts once under each skill.
CREATE FUNCTION remigate_stats_skills_sql() RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'CROSS JOIN LATERAL (SELECT coalesce(u.s, ''none'') AS s,'
           ' count(*) AS c FROM unnest(CASE WHEN cardinality(r.skills) > 0'
           ' THEN r.skills ELSE ''{NULL}''::text[] END) u(s) GROUP BY 1) sk'
$$;

-- The facts of the rows of relation p_src as SQL of (kind, district,
-- mon, status, sex, a, b, n, p).  p_grouped false (the triggers: p_src a
-- transition table of returnees): one row per returnee, kind and level,
-- in one small plan.  p_grouped true (the rebuild: p_src has the columns
-- of stats_src below, the values already as stored): summed per key, one
-- grouped scan per kind -- per district for the kinds kept per district
-- (whose country-wide rows are then summed from those), country-wide for
-- the others.
CREATE FUNCTION remigate_stats_facts_sql(p_src text, p_grouped boolean)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    k record;
    lvl text;
    mon text := 'date_trunc(''month'', r.created_at AT TIME ZONE'
                ' ''Asia/Dhaka'')::date';
    plain text[] := '{}';
    skill text[] := '{}';
    parts text[] := '{}';
BEGIN
    FOR k IN SELECT * FROM stats_kinds ORDER BY id LOOP
        FOREACH lvl IN ARRAY CASE WHEN k.dist
            THEN ARRAY['''*''', 'coalesce(r.district, '''')']
            ELSE ARRAY['''*'''] END
        LOOP
            IF p_grouped THEN
                CONTINUE WHEN k.dist = (lvl = '''*''');
                parts := parts || format(
                    'SELECT %s::smallint, %s, r.mon, r.status, r.sex, %s, %s,'
                    ' %s, count(*) FROM %s r %s GROUP BY 2, 3, 4, 5, 6, 7',
                    k.id, CASE WHEN k.dist THEN 'r.district' ELSE lvl END,
                    CASE k.da WHEN 'skill' THEN 'sk.s' WHEN '' THEN ''''''
                         ELSE 'r.' || k.da END,
                    CASE k.db WHEN '' THEN '''''' ELSE 'r.' || k.db END,
                    CASE WHEN k.da = 'skill' THEN 'sum(sk.c)'
                         ELSE 'count(*)' END,
                    p_src, CASE WHEN k.da = 'skill'
                                THEN remigate_stats_skills_sql() END);
            ELSIF k.da = 'skill' THEN
                skill := skill || format('(%s, %s, %s)', k.id, lvl,
                                         remigate_stats_val_sql(k.db));
            ELSE
                plain := plain || format('(%s, %s, %s, %s)', k.id, lvl,
                                         remigate_stats_val_sql(k.da),
                                         remigate_stats_val_sql(k.db));
            END IF;
        END LOOP;
    END LOOP;
    IF p_grouped THEN
        RETURN array_to_string(parts, ' UNION ALL ');
    END IF;
    RETURN format(
        'SELECT x.kind::smallint AS kind, x.district, %1$s AS mon, r.status,'
        ' coalesce(r.sex, '''') AS sex, x.a, x.b, 1::bigint AS n,'
        ' 1::bigint AS p'
        ' FROM %2$s r CROSS JOIN LATERAL (VALUES %3$s) x(kind, district, a, b)'
        ' UNION ALL '
        'SELECT x.kind::smallint, x.district, %1$s, r.status,'
        ' coalesce(r.sex, ''''), sk.s, x.b, sk.c, 1'
        ' FROM %2$s r %4$s CROSS JOIN LATERAL (VALUES %5$s) x(kind, district, b)',
        mon, p_src, array_to_string(plain, ', '), remigate_stats_skills_sql(),
        array_to_string(skill, ', '));
END
$$;

-- stats_delta into stats_counts, if no other transaction is at it (then
-- 0): the number of stats_counts rows written.  Its row locks are held to
-- the caller's commit; only folds write stats_counts.
CREATE FUNCTION remigate_stats_fold() RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    rows bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('remigate_stats_fold')) THEN
        RETURN 0;
    END IF;
    WITH d AS (DELETE FROM stats_delta RETURNING *)
    INSERT INTO stats_counts AS c (kind, district, mon, status, sex, a, b,
                                   n, p)
    SELECT kind, district, mon, status, sex, a, b, sum(n), sum(p) FROM d
    GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(n) <> 0 OR sum(p) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (kind, district, mon, status, sex, a, b)
    DO UPDATE SET n = c.n + EXCLUDED.n, p = c.p + EXCLUDED.p;
    GET DIAGNOSTICS rows = ROW_COUNT;
    RETURN rows;
END
$$;
REVOKE ALL ON FUNCTION remigate_stats_fold() FROM PUBLIC;

-- The triggers' function, written from the kinds: appends the facts of
-- new_rows less those of old_rows (each only when the event has it) to
-- stats_delta, and folds every 64th time.  Definer's rights: the console
-- updates returnees and has no grant on the summary.
DO $do$
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
CREATE FUNCTION remigate_stats_track() RETURNS trigger
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
REVOKE ALL ON FUNCTION remigate_stats_track() FROM PUBLIC;

CREATE TRIGGER returnees_stats_ins AFTER INSERT ON returnees
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION remigate_stats_track();
CREATE TRIGGER returnees_stats_upd AFTER UPDATE ON returnees
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION remigate_stats_track();
CREATE TRIGGER returnees_stats_del AFTER DELETE ON returnees
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION remigate_stats_track();

CREATE FUNCTION remigate_stats_truncated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM stats_counts;
    DELETE FROM stats_delta;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION remigate_stats_truncated() FROM PUBLIC;
CREATE TRIGGER returnees_stats_truncate AFTER TRUNCATE ON returnees
    FOR EACH STATEMENT EXECUTE FUNCTION remigate_stats_truncated();

-- stats_counts again from every returnee (this migration, a bulk load
-- with the triggers disabled, a check that the triggers kept it right),
-- without the rows counted down to zero.  Returns the rows written.
-- Blocks writes to returnees, and the dashboards, meanwhile.
CREATE FUNCTION remigate_stats_rebuild() RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp SET jit = off
SET work_mem = '64MB' SET maintenance_work_mem = '256MB' AS $$
DECLARE
    rows bigint;
BEGIN
    LOCK TABLE returnees IN SHARE MODE;
    TRUNCATE stats_counts, stats_delta;
    -- the key's index built once at the end, not row by row (at millions
    -- of returnees the summary has millions of rows in random order)
    ALTER TABLE stats_counts DROP CONSTRAINT stats_counts_pkey;
    -- every stored value once per returnee, not once per kind
    EXECUTE format('CREATE TEMP TABLE stats_src ON COMMIT DROP AS'
        ' SELECT coalesce(r.district, '''') AS district, %s AS mon,'
        ' r.status, coalesce(r.sex, '''') AS sex, %s, r.skills'
        ' FROM returnees r',
        'date_trunc(''month'', r.created_at AT TIME ZONE'
        ' ''Asia/Dhaka'')::date',
        (SELECT string_agg(remigate_stats_val_sql(d) || ' AS ' || d, ', ')
         FROM unnest(ARRAY['division', 'age_band', 'education', 'country',
                           'reason', 'need', 'return_year', 'channel',
                           'week']) d));
    EXECUTE 'INSERT INTO stats_counts (kind, district, mon, status, sex, a,'
            ' b, n, p) ' || remigate_stats_facts_sql('pg_temp.stats_src', true);
    INSERT INTO stats_counts (kind, district, mon, status, sex, a, b, n, p)
    SELECT c.kind, '*', c.mon, c.status, c.sex, c.a, c.b, sum(c.n), sum(c.p)
    FROM stats_counts c JOIN stats_kinds k ON k.id = c.kind AND k.dist
    GROUP BY 1, 3, 4, 5, 6, 7;
    DROP TABLE pg_temp.stats_src;
    ALTER TABLE stats_counts ADD CONSTRAINT stats_counts_pkey
        PRIMARY KEY (kind, district, mon, status, sex, a, b);
    SELECT count(*) INTO rows FROM stats_counts;
    RETURN rows;
END
$$;
REVOKE ALL ON FUNCTION remigate_stats_rebuild() FROM PUBLIC;
SELECT remigate_stats_rebuild();

-- ------------------------------------------------------------------------
-- Reading

-- The age band of a stored birth year ('unknown' stays), as 011 said it
-- (remigate_stats_core writes the same inline, with the year as a
-- constant: a call per row cost 180 ms at 10,000 rows).
CREATE FUNCTION remigate_stats_band(p_birth text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_birth = 'unknown' THEN 'unknown' ELSE (SELECT CASE
        WHEN a < 18 THEN '<18' WHEN a < 25 THEN '18-24'
        WHEN a >= 60 THEN '60+'
        ELSE (a / 5 * 5)::text || '-' || (a / 5 * 5 + 4)::text END
        FROM (SELECT extract(year FROM now())::int - p_birth::int AS a) x)
    END
$$;

-- The counts of remigate_stats() (011's contract), without its checks:
-- p_scope is the districts an officer may see (NULL: every district).
-- persons is sum(p): right for every row but the totals over skills
-- (remigate_stats puts those right).
CREATE FUNCTION remigate_stats_core(p_dim1 text, p_dim2 text,
                                    p_status text, p_district text,
                                    p_sex text, p_from date, p_to date,
                                    p_scope text[])
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
    per_district boolean;
    f date := coalesce(p_from, '-infinity');
    e date := coalesce(p_to + 1, 'infinity');   -- the end, exclusive
    lo date;                    -- the months read from stats_counts:
    hi date;                    -- lo <= mon < hi
    r1 date;                    -- the days read from returnees:
    r2 date;                    -- [f, r1) and [r2, e)
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
        WHERE k.da = ka AND k.db = kb;
    per_district := p_scope IS NOT NULL OR p_district IS NOT NULL
                    OR 'district' IN (p_dim1, coalesce(p_dim2, ''));
    IF kind IS NOT NULL AND (kdist OR NOT per_district) THEN
        lo := CASE WHEN f = '-infinity' THEN f
                   WHEN f = date_trunc('month', f)::date THEN f
                   ELSE (date_trunc('month', f) + interval '1 month')::date
              END;
        hi := CASE WHEN e = 'infinity' THEN e
                   ELSE date_trunc('month', e)::date END;
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
    IF f < r1 OR r2 < e THEN
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
              e;
END
$$;
REVOKE ALL ON FUNCTION remigate_stats_core(text, text, text, text, text,
    date, date, text[]) FROM PUBLIC;

-- remigate_stats() of 011: the same arguments, checks and rows, from the
-- summary.
CREATE OR REPLACE FUNCTION remigate_stats(p_dim1 text, p_dim2 text,
                                          p_status text, p_district text,
                                          p_sex text, p_from date,
                                          p_to date, p_k int)
RETURNS TABLE (g int, v1 text, v2 text, n bigint, persons bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    who text := coalesce(current_setting('remigate.role', true), '');
    scope text[] := CASE WHEN who = 'officer'
                         THEN remigate_scope_districts() END;
    dims text[] := ARRAY['district', 'division', 'sex', 'age_band',
                         'education', 'country', 'skill', 'reason', 'need',
                         'return_year', 'channel', 'status', 'week'];
    skill boolean := 'skill' IN (p_dim1, coalesce(p_dim2, ''));
    people jsonb := '{}';       -- the other dimension's value -> people
    everyone bigint := 0;
    grand bigint := 0;
BEGIN
    IF who NOT IN ('admin', 'officer', 'analyst') THEN
        RAISE EXCEPTION 'remigate_stats: no console role'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_dim1 IS NULL OR NOT p_dim1 = ANY (dims)
       OR (p_dim2 IS NOT NULL AND NOT p_dim2 = ANY (dims))
       OR p_dim1 = p_dim2 THEN
        RAISE EXCEPTION 'remigate_stats: unknown dimension'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF who = 'analyst' AND coalesce(p_k, 0) < 3 THEN
        RAISE EXCEPTION 'remigate_stats: k below 3 for an analyst'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- with skill, a total over the skills counts mentions; the people
    -- behind it are those of the other dimension's value (or everyone)
    IF skill THEN
        FOR g, v1, n IN
            SELECT c.g, c.v1, c.n FROM remigate_stats_core(
                CASE WHEN p_dim1 = 'skill' THEN coalesce(p_dim2, 'status')
                     ELSE p_dim1 END,
                NULL, p_status, p_district, p_sex, p_from, p_to, scope) c
            WHERE c.g IN (1, 3)
        LOOP
            IF g = 3 THEN everyone := n;
            ELSE people := people || jsonb_build_object(v1, n);
            END IF;
        END LOOP;
    END IF;
    FOR g, v1, v2, n, persons IN
        SELECT * FROM remigate_stats_core(p_dim1, p_dim2, p_status,
            p_district, p_sex, p_from, p_to, scope)
    LOOP
        IF skill THEN
            IF g = 3 OR (g = 2 AND p_dim2 IS NULL) THEN
                persons := everyone;
            ELSIF g = 2 AND p_dim1 = 'skill' THEN
                persons := coalesce((people ->> v2)::bigint, 0);
            ELSIF g = 1 AND p_dim2 = 'skill' THEN
                persons := coalesce((people ->> v1)::bigint, 0);
            END IF;
        END IF;
        IF g = 3 THEN grand := persons; END IF;
        RETURN NEXT;
    END LOOP;
    IF who = 'analyst' AND grand BETWEEN 1 AND p_k - 1 THEN
        RAISE EXCEPTION 'remigate_stats: fewer than k people match'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'too_few';
    END IF;
END
$$;
