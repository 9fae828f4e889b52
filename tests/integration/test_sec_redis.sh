#!/usr/bin/env bash
# tests/integration/test_sec_redis.sh -- the daemon against a real
# redis-server that wants a password (requirepass, set in a 0600 config
# file, never on a command line):
#   - redis.password_file (0600): /healthz 200, a dial works, the log says
#     "connected ... auth=yes"; the password is on no command line (ps);
#   - no password, or a wrong one: /healthz 503, callers hear "busy", and
#     one clear log line naming redis.password (not one per retry);
#   - Redis killed, kept down for 7 s, then started again on the same
#     port: the daemon is back (AUTH sent again) within 2 s -- a generous
#     bound over the 1 s backoff cap; the figure itself is measured by
#     bench/redis-reconnect.
# Starts its own Redis.  Prints "sec_redis: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=sec_redis
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-$PWD/build/remigate}
pid=
rpid=
tmp=$(mktemp -d /tmp/remigate-sec-redis.XXXXXX)
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    [ -n "$rpid" ] && kill -9 "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

password=pw-$RANDOM$RANDOM-$RANDOM
port=$(srv_free_port) || { echo "sec_redis: 0 passed, 1 failed"; exit 1; }
mkdir -p "$tmp/redis"
chmod 700 "$tmp/redis"
cat >"$tmp/redis/redis.conf" <<EOF
port $port
bind 127.0.0.1
dir $tmp/redis
save ""
appendonly no
requirepass $password
logfile $tmp/redis/redis.log
EOF
chmod 600 "$tmp/redis/redis.conf"
rcli() { REDISCLI_AUTH=$password redis-cli -p "$port" --no-auth-warning "$@"; }
redis_up() {
    redis-server "$tmp/redis/redis.conf" </dev/null >/dev/null 2>&1 &
    rpid=$!
    for _ in $(seq 200); do
        [ "$(rcli ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.05
    done
    return 1
}
redis_up || { echo "not ok - redis-server with requirepass started"; echo "sec_redis: 0 passed, 1 failed"; exit 1; }
check "redis wants a password (NOAUTH without one)" "redis-cli -p $port ping 2>&1 | grep -q NOAUTH"

cp -r config "$tmp/config"
conf=$tmp/config/remigate.conf
chmod 600 "$conf"
printf '%s\n' "$password" >"$tmp/redis.pw"
chmod 600 "$tmp/redis.pw"

start() {
    rm -f "$tmp/port" "$tmp/log"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
        --redis-port "$port" --set kannel.enabled=false \
        --set limits.request_timeout_ms=1500 --set redis.timeout_ms=300 \
        "$@" 2>"$tmp/log" &
    pid=$!
    for _ in $(seq 200); do
        [ -s "$tmp/port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    base=http://127.0.0.1:$(cat "$tmp/port" 2>/dev/null)
    [ -s "$tmp/port" ]
}
stop() {
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
}
health() { curl -s -o "$tmp/hbody" -w '%{http_code}' --max-time 3 "$base/healthz"; }
healthy() { [ "$(health)" = 200 ]; }
dial() {
    curl -s -o "$tmp/body" -w '%{http_code}' --max-time 5 \
        -d "sessionId=$1&serviceCode=*247%23&phoneNumber=$2&text=" "$base/ussd/at"
}
wait_healthy() {
    local n=$(($1 * 20))
    while ! healthy; do
        n=$((n - 1))
        [ $n -gt 0 ] || return 1
        sleep 0.05
    done
}

# ---- the right password, from a file ----------------------------------------
if start --set "redis.password_file=$tmp/redis.pw"; then
    wait_healthy 5
    check "password file: /healthz 200" "healthy"
    s=$(dial a1 8801711100001)
    check "... a dial is answered CON (got $s)" "[ '$s' = 200 ] && head -c4 '$tmp/body' | grep -q '^CON '"
    check "... the session is in Redis" "[ \"\$(rcli EXISTS remigate:s:ussd:8801711100001)\" = 1 ]"
    check "... the log says connected with auth" "grep -q 'redis: connected .*auth=yes' '$tmp/log'"
    ps -eo args >"$tmp/ps" # before grep runs: its own argv holds the password
    check "... the password is on no command line" "! grep -qF -- \"\$password\" '$tmp/ps'"
    check "... nor in the log" "! grep -qF -- '$password' '$tmp/log'"

    # ---- Redis away for 7 s, then back on the same port ---------------------
    kill -9 "$rpid"
    wait "$rpid" 2>/dev/null
    rpid=
    for _ in $(seq 60); do healthy || break; sleep 0.05; done
    check "redis killed: /healthz 503" "[ \"\$(health)\" = 503 ]"
    s=$(dial a2 8801711100002)
    check "... a caller hears a polite busy (got $s)" "[ '$s' = 200 ] && head -c4 '$tmp/body' | grep -q '^END '"
    sleep 7 # long enough for any backoff to reach its cap
    redis_up
    t0=$(now_ms)
    wait_healthy 10
    took=$(($(now_ms) - t0))
    check "redis back: the daemon uses it again within 2 s (took $took ms)" "[ $took -le 2000 ]"
    s=$(dial a3 8801711100003)
    check "... with AUTH sent again: a dial is answered CON (got $s)" "[ '$s' = 200 ] && head -c4 '$tmp/body' | grep -q '^CON '"
    check "... the outage is one line, not one per retry" "[ \$(grep -c 'redis: down' '$tmp/log') = 1 ]"
    stop
else
    bad "password file: the daemon starts"
fi

# ---- no password -------------------------------------------------------------
if start; then
    sleep 1.5
    check "no password: /healthz 503" "[ \"\$(health)\" = 503 ]"
    s=$(dial b1 8801711100004)
    check "... a caller hears a polite busy (got $s)" "[ '$s' = 200 ] && head -c4 '$tmp/body' | grep -q '^END '"
    check "... one log line names redis.password" "[ \$(grep -c 'redis wants a password: set redis.password' '$tmp/log') = 1 ]"
    stop
else
    bad "no password: the daemon starts"
fi

# ---- a wrong password ----------------------------------------------------------
if start --set redis.password=not-it; then
    sleep 1.5
    check "wrong password: /healthz 503" "[ \"\$(health)\" = 503 ]"
    check "... one error line: refused the password, with Redis's reason" "[ \$(grep -c 'error .*redis refused the password of redis.password.*WRONGPASS' '$tmp/log') = 1 ]"
    # the password is then fixed in Redis (as an operator would)
    rcli CONFIG SET requirepass not-it >/dev/null
    password=not-it
    wait_healthy 3
    check "... once Redis takes it, the daemon connects by itself" "healthy && grep -q 'redis: connected' '$tmp/log'"
    stop
else
    bad "wrong password: the daemon starts"
fi

echo "sec_redis: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
