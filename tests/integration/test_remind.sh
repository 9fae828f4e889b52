#!/usr/bin/env bash
# tests/integration/test_remind.sh -- the reminder SMS to a caller who left
# a registration part undone ("ডায়াল করুন *247# — নিবন্ধনের বাকি অংশ"): one
# once the caller has been quiet for sessions.remind_after, in their
# language, through sendsms; none while they are still answering; never a
# second for the same part, and never two on one day.
#
# Then parts saved by SMS count: a USSD session whose part under way was
# saved by SMS since gets no reminder for it.  Last, a daemon whose quiet
# hours cover the whole day holds a reminder back until they end.
#
# The daemon runs with sessions.remind_after = 3 s (a step's time is kept
# in whole seconds: "quiet for 3 s" is 2 to 3 s) and looks every 200 ms;
# a stand-in for Kannel's sendsms (tests/lib/fake_sendsms.js) records what
# it got.  Dialogues go over /ussd/at.  "Another day" is made by moving the
# day in the caller's reminder record (remind:MSISDN) back by one.
#
# Uses the Redis and PostgreSQL of tests/run, or starts its own.  Prints
# "remind: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=remind
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pids=
own=0
tmp=$(mktemp -d /tmp/remigate-remind.XXXXXX) || exit 1
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ $own = 1 ] && srv_cleanup
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

itest_suite_servers
rc() { redis-cli -p "$REDIS_PORT" --raw "$@"; }

itest_config "$PG_DSN"

node tests/lib/fake_sendsms.js "$tmp/sendsms.port" "$tmp/sent" &
pids="$pids $!"
wait_until 10 test -s "$tmp/sendsms.port" || { bad "fake sendsms started"; finish; }
sendsms=http://127.0.0.1:$(cat "$tmp/sendsms.port")/cgi-bin/sendsms
touch "$tmp/sent"

healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ]; }
# start QUIET_START QUIET_END: the daemon (no quiet hours: 0 0)
start() {
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" --set "kannel.sendsms_url=$sendsms" \
        --set kannel.secret=remind-test-secret \
        --set sessions.remind_after="${REMIND_AFTER:-3}" \
        --set sessions.remind_tick_ms=200 \
        --set sessions.remind_quiet_start="$1" \
        --set sessions.remind_quiet_end="$2" 2>>"$tmp/log" &
    dpid=$!
    pids="$pids $dpid"
    wait_until 10 test -s "$tmp/port" || return 1
    base=http://127.0.0.1:$(cat "$tmp/port")
    # (healthy once Redis and PostgreSQL answer; the checks below say if not)
    wait_until 20 healthy ||
        echo "# the daemon is not healthy yet: $(curl -s "$base/healthz")"
}
start 0 0 || { bad "daemon started"; finish; }
ok "daemon started"

# at SID PHONE TEXT: one /ussd/at step
at() {
    curl -s -o "$tmp/body" -w '%{http_code}' --max-time 5 \
        --data-urlencode "sessionId=$1" --data-urlencode "serviceCode=*247#" \
        --data-urlencode "phoneNumber=$2" --data-urlencode "text=$3" \
        "$base/ussd/at" >/dev/null
}
# dialogue SID PHONE ANSWERS...: a dial, then every answer in turn
dialogue() {
    local sid=$1 phone=$2 text= a
    shift 2
    at "$sid" "$phone" ""
    for a in "$@"; do
        text=${text:+$text*}$a
        at "$sid" "$phone" "$text"
        head -c4 "$tmp/body" | grep -q '^CON ' || break
    done
}
BN="ডায়াল করুন *247# — নিবন্ধনের বাকি অংশ"
EN="Returnee service: part of your registration is left. Dial *247# to finish it."
# reminders PHONE: the reminder SMS the number got
reminders() { grep -c -F -e "$BN" -e "$EN" < <(grep "^+$1	" "$tmp/sent"); }
reminded() { [ "$(reminders "$1")" -ge "${2:-1}" ]; }
metric() { curl -s "$base/metrics" | sed -n 's/^remigate_sessions_total{event="reminded"} //p'; }
part1_bn=(1 1 1 "রহিমা বেগম" 2 ১৯৯০ "ফরিদ" ১২৩৪৫৬৭৮৯০ 98 1)

# A: Bangla, Register, consent, the name, then the call drops
a=8801700001001
dialogue a1 $a 1 1 1 "রহিমা বেগম"
is "A: nothing yet, a moment after the drop" 0 "$(reminders $a)"
wait_until 9 reminded $a
is "A: one reminder once quiet for 3 s, in Bangla, as UCS-2" "+$a	2	$BN" \
    "$(grep -F "$BN" "$tmp/sent" | grep "^+$a	" | cut -f1,2,4)"
pause 4
is "A: no second one for the same part" 1 "$(reminders $a)"
is "counted in remigate_sessions_total{event=\"reminded\"}" 1 "$(metric)"

# B: English, still answering (a step every 0.5 s for 3 s): no reminder
# while active, one once quiet
b=8801700001002
sid=b1 text= quiet=1
at $sid $b ""
for step in 2 1 1 "Karim Uddin" 1 1990; do
    text=${text:+$text*}$step
    at $sid $b "$text"
    [ "$(reminders $b)" = 0 ] || quiet=0
    pause 0.5
done
is "B: no reminder while answering" "1 0" "$quiet $(reminders $b)"
wait_until 9 reminded $b
is "B: then one, in English, GSM 7-bit" "+$b	0	$EN" \
    "$(grep -F "$EN" "$tmp/sent" | grep "^+$b	" | cut -f1,2,4)"

# C: part 1 saved (part 2 to do): one reminder, for part 2.  The same
# day part 2 is saved and part 3 left: none (one a day).  The next day,
# part 3 still to do: one.  The day after, part 3 still to do: none (one
# for each part).
c=8801700001003
dialogue c1 $c "${part1_bn[@]}"
grep -q '^END ' "$tmp/body" || bad "C: part 1 saved" "$(cat "$tmp/body")"
wait_until 9 reminded $c
is "C: a reminder once part 1 is saved and part 2 is to do" 1 "$(reminders $c)"
is "C: its record: today, part 2 reminded" "p=2" "$(rc HGET remigate:remind:$c d | cut -d' ' -f2)"
dialogue c2 $c 1 "সৌদি" 5 ২০২৪ 1 4 98 98 1
grep -q '^END ' "$tmp/body" || bad "C: part 2 saved" "$(cat "$tmp/body")"
pause 4.5
is "C: part 3 left the same day: no second reminder that day" 1 "$(reminders $c)"
# the next day: the record's day moved back by one (as a writer of it
# does, the version goes up)
next_day() {
    local rec day parts
    rec=$(rc HGET remigate:remind:$c d)
    day=${rec#d=}
    day=${day%% *}
    parts=${rec##*p=}
    rc HSET remigate:remind:$c d "d=$((day - 1)) p=$parts" >/dev/null
    rc HINCRBY remigate:remind:$c v 1 >/dev/null
}
next_day
dialogue c3 $c 1 "2 5"
wait_until 9 reminded $c 2
is "C: the next day, part 3 undone: one more" 2 "$(reminders $c)"
is "C: its record: parts 2 and 3 reminded" "p=6" "$(rc HGET remigate:remind:$c d | cut -d' ' -f2)"
next_day
dialogue c4 $c 1
pause 4.5
is "C: the day after, part 3 still undone: none (one for each part)" 2 "$(reminders $c)"

# D: every part done: nothing to remind about
d=8801700001004
dialogue d1 $d "${part1_bn[@]}"
dialogue d2 $d 1 "সৌদি" 5 ২০২৪ 1 4 98 98 1
dialogue d3 $d 1 "2 5 9" 3 98 1
grep -q 'নিবন্ধন সম্পূর্ণ' "$tmp/body" || bad "D: registered in 3 parts" "$(cat "$tmp/body")"
pause 4.5
is "D: registered in one go, every part done: no reminder" 0 "$(reminders $d)"
is "the reminder queue is empty once all is looked at" 0 "$(rc LLEN remigate:remind)"
is "each reminder has its sms_out row, kind reminder" 4 \
    "$(psql -X -q -At "$PG_DSN" -c "SELECT count(*) FROM sms_out WHERE kind = 'reminder' AND accepted_at IS NOT NULL")"
check_log() { ! grep -q 'sms not recorded\|outcome not recorded' "$tmp/log"; }
if check_log; then ok "no SMS went unrecorded"; else bad "no SMS went unrecorded" "$(grep 'not recorded' "$tmp/log")"; fi
# the reminder's log line names the number masked (info level)
if grep -q 'reminder sent to=88017\*\*\*\*\*\*' "$tmp/log" && ! grep -qE "$a|$b|$c" "$tmp/log"; then
    ok "reminder log lines mask the number"
else
    bad "reminder log lines mask the number" "$(grep -E 'reminder' "$tmp/log" | head -3)"
fi
# (a sanitizer build, SAN=1, reports here)

# F and G: part 1 by SMS, part 2 begun over USSD (the dial offers it),
# then F does parts 2 and 3 by SMS: no reminder for F, whose USSD session
# still holds part 2 under way (the parts saved on any channel count);
# G, who does nothing more, gets one.  remind_after = 15 s here, so the
# SMS steps are done before the reminders are due (F's 23 SMS steps took
# over 8 s on a machine at load 17); the time they took is checked.
kill -TERM "$dpid"
wait "$dpid" 2>/dev/null
REMIND_AFTER=15 start 0 0 || bad "daemon with remind_after 15 started"
# sms PHONE TEXT...: one SMS after the other (each answered before the next)
sms() {
    local phone=$1 t m
    shift
    for m in "$@"; do
        t=$(printf '%s' "$m" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')
        curl -s -o /dev/null --max-time 5 \
            "$base/kannel/mo?from=%2B$phone&to=16247&text=$t&smsc=sms&id=rm-$(date +%s%N)&coding=0&charset=UTF-8&key=remind-test-secret"
    done
}
parts_done() { psql -X -q -At "$PG_DSN" -c "SELECT array_to_string(parts_done, ' ') FROM returnees WHERE msisdn = '$1'"; }
f=8801700001006 g=8801700001007
t_f=$SECONDS
for p in $f $g; do
    sms $p নিবন্ধন ১ "রহিমা বেগম" ২ ১৯৯০ ফরিদ ১২৩৪৫৬৭৮৯০ ১
    dialogue ${p}u $p 1 "সৌদি"
done
is "F: part 1 by SMS saved" register "$(parts_done $f)"
grep -q 'বিদেশে কত বছর' "$tmp/body" || bad "G: part 2 begun over USSD" "$(cat "$tmp/body")"
sms $f নিবন্ধন সৌদি ৫ ২০২৪ ১ ৪ ১ নিবন্ধন "২ ৫ ৯" ৩ ১
is "F: parts 2 and 3 then saved by SMS" "register register_abroad register_skills" "$(parts_done $f)"
took=$((SECONDS - t_f))
if [ "$took" -lt 15 ]; then ok "F: the SMS steps done before a reminder is due (${took} s of 15)"; else bad "F: the SMS steps done before a reminder is due" "took ${took} s of 15"; fi
wait_until 25 reminded $g
is "G: part 2 left undone over USSD: one reminder" 1 "$(reminders $g)"
wait_until 5 eval '[ "$(rc LLEN remigate:remind)" = 0 ]'
is "F: every part saved, part 2 by SMS: no reminder for the USSD session's part 2" 0 "$(reminders $f)"

# E: the quiet hours (here the whole day): nothing is sent, the reminder
# waits, due when they end (the next local midnight)
kill -TERM "$dpid"
wait "$dpid" 2>/dev/null
start 0 24 || bad "daemon with quiet hours started"
e=8801700001005
t_e=$(date +%s)
dialogue e1 $e 1 1 1 "সালমা"
pause 4.5
is "E: quiet hours: no reminder" 0 "$(reminders $e)"
due=$(rc LRANGE remigate:remind 0 -1 | grep " $e\$" | tail -1 | cut -d' ' -f1)
# (a local midnight after the dialogue began, at most a day and the
# reminder's delay later: the next one may be a few seconds away, when the
# test runs at 23:59 Dhaka time)
check_due() { [ -n "$due" ] && [ "$due" -gt "$t_e" ] && [ "$due" -le $((t_e + 86400 + 60)) ] && [ $(((due + 21600) % 86400)) = 0 ]; }
if check_due; then ok "E: it waits, due at the quiet hours' end (local midnight)"; else bad "E: it waits, due at the quiet hours' end (local midnight)" "due [$due] dialogue began [$t_e]"; fi
if grep -qE 'runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer|assert ' "$tmp/log"; then
    bad "no sanitizer report or assert in the daemon's log" "$(grep -m 3 -E 'runtime error:|Sanitizer|assert ' "$tmp/log")"
else
    ok "no sanitizer report or assert in the daemon's log"
fi
finish
