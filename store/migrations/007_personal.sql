-- 007_personal: the personal answers that are not ID numbers (the name,
-- and whatever else flows/flow.h declares personal) are kept encrypted,
-- as one JSON object bound to the msisdn (XChaCha20-Poly1305, the key of
-- crypto.key_file; store_id_decrypt() opens it), no longer in clear in
-- returnees.name nor in submissions.answers (there they read "***").
-- Rows written before this migration keep their name in clear until the
-- returnee registers again.  (004-006 are the officer console's and the
-- registration parts'.)

ALTER TABLE returnees ADD COLUMN personal_enc bytea,
    -- keyed BLAKE2b of the same JSON: tells a changed name from the same
    -- one (a verified record stays verified) without decrypting
    ADD COLUMN personal_hash bytea,
    ADD CHECK ((personal_enc IS NULL) = (personal_hash IS NULL));
