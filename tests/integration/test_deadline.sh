#!/usr/bin/env bash
# tests/integration/test_deadline.sh -- what a caller hears when the request
# deadline (limits.request_timeout_ms, 2 s) passes while the confirming
# step's record is being written: never "busy" or "could not save" for a
# record that is, or will be, stored.
#
# The overload the soak found (bench/RESULTS.md: 4 callers told "busy"
# whose queued record was stored) is made on purpose: PostgreSQL is reached
# through tests/faults/stallproxy.py, which is stalled before the confirming
# answer goes, and the daemon's worker is stopped (SIGSTOP) once the step is
# waiting for PostgreSQL -- before its action's own deadline (1 s) moves
# the record to the Redis queue -- and continued (SIGCONT) after the
# request's deadline has passed.  The continued worker then finds every
# timer late at once, as a process the kernel did not schedule for seconds
# does: the deadline fires while the record's write is still in flight
# (the push to the Redis queue not even sent).  Checked: the caller hears
# "Still saving ... an SMS with your reference" (not "busy", which the
# daemon said before); the record reaches the queue and, once PostgreSQL
# answers, is stored; the confirmation SMS with its reference is queued for
# the caller (sms_out); the daemon is the same process.
# (The other late case -- the record stored or queued and only the
# session's save in flight at the deadline: the step's own "saved" screen --
# needs the worker stopped inside a window of a few microseconds, so it is
# not made here.)
# A round whose stop came too late (the worker had already queued the
# record: the machine is loaded) is tried again with a new number, up to 4
# times; never getting there fails.
#
# Starts its own Redis and PostgreSQL.  Prints "deadline: N passed, N
# failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=deadline
. tests/lib/itest.sh
unset SRV_TMP REDIS_PORT REDIS_PID REDIS_URL PG_PORT PG_PID PG_DSN PG_DATA
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pid='' proxy='' stopped=''
SRV_TMP=
srv_tmpdir || exit 1
tmp=$SRV_TMP
cleanup() {
    [ -n "$stopped" ] && kill -CONT "$stopped" 2>/dev/null
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$proxy" ] && kill "$proxy" 2>/dev/null && wait "$proxy" 2>/dev/null
    srv_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

srv_redis_start && srv_pg_start || { bad "Redis and PostgreSQL started"; finish; }
python3 tests/faults/stallproxy.py "$tmp/proxy.port" "$PG_PORT" &
proxy=$!
wait_until 10 test -s "$tmp/proxy.port" || { bad "stall proxy started"; finish; }
pport=$(cat "$tmp/proxy.port")
ok "Redis, PostgreSQL and a stall proxy to it ($pport)"
sql() { srv_psql -At -c "$1"; }
itest_config "host=127.0.0.1 port=$pport dbname=remigate user=$PG_USER"

nobody=$(srv_free_port) # sendsms: nothing listens there
log=$tmp/log
rm -f "$tmp/port"
"$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
    --redis-port "$REDIS_PORT" --set log.level=debug \
    --set limits.request_timeout_ms=2000 \
    --set kannel.secret=deadline-secret \
    --set "kannel.sendsms_url=http://127.0.0.1:$nobody/cgi-bin/sendsms" \
    2>>"$log" &
pid=$!
wait_until 10 test -s "$tmp/port" || { bad "daemon started"; finish; }
base=http://127.0.0.1:$(cat "$tmp/port")
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ]; }
wait_until 10 healthy || { bad "daemon healthy"; finish; }
# the process that runs the steps: the worker, or the daemon itself
worker=$(ps -o pid= --ppid "$pid" | tr -d ' ' | head -n 1)
worker=${worker:-$pid}
ok "daemon started (pid $pid, steps in $worker)"

# step PHONE TEXT: one /ussd/at step, its answer in $tmp/body
step() {
    curl -s -o "$tmp/body" --max-time 10 \
        --data-urlencode "sessionId=s$1" --data-urlencode "serviceCode=*247#" \
        --data-urlencode "phoneNumber=$1" --data-urlencode "text=$2" \
        "$base/ussd/at"
}
# to_confirm PHONE NID: part 1 in English up to its read-back; prints the
# AT text so far
to_confirm() {
    local text='' a
    for a in '' 2 1 1 'Rahima Begum' 2 1990 Farid "$2"; do
        [ -n "$a" ] && text=${text:+$text*}$a
        step "$1" "$text"
        head -c4 "$tmp/body" | grep -q '^CON ' || return 1
    done
    printf '%s' "$text"
}
nlines() { grep -c "$1" "$log"; }
more_lines() { [ "$(nlines "$1")" -gt "$2" ]; }
rows_of() { sql "SELECT count(*) FROM returnees WHERE msisdn = '$1'"; }
stored() { [ "$(rows_of "$1")" = 1 ]; }
queued() { [ "$(srv_rcli LLEN remigate:queue:records)" -ge 1 ]; }

# round NAME PHONE NID: the confirming answer with PostgreSQL stalled and
# the worker stopped while the step waits for it, continued past the
# request's deadline.  Returns 2 when the stop came too late (try again), 1
# when the round could not be set up.
round() {
    local name=$1 phone=$2 text acts slow t0 dls
    text=$(to_confirm "$phone" "$3") ||
        { bad "$name: $phone reached the read-back" "$(head -c 200 "$tmp/body")"; return 1; }
    acts=$(nlines 'step read -> act')
    dls=$(nlines 'deadline reached path="/ussd/at"')
    slow=$(nlines 'postgres too slow')
    kill -USR1 "$proxy"
    t0=$(date +%s%N)
    curl -s -o "$tmp/last" -w '%{http_code}' --max-time 15 \
        --data-urlencode "sessionId=s$phone" --data-urlencode "serviceCode=*247#" \
        --data-urlencode "phoneNumber=$phone" --data-urlencode "text=$text*1" \
        "$base/ussd/at" >"$tmp/last.code" &
    local cpid=$!
    # the step is waiting for PostgreSQL: stop its process
    if ! wait_until 5 more_lines 'step read -> act' "$acts"; then
        kill -USR2 "$proxy"
        wait "$cpid"
        bad "$name: the confirming step ran its action" "$(cat "$tmp/last")"
        return 1
    fi
    # (its query written to the stalled proxy: it is sent on the way)
    pause 0.2
    kill -STOP "$worker"
    stopped=$worker
    if more_lines 'postgres too slow' "$slow"; then
        # too late: the action's deadline has passed already
        kill -CONT "$worker"
        stopped=
        kill -USR2 "$proxy"
        wait "$cpid"
        echo "# $name: the worker was stopped too late; again"
        return 2
    fi
    # past the request's deadline (2 s from the request) and then some
    pause 1
    until [ $(($(date +%s%N) - t0)) -gt 2600000000 ]; do pause 0.1; done
    kill -CONT "$worker"
    stopped=
    wait "$cpid"
    is "$name: the confirming step is answered 200" 200 "$(cat "$tmp/last.code")"
    check "$name: the request's deadline fired" \
        "[ \"\$(nlines 'deadline reached path=\"/ussd/at\"')\" -gt $dls ]"
    body=$(cat "$tmp/last")
    check "$name: the caller is not told busy or not saved ($body)" \
        "! grep -qE 'busy|could not save|lost your answers' '$tmp/last'"
    return 0
}

try() { # NAME NID-BASE: round with up to 4 numbers
    local i rc
    for i in 1 2 3 4; do
        phone=88017${2}00$i
        round "$1" "$phone" "${2}0000$i"
        rc=$?
        [ $rc = 2 ] || return $rc
        kill -USR2 "$proxy"
    done
    bad "$1: the worker could not be stopped before the action's deadline (4 tries)"
    return 1
}

# --- the record's write in flight at the deadline --------------------------
if try queue 11000; then
    check "queue: it says the answers are still being saved, an SMS follows" \
        "grep -q '^END Still saving your answers. You will get an SMS with your reference' '$tmp/last'"
    check "queue: the step logged the deadline in state act" \
        "grep -q 'deadline in state=act: saving reply' '$log'"
    check "queue: the record reached the Redis queue" "wait_until 5 queued"
    kill -USR2 "$proxy"
    check "queue: once PostgreSQL answers, the record is stored" \
        "wait_until 15 stored $phone"
    ref=$(sql "SELECT ref FROM returnees WHERE msisdn = '$phone'")
    check "queue: the confirmation SMS with reference $ref is queued for the caller" \
        "wait_until 10 test \"\$(sql \"SELECT count(*) FROM sms_out WHERE msisdn = '$phone' AND text LIKE '%$ref%'\")\" -ge 1"
fi
kill -USR2 "$proxy"

check "the daemon is still the same process" "kill -0 $pid"
finish
