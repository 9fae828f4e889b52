-- 011_stats: the counts behind the dashboards, /api/stats and aggregate
-- exports.
--
-- Analysts see no returnee rows (the policy of 005 gives their role
-- nothing), yet need the whole country's counts.  remigate_stats() runs as
-- the tables' owner and returns only grouped counts over a closed list of
-- dimensions -- never a row, a name or an identifier -- and, for an
-- analyst, refuses a filter that matches 1..k-1 people (the query-set-size
-- rule against differencing) and a k below 3.  Officers get their own
-- districts only (the policy's rule, applied here by hand since the owner
-- bypasses it), admins everything.  Small counts are hidden by the console
-- (console/con_supp.c), which needs the true margins to choose the
-- complementary cells; nobody but the console's role may call this.

-- The SQL of one dimension over returnees r (and s.skill), or NULL.
CREATE FUNCTION remigate_stats_expr(p_dim text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_dim
        WHEN 'district' THEN 'r.district'
        WHEN 'division' THEN 'r.division'
        WHEN 'sex' THEN 'r.sex'
        WHEN 'age_band' THEN
            'CASE WHEN r.birth_year IS NULL THEN NULL ELSE (SELECT CASE'
            ' WHEN a < 18 THEN ''<18'' WHEN a < 25 THEN ''18-24'''
            ' WHEN a >= 60 THEN ''60+'''
            ' ELSE (a / 5 * 5)::text || ''-'' || (a / 5 * 5 + 4)::text END'
            ' FROM (SELECT extract(year FROM now())::int - r.birth_year AS a)'
            ' x) END'
        WHEN 'education' THEN 'r.education'
        WHEN 'country' THEN 'r.country'
        WHEN 'skill' THEN 's.skill'
        WHEN 'reason' THEN 'r.reason'
        WHEN 'need' THEN 'r.need'
        WHEN 'return_year' THEN 'r.return_year::text'
        WHEN 'channel' THEN 'r.channel'
        WHEN 'status' THEN 'r.status'
        WHEN 'week' THEN
            'to_char(r.created_at AT TIME ZONE ''Asia/Dhaka'', ''IYYY-"W"IW'')'
    END
$$;

-- Counts of the returnees that pass the filters (each NULL: any), by
-- p_dim1 and p_dim2 (NULL: a one-way table), with every margin: g is
-- grouping(v1, v2) -- 0 a cell, 1 the total of a v1, 2 the total of a
-- v2, 3 the grand total.  A missing value counts under 'unknown'.  With
-- skill a person counts once under each of their skills (and under
-- 'none' without any), so totals then count mentions; persons is the
-- number of people behind each count either way.  Dates are Dhaka days,
-- p_to inclusive.
CREATE FUNCTION remigate_stats(p_dim1 text, p_dim2 text, p_status text,
                               p_district text, p_sex text, p_from date,
                               p_to date, p_k int)
RETURNS TABLE (g int, v1 text, v2 text, n bigint, persons bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    who text := coalesce(current_setting('remigate.role', true), '');
    e1 text := remigate_stats_expr(p_dim1);
    e2 text := CASE WHEN p_dim2 IS NULL THEN '''-''' ELSE
                   remigate_stats_expr(p_dim2) END;
    skill boolean := p_dim1 = 'skill' OR coalesce(p_dim2 = 'skill', false);
    grand bigint := 0;
BEGIN
    IF who NOT IN ('admin', 'officer', 'analyst') THEN
        RAISE EXCEPTION 'remigate_stats: no console role'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF e1 IS NULL OR e2 IS NULL OR p_dim1 = p_dim2 THEN
        RAISE EXCEPTION 'remigate_stats: unknown dimension'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF who = 'analyst' AND coalesce(p_k, 0) < 3 THEN
        RAISE EXCEPTION 'remigate_stats: k below 3 for an analyst'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR g, v1, v2, n, persons IN EXECUTE format(
        'SELECT grouping(v1, v2)::int, v1, v2, count(*), %s'
        ' FROM (SELECT r.id, coalesce(%s, %L) AS v1, coalesce(%s, %L) AS v2'
        '  FROM returnees r %s'
        '  WHERE ($1 IN (''admin'', ''analyst'')'
        '         OR r.district = ANY (remigate_scope_districts()))'
        '  AND ($2::text IS NULL OR r.status = $2)'
        '  AND ($3::text IS NULL OR r.district = $3)'
        '  AND ($4::text IS NULL OR r.sex = $4)'
        '  AND ($5::date IS NULL OR r.created_at >='
        '       ($5::date::timestamp AT TIME ZONE ''Asia/Dhaka''))'
        '  AND ($6::date IS NULL OR r.created_at <'
        '       (($6::date + 1)::timestamp AT TIME ZONE ''Asia/Dhaka''))) x'
        ' GROUP BY GROUPING SETS ((v1, v2), (v1), (v2), ())'
        ' ORDER BY 1, 2, 3',
        CASE WHEN skill THEN 'count(DISTINCT id)' ELSE 'count(*)' END,
        e1, CASE WHEN p_dim1 = 'skill' THEN 'none' ELSE 'unknown' END,
        e2, CASE WHEN p_dim2 = 'skill' THEN 'none' ELSE 'unknown' END,
        CASE WHEN skill
             THEN 'LEFT JOIN LATERAL unnest(r.skills) AS s(skill) ON true'
             ELSE '' END)
        USING who, p_status, p_district, p_sex, p_from, p_to
    LOOP
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
REVOKE ALL ON FUNCTION remigate_stats(text, text, text, text, text, date,
                                      date, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION remigate_stats_expr(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remigate_stats(text, text, text, text, text, date,
                                         date, int) TO remigate_console;
GRANT EXECUTE ON FUNCTION remigate_stats_expr(text) TO remigate_console;
