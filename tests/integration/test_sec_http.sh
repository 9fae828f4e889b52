#!/usr/bin/env bash
# tests/integration/test_sec_http.sh -- what a hostile or careless client
# can do to the daemon's HTTP side, against a real Redis:
#
#   - an overlong answer (a 250-byte name) is re-asked in the caller's
#     language, the dialogue goes on, and nothing reads freed memory (run
#     it with SAN=1: the sanitizer's report ends the daemon);
#   - DELETE, PUT and PATCH get 405 with Allow;
#   - request smuggling: two different Content-Length headers, or
#     Transfer-Encoding with Content-Length, or a coding other than
#     chunked, get 400 and the connection is closed, so the rest is never
#     served as a second request; identical ones are one;
#   - refused requests are logged with their source address, at most 20
#     lines a second; phone numbers in log lines are masked at info level;
#   - 500 connections dripping a request head a byte a second, with 256
#     descriptors: each is closed at listen.header_timeout_ms (or to make
#     room), while a caller registers and /healthz answers; the daemon
#     neither spins nor floods its log.
#
# It starts its own Redis.  Prints "sec_http: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=sec_http
. tests/lib/itest.sh
# the suite's PostgreSQL is not ours to stop (srv_cleanup stops what
# these name); this script starts only its own Redis
unset PG_PID PG_DATA PG_PORT PG_DSN
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pid=
SRV_TMP=
srv_tmpdir || exit 1
tmp=$SRV_TMP
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    srv_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

srv_redis_start || { echo "sec_http: 0 passed, 1 failed"; exit 1; }

cp -r config "$tmp/config"
conf=$tmp/config/remigate.conf
secret=kannel-secret-for-tests

# start [ARGS...]: one worker on a free port, ready when Redis answers.
start() {
    rm -f "$tmp/port"
    : >"$tmp/log"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" --log-level info \
        --set "kannel.secret=$secret" "$@" 2>>"$tmp/log" &
    pid=$!
    for _ in $(seq 200); do
        [ -s "$tmp/port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    port=$(cat "$tmp/port" 2>/dev/null)
    base=http://127.0.0.1:$port
    [ -n "$port" ] || return 1
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
    curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' --max-time 10 \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-urlencode "sessionId=$1" --data-urlencode "serviceCode=*247#" \
        --data-urlencode "phoneNumber=$2" --data-urlencode "text=$3" \
        "$base/ussd/at"
}
body() { cat "$tmp/body"; }
hdr() { grep -i "^$1: " "$tmp/headers" | cut -d' ' -f2- | tr -d '\r'; }

# raw REQUEST: send bytes as they are on one connection, in one write, and
# print all that comes back until the daemon closes it; "TIMEOUT" ends the
# output when it did not close it within 3 s.
raw() {
    printf '%b' "$1" >"$tmp/raw"
    timeout 4 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        cat "$2" >&3
        timeout 3 cat <&3 || echo TIMEOUT' _ "$port" "$tmp/raw" 2>/dev/null
}

if ! start; then
    bad "daemon started"
    echo "sec_http: $pass passed, $fail failed"
    exit 1
fi
ok "daemon started on port $port"

# ---- an overlong answer is re-asked ------------------------------------
# Bangla (1), Register (1), consent (1), then a name of 250 bytes.
long=$(printf 'রহিমা%.0s' $(seq 17))      # 17 x 15 bytes = 255 bytes
phone=8801712345601
at bn-1 $phone "" >/dev/null
at bn-1 $phone "1" >/dev/null
at bn-1 $phone "1*1" >/dev/null
s=$(at bn-1 $phone "1*1*1")
check "bn: the name question (got $s)" "[ '$s' = 200 ] && body | grep -q '^CON '"
name_q=$(body | tail -c +5)
s=$(at bn-1 $phone "1*1*1*$long")
check "bn: a 255-byte name is re-asked, not refused (got $s)" "[ '$s' = 200 ] && body | grep -q '^CON '"
check "bn: ... with the reason in Bangla" "body | grep -q 'অনেক বড় হয়েছে।'"
check "bn: ... and the same question" "body | grep -qF \"\$(echo \"\$name_q\" | head -1)\""
s=$(at bn-1 $phone "1*1*1*$long*রহিমা বেগম")
check "bn: a name of normal length then goes on (got $s)" "[ '$s' = 200 ] && body | grep -q '^CON ' && ! body | grep -q 'অনেক বড়'"

# English (2), Register (1), consent (1), a 250-byte name.
long_en=$(head -c 250 /dev/zero | tr '\0' a)
phone=8801712345602
at en-1 $phone "" >/dev/null
at en-1 $phone "2" >/dev/null
at en-1 $phone "2*1" >/dev/null
at en-1 $phone "2*1*1" >/dev/null
s=$(at en-1 $phone "2*1*1*$long_en")
check "en: a 250-byte name is re-asked in English (got $s)" "[ '$s' = 200 ] && body | grep -q '^CON Too long. Please write less.'"
check "en: ... with the name question under it" "body | grep -q 'Please write your full name.'"
# the same over Kannel's SMS: a 300-byte text gets a re-ask by SMS, never 413
s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
    "$base/kannel/mo?from=%2B8801712345603&to=16247&text=$(head -c 300 /dev/zero | tr '\0' b)&smsc=sms&id=m-long-1&key=$secret")
check "sms: a 300-byte text is no 413 (got $s)" "[ '$s' = 200 ]"
check "no sanitizer report, daemon alive" "! grep -q -e 'AddressSanitizer' -e 'runtime error' -e 'assert:' '$tmp/log' && kill -0 $pid"

# ---- wrong methods -------------------------------------------------------
for m in DELETE PUT PATCH; do
    s=$(curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' --max-time 5 -X $m "$base/ussd/at")
    check "$m /ussd/at is 405 with Allow: POST (got $s, Allow: $(hdr allow))" "[ '$s' = 405 ] && [ \"\$(hdr allow)\" = POST ]"
done
s=$(curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' --max-time 5 -X DELETE "$base/healthz")
check "DELETE /healthz is 405 with Allow: GET, HEAD (got $s)" "[ '$s' = 405 ] && [ \"\$(hdr allow)\" = 'GET, HEAD' ]"

# ---- request smuggling ---------------------------------------------------
# A form body of 5 bytes by the first Content-Length, 40 by the second; what
# follows is a whole second request.  evhttp reads the first header only:
# without the check the daemon answered the first 5 bytes and then served
# the rest as GET /healthz.
form='sessionId=x1&phoneNumber=8801712345604&text='
second='GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
out=$(raw "POST /ussd/at HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nx=1&y$second")
check "two Content-Lengths (5, 40): one answer, 400" "[ \"\$(echo \"\$out\" | grep -c '^HTTP/1')\" = 1 ] && echo \"\$out\" | head -1 | grep -q '^HTTP/1.1 400'"
check "... saying why, and the connection is closed" "echo \"\$out\" | grep -q 'conflicting Content-Length' && ! echo \"\$out\" | grep -q TIMEOUT"
# the same written by printf straight to the socket: it goes out in several
# writes, so the second request's bytes arrive while the daemon answers and
# closes.  Closing on unread bytes makes the kernel reset the connection and
# drop the answer; the daemon reads them off instead (without that, about 3
# in 10 clients got their 400)
lingered=0
for i in $(seq 10); do
    out=$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "%b" "$2" >&3
        timeout 3 cat <&3 || echo TIMEOUT' _ "$port" "POST /ussd/at HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nx=1&y$second" 2>/dev/null)
    echo "$out" | head -1 | grep -q '^HTTP/1.1 400' && ! echo "$out" | grep -q TIMEOUT &&
        lingered=$((lingered + 1))
done
check "bytes behind a refused request do not destroy its 400 ($lingered of 10 got it)" "[ $lingered = 10 ]"
# the other way round: the first length takes the whole rest as the body
n=$(printf '%b' "x=1&y$second" | wc -c)
out=$(raw "POST /ussd/at HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: $n\r\nContent-Length: 5\r\n\r\nx=1&y$second")
check "two Content-Lengths ($n, 5): one answer, 400, closed" "[ \"\$(echo \"\$out\" | grep -c '^HTTP/1')\" = 1 ] && echo \"\$out\" | head -1 | grep -q '^HTTP/1.1 400' && ! echo \"\$out\" | grep -q TIMEOUT"
out=$(raw "POST /ussd/at HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nx=1&y\r\n0\r\n\r\n$second")
# (evhttp refuses this one itself, before the daemon's own check)
check "Transfer-Encoding with Content-Length: one answer, 400, closed" "[ \"\$(echo \"\$out\" | grep -c '^HTTP/1')\" = 1 ] && echo \"\$out\" | head -1 | grep -q '^HTTP/1.1 400' && ! echo \"\$out\" | grep -q TIMEOUT"
out=$(raw "POST /ussd/at HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nx=1&y\r\n0\r\n\r\n$second")
check "Transfer-Encoding other than chunked: 400, closed" "[ \"\$(echo \"\$out\" | grep -c '^HTTP/1')\" = 1 ] && echo \"\$out\" | head -1 | grep -q '^HTTP/1.1 400' && ! echo \"\$out\" | grep -q TIMEOUT"
n=${#form}
n=$((n + 5))
out=$(raw "POST /ussd/at HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: $n\r\nContent-Length: $n\r\n\r\n${form}hello")
check "two identical Content-Lengths are one: 200 CON" "echo \"\$out\" | head -1 | grep -q '^HTTP/1.1 200' && echo \"\$out\" | grep -q '^CON '"
out=$(raw "POST /ussd/at HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n$(printf '%x' $n)\r\n${form}hello\r\n0\r\n\r\n")
check "chunked alone is read: 200 CON" "echo \"\$out\" | head -1 | grep -q '^HTTP/1.1 200' && echo \"\$out\" | grep -q '^CON '"
check "refusals are logged with their reason and source address" "grep -q 'refused status=400 why=\"conflicting Content-Length\" path=\"/ussd/at\" peer=127.0.0.1 ' '$tmp/log'"

# ---- the log -------------------------------------------------------------
# 300 refused requests at once: at most 20 lines a second, then one line
# that says how many were held back
sleep 1
curl -s -o /dev/null $(for i in $(seq 300); do printf '%s/nope%d ' "$base" "$i"; done) >/dev/null
sleep 1.1
curl -s -o /dev/null "$base/nope-after"
n404=$(grep -c 'refused status=404' "$tmp/log")
check "300 refusals make at most 45 lines (got $n404)" "[ $n404 -le 45 ] && [ $n404 -ge 20 ]"
check "... and a later line says how many were held back" "grep 'refused status=404 .*path=\"/nope-after\"' '$tmp/log' | grep -qE 'suppressed=[1-9][0-9]*'"
# phone numbers: masked at info level, in every line
check "the SMS reply's number is masked in the log" "grep -q 'to=88017\\*\\*\\*\\*\\*\\*03' '$tmp/log'"
check "no test phone number in clear in the log" "! grep -qE '88017123456(0[1-5])' '$tmp/log'"

stop
check "SIGTERM exits 0 (got $stop_rc)" "[ '$stop_rc' = 0 ]"
check "no sanitizer report or assert in the log" "! grep -q -e 'AddressSanitizer' -e 'runtime error' -e 'assert:' '$tmp/log'"

# ---- slow clients --------------------------------------------------------
# 500 connections that send a request head one byte a second, against a
# daemon with 256 descriptors (so at most 192 connections), while a caller
# registers over /ussd/at and /healthz is asked now and then.  The drips
# are closed by the daemon (their deadline, listen.header_timeout_ms =
# 2000, or to make room); the caller and /healthz are answered.
# drip N SECONDS: N connections, one byte a second each, for at most
# SECONDS; prints "closed MAX_LIFETIME_S STILL_OPEN" at the end.
drip() {
    local n=$1 until=$((SECONDS + $2)) i fd req='GET /healthz HTTP/1.1\r\nHost: x\r\nX-Drip: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n'
    local -a fds t0 pos
    local closed=0 maxlife=0 open=0 life
    trap '' PIPE
    for i in $(seq "$n"); do
        exec {fd}<>"/dev/tcp/127.0.0.1/$port" || continue
        fds[i]=$fd t0[i]=$SECONDS pos[i]=0
        open=$((open + 1))
    done
    req=$(printf '%b' "$req")
    while [ $open -gt 0 ] && [ $SECONDS -lt $until ]; do
        for i in "${!fds[@]}"; do
            fd=${fds[i]}
            if ! printf '%s' "${req:${pos[i]}:1}" >&"$fd" 2>/dev/null; then
                life=$((SECONDS - t0[i]))
                [ $life -gt $maxlife ] && maxlife=$life
                exec {fd}>&-
                unset "fds[i]"
                closed=$((closed + 1)) open=$((open - 1))
                continue
            fi
            pos[i]=$(( (pos[i] + 1) % ${#req} ))
        done
        sleep 1
    done
    echo "$closed $maxlife $open"
}

# cpu PID: its CPU time so far, in clock ticks
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

: >"$tmp/log"
rm -f "$tmp/port"
(ulimit -n 256; exec "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
    --redis-port "$REDIS_PORT" --log-level info --set "kannel.secret=$secret" \
    --set listen.header_timeout_ms=2000 2>>"$tmp/log") &
pid=$!
for _ in $(seq 200); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port" 2>/dev/null)
base=http://127.0.0.1:$port
for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] && break
    sleep 0.05
done
check "drips: the daemon says it fits max_connections to 256 descriptors" "grep -q 'max_connections lowered .*max_connections=192 nofile=256' '$tmp/log'"
ticks0=$(cpu $pid) t0=$SECONDS
drip 500 25 >"$tmp/drip" &
dpid=$!
sleep 2
answers=(1 1 1 "রহিমা বেগম" 2 ১৯৯০ "চট্ট" ১২৩৪৫৬৭৮৯০ 98 1)
phone=8801712345605 text= allok=1 health=0 health_ok=0
at drip-1 $phone "" >/dev/null || allok=0
for a in "${answers[@]}"; do
    text=${text:+$text*}$a
    s=$(at drip-1 $phone "$text")
    [ "$s" = 200 ] || { allok=0; echo "# step '$a': $s"; }
    health=$((health + 1))
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$base/healthz")" = 200 ] &&
        health_ok=$((health_ok + 1))
    head -c4 "$tmp/body" | grep -q '^CON ' || break
done
t_caller=$((SECONDS - t0))
check "drips: every step of the caller answered 200 ($t_caller s)" "[ $allok = 1 ]"
check "drips: the caller's registration ends with END and a reference" "body | grep -q '^END ' && body | grep -qE '[0-9A-Z]{10}'"
check "drips: /healthz answered 200 every time ($health_ok of $health)" "[ $health_ok = $health ]"
wait $dpid
read -r closed maxlife left <"$tmp/drip"
wall=$((SECONDS - t0))
ticks=$(( $(cpu $pid) - ticks0 ))
hz=$(getconf CLK_TCK)
echo "# drips: $closed closed by the daemon, longest lived $maxlife s, $left still open; daemon CPU $ticks ticks in $wall s"
check "drips: all 500 closed by the daemon ($closed, $left open)" "[ '$closed' = 500 ] && [ '$left' = 0 ]"
check "drips: none lived much past the deadline and the write that notices ($maxlife s <= 8)" "[ '$maxlife' -le 8 ]"
check "drips: the daemon did not spin ($ticks ticks in $wall s)" "[ $ticks -lt \$(( wall * hz / 2 )) ]"
size=$(stat -c %s "$tmp/log")
check "drips: the log stays small ($size bytes)" "[ $size -lt 100000 ]"
curl -s "$base/metrics" >"$tmp/metrics"
check "drips: closed for the deadline or to make room, counted" "grep -qE '^remigate_connections_closed_total\\{reason=\"deadline\"\\} [1-9]' '$tmp/metrics' && grep -qE '^remigate_connections_closed_total\\{reason=\"limit\"\\} [1-9]' '$tmp/metrics'"
stop
check "drips: SIGTERM exits 0 (got $stop_rc)" "[ '$stop_rc' = 0 ]"
check "no sanitizer report or assert in the log" "! grep -q -e 'AddressSanitizer' -e 'runtime error' -e 'assert:' '$tmp/log'"

echo "sec_http: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
