#!/usr/bin/env bash
# tests/integration/test_pg_ha.sh -- the daemon on a PostgreSQL primary with
# a synchronous streaming standby (tests/lib/servers.sh), through a
# failover, with dashboards read from the standby.
#
# postgres.dsn names both servers, the standby FIRST, with
# target_session_attrs=read-write: every pool (the records', the SMS
# one's, the console's) must pick the primary, or its writes fail on the
# standby.  postgres.read_dsn names the standby alone.  Checked:
#   - a registration over /ussd/at is stored (records pool), an SMS answer
#     and a STOP are recorded (SMS pool), an officer logs in (console pool:
#     a session row), all on the primary;
#   - GET /api/stats and /api/stats/decision-days read the standby: with
#     its replay paused, rows added on the primary are not counted and
#     "lag_s" is at least the seconds since the last replayed commit; once
#     replay resumes, the counts catch up and "lag_s" is 0, and WAL received
#     but not yet replayed is waited for (a moment) instead of being told as
#     the age of the last replay;
#   - a standby whose WAL receiver has stopped (SIGSTOP: it still says it
#     streams, and has replayed all it received) while rows are committed
#     on the primary: "lag_s" is not 0 -- the console passes the primary's
#     WAL position from the request's session check (032) -- and 0 again
#     once the receiver goes on;
#   - the dashboard page in a real browser (tests/browser/lag.mjs:
#     playwright-core and Debian's chromium) says how far behind: "up to N
#     s behind" while replay is paused, "up to date" once it resumed;
#   - the primary is killed -9 and the standby promoted: an officer's
#     request right after the promotion is answered 200 (the console pool
#     is still reconnecting: it waits for it, console.db_wait_ms, instead
#     of 503); so are a delivery report (200 and recorded, not 503) and an
#     SMS HELP, whose reply gets its sms_out row (the SMS pool waits,
#     postgres.wait_ms, instead of sending it unrecorded); the same daemon
#     (same PID) stores the next registration, SMS and login on the new
#     primary, and /api/stats, now read from a primary, says "lag_s": null
#     (and the page has no such line).
#
# Starts its own Redis and PostgreSQL pair.  Prints
# "pg_ha: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=pg_ha
. tests/lib/itest.sh
# its own servers, not the ones tests/run may have exported
unset SRV_TMP REDIS_PORT REDIS_PID REDIS_URL PG_PORT PG_PID PG_DSN PG_DATA
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pid=
export SRV_PG_SYNC=1
itest_servers redis pg standby
ok "Redis, a PostgreSQL primary ($PG_PORT) and a synchronous standby ($PG2_PORT)"
sql2() { "$SRV_PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$PG2_DSN" -c "$1"; }
ha_dsn="host=127.0.0.1,127.0.0.1 port=$PG2_PORT,$PG_PORT dbname=remigate user=$PG_USER target_session_attrs=read-write"

itest_config "$ha_dsn"
is "migrate through the two-host DSN ran on the primary" \
    t "$(sql "SELECT count(*) > 0 FROM schema_migrations")"
pw='Padma-River-Dawn-7'
printf '%s\n' "$pw" | officer add --username boss --role admin ||
    { bad "officer added" "$(cat "$tmp/out")"; finish; }

secret=pg-ha-secret
nobody=$(srv_free_port) # sendsms: nothing listens there
itest_daemon --set "kannel.secret=$secret" \
    --set "kannel.sendsms_url=http://127.0.0.1:$nobody/cgi-bin/sendsms" \
    --set "postgres.read_dsn=$PG2_DSN" \
    --set console.admin_totp=optional --set "console.web_dir=$PWD/web" \
    --set console.stats_cache_ms=0

api() {
    local args=(-s -o "$tmp/body" -w '%{http_code}' --max-time 20 -X "$1"
        -b "$tmp/jar" -c "$tmp/jar" -H "X-CSRF-Token: ${csrf:-}")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
    curl "${args[@]}" "$base$2"
}
j() { jq -r "$1" "$tmp/body"; }
login() {
    rm -f "$tmp/jar"
    csrf=
    [ "$(api POST /api/login "{\"username\":\"boss\",\"password\":\"$pw\"}")" = 200 ] &&
        csrf=$(j '.csrf // empty') && [ -n "$csrf" ]
}
rows_of() { sql "SELECT count(*) FROM returnees WHERE msisdn = '$1'"; }
sms_rows() { sql "SELECT count(*) FROM sms_out WHERE msisdn = '$1'"; }
optout_of() { sql "SELECT count(*) FROM sms_optout WHERE msisdn = '$1'"; }
stored() { [ "$(rows_of "$1")" = 1 ]; }
sms_answered() {
    [ "$(itest_mo "$1" HELP)" = 200 ] && wait_until 1 sms_stored "$1"
}
sms_stored() { [ "$(sms_rows "$1")" -ge 1 ]; }
opted_out() { [ "$(optout_of "$1")" = 1 ]; }

# every pool, on the primary: the records', the SMS one's, the console's
every_pool() { # LABEL PHONE NID
    local out ref
    out=$(itest_register "$2" "$3")
    ref=$(printf '%s' "$out" | grep -oE '\b[0-9A-Z]{10}\b' | head -n 1)
    # "saved" once the pool is connected, "received" (the Redis queue)
    # while it is still reconnecting just after a failover
    check "$1: a registration over /ussd/at is saved or received (ref $ref)" \
        "printf '%s' \"\$out\" | grep -qE '^END (Part 1 of 3 saved|Received)' && [ -n '$ref' ]"
    check "$1: its row is on the primary (records pool)" "wait_until 10 stored $2"
    is "$1: with the reference the caller was told" "$ref" \
        "$(sql "SELECT ref FROM returnees WHERE msisdn = '$2'")"
    # (an answer sent while the SMS pool is reconnecting waits for it,
    # postgres.wait_ms: checked right after the failover below)
    check "$1: an SMS's answer is recorded in sms_out within 10 s (SMS pool)" \
        "wait_until 10 sms_answered $2"
    is "$1: STOP is accepted" 200 "$(itest_mo "$2" STOP)"
    check "$1: the opt-out is recorded (SMS pool)" "wait_until 10 opted_out $2"
    # (a request that finds the console pool reconnecting waits for it up
    # to console.db_wait_ms; checked right after the failover below)
    check "$1: an officer logs in within 10 s (console pool: a session row)" \
        "wait_until 10 login"
}
every_pool "before the failover" 8801811000001 1811000001

# page WANT: the dashboard in chromium; WANT is a regexp its lag line must
# match, or "none" for no line
browser=
if [ -d tests/browser/node_modules/playwright-core ] ||
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) \
        >"$tmp/npm.log" 2>&1; then
    browser=1
fi
page() {
    local out
    if [ -z "$browser" ]; then
        bad "the dashboard page: no playwright-core (npm ci in tests/browser failed)" \
            "$(tail -n 3 "$tmp/npm.log")"
        return
    fi
    timeout 90 node tests/browser/lag.mjs "$base" boss "$pw" >"$tmp/page" 2>&1
    out=$(head -c 300 "$tmp/page")
    if [ "$1" = none ]; then
        check "the dashboard page shows no replica line ($out)" \
            "jq -e '.lag == null' '$tmp/page' >/dev/null 2>&1"
    else
        check "the dashboard page says how far behind ($out)" \
            "jq -e --arg w '$1' '.lag // \"\" | test(\$w)' '$tmp/page' >/dev/null 2>&1"
    fi
}

# --- the dashboards read the standby --------------------------------------
is "GET /api/stats as admin" 200 "$(api GET '/api/stats?dims=channel')"
total() { j '[.cells[].n] | add // 0'; }
n0=$(sql "SELECT count(*) FROM returnees")
is "the counts are the primary's ($n0)" "$n0" "$(total)"
# (the SMS pool may still be writing the failed sendsms tries of the
# section above: the standby is then a moment behind, and says so)
caught_up() { [ "$(api GET "$1")" = 200 ] && [ "$(j '.lag_s')" = 0 ]; }
check "lag_s is 0 once the standby has replayed everything (within 10 s)" \
    "wait_until 10 caught_up '/api/stats?dims=channel'"
is "decision-days as admin" 200 "$(api GET /api/stats/decision-days)"
check "decision-days says lag_s too (within 10 s)" \
    "wait_until 10 caught_up /api/stats/decision-days"

# the standby stops replaying; it still receives and flushes the WAL, which
# is all a synchronous commit waits for
sql2 "SELECT pg_wal_replay_pause()" >/dev/null
# (a pause is asked for, then taken between two records)
replay_paused() { [ "$(sql2 'SELECT pg_get_wal_replay_pause_state()')" = paused ]; }
wait_until 10 replay_paused || bad "the standby's replay paused"
sql "INSERT INTO returnees (msisdn, district, sex, lang, channel, status, ref)
     SELECT '88019' || lpad(i::text, 8, '0'), 'BD-13', 'f', 'en', 'sms',
            'pending', 'H' || lpad(i::text, 9, '0')
     FROM generate_series(1, 7) i" >/dev/null ||
    bad "seven rows added on the primary"
last_replay=$(sql2 "SELECT extract(epoch FROM pg_last_xact_replay_timestamp())")
pause 2.5
is "GET /api/stats while replay is paused" 200 "$(api GET '/api/stats?dims=channel')"
is "the counts are the standby's: the 7 new rows are not in them" "$n0" "$(total)"
lag=$(j '.lag_s')
# the age of the last commit the standby replayed, as the test sees it
age=$(awk -v t="$last_replay" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - t }')
check "lag_s says how far behind: $lag s (the last replayed commit is $age s old)" \
    "awk -v l='$lag' -v a='$age' 'BEGIN { exit !(l + 0 >= 2.4 && l <= a + 0.2) }'"
page 'may be up to ([2-9]|[1-9][0-9]+) s behind'
# asked while paused, allowed to wait 10 s (the console's 0.1 s, longer):
# the seven rows the standby has received are waited for, replay resumed
# 1 s later, and then the answer is 0 -- not the age of the last replay
# (3 s and more here) at once (029)
"$SRV_PG_BIN/psql" -X -q -At "$PG2_DSN" \
    -c "SELECT remigate_read_lag(10), round(extract(epoch FROM clock_timestamp() - statement_timestamp()))" \
    >"$tmp/lag.wait" 2>&1 &
lag_job=$!
lag_asked() {
    [ "$(sql2 "SELECT count(*) FROM pg_stat_activity
               WHERE query LIKE 'SELECT remigate_read_lag(10)%'")" = 1 ]
}
wait_until 10 lag_asked || bad "the lag asked on the standby"
pause 1
sql2 "SELECT pg_wal_replay_resume()" >/dev/null
wait $lag_job
check "while paused, lag waits for what was received: 0 once replay resumed, 1-9 s later ($(cat "$tmp/lag.wait"))" \
    "awk -F'|' '\$1 == \"0\" && \$2 >= 1 && \$2 <= 9 { ok = 1 } END { exit !ok }' '$tmp/lag.wait'"
caught() {
    [ "$(api GET '/api/stats?dims=channel')" = 200 ] &&
        [ "$(total)" = $((n0 + 7)) ] && [ "$(j '.lag_s')" = 0 ]
}
check "replay resumed: the counts catch up ($((n0 + 7))) and lag_s is 0 again" \
    "wait_until 10 caught"
page 'numbers are up to date'

# --- a standby whose WAL receiver is behind the primary (032) -------------
# The function: a primary position the standby has not received is not
# "0" (it waits its 0.1 s, then says the age of its last replay); one it
# has replayed is.
ahead=$(sql "SELECT pg_current_wal_lsn() + 100000000")
lag=$(sql2 "SELECT remigate_read_lag(0.1, '$ahead')")
check "a primary position the standby has not received: not 0 ($lag)" \
    "awk -v l='$lag' 'BEGIN { exit !(l + 0 > 0) }'"
is "a position it has replayed: 0" 0 \
    "$(sql2 "SELECT remigate_read_lag(0.1, pg_last_wal_replay_lsn())")"
# The daemon: the standby's WAL receiver stopped (SIGSTOP) still says it
# streams, and has replayed all it received; rows committed on the primary
# since (synchronous_commit local: nothing waits for the standby) are not
# there.  The session was just used (its last_seen_at fresh), so the next
# requests write nothing on the primary that would wait for the standby.
api GET '/api/stats?dims=channel' >/dev/null
wr=$(sql2 "SELECT pid FROM pg_stat_wal_receiver")
n1=$(sql "SELECT count(*) FROM returnees")
if [ -n "$wr" ] && kill -STOP "$wr"; then
    sql "SET synchronous_commit = local; INSERT INTO returnees (msisdn, district, sex, lang, channel, status, ref)
         SELECT '88019' || lpad((100 + i)::text, 8, '0'), 'BD-13', 'm', 'en', 'sms',
                'pending', 'J' || lpad(i::text, 9, '0')
         FROM generate_series(1, 3) i" >/dev/null ||
        bad "three rows added on the primary"
    pause 2.5
    is "GET /api/stats, the standby's receiver stopped" 200 "$(api GET '/api/stats?dims=channel')"
    lag=$(j '.lag_s')
    is "the counts are the standby's: the 3 new rows are not in them" "$n1" "$(total)"
    check "lag_s is not 0 though the standby replayed all it received: $lag s" \
        "awk -v l='$lag' 'BEGIN { exit !(l + 0 >= 2) }'"
    kill -CONT "$wr"
    caught3() {
        [ "$(api GET '/api/stats?dims=channel')" = 200 ] &&
            [ "$(total)" = $((n1 + 3)) ] && [ "$(j '.lag_s')" = 0 ]
    }
    check "the receiver going again: the counts catch up ($((n1 + 3))) and lag_s is 0" \
        "wait_until 10 caught3"
else
    bad "the standby's WAL receiver stopped (pid '$wr')"
fi

# --- failover: the primary killed, the standby promoted -------------------
# a message of ours whose delivery report comes right after the failover
sms_id=$(sql "SELECT id FROM sms_out WHERE dlr_state IS NULL ORDER BY id LIMIT 1")
srv_pg_kill9 2>/dev/null
pause 1
srv_pg_promote || { bad "standby promoted"; finish; }
srv_pg_swap
ok "the primary killed -9, the standby ($PG_PORT) promoted"
# an officer's request at once: the console pool lost its connections with
# the old primary and its attempts failed until the promotion; the request
# waits for it to connect again (console.db_wait_ms, 1500) instead of
# answering 503 "try again"
t0=$(date +%s%N)
# at the same moment: a delivery report and an SMS (the SMS pool)
(itest_dlr "$sms_id" 1 >"$tmp/code.dlr") &
dlr_job=$!
(itest_mo 8801811000003 HELP >"$tmp/code.help") &
help_job=$!
code=$(api GET '/api/records?status=pending')
ms=$((($(date +%s%N) - t0) / 1000000))
wait $dlr_job $help_job
is "a delivery report right after the failover is answered 200, not 503" \
    200 "$(cat "$tmp/code.dlr")"
is "... and recorded on the new primary" 1 \
    "$(sql "SELECT dlr_state FROM sms_out WHERE id = '$sms_id'")"
is "an SMS right after the failover is answered" 200 "$(cat "$tmp/code.help")"
check "... and its reply has its sms_out row (one HELP, not asked again)" \
    "wait_until 10 sms_stored 8801811000003"
is "an officer's request right after the failover is answered, not 503 ($ms ms)" 200 "$code"
check "... within the request deadline (${ms} ms < 2000)" "[ $ms -lt 2000 ]"
check "... with the records of the new primary" "[ \"\$(j '.items | length')\" -ge 1 ]"
every_pool "after the failover" 8801811000002 1811000002
check "the same daemon process ($pid)" "kill -0 $pid"
is "GET /api/stats after the failover" 200 "$(api GET '/api/stats?dims=channel')"
is "the counts are the new primary's" "$(sql 'SELECT count(*) FROM returnees')" "$(total)"
is "lag_s is null: read from a primary" null "$(j '.lag_s')"
page none
is "no number twice" 0 "$(sql 'SELECT count(*) - count(DISTINCT msisdn) FROM returnees')"

itest_stop
finish
