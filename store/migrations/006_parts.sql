-- 006_parts: a registration comes in parts that each fit one USSD session
-- (config/flows/register.conf): "register" (who you are: the record is
-- pending from here on), "register_abroad" (time abroad, schooling) and
-- "register_skills" (skills, main need).  parts_done holds the names of
-- the parts saved, sorted, so that an officer sees what the caller has told
-- so far and what is still to come.  Records made before parts existed
-- came from the one-flow registration, which asked everything.
ALTER TABLE returnees ADD COLUMN parts_done text[] NOT NULL DEFAULT '{}';
UPDATE returnees
   SET parts_done = '{register,register_abroad,register_skills}';
COMMENT ON COLUMN returnees.parts_done IS
    'registration parts saved: register, register_abroad, register_skills';

-- The one reminder SMS to a caller who left a part undone
-- (sessions.remind_after) is an sms_out row of its own kind.
ALTER TABLE sms_out DROP CONSTRAINT sms_out_kind_check;
ALTER TABLE sms_out ADD CONSTRAINT sms_out_kind_check
    CHECK (kind IN ('reply', 'confirmation', 'notice', 'reminder'));
