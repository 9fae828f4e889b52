#!/usr/bin/env bash
# tests/integration/test_notices_ussd.sh -- "Notices on/off" of the USSD
# main menu (config/flows/notices.conf, action notices_set) through the
# real daemon, PostgreSQL and Redis, with tests/lib/fake_sendsms.py for
# Kannel's sendsms: a returnee turns notices off in Bangla; a notice that
# was approved (audience frozen, the returnee queued) before that reaches
# everyone else at the next claims but not them (skipped, opted_out), and
# nothing for their number reaches Kannel; on again, the next notice
# reaches them.  A caller in English turns them off and on; the opt-out
# row follows each choice, and the end screens say what happened.
#
# Uses the Redis and PostgreSQL of tests/run when given, else starts its
# own.  Prints "notices-ussd: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=notices-ussd
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pids=()
fake=
own=0
tmp=$(mktemp -d /tmp/remigate-notices-ussd.XXXXXX) || exit 1
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ -n "$fake" ] && kill "$fake" 2>/dev/null
    [ $own = 1 ] && srv_cleanup
    [ "${REMIGATE_TEST_KEEP:-0}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi; }
has() { if grep -qF -- "$2" "$tmp/body"; then ok "$1"; else bad "$1: no '$2'"; fi; }

itest_suite_servers

itest_config "$PG_DSN"

echo 202 >"$tmp/mode"
python3 tests/lib/fake_sendsms.py "$tmp/kport" "$tmp/sent" "$tmp/mode" &
fake=$!
wait_until 10 test -s "$tmp/kport" || { bad "fake sendsms started"; finish; }
touch "$tmp/sent"

# daemon NAME DISPATCH: one daemon; noon in Dhaka on its notices clock
daemon() {
    rm -f "$tmp/port.$1"
    REMIGATE_TEST_NOW=$(date -u -d "2026-12-03 12:00 +0600" +%s) \
        "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port.$1" \
        --redis-port "$REDIS_PORT" \
        --set "kannel.sendsms_url=http://127.0.0.1:$(cat "$tmp/kport")/cgi-bin/sendsms" \
        --set "kannel.dlr_url=http://127.0.0.1:9" --set kannel.secret=ussd-notices-secret \
        --set "notices.dispatch=$2" --set notices.rate=200 --set notices.poll_ms=100 \
        2>>"$tmp/log.$1" &
    pids+=($!)
    wait_until 10 test -s "$tmp/port.$1"
}

# at SID PHONE TEXT: one USSD step (the aggregator's form); body in $tmp/body
at() {
    curl -s -o "$tmp/body" -w '%{http_code}' --max-time 5 \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-urlencode "sessionId=$1" --data-urlencode "serviceCode=*247#" \
        --data-urlencode "phoneNumber=$2" --data-urlencode "text=$3" \
        --data-urlencode "networkCode=47001" "$base/ussd/at"
}
optout() { sql "SELECT coalesce((SELECT opted_out::text FROM sms_optout WHERE msisdn = '$1'), 'none')"; }
sent_to() { grep -c "\"to\": *\"+\?$1\"" "$tmp/sent"; }

# ---- data: three verified returnees in BD-13, a programme ---------------
A=8801811000001 B=8801811000002 C=8801811000003
sql "INSERT INTO returnees (msisdn, sex, birth_year, district, lang, status)
     VALUES ('$A', 'f', 1990, 'BD-13', 'bn', 'verified'),
            ('$B', 'm', 1988, 'BD-13', 'bn', 'verified'),
            ('$C', 'm', 1985, 'BD-13', 'en', 'verified')" >/dev/null
sql "INSERT INTO officers (username, role, pw_hash) VALUES
     ('author', 'officer', 'x'), ('boss', 'admin', 'x')" >/dev/null
sql "INSERT INTO programmes (kind, title_bn, reply_code) VALUES
     ('training', 'ওয়েল্ডিং', 'J12'), ('job', 'চাকরি', 'K7')" >/dev/null
# notice PROGRAMME: approved, its audience (everyone) frozen the way
# approval does it; the id
notice() {
    local id
    id=$(sql "INSERT INTO notices (programme_id, text_bn, sms_bn, parts_bn,
              author_id, approver_id, state, approved_at)
              VALUES ($1, 'x', \$\$T$1 ওয়েল্ডিং, J12 লিখে পাঠান
বন্ধ করতে বন্ধ লিখুন\$\$, 1, 1, 2, 'submitted', now()) RETURNING id")
    # one transaction, as approval is (a dispatcher must never see it
    # approved without its recipients)
    sql "UPDATE notices SET state = 'approved' WHERE id = $id;
         SELECT notice_freeze($id, now(), 2, 7, 3)" >/dev/null
    echo "$id"
}

daemon ussd off || { bad "daemon started"; finish; }
base=http://127.0.0.1:$(cat "$tmp/port.ussd")
ok "daemon started"

# ---- a notice is approved; then A turns notices off by USSD -------------
N1=$(notice 1)
eq "the notice's audience is frozen with A queued" 1 \
    "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N1 AND msisdn = '$A' AND state = 'queued'")"
at a1 $A "" >/dev/null
at a1 $A "1" >/dev/null
has "bn: the main menu" "কী করতে চান?"
has "bn: the main menu offers notices on/off (second page)" "৯৮. আরও"
at a1 $A "1*98" >/dev/null
has "bn: ... where it is option 5" "৫. বিজ্ঞপ্তি চালু/বন্ধ"
eq "bn: option 5 answers 200" 200 "$(at a1 $A "1*98*5")"
has "bn: the notices menu" "কাজ, প্রশিক্ষণ ও ঋণের SMS"
eq "bn: off answers 200" 200 "$(at a1 $A "1*98*5*1")"
has "bn: the end screen says no more SMS" "END কর্মসূচির SMS আর পাঠানো হবে না।"
eq "A's number is opted out once the screen is shown" true "$(optout $A)"
eq "nobody else's number changed" "none none" "$(optout $B) $(optout $C)"

# ---- the dispatcher's next claims: B and C get it, A does not ----------
daemon disp on || { bad "dispatcher started"; finish; }
done1() { [ "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N1 AND state <> 'queued' AND state <> 'claimed'")" = 3 ]; }
wait_until 20 done1 || bad "the notice's rows all left the queue"
eq "A's row: skipped, opted_out" "skipped|opted_out" \
    "$(sql "SELECT state || '|' || reason FROM notice_outbox WHERE notice_id = $N1 AND msisdn = '$A'")"
eq "B's and C's rows: accepted by Kannel" "accepted accepted" \
    "$(sql "SELECT string_agg(state, ' ' ORDER BY msisdn) FROM notice_outbox WHERE notice_id = $N1 AND msisdn <> '$A'")"
eq "Kannel got nothing for A, one SMS each for B and C" "0 1 1" "$(sent_to $A) $(sent_to $B) $(sent_to $C)"

# ---- A turns them on again (Bangla remembered); the next notice reaches A
at a2 $A "" >/dev/null
has "bn again: the language is remembered, the main menu" "কী করতে চান?"
at a2 $A "5" >/dev/null
eq "bn: on answers 200" 200 "$(at a2 $A "5*2")"
has "bn: the end screen says SMS will come again" "END কাজ, প্রশিক্ষণ ও ঋণের SMS আবার পাবেন।"
eq "A's number is opted in" false "$(optout $A)"
N2=$(notice 2)
done2() { [ "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N2 AND msisdn = '$A' AND state = 'accepted'")" = 1 ]; }
wait_until 20 done2 || bad "the second notice reached A: $(sql "SELECT n.state || ' ' || string_agg(o.msisdn || '=' || o.state || coalesce(':' || o.reason, ''), ' ') FROM notices n LEFT JOIN notice_outbox o ON o.notice_id = n.id WHERE n.id = $N2 GROUP BY n.state")"
eq "Kannel got one SMS for A, of the second notice" "1" "$(grep "\"to\": *\"+\?$A\"" "$tmp/sent" | grep -c 'T2 ')"

# ---- C in English: off, then on --------------------------------------------
at c1 $C "" >/dev/null
at c1 $C "2" >/dev/null
has "en: the main menu lists notices on/off as option 5" "5. Notices on/off"
at c1 $C "2*5" >/dev/null
has "en: the notices menu" "1. Stop them"
at c1 $C "2*5*1" >/dev/null
has "en: off" "END You will get no more SMS about programmes."
eq "C opted out" true "$(optout $C)"
at c2 $C "" >/dev/null
at c2 $C "5" >/dev/null
at c2 $C "5*2" >/dev/null
has "en: on" "END You will get SMS about jobs, training and loans again."
eq "C opted in" false "$(optout $C)"
eq "no daemon logged an error or an assert" 0 "$(cat "$tmp"/log.* | grep -cE ' error |assert|runtime error|Sanitizer')"
eq "each switch logged (4), the numbers masked" "4 0" \
    "$(cat "$tmp"/log.* | grep -c 'notices o[nf]* by USSD') $(cat "$tmp"/log.* | grep 'notices o[nf]* by USSD' | grep -c "$A\|$C")"

finish
