-- 012_stats_days: the days from registration to a decision (verified or
-- rejected), per district, for the verification funnel.  Like
-- remigate_stats (011): runs as the owner, returns aggregates only, scope
-- by role (officers their districts, admins and analysts all); the
-- console hides the median of fewer than k decisions.
CREATE FUNCTION remigate_stats_days(p_district text, p_from date, p_to date)
RETURNS TABLE (district text, decided bigint, median_days numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    who text := coalesce(current_setting('remigate.role', true), '');
BEGIN
    IF who NOT IN ('admin', 'officer', 'analyst') THEN
        RAISE EXCEPTION 'remigate_stats_days: no console role'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
    SELECT coalesce(r.district, 'unknown'), count(*),
           round((percentile_cont(0.5) WITHIN GROUP (ORDER BY
               extract(epoch FROM r.status_at - r.created_at) / 86400))::numeric, 1)
    FROM returnees r
    WHERE r.status IN ('verified', 'rejected')
      AND (who IN ('admin', 'analyst')
           OR r.district = ANY (remigate_scope_districts()))
      AND (p_district IS NULL OR r.district = p_district)
      AND (p_from IS NULL OR r.created_at >=
           (p_from::timestamp AT TIME ZONE 'Asia/Dhaka'))
      AND (p_to IS NULL OR r.created_at <
           ((p_to + 1)::timestamp AT TIME ZONE 'Asia/Dhaka'))
    GROUP BY 1
    ORDER BY 1;
END
$$;
REVOKE ALL ON FUNCTION remigate_stats_days(text, date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remigate_stats_days(text, date, date)
    TO remigate_console;
