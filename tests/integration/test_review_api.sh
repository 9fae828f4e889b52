#!/usr/bin/env bash
# tests/integration/test_review_api.sh -- the review queue, the record and
# officers' decisions through the real daemon, PostgreSQL and Redis, with
# a stand-in for Kannel's sendsms (tests/lib/fake_sendsms.js) recording what
# leaves.
#
# One registration comes in over USSD (an encrypted NID, a sealed name);
# others are written straight into PostgreSQL in three districts, one
# sharing its NID's keyed hash.  Officer rahim (BD-15, BD-13), officer
# karim (BD-02), admin boss and analyst nasrin log in.  Checked: every
# records route x role (401, 403 and its audit row, CSRF), the queue
# (scope, oldest first, keyset pages, filters, exact search by reference,
# phone and NID through the keyed hash -- never a part of one), the record
# (labels, masked ID, history, duplicate panel with reference, district
# and status only, audit row), 404 + audit row outside the districts,
# reveal, If-Match (428, 409 stale with the new state), two officers
# deciding at once (one 200, one 409), verify / needs-info / reject /
# correct / reopen / revoke with their audit rows and SMS texts, undo in
# the window (nothing sent) and after it (409), the SMS leaving after the
# window, and the returnee's STATUS after each decision.
#
# Starts its own Redis and PostgreSQL.  Prints "review-api: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=review-api
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pids=
itest_servers redis pg

itest_config "$PG_DSN" 's|^\( *office_phone = \)"";|\1"01700000099";|'

pw='Padma-River-Dawn-7'
printf '%s\n' "$pw" | officer add --username boss --role admin &&
    printf '%s\n' "$pw" | officer add --username rahim --role officer --district BD-15 --district BD-13 &&
    printf '%s\n' "$pw" | officer add --username karim --role officer --district BD-02 &&
    printf '%s\n' "$pw" | officer add --username nasrin --role analyst ||
    { bad "officers added" "$(cat "$tmp/out")"; finish; }

node tests/lib/fake_sendsms.js "$tmp/sendsms.port" "$tmp/sent" &
pids="$pids $!"
wait_until 10 test -s "$tmp/sendsms.port" || { bad "fake sendsms started"; finish; }
touch "$tmp/sent"
window=4
rm -f "$tmp/port"
"$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
    --redis-port "$REDIS_PORT" --set kannel.secret=review-test-secret \
    --set console.admin_totp=optional \
    --set "kannel.sendsms_url=http://127.0.0.1:$(cat "$tmp/sendsms.port")/cgi-bin/sendsms" \
    --set review.undo_window_s=$window --set review.sms_poll_ms=100 \
    2>>"$tmp/log" &
pids="$pids $!"
wait_until 10 test -s "$tmp/port" || { bad "daemon started"; finish; }
base=http://127.0.0.1:$(cat "$tmp/port")
# a function, so each try asks /healthz again
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ]; }
wait_until 10 healthy || { bad "daemon healthy"; finish; }
ok "daemon started"

# --- one registration over USSD (Faridpur, BD-15; NID 1234567890) -------
at() {
    curl -s -o "$tmp/ussd" --max-time 5 --data-urlencode "sessionId=$1" \
        --data-urlencode "serviceCode=*247#" --data-urlencode "phoneNumber=$2" \
        --data-urlencode "text=$3" "$base/ussd/at"
}
dialogue() {
    local sid=$1 phone=$2 text= a
    shift 2
    at "$sid" "$phone" ""
    for a in "$@"; do
        text=${text:+$text*}$a
        at "$sid" "$phone" "$text"
        head -c4 "$tmp/ussd" | grep -q '^CON ' || break
    done
}
# (part 1 of the registration: Bangla, Register, consent, name, sex, birth
# year, the district by its first letters, the NID, the read-back's second
# page, confirm)
reg=(1 1 1 "রহিমা বেগম" 2 ১৯৯০ "ফরিদ" ১২৩৪৫৬৭৮৯০ 98 1)
phone=8801712345678
dialogue r1 $phone "${reg[@]}"
R1=$(grep -oE '[0-9A-Z]{10}' "$tmp/ussd" | head -1)
# parts 2 and 3, each from a new dial that offers it (1 to go on)
dialogue r1b $phone 1 "সৌদি" 5 ২০২৪ 1 4 98 98 1
dialogue r1c $phone 1 "2 5 9" 3 98 1
check "a USSD registration ($R1)" "[ -n '$R1' ] && [ \"\$(sql \"SELECT district FROM returnees WHERE ref = '$R1'\")\" = BD-15 ]"
status_screen() { dialogue "st-$RANDOM" $phone 3; cat "$tmp/ussd"; }

# --- others straight in SQL: BD-15 x3 (older), BD-13 x1, BD-02 x2 (one
# with R1's NID hash) -----------------------------------------------------
sql "INSERT INTO returnees (msisdn, district, division, sex, birth_year, country, skills, need, lang, channel, ref, created_at)
     VALUES ('8801800000001', 'BD-15', 'C', 'm', 1985, 'SA', '{construction}', 'loan', 'bn', 'ussd', 'AAAA000001', now() - interval '9 days'),
            ('8801800000002', 'BD-15', 'C', 'f', 1992, 'MY', '{cook}', 'job_home', 'en', 'sms', 'AAAA000002', now() - interval '8 days'),
            ('8801800000003', 'BD-15', 'C', 'm', 1970, 'QA', '{driver}', 'training', 'bn', 'ussd', 'AAAA000003', now() - interval '7 days'),
            ('8801800000004', 'BD-13', 'C', 'f', 2000, 'SA', '{cook}', 'loan', 'bn', 'ussd', 'AAAA000004', now() - interval '6 days'),
            ('8801800000005', 'BD-02', 'A', 'm', 1980, 'SA', '{}', 'loan', 'bn', 'ussd', 'BBBB000001', now() - interval '5 days'),
            ('8801800000006', 'BD-02', 'A', 'm', 1981, 'AE', '{}', 'loan', 'bn', 'ussd', 'BBBB000002', now() - interval '4 days');
     UPDATE returnees SET nid_hash = (SELECT nid_hash FROM returnees WHERE ref = '$R1'),
                          nid_enc = '\\x00' WHERE ref = 'BBBB000001';" >/dev/null

# --- sessions ------------------------------------------------------------
api() {
    local args=(-s -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' --max-time 10 -X "$1")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
    [ -n "${4:-}" ] && args+=(-b "$tmp/jar-$4" -c "$tmp/jar-$4" -H "X-CSRF-Token: ${tok[$4]:-}")
    [ -n "${5:-}" ] && args+=(-H "If-Match: $5")
    curl "${args[@]}" "$base$2"
}
declare -A tok
for u in boss rahim karim nasrin; do
    st=$(api POST /api/login "{\"username\":\"$u\",\"password\":\"$pw\"}" "$u")
    tok[$u]=$(jq -r '.csrf // empty' "$tmp/body")
    check "login $u" "[ $st = 200 ] && [ -n '${tok[$u]}' ]"
done
j() { jq -r "$1" "$tmp/body"; }
audits() { sql "SELECT count(*) FROM audit_log WHERE $1"; }
version() { sql "SELECT version FROM returnees WHERE ref = '$1'"; }

# --- the route x role matrix ---------------------------------------------
routes="GET /api/records
GET /api/records/AAAA000001
POST /api/records/AAAA000001/verify
POST /api/records/AAAA000001/correct
POST /api/records/AAAA000001/needs-info
POST /api/records/AAAA000001/reject
POST /api/records/AAAA000001/undo
POST /api/records/AAAA000001/reveal
POST /api/records/AAAA000001/reopen
POST /api/records/AAAA000001/revoke"
mbad=0
while read -r m p; do
    st=$(api "$m" "$p")
    [ "$st" = 401 ] || { mbad=$((mbad + 1)); echo "# $m $p without a session: $st"; }
    before=$(audits "action = 'access.denied' AND actor = 'nasrin'")
    st=$(api "$m" "$p" "" nasrin)
    [ "$st" = 403 ] && [ "$(audits "action = 'access.denied' AND actor = 'nasrin'")" = $((before + 1)) ] ||
        { mbad=$((mbad + 1)); echo "# $m $p as analyst: $st"; }
    if [ "$m" = POST ]; then
        st=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -b "$tmp/jar-boss" "$base$p")
        [ "$st" = 403 ] && [ "$(j .error)" = csrf ] || { mbad=$((mbad + 1)); echo "# $m $p without CSRF: $st"; }
    fi
    case $p in
    */reopen | */revoke)
        st=$(api "$m" "$p" '{}' rahim)
        [ "$st" = 403 ] || { mbad=$((mbad + 1)); echo "# $m $p as officer: $st"; }
        ;;
    esac
done <<<"$routes"
is "every records route: 401 without a session, 403 (audited) for the analyst and without CSRF, admin-only ones 403 for officers" 0 $mbad

# --- the queue -----------------------------------------------------------
st=$(api GET /api/records "" rahim)
is "queue: rahim sees the 5 pending records of BD-15 and BD-13, oldest first" "200 AAAA000001 AAAA000002 AAAA000003 AAAA000004 $R1" \
    "$st $(j '[.items[].ref] | join(" ")')"
is "  each row: ref, registered_at, channel, sex, age band, destination, skills, need, days waiting, flags" \
    '"AAAA000001|pending|BD-15|ussd|m|40-44|SA|construction|loan|9|"' \
    "$(jq -c '.items[0] | [.ref, .status, .district, .channel, .sex, .age_band, .destination, (.skills|join(",")), .need, .days_waiting, (.flags|join(","))] | join("|")' "$tmp/body")"
is "  the USSD record is flagged possible duplicate" possible_duplicate "$(j ".items[] | select(.ref == \"$R1\") | .flags | join(\",\")")"
api GET /api/records "" karim >/dev/null
is "queue: karim sees only BD-02" "BBBB000001 BBBB000002" "$(j '[.items[].ref] | join(" ")')"
api GET /api/records "" boss >/dev/null
is "queue: the admin sees all 7" 7 "$(j '.items | length')"
is "  the admin's page flags both records sharing an NID, across districts (oldest first)" "BBBB000001 $R1" \
    "$(j '[.items[] | select(.flags | index("possible_duplicate")) | .ref] | join(" ")')"
api GET '/api/records?district=BD-02' "" boss >/dev/null
is "queue: the admin filtered to BD-02" "BBBB000001 BBBB000002" "$(j '[.items[].ref] | join(" ")')"
st=$(api GET "/api/records/$R1" "" boss)
is "record: the admin opens a record, with its history and duplicate panel" "200|BD-15|3|BBBB000001" \
    "$st|$(j .district)|$(j '.history | length')|$(j '[.duplicates[].ref] | join(" ")')"
st=$(api GET /api/records/BBBB000001 "" boss)
is "  and another district's: 200, its twin in the panel" "200|BD-02|$R1" "$st|$(j .district)|$(j '[.duplicates[].ref] | join(" ")')"
is "  opening is audited (admin), once each" "1|1" \
    "$(audits "action = 'record.open' AND target = '$R1' AND actor = 'boss' AND outcome = 'ok'")|$(audits "action = 'record.open' AND target = 'BBBB000001' AND actor = 'boss' AND outcome = 'ok'")"
api GET '/api/records?limit=2' "" rahim >/dev/null
p1=$(j '[.items[].ref] | join(" ")') next=$(j .next)
api GET "/api/records?limit=2&cursor=$next" "" rahim >/dev/null
p2=$(j '[.items[].ref] | join(" ")') next=$(j .next)
api GET "/api/records?limit=2&cursor=$next" "" rahim >/dev/null
p3=$(j '[.items[].ref] | join(" ")') next3=$(j .next)
is "keyset pages of 2: no row twice, none lost, the last says no next" "AAAA000001 AAAA000002|AAAA000003 AAAA000004|$R1|null" "$p1|$p2|$p3|$next3"
api GET '/api/records?channel=sms' "" rahim >/dev/null
is "filter channel=sms" AAAA000002 "$(j '[.items[].ref] | join(" ")')"
api GET '/api/records?destination=SA&need=loan' "" rahim >/dev/null
is "filter destination=SA&need=loan" "AAAA000001 AAAA000004" "$(j '[.items[].ref] | join(" ")')"
api GET '/api/records?skill=cook&district=BD-13' "" rahim >/dev/null
is "filter skill=cook&district=BD-13" AAAA000004 "$(j '[.items[].ref] | join(" ")')"
api GET "/api/records?from=$(date -u -d '7 days ago 00:00' +%F)&to=$(date -u -d '6 days ago' +%F)" "" rahim >/dev/null
is "filter by date range" "AAAA000003 AAAA000004" "$(j '[.items[].ref] | join(" ")')"
api GET '/api/records?flag=possible_duplicate' "" rahim >/dev/null
is "filter flag=possible_duplicate" "$R1" "$(j '[.items[].ref] | join(" ")')"
api GET '/api/records?district=BD-02' "" rahim >/dev/null
is "filter by another officer's district: nothing" 0 "$(j '.items | length')"
st=$(api GET '/api/records?status=bogus' "" rahim)
is "a bad filter: 422" "422 bad_filter" "$st $(j .error)"
api GET "/api/records?q=$(echo "$R1" | tr 'A-Z' 'a-z')" "" rahim >/dev/null
is "search by reference (any case)" "$R1" "$(j '[.items[].ref] | join(" ")')"
api GET '/api/records?q=01800000002' "" rahim >/dev/null
is "search by phone, as dialled locally" AAAA000002 "$(j '[.items[].ref] | join(" ")')"
api GET '/api/records?q=1234567890' "" rahim >/dev/null
is "search by NID, exact, through the keyed hash" "$R1" "$(j '[.items[].ref] | join(" ")')"
api GET '/api/records?q=123456789' "" rahim >/dev/null
is "search by a part of the NID: nothing" 0 "$(j '.items | length')"
api GET '/api/records?q=BBBB000001' "" rahim >/dev/null
is "search for another district's reference: nothing" 0 "$(j '.items | length')"

# --- the record ----------------------------------------------------------
st=$(api GET "/api/records/$R1" "" rahim)
is "record: 200, version, status" "200|pending|$(version "$R1")" "$st|$(j .status)|$(j .version)"
is "  answers with code, labels and list" "BD-15|Faridpur|ফরিদপুর|districts" "$(j '.answers[] | select(.field == "district") | [.code, .value.en, .value.bn, .list] | join("|")')"
is "  skills as codes with labels" "3 3" "$(j '.answers[] | select(.field == "skills") | "\(.codes | length) \([.values[] | select(.en != null)] | length)"')"
is "  the name, opened for the officer, not correctable here" "রহিমা বেগম false" "$(j '.answers[] | select(.field == "name") | "\(.value) \(.editable)"')"
is "  the NID masked: last 3 digits" "nid|*******890" "$(j '[.id_type, .id_masked] | join("|")')"
check "  no ID number in clear anywhere in the answer" "! grep -q 1234567890 '$tmp/body'"
is "  submission history: the three parts" "register register_abroad register_skills" "$(j '[.history[].kind] | join(" ")')"
is "  parts saved: all three, in order" "register register_abroad register_skills" "$(j '.parts_done | join(" ")')"
is "  duplicate panel: the other district's record, reference, district and status only" '[{"district":"BD-02","ref":"BBBB000001","status":"pending"}]' \
    "$(jq -c '.duplicates | map(to_entries | sort_by(.key) | from_entries)' "$tmp/body")"
is "  opening is audited" 1 "$(audits "action = 'record.open' AND target = '$R1' AND actor = 'rahim' AND outcome = 'ok'")"
st=$(api GET /api/records/BBBB000001 "" rahim)
is "another district's record: 404 no_record" "404 no_record" "$st $(j .error)"
is "  and an audit row (denied)" 1 "$(audits "action = 'access.denied' AND actor = 'rahim' AND target = '/api/records/BBBB000001' AND outcome = 'denied'")"
st=$(api POST /api/records/BBBB000001/verify '{}' rahim "$(version BBBB000001)")
is "deciding on another district's record: 404, nothing changed" "404 pending" "$st $(sql "SELECT status FROM returnees WHERE ref = 'BBBB000001'")"

# --- reveal --------------------------------------------------------------
st=$(api POST "/api/records/$R1/reveal" '{}' rahim)
is "reveal without a reason: 422" "422 reason_required" "$st $(j .error)"
st=$(api POST "/api/records/$R1/reveal" '{"reason":"caller asked to confirm"}' rahim)
is "reveal with a reason: the number" "200 1234567890" "$st $(j .nid)"
is "  audited with the reason" 1 "$(audits "action = 'record.reveal' AND target = '$R1' AND detail->>'reason' = 'caller asked to confirm'")"

# --- decisions: If-Match, 409, concurrency --------------------------------
st=$(api POST /api/records/AAAA000001/verify '{}' rahim)
is "verify without If-Match: 428" "428 version_required" "$st $(j .error)"
v=$(version AAAA000001)
st=$(api POST /api/records/AAAA000001/verify '{}' rahim $((v - 1)))
is "verify with a stale version: 409 with the record's state now" "409 stale pending $v" "$st $(j .error) $(j .status) $(j .version)"
is "  the failed attempt is audited" 1 "$(audits "action = 'record.verify' AND target = 'AAAA000001' AND outcome = 'failed' AND detail->>'outcome' = 'stale'")"
# two officers at once on one version
v=$(version AAAA000002)
for u in rahim boss; do
    curl -s -o "$tmp/race-$u" -w '%{http_code}' -X POST -b "$tmp/jar-$u" -H "X-CSRF-Token: ${tok[$u]}" \
        -H "If-Match: $v" -H 'Content-Type: application/json' --data '{}' \
        "$base/api/records/AAAA000002/verify" >"$tmp/race-$u.st" &
done
wait_race() { [ -s "$tmp/race-rahim.st" ] && [ -s "$tmp/race-boss.st" ]; }
wait_until 10 wait_race
is "two officers verify one version at once: one 200, one 409" "200 409" \
    "$( (cat "$tmp/race-rahim.st"; echo; cat "$tmp/race-boss.st"; echo) | sort | paste -sd' ')"
is "  one decision, one SMS held" "1|1" \
    "$(sql "SELECT count(*), count(sms_id) FROM decisions d JOIN returnees r ON r.id = d.returnee_id WHERE r.ref = 'AAAA000002'")"

# --- verify, with its SMS after the window --------------------------------
t0=$SECONDS
st=$(api POST "/api/records/$R1/verify" '{}' rahim "$(version "$R1")")
is "verify: 200 verified, a new version, sms_at" "200 verified $(version "$R1")" "$st $(j .status) $(j .version)"
check "  sms_at is about the window away" "[ -n \"\$(j .sms_at)\" ] && [ \"\$(j .sms_at)\" != null ]"
is "  audit row: record.verify ok, from pending to verified, with the SMS id" "1" \
    "$(audits "action = 'record.verify' AND target = '$R1' AND outcome = 'ok' AND actor = 'rahim' AND detail->>'to' = 'verified' AND detail ? 'sms'")"
is "  the SMS is held, in Bangla, with the reference, no name or ID" "held|2|নিবন্ধন $R1 যাচাই হয়েছে। কাজ, প্রশিক্ষণ, ঋণের খবর SMS এ পাবেন।" \
    "$(sql "SELECT s.hold_state, s.coding, s.text FROM sms_out s JOIN decisions d ON d.sms_id = s.id JOIN returnees r ON r.id = d.returnee_id WHERE r.ref = '$R1'")"
check "  nothing sent inside the window" "! grep -q '$R1 যাচাই' '$tmp/sent'"
wait_until 20 grep -q "$R1 যাচাই" "$tmp/sent"
took=$((SECONDS - t0))
is "  it reaches sendsms after the window ($took s), to the returnee, as UCS-2" "+$phone|2|নিবন্ধন $R1 যাচাই হয়েছে। কাজ, প্রশিক্ষণ, ঋণের খবর SMS এ পাবেন।" \
    "$(grep -F "$R1 যাচাই" "$tmp/sent" | cut -f1,2,4 | tr '\t' '|')"
check "  not before the window ($took s >= $((window - 1)))" "[ $took -ge $((window - 1)) ]"
check "returnee STATUS: verified" "status_screen | grep -q 'যাচাই হয়েছে'"

# --- needs info, reject, their SMS and STATUS ----------------------------
st=$(api POST /api/records/AAAA000003/needs-info '{"reason":"bogus"}' rahim "$(version AAAA000003)")
is "needs-info with a reason not in the list: 422" "422 bad_reason" "$st $(j .error)"
st=$(api POST /api/records/AAAA000003/needs-info '{"reason":"documents"}' rahim "$(version AAAA000003)")
is "needs-info: 200 needs_info" "200 needs_info" "$st $(j .status)"
is "  its SMS (Bangla) names the office's number" "নিবন্ধন AAAA000003: আরও তথ্য দরকার। অফিসে কল করুন 01700000099" \
    "$(sql "SELECT s.text FROM sms_out s JOIN decisions d ON d.sms_id = s.id JOIN returnees r ON r.id = d.returnee_id WHERE r.ref = 'AAAA000003'")"
is "  audit row with the reason" 1 "$(audits "action = 'record.needs_info' AND target = 'AAAA000003' AND outcome = 'ok' AND detail->>'reason' = 'documents'")"
st=$(api POST /api/records/AAAA000004/reject '{}' rahim "$(version AAAA000004)")
is "reject without a reason: 422" "422 bad_reason" "$st $(j .error)"
st=$(api POST /api/records/AAAA000004/reject '{"reason":"not_returnee","note":"called, works locally"}' rahim "$(version AAAA000004)")
is "reject with a reason and a note: 200 rejected" "200 rejected" "$st $(j .status)"
is "  its SMS: the reason's short label and the office number" "নিবন্ধন AAAA000004 গৃহীত হয়নি: প্রবাসফেরত নন। কল: 01700000099" \
    "$(sql "SELECT s.text FROM sms_out s JOIN decisions d ON d.sms_id = s.id JOIN returnees r ON r.id = d.returnee_id WHERE r.ref = 'AAAA000004'")"
is "  the note is on the decision, not in the SMS nor the audit row" "called, works locally|t" \
    "$(sql "SELECT d.note, (SELECT bool_and(detail::text NOT LIKE '%works locally%') FROM audit_log) FROM decisions d JOIN returnees r ON r.id = d.returnee_id WHERE r.ref = 'AAAA000004'")"
# the USSD registration: reject (after reopen) to see STATUS; first revoke
st=$(api POST "/api/records/$R1/revoke" '{"reason":"invalid_id"}' boss "$(version "$R1")")
is "revoke a verified record (admin): 200 rejected" "200 rejected" "$st $(j .status)"
is "  audit row record.revoke" 1 "$(audits "action = 'record.revoke' AND target = '$R1' AND actor = 'boss' AND detail->>'reason' = 'invalid_id'")"
check "returnee STATUS: rejected, with the reason's label" "status_screen | grep -q 'আইডি নম্বর সঠিক নয়'"
st=$(api POST "/api/records/$R1/reopen" '{"reason":"NID checked at the office"}' boss "$(version "$R1")")
is "reopen (admin, with a reason): pending, no SMS" "200 pending" "$st $(j .status)"
is "  the reopen decision holds no SMS" "" "$(sql "SELECT d.sms_id FROM decisions d JOIN returnees r ON r.id = d.returnee_id WHERE r.ref = '$R1' AND d.action = 'reopen'")"
st=$(api POST "/api/records/$R1/needs-info" '{"reason":"id_unclear"}' rahim "$(version "$R1")")
is "needs-info on the USSD registration" "200 needs_info" "$st $(j .status)"
check "returnee STATUS: needs info, with the office's number" "status_screen | grep -q 01700000099"

# --- undo ----------------------------------------------------------------
v=$(version BBBB000002)
st=$(api POST /api/records/BBBB000002/reject '{"reason":"test"}' karim "$v")
is "karim rejects a record of BD-02" "200 rejected" "$st $(j .status)"
st=$(api POST /api/records/BBBB000002/undo '{}' boss)
is "  undo by an admin within the window: pending again" "200 pending" "$st $(j .status)"
is "  the SMS is cancelled" cancelled "$(sql "SELECT s.hold_state FROM sms_out s JOIN decisions d ON d.sms_id = s.id JOIN returnees r ON r.id = d.returnee_id WHERE r.ref = 'BBBB000002'")"
is "  audit row record.undo" 1 "$(audits "action = 'record.undo' AND target = 'BBBB000002' AND outcome = 'ok'")"
st=$(api POST /api/records/BBBB000002/undo '{}' karim)
is "  undo again: 409 nothing_to_undo" "409 nothing_to_undo" "$st $(j .error)"
st=$(api POST /api/records/BBBB000002/reject '{"reason":"test"}' karim "$(version BBBB000002)")
sql "UPDATE decisions SET undo_until = now() - interval '1 second' WHERE returnee_id = (SELECT id FROM returnees WHERE ref = 'BBBB000002')" >/dev/null
st=$(api POST /api/records/BBBB000002/undo '{}' karim)
is "undo after the window: 409 too_late" "409 too_late" "$st $(j .error)"
pause $((window + 2))
is "the undone decision's SMS never left; the second one did" 1 "$(grep -c 'BBBB000002' "$tmp/sent")"

# --- correct -------------------------------------------------------------
st=$(api POST /api/records/BBBB000001/correct '{"fields":{"name":"X"}}' karim "$(version BBBB000001)")
is "correct the name: 422 (sealed; the returnee registers again)" "422 bad_field" "$st $(j .error)"
st=$(api POST /api/records/BBBB000001/correct '{"fields":{"country":"XY"}}' karim "$(version BBBB000001)")
is "correct with a code not in its list: 422" "422 bad_field" "$st $(j .error)"
st=$(api POST /api/records/BBBB000001/correct '{"fields":{"birth_year":1890}}' karim "$(version BBBB000001)")
is "correct a year out of range: 422" "422 bad_field" "$st $(j .error)"
st=$(api POST /api/records/BBBB000001/correct '{"fields":{"district":"BD-13"}}' karim "$(version BBBB000001)")
is "correct the district out of the officer's districts: 403, unchanged" "403 out_of_scope BD-02" "$st $(j .error) $(sql "SELECT district FROM returnees WHERE ref = 'BBBB000001'")"
st=$(api POST /api/records/BBBB000001/correct '{"fields":{"country":"QA","skills":["driver","cook"],"sex":"f"}}' karim "$(version BBBB000001)")
is "correct country, skills and sex: verified" "200 verified" "$st $(j .status)"
is "  the record holds the new values" "QA|driver,cook|f" "$(sql "SELECT country, array_to_string(skills, ','), sex FROM returnees WHERE ref = 'BBBB000001'")"
api GET /api/records/BBBB000001 "" karim >/dev/null
is "  the activity shows each correction old -> new" '"country:SA->QA","sex:m->f","skills:[]->[\"driver\",\"cook\"]"' \
    "$(jq -c '[.activity[] | select(.type == "correction") | "\(.field):\(.old|if type == "string" then . else tojson end)->\(.new|if type == "string" then . else tojson end)"] | sort | .[]' "$tmp/body" | paste -sd,)"
is "  the audit row names the fields, old -> new" '{"country": {"new": "QA", "old": "SA"}}' \
    "$(sql "SELECT jsonb_build_object('country', detail->'fields'->'country') FROM audit_log WHERE action = 'record.correct' AND target = 'BBBB000001' AND outcome = 'ok'")"
is "  the activity shows the decision and its SMS state" "correct|held" "$(j '[.activity[] | select(.type == "decision")][-1] | [.action, .sms.state] | join("|")')"
finish
