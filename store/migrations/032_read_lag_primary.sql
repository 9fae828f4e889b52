-- 032_read_lag_primary: remigate_read_lag() (029) waited for replay to
-- reach what the standby had RECEIVED.  A standby whose receiver is itself
-- behind the primary (a slow or broken link: the standby still says it
-- streams, and has replayed all it got) then said 0 for numbers that were
-- not current.  Now the caller may pass the primary's WAL position, taken
-- on the primary just before (the console reads it in the session check
-- of the same request): the target is the later of the two, so "0" means
-- the standby has replayed everything the primary had when the request
-- came -- and a standby whose link is down but that has all of it is
-- rightly 0 too.  Otherwise, after the wait, the age of the last
-- transaction replayed, as before.  Without primary_lsn it is 029.
DROP FUNCTION remigate_read_lag(double precision);
CREATE FUNCTION remigate_read_lag(wait_s double precision DEFAULT 0.1,
                                  primary_lsn pg_lsn DEFAULT NULL)
RETURNS double precision
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target pg_lsn;
    -- at most 10 s, whatever the caller asks
    until timestamptz := clock_timestamp() +
        make_interval(secs => least(greatest(wait_s, 0), 10));
BEGIN
    IF NOT pg_is_in_recovery() THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN
        target := pg_last_wal_receive_lsn();
    END IF;
    -- greatest() leaves NULLs out
    target := greatest(target, primary_lsn);
    IF target IS NOT NULL THEN
        LOOP
            IF pg_last_wal_replay_lsn() >= target THEN
                RETURN 0;
            END IF;
            EXIT WHEN clock_timestamp() >= until;
            PERFORM pg_sleep(0.002);
        END LOOP;
    END IF;
    RETURN greatest(0, extract(epoch FROM clock_timestamp() -
                    pg_last_xact_replay_timestamp()))::double precision;
END
$$;
REVOKE ALL ON FUNCTION remigate_read_lag(double precision, pg_lsn) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remigate_read_lag(double precision, pg_lsn) TO remigate_console;
