#!/usr/bin/env bash
# tests/integration/test_gw_http.sh -- the daemon's HTTP skeleton from the
# outside: start build/remigate on a free port (port 0 + port file) with a
# copy of the shipped config, then /healthz, /metrics, routing, limits,
# hostile requests, SIGHUP, and a prompt exit 0 on SIGTERM; once with one
# worker (in-process) and once with two (forked, SO_REUSEPORT).
# Prints "gw_http: N passed, N failed"; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=gw_http
. tests/lib/itest.sh
bin=${REMIGATE_BIN:-build/remigate}
tmp=$(mktemp -d /tmp/remigate-gw-http.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$bin" ]; then
    echo "not ok - $bin is missing (run make)"
    echo "gw_http: 0 passed, 1 failed"
    exit 1
fi

# A copy of the shipped config (with its flows and lists beside it).
cp -r config "$tmp/config"
cp -r web "$tmp/web" # the console serves it (config/../web); a reload re-reads it
conf=$tmp/config/remigate.conf
sed -i -e 's/^\( *port = \)8080;/\10;/' \
       -e 's/^\( *request_timeout_ms = \)2000;/\11000;/' \
       -e 's/^\( *secret = \)"";/\1"gw-http-secret";/' "$conf"
chmod 600 "$conf"

# start WORKERS: start the daemon, wait (with a deadline) for its port.
start() {
    rm -f "$tmp/port" "$tmp/log"
    "$bin" -c "$conf" --workers "$1" --port-file "$tmp/port" 2>"$tmp/log" &
    pid=$!
    for _ in $(seq 100); do
        [ -s "$tmp/port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    port=$(cat "$tmp/port" 2>/dev/null)
    base=http://127.0.0.1:$port
    [ -n "$port" ]
}

# status URL [curl args]: print the HTTP status (000 when no answer).
status() {
    local url=$1; shift
    curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' --max-time 5 "$@" "$url"
}

alive() { [ "$(status "$base/healthz")" = 200 ] || [ "$(status "$base/healthz")" = 503 ]; }

# stop: SIGTERM, wait at most 5 s, check exit 0 and the time taken.
stop() {
    local t0 t1 rc
    t0=$(date +%s%N)
    kill -TERM "$pid"
    # our child: it stays a zombie (state Z) until we wait for it
    for _ in $(seq 100); do
        case $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) in Z|'') break;; esac
        sleep 0.05
    done
    t1=$(date +%s%N)
    kill -9 "$pid" 2>/dev/null
    wait "$pid"; rc=$?
    pid=
    stop_rc=$rc
    stop_ms=$(( (t1 - t0) / 1000000 ))
}

suite() {
    local workers=$1 w="workers=$1"
    if ! start "$workers"; then
        bad "$w: daemon started and wrote its port"
        return
    fi
    ok "$w: daemon started and wrote its port ($port)"
    check "$w: port is logged" "grep -q 'listening .*port=$port workers=$workers' '$tmp/log'"

    s=$(status "$base/healthz")
    check "$w: /healthz answers 200 or 503 (got $s)" "[ '$s' = 200 ] || [ '$s' = 503 ]"
    check "$w: /healthz is JSON" "grep -qi '^content-type: application/json' '$tmp/headers' && grep -q '^{.*}$' '$tmp/body'"
    check "$w: replies carry X-Request-Id" "grep -qi '^x-request-id: ' '$tmp/headers'"
    s=$(status "$base/healthz" -I)
    check "$w: HEAD /healthz (got $s)" "[ '$s' = 200 ] || [ '$s' = 503 ]"

    s=$(status "$base/metrics")
    check "$w: /metrics answers 200 (got $s)" "[ '$s' = 200 ]"
    check "$w: /metrics is Prometheus text" "grep -qi '^content-type: text/plain; version=0.0.4' '$tmp/headers'"
    check "$w: /metrics has remigate_requests_total" "grep -q '^remigate_requests_total{endpoint=\"healthz\",status=\"' '$tmp/body'"
    for m in remigate_step_seconds remigate_sessions_total remigate_redis_errors_total remigate_duplicates_total; do
        check "$w: /metrics declares $m" "grep -q '^# TYPE $m ' '$tmp/body'"
    done
    check "$w: every metric name starts with remigate_" "! grep -v -e '^#' -e '^remigate_' '$tmp/body' | grep -q ."
    check "$w: sessions_total has its events" "grep -q '^remigate_sessions_total{event=\"abandoned\"} 0' '$tmp/body'"

    s=$(status "$base/nope")
    check "$w: unknown path is 404 (got $s)" "[ '$s' = 404 ]"
    s=$(status "$base/healthz/")
    check "$w: /healthz/ is 404 (got $s)" "[ '$s' = 404 ]"
    s=$(status "$base/healthz" -X POST -d x=1)
    check "$w: POST /healthz is 405 with Allow (got $s)" "[ '$s' = 405 ] && grep -qi '^allow: GET, HEAD' '$tmp/headers'"
    s=$(status "$base/ussd/at")
    check "$w: GET /ussd/at is 405 (got $s)" "[ '$s' = 405 ]"
    s=$(status "$base/healthz" -X PUT)
    check "$w: PUT is refused (got $s)" "[ '$s' -ge 400 ] && [ '$s' -lt 600 ]"
    s=$(status "$base/kannel/mo?from=%2B8801711000001&text=*247%23")
    check "$w: /kannel/mo is routed (got $s)" "[ '$s' != 404 ] && [ '$s' != 000 ]"

    # hostile requests
    big=$(head -c 20000 /dev/zero | tr '\0' a)
    s=$(status "$base/healthz" -H "X-Big: $big")
    check "$w: 20 kB header is a 4xx (got $s)" "[ '$s' -ge 400 ] && [ '$s' -lt 500 ]"
    s=$(status "$base/healthz?$big")
    check "$w: 20 kB URL is a 4xx (got $s)" "[ '$s' -ge 400 ] && [ '$s' -lt 500 ]"
    s=$(status "$base/ussd/at" -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "text=$big")
    check "$w: 20 kB body is 413 (got $s)" "[ '$s' = 413 ]"
    printf 'GARBAGE\r\n\r\n' | timeout 3 bash -c "cat >/dev/tcp/127.0.0.1/$port" 2>/dev/null
    printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ' | timeout 3 bash -c "cat >/dev/tcp/127.0.0.1/$port" 2>/dev/null
    printf 'GET /he\0lthz HTTP/1.1\r\n\r\n' | timeout 3 bash -c "cat >/dev/tcp/127.0.0.1/$port" 2>/dev/null
    check "$w: garbage, a NUL and a half request leave it running" "alive"

    # many clients at once, each answered
    for i in $(seq 50); do curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 "$base/metrics" & done >"$tmp/many"
    wait $(jobs -p | grep -v "^$pid\$") 2>/dev/null
    check "$w: 50 parallel requests all answered 200 (got $(sort "$tmp/many" | uniq -c | tr -s ' \n' ' '))" "[ \$(grep -c '^200$' '$tmp/many') = 50 ]"

    kill -HUP "$pid"
    for _ in $(seq 40); do grep -q 'reloaded' "$tmp/log" && break; sleep 0.05; done
    check "$w: SIGHUP runs the reload" "grep -q 'reloaded' '$tmp/log' && alive"

    # (the /kannel/mo request above is an SMS whose reply cannot go out: no
# Kannel here)
check "$w: no assert or libevent error in the log" "! grep -v 'sms not sent' '$tmp/log' | grep -q -e 'assert:' -e 'libevent:' -e ' error '"

    stop
    check "$w: SIGTERM exits 0 (got $stop_rc)" "[ '$stop_rc' = 0 ]"
    check "$w: ... within 3 s (took $stop_ms ms)" "[ '$stop_ms' -lt 3000 ]"
    check "$w: the port file is removed" "[ ! -e '$tmp/port' ]"
    s=$(status "$base/healthz")
    check "$w: nothing listens any more" "[ '$s' = 000 ]"
}

suite 1
suite 2

# Keep-alive: a connection that has carried a request waits
# listen.keepalive_ms for the next one to begin, however short
# request_timeout_ms (evhttp's idle read timeout) and header_timeout_ms are;
# once its first byte came, the rest has header_timeout_ms.  A new
# connection keeps the short deadline.  Before listen.keepalive_ms, both
# closed an idle keep-alive connection, and smsbox lost the request it sent
# on it just then.
"$bin" -c "$conf" --workers 1 --port-file "$tmp/port" \
    --set listen.header_timeout_ms=800 --set limits.request_timeout_ms=500 \
    --set listen.keepalive_ms=3000 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port" 2>/dev/null)
# ka MODE: one client on one connection; prints what it saw.
ka() {
    python3 - "$port" "$1" <<'PY'
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"

def answer(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            return "closed"
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(body) < n:
        d = s.recv(4096)
        if not d:
            return "closed"
        body += d
    return head.split(b"\r\n")[0].decode().split(" ")[1]

def closed_after(s, t0, limit):
    s.settimeout(limit)
    try:
        while s.recv(4096):
            pass
        return "%.1f" % (time.monotonic() - t0)
    except (socket.timeout, ConnectionResetError):
        return "open"

s = socket.create_connection(("127.0.0.1", port))
s.settimeout(10)
t0 = time.monotonic()
if mode == "fresh":      # a new connection that sends nothing
    print(closed_after(s, t0, 10))
    sys.exit()
s.sendall(req)
first = answer(s)
if mode == "idle":       # idle 2 s (> 500 ms and 800 ms), then a request
    time.sleep(2.0)
    try:
        s.sendall(req)
        print(first, answer(s))
    except OSError:
        print(first, "closed")
elif mode == "drip":     # idle 1.5 s, then a request a byte per 100 ms
    time.sleep(1.5)
    t0 = time.monotonic()
    try:
        for b in req:
            s.sendall(bytes([b]))
            time.sleep(0.1)
            s.setblocking(False)
            try:
                if s.recv(4096) == b"":
                    break
            except BlockingIOError:
                pass
            s.setblocking(True)
        print(first, "%.1f" % (time.monotonic() - t0))
    except OSError:
        print(first, "%.1f" % (time.monotonic() - t0))
elif mode == "expire":   # idle until the daemon closes it
    print(first, closed_after(s, t0, 10))
PY
}
out=$(ka idle)
check "keep-alive: the next request after 2 s idle is answered (got $out)" "[ '$out' = '200 200' ]"
out=$(ka drip)
set -- $out
check "keep-alive: a next request dripped after 1.5 s idle is cut at header_timeout_ms (got $out)" "[ '${1:-}' = 200 ] && awk -v t='${2:-9}' 'BEGIN { exit !(t >= 0.6 && t <= 2.0) }'"
out=$(ka expire)
set -- $out
check "keep-alive: an idle one is closed at keepalive_ms, 3 s (got $out)" "[ '${1:-}' = 200 ] && awk -v t='${2:-0}' 'BEGIN { exit !(t >= 2.8 && t <= 4.5) }'"
out=$(ka fresh)
check "keep-alive: a new connection sending nothing is closed within header_timeout_ms (got $out s)" "awk -v t='$out' 'BEGIN { exit !(t >= 0.4 && t <= 1.5) }'"
stop
check "keep-alive: SIGTERM exits 0 (got $stop_rc)" "[ '$stop_rc' = 0 ]"
check "keep-alive: no assert or libevent error in the log" "! grep -q -e 'assert:' -e 'libevent:' -e ' error ' '$tmp/log'"

# A bad config: clear error with its line, exit non-zero, nothing started.
printf 'listen = {\n  prot = 1;\n};\n' >"$tmp/bad.conf"
out=$("$bin" -c "$tmp/bad.conf" 2>&1); rc=$?
want="$tmp/bad.conf:2: unknown setting 'listen.prot'"
check "bad config: exit 1 with file:line (got $rc: $out)" '[ "$rc" = 1 ] && [ "$out" = "$want" ]'
out=$("$bin" -c "$conf" --port 70000 2>&1); rc=$?
check "bad --port: refused (got $rc)" '[ "$rc" = 1 ] && [ "$out" = "remigate: command line: '"'"'listen.port'"'"' must be between 0 and 65535" ]' 
out=$("$bin" --version); check "--version prints $out" "[ '$out' = 'remigate 0.1.0' ]"
"$bin" migrate -c "$conf" 2>"$tmp/err"; rc=$?
check "migrate without a dsn: exit 1, says so" "[ $rc = 1 ] && grep -q 'remigate: migrate: postgres.dsn is empty' '$tmp/err'"
"$bin" keygen "$tmp/key" >/dev/null; rc=$?
check "keygen: a 0600 key file (exit $rc)" "[ $rc = 0 ] && [ \"\$(stat -c %a '$tmp/key')\" = 600 ]"
"$bin" keygen "$tmp/key" 2>/dev/null; rc=$?
check "keygen: refuses to overwrite (exit $rc)" "[ $rc = 1 ]"

echo "gw_http: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
