-- 010_notice_audience: the same audience as 008's notice_audience(), in
-- one pass.  008 checked the per-person cap and "recently notified" with
-- queries per returnee (three index probes each: 0.9 s for 20,000
-- people); here the outbox rows of the look-back period are aggregated
-- once per number and joined, so a preview of a million people is one
-- scan of returnees and one of the recent outbox (bench/notices-audience,
-- bench/RESULTS.md).  Same arguments, same rows, same reasons
-- (test_notices_sql.sh holds both to SQL of its own).
CREATE OR REPLACE FUNCTION notice_audience(p_notice bigint,
                                           p_at timestamptz, p_cap_n int,
                                           p_cap_days int, p_cap_day int)
RETURNS TABLE (returnee_id bigint, msisdn text, district text, lang text,
               skip text)
LANGUAGE sql STABLE AS $$
    WITH n AS (
        SELECT n.*,
               extract(year FROM (p_at AT TIME ZONE 'UTC')
                                 + interval '6 hours')::int AS yr
          FROM notices n WHERE n.id = p_notice
    ),
    sent AS (
        SELECT x.msisdn,
               count(*) FILTER (WHERE x.claimed_at > p_at
                   - make_interval(days => p_cap_days)) AS in_period,
               count(*) FILTER (WHERE x.claimed_at > p_at
                   - interval '24 hours') AS in_day,
               bool_or((x.notice_id = n.id
                        OR xn.programme_id = n.programme_id)
                       AND x.claimed_at > p_at
                           - make_interval(days => n.recent_days)) AS recent
          FROM n, notice_outbox x JOIN notices xn ON xn.id = x.notice_id
         WHERE x.claimed_at > p_at - make_interval(days =>
                   greatest(p_cap_days, n.recent_days, 1))
           AND x.state NOT IN ('queued', 'skipped', 'failed', 'rejected',
                               'cancelled')
         GROUP BY x.msisdn
    )
    SELECT r.id, r.msisdn, r.district,
           CASE WHEN r.lang = 'en' AND n.text_en IS NOT NULL THEN 'en'
                ELSE 'bn' END,
           CASE
               WHEN coalesce(o.opted_out, false) THEN 'opted_out'
               WHEN coalesce(s.recent, false) THEN 'recent'
               WHEN coalesce(s.in_period, 0) >= p_cap_n
                    OR coalesce(s.in_day, 0)
                       >= least(greatest(p_cap_day, 1), 3) THEN 'freq_cap'
           END
      FROM n
      JOIN returnees r ON r.status = ANY (n.statuses)
      LEFT JOIN sms_optout o ON o.msisdn = r.msisdn
      LEFT JOIN sent s ON s.msisdn = r.msisdn
     WHERE (cardinality(n.districts) = 0 OR r.district = ANY (n.districts))
       AND (cardinality(n.sexes) = 0 OR r.sex = ANY (n.sexes))
       AND (n.age_min IS NULL OR r.birth_year <= n.yr - n.age_min)
       AND (n.age_max IS NULL OR r.birth_year >= n.yr - n.age_max)
       AND (cardinality(n.countries) = 0 OR r.country = ANY (n.countries))
       AND (cardinality(n.skills) = 0 OR r.skills && n.skills)
       AND (n.education_min IS NULL
            OR remigate_education_rank(r.education)
               >= remigate_education_rank(n.education_min))
       AND (n.return_year_min IS NULL OR r.return_year >= n.return_year_min)
       AND (n.return_year_max IS NULL OR r.return_year <= n.return_year_max)
       AND (cardinality(n.needs) = 0 OR r.need = ANY (n.needs))
       AND (cardinality(n.langs) = 0 OR coalesce(r.lang, 'bn') = ANY (n.langs))
$$;
