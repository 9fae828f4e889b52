#!/usr/bin/env bash
# tests/integration/test_parts_channels.sh -- the parts of a registration
# are the caller's, not a channel's (issue 12): a part saved over USSD
# (POST /ussd/at) is done when the same number texts নিবন্ধন (GET
# /kannel/mo without USSD meta-data), and the reverse.  Through the daemon
# with a real Redis and PostgreSQL:
#   - USSD part 1, then the SMS keyword: part 2's first question, not
#     consent again; part 2 by SMS; the next dial offers part 3 of 3;
#   - SMS part 1, then a dial: "part 2 of 3" offered; part 2 over USSD;
#     the keyword then starts part 3;
#   - a part dropped half-way on USSD, then done by SMS: the next dial
#     within the resume window offers part 3, it does not go on with the
#     USSD answers of part 2 (which would save it twice);
#   - a part begun by SMS, then done over USSD: the next SMS answer to it
#     is not taken (the help text), nothing saved again;
#   - answers of a part older than the offer window are still dropped at a
#     dial (the envelope's last step moved back two days), the parts saved
#     on the other channel still offered;
#   - Redis holds one key per number, parts:MSISDN (the bits of the parts
#     saved, TTL sessions.parts_window), whatever the channel;
#   - in PostgreSQL each number has one row with every part in parts_done
#     once and one submission per part, with the channel it came by.
# SMS answers go out through sendsms; kannel.sendsms_url points where
# nothing listens and each answer is read from its sms_out row.
# Uses the Redis and PostgreSQL of tests/run (REDIS_PORT, PG_DSN), or
# starts its own (tests/lib/servers.sh) when run alone.  Prints
# "parts-channels: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=parts-channels
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pid=
own=0
tmp=$(mktemp -d /tmp/remigate-partsch.XXXXXX) || exit 1
cleanup() {
    # TERM: the master stops its workers (-9 would leave them running)
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ $own = 1 ] && srv_cleanup
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

itest_suite_servers
rc() { redis-cli -p "$REDIS_PORT" --raw "$@"; }

itest_config "$PG_DSN"

secret=parts-secret-for-tests
nobody=$(srv_free_port)    # sendsms: nothing listens there
rm -f "$tmp/port"
"$bin" -c "$conf" --workers 2 --port 0 --port-file "$tmp/port" \
    --redis-port "$REDIS_PORT" --set "kannel.secret=$secret" \
    --set "kannel.sendsms_url=http://127.0.0.1:$nobody/cgi-bin/sendsms" \
    --set sessions.remind_after=0 2>>"$tmp/log" &
pid=$!
itest_up "$pid" || { bad "daemon started"; finish; }
ok "daemon started with Redis and PostgreSQL, two workers"

# sms PHONE TEXT: an SMS as Kannel's sms-service passes it; waits (10 s)
# for its answer's sms_out row and prints its text
sms() { itest_sms "$1" "$2"; }
# sms_run PHONE "TEXT=>WORDS"...: each SMS's answer has its WORDS; the
# first that has not is printed, and the status is 1
sms_run() {
    local phone=$1 step got
    shift
    for step in "$@"; do
        got=$(sms "$phone" "${step%%=>*}")
        case $got in
        *"${step#*=>}"*) ;;
        *) echo "after '${step%%=>*}': ${got:0:120}"; return 1 ;;
        esac
    done
}
# at SID PHONE TEXT: one aggregator step; the body goes to $tmp/body
at() {
    curl -s -o "$tmp/body" -w '%{http_code}' --max-time 5 \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-urlencode "sessionId=$1" --data-urlencode "serviceCode=*247#" \
        --data-urlencode "phoneNumber=$2" --data-urlencode "text=$3" \
        --data-urlencode "networkCode=47001" "$base/ussd/at" >/dev/null
}
body() { cat "$tmp/body"; }
# ussd SID PHONE ANSWER...: a dial, then each answer in the same session
# (the aggregator's text grows); the last screen stays in $tmp/body
ussd() {
    local sid=$1 phone=$2 text= a
    shift 2
    at "$sid" "$phone" ""
    for a in "$@"; do
        text=${text:+$text*}$a
        at "$sid" "$phone" "$text"
    done
}
# parts_key PHONE: the bits of the parts saved (the language cut off)
parts_key() { rc HGET "remigate:parts:$1" d | cut -d' ' -f1; }
row() { sql "SELECT status, ref, array_to_string(parts_done, ' ') FROM returnees WHERE msisdn = '$1'"; }
# subs PHONE: "kind/channel" of each submission, oldest first
subs() { sql "SELECT string_agg(kind || '/' || channel, ' ' ORDER BY id) FROM submissions WHERE msisdn = '$1'"; }

# part 1 in Bangla over USSD: language, Register, consent, name, sex, birth
# year, district by its first letters, NID, the read-back's second page, 1
ussd1=(1 1 1 "রহিমা বেগম" 2 ১৯৯০ "চট্ট" ১২৩৪৫৬৭৮৯০ 98 1)
# parts 2 and 3 over USSD from the dial that offers them (1: go on)
ussd2=(1 "সৌদি" 5 ২০২৪ 1 4 98 98 1)
ussd3=(1 "2 5 9" 3 98 1)
# the same parts by SMS, in Bangla
sms1=("নিবন্ধন=>কাজ, ঋণ, প্রশিক্ষণ দিতে সরকার তথ্য রাখবে"
    "১=>আপনার পুরো নাম লিখুন" "রহিমা বেগম=>আপনি পুরুষ না নারী?"
    "২=>আপনার জন্ম কোন সালে?" "১৯৯০=>কোন জেলায় থাকেন? শুরুর অক্ষর লিখুন"
    "ফরিদ=>জেলা: ফরিদপুর" "১২৩৪৫৬৭৮৯০=>নাম: ***" "১=>রেফারেন্স")
sms2=("নিবন্ধন=>কোন দেশ থেকে ফিরেছেন?" "সৌদি=>বিদেশে কত বছর?"
    "৫=>কোন সালে দেশে ফিরেছেন?" "২০২৪=>কেন দেশে ফিরেছেন?"
    "১=>কতদূর পড়াশোনা করেছেন?" "৪=>দেখে নিন:" "১=>২য় অংশ জমা হলো")
sms3=("নিবন্ধন=>কী কাজ পারেন?" "২ ৫ ৯=>এখন কী সবচেয়ে দরকার?"
    "৩=>দেখে নিন:" "১=>নিবন্ধন সম্পূর্ণ")
offer2='নিবন্ধনের ২/৩ অংশ বাকি: বিদেশের তথ্য'
offer3='নিবন্ধনের ৩/৩ অংশ বাকি: দক্ষতা ও প্রয়োজন'
all3='register register_abroad register_skills'

# ---- USSD part 1, SMS part 2, USSD part 3 -----------------------------------
a=8801710000301
ussd a1 $a "${ussd1[@]}"
ref=$(body | grep -oE '[0-9A-Z]{10}' | head -1)
check "ussd->sms: part 1 over USSD ends with a reference (${ref:-none})" "[ -n '$ref' ] && body | grep -q '^END '"
check "ussd->sms: parts:$a holds part 1 ($(parts_key $a))" "[ \"\$(parts_key $a)\" = 1 ]"
check "ussd->sms: ... for sessions.parts_window (30 days)" "t=\$(rc TTL remigate:parts:$a); [ \$t -gt 2591000 ] && [ \$t -le 2592000 ]"
got=$(sms $a "নিবন্ধন")
check "ussd->sms: নিবন্ধন by SMS asks part 2's first question, not consent again (${got:0:60})" "[[ '$got' == *'কোন দেশ থেকে ফিরেছেন?'* ]]"
out=$(sms_run $a "${sms2[@]:1}")
check "ussd->sms: part 2 answered by SMS, saved ($out)" "[ -z '$out' ]"
check "ussd->sms: parts:$a holds parts 1 and 2 ($(parts_key $a))" "[ \"\$(parts_key $a)\" = 3 ]"
at a2 $a ""
check "ussd->sms: the next dial offers part 3 of 3 ($(body | head -1))" "body | grep -q '$offer3'"
ussd a3 $a "${ussd3[@]}"
check "ussd->sms: part 3 over USSD completes the registration" "body | grep -q '^END ' && body | grep -q 'নিবন্ধন সম্পূর্ণ'"
check "ussd->sms: one row, the reference kept, every part done once ($(row $a))" "[ \"\$(row $a)\" = 'pending|$ref|$all3' ]"
check "ussd->sms: one submission a part, each by the channel it came ($(subs $a))" "[ \"\$(subs $a)\" = 'register/ussd register_abroad/sms register_skills/ussd' ]"
check "ussd->sms: parts:$a holds the three parts ($(parts_key $a))" "[ \"\$(parts_key $a)\" = 7 ]"

# ---- SMS part 1, USSD part 2, SMS part 3 -------------------------------------
b=8801710000302
out=$(sms_run $b "${sms1[@]}")
check "sms->ussd: part 1 by SMS, saved ($out)" "[ -z '$out' ]"
check "sms->ussd: parts:$b holds part 1 ($(parts_key $b))" "[ \"\$(parts_key $b)\" = 1 ]"
at b1 $b ""
check "sms->ussd: the first dial offers part 2 of 3 ($(body | head -1))" "body | grep -q '$offer2'"
ussd b2 $b "${ussd2[@]}"
check "sms->ussd: part 2 over USSD saved" "body | grep -q '^END ' && [ \"\$(parts_key $b)\" = 3 ]"
out=$(sms_run $b "${sms3[@]}")
check "sms->ussd: নিবন্ধন then starts part 3, done by SMS ($out)" "[ -z '$out' ]"
check "sms->ussd: one row, every part done once ($(row $b))" "[ \"\$(row $b | cut -d'|' -f1,3)\" = 'pending|$all3' ]"
check "sms->ussd: one submission a part ($(subs $b))" "[ \"\$(subs $b)\" = 'register/sms register_abroad/ussd register_skills/sms' ]"

# ---- part 2 dropped half-way on USSD, then done by SMS --------------------------
c=8801710000303
ussd c1 $c "${ussd1[@]}"
ussd c2 $c 1 "সৌদি" 5     # part 2: country, years; the phone drops
check "drop: part 2 half-way over USSD asks the year of return" "body | grep -q 'কোন সালে দেশে ফিরেছেন?'"
out=$(sms_run $c "${sms2[@]}")
check "drop: নিবন্ধন by SMS starts part 2 afresh there, saved ($out)" "[ -z '$out' ]"
at c3 $c ""
check "drop: a dial within the resume window offers part 3, not part 2's USSD answers ($(body | head -1))" "body | grep -q '$offer3'"
check "drop: ... and says why in the log" "grep -q 'part 2 was saved on another channel' '$tmp/log'"
ussd c4 $c "${ussd3[@]}"
check "drop: one submission a part, part 2 once ($(subs $c))" "[ \"\$(subs $c)\" = 'register/ussd register_abroad/sms register_skills/ussd' ]"
check "drop: every part done once ($(row $c | cut -d'|' -f3))" "[ \"\$(row $c | cut -d'|' -f3)\" = '$all3' ]"

# ---- part 2 begun by SMS, done over USSD: the next SMS answer is not taken -----
d=8801710000304
ussd d1 $d "${ussd1[@]}"
out=$(sms_run $d "নিবন্ধন=>কোন দেশ থেকে ফিরেছেন?" "সৌদি=>বিদেশে কত বছর?")
check "sms half-way: part 2 begun by SMS ($out)" "[ -z '$out' ]"
ussd d2 $d "${ussd2[@]}"
check "sms half-way: part 2 done over USSD" "body | grep -q '^END ' && [ \"\$(parts_key $d)\" = 3 ]"
got=$(sms $d "৫")
check "sms half-way: the SMS answer to part 2 gets the help text, not the next question (${got:0:50})" "[[ '$got' == *'লিখে পাঠান: নিবন্ধন বা REG'* ]]"
got=$(sms $d "নিবন্ধন")
check "sms half-way: নিবন্ধন then starts part 3 (${got:0:40})" "[[ '$got' == *'কী কাজ পারেন?'* ]]"
check "sms half-way: part 2 saved once ($(subs $d))" "[ \"\$(subs $d)\" = 'register/ussd register_abroad/ussd' ]"

# ---- answers older than the offer window are dropped; the parts stay ---------
e=8801710000305
out=$(sms_run $e "${sms1[@]}")
check "offer window: part 1 by SMS ($out)" "[ -z '$out' ]"
ussd e1 $e 1 "সৌদি" 5     # part 2 over USSD: country, years; dropped
env=$(rc HGET "remigate:s:ussd:$e" d)
old=$(( $(date +%s) - 2 * 86400 ))
# the last step two days ago (offer_window is one day); a writer of a
# session bumps its version, as the daemon's compare-and-set does
rc HSET "remigate:s:ussd:$e" d "$(printf '%s' "$env" | sed "s/^t=.*/t=$old/")"$'\n' >/dev/null
rc HINCRBY "remigate:s:ussd:$e" v 1 >/dev/null
at e2 $e ""
check "offer window: two days later a dial offers part 2 afresh, not 'continue?' ($(body | head -1))" "body | grep -q '$offer2' && ! body | grep -q 'আগের ফর্মটি শেষ হয়নি'"
at e2 $e 1
check "offer window: going on asks part 2's first question again" "body | grep -q 'কোন দেশ থেকে ফিরেছেন?'"
check "offer window: nothing of part 2 saved ($(subs $e))" "[ \"\$(subs $e)\" = 'register/sms' ]"

# ---- nothing personal in the new key --------------------------------------------
keys=$(rc --scan --pattern 'remigate:parts:*' | sort | tr '\n' ' ')
check "redis: one parts key per number ($keys)" "[ '$keys' = 'remigate:parts:$a remigate:parts:$b remigate:parts:$c remigate:parts:$d remigate:parts:$e ' ]"
check "redis: a parts key holds only v and d, d the parts and their language ($(rc HGET remigate:parts:$a d))" "[ \"\$(rc HKEYS remigate:parts:$a | sort | tr '\n' ' ')\" = 'd v ' ] && [ \"\$(rc HGET remigate:parts:$a d)\" = '7 bn' ]"
check "daemon still up, no assert or sanitizer report in its log" "kill -0 $pid && ! grep -q -e 'assert:' -e 'runtime error' -e 'Sanitizer' '$tmp/log'"
finish
