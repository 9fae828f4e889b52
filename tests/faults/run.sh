#!/usr/bin/env bash
# tests/faults/run.sh [BUILD] -- the fault suite: faults under a steady load
# of whole registrations, each followed by the same checks.
#
# One Redis (AOF, fsync every second) and a PostgreSQL primary from
# tests/lib/servers.sh, the daemon's postgres.dsn naming it and a second
# address with target_session_attrs=read-write (where the standby of the
# failover fault will be), one daemon (BUILD/remigate, two workers, request
# deadline limits.request_timeout_ms = 2000).  For each fault, in turn:
# tests/faults/driver.py drives FAULTS_CALLERS (6) callers in a closed loop,
# each registering new numbers (part 1, 10 steps over /ussd/at); once 5 are
# stored the fault is made and healed; once 5 more are stored after it
# while their callers waited (not queued) the load stops, the Redis queue
# is waited on to drain, and then:
#   - every caller told "saved" or "received, reference R" has exactly one
#     row in returnees, with reference R; no number and no reference has two
#     rows; no caller told "busy" / "could not save" has a row; every row is
#     a caller told saved or one whose last step got no answer;
#   - a registration was stored while its caller waited within
#     FAULTS_RECOVERY_S (5) of the heal;
#   - every step was answered within the deadline + FAULTS_MARGIN_MS (1000),
#     and (but when the daemon itself is killed) every step was answered;
#   - the daemon's master process and its workers are the same ones (a
#     killed worker is started again by the master: that is the design).
# Each fault prints its figures: callers, outcomes, rows, max and p99
# latency.  Faults: none (baseline), Redis paused 5 s, Redis killed and
# started again, PostgreSQL restarted (-m fast) and (-m immediate),
# PostgreSQL paused 5 s (the postmaster and every backend), PostgreSQL down
# while Redis, holding the queued records, is killed -9 and started again,
# a worker killed with -9, the whole daemon killed with -9 at a random
# moment and started again, a failover of PostgreSQL (a synchronous
# streaming standby made before its load starts, on the DSN's second
# address, so that every commit acknowledged is on it; then the primary
# killed with -9 and the standby promoted 2 s later: records confirmed
# meanwhile wait in the Redis queue, and at least one must have); then, with the daemon reaching them through a
# proxy the suite controls (tests/faults/stallproxy.py), the network to
# PostgreSQL and to Redis stalled 5 s (no byte moves, nothing is closed);
# then, with the daemon finding Redis through three sentinels
# (redis.sentinels), a Sentinel failover: the primary killed -9 and the
# replica promoted (also checked: the daemon follows within 2 s of the
# promotion, and no caller hears "busy" twice after it).
# Then tests/faults/kannel.sh (named "kannel" for FAULTS_ONLY): bearerbox
# killed -9 and started again mid-dialogue, smsbox killed -9 mid-dialogue,
# and a dialogue alternating between two daemons behind two Kannel pairs
# (scripts/stack up --ha), its checks counted here.
# FAULTS_ONLY="pg_pause ..." runs only the faults named; FAULTS_CALLERS and
# FAULTS_MARGIN_MS change the callers and the margin.  Prints
# "faults: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
build=${1:-${BUILD:-build}}
bin=$PWD/$build/remigate
ncallers=${FAULTS_CALLERS:-6}
timeout_ms=2000
deadline_ms=$((timeout_ms + ${FAULTS_MARGIN_MS:-1000}))
# from the heal to the first registration stored while its caller waited
recovery_s=${FAULTS_RECOVERY_S:-5}
export CHECKS_LABEL=faults
# shellcheck source=tests/lib/checks.sh
. tests/lib/checks.sh
. tests/lib/servers.sh
export REDIS_AOF=1
SRV_TMP=
dpid=''
drv=''
cleanup()
{
    [ -n "$drv" ] && kill "$drv" 2>/dev/null
    daemon_kill9
    local p
    for p in ${proxy_pid_pg:-} ${proxy_pid_redis:-}; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    srv_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish()
{
    summary
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
    exit
}

[ -x "$bin" ] || { not_ok "daemon binary $bin (make)"; finish; }
if ! srv_tmpdir || ! srv_redis_start || ! srv_pg_start; then
    not_ok "Redis and PostgreSQL started"
    finish
fi
# the standby's address, named in the DSN from the start; nothing listens
# there until the failover fault (libpq goes on to the next address when
# one refuses, and takes the first that accepts writes)
pg2_port=$(srv_free_port)
pg_ha_dsn="host=127.0.0.1,127.0.0.1 port=$PG_PORT,$pg2_port dbname=remigate user=$PG_USER target_session_attrs=read-write"
tmp=$SRV_TMP
log=$tmp/daemon.log
sql() { srv_psql -At -c "$1"; }

cp -r config "$tmp/config"
conf=$tmp/config/remigate.conf
sed -i -e "s|^\( *dsn = \)\"\";|\1\"$pg_ha_dsn\";|" \
    -e "s|^\( *key_file = \)\"\";|\1\"$tmp/key\";|" "$conf"
"$bin" keygen "$tmp/key" >/dev/null &&
    "$bin" migrate -c "$conf" >"$tmp/migrate.log" 2>&1 ||
    { not_ok "keygen and migrate"; cat "$tmp/migrate.log"; finish; }

# --- the daemon -----------------------------------------------------------

port=0
# workers of the master $dpid
workers() { ps -o pid= --ppid "$dpid" 2>/dev/null | tr -d ' '; }
healthy() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ]; }
two_workers() { [ "$(workers | wc -l)" = 2 ]; }
daemon_start()
{
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers 2 --port "$port" --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" --set kannel.enabled=false \
        --set limits.request_timeout_ms=$timeout_ms "$@" 2>>"$log" &
    dpid=$!
    poll 20 test -s "$tmp/port" || return 1
    port=$(cat "$tmp/port")
    poll 20 healthy && poll 10 two_workers
}
# the master and its workers, as a crash (or systemd's KillMode) leaves it
daemon_kill9()
{
    [ -n "$dpid" ] || return 0
    local w
    w=$(workers)
    # shellcheck disable=SC2086
    kill -9 "$dpid" $w 2>/dev/null
    wait "$dpid" 2>/dev/null
    # shellcheck disable=SC2086
    [ -z "$w" ] || srv__wait_gone $w
    dpid=
}

daemon_start || { not_ok "daemon started"; tail -n 20 "$log"; finish; }
master=$dpid
ok "daemon started (master $master, workers $(workers | tr '\n' ' '))"

# --- the faults -----------------------------------------------------------

pg_pids() { srv__pg_pids; }
# pg_restart MODE: pg_ctl stop -m MODE, then started again on the same port
pg_restart()
{
    local pids
    pids=$(pg_pids)
    srv__as_pg "$SRV_PG_BIN/pg_ctl" stop -w -t 10 -s -m "$1" -D "$PG_DATA" \
        >/dev/null 2>&1 || return 1
    # shellcheck disable=SC2086
    srv__wait_gone $pids
    srv__pg_ctl_start
}
fault_none() { :; }
fault_redis_pause()
{
    kill -STOP "$REDIS_PID" || return 1
    pause 5
    kill -CONT "$REDIS_PID"
}
fault_redis_kill()
{
    srv_redis_kill9 2>/dev/null # (bash would report the job "Killed")
    pause 1
    srv_redis_restart
}
fault_pg_fast() { pg_restart fast; }
fault_pg_immediate() { pg_restart immediate; }
fault_pg_pause()
{
    local pids
    pids=$(pg_pids)
    # shellcheck disable=SC2086
    kill -STOP $pids || return 1
    pause 5
    # shellcheck disable=SC2086
    kill -CONT $pids
}
queued_count()
{
    if [ -f "$1" ]; then grep -c '"outcome": "queued"' "$1"; else echo 0; fi
}
queued_at_least() { [ "$(queued_count "$1")" -ge "$2" ]; }
# PostgreSQL down, so confirmed records wait in the Redis queue; Redis is
# killed -9 and started again (AOF) with them in it; then PostgreSQL is
# started again: the queue must still hold every record a caller was told
# was received
fault_pg_down_redis_kill()
{
    local n
    srv_pg_kill9
    poll 30 queued_at_least "$ledger" 5 || return 1
    srv_redis_kill9 2>/dev/null # (bash would report the job "Killed")
    pause 1
    srv_redis_restart || return 1
    n=$(queued_count "$ledger")
    poll 30 queued_at_least "$ledger" $((n + 5)) || return 1
    srv_pg_start_again
}
# before its load: a synchronous standby on the DSN's second address
pg_failover_prepare()
{
    SRV_PG_SYNC=1 SRV_PG2_PORT=$pg2_port srv_pg_standby_start
}
# the primary crashes (every commit it acknowledged is on the standby);
# 2 s later the standby is promoted (as a cluster manager would); from
# then on PG_* name the new primary
fault_pg_failover()
{
    srv_pg_kill9
    pause 2
    srv_pg_promote || return 1
    srv_pg_swap
}
fault_worker_kill()
{
    local w
    w=$(workers | head -n 1)
    [ -n "$w" ] || return 1
    kill -9 "$w"
    # the master starts another one (after a second)
    new_worker() { two_workers && ! workers | grep -qx "$w"; }
    poll 10 new_worker
}
fault_daemon_kill()
{
    # a random moment within 2 s of the load's steady state
    local at="$((RANDOM % 2)).$((RANDOM % 10))"
    say "daemon_kill: killed $at s after the load was steady"
    pause "$at"
    daemon_kill9
    daemon_start && master=$dpid
}

# registrations stored while the caller waited ("saved", not "queued")
saved_count()
{
    if [ -f "$1" ]; then
        grep -c '"outcome": "saved"' "$1"
    else
        echo 0
    fi
}
saved_at_least() { [ "$(saved_count "$1")" -ge "$2" ]; }
driver_gone() { ! kill -0 "$drv" 2>/dev/null; }
queue_empty() { [ "$(srv_rcli LLEN remigate:queue:records 2>/dev/null)" = 0 ]; }
# drains SECONDS: the Redis queue empties, going down at least every
# SECONDS (a fault can queue thousands of records: how fast they drain
# depends on the machine, that they do not)
drains()
{
    local last='' n end=$((SECONDS + $1))
    while :; do
        n=$(srv_rcli LLEN remigate:queue:records 2>/dev/null) || n=''
        [ "$n" = 0 ] && return 0
        if [ -n "$n" ] && { [ -z "$last" ] || [ "$n" -lt "$last" ]; }; then
            last=$n end=$((SECONDS + $1))
        fi
        [ $SECONDS -lt $end ] || return 1
        pause 0.5
    done
}

# phase NAME PREFIX: the load, the fault fault_NAME, the checks
phase()
{
    local name=$1 prefix=$2 ledger=$tmp/$1.ledger stop=$tmp/$1.stop
    local before wbefore wafter n f t0 t1 t2 same=yes
    say "--- $name"
    python3 tests/faults/driver.py drive "http://127.0.0.1:$port/ussd/at" \
        "$ledger" "$prefix" "$ncallers" "$stop" 2>"$tmp/$name.err" &
    drv=$!
    if ! poll 60 saved_at_least "$ledger" 5; then
        not_ok "$name: the load runs (5 saved before the fault)"
        touch "$stop"
        poll 60 driver_gone
        drv=
        return
    fi
    before=$master
    wbefore=$(workers | sort | tr '\n' ' ')
    t0=$(date +%s%N)
    check "$name: fault made and healed" "fault_$name"
    t1=$(date +%s%N)
    n=$(saved_count "$ledger")
    check "$name: back within ${recovery_s} s: a registration stored while its caller waited" \
        poll "$recovery_s" saved_at_least "$ledger" $((n + 1))
    check "$name: and 5 more after the fault" \
        poll 60 saved_at_least "$ledger" $((n + 5))
    t2=$(date +%s%N)
    touch "$stop"
    check "$name: the callers stopped" poll 60 driver_gone
    drv=
    check "$name: the Redis queue drained (never 30 s without going down)" \
        drains 30
    sql "SELECT msisdn || '|' || ref FROM returnees WHERE msisdn LIKE '$prefix%'" \
        >"$tmp/$name.rows"
    f=$(python3 tests/faults/driver.py tally "$ledger" "$tmp/$name.rows" \
        "$deadline_ms") || { not_ok "$name: tally"; return; }
    say "$name: fault $(((t1 - t0) / 1000000)) ms, then 5 stored in $(((t2 - t1) / 1000000)) ms; $f"
    eval "$f"
    # shellcheck disable=SC2154
    check "$name: told saved = rows (saved $saved + queued $queued; missing $missing, other ref $wrong_ref)" \
        test "$missing" = 0 -a "$wrong_ref" = 0
    # shellcheck disable=SC2154
    check "$name: none doubled (by number $dup_msisdn, by reference $dup_ref)" \
        test "$dup_msisdn" = 0 -a "$dup_ref" = 0
    # shellcheck disable=SC2154
    check "$name: no row for a caller told it was not saved ($row_said_not)" \
        test "$row_said_not" = 0
    # shellcheck disable=SC2154
    check "$name: every row is a caller told saved or left without an answer (rows $rows = $saved + $queued + $row_unknown)" \
        test "$rows" = $((saved + queued + row_unknown))
    # shellcheck disable=SC2154
    check "$name: every step within ${deadline_ms} ms (late $late of $steps, max $max_ms ms)" \
        test "$late" = 0
    if [ "$name" = pg_failover ]; then
        check "$name: the Redis queue carried records over it (queued $queued)" \
            test "$queued" -gt 0
        check "$name: the new primary ($PG_PORT) took them" \
            test "$(sql 'SELECT pg_is_in_recovery()')" = f
    fi
    if [ "$name" = daemon_kill ]; then
        # shellcheck disable=SC2154
        say "$name: steps that got no answer (the daemon was down): $no_answer"
    elif [ "$name" = worker_kill ]; then
        # the steps in flight on the worker killed are reset
        check "$name: no step unanswered but those in flight on the killed worker ($no_answer <= $ncallers)" \
            test "$no_answer" -le "$ncallers"
    else
        check "$name: every step answered (no answer: $no_answer)" \
            test "$no_answer" = 0
    fi
    # shellcheck disable=SC2154
    check "$name: no unexpected screen ($other)" test "$other" = 0
    if [ "$name" = daemon_kill ]; then
        kill -0 "$master" 2>/dev/null || same=no
        check "$name: the new master ($master) is running" test $same = yes
    else
        [ "$master" = "$before" ] && kill -0 "$master" 2>/dev/null || same=no
        check "$name: the same master process ($master)" test $same = yes
    fi
    if [ "$name" != worker_kill ] && [ "$name" != daemon_kill ]; then
        wafter=$(workers | sort | tr '\n' ' ')
        check "$name: the same workers (${wbefore}-> ${wafter})" \
            test "$wbefore" = "$wafter"
    fi
    sed 's/^/# /' "$tmp/$name.err" | head -n 5
}

# FAULTS_ONLY="name ...": only those (to chase one)
wanted() { case " ${FAULTS_ONLY:-$1} " in *" $1 "*) return 0 ;; esac; return 1; }
i=0
for name in none redis_pause redis_kill pg_fast pg_immediate pg_pause \
    pg_down_redis_kill worker_kill daemon_kill pg_failover; do
    if wanted "$name" && [ "$name" = pg_failover ]; then
        check "pg_failover: a synchronous standby streams from the primary" \
            pg_failover_prepare && phase "$name" "880170$i"
    elif wanted "$name"; then
        phase "$name" "880170$i"
    fi
    i=$((i + 1))
done

# The network between the daemon and Redis or PostgreSQL stalls for 5 s:
# the daemon is started again, reaching both through
# tests/faults/stallproxy.py (SIGUSR1 stalls it, SIGUSR2 heals it).
# proxy NAME UPSTREAM_PORT: sets proxy_pid_NAME and proxy_port_NAME
proxy()
{
    python3 tests/faults/stallproxy.py "$tmp/proxy-$1.port" "$2" \
        2>>"$tmp/proxy-$1.err" &
    eval "proxy_pid_$1=$!"
    poll 10 test -s "$tmp/proxy-$1.port" || return 1
    eval "proxy_port_$1=$(cat "$tmp/proxy-$1.port")"
}
proxy_pid_pg=''
proxy_pid_redis=''
stall()
{
    kill -USR1 "$1" || return 1
    pause 5
    kill -USR2 "$1"
}
fault_pg_stall() { stall "$proxy_pid_pg"; }
fault_redis_stall() { stall "$proxy_pid_redis"; }
if wanted pg_stall || wanted redis_stall; then
    say "--- the daemon again, through stalling proxies"
    kill -TERM "$dpid"
    wait "$dpid"
    dpid=
    # shellcheck disable=SC2154
    if proxy pg "$PG_PORT" && proxy redis "$REDIS_PORT" &&
        daemon_start --redis-port "$proxy_port_redis" \
            --set "postgres.dsn=host=127.0.0.1 port=$proxy_port_pg dbname=remigate user=$PG_USER"; then
        master=$dpid
        ok "daemon started again through the proxies (master $master)"
        wanted pg_stall && phase pg_stall 8801710
        wanted redis_stall && phase redis_stall 8801711
    else
        not_ok "daemon started again through the proxies"
        tail -n 20 "$log"
    fi
fi

# Redis through Sentinel (a replica and three sentinels, down-after 1 s):
# the daemon is started again with redis.sentinels (and redis.wait_ms
# 1500: a step that finds Redis reconnecting waits for it); under the load the
# primary is killed -9 and the replica promoted.  Besides the phase's
# checks: every worker connected to the new primary within 2 s of the
# sentinels' +switch-master (their log lines' timestamps), and no caller
# heard "busy" more than once in the whole failover, nor after the
# promotion.
# log_ms PATTERN FILES...: the epoch ms of the matching lines (daemon or
# sentinel log format), one a line
log_ms()
{
    local pat=$1
    shift
    grep -h -e "$pat" "$@" 2>/dev/null | python3 -c 'import sys, datetime as d
for l in sys.stdin:
    f = l.split()
    try:
        t = d.datetime.strptime(f[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        t = d.datetime.strptime(" ".join(f[1:5]), "%d %b %Y %H:%M:%S.%f")
    print(int(t.replace(tzinfo=d.timezone.utc).timestamp() * 1000))'
}
promoted() { [ "$(srv_sentinel_primary)" = "$REDIS_REPLICA_PORT" ]; }
# every worker logged a connection to port $1
all_followed()
{
    [ "$(grep -c "redis: connected host=127.0.0.1 port=$1 " "$log")" -ge 2 ]
}
switch_ms=''
follow_ms=''
kill_ms=0
fault_sentinel_failover()
{
    local new=$REDIS_REPLICA_PORT
    kill_ms=$(($(date +%s%N) / 1000000))
    srv_redis_kill9 2>/dev/null # (bash would report the job "Killed")
    poll 30 promoted || return 1
    poll 10 all_followed "$new" || return 1
    switch_ms=$(log_ms "+switch-master $SENTINEL_MASTER .* $new\$" \
        "$tmp"/sentinel-*/sentinel.log | sort -n | head -n 1)
    follow_ms=$(($(log_ms "redis: connected host=127.0.0.1 port=$new " "$log" |
        sort -n | tail -n 1) - switch_ms))
    say "sentinel_failover: every worker on the new primary :$new $follow_ms ms after +switch-master"
    # Sentinel's own steps, ms after the kill
    local ev t line=''
    for ev in "+sdown master" "+odown master" "+elected-leader master" \
        "+promoted-slave slave" "+switch-master"; do
        t=$(log_ms " $ev " "$tmp"/sentinel-*/sentinel.log | sort -n | head -n 1)
        line="$line ${ev%% *} ${t:+$((t - kill_ms))} ms,"
    done
    say "sentinel_failover: after the kill:${line%,}"
    # the old primary back, made a replica of the new one by the sentinels
    srv_sentinel_follow && srv_redis_replica_restart
}
if wanted sentinel_failover; then
    say "--- the daemon again, finding Redis through three sentinels"
    kill -TERM "$dpid"
    wait "$dpid"
    dpid=
    if srv_sentinel_start &&
        daemon_start --set "redis.sentinels=$SENTINEL_ADDRS" \
            --set redis.wait_ms=1500; then
        master=$dpid
        ok "daemon started again with redis.sentinels (master $master)"
        phase sentinel_failover 8801711
        check "sentinel_failover: followed within 2 s of the promotion ($follow_ms ms)" \
            test -n "$follow_ms" -a "${follow_ms:-9999}" -le 2000
        b=$(python3 tests/faults/driver.py busy "$tmp/sentinel_failover.ledger" \
            "$(python3 -c "print(${switch_ms:-0} / 1000)")")
        eval "$b"
        # shellcheck disable=SC2154
        check "sentinel_failover: no caller heard busy twice after the promotion (at most $busy_after_max, $busy_after in all)" \
            test "$busy_after_max" -le 1
        # shellcheck disable=SC2154
        check "sentinel_failover: no caller heard busy twice in the whole failover (at most $busy_max; before the promotion at most $busy_before_max)" \
            test "$busy_max" -le 1
        # (when not: each answer not saved, by caller, ms after the kill,
        # and the daemon's reasons)
        if [ "$busy_max" -gt 1 ]; then
            python3 -c 'import json, sys
k = int(sys.argv[2]) / 1000
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["outcome"] not in ("saved", "queued", "abandoned"):
        print("# caller %s %s %s at %d ms, step %d took %s ms" % (r["caller"],
              r["msisdn"], r["outcome"], (r["t1"] - k) * 1000, r["step"],
              r["ms"][-1] if r["ms"] else "-"))' \
                "$tmp/sentinel_failover.ledger" "$kill_ms"
            grep 'busy reply' "$log" | tail -n 20 | sed 's/^/# /'
        fi
    else
        not_ok "daemon started again with redis.sentinels"
        tail -n 20 "$log"
    fi
fi

# Kannel's faults, on the HA topology (tests/faults/kannel.sh: two daemons
# behind two Kannel pairs and the SMSC simulator); its checks count here
if wanted kannel; then
    say "--- kannel (tests/faults/kannel.sh)"
    bash tests/faults/kannel.sh "$build" >"$tmp/kannel.out" 2>&1
    grep -v '^kannel: ' "$tmp/kannel.out"
    kline=$(grep -E '^kannel: [0-9]+ passed, [0-9]+ failed' "$tmp/kannel.out" | tail -n 1)
    if [ -n "$kline" ]; then
        kp=${kline#kannel: }
        kp=${kp%% *}
        kf=${kline#*passed, }
        kf=${kf%% *}
        passed=$((passed + kp))
        failed=$((failed + kf))
    else
        not_ok "kannel: tests/faults/kannel.sh printed no summary"
    fi
fi

dups=$(sql "SELECT (SELECT count(*) - count(DISTINCT msisdn) FROM returnees) || ' ' || (SELECT count(*) - count(DISTINCT ref) FROM returnees) || ' ' || (SELECT count(*) FROM returnees)")
check "whole run: no number or reference twice in returnees (extra rows by number, by reference, rows: $dups)" \
    test "${dups% *}" = "0 0"
kill -TERM "$dpid"
wait "$dpid"
rc=$?
dpid=
check "SIGTERM at the end: exit 0 ($rc)" test "$rc" = 0
check "no assert, libevent or sanitizer report in the daemon's log" \
    eval "! grep -q -e 'assert:' -e 'libevent:' -e 'runtime error' -e 'Sanitizer' '$log'"
grep -c ' error ' "$log" | sed 's/^/# error lines in the daemon log: /'
finish
