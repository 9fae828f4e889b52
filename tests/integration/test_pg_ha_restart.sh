#!/usr/bin/env bash
# tests/integration/test_pg_ha_restart.sh -- what PostgreSQL restarting
# (pg_ctl stop -m fast, started again on the same port) costs the daemon's
# own writes: the SMS pool's (delivery reports, STOP, the rows of replies),
# the held decision SMS, the notices dispatcher and the records.  Each of
# them waits for the pool to connect again (postgres.wait_ms) instead of
# failing at once.  Checked, on one daemon (the same process throughout):
#   1. PostgreSQL down for about 1.5 s while a delivery report, an SMS
#      HELP, a STOP and a registration arrive: the report is answered 200
#      and recorded (was 503 at once), the reply to HELP reaches sendsms
#      once and has its sms_out row (it went out unrecorded), STOP is
#      recorded, the registration is saved or received and stored once;
#   2. held decision SMS whose sendsms answers come while PostgreSQL is
#      down: each posted once, and each row says accepted, one try (the
#      outcome was lost: tries 0, never accepted);
#   3. a notice to 40 numbers dispatching across a restart: every number
#      gets it at most once and, since every one could be sent, exactly
#      once; every recipient ends 'accepted', none 'unknown' (the answers
#      that came while PostgreSQL was down were dropped: those rows went
#      'unknown' after notices.lost_after_s, and a 'requeue' would have
#      been a recipient lost).
# Sendsms is tests/lib/fake_sendsms.py.  Starts its own Redis and
# PostgreSQL.  Prints "pg_ha_restart: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=pg_ha_restart
. tests/lib/itest.sh
# its own servers, not the ones tests/run may have exported
unset SRV_TMP REDIS_PORT REDIS_PID REDIS_URL PG_PORT PG_PID PG_DSN PG_DATA
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pids=
pid=
itest_servers redis pg
itest_config "$PG_DSN"
ok "Redis and PostgreSQL ($PG_PORT) started, migrated"

echo 202 >"$tmp/mode"
touch "$tmp/sent"
python3 tests/lib/fake_sendsms.py "$tmp/kport" "$tmp/sent" "$tmp/mode" &
pids="$pids $!"
wait_until 10 test -s "$tmp/kport" || { bad "fake sendsms started"; finish; }

secret=pg-restart-secret
itest_http_s=15 # curl waits longer than the daemon's deadline (6 s)
# Dhaka 11:00, inside the notices' send window
now=$(date -u -d "2026-12-03 11:00 +0600" +%s)
# A request's deadline of 6 s (so the SMS pool's is 4.5 s: a report can
# wait the whole restart out); postgres.wait_ms its default, 3000.
REMIGATE_TEST_NOW=$now itest_daemon \
    --set "kannel.sendsms_url=http://127.0.0.1:$(cat "$tmp/kport")/cgi-bin/sendsms" \
    --set "kannel.dlr_url=http://127.0.0.1:9" --set "kannel.secret=$secret" \
    --set limits.request_timeout_ms=6000 --set postgres.timeout_ms=5000 \
    --set review.sms_poll_ms=100 --set notices.poll_ms=100 \
    --set notices.rate=10 --set notices.lost_after_s=10

# posts NUMBER [TEXT-PREFIX]: requests the fake sendsms got for NUMBER
posts() {
    python3 - "$tmp/sent" "$1" "${2:-}" <<'EOF'
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["to"].lstrip("+") == sys.argv[2] and r["text"].startswith(sys.argv[3]):
        n += 1
print(n)
EOF
}
# per_number PREFIX: "POSTS NUMBERS MAX": posts whose text starts with
# PREFIX, the numbers they went to, the most any number got
per_number() {
    python3 - "$tmp/sent" "$1" <<'EOF'
import json, sys, collections
c = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["text"].startswith(sys.argv[2]):
        c[r["to"]] += 1
print(sum(c.values()), len(c), max(c.values()) if c else 0)
EOF
}
pg_down() { # stop PostgreSQL (-m fast), as pg_ctl restart does first
    srv_pg_stop
    ! pg_alive
}
pg_up() { srv_pg_start_again && pg_alive; }
pg_alive() { [ "$(sql 'SELECT 1' 2>/dev/null)" = 1 ]; }
sms_rows() { sql "SELECT count(*) FROM sms_out WHERE msisdn = '$1'"; }

# the SMS pool is up: one reply recorded
[ "$(itest_mo 8801911000009 HELP)" = 200 ] &&
    wait_until 10 test "$(sms_rows 8801911000009)" -ge 1 ||
    bad "a reply recorded before the restart"

# --- 1. requests while PostgreSQL is down --------------------------------
u1=$(sql "INSERT INTO sms_out (id, msisdn, kind, text, coding)
          VALUES (gen_random_uuid(), '8801911000001', 'reply', 'r', 0)
          RETURNING id")
check "PostgreSQL stopped (-m fast)" pg_down
t0=$(date +%s%N)
(itest_dlr "$u1" 1 >"$tmp/c.dlr") &
dj=$!
(itest_mo 8801911000002 HELP >"$tmp/c.help") &
hj=$!
(itest_mo 8801911000003 STOP >"$tmp/c.stop") &
sj=$!
(itest_register 8801911000004 1911000004 >"$tmp/c.reg") &
rj=$!
pause 1.5
check "PostgreSQL started again on the same port" pg_up
ms=$((($(date +%s%N) - t0) / 1000000))
wait $dj $hj $sj $rj
echo "# PostgreSQL was down about $ms ms"
is "a delivery report during the restart is answered 200 (not 503)" 200 "$(cat "$tmp/c.dlr")"
is "... and recorded: delivered" 1 "$(sql "SELECT dlr_state FROM sms_out WHERE id = '$u1'")"
is "HELP during the restart is answered" 200 "$(cat "$tmp/c.help")"
check "... its reply reaches sendsms (within 10 s)" \
    "wait_until 10 test \"\$(posts 8801911000002)\" -ge 1"
pause 1
n=$(posts 8801911000002)
is "... once, each message with its sms_out row, accepted (it went out unrecorded)" \
    "$n|$n" "$(sql "SELECT count(*), count(accepted_at) FROM sms_out WHERE msisdn = '8801911000002'")"
is "STOP during the restart is answered" 200 "$(cat "$tmp/c.stop")"
check "... and the opt-out is recorded" \
    "wait_until 10 test \"\$(sql \"SELECT count(*) FROM sms_optout WHERE msisdn = '8801911000003' AND opted_out\")\" = 1"
check "a registration during the restart is saved or received ($(head -c 60 "$tmp/c.reg"))" \
    "grep -qE '^END (Part 1 of 3 saved|Received)' '$tmp/c.reg'"
check "... and stored once (the Redis queue carried it)" \
    "wait_until 10 test \"\$(sql \"SELECT count(*) FROM returnees WHERE msisdn = '8801911000004'\")\" = 1"

# --- 2. held SMS answered while PostgreSQL is down ------------------------
# sendsms answers 2 s after each post: the claims commit, the posts go
# out, then PostgreSQL stops and Kannel's answers come while it is down
echo slow:2 >"$tmp/mode"
sql "INSERT INTO sms_out (id, msisdn, kind, text, coding, hold_state, send_after)
     SELECT gen_random_uuid(), '88019120000' || g, 'confirmation',
            'held ' || g, 0, 'held', now()
     FROM generate_series(1, 3) g" >/dev/null
held_posted() { [ "$(per_number 'held ' | cut -d' ' -f1)" -ge 3 ]; }
check "three due held SMS posted to sendsms" "wait_until 10 held_posted"
check "PostgreSQL stopped while their answers are on the way" pg_down
echo 202 >"$tmp/mode"
pause 2.5
check "PostgreSQL started again" pg_up
accepted_all() {
    [ "$(sql "SELECT count(*) FROM sms_out WHERE text LIKE 'held %'
              AND hold_state = 'sending' AND tries = 1 AND accepted_at IS NOT NULL")" = 3 ]
}
check "each held row: claimed, one try, accepted -- its outcome kept (within 10 s)" \
    "wait_until 10 accepted_all"
pause 1
is "each held SMS posted once (posts, numbers, most to one number)" "3 3 1" \
    "$(per_number 'held ')"

# --- 3. a notice dispatching across a restart ------------------------------
sql "INSERT INTO returnees (msisdn, sex, birth_year, district, lang, status)
     SELECT '88018' || lpad(g::text, 8, '0'), 'm', 1990, 'BD-13', 'en', 'verified'
       FROM generate_series(1, 40) g" >/dev/null
sql "INSERT INTO officers (username, role, pw_hash) VALUES
     ('author', 'officer', 'x'), ('boss', 'admin', 'x')" >/dev/null
prog=$(sql "INSERT INTO programmes (kind, title_bn, reply_code)
            VALUES ('training', 'ওয়েল্ডিং', 'J12') RETURNING id")
en="PGR Welding course: reply J12"$'\n'"Reply STOP to stop"
nid=$(sql "INSERT INTO notices (programme_id, text_bn, text_en, sms_bn, sms_en,
           parts_bn, parts_en, ucs2_en, author_id, approver_id, state, approved_at)
           VALUES ($prog, 'x', 'x', \$\$$en\$\$, \$\$$en\$\$, 1, 1, false,
                   (SELECT id FROM officers WHERE username = 'author'),
                   (SELECT id FROM officers WHERE username = 'boss'),
                   'submitted', now()) RETURNING id")
sql "INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, district, lang)
     SELECT $nid, id, msisdn, district, 'en' FROM returnees
      WHERE msisdn LIKE '88018%'" >/dev/null
sql "UPDATE notices SET state = 'approved', audience = (SELECT count(*)
     FROM notice_outbox WHERE notice_id = $nid) WHERE id = $nid" >/dev/null
is "a notice to 40 numbers approved" 40 "$(sql "SELECT audience FROM notices WHERE id = $nid")"
some_sent() { [ "$(per_number PGR | cut -d' ' -f1)" -ge 8 ]; }
check "it is dispatching (8 sent, at 10 a second)" "wait_until 20 some_sent"
check "PostgreSQL stopped mid-notice" pg_down
pause 1
check "PostgreSQL started again" pg_up
settled() {
    [ "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $nid
              AND state IN ('queued', 'claimed')")" = 0 ]
}
check "every recipient settled (none queued or claimed, within 40 s)" "wait_until 40 settled"
read -r n_posts n_numbers n_max <<<"$(per_number PGR)"
is "no number got the notice twice" 1 "$n_max"
is "every number got it: none lost that could be sent" "40 40" "$n_posts $n_numbers"
is "every recipient 'accepted', none 'unknown'" "accepted=40" \
    "$(sql "SELECT string_agg(state || '=' || n, ',' ORDER BY state) FROM
            (SELECT state, count(*) n FROM notice_outbox WHERE notice_id = $nid
             GROUP BY state) x")"

check "the same daemon process ($pid)" "kill -0 $pid"
itest_stop
finish
