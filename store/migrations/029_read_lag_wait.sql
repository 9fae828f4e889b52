-- 029_read_lag_wait: remigate_read_lag() (017) said "the age of the last
-- transaction replayed" whenever the standby had received WAL it had not
-- yet replayed -- even for the millisecond between receiving a commit and
-- replaying it.  After a quiet spell that age is the whole spell: an
-- officer's own login (a session row, committed on the primary just
-- before the dashboard is read) made the page say "up to N s behind" for
-- numbers that were current.  Now, while the standby streams, it first
-- waits for replay to reach what had been received when it was called (up
-- to wait_s, 0.1 s unless told, in 2 ms steps): 0 once there.  The console runs it before the
-- dashboard's own statements (con_read_tx_or_503), so those read at least
-- that much.  A standby that is really behind (a backlog, or its primary
-- lost) still gets the age of the last transaction it replayed, after
-- the wait.
DROP FUNCTION remigate_read_lag();
CREATE FUNCTION remigate_read_lag(wait_s double precision DEFAULT 0.1)
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
REVOKE ALL ON FUNCTION remigate_read_lag(double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remigate_read_lag(double precision) TO remigate_console;
