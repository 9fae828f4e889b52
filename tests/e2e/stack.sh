#!/usr/bin/env bash
# tests/e2e/stack.sh -- scripts/stack from the outside, in a temporary
# STACK_DIR (a developer's ./var is never touched):
#   1. `scripts/stack up` (with bind passwords and SMSC ports of another
#      Kannel in the environment, which it must not take) ends in time
#      with exit 0 and writes stack.env with
#      the keys of the contract (REMIGATE_URL, REDIS_URL, PG_DSN,
#      KANNEL_SENDSMS_URL, SMSC_PORT, SMSC_CONTROL_URL, ...);
#   2. each address answers: remigate /healthz 200 naming Redis and
#      PostgreSQL up, Redis PING, psql on PG_DSN sees the migrated tables,
#      the simulator's control API with both SMPP binds, Kannel's status
#      page (with the password of the rendered config; refused without it),
#      smsbox's sendsms refuses a request without credentials;
#   3. `scripts/stack status` exits 0, and a USSD dial through the
#      simulator and Kannel gets remigate's first screen (the language menu,
#      ussd_service_op 2, UCS-2);
#      hardening, while it runs: none of its secrets (Kannel key, sendsms,
#      admin, bind and Redis passwords) is on any process's command line
#      (ps -eo args); as root, remigate and Redis run as the user remigate,
#      who owns their files; Redis wants the password; the config, key,
#      password and Kannel files are 0600, Redis's dir 0700 and none of its
#      files (AOF, RDB) readable by others;
#   4. `scripts/stack down`: none of the stack's processes is left (by the
#      PIDs it started and by any process running from STACK_DIR) and none
#      of its ports listens; stack.env is gone and `status` exits non-zero;
#   5. `scripts/stack up --no-kannel` on the same directory (PostgreSQL's
#      data kept): remigate, Redis and PostgreSQL only, no Kannel or
#      simulator address in stack.env, the first screen over /ussd/at; then
#      its PID file is lost (as after a crashed `up`) and `down` still
#      leaves nothing running or listening.
# Prints "stack: N passed, N failed"; exits non-zero when something failed.
# On exit, `scripts/stack down --wipe` for the temporary directory (E2E_KEEP=1
# keeps it and prints where).
#
# Needs what scripts/stack needs (it installs and builds what is missing),
# plus curl, jq, redis-cli, psql and ss.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
stack=$root/scripts/stack
STACK_TIMEOUT=${STACK_TIMEOUT:-240}

CHECKS_LABEL=stack
. "$root/tests/lib/checks.sh"

dir=$(mktemp -d /tmp/remigate-stack.XXXXXX) || {
    not_ok "no temporary directory"
    summary
    exit 1
}
chmod 755 "$dir"
export STACK_DIR=$dir
# The caller's environment must not reach the stack's parts (the e2e suite
# runs this with its own Kannel settings exported): some that would break
# the binds if scripts/stack let them through.
export USSD_PW=not-this SMS_PW=not-this USSD_PORT=1 SMS_PORT=1 SMSC_HOST=192.0.2.1

finish()
{
    STACK_DIR=$dir timeout 60 "$stack" down >/dev/null 2>&1
    if [ "${E2E_KEEP:-0}" = 1 ]; then
        say "kept $dir"
    else
        rm -rf "$dir"
    fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# run_stack LOG ARGS...: scripts/stack ARGS with a deadline; its output in LOG
run_stack() { local log=$1; shift; timeout -k 10 "$STACK_TIMEOUT" "$stack" "$@" >"$log" 2>&1; }
show() { sed "s/^/#   /" "$@" | tail -n 80; }

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }

# env_get KEY: the value of KEY in stack.env (as the shell reads it)
env_get() { (set +u; . "$dir/stack.env" 2>/dev/null && eval "printf '%s' \"\${$1:-}\""); }

# The stack's processes: those named in its PID file, and any process of
# the kinds it starts that runs from STACK_DIR or names it on its command
# line (found as scripts/stack finds strays, independently of it).
stack_procs()
{
    local p
    {
        cat "$dir/pids" 2>/dev/null
        {
            find /proc/[0-9]*/cwd -maxdepth 0 \( -lname "$dir" -o -lname "$dir/*" \)
            grep -lsF -- "$dir/" /proc/[0-9]*/cmdline
        } 2>/dev/null | cut -d/ -f3
    } | sort -u | while read -r p; do
        case $(ps -o stat=,comm= -p "$p" 2>/dev/null | awk '{print $1 " " $2}') in
        Z*) ;;
        *" "redis-server | *" "postgres | *" "remigate | *" "node | *" "bearerbox | *" "smsbox) echo "$p" ;;
        esac
    done
}
no_procs() { [ -z "$(stack_procs)" ]; }
listening() { ss -Hltn 2>/dev/null | awk '{print $4}' | grep -qE ":$1\$"; }
none_listening()
{
    local p
    for p in "$@"; do
        [ -n "$p" ] || continue
        listening "$p" && return 1
    done
    return 0
}
port_of() { sed -nE 's|^[a-z]+://[^:/]+:([0-9]+).*|\1|p' <<<"$1"; }
# the processes of the PID file; a Kannel box by itself, not its scripts/supervise
comm_of_pids()
{
    local p c
    for p in $(cat "$dir/pids" 2>/dev/null); do
        c=$(ps -o comm= -p "$p")
        if [ "$c" = supervise ]; then ps -o comm= --ppid "$p"; else echo "$c"; fi
    done
}
supervised() { [ "$(for p in $(cat "$dir/pids"); do ps -o comm= -p "$p"; done | grep -c '^supervise$')" = 2 ]; }

# ---- 1. up ---------------------------------------------------------------------

t0=$SECONDS
if ! check "up: scripts/stack up exits 0 (within ${STACK_TIMEOUT} s)" \
    run_stack "$dir/up.log" up; then
    show "$dir/up.log"
    summary
    exit 1
fi
say "scripts/stack up took $((SECONDS - t0)) s"

keys_ok=1
for k in REMIGATE_URL REMIGATE_CONF REDIS_URL REDIS_PORT PG_DSN PG_PORT \
    KANNEL_SENDSMS_URL KANNEL_ADMIN_URL SMSC_PORT SMSC_CONTROL_URL SHORT_CODE \
    USSD_CODE LOG_DIR; do
    [ -n "$(env_get "$k")" ] || { say "stack.env: $k missing or empty"; keys_ok=0; }
done
check "up: stack.env has every key of the contract, none empty" [ $keys_ok = 1 ]
rg=$(env_get REMIGATE_URL) redis=$(env_get REDIS_URL) dsn=$(env_get PG_DSN)
sendsms=$(env_get KANNEL_SENDSMS_URL) admin=$(env_get KANNEL_ADMIN_URL)
smsc_port=$(env_get SMSC_PORT) ctl=$(env_get SMSC_CONTROL_URL)

# ---- 2. every address answers --------------------------------------------------

check "remigate: $rg/healthz is 200 with Redis and PostgreSQL up" \
    eval '[ "$(curl -s --max-time 5 "$rg/healthz")" = "{\"redis\":\"up\",\"postgres\":\"up\"}" ]'
pwfile=$(env_get REDIS_PASSWORD_FILE)
rcli() { REDISCLI_AUTH=$(cat "$pwfile") redis-cli --no-auth-warning "$@"; }
check "redis: PING on $redis with the password of REDIS_PASSWORD_FILE" \
    eval '[ "$(rcli -u "$redis" ping 2>/dev/null)" = PONG ]'
check "redis: ... and NOAUTH without it" \
    eval 'redis-cli -u "$redis" ping 2>&1 | grep -q NOAUTH'
tables=$(psql -X -At "$dsn" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
    AND tablename IN ('returnees', 'submissions', 'sms_out', 'sms_optout', 'schema_migrations')" 2>&1)
check "postgres: psql on PG_DSN sees the migrated tables (${tables:-none} of 5)" [ "$tables" = 5 ]
check "simulator: $ctl/health answers, both SMPP binds up" \
    eval 'curl -s --max-time 5 "$ctl/health" | jq -e ".up and .ussd_binds >= 1 and .sms_binds >= 1" >/dev/null'
check "simulator: SMPP port $smsc_port listens" listening "$smsc_port"
# shellcheck disable=SC2034 # used in the eval below
admin_pass=$(sed -nE 's/^status-password = "(.*)"$/\1/p' "$dir/kannel.conf" 2>/dev/null)
# the URL (with the password) from stdin, not the command line
curl_k() { printf 'url = "%s"\n' "$1" | curl -s --max-time 5 -K -; }
check "kannel: the status page answers with the password, both SMSC binds online" \
    eval 'curl_k "$admin/status.txt?password=$admin_pass" |
        grep -cE "^[[:space:]]+(ussd|sms)\[.*\(online" | grep -qx 2'
check "kannel: ... and refuses without it" \
    eval '! curl -s --max-time 5 "$admin/status.txt" | grep -q "SMS:"'
check "kannel: sendsms answers and refuses a request without credentials" \
    eval '[ "$(code "$sendsms?to=8801711000001&text=x")" = 403 ]'

# ---- 3. status and a dial through the stack -------------------------------------

check "status: scripts/stack status exits 0" run_stack "$dir/status.log" status ||
    show "$dir/status.log"
r=$(curl -s --max-time 20 -H 'Content-Type: application/json' \
    -d '{"msisdn": "8801711000901", "op": 1, "session": 9, "text": "*247#"}' \
    "$ctl/ussd")
check "dial: *247# through the simulator and Kannel gets the first screen (language menu, op 2, UCS-2)" \
    eval 'jq -e ".ussd_service_op == 2 and .data_coding == 8 and (.text | contains(\"ভাষা বেছে নিন\"))" <<<"$r" >/dev/null' ||
    say "got: ${r:0:300}"

# ---- hardening: secrets, users, file modes ---------------------------------------

conf=$(env_get REMIGATE_CONF)
ps -eo args >"$dir/ps.txt" # the whole stack runs; nothing of ours is waiting
secrets=()
while read -r s; do [ -n "$s" ] && secrets+=("$s"); done < <(
    sed -nE '/^kannel = \{/,/^\};/s/^ *(secret|password) = "(.+)";.*/\2/p' "$conf"
    sed -nE 's/^(admin-password|status-password|smsc-password|password) = "(.+)"$/\2/p' "$dir/kannel.conf"
    cat "$pwfile")
check "secrets: found the Kannel key, sendsms, admin, bind and Redis passwords (${#secrets[@]})" \
    [ "${#secrets[@]}" -ge 6 ]
leaked=0
for s in "${secrets[@]}"; do
    grep -qF -- "$s" "$dir/ps.txt" && leaked=$((leaked + 1))
done
check "secrets: none on any command line (ps -eo args; $leaked found)" [ $leaked = 0 ]
pid_of() { local p; for p in $(cat "$dir/pids"); do [ "$(ps -o comm= -p "$p")" = "$1" ] && echo "$p"; done; }
if [ "$(id -u)" = 0 ]; then
    check "users: remigate runs as the user remigate" \
        eval '[ "$(ps -o user= -p "$(pid_of remigate)")" = remigate ]'
    check "users: Redis runs as the user remigate" \
        eval '[ "$(ps -o user= -p "$(pid_of redis-server)")" = remigate ]'
    check "users: remigate owns its config, key, password file and Redis's dir" \
        eval '[ "$(stat -c %U "$conf" "$dir/crypto.key" "$pwfile" "$dir/redis" | sort -u)" = remigate ]'
fi
check "modes: config, key, Redis password and Kannel config are 0600" \
    eval '[ "$(stat -c %a "$conf" "$dir/crypto.key" "$pwfile" "$dir/kannel.conf" | sort -u)" = 600 ]'
check "modes: Redis's dir is 0700 and none of its files (AOF, RDB) is readable by others" \
    eval '[ "$(stat -c %a "$dir/redis")" = 700 ] && [ -d "$dir/redis/appendonlydir" ] &&
        [ -z "$(find "$dir/redis" -mindepth 1 -perm /077)" ]'

# ---- 4. down -------------------------------------------------------------------

ports=("$(port_of "$rg")" "$(env_get REDIS_PORT)" "$(env_get PG_PORT)" \
    "$(port_of "$sendsms")" "$(port_of "$admin")" "$smsc_port" "$(port_of "$ctl")" \
    "$(sed -nE 's/^smsbox-port = ([0-9]+)$/\1/p' "$dir/kannel.conf")")
procs=$(stack_procs | wc -l)
say "the stack runs $procs processes on ports ${ports[*]}"
check "up: bearerbox, smsbox, the simulator (node), remigate, Redis and PostgreSQL among them" \
    eval '[ "$(comm_of_pids | sort | tr "\n" " ")" = "bearerbox node postgres redis-server remigate smsbox " ]'
check "up: bearerbox and smsbox each run under scripts/supervise" supervised
check "down: scripts/stack down exits 0" run_stack "$dir/down.log" down ||
    show "$dir/down.log"
check "down: no process of the stack left" poll 10 no_procs ||
    ps -o pid=,comm=,args= -p "$(stack_procs | tr '\n' ',' | sed 's/,$//')" | show
check "down: none of its ${#ports[@]} ports listens" poll 10 none_listening "${ports[@]}"
check "down: stack.env removed, status exits non-zero" \
    eval '[ ! -e "$dir/stack.env" ] && ! run_stack "$dir/status2.log" status'

# ---- 5. up --no-kannel -----------------------------------------------------------

t0=$SECONDS
if check "no-kannel: scripts/stack up --no-kannel exits 0 (the data of the first up kept)" \
    run_stack "$dir/up2.log" up --no-kannel; then
    say "scripts/stack up --no-kannel took $((SECONDS - t0)) s"
    rg=$(env_get REMIGATE_URL)
    check "no-kannel: remigate, Redis and PostgreSQL answer" \
        eval '[ "$(code "$rg/healthz")" = 200 ] &&
            [ "$(rcli -u "$(env_get REDIS_URL)" ping)" = PONG ] &&
            [ "$(psql -X -At "$(env_get PG_DSN)" -c "SELECT count(*) FROM schema_migrations")" -ge 1 ]'
    check "no-kannel: no Kannel or simulator address in stack.env" \
        eval '[ -z "$(env_get KANNEL_SENDSMS_URL)$(env_get SMSC_CONTROL_URL)$(env_get SMSC_PORT)$(env_get KANNEL_ADMIN_URL)" ]'
    check "no-kannel: only remigate, Redis and PostgreSQL run" \
        eval '[ "$(comm_of_pids | sort | tr "\n" " ")" = "postgres redis-server remigate " ] &&
            ! stack_procs | xargs -r ps -o comm= -p | grep -qE "^(bearerbox|smsbox|node)$"'
    check "no-kannel: scripts/stack status exits 0" run_stack "$dir/status3.log" status
    r=$(curl -s --max-time 5 --data-urlencode sessionId=s1 \
        --data-urlencode phoneNumber=8801711000902 --data-urlencode text= "$rg/ussd/at")
    check "no-kannel: the first screen over /ussd/at" \
        eval '[ "${r:0:4}" = "CON " ] && grep -qF "ভাষা বেছে নিন" <<<"$r"'
    ports=("$(port_of "$rg")" "$(env_get REDIS_PORT)" "$(env_get PG_PORT)")
    # as after an `up` that crashed before writing its PID file
    mv "$dir/pids" "$dir/pids.lost"
else
    show "$dir/up2.log"
fi
check "no-kannel: scripts/stack down exits 0, without the PID file" \
    run_stack "$dir/down2.log" down
check "no-kannel: down finds the stack's processes all the same: none left, no port listening" \
    eval 'poll 10 no_procs && poll 10 none_listening "${ports[@]}"'

summary
[ $failed -eq 0 ] && [ $passed -gt 0 ]
