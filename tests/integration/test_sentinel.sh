#!/usr/bin/env bash
# tests/integration/test_sentinel.sh -- the daemon finds its Redis through
# Sentinel (redis.sentinels, redis.master_name) and follows failovers.
# Its own topology from tests/lib/servers.sh: a primary, a replica and
# three sentinels (down-after-milliseconds 1000), in a temp dir of its own.
#   - a bad redis.sentinels is refused at start, naming the key;
#   - the daemon's redis.port points at the replica and the first sentinel
#     listed is dead: it still finds the primary (ROLE checked) and a dial
#     is stored there;
#   - a manual failover (SENTINEL FAILOVER: the old primary is demoted and
#     stays up): the daemon connects to the new primary within 2 s of the
#     sentinels' +switch-master (both logs' timestamps), and a dial started
#     before it goes on after it;
#   - the new primary killed -9: promoted back, followed within 2 s;
#   - without sentinels, a primary made a replica under the daemon: a
#     write answered -READONLY is "busy", the connection is dropped, and
#     once it is a primary again the daemon uses it within 2 s;
#   - redis.wait_ms = 1500: a dial made while Redis is down waits for it
#     (answered CON once it is back 0.5 s later), or hears busy after the
#     wait; on SIGTERM the steps waiting are answered within the drain.
# Prints "sentinel: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=sentinel
# shellcheck source=tests/lib/itest.sh
. tests/lib/itest.sh
# a topology of its own: not the Redis tests/run started
unset SRV_TMP REDIS_PORT REDIS_PID REDIS_DIR REDIS_URL PG_PID
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-$PWD/build/remigate}
pid=''
cleanup()
{
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    srv_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! srv_tmpdir || ! srv_redis_start || ! srv_sentinel_start; then
    bad "primary, replica and three sentinels started"
    finish
fi
ok "primary :$REDIS_PORT, replica :$REDIS_REPLICA_PORT, sentinels$SENTINEL_PORTS"
tmp=$SRV_TMP
log=$tmp/daemon.log
cp -r config "$tmp/config"
conf=$tmp/config/remigate.conf
chmod 600 "$conf"

start()
{
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
        --set kannel.enabled=false --set limits.request_timeout_ms=2000 \
        --set redis.timeout_ms=300 "$@" 2>>"$log" &
    pid=$!
    wait_until 10 test -s "$tmp/port" || return 1
    base=http://127.0.0.1:$(cat "$tmp/port")
}
stop()
{
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=''
}
healthy() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$base/healthz")" = 200 ]; }
# step SESSION MSISDN TEXT: one USSD step; the reply in $tmp/body
step()
{
    [ "$(curl -s -o "$tmp/body" -w '%{http_code}' -m 5 \
        --data-urlencode "sessionId=$1" --data-urlencode "serviceCode=*247#" \
        --data-urlencode "phoneNumber=$2" --data-urlencode "text=$3" \
        "$base/ussd/at")" = 200 ]
}
con() { step "$@" && head -c4 "$tmp/body" | grep -q '^CON '; }
rcli_port() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }
has_session() { [ "$(rcli_port "$1" EXISTS "remigate:s:ussd:$2")" = 1 ]; }
# ms since the epoch of the daemon's last "connected ... port=P" line
connected_ms()
{
    grep "redis: connected host=127.0.0.1 port=$1 " "$log" | tail -n 1 |
        python3 -c 'import sys, datetime as d
l = sys.stdin.read().split()
print(int(d.datetime.strptime(l[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=d.timezone.utc).timestamp() * 1000) if l else "")'
}
connected_to() { [ -n "$(connected_ms "$1")" ]; }
# ms since the epoch of the first sentinel's last +switch-master to port P
switch_ms()
{
    cat "$tmp"/sentinel-*/sentinel.log | grep "+switch-master $SENTINEL_MASTER .* $1\$" |
        sort -k2,5 | head -n 1 | python3 -c 'import sys, datetime as d
l = sys.stdin.read().split()
print(int(d.datetime.strptime(" ".join(l[1:5]), "%d %b %Y %H:%M:%S.%f").replace(tzinfo=d.timezone.utc).timestamp() * 1000) if l else "")'
}
switched_to() { [ "$(srv_sentinel_primary)" = "$1" ]; }

# --- a bad list is refused ------------------------------------------------
"$bin" -c "$conf" --port 0 --set kannel.enabled=false \
    --set redis.sentinels=127.0.0.1 >"$tmp/bad.out" 2>&1 &
refused=$!
wait_until 10 eval "! kill -0 $refused 2>/dev/null"
wait "$refused"
rc=$?
check "redis.sentinels=127.0.0.1: refused (exit $rc), naming the key" \
    eval "[ $rc != 0 ] && grep -q 'redis.sentinels.*host:port' '$tmp/bad.out'"

# --- found through the sentinels ------------------------------------------
dead=$(srv_free_port)
primary=$REDIS_PORT
if ! start --redis-port "$REDIS_REPLICA_PORT" \
    --set "redis.sentinels=127.0.0.1:$dead,$SENTINEL_ADDRS"; then
    bad "daemon started with redis.sentinels"
    tail -n 20 "$log"
    finish
fi
check "sentinels: /healthz 200 (redis.port is the replica, the first sentinel dead)" \
    wait_until 10 healthy
check "... the log says connected to the primary :$primary via=sentinel" \
    grep -q "redis: connected host=127.0.0.1 port=$primary via=sentinel" "$log"
check "... a dial is answered CON" con s1 8801711200001 ""
check "... and its session is on the primary" has_session "$primary" 8801711200001
check "... the dialogue goes on (English)" con s1 8801711200001 "2"

# --- a manual failover: the old primary stays up, demoted ------------------
replica=$REDIS_REPLICA_PORT
rcli_port "${SENTINEL_PORTS# }" SENTINEL failover "$SENTINEL_MASTER" >/dev/null
check "SENTINEL FAILOVER: the sentinels name :$replica" wait_until 20 switched_to "$replica"
check "... the daemon connects to it" wait_until 10 connected_to "$replica"
sw=$(switch_ms "$replica")
cn=$(connected_ms "$replica")
follow=$((cn - sw))
echo "# failover (manual): +switch-master at $sw, daemon connected at $cn: $follow ms"
check "... within 2 s of the promotion ($follow ms)" test "$follow" -le 2000
check "... the dialogue started before goes on" con s1 8801711200001 "2*1"
check "... /healthz 200" wait_until 5 healthy
srv_sentinel_follow

# --- the primary killed -9: the old one, a replica now, is promoted -------
wait_until 20 eval "rcli_port $REDIS_REPLICA_PORT info replication | grep -q master_link_status:up"
old=$REDIS_PORT
srv_redis_kill9
check "primary :$old killed: the sentinels name :$REDIS_REPLICA_PORT" \
    wait_until 30 switched_to "$REDIS_REPLICA_PORT"
new=$REDIS_REPLICA_PORT
check "... the daemon connects to it" wait_until 10 connected_to "$new"
sw=$(switch_ms "$new")
cn=$(connected_ms "$new")
follow=$((cn - sw))
echo "# failover (kill -9): +switch-master at $sw, daemon connected at $cn: $follow ms"
check "... within 2 s of the promotion ($follow ms)" test "$follow" -le 2000
check "... a new dial is stored there" \
    eval "con s2 8801711200002 '' && has_session $new 8801711200002"
srv_sentinel_follow
check "... the old primary, started again, is made a replica" \
    eval "srv_redis_replica_restart && wait_until 30 eval \"rcli_port $old role | head -n 1 | grep -q slave\""
check "no assert or sanitizer report in the log" \
    eval "! grep -q -e 'assert:' -e 'runtime error' -e 'Sanitizer' '$log'"
stop

# --- without sentinels: -READONLY ----------------------------------------
srv_sentinel_stop
start --redis-port "$REDIS_PORT" || { bad "daemon started without sentinels"; finish; }
check "plain: /healthz 200" wait_until 10 healthy
check "... a dial is answered CON" con r1 8801711200003 ""
nowhere=$(srv_free_port)
srv_rcli REPLICAOF 127.0.0.1 "$nowhere" >/dev/null
step r2 8801711200004 ""
check "made a replica: a dial hears END (busy), not CON" \
    grep -q '^END ' "$tmp/body"
check "... the log names READONLY" grep -q 'redis: down (redis answered READONLY' "$log"
srv_rcli REPLICAOF NO ONE >/dev/null
t0=$(date +%s%3N)
wait_until 5 con r3 8801711200005 ""
took=$(($(date +%s%3N) - t0))
check "a primary again: a dial is answered CON within 2 s ($took ms)" \
    test "$took" -le 2000 -a -n "$(grep '^CON ' "$tmp/body")"
stop

# --- redis.wait_ms: a step waits for Redis to come back --------------------
start --redis-port "$REDIS_PORT" --set redis.wait_ms=1500 ||
    { bad "daemon started with redis.wait_ms"; finish; }
check "wait_ms: /healthz 200" wait_until 10 healthy
srv_redis_kill9
wait_until 5 eval "! healthy"
t0=$(date +%s%3N)
step w1 8801711200006 "" &
stepper=$!
pause 0.5
srv_redis_restart
wait "$stepper"
took=$(($(date +%s%3N) - t0))
check "Redis killed, started again 0.5 s later: a dial made meanwhile waits and is answered CON ($took ms)" \
    eval "grep -q '^CON ' '$tmp/body' && [ $took -ge 400 ] && [ $took -le 2000 ]"
srv_redis_stop
wait_until 5 eval "! healthy"
t0=$(date +%s%3N)
step w2 8801711200007 ""
took=$(($(date +%s%3N) - t0))
check "Redis away: a dial hears busy after the 1500 ms wait ($took ms)" \
    eval "grep -q '^END ' '$tmp/body' && [ $took -ge 1400 ] && [ $took -le 2000 ]"
t0=$(date +%s%3N)
for i in 1 2 3 4 5; do step "w3$i" "88017112000$((10 + i))" "" & done
pause 0.2
stop
wait
took=$(($(date +%s%3N) - t0))
check "SIGTERM: the steps waiting are answered (busy) and the daemon exits within the drain ($took ms)" \
    eval "[ $took -lt 3000 ] && grep -q '^END ' '$tmp/body'"
check "no assert or sanitizer report in the log" \
    eval "! grep -q -e 'assert:' -e 'runtime error' -e 'Sanitizer' '$log'"
finish
