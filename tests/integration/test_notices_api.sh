#!/usr/bin/env bash
# tests/integration/test_notices_api.sh -- /api/notices through the real
# daemon and PostgreSQL: an officer composes a notice for their districts
# (a programme with it), previews it (count, breakdown by district with
# small counts as "<5", both texts rendered with the STOP footer, parts,
# cost), submits it; the author cannot approve it (four eyes), another
# admin can (with the vetting reference when the config requires it) and
# the frozen audience equals the preview's count and the count SQL written
# here finds; pause, resume, cancel move it and cancel withdraws what was
# still queued; every write is in the audit log; an officer of another
# district gets 404, an analyst 403; bad templates and notices outside the
# officer's districts are refused.
#
# Starts its own Redis and PostgreSQL.  Prints "notices-api: N passed, N
# failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=notices-api
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pids=
itest_on_exit() { [ "${REMIGATE_TEST_KEEP:-0}" = 1 ] && cat "$tmp/log" >&2; }
itest_servers redis pg

itest_config "$PG_DSN"

pw='Padma-River-Dawn-7'
printf '%s\n' "$pw" | officer add --username boss --role admin &&
    printf '%s\n' "$pw" | officer add --username boss2 --role admin &&
    printf '%s\n' "$pw" | officer add --username rahim --role officer --district BD-15 --district BD-13 &&
    printf '%s\n' "$pw" | officer add --username karim --role officer --district BD-02 &&
    printf '%s\n' "$pw" | officer add --username nasrin --role analyst ||
    { bad "officers added: $(cat "$tmp/out")"; finish; }

# 130 verified returnees in BD-13, 3 in BD-15, 20 in BD-02, some pending
sql "INSERT INTO returnees (msisdn, sex, birth_year, district, country, skills,
     lang, status)
     SELECT '88019' || lpad(g::text, 8, '0'), CASE WHEN g % 2 = 0 THEN 'f' ELSE 'm' END,
            1980 + g % 20, CASE WHEN g <= 130 THEN 'BD-13' WHEN g <= 133 THEN 'BD-15'
            ELSE 'BD-02' END, 'SA', CASE WHEN g % 3 = 0 THEN '{welder}' ELSE '{cook}' END::text[],
            CASE WHEN g % 4 = 0 THEN 'en' ELSE 'bn' END,
            CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'verified' END
       FROM generate_series(1, 153) g" >/dev/null
sql "INSERT INTO sms_optout SELECT msisdn, true FROM returnees WHERE district = 'BD-13'
     AND status = 'verified' ORDER BY id LIMIT 2" >/dev/null

start_daemon() {
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" --set kannel.secret=notices-api-secret \
        --set console.admin_totp=optional --set notices.dispatch=off \
        --set notices.price_paisa=35 "$@" 2>>"$tmp/log" &
    pids="$pids $!"
    daemon=$!
    wait_until 10 test -s "$tmp/port" || return 1
    base=http://127.0.0.1:$(cat "$tmp/port")
    healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ]; }
    wait_until 10 healthy || { curl -s "$base/healthz" >&2; return 1; }
}
start_daemon || { bad "daemon started"; finish; }
ok "daemon started"

api() {
    local args=(-s -o "$tmp/body" -w '%{http_code}' --max-time 10 -X "$1")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
    [ -n "${4:-}" ] && args+=(-b "$tmp/jar-$4" -c "$tmp/jar-$4" -H "X-CSRF-Token: ${tok[$4]:-}")
    curl "${args[@]}" "$base$2"
}
declare -A tok
login_all() {
    for u in boss boss2 rahim karim nasrin; do
        st=$(api POST /api/login "{\"username\":\"$u\",\"password\":\"$pw\"}" "$u")
        tok[$u]=$(jq -r '.csrf // empty' "$tmp/body")
        [ "$st" = 200 ] && [ -n "${tok[$u]}" ] || { bad "login $u ($st)"; finish; }
    done
}
login_all
ok "logins"
j() { jq -r "$1" "$tmp/body"; }
audits() { sql "SELECT count(*) FROM audit_log WHERE $1"; }

# --- compose --------------------------------------------------------------
notice='{"programme":{"kind":"training","title_bn":"ওয়েল্ডিং প্রশিক্ষণ","title_en":"Welding course",
  "provider":"TTC Dhaka","deadline":"2026-12-31","phone":"01711000000","reply_code":"j12"},
  "text_bn":"টিটিসি ঢাকায় ওয়েল্ডিং প্রশিক্ষণ। আগ্রহী হলে {code} লিখে পাঠান, শেষ তারিখ {deadline}। ফোন {phone}",
  "text_en":"Welding course at TTC Dhaka. Reply {code} by {deadline}. Call {phone}",
  "audience":{"districts":["BD-13","BD-15"],"skills":["welder","cook"]}}'
is "an officer creates a notice (201)" 201 "$(api POST /api/notices "$notice" rahim)"
N=$(j .id)
is "... as a draft" draft "$(j .state)"
is "... audited" 1 "$(audits "action = 'notice.create' AND target = '$N' AND actor = 'rahim'")"
is "the reply code is kept upper-case" J12 "$(sql "SELECT reply_code FROM programmes p JOIN notices n ON n.programme_id = p.id WHERE n.id = $N")"

is "a template with an unknown placeholder: 422" 422 \
    "$(api POST /api/notices '{"programme_id":1,"text_bn":"{name} আসুন","audience":{"districts":["BD-13"]}}' rahim)"
is "no Bangla text: 422" 422 "$(api POST /api/notices '{"programme_id":1,"text_en":"x","audience":{"districts":["BD-13"]}}' rahim)"
is "an officer's notice for another district: refused" 403 \
    "$(api POST /api/notices '{"programme_id":1,"text_bn":"আসুন","audience":{"districts":["BD-02"]}}' rahim)"
is "an officer's notice for every district: refused" 422 \
    "$(api POST /api/notices '{"programme_id":1,"text_bn":"আসুন"}' rahim)"
is "an officer may not reach pending records" 403 \
    "$(api POST /api/notices '{"programme_id":1,"text_bn":"আসুন","audience":{"districts":["BD-13"],"statuses":["pending","verified"]}}' rahim)"
is "an analyst may not see notices" 403 "$(api GET /api/notices "" nasrin)"
is "without a session: 401" 401 "$(api GET /api/notices)"

# --- preview --------------------------------------------------------------
# A countrywide notice of the same programme (an admin's: rahim cannot see
# it, nor its outbox) reached one of the audience yesterday: rahim's
# preview leaves that number out as 'recent', as the admin's freeze will.
W=$(sql "INSERT INTO notices (programme_id, text_bn, sms_bn, state, approver_id)
         SELECT programme_id, 'x', 'x', 'completed', (SELECT id FROM officers WHERE username = 'boss')
           FROM notices WHERE id = $N RETURNING id")
wr=$(sql "SELECT id || ',' || msisdn FROM returnees r WHERE status = 'verified' AND district = 'BD-13'
          AND skills && '{welder,cook}' AND NOT EXISTS (SELECT 1 FROM sms_optout o WHERE o.msisdn = r.msisdn)
          ORDER BY id DESC LIMIT 1")
sql "INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, lang, state, claimed_at)
     VALUES ($W, ${wr%%,*}, '${wr#*,}', 'bn', 'delivered', now() - interval '1 day')" >/dev/null
is "preview" 200 "$(api GET "/api/notices/$N/preview" "" rahim)"
want=$(sql "SELECT count(*) FROM returnees r WHERE status = 'verified'
            AND district IN ('BD-13','BD-15') AND skills && '{welder,cook}'
            AND NOT EXISTS (SELECT 1 FROM sms_optout o WHERE o.msisdn = r.msisdn AND o.opted_out)
            AND r.msisdn <> '${wr#*,}'")
is "preview count = the count SQL written here finds" "$want" "$(j .eligible)"
is "preview: the 2 opted-out numbers are counted apart" 2 "$(j .skipped.opted_out)"
is "preview: the number a notice rahim cannot see reached yesterday is counted apart" 1 "$(j .skipped.recent)"
is "preview: BD-15's 3 people show as <5" "<5" "$(j '.by_district["BD-15"]')"
is "preview: BD-13 as a number" "$(sql "SELECT count(*) FROM returnees r WHERE status = 'verified' AND district = 'BD-13'
     AND NOT EXISTS (SELECT 1 FROM sms_optout o WHERE o.msisdn = r.msisdn AND o.opted_out)
     AND r.msisdn <> '${wr#*,}'")" "$(j '.by_district["BD-13"]')"
case "$(j .sms_bn)" in
*"J12"*"31-12-2026"*"01711000000"*"বন্ধ করতে বন্ধ লিখুন") ok "preview: Bangla text rendered, with the STOP footer" ;;
*) bad "preview: Bangla text rendered, with the STOP footer" ;;
esac
is "preview: English text rendered, with the footer" \
    "Welding course at TTC Dhaka. Reply J12 by 31-12-2026. Call 01711000000
Reply STOP to stop" "$(j .sms_en)"
is "preview: Bangla in 2 UCS-2 parts" 2 "$(j .parts_bn)"
is "preview: English in 1 GSM 7-bit part" "1 gsm7" "$(j .parts_en) $(j .coding_en)"
is "preview: cost = parts x 35 paisa" "$(( ($(j .bn) * 2 + $(j .en)) * 35 ))" "$(j .cost_paisa)"
eligible=$(j .eligible)

# --- a draft changes while it is composed (PUT) -----------------------------
D_body='{"programme":{"kind":"job","title_bn":"চাকরি","reply_code":"d01"},"text_bn":"কাজ {code}","audience":{"districts":["BD-13"]}}'
D2_body='{"programme":{"kind":"job","title_bn":"চাকরি ২","title_en":"Job 2","reply_code":"d02"},"text_bn":"কাজ {code}","audience":{"districts":["BD-13"],"sexes":["f"]}}'
api POST /api/notices "$D_body" rahim >/dev/null
D=$(j .id)
is "PUT: the author narrows the audience (200)" 200 "$(api PUT "/api/notices/$D" "$D2_body" rahim)"
is "... version 2, still a draft" "2 draft" "$(j .version) $(j .state)"
api GET "/api/notices/$D/preview" "" rahim >/dev/null
is "... the preview follows it (women of BD-13 only, SQL written here)" \
    "$(sql "SELECT count(*) FROM returnees r WHERE status = 'verified' AND district = 'BD-13' AND sex = 'f'
            AND NOT EXISTS (SELECT 1 FROM sms_optout o WHERE o.msisdn = r.msisdn AND o.opted_out)")" "$(j .eligible)"
is "... and so does the programme (reply code upper-cased)" "D02|চাকরি ২|Job 2" \
    "$(sql "SELECT reply_code || '|' || title_bn || '|' || title_en FROM programmes p JOIN notices n ON n.programme_id = p.id WHERE n.id = $D")"
is "... audited" 1 "$(audits "action = 'notice.update' AND target = '$D' AND actor = 'rahim'")"
is "PUT without a session: 401" 401 "$(api PUT "/api/notices/$D" "$D_body")"
is "PUT by an analyst: 403" 403 "$(api PUT "/api/notices/$D" "$D_body" nasrin)"
is "PUT by another district's officer: 404" 404 "$(api PUT "/api/notices/$D" "$D_body" karim)"
is "PUT by an admin who is not the author: 403" 403 "$(api PUT "/api/notices/$D" "$D_body" boss)"
is "... not_author, audited" "not_author 1" \
    "$(j .error) $(audits "action = 'access.denied' AND actor = 'boss' AND detail->>'reason' = 'not_author'")"
is "PUT without the CSRF token: 403" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' --data "$D_body" -b "$tmp/jar-rahim" "$base/api/notices/$D")"
is "PUT to another district: 403" 403 \
    "$(api PUT "/api/notices/$D" '{"text_bn":"কাজ","audience":{"districts":["BD-02"]}}' rahim)"
is "PUT with an unknown placeholder: 422" 422 "$(api PUT "/api/notices/$D" '{"text_bn":"{name}","audience":{"districts":["BD-13"]}}' rahim)"
is "PUT naming programme_id: 422" 422 "$(api PUT "/api/notices/$D" '{"programme_id":1,"text_bn":"কাজ","audience":{"districts":["BD-13"]}}' rahim)"
is "PUT with a reply code another programme has: 422" 422 \
    "$(api PUT "/api/notices/$D" '{"programme":{"kind":"job","title_bn":"x","reply_code":"J12"},"text_bn":"কাজ","audience":{"districts":["BD-13"]}}' rahim)"
is "PUT of an unknown notice: 404" 404 "$(api PUT /api/notices/99999 "$D_body" rahim)"
api POST /api/notices "{\"programme_id\":$(sql "SELECT programme_id FROM notices WHERE id = $D"),\"text_bn\":\"আবার {code}\",\"audience\":{\"districts\":[\"BD-13\"]}}" rahim >/dev/null
is "a programme another notice uses does not change: 409" 409 "$(api PUT "/api/notices/$D" "$D_body" rahim)"
is "... the text alone still does (200)" 200 "$(api PUT "/api/notices/$D" '{"text_bn":"কাজ {code} {phone}","audience":{"districts":["BD-13"]}}' rahim)"
is "... the programme as it was" "D02" "$(sql "SELECT reply_code FROM programmes p JOIN notices n ON n.programme_id = p.id WHERE n.id = $D")"
api POST "/api/notices/$D/submit" "" rahim >/dev/null
is "PUT of a submitted notice: 409" 409 "$(api PUT "/api/notices/$D" "$D_body" rahim)"
is "the refused PUTs changed nothing (2 updates audited; version 1 + 2 + the submit)" "2 4" \
    "$(audits "action = 'notice.update' AND target = '$D'") $(sql "SELECT version FROM notices WHERE id = $D")"

# --- scope ---------------------------------------------------------------------
is "another district's officer: 404" 404 "$(api GET "/api/notices/$N" "" karim)"
is "another district's officer cannot submit it: 404" 404 "$(api POST "/api/notices/$N/submit" "" karim)"
is "the list of another district's officer has none of it" 0 \
    "$(api GET /api/notices "" karim >/dev/null; j '[.items[] | select(.id == '"$N"')] | length')"

# --- four eyes -------------------------------------------------------------------
is "approving a draft: 409" 409 "$(api POST "/api/notices/$N/approve" "" boss)"
is "submit (200)" 200 "$(api POST "/api/notices/$N/submit" "" rahim)"
is "... submitted" submitted "$(j .state)"
is "an officer cannot approve: 403" 403 "$(api POST "/api/notices/$N/approve" "" rahim)"
M_body='{"programme_id":1,"text_bn":"আসুন {code}","audience":{"districts":["BD-02"]}}'
api POST /api/notices "$M_body" boss >/dev/null
M=$(j .id)
api POST "/api/notices/$M/submit" "" boss >/dev/null
is "the author (an admin) cannot approve their own notice: 403" 403 "$(api POST "/api/notices/$M/approve" "" boss)"
is "... four_eyes" four_eyes "$(j .error)"
is "... and it stays submitted" submitted "$(sql "SELECT state FROM notices WHERE id = $M")"
is "the refusal is audited" 1 "$(audits "action = 'access.denied' AND outcome = 'denied' AND detail->>'reason' = 'four_eyes'")"

# A writer holding the outbox's reference lock (014) keeps the freeze
# waiting for 3 s: past the console's request and query deadlines (2 s
# here), inside notices.approve_timeout_ms.
sql "SELECT pg_advisory_xact_lock(hashtext('remigate.notice_outbox'), hashtext('refs')), pg_sleep(3)" >/dev/null &
holder=$!
sleep 0.5
t0=$(date +%s%N)
is "another admin approves (200)" 200 "$(api POST "/api/notices/$N/approve" '{"vetting_ref":"BTRC-2026-17"}' boss)"
t1=$(date +%s%N)
wait "$holder"
is "... though it took longer than the 2 s deadlines" 1 "$(( (t1 - t0) / 1000000 > 2200 ))"
is "... approved" approved "$(j .state)"
is "the frozen audience = the preview's count" "$eligible" "$(j .queued)"
is "... = the queued outbox rows" "$eligible" "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N AND state = 'queued'")"
is "... and opted-out numbers are skipped rows" 2 "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N AND state = 'skipped' AND reason = 'opted_out'")"
is "... and the recently notified number too" 1 "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N AND state = 'skipped' AND reason = 'recent'")"
is "approver and vetting reference recorded" "$(sql "SELECT id FROM officers WHERE username = 'boss'")|BTRC-2026-17" \
    "$(sql "SELECT approver_id || '|' || vetting_ref FROM notices WHERE id = $N")"
is "approval audited" 1 "$(audits "action = 'notice.approve' AND target = '$N' AND actor = 'boss'")"
is "approving twice: 409" 409 "$(api POST "/api/notices/$N/approve" "" boss2)"

# --- get, pause, resume, cancel ------------------------------------------------------
is "get" 200 "$(api GET "/api/notices/$N" "" rahim)"
is "get: counts by recipient state" "$eligible 3" "$(j .counts.queued) $(j .counts.skipped)"
is "get: the programme" "J12" "$(j .programme.reply_code)"
is "get: author and approver by username" "rahim boss" "$(j .author) $(j .approver)"
is "list: the author by username" rahim "$(api GET /api/notices "" rahim >/dev/null; j '.items[] | select(.id == '"$N"') | .author')"
is "pause (200)" 200 "$(api POST "/api/notices/$N/pause" "" rahim)"
is "... paused by an officer" "paused|officer" "$(sql "SELECT state || '|' || paused_why FROM notices WHERE id = $N")"
is "pause twice: 409" 409 "$(api POST "/api/notices/$N/pause" "" rahim)"
is "resume (200)" 200 "$(api POST "/api/notices/$N/resume" "" rahim)"
is "... sending" sending "$(j .state)"
is "cancel (200)" 200 "$(api POST "/api/notices/$N/cancel" "" boss)"
is "... cancelled, the queued rows withdrawn" "cancelled $eligible 0" \
    "$(sql "SELECT n.state || ' ' || count(*) FILTER (WHERE o.state = 'cancelled') || ' ' || count(*) FILTER (WHERE o.state = 'queued')
            FROM notices n JOIN notice_outbox o ON o.notice_id = n.id WHERE n.id = $N GROUP BY n.state")"
is "pause, resume, cancel audited" 3 "$(audits "action IN ('notice.pause','notice.resume','notice.cancel') AND target = '$N'")"
is "a cancelled notice cannot resume: 409" 409 "$(api POST "/api/notices/$N/resume" "" boss)"
is "writes need the CSRF token: 403" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST -b "$tmp/jar-boss" "$base/api/notices/$M/cancel")"
is "an unknown notice: 404" 404 "$(api GET /api/notices/99999 "" boss)"
is "a malformed id: 404" 404 "$(api GET /api/notices/abc "" boss)"
is "list filtered by state" "$N" "$(api GET '/api/notices?state=cancelled' "" boss >/dev/null; j '.items[0].id')"

# --- interested people, as CSV -------------------------------------------------------
sql "INSERT INTO notice_interest (notice_id, outbox_id, returnee_id, msisdn, said)
     SELECT notice_id, id, returnee_id, msisdn, 'j12' FROM notice_outbox
      WHERE notice_id = $N AND state = 'cancelled' ORDER BY id LIMIT 3" >/dev/null
sql "UPDATE notice_interest SET said = 'J12 \"yes\", please' WHERE id = (SELECT min(id) FROM notice_interest)" >/dev/null
is "interested.csv (200)" 200 "$(api GET "/api/notices/$N/interested.csv" "" rahim)"
is "... starts with the UTF-8 BOM and the header" "efbbbf6e6f74696365" "$(head -c 9 "$tmp/body" | od -An -tx1 | tr -d ' \n')"
is "... a line per interested person (CRLF)" 4 "$(grep -c $'\r$' "$tmp/body")"
case "$(sed -n 2p "$tmp/body")" in
*'"J12 ""yes"", please"'*) ok "... fields quoted as RFC 4180 says" ;;
*) bad "... fields quoted as RFC 4180 says" ;;
esac
is "... the export is audited" 1 "$(audits "action = 'notice.interested_export' AND target = '$N' AND actor = 'rahim' AND (detail->>'rows')::int = 3")"
is "another district's officer: 404, nothing audited" "404 0" \
    "$(api GET "/api/notices/$N/interested.csv" "" karim) $(audits "action = 'notice.interested_export' AND actor = 'karim'")"

# --- vetting required ---------------------------------------------------------------
kill "$daemon" && wait "$daemon" 2>/dev/null
start_daemon --set notices.vetting=required || { bad "daemon restarted"; finish; }
login_all
is "vetting required, none given: 422" 422 "$(api POST "/api/notices/$M/approve" "" boss2)"
is "... given: 200" 200 "$(api POST "/api/notices/$M/approve" '{"vetting_ref":"BTRC-9"}' boss2)"

finish
