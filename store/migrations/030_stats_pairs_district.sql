-- 030_stats_pairs_district: what 028 still read slowly at 5,000,000
-- returnees (bench/RESULTS.md, "Dashboard counts at 5,000,000 returnees,
-- migration 030").
--
-- (1) A two-way table of two value dimensions for one district (a
-- district filter, an officer's districts) -- e.g. need x reason for
-- BD-08, an officer's destination x education -- was kept per district
-- for two pairs only (destination x skill, reason x need; 020); for the
-- 43 others remigate_stats_core counted the district's returnees over the
-- whole period, a fifth of everyone for the largest district.  Those
-- pairs are now kept per district too (stats_kinds.dist, by month, with
-- status and sex, as the two are), so such a table reads the summary's
-- months; the days a period cuts off a month are read from returnees (by
-- returnees_created_idx, each end the days it keeps of its month or the
-- whole month less the days it leaves out, as 024 and 026 do for the
-- two).  43 more facts per registration (one per pair at the district's
-- level; the eight skill pairs one per skill); their rows are summed here
-- from returnees, each pair in the key's order, not by a rebuild.  The registrations wait meanwhile
-- (SHARE lock on returnees): minutes at millions of rows.
--
-- (2) The funnel's median days over a period that cuts months read every
-- cut day of its end months from the funnel's day-grain kinds; each end
-- is now read as remigate_stats_core reads a day-grain kind since 028:
-- the days it keeps of its month or, when those are more, the whole
-- month less the days it leaves out (counted negative).
--
-- The numbers are the same (tests/integration/test_stats_summary.sh
-- compares every table and funnel with 011's and 012's scans, and reads
-- an officer's and a district filter's pairs, and the funnel's counts
-- over cut periods, from the summary alone).

-- no registration between the triggers' new facts and the rows below
LOCK TABLE returnees IN SHARE MODE;
SET LOCAL work_mem = '256MB';
SET LOCAL jit = off;

-- the pairs not kept per district yet (an owner may have kept some since
-- 020, as docs/dashboards.md says how): kept per district from now on,
-- their rows per district summed from returnees (their '*' rows are
-- there already): each stored value once per returnee, then each pair
-- grouped from that copy and written in the key's order
DO $$
DECLARE
    ids smallint[] := ARRAY(SELECT id FROM stats_kinds
                            WHERE NOT dist AND NOT daily AND NOT flat
                              AND NOT whole AND da <> '' AND db <> ''
                            ORDER BY id);
    k record;
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    UPDATE stats_kinds SET dist = true WHERE id = ANY (ids);
    PERFORM remigate_stats_retrack();
    EXECUTE format('CREATE TEMP TABLE stats_pair_src AS'
        ' SELECT coalesce(r.district, '''') AS district, %s AS mon,'
        ' r.status, coalesce(r.sex, '''') AS sex, %s, r.skills'
        ' FROM returnees r',
        'date_trunc(''month'', r.created_at AT TIME ZONE'
        ' ''Asia/Dhaka'')::date',
        (SELECT string_agg(remigate_stats_val_sql(d) || ' AS ' || d, ', ')
         FROM unnest(ARRAY['division', 'age_band', 'education', 'country',
                           'reason', 'need', 'return_year', 'channel',
                           'week']) d));
    ANALYZE stats_pair_src;
    FOR k IN SELECT * FROM stats_kinds WHERE id = ANY (ids) ORDER BY id LOOP
        EXECUTE format(
            'INSERT INTO stats_counts (kind, district, mon, status, sex, a, b,'
            ' n, p)'
            ' SELECT %s, r.district, r.mon, r.status, r.sex, %s, %s, %s,'
            ' count(*) FROM stats_pair_src r %s GROUP BY 2, 3, 4, 5, 6, 7'
            ' ORDER BY 2, 3, 4, 5, 6, 7',
            k.id,
            CASE WHEN k.da = 'skill' THEN 'sk.s' ELSE 'r.' || k.da END,
            'r.' || k.db,
            CASE WHEN k.da = 'skill' THEN 'sum(sk.c)' ELSE 'count(*)' END,
            CASE WHEN k.da = 'skill' THEN remigate_stats_skills_sql() END);
    END LOOP;
    DROP TABLE stats_pair_src;
END
$$;

-- 021's remigate_stats_days(), the same arguments, checks and rows: the
-- cut days of the period's end months read as the days kept or as the
-- whole month less the days left out, whichever is fewer (see (2)).
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
    r1 date;                    -- the cut days, from the daily kinds:
    r2 date;                    -- [f, r1) and [r2, e)
    fm date;                    -- the months around the period's ends
    em date;
    best int;                   -- days read, the least so far
    c int;
    ll date;                    -- a candidate's months [ll, hh)
    hh date;
    a1 date;                    -- the days read: [a1, b1) counted s1
    b1 date;                    -- times, [a2, b2) counted s2 times (the
    a2 date;                    -- first wholly before the second)
    b2 date;
    s1 int := 1;
    s2 int := 1;
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
    -- [$3, $4) counted $8 times and [$5, $6) counted $9 times, of the
    -- districts $7 (NULL: every one)
    part text := 'SELECT c.district AS d, c.a, c.n FROM %1$s c'
        ' WHERE c.kind = %2$s AND c.mon >= $1 AND c.mon < $2'
        '  AND ($7::text[] IS NULL OR c.district = ANY ($7))';
    dpart text := 'SELECT c.district AS d, c.a, c.n * $8 FROM %1$s c'
        ' WHERE c.kind = %2$s AND $3 < $4 AND c.mon >= $3 AND c.mon < $4'
        '  AND ($7::text[] IS NULL OR c.district = ANY ($7))'
        ' UNION ALL '
        'SELECT c.district AS d, c.a, c.n * $9 FROM %1$s c'
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
    r1 := least(lo, e);
    r2 := greatest(hi, lo, f);
    a1 := f;
    b1 := r1;
    a2 := r2;
    b2 := e;
    IF f < r1 OR r2 < e THEN
        -- as remigate_stats_core reads a day-grain kind (028): of the
        -- months [ll, hh) with ll the month start before or after f and
        -- hh the one before or after e, the one that reads the fewest
        -- days (each end the days it keeps of its month, or the whole
        -- month less the days it leaves out, counted negative)
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
    IF lo >= hi THEN
        lo := 'infinity';       -- all of it from the daily kinds
        hi := 'infinity';
    END IF;
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
        USING lo, hi, a1, b1, a2, b2, dists, s1, s2
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
        '       SELECT c.district, c.a,'
        '        c.n * CASE WHEN c.mon < $4 THEN $11 ELSE $12 END FROM names'
        '       JOIN stats_counts c ON ($3 < $4 OR $5 < $6)'
        '        AND c.kind = %2$s AND c.district = names.d'
        '        AND c.a = names.a AND ((c.mon >= $3 AND c.mon < $4)'
        '                               OR (c.mon >= $5 AND c.mon < $6))'
        '       UNION ALL'
        '       SELECT c.district, c.a, c.n * CASE WHEN c.kind = %1$s THEN 1'
        '        WHEN c.mon < $4 THEN $11 ELSE $12 END FROM names'
        '       JOIN stats_delta c ON c.district = names.d AND c.a = names.a'
        '        AND ((c.kind = %1$s AND c.mon >= $1 AND c.mon < $2)'
        '             OR (c.kind = %2$s AND ((c.mon >= $3 AND c.mon < $4)'
        '                                    OR (c.mon >= $5 AND c.mon < $6))))),'
        ' g AS (SELECT h.d, h.a::numeric AS b, sum(h.n)::bigint AS n FROM h'
        '       GROUP BY 1, 2 HAVING sum(h.n) <> 0)'
        ' SELECT q.o, (SELECT array_agg(g.b ORDER BY g.b) FROM g WHERE g.d = q.d) AS bs,'
        '  (SELECT array_agg(g.n ORDER BY g.b) FROM g WHERE g.d = q.d) AS ns'
        ' FROM q ORDER BY q.o', tkind, tdkind)
        USING lo, hi, a1, b1, a2, b2, NULL::text[], ds, was, wbs, s1, s2
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
