-- 022_notice_sms_hot: PostgreSQL's share of sending one notice SMS (issue
-- 11's dispatch benchmark, bench/RESULTS.md).  Same rows, same states,
-- same answers; fewer index entries, fewer plans.
--
-- An SMS updates its notice_outbox row four times (claimed, accepted,
-- submitted, delivered) and its sms_out row three times (Kannel's answer,
-- two delivery reports).  PostgreSQL can update a row "HOT" -- the new
-- version on the same page, no new entry in any index -- only when no
-- column an index names (as a key, in an expression or in a partial
-- index's WHERE) changes value, and when the page has room:
--
-- * notice_outbox's indexes named state (the queue, the open rows, and
--   (notice_id, state) for the console's counts), so every change of
--   state wrote a new entry into all seven indexes.  They now name
--   phase, a stored column computed from state that changes only when a
--   row leaves the queue and when it becomes final: 'accepted' and
--   'submitted' are HOT updates.  (notice_id, state) goes: the console's
--   counts per state find a notice's rows through UNIQUE (notice_id,
--   returnee_id).
-- * sms_out_open_idx (002: messages without a final report, by
--   created_at) named dlr_state through its WHERE, so every delivery
--   report was a full update; no query used it (the sweep of notices
--   works on notice_outbox).  Dropped: Kannel's answer and both reports
--   are HOT updates.
-- * Both tables were filled to the brim (fillfactor 100): an update
--   found no room on its row's page and went elsewhere.  They keep 30 %
--   of each new page for updates.
--
-- notice_claim() asked notice_capped() (SQL functions, planned again at
-- every call) twice per claimed row; it now counts the number's recent
-- notice SMS in one statement of its own, with the same rule, and its
-- statements keep one generic plan per connection.  notice_sweep() and the claim find their rows
-- through phase.

-- set first: adding phase rewrites notice_outbox, at this fillfactor
ALTER TABLE notice_outbox SET (fillfactor = 70);
ALTER TABLE sms_out SET (fillfactor = 70);

-- 0: queued (the dispatcher's queue); 1: claimed, accepted, submitted or
-- buffered (open: the sweep watches it, it holds its notice open); 2:
-- anything else (final: skipped, unknown, failed, rejected, delivered,
-- expired, undelivered, cancelled).
ALTER TABLE notice_outbox ADD COLUMN phase smallint
    GENERATED ALWAYS AS (CASE
        WHEN state = 'queued' THEN 0
        WHEN state IN ('claimed', 'accepted', 'submitted', 'buffered') THEN 1
        ELSE 2 END) STORED;
COMMENT ON COLUMN notice_outbox.phase IS
    '0 queued, 1 open (claimed, accepted, submitted, buffered), 2 final; '
    'from state, for the indexes (migration 022)';

DROP INDEX notice_outbox_queued_idx;
DROP INDEX notice_outbox_open_idx;
DROP INDEX notice_outbox_notice_state_idx;
CREATE INDEX notice_outbox_queued_idx ON notice_outbox (notice_id, id)
    WHERE phase = 0;
CREATE INDEX notice_outbox_open_idx ON notice_outbox (claimed_at)
    WHERE phase = 1;
-- a notice with rows queued or open is not complete
CREATE INDEX notice_outbox_unfinished_idx ON notice_outbox (notice_id)
    WHERE phase < 2;

DROP INDEX sms_out_open_idx;

-- As 008, with the queue found through phase and the per-person cap
-- counted here: notice_capped(msisdn, now(), cap_n, cap_days, cap_day)
-- is true when the number's notice SMS that may have reached it (every
-- claimed row but queued, skipped, failed, rejected and cancelled ones)
-- number cap_n or more within cap_days days, or least(cap_day, 3) or more
-- within 24 hours -- one count over the longer of the two periods.
CREATE OR REPLACE FUNCTION notice_claim(p_worker text, p_limit int,
                                        p_validity_min int, p_cap_n int,
                                        p_cap_days int, p_cap_day int,
                                        p_notice bigint DEFAULT NULL)
RETURNS TABLE (outbox_id bigint, notice_id bigint, sms_id uuid,
               msisdn text, body text, ucs2 boolean, parts int)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_id uuid;
    v_en boolean;
    v_period int;
    v_day int;
BEGIN
    FOR r IN
        SELECT o.id, o.notice_id, o.msisdn, o.lang, n.sms_bn, n.sms_en,
               n.parts_bn, n.parts_en, n.ucs2_en, n.hourly_cap
          FROM notice_outbox o JOIN notices n ON n.id = o.notice_id
         WHERE o.phase = 0 AND o.state = 'queued' AND n.state = 'sending'
           AND (p_notice IS NULL OR o.notice_id = p_notice)
         ORDER BY o.notice_id, o.id
         LIMIT p_limit
           FOR UPDATE OF o SKIP LOCKED
    LOOP
        IF NOT pg_try_advisory_xact_lock(hashtext('remigate.notice.msisdn'),
                                         hashtext(r.msisdn)) THEN
            CONTINUE;
        END IF;
        IF EXISTS (SELECT 1 FROM sms_optout s
                    WHERE s.msisdn = r.msisdn AND s.opted_out) THEN
            UPDATE notice_outbox SET state = 'skipped', reason = 'opted_out',
                   final_at = now()
             WHERE id = r.id;
            CONTINUE;
        END IF;
        SELECT count(*) FILTER (WHERE x.claimed_at > now()
                                      - make_interval(days => p_cap_days)),
               count(*) FILTER (WHERE x.claimed_at > now()
                                      - interval '24 hours')
          INTO v_period, v_day
          FROM notice_outbox x
         WHERE x.msisdn = r.msisdn
           AND x.claimed_at > now() - greatest(make_interval(
                                  days => p_cap_days), interval '24 hours')
           AND x.state NOT IN ('queued', 'skipped', 'failed', 'rejected',
                               'cancelled');
        IF v_period >= p_cap_n OR v_day >= least(greatest(p_cap_day, 1), 3)
        THEN
            UPDATE notice_outbox SET state = 'skipped', reason = 'freq_cap',
                   final_at = now()
             WHERE id = r.id;
            CONTINUE;
        END IF;
        IF r.hourly_cap IS NOT NULL AND (
               SELECT count(*) FROM notice_outbox x
                WHERE x.notice_id = r.notice_id
                  AND x.claimed_at > now() - interval '1 hour')
               >= r.hourly_cap THEN
            CONTINUE;
        END IF;
        v_en := r.lang = 'en' AND r.sms_en IS NOT NULL;
        v_id := gen_random_uuid();
        INSERT INTO sms_out (id, msisdn, kind, text, coding)
        VALUES (v_id, r.msisdn, 'notice',
                CASE WHEN v_en THEN r.sms_en ELSE r.sms_bn END,
                CASE WHEN v_en AND NOT coalesce(r.ucs2_en, true) THEN 0
                     ELSE 2 END);
        UPDATE notice_outbox o
           SET state = 'claimed', sms_id = v_id, claimed_at = now(),
               claimed_by = p_worker,
               parts = CASE WHEN v_en THEN r.parts_en ELSE r.parts_bn END,
               expires_at = now() + make_interval(mins => p_validity_min)
                            + interval '1 hour'
         WHERE o.id = r.id;
        outbox_id := r.id;
        notice_id := r.notice_id;
        sms_id := v_id;
        msisdn := r.msisdn;
        body := CASE WHEN v_en THEN r.sms_en ELSE r.sms_bn END;
        ucs2 := NOT v_en OR coalesce(r.ucs2_en, true);
        parts := CASE WHEN v_en THEN r.parts_en ELSE r.parts_bn END;
        RETURN NEXT;
    END LOOP;
END
$$;
-- Its statements' plans do not hang on the values (a number, a notice):
-- without this PostgreSQL kept planning the count above afresh at every
-- row (custom plans looked cheaper than the generic one), 155 us a row.
ALTER FUNCTION notice_claim(text, int, int, int, int, int, bigint)
    SET plan_cache_mode = force_generic_plan;

-- As 018, each row found through phase (the same rows: phase 1 is
-- exactly the states named).
CREATE OR REPLACE FUNCTION notice_sweep(p_lost_after interval)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    v_a int;
    v_b int;
    v_c int;
BEGIN
    UPDATE notice_outbox SET state = 'unknown', reason = 'lost',
           final_at = now()
     WHERE phase = 1 AND state = 'claimed'
       AND claimed_at < now() - p_lost_after;
    GET DIAGNOSTICS v_a = ROW_COUNT;
    UPDATE notice_outbox SET state = 'expired', reason = 'no_report',
           final_at = now()
     WHERE phase = 1 AND state IN ('accepted', 'submitted', 'buffered')
       AND claimed_at IS NOT NULL AND expires_at < now();
    GET DIAGNOSTICS v_b = ROW_COUNT;
    UPDATE notices n SET state = 'completed', finished_at = now(),
           updated_at = now(), version = version + 1
     WHERE n.state = 'sending'
       AND NOT EXISTS (SELECT 1 FROM notice_outbox o
                        WHERE o.notice_id = n.id AND o.phase < 2);
    GET DIAGNOSTICS v_c = ROW_COUNT;
    RETURN v_a + v_b + v_c;
END
$$;
