-- 018_notice_rejected_final: a recipient 'rejected' (delivery report 16:
-- the SMSC refused the SMS, or Kannel discarded it after sms-resend-retry
-- refusals) is final, as notices_rstate_final() says.  008 kept it open:
-- the sweep turned it into 'expired' (reason 'no_report') at validity +
-- 1 h, losing the rejection, and its notice could not complete before.
-- Now the row gets its final_at when the report comes, no later report
-- moves it, the sweep leaves it and it does not hold its notice open.
-- Rows 008 expired that way are given back their rejection.

DROP INDEX notice_outbox_open_idx;
CREATE INDEX notice_outbox_open_idx ON notice_outbox (claimed_at)
    WHERE state IN ('claimed', 'accepted', 'submitted', 'buffered');

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
     WHERE state = 'claimed' AND claimed_at < now() - p_lost_after;
    GET DIAGNOSTICS v_a = ROW_COUNT;
    UPDATE notice_outbox SET state = 'expired', reason = 'no_report',
           final_at = now()
     WHERE state IN ('accepted', 'submitted', 'buffered')
       AND claimed_at IS NOT NULL AND expires_at < now();
    GET DIAGNOSTICS v_b = ROW_COUNT;
    UPDATE notices n SET state = 'completed', finished_at = now(),
           updated_at = now(), version = version + 1
     WHERE n.state = 'sending'
       AND NOT EXISTS (SELECT 1 FROM notice_outbox o
                        WHERE o.notice_id = n.id
                          AND o.state IN ('queued', 'claimed', 'accepted',
                                          'submitted', 'buffered'));
    GET DIAGNOSTICS v_c = ROW_COUNT;
    RETURN v_a + v_b + v_c;
END
$$;

-- As in 008, but a 'rejected' row is final: no report moves it.
CREATE OR REPLACE FUNCTION notice_outbox_dlr() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_state text := remigate_dlr_rstate(NEW.dlr_state, NEW.dlr_answer);
BEGIN
    IF v_state IS NULL THEN
        RETURN NEW;
    END IF;
    UPDATE notice_outbox o SET
           state = v_state,
           reason = CASE WHEN v_state IN ('expired', 'undelivered',
                                          'delivered', 'rejected')
                         THEN remigate_receipt_stat(NEW.dlr_answer) END,
           final_at = CASE WHEN v_state IN ('expired', 'undelivered',
                                            'delivered', 'rejected')
                           THEN now() END
     WHERE o.sms_id = NEW.id
       AND (o.state IN ('claimed', 'unknown', 'accepted', 'submitted',
                        'buffered')
            OR (o.state = 'expired' AND o.reason = 'no_report'));
    RETURN NEW;
END
$$;

-- Rows 008's sweep expired although their SMS was rejected; rejected
-- rows without final_at.
UPDATE notice_outbox o SET state = 'rejected',
       reason = remigate_receipt_stat(s.dlr_answer)
  FROM sms_out s
 WHERE s.id = o.sms_id AND o.state = 'expired' AND o.reason = 'no_report'
   AND remigate_dlr_rstate(s.dlr_state, s.dlr_answer) = 'rejected';
UPDATE notice_outbox SET final_at = coalesce(answered_at, now())
 WHERE state = 'rejected' AND final_at IS NULL;
