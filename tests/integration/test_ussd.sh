#!/usr/bin/env bash
# tests/integration/test_ussd.sh -- whole dialogues through the daemon's
# USSD endpoints against a real Redis: a Bangla registration over POST
# /ussd/at and over GET /kannel/mo (with the query strings Kannel 1.4.5
# sends), duplicates and races, resume, an idle dialogue, Redis killed and
# restarted mid-dialogue, the confirming step waiting for Redis killed just
# before it (redis.wait_ms), bad requests that change nothing, and SIGHUP with
# a broken flow file.  The daemon runs with no database: finished
# registrations go to the durable Redis queue.
#
# It starts its own Redis (tests/lib/servers.sh, append-only so a restart
# keeps the sessions) so it can kill it.  Prints "ussd: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=ussd
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pid=
SRV_TMP=
srv_tmpdir || exit 1
tmp=$SRV_TMP
pid2=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    [ -n "$pid2" ] && kill -9 "$pid2" 2>/dev/null
    srv_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

REDIS_AOF=1 srv_redis_start || { echo "ussd: 0 passed, 1 failed"; exit 1; }
rc() { redis-cli -p "$REDIS_PORT" --raw "$@"; }
rc CONFIG SET appendfsync always >/dev/null   # a SIGKILL loses nothing

cp -r config "$tmp/config"
conf=$tmp/config/remigate.conf
secret=kannel-secret-for-tests
start() {
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" --log-level info \
        --set "kannel.secret=$secret" --set sessions.ussd_idle=60 \
        --set limits.request_timeout_ms=1500 --set redis.timeout_ms=300 \
        "$@" 2>>"$tmp/log" &
    pid=$!
    for _ in $(seq 200); do
        [ -s "$tmp/port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    port=$(cat "$tmp/port" 2>/dev/null)
    base=http://127.0.0.1:$port
    [ -n "$port" ] || return 1
    # ready when Redis is connected
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] && return 0
        sleep 0.05
    done
    return 0
}
stop() {
    stop_rc=
    [ -n "$pid" ] || return 0
    kill -TERM "$pid"
    wait "$pid"
    stop_rc=$?
    pid=
}

# at SID PHONE TEXT: one aggregator step; the body goes to $tmp/body.
at() {
    curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' --max-time "${AT_MAX:-5}" \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-urlencode "sessionId=$1" --data-urlencode "serviceCode=*247#" \
        --data-urlencode "phoneNumber=$2" --data-urlencode "text=$3" \
        --data-urlencode "networkCode=47001" "$base/ussd/at"
}

# Kannel's query, as smsbox builds it (kannel-ussd.md 6.1 and 6.2).
# mo FROM OP SESS SEQ TEXT ID [KEY]: OP, SESS and SEQ as two hex digits.
mo() {
    local from=$1 op=$2 sn=$3 seq=$4 text=$5 id=$6 key=${7-$secret}
    local t
    t=$(printf '%s' "$text" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')
    curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' --max-time "${AT_MAX:-5}" \
        "$base/kannel/mo?svc=ussd-mo&from=%2B$from&to=*247%23&text=$t&smsc=ussd&id=$id&coding=0&charset=UTF-8&binfo=USSD&meta=%3Fsmpp%3Fussd_service_op%3D%25$op%26its_session_info%3D%25$sn%25$seq%26&key=$key"
}
body() { cat "$tmp/body"; }
hdr() { grep -i "^$1: " "$tmp/headers" | cut -d' ' -f2- | tr -d '\r'; }

if ! start; then
    bad "daemon started"
    echo "ussd: $pass passed, $fail failed"
    exit 1
fi
ok "daemon started on port $port with Redis on $REDIS_PORT"

# ---- part 1 of a Bangla registration over /ussd/at ----------------------
# language (Bangla is 1), Register, then the answers of part 1 (the district
# by its first letters), the read-back's second page, and 1 to confirm.
answers=(1 1 1 "রহিমা বেগম" 2 ১৯৯০ "চট্ট" ১২৩৪৫৬৭৮৯০ 98 1)
phone=8801712345678
sid=at-1
s=$(at $sid $phone "")
check "at: dial answers 200 CON (got $s)" "[ '$s' = 200 ] && body | head -c4 | grep -q '^CON '"
check "at: the first screen is the language menu in Bangla" "body | grep -q 'ভাষা বেছে নিন'"
text= allcon=1 maxlen=0 screens=()
for a in "${answers[@]}"; do
    text=${text:+$text*}$a
    s=$(at $sid $phone "$text")
    [ "$s" = 200 ] || allcon=0
    n=$(body | tail -c +5 | iconv -f utf-8 -t utf-16le | wc -c)
    [ $((n / 2)) -gt "$maxlen" ] && maxlen=$((n / 2))
    screens+=("$(body)")
    head -c4 "$tmp/body" | grep -q '^CON ' || break
done
last=$(body)
check "at: every step answered 200" "[ $allcon = 1 ]"
check "at: the registration ends with END" "[ \"\${last:0:4}\" = 'END ' ]"
check "at: every Bangla screen fits 80 UTF-16 units (max $maxlen)" "[ $maxlen -le 80 ]"
ref=$(printf '%s' "$last" | grep -oE '[0-9A-Z]{10}' | head -1)
check "at: the last screen gives a reference ($ref)" "[ -n '$ref' ]"
q=$(rc LRANGE remigate:queue:records 0 -1)
check "at: the record is in the durable queue" "printf '%s' \"\$q\" | grep -q '\"ref\":\"$ref\"' && printf '%s' \"\$q\" | grep -q '\"id_number\":\"1234567890\"'"
check "at: the record has the Bangla name" "printf '%s' \"\$q\" | grep -q 'রহিমা বেগম'"
nq=$(rc LLEN remigate:queue:records)
s=$(at $sid $phone "$text")
check "at: the last step again replays END and queues nothing more" "[ \"\$(body)\" = \"\$last\" ] && [ \$(rc LLEN remigate:queue:records) = $nq ]"
v=$(rc HGET "remigate:s:ussd:$phone" v)
s=$(at $sid $phone "${text%\*1}")
check "at: an older text answers the last screen, changes nothing" "[ \"\$(body)\" = \"\$last\" ] && [ \$(rc HGET remigate:s:ussd:$phone v) = $v ]"
check "at: with parts to do, the session lives for the parts window (30 days)" "t=\$(rc TTL remigate:s:ussd:$phone); [ \$t -gt 2591000 ] && [ \$t -le 2592000 ]"
s=$(at at-1b $phone "")
check "at: the next dial offers part 2 of 3" "body | grep -q 'নিবন্ধনের ২/৩ অংশ বাকি: বিদেশের তথ্য'"
s=$(at at-1b $phone "2")
check "at: ... or the main menu" "body | grep -q 'কী করতে চান?'"
check "at: a finished dialogue without parts to do has the resume window's TTL" "at at-1c 8801712345670 '' >/dev/null; at at-1c 8801712345670 1 >/dev/null; at at-1c 8801712345670 '1*4' >/dev/null; t=\$(rc TTL remigate:s:ussd:8801712345670); [ \$t -gt 800 ] && [ \$t -le 900 ]"

# a '*' typed inside a free-text answer is kept
phone2=8801812345678
at at-2 $phone2 "" >/dev/null
at at-2 $phone2 "2" >/dev/null          # English
at at-2 $phone2 "2*1" >/dev/null        # Register
at at-2 $phone2 "2*1*1" >/dev/null      # consent
s=$(at at-2 $phone2 "2*1*1*Ka*rim")
check "at: a name with '*' in it is one answer (a letters-only reason)" "body | grep -q 'letters only'"
s=$(at at-2 $phone2 "2*1*1*Ka*rim*Karim Uddin")
check "at: the next answer after it is read correctly" "body | grep -q 'male or female'"

# ---- the same over /kannel/mo -------------------------------------------
kphone=8801711000001
s=$(mo $kphone 01 12 00 '*247#' id-k1)
check "kannel: dial answers 200 (got $s)" "[ '$s' = 200 ]"
check "kannel: continue meta-data, session info echoed" "[ \"\$(hdr X-Kannel-Meta-Data)\" = '?smpp?ussd_service_op=2&its_session_info=%12%00' ]"
check "kannel: Bangla screen carries X-Kannel-Coding: 2" "[ \"\$(hdr X-Kannel-Coding)\" = 2 ]"
seq=1 endmeta= allok=1
for a in "${answers[@]}"; do
    sq=$(printf '%02x' $((seq * 2)))
    s=$(mo $kphone 12 12 "$sq" "$a" "id-k$((seq + 1))")
    [ "$s" = 200 ] || allok=0
    seq=$((seq + 1))
    endmeta=$(hdr X-Kannel-Meta-Data)
    case $endmeta in *ussd_service_op=17*) break;; esac
done
check "kannel: every step answered 200" "[ $allok = 1 ]"
check "kannel: the last screen ends: op 17, end bit set (got $endmeta)" "[ \"\$endmeta\" = \"?smpp?ussd_service_op=17&its_session_info=%12%$(printf '%02X' $(( (seq - 1) * 2 + 1)))\" ]"
kref=$(body | grep -oE '[0-9A-Z]{10}' | head -1)
check "kannel: reference on the last screen, record queued" "[ -n '$kref' ] && rc LRANGE remigate:queue:records 0 -1 | grep -q '\"ref\":\"$kref\"'"

# ---- duplicates ----------------------------------------------------------
dphone=8801911000002
mo $dphone 01 20 00 '*247#' id-d1 >/dev/null
mo $dphone 12 20 02 1 id-d2 >/dev/null        # Bangla
first=$(body)
v=$(rc HGET "remigate:s:ussd:$dphone" v)
mo $dphone 12 20 02 1 id-d2 >/dev/null
check "dup: the same Kannel id again: same screen" "[ \"\$(body)\" = \"\$first\" ]"
check "dup: ... and the session did not move" "[ \$(rc HGET remigate:s:ussd:$dphone v) = $v ]"
mo $dphone 12 20 02 1 id-d2-other >/dev/null
check "dup: same session, sequence and input, new id: same screen, no move" "[ \"\$(body)\" = \"\$first\" ] && [ \$(rc HGET remigate:s:ussd:$dphone v) = $v ]"
dups=$(curl -s "$base/metrics" | grep '^remigate_duplicates_total{channel="ussd"}' | awk '{print $2}')
check "dup: counted in remigate_duplicates_total ($dups)" "[ '${dups:-0}' -ge 2 ]"

# two different answers to one screen at once: exactly one advances
# (two valid choices that go on, and wrong ones that re-ask: every one of
# them would save if it ran alone)
racers=
for i in 1 2 7 8 9 1; do
    mo $dphone 12 20 04 "$i" "id-race-$RANDOM$i" >/dev/null &
    racers="$racers $!"
done
wait $racers
v2=$(rc HGET "remigate:s:ussd:$dphone" v)
check "race: six racing answers advance the session once ($v -> $v2)" "[ $v2 = $((v + 1)) ]"

# ---- resume ---------------------------------------------------------------
rphone=8801511000003
mo $rphone 01 30 00 '*247#' id-r1 >/dev/null
mo $rphone 12 30 02 1 id-r2 >/dev/null      # Bangla
mo $rphone 12 30 04 1 id-r3 >/dev/null      # Register
mo $rphone 12 30 06 1 id-r4 >/dev/null      # consent
mo $rphone 12 30 08 'করিম উদ্দিন' id-r5 >/dev/null
asked=$(body)
# the phone drops; a new dial (new session number) within the resume
# window goes straight back to the question that was not answered
mo $rphone 01 31 00 '*247#' id-r6 >/dev/null
check "resume: a new dial soon after shows the question where it stopped" "[ \"\$(body)\" = \"\$asked\" ]"
mo $rphone 12 30 0a 1 id-r8 >/dev/null
check "resume: an answer for the old dialogue is told it ended" "body | grep -q 'বন্ধ হয়ে গেছে'"
# later than the resume window (the last step an hour ago): the answers are
# offered back
env=$(rc HGET "remigate:s:ussd:$rphone" d)
old=$(( $(date +%s) - 3600 ))
# (each field of the envelope ends with a newline, the last one too)
rc HSET "remigate:s:ussd:$rphone" d "$(printf '%s' "$env" | sed -e "s/^t=.*/t=$old/" -e "s/&u=[0-9]*/\&u=$old/")"$'\n' >/dev/null
rc HINCRBY "remigate:s:ussd:$rphone" v 1 >/dev/null
mo $rphone 01 32 00 '*247#' id-r9 >/dev/null
check "resume: an hour later a dial offers to go on" "body | grep -q 'আগের ফর্মটি শেষ হয়নি'"
mo $rphone 12 32 02 1 id-r10 >/dev/null
check "resume: 'continue' shows the question where it stopped" "[ \"\$(body)\" = \"\$asked\" ]"
started=$(curl -s "$base/metrics" | grep '^remigate_sessions_total{event="resumed"}' | awk '{print $2}')
check "resume: counted ($started)" "[ '${started:-0}' -ge 1 ]"

# an answer after the idle time: the dialogue is over
iphone=8801611000004
mo $iphone 01 40 00 '*247#' id-i1 >/dev/null
env=$(rc HGET "remigate:s:ussd:$iphone" d)
old=$(( $(date +%s) - 120 ))
# a writer of a session bumps its version, as the daemon's own
# compare-and-set does (so a worker's cached copy is not taken for current)
rc HSET "remigate:s:ussd:$iphone" d "$(printf '%s' "$env" | sed "s/^t=.*/t=$old/")"$'\n' >/dev/null
rc HINCRBY "remigate:s:ussd:$iphone" v 1 >/dev/null
mo $iphone 12 40 02 1 id-i2 >/dev/null
check "idle: an answer after ussd_idle ends politely" "body | grep -q 'বন্ধ হয়ে গেছে' && [ \"\$(hdr X-Kannel-Meta-Data)\" = '?smpp?ussd_service_op=17&its_session_info=%40%03' ]"

# ---- bad requests change nothing -----------------------------------------
keys0=$(rc DBSIZE)
s=$(mo 8801311000005 01 50 00 '*247#' id-b1 wrong-key)
check "bad: wrong key is 403 (got $s)" "[ '$s' = 403 ]"
s=$(mo 8801311000005 01 50 00 '*247#' id-b2 '')
check "bad: missing key is 403 (got $s)" "[ '$s' = 403 ]"
s=$(curl -s -o /dev/null -w '%{http_code}' "$base/kannel/mo?from=%2B8801311000005&text=%ZZ&key=$secret")
check "bad: bad percent-encoding is 400 (got $s)" "[ '$s' = 400 ]"
s=$(curl -s -o /dev/null -w '%{http_code}' "$base/kannel/mo?from=%2B12025550100&text=1&key=$secret&meta=%3Fsmpp%3Fussd_service_op%3D%2501")
check "bad: a number that is not a Bangladesh mobile is 400 (got $s)" "[ '$s' = 400 ]"
s=$(curl -s -o /dev/null -w '%{http_code}' "$base/kannel/mo?from=%2B8801311000005&text=%FF%FE&key=$secret&meta=%3Fsmpp%3Fussd_service_op%3D%2512")
check "bad: invalid UTF-8 is 400 (got $s)" "[ '$s' = 400 ]"
s=$(curl -s -o /dev/null -w '%{http_code}' "$base/kannel/mo?text=1&key=$secret")
check "bad: no from is 400 (got $s)" "[ '$s' = 400 ]"
long=$(head -c 600 /dev/zero | tr '\0' a)
s=$(mo 8801311000005 12 50 02 "$long" id-b3)
check "bad: overlong input is a 4xx (got $s)" "[ '$s' -ge 400 ] && [ '$s' -lt 500 ]"
s=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' --data 'sessionId=x&text=1' "$base/ussd/at")
check "bad: /ussd/at without phoneNumber is 400 (got $s)" "[ '$s' = 400 ]"
s=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data 'sessionId=x' "$base/ussd/at")
check "bad: /ussd/at not a form is 415 (got $s)" "[ '$s' = 415 ]"
check "bad: none of them wrote to Redis" "[ \$(rc DBSIZE) = $keys0 ]"
check "bad: each was logged" "[ \$(grep -c 'status=4' '$tmp/log') -ge 8 ]"

# ---- Redis killed mid-dialogue, then back -------------------------------
kphone=8801411000006
mo $kphone 01 60 00 '*247#' id-x1 >/dev/null
mo $kphone 12 60 02 2 id-x2 >/dev/null       # English
mo $kphone 12 60 04 1 id-x2b >/dev/null      # Register
mo $kphone 12 60 06 1 id-x2c >/dev/null      # consent
home=$(body)
srv_redis_kill9
t0=$(date +%s%N)
s=$(mo $kphone 12 60 08 'Karim Uddin' id-x3)
t1=$(date +%s%N)
# (in English, the caller's language, while the worker still holds their
# last save from before the drop; in the default, Bangla, once it has
# started reconnecting and holds nothing from the old connection)
check "redis down: the caller hears 'busy' (got $s: $(body | head -1))" "[ '$s' = 200 ] && body | grep -q -e 'লাইন এখন ব্যস্ত' -e 'Service busy' && [ \"\$(hdr X-Kannel-Meta-Data)\" = '?smpp?ussd_service_op=17&its_session_info=%60%09' ]"
check "redis down: ... within the deadline ($(( (t1 - t0) / 1000000 )) ms)" "[ $(( (t1 - t0) / 1000000 )) -lt 1600 ]"
s=$(curl -s -o "$tmp/hz" -w '%{http_code}' "$base/healthz")
check "redis down: /healthz is 503 naming redis (got $s)" "[ '$s' = 503 ] && grep -q '\"redis\":\"down\"' '$tmp/hz'"
REDIS_AOF=1 srv_redis_restart
rc CONFIG SET appendfsync always >/dev/null
for _ in $(seq 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] && break
    sleep 0.05
done
s=$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")
check "redis back: the daemon reconnected by itself (healthz $s)" "[ '$s' = 200 ]"
mo $kphone 01 61 00 '*247#' id-x4 >/dev/null
check "redis back: the caller dials again and carries on at the question where they were" "[ \"\$(body)\" = \"\$home\" ]"
errs=$(curl -s "$base/metrics" | grep '^remigate_redis_errors_total' | awk '{print $2}')
check "redis errors counted ($errs)" "[ '${errs:-0}' -ge 1 ]"

# ---- Redis hangs (SIGSTOP): every command carries its own timer --------
hphone=8801311000008
mo $hphone 01 70 00 '*247#' id-h1 >/dev/null
mo $hphone 12 70 02 2 id-h2 >/dev/null       # English
kill -STOP "$REDIS_PID"
t0=$(date +%s%N)
s=$(mo $hphone 12 70 04 1 id-h3)
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
# (the worker saved this caller's last step and still has it: the busy
# reply is in the language they chose)
check "redis hung: busy reply in about redis.timeout_ms (${ms} ms)" "[ '$s' = 200 ] && body | grep -q 'Service busy' && [ $ms -lt 1000 ]"
s=$(mo $hphone 12 70 04 1 id-h4)
check "redis hung: the next request is not stuck behind it (got $s)" "[ '$s' = 200 ] && body | grep -q 'Service busy'"
kill -CONT "$REDIS_PID"
for _ in $(seq 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] && break
    sleep 0.05
done
check "redis resumed: healthz 200 again" "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $base/healthz)\" = 200 ]"
mo $hphone 01 71 00 '*247#' id-h5 >/dev/null
check "redis resumed: the caller dials again: English remembered, main menu" "body | grep -q 'What do you want to do?'"

# ---- two daemons on one Redis take turns with one dialogue -----------------
# Each daemon keeps the envelopes it saved and skips the read on the next
# step; here every step finds the other daemon's save in Redis, so each
# cached copy is stale by one step and must lose its compare-and-set and
# start again from Redis: every answer advances the session exactly once.
"$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port2" \
    --redis-port "$REDIS_PORT" --log-level info --set "kannel.secret=$secret" \
    2>>"$tmp/log2" &
pid2=$!
for _ in $(seq 200); do [ -s "$tmp/port2" ] && break; sleep 0.05; done
base1=$base base2=http://127.0.0.1:$(cat "$tmp/port2" 2>/dev/null)
for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base2/healthz")" = 200 ] && break
    sleep 0.05
done
tphone=8801712300009 n=0 same=1 allcon=1
base=$base1
at at-t $tphone "" >/dev/null
text=
for a in "${answers[@]}"; do
    text=${text:+$text*}$a
    n=$((n + 1))
    if [ $((n % 2)) = 1 ]; then base=$base2; else base=$base1; fi
    s=$(at at-t $tphone "$text")
    [ "$s" = 200 ] || allcon=0
    head -c4 "$tmp/body" | grep -q '^CON ' || break
    [ "$(body)" = "${screens[$((n - 1))]}" ] || same=0
done
tlast=$(body)
base=$base1
tv=$(rc HGET "remigate:s:ussd:$tphone" v)
tref=$(printf '%s' "$tlast" | grep -oE '[0-9A-Z]{10}' | head -1)
check "two daemons: every step answered 200" "[ $allcon = 1 ]"
check "two daemons: the same screens as one daemon gave" "[ $same = 1 ]"
check "two daemons: the registration ends with END and a reference ($tref)" "[ \"\${tlast:0:4}\" = 'END ' ] && [ -n '$tref' ]"
check "two daemons: each answer advanced the session once (version $tv, $n answers)" "[ '$tv' = $((n + 1)) ]"
check "two daemons: one record queued" "[ \$(rc LRANGE remigate:queue:records 0 -1 | grep -c '\"msisdn\":\"$tphone\"') = 1 ]"
base=$base2
s=$(at at-t $tphone "$text")
check "two daemons: the last step again, to the other daemon, replays END" "[ \"\$(body)\" = \"\$tlast\" ] && [ \$(rc HGET remigate:s:ussd:$tphone v) = $tv ]"
base=$base1
kill -TERM "$pid2"
wait "$pid2"
pid2=

# ---- the confirming step while Redis has just gone (redis.wait_ms) -------
# The worker holds the caller's last save and runs the confirming step on
# it; a step that runs an action reads the session from Redis again
# first.  Redis killed a moment before: that read finds it down before the
# first reconnect, and waits for it like any other read -- not "busy".
# (Redis is back 0.2 s later: the daemon's reconnects, 0.1, 0.3 and 0.7 s
# after the drop, find it within the 1.2 s wait even on a slow machine.)
stop
start --set redis.wait_ms=1200
wphone=8801712300011 text=
at at-w $wphone "" >/dev/null
for a in "${answers[@]:0:${#answers[@]}-1}"; do
    text=${text:+$text*}$a
    at at-w $wphone "$text" >/dev/null
done
check "wait: the read-back screen before the kill" "body | head -c4 | grep -q '^CON '"
srv_redis_kill9
t0=$(date +%s%N)
at at-w $wphone "$text*${answers[-1]}" >"$tmp/wstatus" &
stepper=$!
sleep 0.2
REDIS_AOF=1 srv_redis_restart
rc CONFIG SET appendfsync always >/dev/null
wait "$stepper"
ms=$((($(date +%s%N) - t0) / 1000000))
wref=$(body | grep -oE '[0-9A-Z]{10}' | head -1)
check "wait: the confirming step waited for Redis and ends with a reference ($ms ms, ${wref:-no reference}: $(body | head -c 60))" \
    "[ \"\$(cat '$tmp/wstatus')\" = 200 ] && [ -n '$wref' ] && [ $ms -ge 150 ]"
check "wait: one record queued, with that reference" \
    "[ \$(rc LRANGE remigate:queue:records 0 -1 | grep -c '\"msisdn\":\"$wphone\"') = 1 ] && rc LRANGE remigate:queue:records 0 -1 | grep -q '\"ref\":\"$wref\"'"
# the same caller dials again just after Redis is killed: the worker holds
# their session, and the parts they saved are read from Redis before the
# offer -- that read waits too
srv_redis_kill9
t0=$(date +%s%N)
at at-w2 $wphone "" >"$tmp/wstatus" &
stepper=$!
sleep 0.2
REDIS_AOF=1 srv_redis_restart
rc CONFIG SET appendfsync always >/dev/null
wait "$stepper"
ms=$((($(date +%s%N) - t0) / 1000000))
check "wait: a dial made just after the kill waits for Redis and is answered CON ($ms ms: $(body | head -c 60))" \
    "[ \"\$(cat '$tmp/wstatus')\" = 200 ] && body | head -c4 | grep -q '^CON ' && [ $ms -ge 150 ]"

# ---- a dial while Redis is loading its data back --------------------------
# Restarted, Redis accepts connections at once but answers -LOADING to
# every session command until its data is read back (1,000,000 keys here,
# about a second); TIME, the handshake's last command, is answered all the
# same.  The connection made in that time must not be taken as ready (the
# caller would hear "busy"): PING, refused -LOADING, holds it back, and the
# dial waits (redis.wait_ms) for Redis to be ready.
stop
start --set redis.wait_ms=8000 --set limits.request_timeout_ms=9000
rc EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'test:load:' .. i, i) end" 0 1000000 >/dev/null
rc BGREWRITEAOF >/dev/null
for _ in $(seq 300); do
    [ "$(rc INFO persistence | tr -d '\r' | grep -c '^aof_rewrite_in_progress:0$')" = 1 ] &&
        [ "$(rc INFO persistence | tr -d '\r' | grep -c '^aof_rewrite_scheduled:0$')" = 1 ] && break
    sleep 0.1
done
log_from=$(($(wc -l <"$tmp/log") + 1))
srv_redis_kill9
t0=$(date +%s%N)
AT_MAX=10 at at-l $wphone "" >"$tmp/wstatus" &
stepper=$!
REDIS_AOF=1 srv_redis_restart
load_ms=$((($(date +%s%N) - t0) / 1000000))
rc CONFIG SET appendfsync always >/dev/null
wait "$stepper"
ms=$((($(date +%s%N) - t0) / 1000000))
check "loading: Redis read its 1,000,000 keys back (restart to PONG: $load_ms ms)" \
    "[ \"\$(rc DBSIZE)\" -ge 1000000 ]"
check "loading: a dial made as Redis restarts waits for its data and is answered CON ($ms ms: $(body | head -c 60))" \
    "[ \"\$(cat '$tmp/wstatus')\" = 200 ] && body | head -c4 | grep -q '^CON '"
check "loading: the daemon said Redis was loading, and no busy reply" \
    "tail -n +$log_from '$tmp/log' | grep -q 'LOADING' && ! tail -n +$log_from '$tmp/log' | grep -q 'busy reply'"
rc EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('DEL', 'test:load:' .. i) end" 0 1000000 >/dev/null

# ---- SIGHUP with a broken flow file ----------------------------------------
cp "$tmp/config/flows/status.conf" "$tmp/status.ok"
printf 'id = "status";\nnodes = ( { id = "x"; kind = "nope"; } );\n' >"$tmp/config/flows/status.conf"
kill -HUP "$pid"
for _ in $(seq 60); do grep -q 'reload refused' "$tmp/log" && break; sleep 0.05; done
check "sighup: a broken flow file is refused with its line" "grep -q 'reload refused' '$tmp/log' && grep -q 'status.conf:2' '$tmp/log'"
s=$(at at-h 8801712000007 "")
check "sighup: the old flows still answer" "[ '$s' = 200 ] && body | grep -q 'ভাষা বেছে নিন'"
cp "$tmp/status.ok" "$tmp/config/flows/status.conf"
kill -HUP "$pid"
for _ in $(seq 60); do grep -q 'flows: reloaded' "$tmp/log" && break; sleep 0.05; done
check "sighup: the fixed file loads" "grep -q 'flows: reloaded' '$tmp/log'"

check "no assert or libevent error in the log" "! grep -q -e 'assert:' -e 'libevent:' '$tmp/log'"
stop
check "SIGTERM: exit 0 (got $stop_rc)" "[ '$stop_rc' = 0 ]"

echo "ussd: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
