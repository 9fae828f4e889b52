# tests/e2e/lib.sh -- what the end-to-end scripts (run.sh, notices.sh)
# share, sourced after tests/lib/servers.sh and tests/lib/checks.sh, with
# $here (tests/e2e), $root and $bin (the remigate to run) set:
#
#   pids=(...)             what the script started; cleanup (on EXIT)
#                          stops them in reverse order, each with its
#                          children, then the servers (srv_cleanup);
#                          E2E_KEEP=1 keeps the temporary directory
#   alive PID              PID is running
#   family PID             PID and its children (remigate forks workers)
#   stop_pids PID...       SIGTERM, then SIGKILL after 10 s; reaps them
#   show_tail LOG...       the last lines of each non-empty LOG
#   bail MESSAGE [LOG...]  a failure that stops the run
#   code URL               the HTTP status (000 when nothing answers)
#
# and the first steps of a run, each of which bails when it fails:
#   e2e_prereqs [CMD...]   node, curl, jq, redis-server and each CMD on
#                          PATH, $BEARERBOX and $SMSBOX there; npm ci in
#                          tests/e2e when its node_modules lack smpp
#   e2e_servers            the work directory $tmp, a copy of $bin there
#                          (which $bin then names), Redis and PostgreSQL
#                          started, sql SQL, $conf (the repository's
#                          config/ with the DSN and a key file), the key
#                          made and the database migrated
#   e2e_kannel_env RESEND_S [PORT_VAR...]
#                          free ports in SMSC_PORT, CONTROL_PORT,
#                          ADMIN_PORT, SMSBOX_PORT, SENDSMS_PORT, RG_PORT
#                          and each PORT_VAR; what scripts/kannel-config
#                          and the simulator read, exported (fresh
#                          passwords, sms-resend-freq RESEND_S); $ctl (the
#                          simulator's control API), $base (remigate) and
#                          rg_kannel_flags, remigate's --set options for
#                          this Kannel (secret, sendsms, short code,
#                          dlr-url)
#   e2e_sim_start          tests/e2e/smsc-sim.js ($sim_pid, log
#                          $tmp/sim.log), its control API answering

pids=()
SRV_TMP=

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

family() { echo "$1"; ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }

stop_pids()
{
    local p end
    # shellcheck disable=SC2068
    kill -TERM $@ 2>/dev/null
    end=$((SECONDS + 10))
    for p in "$@"; do
        while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $end ]; do pause; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
}

cleanup()
{
    local i kids
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        alive "${pids[i]}" || { wait "${pids[i]}" 2>/dev/null; continue; }
        kids=$(family "${pids[i]}")
        # shellcheck disable=SC2086
        stop_pids $kids
    done
    pids=()
    if [ -n "$SRV_TMP" ] && [ "${E2E_KEEP:-0}" = 1 ]; then
        REMIGATE_TEST_KEEP=1
    fi
    srv_cleanup 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_tail()
{
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        say "--- last lines of ${f#"$tmp"/}"
        tail -n 20 "$f" | sed 's/^/#   /'
    done
}

bail()
{
    local m=$1
    shift
    not_ok "$m"
    show_tail "$@"
    summary
    exit 1
}

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }

e2e_prereqs()
{
    local c b
    for c in node curl jq redis-server "$@"; do
        command -v "$c" >/dev/null 2>&1 || bail "$c is not installed (scripts/deps)"
    done
    for b in "$BEARERBOX" "$SMSBOX"; do
        [ -x "$b" ] || bail "$b is missing (scripts/deps installs kannel)"
    done
    if [ ! -d "$here/node_modules/smpp" ]; then
        say "installing tests/e2e/node_modules (npm ci)"
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
            bail "npm ci failed in tests/e2e"
    fi
}

e2e_servers()
{
    srv_tmpdir || bail "no temporary directory"
    tmp=$SRV_TMP
    say "work directory $tmp"
    # One binary for the whole run, even if the tree is rebuilt meanwhile
    # (a restart must run the program that migrated the database).
    cp "$bin" "$tmp/remigate" || bail "cannot copy $bin"
    bin=$tmp/remigate

    srv_redis_start 2>"$tmp/redis.err" ||
        bail "Redis did not start" "$tmp/redis.err" "$tmp/redis/redis.log"
    srv_pg_start 2>"$tmp/pg.err" ||
        bail "PostgreSQL did not start" "$tmp/pg.err" "$tmp/pg/postgres.log"
    sql() { srv_psql -At -c "$1" 2>>"$tmp/psql.err"; }

    cp -r "$root/config" "$tmp/config"
    conf=$tmp/config/remigate.conf
    sed -i -e "s|^\( *dsn = \)\"\";|\1\"$PG_DSN\";|" \
        -e "s|^\( *key_file = \)\"\";|\1\"$tmp/key\";|" "$conf"
    grep -q "$PG_PORT" "$conf" || bail "could not put postgres.dsn into $conf"
    "$bin" keygen "$tmp/key" >"$tmp/keygen.log" 2>&1 ||
        bail "remigate keygen failed" "$tmp/keygen.log"
    "$bin" migrate -c "$conf" >"$tmp/migrate.log" 2>&1 ||
        bail "remigate migrate failed" "$tmp/migrate.log"
}

e2e_kannel_env()
{
    local resend=$1 v p
    shift
    for v in SMSC_PORT CONTROL_PORT ADMIN_PORT SMSBOX_PORT SENDSMS_PORT RG_PORT "$@"; do
        p=$(srv_free_port) || bail "no free port"
        printf -v "$v" %s "$p"
    done
    export SMSC_PORT CONTROL_PORT ADMIN_PORT SMSBOX_PORT SENDSMS_PORT
    export RUN_DIR=$tmp/kannel
    export REMIGATE_URL=http://127.0.0.1:$RG_PORT
    export KANNEL_SECRET=e2e-$RANDOM$RANDOM-key-$RANDOM$RANDOM
    export SENDSMS_USER=remigate SENDSMS_PASS=s$RANDOM$RANDOM
    export ADMIN_PASS=a$RANDOM$RANDOM
    export SHORT_CODE=16247 SMS_RESEND_FREQ=$resend
    export USSD_SYSID=ussdbind USSD_PW=u$RANDOM SMS_SYSID=smsbind SMS_PW=s$RANDOM
    ctl=http://127.0.0.1:$CONTROL_PORT
    base=http://127.0.0.1:$RG_PORT
    rg_kannel_flags=(--set "kannel.secret=$KANNEL_SECRET"
        --set "kannel.sendsms_url=http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms"
        --set "kannel.username=$SENDSMS_USER"
        --set "kannel.password=$SENDSMS_PASS"
        --set "kannel.short_code=$SHORT_CODE"
        --set "kannel.dlr_url=$base")
}

e2e_sim_start()
{
    node "$here/smsc-sim.js" >"$tmp/sim.log" 2>&1 &
    sim_pid=$!
    pids+=("$sim_pid")
    sim_up() { alive "$sim_pid" && [ "$(code "$ctl/health")" = 200 ]; }
    poll 15 sim_up || bail "smsc-sim.js did not start within 15 s" "$tmp/sim.log"
}
