#!/usr/bin/env bash
# tests/integration/test_review_sql.sh -- migrations 005 and 013 straight
# in SQL:
# district scoping by row-level security for the console's role, and the
# decision functions (verify, needs info, reject, correct, undo, reopen,
# revoke) with their version checks, held SMS and undo window.
#
# The console's role (remigate_console) is neither superuser nor BYPASSRLS
# and owns no table.  With officer A's district set it sees none of
# district B's rows in returnees, submissions, decisions, corrections or
# sms_out -- not by a WHERE, a join, a subquery, a CTE, a UNION, an
# aggregate, nor through a function that reports every row it is shown;
# it cannot update them or move its own rows out of scope.  A transaction
# that set nothing, and an analyst, see nothing; an admin (acting as
# remigate_console_admin, as the console does) sees everything, and only
# with both the admin role and the admin setting; nothing outlives the
# transaction.  The duplicate panel function shows
# another district's record as reference, district and status only.
#
# Uses PG_DSN when tests/run gives one (a fresh database), else starts its
# own PostgreSQL.  Prints "review-sql: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=review-sql
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
itest_tmpdir
itest_suite_servers pg

# sql TEXT: as the owner (the migrating user), one value per line, errors
# too
sql() { srv_psql -At -c "$1" 2>&1; }
# as ROLE DISTRICTS OFFICER SQL...: as the console's role, in one
# transaction with the scope set the way the console sets it (an admin's
# transaction as remigate_console_admin, migration 013; PGROLE overrides);
# prints the last statement's rows (and errors)
as() {
    local role=$1 districts=$2 officer=$3 pgrole=${PGROLE:-}
    shift 3
    if [ -z "$pgrole" ]; then
        pgrole=remigate_console
        [ "$role" = admin ] && pgrole=remigate_console_admin
    fi
    {
        echo "BEGIN; SET LOCAL ROLE $pgrole;"
        [ -n "$role" ] && echo "SELECT set_config('remigate.role', '$role', true) \\g /dev/null"
        [ -n "$districts" ] && echo "SELECT set_config('remigate.districts', '$districts', true) \\g /dev/null"
        [ -n "$officer" ] && echo "SELECT set_config('remigate.officer', '$officer', true) \\g /dev/null"
        printf '%s\n' "$@"
        echo "COMMIT;"
    } | psql -X -q -v ON_ERROR_STOP=1 -At "$PG_DSN" 2>&1
}
A() { as officer dhaka,gazipur 11 "$@"; }   # officer A: two districts
B() { as officer sylhet 22 "$@"; }          # officer B
ADMIN() { as admin '' 1 "$@"; }

itest_config "$PG_DSN"
check "migrate applies 005" grep -q 005_review "$tmp/out"
is "005 recorded" 1 "$(sql "SELECT count(*) FROM schema_migrations WHERE version = 5")"

# --- the role ------------------------------------------------------------
is "console role: not superuser, no BYPASSRLS, cannot log in" "f|f|f" \
    "$(sql "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'remigate_console'")"
is "console role owns no table" 0 \
    "$(sql "SELECT count(*) FROM pg_tables WHERE tableowner = 'remigate_console'")"
is "admin console role: not superuser, no BYPASSRLS, cannot log in, a member of remigate_console" "f|f|f|t" \
    "$(sql "SELECT rolsuper, rolbypassrls, rolcanlogin, pg_has_role(oid, 'remigate_console', 'MEMBER') FROM pg_roles WHERE rolname = 'remigate_console_admin'")"
is "admin console role owns no table" 0 \
    "$(sql "SELECT count(*) FROM pg_tables WHERE tableowner = 'remigate_console_admin'")"
is "officers' role is not a member of the admin role" f \
    "$(sql "SELECT pg_has_role('remigate_console', 'remigate_console_admin', 'MEMBER')")"
is "RLS on for every table with personal data" 5 \
    "$(sql "SELECT count(*) FROM pg_class WHERE relname IN ('returnees','submissions','decisions','corrections','sms_out') AND relrowsecurity")"

# --- data: 3 records in dhaka, 1 in gazipur, 3 in sylhet; one NID hash
# shared by a dhaka and a sylhet record ----------------------------------
sql "INSERT INTO returnees (msisdn, name, district, ref, lang, channel, status, nid_enc, nid_hash)
     VALUES ('8801700000001', 'Rahima A1', 'dhaka', 'REFA000001', 'bn', 'ussd', 'pending', '\\x01', '\\xaa'),
            ('8801700000002', 'Karim A2', 'dhaka', 'REFA000002', 'en', 'sms', 'pending', NULL, NULL),
            ('8801700000003', 'Salma A3', 'dhaka', 'REFA000003', 'bn', 'ussd', 'pending', NULL, NULL),
            ('8801700000004', 'Jamal G1', 'gazipur', 'REFG000001', 'bn', 'ussd', 'pending', NULL, NULL),
            ('8801700000011', 'Secret B1', 'sylhet', 'REFB000001', 'bn', 'ussd', 'verified', '\\x02', '\\xaa'),
            ('8801700000012', 'Secret B2', 'sylhet', 'REFB000002', 'bn', 'ussd', 'pending', NULL, NULL),
            ('8801700000013', 'Secret B3', 'sylhet', 'REFB000003', 'bn', 'ussd', 'pending', NULL, NULL);
     INSERT INTO submissions (idempotency_key, kind, ref, msisdn, answers, returnee_id)
     SELECT 'k-' || ref, 'register', ref, msisdn, jsonb_build_object('name', name), id FROM returnees;
     INSERT INTO sms_out (id, msisdn, kind, text, coding, returnee_id)
     SELECT gen_random_uuid(), msisdn, 'reply', 'ref ' || ref, 0, id FROM returnees;" >/dev/null

# --- nothing set, analyst: nothing ---------------------------------------
is "no scope set: no returnees" 0 "$(as '' '' '' "SELECT count(*) FROM returnees;")"
is "no scope set: no submissions, no SMS" "0|0" \
    "$(as '' '' '' "SELECT (SELECT count(*) FROM submissions), (SELECT count(*) FROM sms_out);")"
is "analyst: no rows" "0|0|0" \
    "$(as analyst dhaka 5 "SELECT (SELECT count(*) FROM returnees), (SELECT count(*) FROM submissions), (SELECT count(*) FROM sms_out);")"
is "districts set without the officer role: no rows" 0 \
    "$(as '' dhaka 5 "SELECT count(*) FROM returnees;")"

# --- officer A -----------------------------------------------------------
is "officer A sees the 4 records of their 2 districts" 4 "$(A "SELECT count(*) FROM returnees;")"
is "officer A: WHERE district = 'sylhet' gives nothing" 0 \
    "$(A "SELECT count(*) FROM returnees WHERE district = 'sylhet';")"
is "officer A: by B's phone number, nothing" 0 \
    "$(A "SELECT count(*) FROM returnees WHERE msisdn = '8801700000011';")"
is "officer A: by B's reference, nothing" 0 \
    "$(A "SELECT count(*) FROM returnees WHERE ref LIKE 'REFB%';")"
is "officer A: submissions only of their records" 4 "$(A "SELECT count(*) FROM submissions;")"
is "officer A: join submissions x returnees, no sylhet row" 0 \
    "$(A "SELECT count(*) FROM submissions s LEFT JOIN returnees r ON r.msisdn = s.msisdn WHERE s.ref LIKE 'REFB%' OR r.district = 'sylhet';")"
is "officer A: a subquery over submissions for B's numbers" 0 \
    "$(A "SELECT count(*) FROM submissions WHERE msisdn IN (SELECT '88017000000' || g FROM generate_series(11, 13) g);")"
is "officer A: CTE and UNION ALL over every table" 0 \
    "$(A "WITH x AS (SELECT ref FROM returnees UNION ALL SELECT ref FROM submissions UNION ALL SELECT text FROM sms_out) SELECT count(*) FROM x WHERE x.ref LIKE '%REFB%';")"
is "officer A: an aggregate over all names has no B name" "" \
    "$(A "SELECT string_agg(name, ',') FILTER (WHERE name LIKE 'Secret%') FROM returnees;")"
is "officer A: EXISTS probing for a sylhet row" f \
    "$(A "SELECT EXISTS (SELECT 1 FROM returnees WHERE district = 'sylhet' AND name LIKE 'S%');")"
is "officer A: the SMS of their records only" 4 "$(A "SELECT count(*) FROM sms_out;")"
is "officer A: a lateral join from submissions' answers" 0 \
    "$(A "SELECT count(*) FROM submissions s, LATERAL (SELECT s.answers->>'name' AS n) x WHERE x.n LIKE 'Secret%';")"

# a function that reports every row it is handed: RLS filters first (the
# function is not leakproof), so it is never shown a sylhet row
sql "CREATE FUNCTION leak(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS \$\$
     BEGIN RAISE NOTICE 'saw %', t; RETURN true; END \$\$;
     GRANT EXECUTE ON FUNCTION leak(text) TO remigate_console;" >/dev/null
out=$(A "SET client_min_messages = notice;" "SELECT count(*) FROM returnees WHERE leak(name);")
if echo "$out" | grep -q 'saw Rahima' && ! echo "$out" | grep -q 'Secret'; then
    ok "officer A: a cheap reporting function in WHERE sees only A's rows"
else
    bad "officer A: a cheap reporting function in WHERE sees only A's rows" "$out"
fi
out=$(A "SET client_min_messages = notice;" "SELECT count(*) FROM submissions WHERE leak(answers::text);")
if echo "$out" | grep -q 'Rahima' && ! echo "$out" | grep -q 'Secret'; then
    ok "officer A: the same over submissions"
else
    bad "officer A: the same over submissions" "$out"
fi

# writes
A "UPDATE returnees SET name = 'x' WHERE district = 'sylhet' OR ref LIKE 'REFB%';" >/dev/null
is "officer A: UPDATE of sylhet rows touches none" 0 "$(sql "SELECT count(*) FROM returnees WHERE name = 'x'")"
out=$(A "UPDATE returnees SET district = 'sylhet' WHERE ref = 'REFA000003';")
if echo "$out" | grep -q 'row-level security'; then
    ok "officer A: moving their record to sylhet is refused"
else
    bad "officer A: moving their record to sylhet is refused" "$out"
fi
is "... and it stayed in dhaka" dhaka "$(sql "SELECT district FROM returnees WHERE ref = 'REFA000003'")"
rid_b=$(sql "SELECT id FROM returnees WHERE ref = 'REFB000001'")
out=$(A "INSERT INTO sms_out (id, msisdn, kind, text, coding, returnee_id) VALUES (gen_random_uuid(), '8801700000011', 'reply', 'x', 0, $rid_b);")
if echo "$out" | grep -q 'row-level security'; then
    ok "officer A: an SMS row for B's record is refused"
else
    bad "officer A: an SMS row for B's record is refused" "$out"
fi
out=$(A "DELETE FROM returnees;")
if echo "$out" | grep -q 'permission denied'; then ok "console role may not delete records"; else bad "console role may not delete records" "$out"; fi

# --- officer B, admin, and the end of the transaction --------------------
is "officer B sees only sylhet's 3" "3|sylhet" \
    "$(B "SELECT count(*), string_agg(DISTINCT district, ',') FROM returnees;")"
is "admin sees all 7" 7 "$(ADMIN "SELECT count(*) FROM returnees;")"
# each path sees exactly its rows, table by table (ids compared with the
# owner's own answer), and neither role is wider than its settings
ids() { sql "SELECT coalesce(string_agg(x.id::text, ',' ORDER BY x.id), '') FROM $1 x JOIN returnees r ON r.id = x.$2 WHERE $3"; }
seen() { echo "$1" | tail -n 1; }
for t in returnees:id submissions:returnee_id sms_out:returnee_id; do
    tab=${t%%:*} col=${t#*:}
    is "officer path, $tab: exactly dhaka's and gazipur's rows" \
        "$(ids "$tab" "$col" "r.district IN ('dhaka', 'gazipur')")" \
        "$(seen "$(A "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM $tab;")")"
    is "admin path, $tab: exactly every row" "$(ids "$tab" "$col" "true")" \
        "$(seen "$(ADMIN "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM $tab;")")"
done
is "admin settings under the officers' role: no row (the admin policy is the admin role's)" "0|0|0" \
    "$(PGROLE=remigate_console as admin '' 1 "SELECT (SELECT count(*) FROM returnees), (SELECT count(*) FROM submissions), (SELECT count(*) FROM sms_out);")"
is "the admin role with an officer's settings: that officer's districts only" "1|gazipur" \
    "$(PGROLE=remigate_console_admin as officer gazipur 11 "SELECT count(*), string_agg(DISTINCT district, ',') FROM returnees;")"
is "the admin role with no settings, or an analyst's: no row" "0|0" \
    "$(PGROLE=remigate_console_admin as '' '' '' "SELECT count(*) FROM returnees;")|$(PGROLE=remigate_console_admin as analyst dhaka 5 "SELECT count(*) FROM returnees;")"
is "officer A's transaction switched to the admin role still sees A's 4 only" 4 \
    "$(seen "$(A "SET LOCAL ROLE remigate_console_admin;" "SELECT count(*) FROM returnees;")")"
is "the officers' queue query keeps to the policy: A's pending, oldest first" \
    "$(sql "SELECT string_agg(ref, ',' ORDER BY created_at, id) FROM returnees WHERE district IN ('dhaka', 'gazipur') AND status = 'pending'")" \
    "$(seen "$(A "SELECT string_agg(ref, ',' ORDER BY created_at, id) FROM (SELECT q.* FROM unnest(remigate_scope_districts()) s(code) CROSS JOIN LATERAL (SELECT r.ref, r.created_at, r.id FROM returnees r WHERE r.district = s.code AND r.status = 'pending' ORDER BY r.created_at, r.id LIMIT 50) q) x;")")"
is "page duplicate flags: A's record with a twin in sylhet, asked by A" \
    "$(sql "SELECT id FROM returnees WHERE ref = 'REFA000001'")" \
    "$(A "SELECT array_to_string(remigate_duplicate_ids(array_agg(id)), ',') FROM (SELECT id FROM returnees) x;")"
is "page duplicate flags: B's ids asked by A give nothing" "" \
    "$(A "SELECT array_to_string(remigate_duplicate_ids(ARRAY(SELECT id FROM returnees WHERE false) || '$(sql "SELECT string_agg(id::text, ',') FROM returnees WHERE district = 'sylhet'" | sed 's/^/{/; s/$/}/')'::bigint[]), ',');")"
is "page duplicate flags: the admin gets both twins" \
    "$(sql "SELECT string_agg(id::text, ',' ORDER BY id) FROM returnees WHERE nid_hash = '\\xaa'")" \
    "$(ADMIN "SELECT array_to_string(remigate_duplicate_ids(ARRAY(SELECT id FROM returnees)), ',');")"
is "page duplicate flags: no scope, nothing" "" \
    "$(as '' '' '' "SELECT array_to_string(remigate_duplicate_ids(ARRAY(SELECT id FROM returnees)), ',');")"
is "the scope ends with the transaction" "4|0" \
    "$(printf '%s\n' "BEGIN; SET LOCAL ROLE remigate_console;" \
        "SELECT set_config('remigate.role', 'officer', true) \\g /dev/null" \
        "SELECT set_config('remigate.districts', 'dhaka,gazipur', true) \\g /dev/null" \
        "SELECT count(*) FROM returnees; COMMIT;" \
        "BEGIN; SET LOCAL ROLE remigate_console; SELECT count(*) FROM returnees; COMMIT;" |
        psql -X -q -At "$PG_DSN" 2>&1 | paste -sd'|')"

# --- duplicate panel -----------------------------------------------------
is "duplicates of A's record: B's ref, district, status only" "REFB000001|sylhet|verified" \
    "$(A "SELECT * FROM remigate_duplicates('REFA000001');")"
is "duplicates of B's record asked by A: nothing" "" \
    "$(A "SELECT * FROM remigate_duplicates('REFB000001');")"
is "duplicate panel: no scope, nothing" "" \
    "$(as '' '' '' "SELECT * FROM remigate_duplicates('REFA000001');")"

# --- decisions -----------------------------------------------------------
v=$(sql "SELECT version FROM returnees WHERE ref = 'REFA000001'")
# decide REF VERSION ACTION REASON [HOLD_S] -> outcome|status|version|has sms_at
decide() {
    local who=${6:-A}
    "$who" "SELECT outcome, status, version, sms_at IS NOT NULL FROM remigate_decide('$1', $2, '$3', ${4:-NULL}, NULL, gen_random_uuid(), 'bn text {$1}', 2, 'en text {$1}', 0, ${5:-0});"
}
is "verify at a stale version: stale, nothing changes" "stale|pending|$v|f" "$(decide REFA000001 $((v - 1)) verify)"
is "verify B's record as A: not found" "not_found|||f" "$(decide REFB000002 1 verify)"
is "reject without a reason: refused" "no_reason|pending|$v|f" "$(decide REFA000001 "$v" reject)"
is "verify: verified, new version, SMS held" "ok|verified|$((v + 1))|t" "$(decide REFA000001 "$v" verify)"
is "  the decisions row" "verify|pending|verified|11" \
    "$(sql "SELECT d.action, d.from_status, d.to_status, d.officer_id FROM decisions d JOIN returnees r ON r.id = d.returnee_id WHERE r.ref = 'REFA000001'")"
is "  the SMS: Bangla for a bn record, held, linked, as a confirmation" "bn text {REFA000001}|2|held|confirmation|t" \
    "$(sql "SELECT s.text, s.coding, s.hold_state, s.kind, s.id = d.sms_id FROM sms_out s JOIN decisions d ON d.sms_id = s.id JOIN returnees r ON r.id = d.returnee_id WHERE r.ref = 'REFA000001'")"
is "  verified_by is the officer" 11 "$(sql "SELECT verified_by FROM returnees WHERE ref = 'REFA000001'")"
is "verify again: bad state" "bad_state|verified|$((v + 1))|f" "$(decide REFA000001 $((v + 1)) verify)"
is "revoke by an officer: admins only" "not_admin|verified|$((v + 1))|f" "$(decide REFA000001 $((v + 1)) revoke "'other'")"

v2=$(sql "SELECT version FROM returnees WHERE ref = 'REFA000002'")
is "needs info on an English record: English SMS" "ok|needs_info" \
    "$(decide REFA000002 "$v2" needs_info "'documents'" | cut -d'|' -f1,2)"
is "  SMS text and coding" "en text {REFA000002}|0" \
    "$(sql "SELECT text, coding FROM sms_out WHERE hold_state = 'held' AND msisdn = '8801700000002'")"
is "  the reason is kept" documents "$(sql "SELECT info_reason FROM returnees WHERE ref = 'REFA000002'")"

v3=$(sql "SELECT version FROM returnees WHERE ref = 'REFA000003'")
is "reject with a reason, held 60 s" "ok|rejected|$((v3 + 1))|t" "$(decide REFA000003 "$v3" reject "'test'" 60)"
is "  undo by another officer of the district: not theirs" "not_yours" \
    "$(as officer dhaka 33 "SELECT outcome FROM remigate_undo('REFA000003');")"
is "  undo within the window: pending again, SMS cancelled" "ok|pending" \
    "$(A "SELECT outcome, status FROM remigate_undo('REFA000003');")"
is "  record as before" "pending|||" \
    "$(sql "SELECT status, reject_reason, decided_by, verified_by FROM returnees WHERE ref = 'REFA000003'")"
is "  the held SMS is cancelled" cancelled \
    "$(sql "SELECT s.hold_state FROM sms_out s JOIN decisions d ON d.sms_id = s.id JOIN returnees r ON r.id = d.returnee_id WHERE r.ref = 'REFA000003'")"
is "  undo twice: nothing to undo" nothing "$(A "SELECT outcome FROM remigate_undo('REFA000003');")"
is "undo after the window (held 0 s): too late" too_late "$(A "SELECT outcome FROM remigate_undo('REFA000001');")"
v3=$(sql "SELECT version FROM returnees WHERE ref = 'REFA000003'")
decide REFA000003 "$v3" reject "'test'" 60 >/dev/null
sql "UPDATE sms_out SET hold_state = 'sending' WHERE hold_state = 'held' AND msisdn = '8801700000003'" >/dev/null
is "undo once the SMS was claimed for sending: too late" too_late "$(A "SELECT outcome FROM remigate_undo('REFA000003');")"

# correct then verify
v4=$(sql "SELECT version FROM returnees WHERE ref = 'REFG000001'")
is "correct with a field not allowed: refused" bad_field \
    "$(A "SELECT outcome FROM remigate_correct('REFG000001', $v4, '{\"msisdn\":\"8801\"}', gen_random_uuid(), 'b', 2, 'e', 0, 0);")"
is "correct name and sex, then verified" "ok|verified" \
    "$(A "SELECT outcome, status FROM remigate_correct('REFG000001', $v4, '{\"name\":\"Jamal Uddin\",\"sex\":\"m\",\"district\":\"gazipur\"}', gen_random_uuid(), 'b', 2, 'e', 0, 60);")"
is "  one corrections row per changed field, old -> new" '"Jamal G1"->"Jamal Uddin"|null->"m"' \
    "$(sql "SELECT string_agg(coalesce(old_value::text, 'null') || '->' || new_value::text, '|' ORDER BY field) FROM corrections")"
is "  the record holds the new values" "Jamal Uddin|m|verified" \
    "$(sql "SELECT name, sex, status FROM returnees WHERE ref = 'REFG000001'")"
is "  undo restores the old values" "ok|Jamal G1||pending" \
    "$(A "SELECT outcome FROM remigate_undo('REFG000001');")|$(sql "SELECT name, sex, status FROM returnees WHERE ref = 'REFG000001'")"
is "  corrections stay as history (append-only)" 2 "$(sql "SELECT count(*) FROM corrections")"
out=$(A "SELECT outcome FROM remigate_correct('REFG000001', $(sql "SELECT version FROM returnees WHERE ref = 'REFG000001'"), '{\"district\":\"sylhet\"}', gen_random_uuid(), 'b', 2, 'e', 0, 0);")
if echo "$out" | grep -q 'row-level security'; then
    ok "correcting the district out of the officer's scope is refused"
else
    bad "correcting the district out of the officer's scope is refused" "$out"
fi

# final decisions need an admin
vb=$(sql "SELECT version FROM returnees WHERE ref = 'REFB000001'")
is "revoke a verified record as admin: rejected" "ok|rejected" \
    "$(decide REFB000001 "$vb" revoke "'invalid_id'" 0 ADMIN | cut -d'|' -f1,2)"
vb=$(sql "SELECT version FROM returnees WHERE ref = 'REFB000001'")
is "reopen as officer B: admins only" not_admin "$(decide REFB000001 "$vb" reopen "'other'" 0 B | cut -d'|' -f1)"
is "reopen as admin: pending, no SMS" "ok|pending|f" \
    "$(ADMIN "SELECT outcome, status, sms_at IS NOT NULL FROM remigate_decide('REFB000001', $vb, 'reopen', 'other', NULL, NULL, NULL, NULL, NULL, NULL, 0);")"

# versions move with every change, from any side
va=$(sql "SELECT version FROM returnees WHERE ref = 'REFB000002'")
sql "UPDATE returnees SET skills = '{a}' WHERE ref = 'REFB000002'" >/dev/null
is "an update by the phone side bumps the version" $((va + 1)) "$(sql "SELECT version FROM returnees WHERE ref = 'REFB000002'")"
is "decisions and corrections: officer A sees only their own records'" "0|0" \
    "$(A "SELECT (SELECT count(*) FROM decisions d JOIN returnees r ON r.id = d.returnee_id WHERE r.district = 'sylhet'), (SELECT count(*) FROM decisions WHERE returnee_id = $rid_b);")"
is "officer B sees no dhaka decision" 0 \
    "$(B "SELECT count(*) FROM decisions d WHERE d.returnee_id IN (SELECT id FROM returnees WHERE district = 'dhaka');"; )"
is "officer B sees the decisions on their records" 2 "$(B "SELECT count(*) FROM decisions;")"
finish
