#!/usr/bin/env bash
# tests/integration/test_cluster.sh -- Redis Cluster: the scripts are
# cluster-safe, and the daemon spreads its keys over a cluster and follows
# it (redis.cluster).
#   - every Lua script in sessions/sess_redis.c (read from the source, so
#     this cannot drift from it) names only KEYS[1], and every EVAL and
#     EVALSHA the C code sends declares one key;
#   - a cluster of 3 primaries, each with a replica (cluster-enabled,
#     redis-cli --cluster create --cluster-replicas 1): each script, run
#     through redis-cli -c on keys owned by each of the three primaries,
#     works (a script touching an undeclared key in another slot, the
#     control, is refused by the cluster);
#   - redis.cluster and redis.sentinels together are refused at start, and
#     so is a bad seed list;
#   - the daemon with redis.cluster (two seeds, one of them dead) and the
#     DEFAULT prefix: a caller whose session is on each primary gets CON;
#     the fault driver (tests/faults/driver.py) registers callers: keys on
#     all three primaries (DBSIZE > 0), no "busy";
#   - 1000 slots resharded from one primary to another under that load
#     (redis-cli --cluster reshard: -ASK while a slot migrates, -MOVED
#     after): the dialogues go on, no "busy";
#   - a primary killed -9 (cluster-node-timeout 1000): the cluster
#     promotes its replica, every worker follows it within 2 s of the
#     promotion (CLUSTER SLOTS and CLUSTER INFO polled while the cluster
#     is not whole; -CLUSTERDOWN waited through, not answered "busy") and
#     new registrations are saved on it; no caller hears "busy" twice in
#     the whole failover, none after it (the times and every "busy" are
#     printed);
#   - over the whole run: told saved = rows in PostgreSQL, none doubled.
# Its own Redis nodes and PostgreSQL.  Prints "cluster: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=cluster
# shellcheck source=tests/lib/itest.sh
. tests/lib/itest.sh
unset SRV_TMP REDIS_PORT REDIS_PID REDIS_DIR REDIS_URL PG_PORT PG_PID PG_DSN PG_DATA
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-$PWD/build/remigate}
pid='' drv='' nodes='' npids=''
cleanup()
{
    [ -n "$drv" ] && kill "$drv" 2>/dev/null
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    # shellcheck disable=SC2086
    [ -n "$npids" ] && kill $npids 2>/dev/null && srv__wait_gone $npids
    srv_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM
srv_tmpdir || { bad "temp dir"; finish; }
tmp=$SRV_TMP

# --- the scripts, from the source ------------------------------------------
python3 - sessions/sess_redis.c "$tmp/lua" >"$tmp/static.out" <<'PY'
import os, re, sys
src = open(sys.argv[1]).read()
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
n = 0
for name, body in re.findall(
        r'static const char (sess_lua_\w+)\[\] =\s*((?:"(?:[^"\\]|\\.)*"\s*)+);',
        src):
    text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))
    text = text.encode().decode("unicode_escape")
    open(os.path.join(out, name), "w").write(text)
    keys = sorted(set(re.findall(r"KEYS\[(\d+)\]", text)))
    print("script %s keys=%s" % (name, ",".join(keys)))
    n += 1
calls = re.findall(r'"(EVAL(?:SHA)?) %s (\d+) ', src)
print("scripts=%d evals=%d numkeys=%s" % (
    n, len(calls), ",".join(sorted(set(k for _, k in calls)))))
PY
sed 's/^/# /' "$tmp/static.out"
nscripts=$(sed -n 's/^scripts=\([0-9]*\).*/\1/p' "$tmp/static.out")
check "the scripts in sessions/sess_redis.c found ($nscripts)" \
    test "${nscripts:-0}" -ge 4
check "every script names KEYS[1] and no other key" \
    eval "! grep '^script ' '$tmp/static.out' | grep -v ' keys=1\$'"
check "every EVAL/EVALSHA in the C code declares one key" \
    grep -q 'evals=[1-9][0-9]* numkeys=1$' "$tmp/static.out"
check "no other C file sends a script" \
    eval "! grep -l -e 'EVAL' -e 'FCALL' --include='*.c' -r gateway console notices store flows"

# --- a 3-primary cluster --------------------------------------------------
# cluster-node-timeout: the failover below holds callers to one "busy" at
# most only when the promotion comes within about two redis.wait_ms of the
# kill (docs/operators.md); CLUSTER_NODE_TIMEOUT overrides it, to measure
node_timeout=${CLUSTER_NODE_TIMEOUT:-1000}
node_start()
{
    local d=$tmp/node-$1 p _
    mkdir -p "$d"
    chmod 700 "$d"
    for _ in 1 2 3; do
        p=$(srv_free_port) || return 1
        printf '%s\n' "port $p" "bind 127.0.0.1" "dir $d" 'save ""' \
            "appendonly no" "cluster-enabled yes" \
            "cluster-config-file $d/nodes.conf" "cluster-node-timeout $node_timeout" \
            "logfile $d/redis.log" >"$d/redis.conf"
        redis-server "$d/redis.conf" </dev/null >>"$d/out" 2>&1 &
        local np=$!
        if wait_until 10 eval "[ \"\$(redis-cli -p $p ping 2>/dev/null)\" = PONG ]"; then
            npids="$npids $np"
            nodes="$nodes $p"
            return 0
        fi
        kill "$np" 2>/dev/null
        srv__wait_gone "$np"
    done
    return 1
}
for i in 1 2 3 4 5 6; do
    node_start $i || { bad "six cluster nodes started"; finish; }
done
# the pid of the node on port $1 (nodes and npids in the same order)
node_pid()
{
    local -a ps=($nodes) ids=($npids)
    local i
    for i in "${!ps[@]}"; do
        [ "${ps[$i]}" = "$1" ] && echo "${ids[$i]}"
    done
}
# shellcheck disable=SC2086
set -- $nodes
redis-cli --cluster create "127.0.0.1:$1" "127.0.0.1:$2" "127.0.0.1:$3" \
    "127.0.0.1:$4" "127.0.0.1:$5" "127.0.0.1:$6" \
    --cluster-replicas 1 --cluster-yes >"$tmp/create.out" 2>&1
live=$nodes
cluster_ok()
{
    local p
    for p in $live; do
        redis-cli -p "$p" cluster info | grep -q '^cluster_state:ok' || return 1
    done
}
primaries()
{
    local p
    for p in $live; do
        [ "$(redis-cli -p "$p" role 2>/dev/null | head -1)" = master ] && echo "$p"
    done
}
three_primaries() { [ "$(primaries | wc -l)" = 3 ]; }
check "3 primaries with a replica each created (ports$nodes)" \
    wait_until 30 eval "cluster_ok && three_primaries"
# the replicas know their primaries' data once the links are up
wait_until 20 eval "[ \$(for p in $nodes; do redis-cli -p \$p info replication; done | grep -c 'master_link_status:up') = 3 ]"
prim=$(primaries | tr '\n' ' ')
# shellcheck disable=SC2086
set -- $prim
a=$1
# owner KEY: the port of the primary that holds KEY
owner()
{
    local r
    r=$(redis-cli -p "$a" EXISTS "$1" 2>&1)
    case $r in
    MOVED*) echo "${r##*:}" ;;
    *) echo "$a" ;;
    esac
}
# a key (a session key, as the daemon names them) on each primary
declare -A key_on
for i in $(seq 100 400); do
    k="remigate:s:ussd:8801712$(printf %06d "$i")"
    o=$(owner "$k")
    [ -n "${key_on[$o]:-}" ] || key_on[$o]=$k
    [ ${#key_on[@]} = 3 ] && break
done
check "a key on each of the three primaries" test ${#key_on[@]} = 3
lua() { cat "$tmp/lua/$1"; }
rc() { redis-cli -c -p "$a" "$@" 2>&1; }
allgood=yes
for p in $prim; do
    k=${key_on[$p]:-x}
    # the queue key, with the session's hash tag so that it is on $p too
    q="{$k}:q"
    r1=$(rc EVAL "$(lua sess_lua_cas)" 1 "$k" 0 value1 60)
    r2=$(rc EVAL "$(lua sess_lua_cas)" 1 "$k" 1 value2 60)
    r3=$(rc EVAL "$(lua sess_lua_push_once)" 1 "$q" item1 item)
    r4=$(rc EVAL "$(lua sess_lua_push_once)" 1 "$q" item1b item)
    r5=$(rc EVAL "$(lua sess_lua_push_until)" 1 "$q" item2 99999999999999)
    r6=$(rc EVAL "$(lua sess_lua_shift)" 1 "$q" item1)
    r7=$(rc LRANGE "$q" 0 -1)
    # the parts key (bits OR-ed, a label), hash-tagged onto $p as well
    b="{$k}:parts"
    rc EVAL "$(lua sess_lua_or)" 1 "$b" 1 60 bn >/dev/null
    r8=$(rc EVAL "$(lua sess_lua_or)" 1 "$b" 2 60 '')
    r9=$(rc HGET "$b" d)
    echo "# primary :$p, key $k: cas $(echo $r1) / $(echo $r2); push_once $r3 $r4; push_until $r5; shift $r6; list $(echo $r7); or $(echo $r8) -> $r9"
    [ "$(echo $r1)" = "1 1" ] && [ "$(echo $r2)" = "1 2" ] && [ "$r3" = 1 ] &&
        [ "$r4" = 0 ] && [ "$r5" = 1 ] && [ "$r6" = 1 ] && [ "$(echo $r7)" = item2 ] &&
        [ "$(echo $r8)" = "1 2" ] && [ "$r9" = "3 bn" ] ||
        allgood=no
done
check "every script works on a key of each primary, through redis-cli -c" \
    test $allgood = yes
# the control: a script that touches a key it did not declare, in another
# slot, is refused -- so the runs above could have failed
ks=(${key_on[@]})
r=$(rc EVAL "return redis.call('GET', '${ks[1]}')" 1 "${ks[0]}")
echo "# control, an undeclared key in another slot: $r"
check "a script with an undeclared key elsewhere is refused by the cluster" \
    eval "echo '$r' | grep -qi -e 'non local key' -e 'CROSSSLOT' -e 'slot'"

# --- the daemon with redis.cluster ----------------------------------------
if ! srv_pg_start; then
    bad "PostgreSQL started"
    finish
fi
itest_config "$PG_DSN"
chmod 600 "$conf"
log=$tmp/daemon.log
start()
{
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers 2 --port 0 --port-file "$tmp/port" \
        --set kannel.enabled=false --set limits.request_timeout_ms=2000 \
        --set redis.wait_ms=1500 "$@" 2>>"$log" &
    pid=$!
    wait_until 10 test -s "$tmp/port" || return 1
    base=http://127.0.0.1:$(cat "$tmp/port")
    wait_until 10 eval "[ \"\$(curl -s -o /dev/null -m 2 -w '%{http_code}' $base/healthz)\" = 200 ]"
}
stop()
{
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=''
}
dial()
{
    curl -s -o "$tmp/body" -m 5 --data-urlencode "sessionId=c$1" \
        --data-urlencode "serviceCode=*247#" --data-urlencode "phoneNumber=$1" \
        --data-urlencode "text=" "$base/ussd/at"
}
refused()
{
    "$bin" -c "$conf" --port 0 --set kannel.enabled=false "$@" \
        >"$tmp/refused.out" 2>&1 &
    local p=$!
    wait_until 10 eval "! kill -0 $p 2>/dev/null" || { kill -9 $p; return 1; }
    ! wait $p
}
check "redis.cluster with redis.sentinels is refused at start, naming both" \
    eval "refused --set redis.cluster=127.0.0.1:$a --set redis.sentinels=127.0.0.1:1 &&
        grep -q 'redis.cluster and redis.sentinels' '$tmp/refused.out'"
check "a bad redis.cluster is refused at start, naming the key" \
    eval "refused --set redis.cluster=127.0.0.1 && grep -q 'redis.cluster' '$tmp/refused.out'"

dead=$(srv_free_port)
if ! start --set "redis.cluster=127.0.0.1:$dead,127.0.0.1:$a"; then
    bad "daemon started with redis.cluster (a dead seed first)"
    tail -n 20 "$log" | sed 's/^/# /'
    finish
fi
ok "daemon up with redis.cluster=127.0.0.1:$dead,127.0.0.1:$a (default prefix), /healthz 200"
check "... its log says it is connected via the cluster" \
    grep -q 'redis: connected.*via=cluster' "$log"
# a caller whose session is on each primary
declare -A num_on
for i in $(seq 100 400); do
    m="8801712$(printf %06d "$i")"
    o=$(owner "remigate:s:ussd:$m")
    [ -n "${num_on[$o]:-}" ] || num_on[$o]=$m
    [ ${#num_on[@]} = 3 ] && break
done
con=0
for p in $prim; do
    dial "${num_on[$p]:-x}" && grep -q '^CON ' "$tmp/body" && con=$((con + 1))
done
check "a caller whose session is on each of the three primaries gets CON ($con of 3)" \
    test $con = 3
for p in $prim; do redis-cli -p "$p" FLUSHALL >/dev/null; done

# -MOVED and -ASK, each on one slot the daemon does not know has changed
# (it asks for the map only at start, on a drop, and after a -MOVED):
# a fresh caller whose session's slot is on primary A
# shellcheck disable=SC2086
set -- $prim
idA=$(redis-cli -p "$1" cluster myid)
idB=$(redis-cli -p "$2" cluster myid)
fresh()
{
    local i m
    for i in $(seq "$1" 999); do
        m="8801714$(printf %06d "$i")"
        [ "$(owner "remigate:s:ussd:$m")" = "$2" ] && echo "$m" && return 0
    done
}
mv=$(fresh 100 "$1")
slot=$(redis-cli -p "$1" cluster keyslot "remigate:s:ussd:$mv")
# the slot moved to B for good, told to every node (as a finished
# resharding leaves it)
redis-cli -p "$2" cluster setslot "$slot" importing "$idA" >/dev/null
redis-cli -p "$1" cluster setslot "$slot" migrating "$idB" >/dev/null
for p in $nodes; do redis-cli -p "$p" cluster setslot "$slot" node "$idB" >/dev/null 2>&1; done
dial "$mv"
check "-MOVED: slot $slot moved from :$1 to :$2 under the daemon; a caller ($mv) on it gets CON" \
    grep -q '^CON ' "$tmp/body"
check "... and the session is on :$2" \
    test "$(redis-cli -p "$2" exists "remigate:s:ussd:$mv")" = 1
# a slot half-way (A migrating, B importing): a key not on A is on B,
# reached after ASKING
ma=$(fresh $((${mv: -3} + 1)) "$1")
slot=$(redis-cli -p "$1" cluster keyslot "remigate:s:ussd:$ma")
redis-cli -p "$2" cluster setslot "$slot" importing "$idA" >/dev/null
redis-cli -p "$1" cluster setslot "$slot" migrating "$idB" >/dev/null
dial "$ma"
check "-ASK: slot $slot migrating from :$1 to :$2; a new caller ($ma) on it gets CON" \
    grep -q '^CON ' "$tmp/body"
check "... and the session is on :$2 (asked with ASKING: the slot is still :$1's)" \
    test "$(printf 'ASKING\nEXISTS remigate:s:ussd:%s\n' "$ma" | redis-cli -p "$2" | tail -1)" = 1
for p in $nodes; do redis-cli -p "$p" cluster setslot "$slot" node "$idB" >/dev/null 2>&1; done
wait_until 10 cluster_ok

ledger=$tmp/driver.ledger
stopf=$tmp/driver.stop
python3 tests/faults/driver.py drive "$base/ussd/at" "$ledger" 8801713 6 \
    "$stopf" 2>"$tmp/driver.err" &
drv=$!
nsaved() { local n; n=$(grep -c '"outcome": "saved"' "$ledger" 2>/dev/null); echo "${n:-0}"; }
saved_n() { [ "$(nsaved)" -ge "$1" ]; }
check "the driver's callers register through the cluster (20 saved)" \
    wait_until 90 saved_n 20
sizes=''
allkeys=yes
for p in $prim; do
    n=$(redis-cli -p "$p" DBSIZE)
    sizes="$sizes :$p=$n"
    [ "${n:-0}" -gt 0 ] || allkeys=no
done
check "... keys on all three primaries (DBSIZE$sizes)" test $allkeys = yes
check "... every key under the default prefix, none hash-tagged into one slot" \
    eval "[ \"\$(for p in $prim; do redis-cli -p \$p --scan --pattern '*'; done | grep -v '^remigate:' | grep -c .)\" = 0 ]"

# --- slots resharded under load: -ASK, then -MOVED -------------------------
# shellcheck disable=SC2086
set -- $prim
from_id=$(redis-cli -p "$1" cluster myid)
to_id=$(redis-cli -p "$2" cluster myid)
nslots() { redis-cli --cluster check "127.0.0.1:$a" 2>/dev/null |
    sed -n "s/^127.0.0.1:$1 .*| \([0-9]*\) slots.*/\1/p" | head -1; }
s1=$(nslots "$1")
redis-cli --cluster reshard "127.0.0.1:$1" --cluster-from "$from_id" \
    --cluster-to "$to_id" --cluster-slots 1000 --cluster-yes \
    >"$tmp/reshard.out" 2>&1
rs=$?
s1b=$(nslots "$1")
check "1000 slots moved from :$1 to :$2 under load (redis-cli --cluster reshard, rc $rs; slots of :$1 ${s1:-?} -> ${s1b:-?})" \
    eval "[ $rs = 0 ] && [ \"${s1:-0}\" -gt 0 ] && [ \"${s1b:-0}\" = \$((${s1:-0} - 1000)) ]"
n0=$(nsaved)
check "... the dialogues go on after it (10 more saved)" \
    wait_until 60 saved_n $((n0 + 10))
t_fail=$(date +%s.%N)
b=$(python3 tests/faults/driver.py busy "$ledger" "$t_fail")
echo "# before the failover: $b"
# shellcheck disable=SC2154
eval "$b"
check "... no caller heard busy before the failover (busy_before_max $busy_before_max)" \
    test "$busy_before_max" = 0

# --- a primary killed: its replica promoted --------------------------------
# The window the callers on its slots wait through is the cluster's own:
# the node suspected after cluster-node-timeout, marked failed, its replica
# elected (0.5 to 1 s more) -- while every node answers -CLUSTERDOWN from
# the mark to the promotion.  A step waits up to redis.wait_ms (1500 here,
# within limits.request_timeout_ms 2000 less redis.timeout_ms, its default
# 500, as in the fault suite's Sentinel failover) for the daemon to follow; a caller
# who hears "busy" once and dials again waits again, so one "busy" at most
# needs the promotion within about two waits of the kill.
victim=$3
vpid=$(node_pid "$victim")
live=$(echo "$nodes" | tr ' ' '\n' | grep -vx "$victim" | tr '\n' ' ')
t_kill=$(date +%s%3N)
kill -9 "$vpid" 2>/dev/null
wait "$vpid" 2>/dev/null # (no "Killed" from bash)
npids=$(echo "$npids" | tr ' ' '\n' | grep -vx "$vpid" | tr '\n' ' ')
check "primary :$victim killed -9: the cluster promotes its replica" \
    wait_until 30 eval "cluster_ok && three_primaries"
newp=$(primaries | grep -vxF -e "$1" -e "$2")
n1=$(nsaved)
check "... the daemon follows: 20 more saved after the promotion" \
    wait_until 60 saved_n $((n1 + 20))
check "... keys written on the promoted primary :$newp (DBSIZE $(redis-cli -p "$newp" DBSIZE))" \
    test "$(redis-cli -p "$newp" DBSIZE)" -gt 0
touch "$stopf"
wait_until 60 eval "! kill -0 $drv 2>/dev/null"
drv=''
# the times, from the logs: the promotion (the replica's "Failover election
# won", Redis's local time) and, per worker, its last "redis: connected"
# (the daemon's, UTC): every worker has the whole cluster again then
t_prom=$(grep -h 'Failover election won' "$tmp"/node-*/redis.log | head -n 1 |
    python3 -c 'import sys, time
f = sys.stdin.read().split()
t = time.mktime(time.strptime(" ".join(f[1:4]) + " " + f[4].split(".")[0],
                              "%d %b %Y %H:%M:%S"))
print(int(t * 1000) + int(f[4].split(".")[1]))' 2>/dev/null)
follow=$(grep 'redis: connected.*via=cluster' "$log" | python3 -c '
import re, sys, datetime as d
prom, last = int(sys.argv[1] or 0), {}
for l in sys.stdin:
    t = d.datetime.strptime(l.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    ms = int(t.replace(tzinfo=d.timezone.utc).timestamp() * 1000)
    m = re.search(r" pid=(\d+) ", l)
    if m and ms >= prom:
        last[m.group(1)] = max(last.get(m.group(1), 0), ms)
print("followed=%d follow_ms=%d" % (len(last),
      max(last.values()) - prom if last else -1))' "${t_prom:-}")
eval "$follow"
# shellcheck disable=SC2154
echo "# failover: kill -9 -> promotion $((${t_prom:-0} - t_kill)) ms; promotion -> every worker followed $follow_ms ms ($followed workers)"
# shellcheck disable=SC2154
check "... both workers followed within 2 s of the promotion ($follow_ms ms)" \
    test -n "$t_prom" -a "$followed" = 2 -a "$follow_ms" -ge 0 -a "$follow_ms" -le 2000
b=$(python3 tests/faults/driver.py busy "$ledger" "$(python3 -c "print(${t_prom:-0} / 1000 + 1.5)")")
echo "# busy, before and after the promotion + wait_ms: $b"
eval "$b"
late=$busy_after
check "... no caller hears busy once the daemon has had redis.wait_ms to follow (busy_after $busy_after)" \
    test "$busy_after" = 0
# the failover's: from the kill on (a "busy" before it, a command past its
# timeout on a loaded machine, is no part of it; it is printed above)
b=$(python3 tests/faults/driver.py busy "$ledger" "$(python3 -c "print($t_kill / 1000)")")
echo "# busy, before and after the kill: $b"
eval "$b"
check "... no caller heard busy twice in the whole failover, from the kill on (at most $busy_after_max a caller)" \
    test "$busy_after_max" -le 1
# each caller's answers not saved, ms after the kill
python3 -c 'import json, sys
k = int(sys.argv[2]) / 1000
by = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["outcome"] not in ("saved", "queued", "abandoned"):
        by.setdefault(r["caller"], []).append("%s at %d ms (step %d, %s ms)" % (
            r["outcome"], (r["t1"] - k) * 1000, r["step"],
            r["ms"][-1] if r["ms"] else "-"))
print("# busy per caller: " + ("; ".join("%s: %s" % (c, ", ".join(v))
      for c, v in sorted(by.items())) or "none"))' "$ledger" "$t_kill"
# (when not: the daemon's reasons)
if [ "$late" != 0 ] || [ "$busy_max" -gt 1 ]; then
    grep -e 'busy reply' -e 'redis: ' "$log" | tail -n 30 | sed 's/^/# /'
fi
srv_psql -At -c "SELECT msisdn || '|' || ref FROM returnees WHERE msisdn LIKE '8801713%'" \
    >"$tmp/rows"
f=$(python3 tests/faults/driver.py tally "$ledger" "$tmp/rows" 3000)
echo "# cluster run: $f"
eval "$f"
# shellcheck disable=SC2154
check "told saved = rows, none doubled, none missing ($saved saved, $queued queued, $rows rows)" \
    test "$missing" = 0 -a "$wrong_ref" = 0 -a "$dup_msisdn" = 0 -a "$dup_ref" = 0 -a "$row_said_not" = 0 -a "$rows" -ge $((saved + queued)) -a "$rows" -le $((saved + queued + row_unknown))
check "daemon still up through it all" kill -0 "$pid"
stop
check "no assert or sanitizer report in the log" \
    eval "! grep -q -e 'assert:' -e 'runtime error' -e 'Sanitizer' '$log'"
finish
