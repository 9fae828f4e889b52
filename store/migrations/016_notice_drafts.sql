-- 016_notice_drafts: a draft notice can be changed (PUT /api/notices/{id})
-- while it is composed, and with it the programme it brought -- only the
-- columns an officer writes, and only through the console's update, which
-- touches a programme no other notice uses (con_notices.c).  Row-level
-- security on notices still keeps an officer to their districts.
GRANT UPDATE (kind, title_bn, title_en, provider, place, capacity, deadline,
              phone, reply_code) ON programmes TO remigate_console;

-- Is notice p_notice the only one that uses its programme?  Definer's
-- rights: a notice of another district that shares the programme is
-- invisible to an officer, and must still keep the programme as it is.
CREATE FUNCTION notice_programme_alone(p_notice bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT NOT EXISTS (SELECT 1 FROM notices n JOIN notices o
                          ON o.programme_id = n.programme_id AND o.id <> n.id
                        WHERE n.id = p_notice)
$$;
REVOKE ALL ON FUNCTION notice_programme_alone(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION notice_programme_alone(bigint) TO remigate_console;
