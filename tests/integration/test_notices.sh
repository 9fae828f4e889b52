#!/usr/bin/env bash
# tests/integration/test_notices.sh -- the notices dispatcher in the real
# daemon, against a real PostgreSQL and Redis and a stand-in for Kannel's
# sendsms (tests/lib/fake_sendsms.py: it logs every POST and answers 202,
# 503, 400, hangs or drops as told; the e2e suite uses the real Kannel).
#
# The daemon's clock for the send window is set by the test
# (REMIGATE_TEST_NOW, Unix seconds), never the machine's.  Checks: an
# approved notice starts and each recipient gets one SMS, in their
# language and coding, with a validity that ends at the window's close;
# delivery reports close rows with the receipt's stat; outside the window
# nothing leaves and the notice pauses itself, and with under 30 min left
# it waits for the next window; 503 puts rows back and they go later, once;
# a hanging Kannel makes rows 'unknown' and they are never sent again; an
# opt-out after approval is honoured at claim; kill -9 of the daemon while
# it sends, then a restart: at most one SMS per person reached Kannel and
# every recipient is accounted for; two daemons dispatching one notice:
# still at most one each.
#
# Uses the Redis and PostgreSQL of tests/run when given, else starts its
# own.  Prints "notices: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=notices
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pids=()
fake=
own=0
tmp=$(mktemp -d /tmp/remigate-notices.XXXXXX) || exit 1
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "$fake" ] && kill "$fake" 2>/dev/null
    [ $own = 1 ] && srv_cleanup
    [ "${REMIGATE_TEST_KEEP:-0}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi; }

itest_suite_servers

itest_config "$PG_DSN"

echo 202 >"$tmp/mode"
python3 tests/lib/fake_sendsms.py "$tmp/kport" "$tmp/sent" "$tmp/mode" &
fake=$!
wait_until 10 test -s "$tmp/kport" || { bad "fake sendsms started"; finish; }
touch "$tmp/sent"

secret=notices-secret-for-tests
# Dhaka wall-clock time on 2026-12-03 -> Unix seconds
at() { date -u -d "2026-12-03 $1 +0600" +%s; }

# daemon NAME NOW [--set ...]: start one; its port in $tmp/port.NAME
daemon() {
    local name=$1 now=$2
    shift 2
    rm -f "$tmp/port.$name"
    REMIGATE_TEST_NOW=$now "$bin" -c "$conf" --workers 1 --port 0 \
        --port-file "$tmp/port.$name" --redis-port "$REDIS_PORT" \
        --set "kannel.sendsms_url=http://127.0.0.1:$(cat "$tmp/kport")/cgi-bin/sendsms" \
        --set "kannel.dlr_url=http://127.0.0.1:9" --set "kannel.secret=$secret" \
        --set notices.rate=200 --set notices.poll_ms=100 \
        --set notices.lost_after_s=10 "$@" 2>>"$tmp/log.$name" &
    pids+=($!)
    eval "pid_$name=$!"
    wait_until 10 test -s "$tmp/port.$name"
}
stop() { # stop NAME: SIGTERM, wait
    local p
    p=$(eval echo "\$pid_$1")
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}

# ---- data: returnees, a programme, notices ------------------------------
sql "INSERT INTO returnees (msisdn, sex, birth_year, district, lang, status)
     SELECT '88018' || lpad(g::text, 8, '0'), 'm', 1990, 'BD-13',
            CASE WHEN g % 3 = 0 THEN 'en' ELSE 'bn' END, 'verified'
       FROM generate_series(1, 400) g" >/dev/null
sql "INSERT INTO officers (username, role, pw_hash) VALUES
     ('author', 'officer', 'x'), ('boss', 'admin', 'x')" >/dev/null
sql "INSERT INTO programmes (kind, title_bn, reply_code) VALUES
     ('training', 'ওয়েল্ডিং', 'J12'), ('job', 'চাকরি', 'K7'),
     ('loan', 'ঋণ', 'L1'), ('other', 'অন্য', 'Q9')" >/dev/null
# notice TAG PROGRAMME CONDITION: an approved notice whose texts start with
# TAG, its outbox filled with the returnees matching CONDITION
notice() {
    local id bn en
    bn="$1 ওয়েল্ডিং প্রশিক্ষণ, J12 লিখে পাঠান"$'\n'"বন্ধ করতে বন্ধ লিখুন"
    en="$1 Welding course: reply J12"$'\n'"Reply STOP to stop"
    id=$(sql "INSERT INTO notices (programme_id, text_bn, text_en, sms_bn,
              sms_en, parts_bn, parts_en, ucs2_en, author_id, approver_id,
              state, approved_at)
              VALUES ($2, 'x', 'x', \$\$$bn\$\$, \$\$$en\$\$, 1, 1, false,
                      1, 2, 'submitted', now()) RETURNING id")
    sql "INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, district, lang)
         SELECT $id, id, msisdn, district, CASE WHEN lang = 'en' THEN 'en' ELSE 'bn' END
           FROM returnees WHERE $3" >/dev/null
    # approved once its audience is there, as approval does in one go
    sql "UPDATE notices SET state = 'approved', audience = (SELECT count(*)
         FROM notice_outbox WHERE notice_id = $id) WHERE id = $id" >/dev/null
    echo "$id"
}
state_of() { sql "SELECT state FROM notices WHERE id = $1"; }
count() { sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $1 AND state IN ($2)"; }
# messages Kannel took (202) per number, at most
max_per_number() {
    python3 - "$tmp/sent" "$1" <<'EOF'
import json, sys, collections
c = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["mode"] in ("202", "hang", "drop") and r["text"].startswith(sys.argv[2] + " "):
        c[r["to"]] += 1
print(max(c.values()) if c else 0)
EOF
}
queued_none() { [ "$(count "$1" "'queued','claimed'")" = 0 ]; }

# ---- 1. inside the window: everyone once ------------------------------------
N1=$(notice T1 1 "msisdn BETWEEN '8801800000001' AND '8801800000060'")
daemon a "$(at 10:00)"
wait_until 20 queued_none "$N1"
eq "inside the window: all 60 accepted" "$(count "$N1" "'accepted'")" "60"
eq "the notice is sending" "$(state_of "$N1")" "sending"
eq "one SMS per recipient at Kannel" "$(max_per_number T1)" "1"
eq "60 SMS at Kannel" "$(grep -c '"text": "T1 ' "$tmp/sent")" "60"
read -r v c_bn c_en < <(python3 - "$tmp/sent" <<'EOF'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
v = {r["validity"] for r in rs}
bn = sum(1 for r in rs if r["coding"] == "2" and "বন্ধ করতে" in r["text"])
en = sum(1 for r in rs if r["coding"] == "0" and "Reply STOP" in r["text"])
print(",".join(sorted(x or "-" for x in v)), bn, en)
EOF
)
# the clock runs on: 600 minutes, or 599 once a minute has passed
v=${v/599,/}
eq "validity: the minutes left until 20:00 (clock set at 10:00)" "${v/599/600}" "600"
eq "Bangla readers got the Bangla text as UCS-2" "$c_bn" "40"
eq "English readers got the English text as GSM 7-bit" "$c_en" "20"
eq "each accepted row's sms_out row says accepted" \
    "$(sql "SELECT count(*) FROM notice_outbox o JOIN sms_out s ON s.id = o.sms_id
            WHERE o.notice_id = $N1 AND s.accepted_at IS NOT NULL AND s.kannel_status = 202")" "60"

# delivery reports through the daemon's own /kannel/dlr
base=http://127.0.0.1:$(cat "$tmp/port.a")
dlr() { curl -s -o /dev/null -w '%{http_code}' -G "$base/kannel/dlr" \
    --data-urlencode "id=$1" --data-urlencode "status=$2" --data-urlencode "answer=$3" \
    --data-urlencode "key=$secret"; }
mapfile -t ids < <(sql "SELECT sms_id FROM notice_outbox WHERE notice_id = $N1 ORDER BY id LIMIT 3")
dlr "${ids[0]}" 1 "id:1 sub:001 dlvrd:001 stat:DELIVRD err:000 text:" >/dev/null
dlr "${ids[1]}" 2 "id:2 sub:001 dlvrd:000 stat:EXPIRED err:0FE text:" >/dev/null
dlr "${ids[2]}" 2 "id:3 sub:001 dlvrd:000 stat:UNDELIV err:001 text:" >/dev/null
eq "delivery reports: delivered, expired, undelivered with the stat" \
    "$(sql "SELECT string_agg(state || ':' || coalesce(reason, ''), ' ' ORDER BY id)
            FROM notice_outbox WHERE sms_id IN ('${ids[0]}', '${ids[1]}', '${ids[2]}')")" \
    "delivered:DELIVRD expired:EXPIRED undelivered:UNDELIV"

# ---- 2. opt-out after approval; 503; 400 -------------------------------------
echo 503 >"$tmp/mode"
# STOP after the audience was frozen (notice() builds the outbox without
# looking at opt-outs), before the claim
stopper=8801800000105
sql "INSERT INTO sms_optout VALUES ('$stopper', true)" >/dev/null
N2=$(notice T2 2 "msisdn BETWEEN '8801800000101' AND '8801800000120'")
some_503() { [ "$(grep -c '"mode": "503"' "$tmp/sent")" -ge 3 ]; }
wait_until 20 some_503 || bad "503s seen"
eq "503: nothing is accepted, rows wait in the queue" \
    "$(count "$N2" "'accepted','unknown','failed'")" "0"
echo 202 >"$tmp/mode"
wait_until 30 queued_none "$N2"
eq "after the 503s: 19 accepted" "$(count "$N2" "'accepted'")" "19"
eq "the number that sent STOP after approval was skipped at claim" \
    "$(sql "SELECT state || ':' || reason FROM notice_outbox WHERE notice_id = $N2 AND msisdn = '$stopper'")" \
    "skipped:opted_out"
eq "nothing reached Kannel for it" "$(grep -c "\"to\": \"+$stopper\"" "$tmp/sent")" "0"
eq "after the 503s each number was taken once" "$(max_per_number T2)" "1"

# ---- 3. a hanging Kannel: unknown, never again; 400: failed ----------------
echo hang >"$tmp/mode"
N3=$(notice T3 3 "msisdn BETWEEN '8801800000201' AND '8801800000203'")
wait_until 30 queued_none "$N3"
eq "a request that got no answer: unknown" "$(count "$N3" "'unknown'")" "3"
echo 400 >"$tmp/mode"
N4=$(notice T4 4 "msisdn BETWEEN '8801800000301' AND '8801800000302'")
wait_until 20 queued_none "$N4"
eq "400: failed with the status" "$(sql "SELECT string_agg(DISTINCT state || ':' || reason, ',') FROM notice_outbox WHERE notice_id = $N4")" "failed:http_400"
echo 202 >"$tmp/mode"
sleep 1
eq "unknown rows were never sent again" \
    "$(python3 -c "
import json,sys
print(sum(1 for l in open('$tmp/sent') if json.loads(l)['to'] in ('+8801800000201','+8801800000202','+8801800000203')))")" "3"
stop a

# ---- 4. quiet hours ------------------------------------------------------------
N5=$(notice T5 1 "msisdn BETWEEN '8801800000361' AND '8801800000370'")
before=$(wc -l <"$tmp/sent")
daemon b "$(at 21:00)"
sleep 2
eq "21:00: nothing leaves" "$(wc -l <"$tmp/sent")" "$before"
eq "21:00: the approved notice waits" "$(state_of "$N5")" "approved"
stop b
daemon c "$(at 19:45)"
sleep 2
eq "19:45 (15 min left < 30): nothing leaves" "$(wc -l <"$tmp/sent")" "$before"
stop c
daemon d "$(at 19:00)"
wait_until 20 queued_none "$N5"
eq "19:00: 10 sent, validity 60 min (clipped at 20:00)" \
    "$(grep '"text": "T5 ' "$tmp/sent" | python3 -c "import json,sys; v=[json.loads(l)['validity'] for l in sys.stdin]; print(len(v), ','.join(sorted(set(x.replace('59', '60') for x in v))))")" "10 60"
stop d
# a sending notice pauses itself when the window is closed, and resumes
sql "UPDATE notices SET state = 'sending' WHERE id = $N5" >/dev/null
daemon e "$(at 05:59)"
paused() { [ "$(state_of "$N5")" = paused ]; }
wait_until 10 paused
eq "05:59: a sending notice pauses itself" "$(sql "SELECT state || ':' || paused_why FROM notices WHERE id = $N5")" "paused:window"
stop e
daemon f "$(at 09:00)"
resumed() { [ "$(state_of "$N5")" != paused ]; }
wait_until 10 resumed
eq "09:00: it resumes by itself" "$(state_of "$N5")" "sending"
stop f

# ---- 5. kill -9 while sending, restart ----------------------------------------
N6=$(notice T6 2 "msisdn BETWEEN '8801800000001' AND '8801800000300' AND msisdn NOT BETWEEN '8801800000101' AND '8801800000120'")
aud=$(sql "SELECT audience FROM notices WHERE id = $N6")
: >"$tmp/sent"
daemon g "$(at 11:00)" --set notices.rate=40
some_sent() { [ "$(wc -l <"$tmp/sent")" -ge 40 ]; }
wait_until 20 some_sent
kill -9 "$pid_g"
wait "$pid_g" 2>/dev/null
mid=$(wc -l <"$tmp/sent")
daemon h "$(at 11:00)"
wait_until 60 queued_none "$N6"
eq "kill -9 mid-send: the rest were sent after the restart ($mid before)" \
    "$([ "$(count "$N6" "'accepted'")" -gt "$mid" ] && echo yes)" "yes"
eq "kill -9: at most one SMS per number at Kannel" "$(max_per_number T6)" "1"
eq "kill -9: every recipient accounted for (accepted + unknown + skipped = audience)" \
    "$(count "$N6" "'accepted','unknown','skipped','failed','delivered','expired','undelivered'")" "$aud"
eq "kill -9: nobody accepted twice" \
    "$(sql "SELECT count(*) FROM (SELECT s.msisdn FROM sms_out s JOIN notice_outbox o ON o.sms_id = s.id
            WHERE o.notice_id = $N6 GROUP BY s.msisdn HAVING count(*) > 1) x")" "0"
stop h

# ---- 5b. SIGTERM while sending: nothing claimed is lost to 'unknown' ----------
# Kannel answers after 0.3 s, so at the stop some messages are at Kannel
# and some claimed ones wait for tokens: the first get their answers
# written, the others go back in the queue; a restart sends the rest.
N8=$(notice T8 4 "msisdn BETWEEN '8801800000303' AND '8801800000360'")
aud=$(sql "SELECT audience FROM notices WHERE id = $N8")
: >"$tmp/sent"
echo slow:0.3 >"$tmp/mode"
daemon k "$(at 11:30)" --set notices.rate=20
some_sent() { [ "$(wc -l <"$tmp/sent")" -ge 10 ]; }
wait_until 20 some_sent
t0=$(date +%s%N)
stop k
ms=$((($(date +%s%N) - t0) / 1000000))
echo 202 >"$tmp/mode"
eq "SIGTERM mid-send: the worker waited for Kannel's answers, and no longer (${ms} ms)" \
    "$([ "$ms" -ge 250 ] && [ "$ms" -lt 5000 ] && echo yes)" "yes"
eq "SIGTERM mid-send: no row left claimed or unknown" "$(count "$N8" "'claimed','unknown'")" "0"
eq "SIGTERM mid-send: every message Kannel took is accepted" \
    "$(count "$N8" "'accepted'")" "$(grep -c '"text": "T8 ' "$tmp/sent")"
eq "SIGTERM mid-send: the claimed, unsent ones are queued again, unclaimed" \
    "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N8 AND state = 'queued'
            AND claimed_by IS NULL AND sms_id IS NULL")" \
    "$((aud - $(count "$N8" "'accepted','skipped'")))"
grep -q 'notices claimed and not sent at shutdown' "$tmp/log.k" &&
    bad "SIGTERM mid-send: the log says claimed rows were left" ||
    ok "SIGTERM mid-send: the log says no claimed rows were left"
daemon l "$(at 11:30)"
wait_until 30 queued_none "$N8"
eq "SIGTERM then restart: every recipient once" \
    "$(count "$N8" "'accepted','skipped'")" "$aud"
eq "SIGTERM then restart: at most one SMS per number at Kannel" "$(max_per_number T8)" "1"
stop l

# ---- 6. two daemons on one notice --------------------------------------------
N7=$(notice T7 3 "msisdn BETWEEN '8801800000001' AND '8801800000400'")
sql "UPDATE notices SET recent_days = 0 WHERE id = $N7" >/dev/null
: >"$tmp/sent"
daemon i "$(at 12:00)" --set notices.cap=99 --set notices.cap_per_day=3
daemon j "$(at 12:00)" --set notices.cap=99 --set notices.cap_per_day=3
wait_until 60 queued_none "$N7"
eq "two daemons: at most one SMS per number" "$(max_per_number T7)" "1"
eq "two daemons: both dispatched" \
    "$(sql "SELECT count(DISTINCT claimed_by) FROM notice_outbox WHERE notice_id = $N7 AND claimed_by IS NOT NULL")" "2"
eq "two daemons: every recipient accounted for" \
    "$(count "$N7" "'accepted','skipped','unknown','failed'")" "$(sql "SELECT audience FROM notices WHERE id = $N7")"
sql "SELECT state || ':' || coalesce(reason, '') || '=' || count(*) FROM notice_outbox WHERE notice_id = $N7 GROUP BY state, reason" | sed 's/^/# /'
eq "the per-day cap (3) held across notices" \
    "$(sql "SELECT count(*) FROM (SELECT msisdn FROM notice_outbox WHERE claimed_at > now() - interval '1 day'
            AND state NOT IN ('queued','skipped','failed','rejected','cancelled') GROUP BY msisdn HAVING count(*) > 3) x")" "0"
stop j

# ---- 7. replies of interest ------------------------------------------------------
base=http://127.0.0.1:$(cat "$tmp/port.i")
# mo PHONE TEXT: an SMS as Kannel's sms-service passes it; prints the text of
# the answer Kannel was asked to send
mo() {
    local n t to=$1
    n=$(wc -l <"$tmp/sent")
    t=$(printf '%s' "$2" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')
    curl -s -o /dev/null --max-time 5 \
        "$base/kannel/mo?from=%2B$1&to=16247&text=$t&smsc=sms&id=mo-$(date +%s%N)&coding=0&charset=UTF-8&key=$secret"
    # the first SMS to this number after the MO (a notice going out to
    # another number meanwhile is not its answer)
    reply() {
        tail -n +"$((n + 1))" "$tmp/sent" | PYTHONIOENCODING=utf-8 python3 -c "
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if (m.get('to') or '').lstrip('+') == sys.argv[1]:
        print(m['text'])
        sys.exit(0)
sys.exit(1)" "$to"
    }
    wait_until 10 reply >/dev/null && reply
}
interest() { sql "SELECT count(*) FROM notice_interest i JOIN notices n ON n.id = i.notice_id WHERE i.msisdn = '$1' AND n.programme_id = $2"; }
# (8801800000001 reads Bangla, 8801800000390 English)
case "$(mo 8801800000001 j12)" in
"ধন্যবাদ"*) ok "a reply code (any case) is thanked, in the record's language" ;;
*) bad "a reply code (any case) is thanked, in the record's language" ;;
esac
eq "... and recorded for its programme's notice" "$(interest 8801800000001 1)" "1"
mo 8801800000001 J12 >/dev/null
eq "... once" "$(interest 8801800000001 1)" "1"
case "$(mo 8801800000001 1)" in
"যে SMS পেয়েছেন তার কোডটি"*) ok "'1' with several open notices asks for the code" ;;
*) bad "'1' with several open notices asks for the code" ;;
esac
eq "... and records nothing" "$(sql "SELECT count(*) FROM notice_interest WHERE msisdn = '8801800000001'")" "1"
case "$(mo 8801800000390 1)" in
"Thank you"*) ok "'1' with one open notice in the week is thanked" ;;
*) bad "'1' with one open notice in the week is thanked ($(sql "SELECT string_agg(notice_id || ':' || state, ',') FROM notice_outbox WHERE msisdn = '8801800000390'"))" ;;
esac
eq "... and recorded for it" "$(interest 8801800000390 3)" "1"
case "$(mo 8801800000390 K7)" in
"Send REG"*) ok "the code of a notice the number never got: the help text" ;;
*) bad "the code of a notice the number never got: the help text" ;;
esac
eq "... nothing recorded" "$(interest 8801800000390 2)" "0"
stop i

finish
