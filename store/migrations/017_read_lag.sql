-- 017_read_lag: how far behind the primary the server answering is, for
-- dashboards read from a streaming standby (postgres.read_dsn).  NULL on
-- a primary.  0 while the standby streams and has replayed all it
-- received; otherwise the age of the last transaction it replayed (the
-- standby lost its primary, or is replaying a backlog).  Runs as the owner
-- so that pg_stat_wal_receiver shows its status (hidden from roles
-- without pg_read_all_stats; an owner without it sees NULL there, and the
-- age of the last replay is given instead, never a false 0).
CREATE FUNCTION remigate_read_lag()
RETURNS double precision
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN NOT pg_is_in_recovery() THEN NULL
        WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM
                 pg_last_wal_replay_lsn()
             AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver
                         WHERE status = 'streaming') THEN 0
        ELSE greatest(0, extract(epoch FROM clock_timestamp() -
                      pg_last_xact_replay_timestamp()))::double precision
    END
$$;
REVOKE ALL ON FUNCTION remigate_read_lag() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remigate_read_lag() TO remigate_console;
