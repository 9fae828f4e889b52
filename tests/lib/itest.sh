# tests/lib/itest.sh -- the assertions of the integration scripts, sourced:
#
#   ITEST_LABEL=ussd; . tests/lib/itest.sh
#   ok NAME / bad NAME [DETAIL]   count one check that passed / failed
#   check NAME 'SHELL CODE'       ok when the code (eval'd) succeeds
#   check NAME COMMAND ARG...     ok when the command succeeds (run as
#                                 given, no eval: two or more words)
#   is NAME WANT GOT              ok when the two are the same string
#   wait_until SECONDS COMMAND... until COMMAND succeeds, at most SECONDS
#   pause [SECONDS]               a short wait without a sleep process
#   finish                        "LABEL: N passed, N failed", then exit
#                                 (non-zero when one failed or none ran)
#   itest_servers redis|pg|standby...
#                                 (tests/lib/servers.sh sourced) a temp dir
#                                 of its own ($tmp), the servers named
#                                 started (standby: srv_pg_standby_start,
#                                 after pg; else a failure ends the
#                                 script), and on exit itest_cleanup:
#                                 $pids and $pid killed and waited for,
#                                 itest_on_exit (when the script has one),
#                                 the servers stopped
#   itest_suite_servers [pg]      the Redis and PostgreSQL of tests/run
#                                 (REDIS_PORT, PG_DSN; with pg, its
#                                 PostgreSQL alone), or, run alone, its
#                                 own (own=1: the script's cleanup calls
#                                 srv_cleanup); a failure ends the script
#   itest_tmpdir                  $tmp, a temp dir of the script's own
#                                 (/tmp/remigate-LABEL.XXXXXX, apart from
#                                 the servers'), and on exit itest_cleanup
#                                 (which removes it too): for a script on
#                                 the suite's servers (itest_suite_servers)
#   itest_up PID                  (10 s) until $tmp/port is written by
#                                 the daemon PID and its /healthz answers
#                                 200; sets $base.  Non-zero if not
#   itest_daemon ARGS...          $bin on $conf, one worker, port 0
#                                 ($tmp/port), Redis on $REDIS_PORT, ARGS
#                                 added, stderr to $tmp/log; sets $pid
#                                 and (itest_up) $base, counts "daemon
#                                 started"; not up: a failure ends the
#                                 script.  Variables set before the call
#                                 (X=1 itest_daemon) are in its environment
#   itest_stop                    SIGTERM to $pid: exit 0 and no assert or
#                                 sanitizer report in $tmp/log (two checks)
#   itest_register PHONE NID      part 1 of a registration in English over
#                                 POST /ussd/at (a fixed name, sex, year,
#                                 district, NID, confirm); prints the last
#                                 screen ($tmp/ussd.PHONE)
#   itest_mo PHONE TEXT           an SMS from PHONE as Kannel's
#                                 sms-service passes it (key $secret);
#                                 prints the HTTP status
#   itest_sms PHONE TEXT [COLUMNS]
#                                 itest_mo (curl waits 5 s), then (10 s)
#                                 until the answer's sms_out row is there:
#                                 prints COLUMNS of it (default text);
#                                 "HTTP N" or "no answer" and status 1
#                                 when it is not
#   itest_dlr ID TYPE             Kannel's delivery report (key $secret)
#                                 for our message ID; prints the status
#                                 (the last three: curl waits at most
#                                 $itest_http_s seconds, default 10)
#   sql TEXT                      srv_psql -At -c TEXT (a script may
#                                 define its own after sourcing)
#   officer ARGS...               $bin officer ARGS -c $conf, the output
#                                 in $tmp/out
#   itest_config DSN [SED_EXPR]... a copy of config/ in $tmp/config ($conf)
#                                 on DSN with a new key ($tmp/key), the
#                                 expressions applied, migrated ($bin);
#                                 a failure ends the script
#
# A failure shows DETAIL, the start of $tmp/body (the last HTTP answer,
# when the script keeps one there) and the end of the daemon's logs
# ($tmp/log, $tmp/log.*).

pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad()
{
    local f
    fail=$((fail + 1))
    echo "not ok - $1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | head -5 | sed 's/^/#   /'
    [ -n "${tmp:-}" ] || return 0
    [ -f "$tmp/body" ] && head -c 400 "$tmp/body" | sed 's/^/#   body: /' && echo
    for f in "$tmp"/log "$tmp"/log.*; do
        [ -f "$f" ] && tail -5 "$f" | sed 's/^/#   /'
    done
    return 0
}
# (The eval'd code may test $?, the status of the command before check:
# it is handed on.)
check()
{
    local itest_status=$?
    if [ $# -eq 2 ]; then
        itest_return "$itest_status"
        if eval "$2"; then ok "$1"; else bad "$1"; fi
        return 0
    fi
    local itest_name=$1
    shift
    if "$@"; then ok "$itest_name"; else bad "$itest_name"; fi
}
itest_return() { return "$1"; }
is() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "want [$2] got [$3]"; fi; }
finish()
{
    echo "${ITEST_LABEL:-checks}: $pass passed, $fail failed"
    [ $fail -eq 0 ] && [ $pass -gt 0 ]
    exit
}
pause() { read -r -t "${1:-0.1}" <> <(:) 2>/dev/null || true; }
wait_until()
{
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $end ] || return 1
        pause
    done
}

itest_config()
{
    local dsn=$1 e args=()
    shift
    for e in "$@"; do args+=(-e "$e"); done
    cp -r config "$tmp/config"
    conf=$tmp/config/remigate.conf
    sed -i -e "s|^\( *dsn = \)\"\";|\1\"$dsn\";|" \
        -e "s|^\( *key_file = \)\"\";|\1\"$tmp/key\";|" "${args[@]}" "$conf"
    "$bin" keygen "$tmp/key" >/dev/null
    "$bin" migrate -c "$conf" >"$tmp/out" 2>&1 ||
        { bad "migrate" "$(cat "$tmp/out")"; finish; }
}

itest_servers()
{
    local s
    SRV_TMP=
    srv_tmpdir || exit 1
    tmp=$SRV_TMP
    trap itest_cleanup EXIT
    trap 'exit 130' INT TERM
    for s in "$@"; do
        case $s in
        redis) srv_redis_start ;;
        pg) srv_pg_start ;;
        standby) srv_pg_standby_start ;;
        *) false ;;
        esac || { bad "servers started ($s)"; finish; }
    done
}

itest_suite_servers()
{
    local need=${1:-redis pg} s
    own=0
    if [ -n "${PG_DSN:-}" ] && { [ "$need" = pg ] || [ -n "${REDIS_PORT:-}" ]; }; then
        return 0
    fi
    own=1
    SRV_TMP=
    srv_tmpdir || { bad "servers started"; finish; }
    for s in $need; do
        case $s in
        redis) srv_redis_start ;;
        pg) srv_pg_start ;;
        *) false ;;
        esac || { bad "servers started ($s)"; finish; }
    done
}

itest_tmpdir()
{
    trap itest_cleanup EXIT
    trap 'exit 130' INT TERM
    itest_tmp=$(mktemp -d "/tmp/remigate-${ITEST_LABEL:-itest}.XXXXXX") ||
        { bad "temp dir"; finish; }
    tmp=$itest_tmp
}

itest_up()
{
    local pid=$1 end=$((SECONDS + 10))
    until [ -s "$tmp/port" ]; do
        kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ] || return 1
        pause 0.05
    done
    base=http://127.0.0.1:$(cat "$tmp/port")
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ]; do
        [ $SECONDS -lt $end ] || return 1
        pause 0.05
    done
}

itest_daemon()
{
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" "$@" 2>>"$tmp/log" &
    pid=$!
    itest_up "$pid" || { bad "daemon started"; finish; }
    ok "daemon started (pid $pid)"
}

itest_stop()
{
    local rc
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    pid=
    is "SIGTERM: exit 0" 0 "$rc"
    check "no assert or sanitizer report in the log" \
        "! grep -q -e 'assert:' -e 'runtime error' -e 'Sanitizer' '$tmp/log'"
}

itest_register()
{
    local text='' a
    for a in '' 2 1 1 'Rahima Begum' 2 1990 Farid "$2" 1; do
        [ -n "$a" ] && text=${text:+$text*}$a
        curl -s -o "$tmp/ussd.$1" --max-time "${itest_http_s:-10}" \
            --data-urlencode "sessionId=s$1" --data-urlencode "serviceCode=*247#" \
            --data-urlencode "phoneNumber=$1" --data-urlencode "text=$text" \
            "$base/ussd/at"
        head -c4 "$tmp/ussd.$1" | grep -q '^CON ' || break
    done
    cat "$tmp/ussd.$1"
}

itest_mo()
{
    local t
    t=$(printf '%s' "$2" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')
    curl -s -o /dev/null -w '%{http_code}' --max-time "${itest_http_s:-10}" \
        "$base/kannel/mo?from=%2B$1&to=16247&text=$t&smsc=sms&id=sms-$(date +%s%N)&coding=0&charset=UTF-8&key=$secret"
}

itest_sms()
{
    local phone=$1 n s end=$((SECONDS + 10))
    n=$(sql "SELECT count(*) FROM sms_out WHERE msisdn = '$phone'")
    s=$(itest_http_s=5 itest_mo "$phone" "$2")
    [ "$s" = 200 ] || { echo "HTTP $s"; return 1; }
    until [ "$(sql "SELECT count(*) FROM sms_out WHERE msisdn = '$phone'")" -gt "$n" ]; do
        [ $SECONDS -lt $end ] || { echo "no answer"; return 1; }
        pause 0.05
    done
    sql "SELECT ${3:-text} FROM sms_out WHERE msisdn = '$phone'
         ORDER BY created_at DESC, id DESC LIMIT 1"
}

itest_dlr()
{
    curl -s -o /dev/null -w '%{http_code}' --max-time "${itest_http_s:-10}" \
        "$base/kannel/dlr?id=$1&status=$2&answer=id%3A1+stat%3ADELIVRD&ts=$(date +%s)&key=$secret"
}

itest_cleanup()
{
    local p
    for p in ${pids:-} ${pid:-}; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    if declare -F itest_on_exit >/dev/null; then itest_on_exit; fi
    [ -n "${itest_tmp:-}" ] && rm -rf "$itest_tmp"
    srv_cleanup
}

sql() { srv_psql -At -c "$1"; }
officer() { "$bin" officer "$@" -c "$conf" >"$tmp/out" 2>&1; }
