#!/usr/bin/env bash
# tests/integration/test_sec_start.sh -- what the daemon refuses at start,
# and core dumps off, from the outside:
#   - an empty kannel.secret stops it (exit 1, one line naming the key and
#     the fix, nothing listening) unless kannel.enabled = false, and then
#     /kannel/mo and /kannel/dlr answer 404;
#   - warnings when /ussd/at has no key (beyond loopback, or at all);
#   - config, key and password files that other users may write are
#     refused (daemon, -t, migrate, check-flows), world-readable ones warned;
#   - a running daemon and its forked workers are not dumpable (their
#     /proc/PID files belong to root while they run as another user), have
#     a core size limit of 0, and hold the key in a locked page left out of
#     core dumps (VmFlags "lo" and "dd").
# Uses the Redis tests/run started (REDIS_PORT), or its own.
# Prints "sec_start: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=sec_start
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-$PWD/build/remigate}
pid=
own_srv=0
if [ -z "${REDIS_PORT:-}" ]; then
    SRV_TMP=
    own_srv=1
fi
tmp=$(mktemp -d /tmp/remigate-sec-start.XXXXXX)
chmod 755 "$tmp"
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    [ $own_srv = 1 ] && srv_cleanup
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ $own_srv = 1 ]; then
    srv_tmpdir && srv_redis_start || { echo "sec_start: 0 passed, 1 failed"; exit 1; }
fi

cp -r config "$tmp/config"
conf=$tmp/config/remigate.conf
chmod 600 "$conf"
secret=sec-start-secret

# start [ARGS...]: the daemon on a free port; true once the port is known.
# The runner (RUN_AS) may be a command prefix such as setpriv.
start() {
    rm -f "$tmp/port" "$tmp/log"
    ${RUN_AS:-} "$bin" -c "$conf" --port 0 --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" "$@" 2>"$tmp/log" &
    pid=$!
    for _ in $(seq 200); do
        [ -s "$tmp/port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    port=$(cat "$tmp/port" 2>/dev/null)
    base=http://127.0.0.1:$port
    [ -n "$port" ]
}
stop() {
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
}
status() { curl -s -o "$tmp/body" -w '%{http_code}' --max-time 5 "$@"; }
# refused ARGS...: the daemon exits 1 at once with one line on stderr
refused() {
    rm -f "$tmp/port"
    timeout 10 "$bin" -c "$conf" --port 0 --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 1 ] && [ ! -e "$tmp/port" ] && [ "$(wc -l <"$tmp/err")" = 1 ]
}

# ---- kannel.secret ------------------------------------------------------
refused
check "empty kannel.secret: refused, exit 1, one line, nothing listens (rc $rc: $(cat "$tmp/err"))" "[ \$rc = 1 ] && [ ! -e '$tmp/port' ] && [ \$(wc -l <'$tmp/err') = 1 ]"
check "... the line names kannel.secret and both fixes" "grep -q 'kannel.secret is empty' '$tmp/err' && grep -q 'set kannel.secret' '$tmp/err' && grep -q 'kannel.enabled = false' '$tmp/err'"
"$bin" -c "$conf" -t >/dev/null 2>"$tmp/err"; rc=$?
check "... -t refuses it too (rc $rc)" "[ \$rc = 1 ] && grep -q 'kannel.secret is empty' '$tmp/err'"

if start --workers 1 --set kannel.enabled=false; then
    ok "kannel.enabled = false: starts without a secret"
    s=$(status "$base/kannel/mo?from=%2B8801711000001&text=1&smsc=sms&id=x1")
    check "... /kannel/mo answers 404 (got $s)" "[ '$s' = 404 ]"
    s=$(status "$base/kannel/dlr?id=1&status=1")
    check "... /kannel/dlr answers 404 (got $s)" "[ '$s' = 404 ]"
    s=$(status -d 'sessionId=s1&serviceCode=*247%23&phoneNumber=8801711000002&text=' "$base/ussd/at")
    check "... /ussd/at still works (got $s)" "[ '$s' = 200 ] && head -c4 '$tmp/body' | grep -q '^CON '"
    check "... the start warns that /ussd/at has no key, naming proxies" "grep -q 'ussd_at.key is empty.*reverse proxy' '$tmp/log'"
    stop
else
    bad "kannel.enabled = false: starts without a secret"
fi

if start --workers 1 --set "kannel.secret=$secret"; then
    s=$(status "$base/kannel/mo?from=%2B8801711000001&text=1&smsc=sms&id=x2")
    check "with a secret: /kannel/mo without the key is 403 (got $s)" "[ '$s' = 403 ]"
    stop
else
    bad "with a secret: the daemon starts"
fi

# ---- /ussd/at beyond loopback -------------------------------------------
if start --workers 1 --set "kannel.secret=$secret" --set listen.address=0.0.0.0; then
    check "0.0.0.0 without ussd_at.key: a warning naming both keys" "grep -q 'listen.address=0.0.0.0 reaches beyond loopback and ussd_at.key is empty' '$tmp/log'"
    stop
else
    bad "0.0.0.0: the daemon starts"
fi
if start --workers 1 --set "kannel.secret=$secret" --set listen.address=0.0.0.0 --set ussd_at.key=k1; then
    check "0.0.0.0 with ussd_at.key: no such warning" "! grep -q 'ussd_at.key is empty' '$tmp/log'"
    s=$(status -d 'sessionId=s2&serviceCode=*247%23&phoneNumber=8801711000003&text=' "$base/ussd/at")
    check "... and /ussd/at without the key is 403 (got $s)" "[ '$s' = 403 ]"
    stop
else
    bad "0.0.0.0 with a key: the daemon starts"
fi

# ---- file modes ---------------------------------------------------------
chmod 666 "$conf"
refused --set "kannel.secret=$secret"
check "a world-writable config: refused (rc $rc)" "[ \$rc = 1 ] && grep -qF '$conf: mode 0666 lets other users change it; refused (run: chmod go-w $conf)' '$tmp/err'"
chmod 620 "$conf"
refused --set "kannel.secret=$secret"
check "a group-writable config: refused (rc $rc)" "[ \$rc = 1 ] && grep -q 'mode 0620' '$tmp/err'"
"$bin" migrate -c "$conf" >/dev/null 2>"$tmp/err"; rc=$?
check "... by migrate too (rc $rc)" "[ \$rc = 1 ] && grep -q 'mode 0620' '$tmp/err'"
"$bin" check-flows -c "$conf" >/dev/null 2>"$tmp/err"; rc=$?
check "... and by check-flows (rc $rc)" "[ \$rc != 0 ] && grep -q 'mode 0620' '$tmp/err'"
chmod 644 "$conf"
if start --workers 1 --set "kannel.secret=$secret"; then
    check "a world-readable config, the secret on the command line only: no such warning" "! grep -q 'holds kannel.secret' '$tmp/log'"
    stop
else
    bad "a world-readable config: the daemon starts"
fi
cp "$conf" "$tmp/s.conf"
sed -i "s|^\( *secret = \)\"\";|\1\"$secret\";|" "$tmp/s.conf"
chmod 644 "$tmp/s.conf"
rm -f "$tmp/port"
"$bin" -c "$tmp/s.conf" -t >/dev/null 2>"$tmp/err"; rc=$?
check "a world-readable config holding kannel.secret: a warning (-t, rc $rc)" "[ \$rc = 0 ] && grep -q 'mode 0644 and holds kannel.secret: every user may read it' '$tmp/err'"
chmod 600 "$tmp/s.conf"
"$bin" -c "$tmp/s.conf" -t >/dev/null 2>"$tmp/err"; rc=$?
check "... none at 0600 (rc $rc)" "[ \$rc = 0 ] && ! grep -q 'holds kannel.secret' '$tmp/err'"
cp "$conf" "$tmp/r.conf"
sed -i '/^postgres = {/a\    read_dsn = "host=127.0.0.1 port=1 dbname=remigate password=pw-of-the-standby";' "$tmp/r.conf"
chmod 644 "$tmp/r.conf"
"$bin" -c "$tmp/r.conf" -t --set "kannel.secret=$secret" >/dev/null 2>"$tmp/err"; rc=$?
check "a world-readable config with a password in postgres.read_dsn: a warning (-t, rc $rc)" "[ \$rc = 0 ] && grep -q 'mode 0644 and holds postgres.read_dsn' '$tmp/err'"
chmod 600 "$conf"

"$bin" keygen "$tmp/key" >/dev/null
chmod 666 "$tmp/key"
refused --set "kannel.secret=$secret" --set "crypto.key_file=$tmp/key"
check "a world-writable key file: refused with path, mode and fix (rc $rc)" "grep -qF 'crypto.key_file: $tmp/key has mode 0666: other users may change it; refused (run: chmod 0600 $tmp/key)' '$tmp/err'"
chmod 660 "$tmp/key"
refused --set "kannel.secret=$secret" --set "crypto.key_file=$tmp/key"
check "a group-writable key file: refused (rc $rc)" "grep -q 'mode 0660' '$tmp/err'"
chmod 644 "$tmp/key"
if start --workers 1 --set "kannel.secret=$secret" --set "crypto.key_file=$tmp/key"; then
    check "a world-readable key file: a warning with path and fix" "grep -qF 'crypto.key_file: $tmp/key has mode 0644: every user may read it (run: chmod 0600 $tmp/key)' '$tmp/log'"
    stop
else
    bad "a world-readable key file: the daemon starts"
fi
# the CLI that reads the key: refused too; store/ checks the opened file
cp "$conf" "$tmp/k.conf"
sed -i "s|^\( *key_file = \)\"\";|\1\"$tmp/key\";|" "$tmp/k.conf"
chmod 666 "$tmp/key"
echo '{"a":1}' | "$bin" seal -c "$tmp/k.conf" >/dev/null 2>"$tmp/err"; rc=$?
check "remigate seal with a world-writable key: refused (rc $rc)" "[ \$rc != 0 ] && grep -q 'crypto.key_file: .* has mode 0666: other users may change it' '$tmp/err'"
chmod 644 "$tmp/key"
out=$(echo '{"a":1}' | "$bin" seal -c "$tmp/k.conf" 2>"$tmp/err" | "$bin" open -c "$tmp/k.conf" 2>/dev/null)
check "remigate seal with a world-readable key: works, with a warning" "[ '$out' = '{\"a\":1}' ] && grep -q 'every user may read it' '$tmp/err'"
chmod 600 "$tmp/key"
printf 'pw\n' >"$tmp/redis.pw"
chmod 606 "$tmp/redis.pw"
refused --set "kannel.secret=$secret" --set "redis.password_file=$tmp/redis.pw"
check "a world-writable redis.password_file: refused (rc $rc)" "grep -q 'redis.password_file: .* has mode 0606' '$tmp/err'"

# ---- core dumps -----------------------------------------------------------
# Run as another user than root, so that /proc/PID of a process that is
# not dumpable belongs to root while the process does not (proc(5)).
me=$(id -u)
RUN_AS=
if [ "$me" = 0 ]; then
    RUN_AS="setpriv --reuid=nobody --regid=nogroup --clear-groups"
    chown -R nobody:nogroup "$tmp"
fi
runuid=$(${RUN_AS:-} id -u)
# dumpable PID: 0 when /proc/PID belongs to root though the process runs
# as someone else, 1 when it belongs to the process's own user
dumpable() {
    local owner uid
    owner=$(stat -c %u "/proc/$1/status")
    uid=$(awk '/^Uid:/ {print $3}' "/proc/$1/status")
    if [ "$owner" = 0 ] && [ "$uid" != 0 ]; then echo 0; else echo 1; fi
}
core_limit() { awk '/^Max core file size/ {print $5 " " $6}' "/proc/$1/limits"; }
# keypage PID: small private read-write mappings left out of core dumps
# (VmFlags dd) and locked (lo) -- libsodium's sodium_malloc() pages; under
# AddressSanitizer mlock() does nothing, so only dd is asked for there
keypage() {
    awk -v san="${SAN:-0}" '
        /^[0-9a-f]+-[0-9a-f]+ / { perms = $2 }
        /^Size:/ { size = $2 }
        /^VmFlags:/ {
            if (perms == "rw-p" && size <= 16 && / dd/ && (san == 1 || / lo/))
                n++
        }
        END { print n + 0 }' "/proc/$1/smaps"
}

# the check itself: a plain process of the same user is dumpable
${RUN_AS:-} sleep 5 &
sp=$!
sleep 0.2
d0=$(dumpable $sp)
kill $sp 2>/dev/null; wait $sp 2>/dev/null
check "a plain process of uid $runuid is dumpable (the check can tell; got $d0)" "[ '$d0' = 1 ]"

(ulimit -c unlimited 2>/dev/null; exec ${RUN_AS:-} "$bin" -c "$conf" --port 0 --port-file "$tmp/port" \
    --redis-port "$REDIS_PORT" --workers 2 --set "kannel.secret=$secret" \
    --set "crypto.key_file=$tmp/key" 2>"$tmp/log") &
pid=$!
for _ in $(seq 200); do [ -s "$tmp/port" ] && break; sleep 0.05; done
kids=
for _ in $(seq 100); do
    kids=$(ps -o pid= --ppid "$pid" | tr -d ' ' | tr '\n' ' ')
    [ "$(echo $kids | wc -w)" -ge 2 ] && break
    sleep 0.05
done
base=http://127.0.0.1:$(cat "$tmp/port" 2>/dev/null)
for _ in $(seq 100); do [ "$(status "$base/healthz")" = 200 ] && break; sleep 0.05; done
check "daemon with 2 workers runs as uid $runuid (workers: $kids)" "[ \$(echo $kids | wc -w) = 2 ] && [ \"\$(awk '/^Uid:/ {print \$3}' /proc/$pid/status)\" = $runuid ]"
for p in $pid $kids; do
    check "pid $p: not dumpable" "[ \$(dumpable $p) = 0 ]"
    check "pid $p: core file size limit 0 (got $(core_limit $p))" "[ \"\$(core_limit $p)\" = '0 0' ]"
done
for p in $kids; do
    check "worker $p: the key is in a locked page left out of core dumps" "[ \$(keypage $p) -ge 1 ]"
done
stop
[ "$me" = 0 ] && chown -R root:root "$tmp"

echo "sec_start: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
