#!/usr/bin/env bash
# tests/integration/test_console_fold.sh -- the session check folded into
# the handler's transaction (CON_FOLD: the queue's pages and a record
# opened), through the real daemon, PostgreSQL and Redis.
#
# Once a worker has seen a session live, its next page or record runs in
# one transaction with the check last; the daemon's debug log says
# "api session folded" for each.  What must not change: a session ended
# elsewhere (the table edited as another worker's logout does, `officer
# disable` from the command line, idle), districts changed by an admin, a
# role refused at the gate -- each in force on the very next request,
# with the same answer, session end and audit rows as without the fold
# (no record.open row from an attempt that was refused, exactly one
# access.denied row for one refusal); a bad filter answered 422 only for
# a live session (401 once it is over).  The record's duplicate panel
# (read only for a record flagged possible_duplicate) is the same as
# remigate_duplicates() for a flagged and an unflagged record.
#
# Starts its own Redis and PostgreSQL.  Prints
# "console-fold: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=console-fold
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pid=
itest_servers redis pg
itest_config "$PG_DSN"

pw='Padma-River-Dawn-7'
printf '%s\n' "$pw" | officer add --username boss --role admin &&
    printf '%s\n' "$pw" | officer add --username rahim --role officer --district BD-13 --district BD-26 &&
    printf '%s\n' "$pw" | officer add --username karim --role officer --district BD-02 &&
    printf '%s\n' "$pw" | officer add --username lima --role officer --district BD-02 &&
    printf '%s\n' "$pw" | officer add --username nasrin --role analyst ||
    { bad "officers added" "$(cat "$tmp/out")"; finish; }

# BD-13 x2 (one sharing an NID hash with a BD-02 record), BD-26 x1,
# BD-02 x2
sql "INSERT INTO returnees (msisdn, district, division, sex, birth_year, country, skills, need, lang, channel, ref, nid_hash, nid_enc, created_at)
     VALUES ('8801800000001', 'BD-13', 'C', 'm', 1985, 'SA', '{construction}', 'loan', 'bn', 'ussd', 'FOLD000001', '\\x01', '\\x00', now() - interval '9 days'),
            ('8801800000002', 'BD-13', 'C', 'f', 1992, 'MY', '{cook}', 'job_home', 'en', 'sms', 'FOLD000002', '\\x02', '\\x00', now() - interval '8 days'),
            ('8801800000003', 'BD-26', 'C', 'm', 1970, 'QA', '{driver}', 'training', 'bn', 'ussd', 'FOLD000003', '\\x03', '\\x00', now() - interval '7 days'),
            ('8801800000004', 'BD-02', 'A', 'f', 2000, 'SA', '{cook}', 'loan', 'bn', 'ussd', 'FOLD000004', '\\x01', '\\x00', now() - interval '6 days'),
            ('8801800000005', 'BD-02', 'A', 'm', 1980, 'SA', '{}', 'loan', 'bn', 'ussd', 'FOLD000005', '\\x05', '\\x00', now() - interval '5 days')" >/dev/null
check "records in three districts, one pair flagged" "[ \"\$(sql \"SELECT string_agg(ref, ',' ORDER BY ref) FROM returnees WHERE possible_duplicate\")\" = FOLD000001,FOLD000004 ]"

itest_daemon --set kannel.secret=fold-test-secret --set console.admin_totp=optional --set log.level=debug

api() {
    local args=(-s -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' --max-time 10 -X "$1")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
    [ -n "${4:-}" ] && args+=(-b "$tmp/jar-$4" -c "$tmp/jar-$4" -H "X-CSRF-Token: ${tok[$4]:-}")
    curl "${args[@]}" "$base$2"
}
declare -A tok
login() {
    local st
    for _ in 1 2 3; do
        st=$(api POST /api/login "{\"username\":\"$1\",\"password\":\"$pw\"}" "$1")
        [ "$st" = 503 ] || break # no hashing thread free in time: again
        sleep 0.5
    done
    tok[$1]=$(jq -r '.csrf // empty' "$tmp/body")
    check "login $1" "[ $st = 200 ] && [ -n '${tok[$1]}' ]"
}
j() { jq -c "$1" "$tmp/body"; }
err() { jq -r .error "$tmp/body" 2>/dev/null; }
audits() { sql "SELECT count(*) FROM audit_log WHERE $1"; }
folded() { grep -c 'api session folded' "$tmp/log"; }
refused() { grep -c 'api session guess not confirmed' "$tmp/log"; }
refs() { jq -r '[.items[].ref] | join(",")' "$tmp/body"; }

# --- folded: the same pages, one transaction each -------------------------
login rahim
f0=$(folded)
st=$(api GET /api/records "" rahim)
check "first page (session checked alone, then remembered): rahim's districts" "[ $st = 200 ] && [ \"\$(refs)\" = FOLD000001,FOLD000002,FOLD000003 ]"
check "  not folded: the worker had not seen the session" "[ \$(folded) = $f0 ]"
st=$(api GET /api/records "" rahim)
check "second page: the same rows" "[ $st = 200 ] && [ \"\$(refs)\" = FOLD000001,FOLD000002,FOLD000003 ]"
check "  folded" "[ \$(folded) = $((f0 + 1)) ]"
st=$(api GET "/api/records?limit=2" "" rahim)
next=$(jq -r .next "$tmp/body")
st2=$(api GET "/api/records?limit=2&cursor=$next" "" rahim)
check "keyset pages folded: 2 rows, then the third" "[ $st = 200 ] && [ $st2 = 200 ] && [ \"\$(refs)\" = FOLD000003 ] && [ \$(folded) = $((f0 + 3)) ]"

o0=$(audits "action = 'record.open' AND actor = 'rahim'")
st=$(api GET /api/records/FOLD000001 "" rahim)
check "a flagged record opened (folded): its twin in the duplicate panel" "[ $st = 200 ] && [ \"\$(j '[.flags, [.duplicates[].ref]]')\" = '[[\"possible_duplicate\"],[\"FOLD000004\"]]' ] && [ \$(folded) = $((f0 + 4)) ]"
st=$(api GET /api/records/FOLD000002 "" rahim)
check "an unflagged record: no panel, no flag" "[ $st = 200 ] && [ \"\$(j '[.flags, .duplicates]')\" = '[[],[]]' ]"
twins() { sql "SELECT string_agg(o.ref, ',' ORDER BY o.ref) FROM returnees r JOIN returnees o ON o.nid_hash = r.nid_hash AND o.id <> r.id WHERE r.ref = '$1'"; }
check "  the panels as the NID hashes have it, for both" "[ \"\$(twins FOLD000001)\" = FOLD000004 ] && [ -z \"\$(twins FOLD000002)\" ]"
check "  one record.open audit row per record opened" "[ \$(audits \"action = 'record.open' AND actor = 'rahim'\") = $((o0 + 2)) ]"
st=$(api GET "/api/records?status=bogus" "" rahim)
check "a bad filter for a live session: 422, after the check" "[ $st = 422 ] && [ \"\$(err)\" = bad_filter ]"

# --- districts changed by an admin: in force on the next request ----------
login boss
st=$(api GET /api/records "" boss)
st2=$(api GET /api/records "" boss)
check "an admin's pages (folded as the admin role): every district" "[ $st = 200 ] && [ $st2 = 200 ] && [ \$(jq '.items | length' '$tmp/body') = 5 ]"
r0=$(refused)
st=$(api POST /api/officers/rahim/districts '{"districts":["BD-02"]}' boss)
check "rahim moved to BD-02" "[ $st = 200 ]"
st=$(api GET /api/records "" rahim)
check "rahim's next page: BD-02 only (the guess refused, run again)" "[ $st = 200 ] && [ \"\$(refs)\" = FOLD000004,FOLD000005 ] && [ \$(refused) = $((r0 + 1)) ]"
st=$(api GET /api/records "" rahim)
check "  and folded again after" "[ $st = 200 ] && [ \"\$(refs)\" = FOLD000004,FOLD000005 ] && [ \$(refused) = $((r0 + 1)) ]"
o0=$(audits "action = 'record.open' AND actor = 'rahim'")
sql "DELETE FROM officer_districts WHERE officer_id = (SELECT id FROM officers WHERE username = 'rahim'); INSERT INTO officer_districts SELECT id, 'BD-13' FROM officers WHERE username = 'rahim'" >/dev/null
st=$(api GET /api/records/FOLD000004 "" rahim)
check "districts changed behind the worker's back: BD-02's record is 404 at once" "[ $st = 404 ] && [ \"\$(err)\" = no_record ]"
check "  one access.denied row, no record.open row from the refused attempt" "[ \$(audits \"action = 'access.denied' AND actor = 'rahim' AND target = '/api/records/FOLD000004'\") = 1 ] && [ \$(audits \"action = 'record.open' AND actor = 'rahim'\") = $o0 ]"

# --- a role refused at the gate: one denial row ---------------------------
login nasrin
api GET /api/me "" nasrin >/dev/null
st=$(api GET /api/records "" nasrin)
st2=$(api GET /api/records "" nasrin)
check "an analyst, seen live: 403 twice" "[ $st = 403 ] && [ $st2 = 403 ] && [ \"\$(err)\" = forbidden ]"
check "  one access.denied row each" "[ \$(audits \"action = 'access.denied' AND actor = 'nasrin' AND target = '/api/records'\") = 2 ]"

# --- sessions ended elsewhere: 401 on the next request --------------------
login karim
st=$(api GET /api/records "" karim)
st=$(api GET /api/records "" karim)
check "karim's pages folded" "[ $st = 200 ] && [ \"\$(refs)\" = FOLD000004,FOLD000005 ]"
officer disable --username karim
check "officer disable (the command line, not this worker)" "[ \$? = 0 ]"
st=$(api GET /api/records "" karim)
check "  karim's next page: 401" "[ $st = 401 ]"
check "  his session ended as disabled" "[ \$(sql \"SELECT count(*) FROM console_sessions s JOIN officers o ON o.id = s.officer_id WHERE o.username = 'karim' AND s.ended_why = 'disabled'\") = 1 ]"
st=$(api GET /api/records/FOLD000004 "" karim)
check "  a record: 401" "[ $st = 401 ]"

# (the table edited as another worker's logout edits it)
logout_elsewhere() { sql "UPDATE console_sessions SET ended_at = now(), ended_why = 'logout' FROM officers o WHERE o.id = officer_id AND o.username = '$1' AND ended_at IS NULL" >/dev/null; }
login lima
st=$(api GET /api/records "" lima)
logout_elsewhere lima
st=$(api GET "/api/records?status=bogus" "" lima)
check "logged out on another worker: a bad filter is 401, not 422" "[ $st = 401 ] && [ \"\$(err)\" = no_session ]"
login lima
st=$(api GET /api/records/FOLD000005 "" lima)
st=$(api GET /api/records/FOLD000005 "" lima)
check "lima's record opened (folded)" "[ $st = 200 ]"
logout_elsewhere lima
o0=$(audits "action = 'record.open' AND actor = 'lima'")
st=$(api GET /api/records/FOLD000005 "" lima)
check "  logged out on another worker: the next record is 401, no record.open row" "[ $st = 401 ] && [ \"\$(err)\" = no_session ] && [ \$(audits \"action = 'record.open' AND actor = 'lima'\") = $o0 ]"

login lima
st=$(api GET /api/records "" lima)
st=$(api GET /api/records "" lima)
sql "UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes' FROM officers o WHERE o.id = officer_id AND o.username = 'lima' AND ended_at IS NULL" >/dev/null
st=$(api GET /api/records "" lima)
check "31 minutes idle: 401 session_expired, the session ended as idle" "[ $st = 401 ] && [ \"\$(err)\" = session_expired ] && [ \$(sql \"SELECT count(*) FROM console_sessions s JOIN officers o ON o.id = s.officer_id WHERE o.username = 'lima' AND s.ended_why = 'idle'\") = 1 ]"

login lima
st=$(api GET /api/records "" lima)
st=$(api POST /api/logout "" lima)
st2=$(api GET /api/records "" lima)
check "logout on this worker: the next page 401" "[ $st = 200 ] && [ $st2 = 401 ]"

itest_stop
finish
