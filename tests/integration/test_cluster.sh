#!/usr/bin/env bash
# tests/integration/test_cluster.sh -- Redis Cluster: what is cluster-safe
# and what the daemon can and cannot do with a 3-primary cluster.
#   - every Lua script in sessions/sess_redis.c (read from the source, so
#     this cannot drift from it) names only KEYS[1], and every EVAL and
#     EVALSHA the C code sends declares one key;
#   - a 3-primary cluster (cluster-enabled, redis-cli --cluster create):
#     each script, run through redis-cli -c on keys owned by each of the
#     three primaries, works (a script touching an undeclared key in
#     another slot, the control, is refused by the cluster);
#   - the daemon has no cluster client (hiredis 0.14 follows no MOVED):
#     with the default prefix, against one node, a caller whose session
#     or parts key (parts:MSISDN, read at a dial) lives on another node
#     hears "busy" and the daemon stays up; with a
#     hash-tagged prefix, redis.prefix = "{remigate}:", every key is in one
#     slot, and the fault driver (tests/faults/driver.py) registers through
#     the node that owns it: told saved = rows in PostgreSQL, none doubled,
#     every step in time.  That is a cluster used as one primary: no
#     sharding (see docs/config.md).
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
node_start()
{
    local d=$tmp/node-$1 p _
    mkdir -p "$d"
    chmod 700 "$d"
    for _ in 1 2 3; do
        p=$(srv_free_port) || return 1
        printf '%s\n' "port $p" "bind 127.0.0.1" "dir $d" 'save ""' \
            "appendonly no" "cluster-enabled yes" \
            "cluster-config-file $d/nodes.conf" "cluster-node-timeout 2000" \
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
if ! node_start 1 || ! node_start 2 || ! node_start 3; then
    bad "three cluster nodes started"
    finish
fi
# shellcheck disable=SC2086
set -- $nodes
a=$1
redis-cli --cluster create "127.0.0.1:$1" "127.0.0.1:$2" "127.0.0.1:$3" \
    --cluster-replicas 0 --cluster-yes >"$tmp/create.out" 2>&1
cluster_ok()
{
    local p
    for p in $nodes; do
        redis-cli -p "$p" cluster info | grep -q '^cluster_state:ok' || return 1
    done
}
check "3-primary cluster created (ports$nodes)" wait_until 20 cluster_ok
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
for p in $nodes; do
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

# --- the daemon against a node --------------------------------------------
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
        "$@" 2>>"$log" &
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
if start --redis-port "$a"; then
    # numbers whose session is on node $a: one whose parts key (read at a
    # dial too) is there as well, if any, and one whose parts key is not;
    # and one whose session is elsewhere.  (CRC16 is linear: for numbers
    # of one length the two keys' slots differ by one constant XOR, so
    # there may be no number with both on one node.)
    here='' split='' there=''
    for i in $(seq 100 900); do
        m="8801712$(printf %06d "$i")"
        if [ "$(owner "remigate:s:ussd:$m")" = "$a" ]; then
            if [ "$(owner "remigate:parts:$m")" = "$a" ]; then
                [ -n "$here" ] || here=$m
            else
                [ -n "$split" ] || split=$m
            fi
        else
            [ -n "$there" ] || there=$m
        fi
        [ -n "$here" ] && [ -n "$split" ] && [ -n "$there" ] && break
    done
    echo "# on :$a: both keys ${here:-none}, the session only ${split:-none}; elsewhere ${there:-none}"
    if [ -n "$here" ]; then
        dial "$here"
        check "default prefix, node :$a: a caller ($here) whose keys are all on it gets CON" \
            grep -q '^CON ' "$tmp/body"
    fi
    dial "$split"
    check "default prefix, node :$a: a caller ($split) whose session is on it but not the parts key hears busy" \
        eval "[ -n '$split' ] && grep -q '^END ' '$tmp/body'"
    dial "$there"
    check "... a caller whose session is on another node hears busy (no cluster client)" \
        grep -q '^END ' "$tmp/body"
    check "... and the daemon is still up" kill -0 "$pid"
    stop
else
    bad "daemon started against node :$a"
fi

owner_tag=$(owner "{remigate}:x")
redis-cli -p "$owner_tag" FLUSHALL >/dev/null # the run above's keys
if start --redis-port "$owner_tag" --set "redis.prefix={remigate}:"; then
    ledger=$tmp/driver.ledger
    stopf=$tmp/driver.stop
    python3 tests/faults/driver.py drive "$base/ussd/at" "$ledger" 8801713 4 \
        "$stopf" 2>"$tmp/driver.err" &
    drv=$!
    saved10() { [ -f "$ledger" ] && [ "$(grep -c '"outcome": "saved"' "$ledger")" -ge 10 ]; }
    check "prefix {remigate}: on its node :$owner_tag: the driver's callers register (10 saved)" \
        wait_until 60 saved10
    touch "$stopf"
    wait_until 60 eval "! kill -0 $drv 2>/dev/null"
    drv=''
    srv_psql -At -c "SELECT msisdn || '|' || ref FROM returnees WHERE msisdn LIKE '8801713%'" \
        >"$tmp/rows"
    f=$(python3 tests/faults/driver.py tally "$ledger" "$tmp/rows" 3000)
    echo "# cluster run: $f"
    eval "$f"
    # shellcheck disable=SC2154
    check "... told saved = rows, none doubled, none missing ($saved saved, $rows rows)" \
        test "$missing" = 0 -a "$wrong_ref" = 0 -a "$dup_msisdn" = 0 -a "$dup_ref" = 0 -a "$rows" = $((saved + queued))
    # shellcheck disable=SC2154
    check "... every step answered in time (late $late, max $max_ms ms, busy $busy)" \
        test "$late" = 0 -a "$no_answer" = 0 -a "$busy" = 0
    check "... every key it wrote is in the one slot of {remigate}" \
        eval "[ \"\$(redis-cli -p $owner_tag --scan --pattern '*' | grep -vc '^{remigate}:')\" = 0 ]"
    stop
else
    bad "daemon started with prefix {remigate}:"
fi
check "no assert or sanitizer report in the log" \
    eval "! grep -q -e 'assert:' -e 'runtime error' -e 'Sanitizer' '$log'"
finish
