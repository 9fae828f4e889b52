-- 009_notice_interest: replies of interest to programme notices.  A
-- number that was sent a notice answers with the programme's reply code
-- ("J12", any case), or with "1" when exactly one open notice reached it
-- in the last 7 days; the reply is kept once per notice and number
-- (notice_interest, 008) for the officer's call list.
--
-- notice_interest_record() says what came of one reply: 1 recorded, 2
-- already recorded, 3 "1" is ambiguous (several open notices: the caller
-- is asked for the code), 0 not a reply to any notice this number got.
-- "Sent" means a claimed row that may have reached the phone (the same
-- states the per-person cap counts); "open" means the notice was not
-- cancelled and its programme's deadline has not passed (Dhaka date).
CREATE FUNCTION notice_interest_record(p_msisdn text, p_word text)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    v_word text := upper(btrim(p_word));
    v_notice bigint;
    v_outbox bigint;
    v_returnee bigint;
    v_n int;
BEGIN
    IF v_word = '1' THEN
        SELECT count(DISTINCT o.notice_id) INTO v_n
          FROM notice_outbox o JOIN notices n ON n.id = o.notice_id
          JOIN programmes p ON p.id = n.programme_id
         WHERE o.msisdn = p_msisdn AND o.claimed_at > now() - interval '7 days'
           AND o.state NOT IN ('queued', 'skipped', 'failed', 'rejected',
                               'cancelled')
           AND n.state <> 'cancelled'
           AND (p.deadline IS NULL OR p.deadline >=
                ((now() AT TIME ZONE 'UTC') + interval '6 hours')::date);
        IF v_n = 0 THEN
            RETURN 0;
        ELSIF v_n > 1 THEN
            RETURN 3;
        END IF;
        SELECT o.notice_id, o.id, o.returnee_id
          INTO v_notice, v_outbox, v_returnee
          FROM notice_outbox o JOIN notices n ON n.id = o.notice_id
          JOIN programmes p ON p.id = n.programme_id
         WHERE o.msisdn = p_msisdn AND o.claimed_at > now() - interval '7 days'
           AND o.state NOT IN ('queued', 'skipped', 'failed', 'rejected',
                               'cancelled')
           AND n.state <> 'cancelled'
           AND (p.deadline IS NULL OR p.deadline >=
                ((now() AT TIME ZONE 'UTC') + interval '6 hours')::date)
         ORDER BY o.claimed_at DESC LIMIT 1;
    ELSE
        SELECT o.notice_id, o.id, o.returnee_id
          INTO v_notice, v_outbox, v_returnee
          FROM notice_outbox o JOIN notices n ON n.id = o.notice_id
          JOIN programmes p ON p.id = n.programme_id
         WHERE o.msisdn = p_msisdn AND p.reply_code = v_word
           AND o.claimed_at IS NOT NULL
           AND o.state NOT IN ('queued', 'skipped', 'failed', 'rejected',
                               'cancelled')
         ORDER BY o.claimed_at DESC LIMIT 1;
        IF v_notice IS NULL THEN
            RETURN 0;
        END IF;
    END IF;
    INSERT INTO notice_interest (notice_id, outbox_id, returnee_id, msisdn,
                                 said)
    VALUES (v_notice, v_outbox, v_returnee, p_msisdn, left(p_word, 32))
    ON CONFLICT (notice_id, msisdn) DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN CASE WHEN v_n = 1 THEN 1 ELSE 2 END;
END
$$;
