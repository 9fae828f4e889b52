-- 019_indicator_returns: the counts behind the indicator "returnees by
-- destination x reason for return x year of return" (GET
-- /api/indicators/destination_reason_year.csv|.json).
--
-- remigate_stats() crosses two dimensions; this is three.  Like it, the
-- function runs as the tables' owner and returns grouped counts only --
-- never a row -- of verified returnees, the officer's districts applied by
-- hand (the owner bypasses the policy), and refuses an analyst's filter
-- that matches 1..k-1 people (and a k below 3).  A missing value is NULL
-- (the console writes it as SDMX's _U).  The console hides small counts:
-- each year of return is its own two-way table (destination x reason), so
-- no total over years is published and each table is protected alone.
-- Only the console's role may call it.
CREATE FUNCTION remigate_indicator_returns(p_district text, p_sex text,
                                           p_from date, p_to date, p_k int)
RETURNS TABLE (country text, reason text, return_year text, n bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    who text := coalesce(current_setting('remigate.role', true), '');
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
    FOR country, reason, return_year, n IN
        SELECT r.country, r.reason, r.return_year::text, count(*)
        FROM returnees r
        WHERE r.status = 'verified'
          AND (who IN ('admin', 'analyst')
               OR r.district = ANY (remigate_scope_districts()))
          AND (p_district IS NULL OR r.district = p_district)
          AND (p_sex IS NULL OR r.sex = p_sex)
          AND (p_from IS NULL OR r.created_at >=
               (p_from::timestamp AT TIME ZONE 'Asia/Dhaka'))
          AND (p_to IS NULL OR r.created_at <
               ((p_to + 1)::timestamp AT TIME ZONE 'Asia/Dhaka'))
        GROUP BY 1, 2, 3
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
REVOKE ALL ON FUNCTION remigate_indicator_returns(text, text, date, date, int)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remigate_indicator_returns(text, text, date, date,
                                                     int) TO remigate_console;
