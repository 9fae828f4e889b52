# tests/lib/servers.sh -- throwaway Redis and PostgreSQL for tests.
#
# Source it from bash (it works under `set -euo pipefail` too):
#
#     . tests/lib/servers.sh
#     trap srv_cleanup EXIT
#     trap 'exit 130' INT TERM        # so Ctrl-C still runs srv_cleanup
#     srv_tmpdir && srv_redis_start && srv_pg_start
#     ... use $REDIS_URL, $PG_DSN ...
#
# Call the functions in the script's own shell, not in $( ) or a pipeline:
# they export variables and remember what they started.  Every function
# returns 0 or prints "servers: ..." on stderr and returns 1.
#
#   srv_tmpdir         mktemp -d /tmp/remigate-test.XXXXXX -> SRV_TMP (once)
#   srv_free_port      prints a free loopback TCP port (10000-32767, random)
#   srv_redis_start    redis-server on 127.0.0.1, dir $SRV_TMP/redis (mode
#                      0700, its files 0600), no persistence (REDIS_AOF=1:
#                      appendonly yes, fsync everysec); its settings in
#                      $SRV_TMP/redis/redis.conf (0600), never on its command
#                      line.  REDIS_PASSWORD: requirepass (srv_rcli and the
#                      helpers here send it through REDISCLI_AUTH);
#                      REDIS_USER (as root): the server runs as that user,
#                      who owns the dir.  Waits for PONG (10 s).  Exports
#                      REDIS_PORT, REDIS_PID, REDIS_URL=redis://127.0.0.1:PORT,
#                      REDIS_DIR
#   srv_rcli ARGS...   redis-cli -h 127.0.0.1 -p $REDIS_PORT ARGS, with the
#                      password if there is one
#   srv_redis_stop     SHUTDOWN (AOF flushed), then waits; SIGKILL after 10 s
#   srv_redis_kill9    SIGKILL, as in a crash
#   srv_redis_restart  stops it if running, starts it on the same port and dir
#   srv_sentinel_start after srv_redis_start: a replica of that Redis (same
#                      persistence) and three Sentinels watching it as
#                      "remigate" (quorum 2, down-after-milliseconds
#                      SENTINEL_DOWN_MS, default 1000); waits until the
#                      replica is in sync and the sentinels agree (SENTINEL
#                      CKQUORUM, 30 s).  Exports SENTINEL_ADDRS
#                      (127.0.0.1:P,... for redis.sentinels), SENTINEL_PORTS,
#                      SENTINEL_PIDS, SENTINEL_MASTER, REDIS_REPLICA_PORT,
#                      REDIS_REPLICA_PID, REDIS_REPLICA_DIR.  Logs:
#                      $SRV_TMP/sentinel-N/sentinel.log
#   srv_sentinel_primary prints the port the sentinels name as the primary
#   srv_sentinel_follow after a failover: swaps the REDIS_* and
#                      REDIS_REPLICA_* variables when the sentinels name the
#                      replica, so REDIS_PORT (srv_rcli, srv_redis_kill9,
#                      srv_redis_restart) is the primary again; the old
#                      primary, restarted with srv_redis_replica_restart,
#                      is made a replica by the sentinels
#   srv_sentinel_stop  stops the replica and the sentinels (srv_cleanup
#                      does it too)
#   srv_pg_start       PostgreSQL 15 (initdb + pg_ctl) in $SRV_TMP/pg on a free
#                      port, TCP on 127.0.0.1 only, socket in $SRV_TMP/pg,
#                      fsync and synchronous_commit on, trust auth; database
#                      "remigate" owned by superuser "remigate".  Exports
#                      PG_PORT, PG_PID, PG_DATA, PG_SOCKDIR, PG_USER,
#                      PG_DSN="host=127.0.0.1 port=P dbname=remigate user=remigate"
#                      As root the server runs as the system user
#                      remigate-test (created if missing; `nobody` if that
#                      fails), otherwise as the calling user.
#   srv_pg_stop        pg_ctl stop -m fast (SIGKILL after 10 s)
#   srv_pg_kill9       SIGKILL to the postmaster and its children, as in a crash
#   srv_pg_start_again starts the same data dir on the same port again
#   srv_psql ARGS...   psql -X -q -v ON_ERROR_STOP=1 "$PG_DSN" ARGS...
#   srv_reset          empties what is running: FLUSHALL on Redis, database
#                      "remigate" dropped and created again
#   srv_pg_standby_start
#                      a streaming standby of the running PostgreSQL:
#                      pg_basebackup -R (-X stream) into $SRV_TMP/pg2 on a
#                      free port, hot_standby on, the same settings; waits
#                      until it accepts read-only connections and the
#                      primary sees it streaming.  SRV_PG_SYNC=1 also makes
#                      it synchronous (synchronous_standby_names = '*' on the
#                      primary, reloaded): a commit the primary acknowledged
#                      is on the standby, so a failover after a crash loses
#                      none.  SRV_PG2_PORT: that port (e.g. one a DSN
#                      already names), not a free one.  Exports PG2_PORT, PG2_PID, PG2_DATA,
#                      PG2_SOCKDIR, PG2_DSN, and PG_HA_DSN: both hosts,
#                      target_session_attrs=read-write (libpq picks the one
#                      that takes writes)
#   srv_pg_standby_caught_up
#                      true once the standby has replayed all the primary
#                      has written (one look, no wait)
#   srv_pg_standby_stop
#                      pg_ctl stop -m fast on the standby
#   srv_pg_promote     pg_ctl promote -w on the standby, waits until it
#                      takes writes, and resets synchronous_standby_names
#                      there (nobody streams from it)
#   srv_pg_swap        after a failover: PG_* (PG_PORT, PG_PID, PG_DATA,
#                      PG_SOCKDIR, PG_DSN) name the promoted standby and
#                      PG2_* the old primary, so srv_psql, srv_pg_stop,
#                      srv_pg_kill9 and srv_cleanup act on the right one
#   srv_cleanup        stops what this shell started (by PID: the servers
#                      whose files are in the SRV_TMP it made; a script that
#                      inherited the suite's servers leaves them alone) and
#                      removes that SRV_TMP unless REMIGATE_TEST_KEEP=1 (then
#                      prints where it is).  Safe to call more than once.
#
# Logs: $SRV_TMP/redis/redis.log (+ redis.out), $SRV_TMP/pg/postgres.log.
# SRV_PG_OPTS: more "-c name=value" settings for the primary (benchmarks:
# e.g. shared_preload_libraries=pg_stat_statements).
# PG_BIN overrides /usr/lib/postgresql/15/bin.

SRV_TMP=${SRV_TMP:-}
SRV_PORTS_USED=" "
SRV_DEADLINE=10
SRV_PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

srv__err()
{
    echo "servers: $*" >&2
    return 1
}

# True while pid is a live process (a zombie counts as gone).
srv__alive()
{
    local state
    [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
    state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) ||
        return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Wait until every pid given has gone; SIGKILL what is left after the
# deadline.  Reaps them if they are children of this shell.
srv__wait_gone()
{
    local pid left end=$((SECONDS + SRV_DEADLINE))
    while :; do
        left=
        for pid in "$@"; do
            srv__alive "$pid" && left="$left $pid"
        done
        [ -z "$left" ] && break
        if [ $SECONDS -ge $end ]; then
            # shellcheck disable=SC2086
            kill -9 $left 2>/dev/null || true
            end=$((SECONDS + SRV_DEADLINE))
        fi
        sleep 0.05
    done
    for pid in "$@"; do
        wait "$pid" 2>/dev/null || true
    done
}

srv_tmpdir()
{
    if [ -n "$SRV_TMP" ] && [ -d "$SRV_TMP" ]; then
        return 0
    fi
    SRV_TMP=$(mktemp -d /tmp/remigate-test.XXXXXX) ||
        srv__err "mktemp failed" || return 1
    SRV_TMP_OWNER=$$ # not exported: srv_cleanup's, in this shell only
    # the PostgreSQL user must be able to reach its subdirectory
    chmod 755 "$SRV_TMP"
    export SRV_TMP
}

srv__port_busy()
{
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
    # without ss: something answers on it
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

srv_free_port()
{
    local p _
    for _ in $(seq 1 200); do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % 22768))
        case $SRV_PORTS_USED in *" $p "*) continue ;; esac
        srv__port_busy "$p" && continue
        SRV_PORTS_USED="$SRV_PORTS_USED$p "
        echo "$p"
        return 0
    done
    srv__err "no free port found"
}

# ------------------------------------------------------------------------
# Redis

srv_rcli()
{
    if [ -n "${REDIS_PASSWORD:-}" ]; then
        REDISCLI_AUTH=$REDIS_PASSWORD redis-cli --no-auth-warning \
            -h 127.0.0.1 -p "$REDIS_PORT" "$@"
    else
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
    fi
}

srv__redis_spawn()
{
    local conf=$REDIS_DIR/redis.conf run=()
    # the password stays off the command line; the data files are the
    # server's own (umask 077: the AOF and RDB files are 0600)
    (
        umask 077
        {
            echo "port $REDIS_PORT"
            echo "bind 127.0.0.1"
            echo "protected-mode yes"
            echo "dir $REDIS_DIR"
            echo 'save ""'
            if [ "${REDIS_AOF:-0}" = 1 ]; then
                echo "appendonly yes"
                echo "appendfsync everysec"
            else
                echo "appendonly no"
            fi
            echo "daemonize no"
            echo "logfile $REDIS_DIR/redis.log"
            if [ -n "${REDIS_PASSWORD:-}" ]; then
                echo "requirepass $REDIS_PASSWORD"
            fi
            # srv_sentinel_start: a replica's "replicaof"
            [ -z "${SRV_REDIS_EXTRA:-}" ] || echo "$SRV_REDIS_EXTRA"
        } >"$conf"
    )
    (umask 077 && : >>"$REDIS_DIR/redis.out")
    if [ -n "${REDIS_USER:-}" ] && [ "$(id -u)" -eq 0 ]; then
        chown -R "$REDIS_USER:" "$REDIS_DIR"
        run=(setpriv --reuid="$REDIS_USER" --regid="$(id -g "$REDIS_USER")"
            --init-groups)
    fi
    (umask 077 && exec "${run[@]}" redis-server "$conf") \
        </dev/null >>"$REDIS_DIR/redis.out" 2>&1 &
    REDIS_PID=$!
    export REDIS_PID
    local end=$((SECONDS + SRV_DEADLINE))
    while [ "$(srv_rcli ping 2>/dev/null)" != PONG ]; do
        if ! srv__alive "$REDIS_PID" || [ $SECONDS -ge $end ]; then
            srv__redis_reap
            return 1
        fi
        sleep 0.05
    done
}

srv__redis_reap()
{
    if [ -n "${REDIS_PID:-}" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        srv__wait_gone "$REDIS_PID"
    fi
    REDIS_PID=
}

srv_redis_start()
{
    local _
    srv_tmpdir || return 1
    command -v redis-server >/dev/null || srv__err "redis-server not found" ||
        return 1
    REDIS_DIR=$SRV_TMP/redis
    mkdir -p "$REDIS_DIR"
    chmod 700 "$REDIS_DIR"
    # a port can be taken between the check and the bind: try another
    for _ in 1 2 3; do
        REDIS_PORT=$(srv_free_port) || return 1
        if srv__redis_spawn; then
            REDIS_URL=redis://127.0.0.1:$REDIS_PORT
            export REDIS_PORT REDIS_URL REDIS_DIR
            return 0
        fi
    done
    tail -n 20 "$REDIS_DIR/redis.out" "$REDIS_DIR/redis.log" >&2
    srv__err "redis-server did not answer PONG (log: $REDIS_DIR/redis.log)"
}

srv_redis_stop()
{
    [ -n "${REDIS_PID:-}" ] || return 0
    srv_rcli shutdown >/dev/null 2>&1 ||
        kill "$REDIS_PID" 2>/dev/null || true
    srv__wait_gone "$REDIS_PID"
    REDIS_PID=
}

srv_redis_kill9()
{
    [ -n "${REDIS_PID:-}" ] || return 0
    kill -9 "$REDIS_PID" 2>/dev/null || true
    srv__wait_gone "$REDIS_PID"
    REDIS_PID=
}

srv_redis_restart()
{
    [ -n "${REDIS_PORT:-}" ] && [ -n "${REDIS_DIR:-}" ] ||
        srv__err "srv_redis_restart: Redis was never started" || return 1
    srv_redis_stop
    # the old socket may linger for a moment
    local end=$((SECONDS + SRV_DEADLINE))
    while ! srv__redis_spawn; do
        [ $SECONDS -ge $end ] &&
            srv__err "redis-server did not restart on $REDIS_PORT" && return 1
        sleep 0.2
    done
}

# ------------------------------------------------------------------------
# Redis Sentinel: a replica and three sentinels around the Redis above

SENTINEL_PIDS=
REDIS_REPLICA_PID=

# Run "$@" with the REDIS_* variables of the replica (and back).
srv__as_replica()
{
    local p=$REDIS_PORT d=$REDIS_DIR i=${REDIS_PID:-} rc=0
    REDIS_PORT=$REDIS_REPLICA_PORT REDIS_DIR=$REDIS_REPLICA_DIR
    REDIS_PID=$REDIS_REPLICA_PID
    "$@" || rc=$?
    REDIS_REPLICA_PID=$REDIS_PID
    REDIS_PORT=$p REDIS_DIR=$d REDIS_PID=$i
    return $rc
}

srv__replica_spawn()
{
    local extra="replicaof 127.0.0.1 $1"
    [ -z "${REDIS_PASSWORD:-}" ] ||
        extra="$extra"$'\n'"masterauth $REDIS_PASSWORD"
    SRV_REDIS_EXTRA=$extra srv__redis_spawn
}

srv__sentinel_cli()
{
    redis-cli -h 127.0.0.1 -p "$1" "${@:2}"
}

srv_sentinel_primary()
{
    local p
    for p in $SENTINEL_PORTS; do
        srv__sentinel_cli "$p" SENTINEL get-master-addr-by-name \
            "$SENTINEL_MASTER" 2>/dev/null | sed -n 2p | grep . && return 0
    done
    return 1
}

srv__sentinel_spawn()
{
    local d=$1 p=$2 end
    # the sentinel rewrites its own file: it must be writable
    {
        echo "port $p"
        echo "bind 127.0.0.1"
        echo "daemonize no"
        echo "dir $d"
        echo "logfile $d/sentinel.log"
        echo "sentinel monitor $SENTINEL_MASTER 127.0.0.1 $REDIS_PORT 2"
        echo "sentinel down-after-milliseconds $SENTINEL_MASTER ${SENTINEL_DOWN_MS:-1000}"
        echo "sentinel failover-timeout $SENTINEL_MASTER 5000"
        echo "sentinel parallel-syncs $SENTINEL_MASTER 1"
        [ -z "${REDIS_PASSWORD:-}" ] ||
            echo "sentinel auth-pass $SENTINEL_MASTER $REDIS_PASSWORD"
    } >"$d/sentinel.conf"
    chmod 600 "$d/sentinel.conf"
    redis-server "$d/sentinel.conf" --sentinel </dev/null \
        >>"$d/sentinel.out" 2>&1 &
    SRV_SENTINEL_PID=$!
    end=$((SECONDS + SRV_DEADLINE))
    until [ "$(srv__sentinel_cli "$p" ping 2>/dev/null)" = PONG ]; do
        if ! srv__alive "$SRV_SENTINEL_PID" || [ $SECONDS -ge $end ]; then
            kill "$SRV_SENTINEL_PID" 2>/dev/null
            srv__wait_gone "$SRV_SENTINEL_PID"
            return 1
        fi
        sleep 0.05
    done
}

srv_sentinel_start()
{
    local i p d _ end ok
    [ -n "${REDIS_PORT:-}" ] && [ -n "${REDIS_PID:-}" ] ||
        srv__err "srv_sentinel_start: start Redis first" || return 1
    SENTINEL_MASTER=remigate
    REDIS_REPLICA_DIR=$SRV_TMP/redis-replica
    mkdir -p "$REDIS_REPLICA_DIR"
    chmod 700 "$REDIS_REPLICA_DIR"
    REDIS_REPLICA_PORT=
    for _ in 1 2 3; do
        p=$(srv_free_port) || return 1
        REDIS_REPLICA_PORT=$p
        srv__as_replica srv__replica_spawn "$REDIS_PORT" && break
        REDIS_REPLICA_PORT=
    done
    [ -n "$REDIS_REPLICA_PORT" ] ||
        srv__err "the Redis replica did not start" || return 1
    end=$((SECONDS + 30))
    until srv__as_replica srv_rcli info replication 2>/dev/null |
        grep -q '^master_link_status:up'; do
        [ $SECONDS -ge $end ] && srv__err "the replica did not sync" && return 1
        sleep 0.1
    done
    SENTINEL_PORTS='' SENTINEL_ADDRS='' SENTINEL_PIDS=''
    for i in 1 2 3; do
        d=$SRV_TMP/sentinel-$i
        mkdir -p "$d"
        chmod 700 "$d"
        ok=
        for _ in 1 2 3; do
            p=$(srv_free_port) || return 1
            srv__sentinel_spawn "$d" "$p" && ok=1 && break
        done
        [ -n "$ok" ] || srv__err "sentinel $i did not start ($d)" || return 1
        SENTINEL_PIDS="$SENTINEL_PIDS $SRV_SENTINEL_PID"
        SENTINEL_PORTS="$SENTINEL_PORTS $p"
        SENTINEL_ADDRS="$SENTINEL_ADDRS${SENTINEL_ADDRS:+,}127.0.0.1:$p"
    done
    export SENTINEL_ADDRS SENTINEL_PORTS SENTINEL_PIDS SENTINEL_MASTER
    export REDIS_REPLICA_PORT REDIS_REPLICA_PID REDIS_REPLICA_DIR
    # every sentinel sees the other two and the replica
    end=$((SECONDS + 30))
    for p in $SENTINEL_PORTS; do
        until srv__sentinel_cli "$p" SENTINEL ckquorum "$SENTINEL_MASTER" \
            2>/dev/null | grep -q '^OK 3 ' &&
            srv__sentinel_cli "$p" SENTINEL replicas "$SENTINEL_MASTER" \
                2>/dev/null | grep -q "^127.0.0.1:$REDIS_REPLICA_PORT\$"; do
            [ $SECONDS -ge $end ] &&
                srv__err "the sentinels did not agree (ckquorum)" && return 1
            sleep 0.2
        done
    done
}

srv_sentinel_follow()
{
    local p t
    p=$(srv_sentinel_primary) || return 1
    [ "$p" = "$REDIS_PORT" ] && return 0
    [ "$p" = "$REDIS_REPLICA_PORT" ] ||
        srv__err "the sentinels name port $p, neither of ours" || return 1
    t=$REDIS_PORT REDIS_PORT=$REDIS_REPLICA_PORT REDIS_REPLICA_PORT=$t
    t=$REDIS_DIR REDIS_DIR=$REDIS_REPLICA_DIR REDIS_REPLICA_DIR=$t
    t=${REDIS_PID:-} REDIS_PID=$REDIS_REPLICA_PID REDIS_REPLICA_PID=$t
    REDIS_URL=redis://127.0.0.1:$REDIS_PORT
    export REDIS_PORT REDIS_DIR REDIS_PID REDIS_URL
    export REDIS_REPLICA_PORT REDIS_REPLICA_DIR REDIS_REPLICA_PID
}

# Start the replica's server again, as a replica of the primary now.
srv_redis_replica_restart()
{
    srv__as_replica srv__replica_spawn "$REDIS_PORT"
}

srv_sentinel_stop()
{
    local pids="${SENTINEL_PIDS:-} ${REDIS_REPLICA_PID:-}"
    [ -n "${pids// /}" ] || return 0
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    srv__wait_gone $pids
    SENTINEL_PIDS='' REDIS_REPLICA_PID=''
}

# ------------------------------------------------------------------------
# PostgreSQL

# Run a command as the PostgreSQL user, from a directory it can read.
srv__as_pg()
{
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$SRV_TMP" && runuser -u "$PG_OSUSER" -- "$@")
    else
        (cd "$SRV_TMP" && "$@")
    fi
}

srv__pg_osuser()
{
    if [ "$(id -u)" -ne 0 ]; then
        PG_OSUSER=$(id -un)
        return 0
    fi
    PG_OSUSER=remigate-test
    if ! getent passwd "$PG_OSUSER" >/dev/null; then
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$PG_OSUSER" >/dev/null 2>&1 ||
            PG_OSUSER=nobody
    fi
}

srv__pg_ctl_start()
{
    srv__as_pg "$SRV_PG_BIN/pg_ctl" start -w -t "$SRV_DEADLINE" -s \
        -D "$PG_DATA" -l "$PG_SOCKDIR/postgres.log" \
        -o "-c port=$PG_PORT -c listen_addresses=127.0.0.1 \
-c unix_socket_directories=$PG_SOCKDIR -c fsync=on -c synchronous_commit=on \
-c full_page_writes=on ${SRV_PG_OPTS:-}" >/dev/null 2>&1 || return 1
    PG_PID=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null)
    export PG_PID
    local end=$((SECONDS + SRV_DEADLINE))
    until "$SRV_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" \
        -d postgres; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.05
    done
}

srv_pg_start()
{
    local _
    srv_tmpdir || return 1
    [ -x "$SRV_PG_BIN/initdb" ] ||
        srv__err "$SRV_PG_BIN/initdb not found (postgresql-15)" || return 1
    srv__pg_osuser
    PG_USER=remigate
    PG_SOCKDIR=$SRV_TMP/pg
    PG_DATA=$PG_SOCKDIR/data
    mkdir -p "$PG_SOCKDIR"
    chmod 700 "$PG_SOCKDIR"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$PG_OSUSER:" "$PG_SOCKDIR"
    fi
    if ! srv__as_pg "$SRV_PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" \
        --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync \
        >"$PG_SOCKDIR/initdb.log" 2>&1; then
        cat "$PG_SOCKDIR/initdb.log" >&2
        srv__err "initdb failed"
        return 1
    fi
    for _ in 1 2 3; do
        PG_PORT=$(srv_free_port) || return 1
        srv__pg_ctl_start && break
        srv__pg_reap
        PG_PORT=
    done
    if [ -z "$PG_PORT" ]; then
        tail -n 20 "$PG_SOCKDIR/postgres.log" >&2
        srv__err "PostgreSQL did not start (log: $PG_SOCKDIR/postgres.log)"
        return 1
    fi
    PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=remigate user=$PG_USER"
    export PG_PORT PG_DATA PG_SOCKDIR PG_USER PG_DSN
    if ! "$SRV_PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" \
        remigate; then
        srv__err "createdb remigate failed"
        return 1
    fi
}

# Postmaster and children, for a kill that leaves nothing behind.
srv__pg_pids()
{
    [ -n "${PG_PID:-}" ] || return 0
    echo "$PG_PID"
    ps -o pid= --ppid "$PG_PID" 2>/dev/null || true
}

srv__pg_reap()
{
    local pids
    pids=$(srv__pg_pids)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    srv__wait_gone $pids
    PG_PID=
}

srv_pg_stop()
{
    [ -n "${PG_PID:-}" ] || return 0
    local pids
    pids=$(srv__pg_pids)
    srv__as_pg "$SRV_PG_BIN/pg_ctl" stop -w -t "$SRV_DEADLINE" -s -m fast \
        -D "$PG_DATA" >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    srv__wait_gone $pids
    PG_PID=
}

srv_pg_kill9()
{
    srv__pg_reap
}

srv_pg_start_again()
{
    [ -n "${PG_PORT:-}" ] && [ -d "${PG_DATA:-}" ] ||
        srv__err "srv_pg_start_again: PostgreSQL was never started" || return 1
    srv_pg_stop
    local end=$((SECONDS + SRV_DEADLINE))
    until srv__pg_ctl_start; do
        srv__pg_reap
        if [ $SECONDS -ge $end ]; then
            tail -n 20 "$PG_SOCKDIR/postgres.log" >&2
            srv__err "PostgreSQL did not start again on $PG_PORT"
            return 1
        fi
        sleep 0.2
    done
}

srv_psql()
{
    "$SRV_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$PG_DSN" "$@"
}

# The whole test database (schema and rows) as pg_dump prints it.
srv_pg_dump()
{
    "$SRV_PG_BIN/pg_dump" "$PG_DSN" "$@"
}

srv_reset()
{
    if [ -n "${REDIS_PID:-}" ]; then
        [ "$(srv_rcli flushall 2>&1)" = OK ] ||
            srv__err "redis FLUSHALL failed" || return 1
    fi
    if [ -n "${PG_PID:-}" ]; then
        "$SRV_PG_BIN/dropdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" \
            --force --if-exists remigate &&
            "$SRV_PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" \
                remigate || srv__err "recreating database remigate failed" ||
            return 1
    fi
    return 0
}

# ------------------------------------------------------------------------
# A streaming standby of the PostgreSQL above

srv__pg2_pids()
{
    [ -n "${PG2_PID:-}" ] || return 0
    echo "$PG2_PID"
    ps -o pid= --ppid "$PG2_PID" 2>/dev/null || true
}

srv__pg2_ctl_start()
{
    srv__as_pg "$SRV_PG_BIN/pg_ctl" start -w -t "$SRV_DEADLINE" -s \
        -D "$PG2_DATA" -l "$PG2_SOCKDIR/postgres.log" \
        -o "-c port=$PG2_PORT -c listen_addresses=127.0.0.1 \
-c unix_socket_directories=$PG2_SOCKDIR -c fsync=on -c synchronous_commit=on \
-c full_page_writes=on -c hot_standby=on -c wal_receiver_status_interval=1 \
-c hot_standby_feedback=on -c wal_retrieve_retry_interval=200" >/dev/null 2>&1 ||
        return 1
    PG2_PID=$(head -n 1 "$PG2_DATA/postmaster.pid" 2>/dev/null)
    export PG2_PID
    local end=$((SECONDS + SRV_DEADLINE))
    until "$SRV_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG2_PORT" \
        -U "$PG_USER" -d postgres; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.05
    done
}

srv__pg2_reap()
{
    local pids
    pids=$(srv__pg2_pids)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    srv__wait_gone $pids
    PG2_PID=
}

srv__pg_streaming()
{
    [ "$("$SRV_PG_BIN/psql" -X -At "$PG_DSN" -c \
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" \
        2>/dev/null)" -ge 1 ] 2>/dev/null
}

srv_pg_standby_start()
{
    local _ end
    [ -n "${PG_PID:-}" ] ||
        srv__err "srv_pg_standby_start: no primary (srv_pg_start)" || return 1
    PG2_SOCKDIR=$SRV_TMP/pg2
    PG2_DATA=$PG2_SOCKDIR/data
    mkdir -p "$PG2_SOCKDIR"
    chmod 700 "$PG2_SOCKDIR"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$PG_OSUSER:" "$PG2_SOCKDIR"
    fi
    if [ "${SRV_PG_SYNC:-0}" = 1 ]; then
        srv_psql -c "ALTER SYSTEM SET synchronous_standby_names = '*'" \
            -c "SELECT pg_reload_conf()" >/dev/null ||
            srv__err "synchronous_standby_names not set" || return 1
    fi
    # -R writes primary_conninfo and standby.signal; -X stream copies the
    # WAL written meanwhile; -c fast checkpoints at once
    if ! srv__as_pg "$SRV_PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" \
        -U "$PG_USER" -D "$PG2_DATA" -R -X stream -c fast --no-sync \
        >"$PG2_SOCKDIR/basebackup.log" 2>&1; then
        cat "$PG2_SOCKDIR/basebackup.log" >&2
        srv__err "pg_basebackup failed"
        return 1
    fi
    # the primary's settings came along: only the port and socket differ
    # (set on the command line); application_name names it in
    # pg_stat_replication
    sed -i "s|^primary_conninfo = '|primary_conninfo = 'application_name=standby |" \
        "$PG2_DATA/postgresql.auto.conf"
    PG2_PORT=
    for _ in 1 2 3; do
        if [ -n "${SRV_PG2_PORT:-}" ]; then
            PG2_PORT=$SRV_PG2_PORT
        else
            PG2_PORT=$(srv_free_port) || return 1
        fi
        srv__pg2_ctl_start && break
        srv__pg2_reap
        PG2_PORT=
    done
    if [ -z "$PG2_PORT" ]; then
        tail -n 20 "$PG2_SOCKDIR/postgres.log" >&2
        srv__err "the standby did not start (log: $PG2_SOCKDIR/postgres.log)"
        return 1
    fi
    PG2_DSN="host=127.0.0.1 port=$PG2_PORT dbname=remigate user=$PG_USER"
    PG_HA_DSN="host=127.0.0.1,127.0.0.1 port=$PG_PORT,$PG2_PORT dbname=remigate user=$PG_USER target_session_attrs=read-write"
    export PG2_PORT PG2_DATA PG2_SOCKDIR PG2_DSN PG_HA_DSN
    end=$((SECONDS + SRV_DEADLINE))
    until srv__pg_streaming; do
        if [ $SECONDS -ge $end ]; then
            tail -n 20 "$PG2_SOCKDIR/postgres.log" >&2
            srv__err "the standby is not streaming (log: $PG2_SOCKDIR/postgres.log)"
            return 1
        fi
        sleep 0.1
    done
}

srv_pg_standby_caught_up()
{
    local lsn
    lsn=$("$SRV_PG_BIN/psql" -X -At "$PG_DSN" -c \
        "SELECT pg_current_wal_lsn()" 2>/dev/null) || return 1
    [ "$("$SRV_PG_BIN/psql" -X -At "$PG2_DSN" -c \
        "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null)" = t ]
}

srv_pg_standby_stop()
{
    [ -n "${PG2_PID:-}" ] || return 0
    local pids
    pids=$(srv__pg2_pids)
    srv__as_pg "$SRV_PG_BIN/pg_ctl" stop -w -t "$SRV_DEADLINE" -s -m fast \
        -D "$PG2_DATA" >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    srv__wait_gone $pids
    PG2_PID=
}

srv_pg_promote()
{
    [ -n "${PG2_PID:-}" ] || srv__err "srv_pg_promote: no standby" || return 1
    srv__as_pg "$SRV_PG_BIN/pg_ctl" promote -w -t "$SRV_DEADLINE" -s \
        -D "$PG2_DATA" >/dev/null 2>&1 || srv__err "pg_ctl promote failed" ||
        return 1
    local end=$((SECONDS + SRV_DEADLINE))
    until [ "$("$SRV_PG_BIN/psql" -X -At "$PG2_DSN" -c \
        'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
        [ $SECONDS -ge $end ] && srv__err "the standby was not promoted" &&
            return 1
        sleep 0.05
    done
    # it came with the primary's synchronous_standby_names: alone now, it
    # would wait for ever on every commit
    "$SRV_PG_BIN/psql" -X -q "$PG2_DSN" \
        -c "ALTER SYSTEM RESET synchronous_standby_names" \
        -c "SELECT pg_reload_conf()" >/dev/null ||
        srv__err "synchronous_standby_names not reset" || return 1
}

srv_pg_swap()
{
    local port=$PG_PORT pid=${PG_PID:-} data=$PG_DATA sock=$PG_SOCKDIR
    PG_PORT=$PG2_PORT PG_PID=${PG2_PID:-} PG_DATA=$PG2_DATA
    PG_SOCKDIR=$PG2_SOCKDIR
    PG2_PORT=$port PG2_PID=$pid PG2_DATA=$data PG2_SOCKDIR=$sock
    PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=remigate user=$PG_USER"
    PG2_DSN="host=127.0.0.1 port=$PG2_PORT dbname=remigate user=$PG_USER"
    export PG_PORT PG_PID PG_DATA PG_SOCKDIR PG_DSN
    export PG2_PORT PG2_PID PG2_DATA PG2_SOCKDIR PG2_DSN
}

# ------------------------------------------------------------------------

# Is $1 a path inside this shell's SRV_TMP?
srv__in_tmp()
{
    case ${1:-} in
    "$SRV_TMP"/*) return 0 ;;
    esac
    return 1
}

srv_cleanup()
{
    # Only what this shell started: the servers whose files are in the
    # temp dir it made.  A script run by tests/run inherits the suite's
    # servers (their PIDs, ports and SRV_TMP, exported) and must leave
    # them running.
    if [ -z "$SRV_TMP" ] || [ "${SRV_TMP_OWNER:-}" != "$$" ]; then
        SRV_TMP=
        return 0
    fi
    if srv__in_tmp "${REDIS_REPLICA_DIR:-}"; then srv_sentinel_stop; fi
    if srv__in_tmp "${REDIS_DIR:-}"; then srv_redis_stop; fi
    if srv__in_tmp "${PG2_DATA:-}"; then srv_pg_standby_stop; fi
    if srv__in_tmp "${PG_DATA:-}"; then srv_pg_stop; fi
    if [ -n "$SRV_TMP" ] && [ -d "$SRV_TMP" ]; then
        if [ "${REMIGATE_TEST_KEEP:-0}" = 1 ]; then
            echo "servers: kept $SRV_TMP" >&2
        else
            rm -rf "$SRV_TMP"
        fi
    fi
    SRV_TMP=
    return 0
}
