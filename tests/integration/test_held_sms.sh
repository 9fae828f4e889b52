#!/usr/bin/env bash
# tests/integration/test_held_sms.sh -- decision SMS held for the undo
# window (005_review.sql) and sent by the daemon once their time has come.
#
# Decisions are made straight in SQL as the console's role (the same
# remigate_decide() the console calls); the daemon's worker 0 claims due
# rows and posts them to a stand-in for Kannel's sendsms
# (tests/lib/fake_sendsms.js) that records what it got.  A decision held 0 s
# leaves at the next look, in the returnee's language and coding; one
# still in its window does not; an undone one never does; a row is claimed
# (hold_state 'sending', committed) before it is posted, so two daemons
# looking at once send each of 40 due rows exactly once.
#
# Uses the Redis and PostgreSQL of tests/run, or starts its own.  Prints
# "held-sms: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=held-sms
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pids=
own=0
tmp=$(mktemp -d /tmp/remigate-held.XXXXXX) || exit 1
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ $own = 1 ] && srv_cleanup
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

itest_suite_servers
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$PG_DSN" -c "$1" 2>&1; }
# officer OFFICER_ID DISTRICTS SQL: as the console's role, scoped
officer() {
    printf '%s\n' "BEGIN; SET LOCAL ROLE remigate_console;" \
        "SELECT set_config('remigate.role', 'officer', true) \\g /dev/null" \
        "SELECT set_config('remigate.districts', '$2', true) \\g /dev/null" \
        "SELECT set_config('remigate.officer', '$1', true) \\g /dev/null" \
        "$3" "COMMIT;" | psql -X -q -At -v ON_ERROR_STOP=1 "$PG_DSN" 2>&1
}

itest_config "$PG_DSN"

node tests/lib/fake_sendsms.js "$tmp/sendsms.port" "$tmp/sent" &
pids="$pids $!"
wait_until 10 test -s "$tmp/sendsms.port" || { bad "fake sendsms started"; finish; }
sendsms=http://127.0.0.1:$(cat "$tmp/sendsms.port")/cgi-bin/sendsms
touch "$tmp/sent"
sent() { wc -l <"$tmp/sent" | tr -d ' '; }

# start: one more daemon (worker 0 of its own), looking every 100 ms
start() {
    local pf=$tmp/port.$RANDOM
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$pf" \
        --redis-port "$REDIS_PORT" --set "kannel.sendsms_url=$sendsms" \
        --set review.sms_poll_ms=100 --set kannel.secret=held-sms-secret \
        2>>"$tmp/log" &
    pids="$pids $!"
    wait_until 10 test -s "$pf"
}

sql "INSERT INTO returnees (msisdn, name, district, ref, lang, channel, status)
     VALUES ('8801700000001', 'A', 'BD-15', 'REF0000001', 'bn', 'ussd', 'pending'),
            ('8801700000002', 'B', 'BD-15', 'REF0000002', 'en', 'sms', 'pending'),
            ('8801700000003', 'C', 'BD-15', 'REF0000003', 'bn', 'ussd', 'pending'),
            ('8801700000004', 'D', 'BD-15', 'REF0000004', 'bn', 'ussd', 'pending'),
            ('8801700000005', 'E', 'BD-15', 'REF0000005', 'bn', 'ussd', 'pending')" >/dev/null
# decide REF ACTION REASON HOLD_S
decide() {
    officer 7 BD-15 "SELECT outcome FROM remigate_decide('$1', (SELECT version FROM returnees WHERE ref = '$1'), '$2', $3, NULL, gen_random_uuid(), 'যাচাই $1', 2, 'verified $1', 0, $4);"
}
is "verify a Bangla record, held 0 s" ok "$(decide REF0000001 verify NULL 0)"
is "needs info on an English record, held 0 s" ok "$(decide REF0000002 needs_info "'documents'" 0)"
is "reject, held 60 s" ok "$(decide REF0000003 reject "'test'" 60)"
is "verify, held 60 s" ok "$(decide REF0000004 verify NULL 60)"
is "four rows held" 4 "$(sql "SELECT count(*) FROM sms_out WHERE hold_state = 'held'")"

start || { bad "daemon started"; finish; }
ok "daemon started"
wait_until 10 test "$(sent)" -ge 2
is "the two due SMS reached sendsms" 2 "$(sent)"
is "  Bangla: UCS-2, to the returnee" "+8801700000001	2	যাচাই REF0000001" \
    "$(grep '^+8801700000001' "$tmp/sent" | cut -f1,2,4)"
is "  English: GSM 7-bit" "+8801700000002	0	verified REF0000002" \
    "$(grep '^+8801700000002' "$tmp/sent" | cut -f1,2,4)"
wait_until 5 test "$(sql "SELECT count(*) FROM sms_out WHERE hold_state = 'sending' AND accepted_at IS NOT NULL")" = 2
is "  their rows: claimed, one try, accepted by Kannel" "sending|1|t|8801700000001
sending|1|t|8801700000002" \
    "$(sql "SELECT hold_state, tries, accepted_at IS NOT NULL, msisdn FROM sms_out WHERE send_after IS NOT NULL AND hold_state <> 'held' ORDER BY msisdn")"
is "the two in their window are still held" 2 "$(sql "SELECT count(*) FROM sms_out WHERE hold_state = 'held'")"

is "undo one within its window" ok "$(officer 7 BD-15 "SELECT outcome FROM remigate_undo('REF0000003');")"
# both windows end now; then one more decision due at once: once it is
# sent, the daemon has looked after the undone one's time too
sql "UPDATE sms_out SET send_after = now() - interval '1 second' WHERE send_after IS NOT NULL AND hold_state IN ('held', 'cancelled')" >/dev/null
is "verify another, held 0 s" ok "$(decide REF0000005 verify NULL 0)"
wait_until 10 test "$(sent)" -ge 4
pause 0.5
is "after the windows: the verified one and the new one sent, the undone one not" "+8801700000004 +8801700000005" \
    "$(tail -n +3 "$tmp/sent" | cut -f1 | sort | paste -sd' ')"
is "  the undone one stays cancelled, never tried" "cancelled|0" \
    "$(sql "SELECT hold_state, tries FROM sms_out WHERE msisdn = '8801700000003' AND send_after IS NOT NULL")"
is "  the undone record is pending again" pending "$(sql "SELECT status FROM returnees WHERE ref = 'REF0000003'")"

# two daemons, 40 rows due at once: each sent exactly once
before=$(sent)
sql "INSERT INTO sms_out (id, msisdn, kind, text, coding, hold_state, send_after)
     SELECT gen_random_uuid(), '88017100000' || lpad(g::text, 2, '0'), 'confirmation',
            'race ' || g, 0, 'held', now() + interval '2 seconds'
     FROM generate_series(1, 40) g" >/dev/null
start || bad "second daemon started"
wait_until 20 test "$(sent)" -ge $((before + 40))
pause 1
is "two daemons: 40 due rows, 40 posts" 40 $(($(sent) - before))
is "  each text once (posts/distinct)" 40/40 \
    "$(grep -c $'\trace ' "$tmp/sent")/$(grep $'\trace ' "$tmp/sent" | cut -f4 | sort -u | wc -l | tr -d ' ')"
is "  every row claimed and tried once" "40|1" \
    "$(sql "SELECT count(*), max(tries) FROM sms_out WHERE text LIKE 'race %' AND hold_state = 'sending'")"
finish
