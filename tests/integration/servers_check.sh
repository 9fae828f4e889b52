#!/usr/bin/env bash
# tests/integration/servers_check.sh -- checks tests/lib/servers.sh itself:
# both servers start on loopback, answer, keep data across restarts and
# crashes as configured, and leave no process and no directory behind.
# Prints "servers: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
# its own servers, not the ones tests/run may have exported
unset SRV_TMP REDIS_PORT REDIS_PID REDIS_URL PG_PORT PG_PID PG_DSN PG_DATA
. tests/lib/servers.sh
trap srv_cleanup EXIT
trap 'exit 130' INT TERM

pass=0 fail=0
check()
{
    local name=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
        echo "ok - $name"
    else
        fail=$((fail + 1))
        echo "not ok - $name"
    fi
}

redis()
{
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@" 2>/dev/null
}

pg_value()
{
    srv_psql -At -c "$1" 2>/dev/null
}

listening()
{
    ss -Hltn "sport = :$1" | grep -q .
}

not_listening()
{
    local p
    for p in "$@"; do
        listening "$p" && return 1
    done
    return 0
}

all_gone()
{
    local pid
    for pid in "$@"; do
        [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" &&
            return 1
    done
    return 0
}

# all_gone, allowing 5 s: children of a killed postmaster notice its death
# on their own and may take a moment
all_gone_soon()
{
    local _
    for _ in $(seq 50); do
        all_gone "$@" && return 0
        sleep 0.1
    done
    all_gone "$@"
}

REDIS_AOF=1
check "tmpdir under /tmp" srv_tmpdir
check "redis starts" srv_redis_start
check "redis answers PONG" [ "$(redis ping)" = PONG ]
check "REDIS_URL names its port" [ "$REDIS_URL" = "redis://127.0.0.1:$REDIS_PORT" ]
check "redis listens on 127.0.0.1 only" \
    [ "$(ss -Hltn "sport = :$REDIS_PORT" | awk '{print $4}')" = "127.0.0.1:$REDIS_PORT" ]
check "redis SET" [ "$(redis set remigate:check 42)" = OK ]
check "redis uses AOF when REDIS_AOF=1" [ "$(redis config get appendonly | tail -1)" = yes ]
rpid=$REDIS_PID
check "redis restarts on the same port" srv_redis_restart
check "redis has a new pid" [ "$REDIS_PID" != "$rpid" ]
check "redis kept the key across a clean restart" [ "$(redis get remigate:check)" = 42 ]
rpid=$REDIS_PID
srv_redis_kill9
check "redis kill9 leaves no process" all_gone "$rpid"
check "redis kill9 frees the port" not_listening "$REDIS_PORT"
check "redis comes back after kill9" srv_redis_restart
check "redis answers after kill9" [ "$(redis ping)" = PONG ]

check "postgres starts" srv_pg_start
check "PG_DSN names its port" \
    [ "$PG_DSN" = "host=127.0.0.1 port=$PG_PORT dbname=remigate user=remigate" ]
check "postgres answers" [ "$(pg_value 'select 1')" = 1 ]
check "database is remigate" [ "$(pg_value 'select current_database()')" = remigate ]
check "fsync on" [ "$(pg_value 'show fsync')" = on ]
check "synchronous_commit on" [ "$(pg_value 'show synchronous_commit')" = on ]
check "encoding UTF8" [ "$(pg_value 'show server_encoding')" = UTF8 ]
check "postgres listens on 127.0.0.1 only" \
    [ "$(ss -Hltn "sport = :$PG_PORT" | awk '{print $4}')" = "127.0.0.1:$PG_PORT" ]
check "postgres socket in the temp dir" [ -S "$PG_SOCKDIR/.s.PGSQL.$PG_PORT" ]
if [ "$(id -u)" -eq 0 ]; then
    check "postgres does not run as root" \
        [ "$(ps -o user= -p "$PG_PID")" != root ]
fi
check "postgres takes a row" srv_psql -c \
    "create table t (s text); insert into t values ('রেমিগেট')"
check "postgres stops" srv_pg_stop
check "postgres starts again" srv_pg_start_again
check "postgres kept the row" [ "$(pg_value 'select s from t')" = 'রেমিগেট' ]
pgpids="$PG_PID $(ps -o pid= --ppid "$PG_PID")"
srv_psql -c "insert into t values ('after')"
srv_pg_kill9
# shellcheck disable=SC2086
check "postgres kill9 leaves no process" all_gone_soon $pgpids
check "postgres recovers after kill9" srv_pg_start_again
check "postgres kept the committed row" \
    [ "$(pg_value 'select count(*) from t')" = 2 ]

dir=$SRV_TMP
rport=$REDIS_PORT pport=$PG_PORT
pids="$REDIS_PID $PG_PID $(ps -o pid= --ppid "$PG_PID")"
srv_cleanup
# shellcheck disable=SC2086
check "cleanup leaves no process" all_gone $pids
check "cleanup frees the ports" not_listening "$rport" "$pport"
check "cleanup removes the temp dir" [ ! -e "$dir" ]
check "cleanup twice is harmless" srv_cleanup

echo "servers: $pass passed, $fail failed"
[ $fail -eq 0 ]
