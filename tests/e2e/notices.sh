#!/usr/bin/env bash
# tests/e2e/notices.sh [BUILD] -- programme notices end to end (issue 11):
# the daemon's dispatcher -> smsbox's sendsms -> bearerbox -> the SMPP
# simulator (tests/e2e/smsc-sim.js), its delivery receipts back through
# bearerbox and smsbox's dlr-url to the daemon; PostgreSQL and Redis real.
#
# Notices are made through the console's API as people would: an officer
# drafts and submits (a programme with each), another admin approves, which
# freezes the audience.  The dispatcher's clock is set by the test
# (REMIGATE_TEST_NOW: 10:00 in Dhaka), never the machine's.
#   1. a notice to 300 verified returnees (200 read Bangla, 100 English),
#      the simulator answering chosen numbers with receipts of stat EXPIRED,
#      UNDELIV, REJECTD, late (3 s, after an ENROUTE), or before its
#      submit_sm_resp (Kannel drops those): each recipient gets exactly one
#      SMS, whole, in their language (the notice's rendered text, UCS-2 or
#      GSM 7-bit) and in the notice's number of parts; each row ends in the
#      state and reason its receipt says (a receipt Kannel dropped: expired
#      'no_report' once its validity + 1 h has passed, here by moving
#      expires_at back); a number that sends STOP (an MO through Kannel)
#      after the first SMS went out gets nothing of the notice; numbers
#      opted out before approval are skipped; the notice's report (GET
#      /api/notices/{id}) adds up to its audience and the notice completes;
#   2. kill -9 of the daemon while it sends a notice to 200, then a restart:
#      every recipient has at most one SMS at the simulator, and delivered +
#      failed + unknown + skipped = audience;
#   3. two daemons dispatching one notice to 200: both claim, each
#      recipient gets at most (and here exactly) one SMS;
#   4. a notice to 100 while the simulator refuses submit_sm above 40 a
#      second (the dispatcher sends 60 parts a second), first with
#      ESME_RTHROTTLED, then with ESME_RMSGQFUL (queue full): Kannel sends
#      the refused parts again, and discards a part after sms-resend-retry
#      (5) refusals with a delivery report 16 -- no part reaches a phone
#      twice, every recipient whose whole SMS arrived is delivered, the
#      others end rejected (final: the sweep past validity + 1 h leaves
#      them), and the report adds up.
# Prints "notices-e2e: N passed, N failed"; exits non-zero when something
# failed.  Everything it started is stopped on exit (by PID); E2E_KEEP=1
# keeps the temporary directory (logs) and prints where it is.
#
# Needs what tests/e2e/run.sh needs (node with tests/e2e/node_modules,
# bearerbox and smsbox, redis-server, PostgreSQL 15, curl, jq, python3).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
build=${1:-${BUILD:-build}}
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/remigate
BEARERBOX=${BEARERBOX:-/usr/sbin/bearerbox}
SMSBOX=${SMSBOX:-/usr/sbin/smsbox}

. "$root/tests/lib/servers.sh"
CHECKS_LABEL=notices-e2e
. "$root/tests/lib/checks.sh"

. "$here/lib.sh" # pids (simulator, Kannel, daemons), cleanup, bail, ...

# ---- prerequisites, servers, database -----------------------------------------

e2e_prereqs python3
[ -x "$bin" ] || bail "$bin is missing (make)"
e2e_servers

pw='Padma-River-Dawn-7'
officer() { printf '%s\n' "$pw" | "$bin" officer add "$@" -c "$conf" >>"$tmp/officers.log" 2>&1; }
officer --username boss --role admin && officer --username boss2 --role admin &&
    officer --username rahim --role officer --district BD-13 --district BD-15 --district BD-02 --district BD-04 ||
    bail "officers added" "$tmp/officers.log"

# Returnees: 300 in BD-13 (notice 1), 200 in BD-15 (notice 2), 200 in BD-02
# (notice 3), 100 in BD-04 (notice 4); every third one reads English.  Besides them in BD-13: 10
# pending (never in an audience) and 5 verified who opted out before.
num() { printf '88017%08d' "$1"; }
sql "INSERT INTO returnees (msisdn, sex, birth_year, district, skills, lang, status)
     SELECT '88017' || lpad(g::text, 8, '0'), CASE WHEN g % 2 = 0 THEN 'f' ELSE 'm' END,
            1985 + g % 15,
            CASE WHEN g <= 300 THEN 'BD-13' WHEN g <= 500 THEN 'BD-15' WHEN g <= 700 THEN 'BD-02'
                 WHEN g <= 715 THEN 'BD-13' ELSE 'BD-04' END,
            '{welder}', CASE WHEN g % 3 = 0 THEN 'en' ELSE 'bn' END,
            CASE WHEN g BETWEEN 701 AND 710 THEN 'pending' ELSE 'verified' END
       FROM generate_series(1, 815) g" >/dev/null
sql "INSERT INTO sms_optout SELECT msisdn, true FROM returnees
     WHERE msisdn BETWEEN '$(num 711)' AND '$(num 715)'" >/dev/null
[ "$(sql "SELECT count(*) FROM returnees WHERE status = 'verified'")" = 805 ] ||
    bail "returnees inserted" "$tmp/psql.err"
ok "Redis and PostgreSQL up, migrated; 3 officers and 815 returnees"

# ---- ports, simulator, daemon, Kannel --------------------------------------------

e2e_kannel_env 1 RG2_PORT # Kannel resends a refused part after 1 s
e2e_sim_start

# 10:00 in Dhaka today: inside the send window whatever the machine's clock
test_now=$(date -u -d "$(date -u +%F) 10:00 +0600" +%s)
# start_daemon NAME PORT: one daemon (one worker) dispatching; its PID in
# rg_pid_NAME.  Delivery reports go to the first daemon's port.
# The daemons run on the default timeouts: a keep-alive connection waits
# listen.keepalive_ms (120 s) for its next request.  Before that key, the
# daemon closed idle keep-alive connections after request_timeout_ms (2 s)
# just as smsbox took them from its pool for the next request; smsbox then
# logged "Couldn't fetch" and dropped that delivery report
# (http-request-retry = 0): 3, 12 and 24 reports were lost so in three
# runs.  The test checks that no report is lost while a daemon runs.
start_daemon()
{
    local name=$1 port=$2 p
    REMIGATE_TEST_NOW=$test_now "$bin" -c "$conf" --workers 1 --port "$port" \
        --redis-port "$REDIS_PORT" "${rg_kannel_flags[@]}" \
        --set console.admin_totp=optional \
        --set notices.rate=60 --set notices.poll_ms=100 \
        --set notices.lost_after_s=10 \
        </dev/null >>"$tmp/remigate-$name.log" 2>&1 &
    p=$!
    pids+=("$p")
    printf -v "rg_pid_$name" %s "$p"
    up() { alive "$p" && [ "$(code "http://127.0.0.1:$port/healthz")" = 200 ]; }
    poll 20 up
}
start_daemon a "$RG_PORT" || bail "remigate did not answer /healthz" "$tmp/remigate-a.log"

"$root/scripts/kannel-config" "$tmp/kannel.conf" >"$tmp/render.log" 2>&1 ||
    bail "scripts/kannel-config failed" "$tmp/render.log"
"$BEARERBOX" -v 2 "$tmp/kannel.conf" >"$tmp/bearerbox.stderr" 2>&1 &
pids+=("$!")
bb_up() { [ "$(code "http://127.0.0.1:$ADMIN_PORT/status.txt?password=$ADMIN_PASS")" = 200 ]; }
poll 30 bb_up || bail "bearerbox did not start" "$tmp/bearerbox.stderr" "$RUN_DIR/bearerbox.log"
"$SMSBOX" -v 2 "$tmp/kannel.conf" >"$tmp/smsbox.stderr" 2>&1 &
pids+=("$!")
sb_up()
{
    curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/status.txt?password=$ADMIN_PASS" |
        grep -qE '^[[:space:]]*smsbox:.*\(on-line' &&
        [ "$(code "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms")" != 000 ]
}
poll 30 sb_up || bail "smsbox did not start" "$tmp/smsbox.stderr" "$RUN_DIR/smsbox.log"
binds_up() { curl -s --max-time 5 "$ctl/health" | jq -e '.sms_binds >= 1 and .ussd_binds >= 1' >/dev/null 2>&1; }
poll 30 binds_up || bail "bearerbox did not bind" "$RUN_DIR/bearerbox.log" "$tmp/sim.log"
ok "simulator, bearerbox, smsbox and remigate up; both binds bound"

# ---- the console's API -------------------------------------------------------------

declare -A tok
# api METHOD PATH [BODY] USER: the status; the body in $tmp/body
api()
{
    local args=(-s -o "$tmp/body" -w '%{http_code}' --max-time 10 -X "$1")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
    args+=(-b "$tmp/jar-$4" -c "$tmp/jar-$4" -H "X-CSRF-Token: ${tok[$4]:-}")
    curl "${args[@]}" "$base$2"
}
j() { jq -r "$1" "$tmp/body"; }
for u in boss boss2 rahim; do
    st=$(api POST /api/login "{\"username\":\"$u\",\"password\":\"$pw\"}" "$u")
    tok[$u]=$(j '.csrf // empty')
    [ "$st" = 200 ] && [ -n "${tok[$u]}" ] || bail "login $u ($st)" "$tmp/remigate-a.log"
done

# draft TAG CODE DISTRICT: the officer composes and submits a notice for
# DISTRICT whose texts start with TAG; prints its id
draft()
{
    local body id
    body=$(jq -cn --arg tag "$1" --arg code "$2" --arg d "$3" '{
        programme: {kind: "training", title_bn: ("প্রশিক্ষণ " + $tag),
                    title_en: ("Course " + $tag), provider: "TTC Dhaka",
                    deadline: "2027-01-31", phone: "01711000000", reply_code: $code},
        text_bn: ($tag + " টিটিসি ঢাকায় ওয়েল্ডিং প্রশিক্ষণ। আগ্রহী হলে {code} লিখে পাঠান, শেষ তারিখ {deadline}। ফোন {phone}"),
        text_en: ($tag + " Welding course at TTC Dhaka. Reply {code} by {deadline}. Call {phone}"),
        audience: {districts: [$d]}}')
    [ "$(api POST /api/notices "$body" rahim)" = 201 ] || return 1
    id=$(j .id)
    [ "$(api POST "/api/notices/$id/submit" "" rahim)" = 200 ] || return 1
    echo "$id"
}
N1=$(draft T1 J12 BD-13) && N2=$(draft T2 K7 BD-15) && N3=$(draft T3 L3 BD-02) &&
    N4=$(draft T4 M4 BD-04) || bail "notices drafted and submitted by the officer" "$tmp/body"
ok "four notices drafted and submitted by the officer ($N1 $N2 $N3 $N4)"
check "the author's own approval is refused (four eyes)" \
    [ "$(api POST "/api/notices/$N1/approve" "" rahim)" = 403 ]
# approve ID: another admin approves; prints the number queued
approve()
{
    [ "$(api POST "/api/notices/$1/approve" '{"vetting_ref":"BTRC-E2E-1"}' boss2)" = 200 ] || return 1
    j .queued
}

# ---- the simulator's record ---------------------------------------------------------

# notice_mts TAG: every submit_sm on the SMS bind whose text part belongs
# to a notice TAG message, as the simulator recorded them (JSON lines).
# The check script groups the parts of each concatenated SMS by its UDH
# reference, as a handset joins them.
dump_mts() { curl -s --max-time 30 "$ctl/mt" >"$tmp/mt.json"; }
# outbox N: "msisdn|lang|state|reason" of notice N's rows
outbox() { sql "SELECT msisdn || '|' || lang || '|' || state || '|' || coalesce(reason, '') FROM notice_outbox WHERE notice_id = $1 ORDER BY msisdn"; }

# analyse N TAG: compares the simulator's SMS to notice N's rows and its
# rendered texts; prints lines "key value" (see below)
analyse()
{
    local n=$1
    dump_mts
    api GET "/api/notices/$n" "" boss >/dev/null
    cp "$tmp/body" "$tmp/notice-$n.json"
    outbox "$n" >"$tmp/outbox-$n"
    python3 - "$tmp/mt.json" "$tmp/notice-$n.json" "$tmp/outbox-$n" <<'EOF'
import json, sys, collections
mts = json.load(open(sys.argv[1]))
notice = json.load(open(sys.argv[2]))
rows = {}
for line in open(sys.argv[3]):
    m, lang, state, reason = line.rstrip('\n').split('|')
    rows[m] = (lang, state, reason)
want = {'bn': (notice['sms_bn'], int(notice['parts_bn']), 8),
        'en': (notice['sms_en'], int(notice['parts_en']), 0)}
tag = notice['sms_bn'].split(' ')[0]
# group the parts a number got into messages (UDH 8-bit or 16-bit
# concatenation reference; a message without UDH stands alone)
msgs = collections.defaultdict(dict)   # msisdn -> key -> {seq: part}
for r in mts:
    if r.get('role') != 'sms':
        continue
    m = r['destination_addr'].lstrip('+')
    if m not in rows:
        continue
    u = r.get('udh_hex') or ''
    if u[2:6] == '0003':
        key, total, seq = 'r' + u[6:8], int(u[8:10], 16), int(u[10:12], 16)
    elif u[2:6] == '0804':
        key, total, seq = 'r' + u[6:10], int(u[10:12], 16), int(u[12:14], 16)
    else:
        key, total, seq = 'n%d' % r['n'], 1, 1
    g = msgs[m].setdefault(key, {'total': total, 'parts': []})
    g['parts'].append((seq, r['text'], r['data_coding']))
once = more = none = wrong = partial = 0
bad = []
partial_list = []
for m, (lang, state, reason) in rows.items():
    got = msgs.get(m, {})
    # only this notice's messages: the first part starts with its tag
    mine = []
    for g in got.values():
        ps = sorted(g['parts'])
        text = ''.join(p[1] for p in ps)
        if text.startswith(tag + ' '):
            mine.append((g['total'], ps, text))
    if not mine:
        none += 1
        continue
    seqs = [p[0] for p in mine[0][1]]
    if len(mine) > 1 or len(seqs) != len(set(seqs)):
        more += 1
        bad.append('%s: %d messages, parts %s' % (m, len(mine), [len(x[1]) for x in mine]))
        continue
    if len(seqs) < mine[0][0]:
        partial += 1
        partial_list.append(m)
        continue
    once += 1
    total, ps, text = mine[0]
    wt, wparts, wdcs = want[lang]
    if text != wt or total != wparts or any(p[2] != wdcs for p in ps) or \
            [p[0] for p in ps] != list(range(1, total + 1)):
        wrong += 1
        bad.append('%s (%s): %d parts dcs %s: %r' % (m, lang, total, [p[2] for p in ps], text[:60]))
print('once', once)
print('more', more)
print('none', none)
print('wrong', wrong)
print('partial', partial)
print('partial_list', ' '.join(partial_list))
print('parts', want['bn'][1], want['en'][1])
for b in bad[:5]:
    print('bad', b)
EOF
}
# field KEY FILE: the value of "KEY value" in an analyse output
field() { sed -n "s/^$1 //p" "$2"; }
open_rows() { sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $1 AND state IN ($2)"; }
none_open() { [ "$(open_rows "$1" "'queued','claimed'")" = 0 ]; }
settled() { [ "$(open_rows "$1" "'queued','claimed','accepted','submitted','buffered'")" = 0 ]; }
# report N: "delivered failed unknown skipped audience" from the API's
# counts (failed: every other final state -- failed at Kannel, rejected,
# expired, undelivered, cancelled)
report()
{
    api GET "/api/notices/$1" "" boss >/dev/null
    jq -r '.counts as $c | [($c.delivered // 0),
        (($c.failed // 0) + ($c.rejected // 0) + ($c.expired // 0) + ($c.undelivered // 0) + ($c.cancelled // 0)),
        ($c.unknown // 0), ($c.skipped // 0), .audience_size] | map(tostring) | join(" ")' "$tmp/body"
}

# ---- 1. a notice to 300: languages, parts, receipts, STOP, throttling -----------------

# the receipts chosen per number (g: the returnee's number in BD-13)
declare -A expect
rules=()
rule() { # rule STATE:REASON JSON G...: receipts for those numbers
    local want=$1 js=$2 g list=()
    shift 2
    for g in "$@"; do list+=("$(num "$g")"); expect[$(num "$g")]=$want; done
    rules+=("$(jq -cn --argjson r "$js" --args '$r + {msisdn: $ARGS.positional}' "${list[@]}")")
}
rule expired:EXPIRED '{"stat":"EXPIRED","err":"0FE"}' 7 57 107 157
rule undelivered:UNDELIV '{"stat":"UNDELIV","err":"00B"}' 11 61 111 161
rule undelivered:REJECTD '{"stat":"REJECTD"}' 13 63 113 163
rule expired:no_report '{"before_resp":true}' 17 67 117 167
rule delivered:DELIVRD '{"stat":"DELIVRD","delay_ms":3000,"pre":["ENROUTE"]}' 19 69 119 169
r=$(curl -s --max-time 5 -w '\n%{http_code}' -H 'Content-Type: application/json' \
    -d "$(printf '%s\n' "${rules[@]}" | jq -cs '{rules: .}')" "$ctl/receipts")
check "simulator: receipt rules taken (5 rules, 20 numbers)" \
    eval '[ "$(tail -n 1 <<<"$r")" = 200 ] && [ "$(head -n 1 <<<"$r" | jq ".rules | length")" = 5 ]'
check "simulator: a rule with an unknown stat is refused (400)" \
    eval '[ "$(curl -s -o /dev/null -w "%{http_code}" -H "Content-Type: application/json" \
        -d "{\"rules\":[{\"msisdn\":\"1\",\"stat\":\"LOST\"}]}" "$ctl/receipts")" = 400 ]'
check "simulator: ... and the rules stay" \
    eval '[ "$(curl -s -H "Content-Type: application/json" -d "$(printf "%s\n" "${rules[@]}" | jq -cs "{rules: .}")" "$ctl/receipts" | jq ".rules | length")" = 5 ]'
q1=$(approve "$N1") || bail "notice 1 approved by the other admin" "$tmp/body"
check "notice 1: approval froze 300 recipients" [ "$q1" = 300 ]
check "notice 1: the 5 numbers opted out before are skipped, the pending never in it" \
    [ "$(sql "SELECT string_agg(DISTINCT state || ':' || reason, ',') || ' ' || count(*)
             FROM notice_outbox WHERE notice_id = $N1 AND state = 'skipped'")" = "skipped:opted_out 5" ]
# the number that sends STOP: the last in the queue, so not yet claimed
stopper=$(sql "SELECT msisdn FROM notice_outbox WHERE notice_id = $N1 AND state = 'queued' ORDER BY id DESC LIMIT 1")
[ -z "${expect[$stopper]:-}" ] || bail "the STOP number $stopper has a receipt rule"
first_out() { [ "$(curl -s "$ctl/counts" | jq '.submit_sm.sms // 0')" -ge 20 ]; }
poll 30 first_out || bail "notice 1: no SMS at the simulator within 30 s" "$tmp/remigate-a.log"
n_stop=$(curl -s "$ctl/pdus" | jq '[.[].n] | max')
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    -d "{\"msisdn\":\"$stopper\",\"text\":\"STOP\"}" "$ctl/sms")
check "STOP from $stopper through Kannel while notice 1 sends (deliver_sm acked)" [ "$st" = 200 ]
stop_answered() { curl -s "$ctl/mt?msisdn=$stopper&since=$n_stop" | jq -e 'length > 0' >/dev/null; }
opted_out() { [ "$(sql "SELECT opted_out FROM sms_optout WHERE msisdn = '$stopper'")" = t ]; }
check "... and recorded in sms_optout (5 s)" poll 5 opted_out
check "notice 1: every row claimed and answered (60 s)" poll 60 none_open "$N1"
early=$(for g in 17 67 117 167; do printf "'%s'," "$(num $g)"; done | sed 's/,$//')
check "notice 1: every receipt in, except those Kannel dropped (60 s)" \
    poll 60 eval '[ "$(open_rows "$N1" "'"'accepted','buffered'"'")" = 0 ] &&
        [ "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N1
                  AND state = '"'submitted'"' AND msisdn NOT IN ($early)")" = 0 ]'
check "the STOP was confirmed by SMS" poll 30 stop_answered
counts=$(curl -s "$ctl/counts")
say "simulator: $counts"
check "receipts sent before their submit_sm_resp (8 parts of 4 numbers)" \
    [ "$(jq '.receipts_early' <<<"$counts")" -ge 4 ]
# receipts Kannel could not match: their rows wait at 'submitted' until
# validity + 1 h; the test moves that moment into the past
check "the 4 numbers whose receipt came before submit_sm_resp are still 'submitted'" \
    [ "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N1 AND state = 'submitted'
             AND msisdn IN ($early)")" = 4 ]
sql "UPDATE notice_outbox SET expires_at = now() - interval '1 second'
     WHERE notice_id = $N1 AND state = 'submitted' AND msisdn IN ($early)" >/dev/null
check "... and expire (no_report) once validity + 1 h is past (the sweep, 15 s)" poll 15 settled "$N1"

analyse "$N1" >"$tmp/a1"
sed -n 's/^bad /#   /p' "$tmp/a1"
check "notice 1: 299 recipients got exactly one SMS, whole ($(field once "$tmp/a1") once, $(field more "$tmp/a1") more than once)" \
    eval '[ "$(field once "$tmp/a1")" = 299 ] && [ "$(field more "$tmp/a1")" = 0 ]'
check "notice 1: each in their language, coding and the notice's parts (Bangla $(field parts "$tmp/a1" | cut -d" " -f1), English $(field parts "$tmp/a1" | cut -d" " -f2); $(field wrong "$tmp/a1") wrong)" \
    eval '[ "$(field wrong "$tmp/a1")" = 0 ] && [ "$(field parts "$tmp/a1")" = "2 1" ]'
check "notice 1: nothing for the 5 opted out nor for the number that sent STOP ($(field none "$tmp/a1") without)" \
    [ "$(field none "$tmp/a1")" = 6 ]
check "the STOP number's row: skipped, opted_out (the claim saw the STOP)" \
    [ "$(sql "SELECT state || ':' || reason FROM notice_outbox WHERE notice_id = $N1 AND msisdn = '$stopper'")" = skipped:opted_out ]
check "... and no SMS of the notice reached it after its STOP" \
    eval '! curl -s "$ctl/mt?msisdn=$stopper&since=$n_stop" | jq -r ".[].text" | grep -q "^T1 "'
wrong_state=
while IFS='|' read -r m _ state reason; do
    [ "$m" = "$stopper" ] && continue
    w=${expect[$m]:-delivered:DELIVRD}
    case $m in "$(num 711)" | "$(num 712)" | "$(num 713)" | "$(num 714)" | "$(num 715)") w=skipped:opted_out ;; esac
    [ "$state:$reason" = "$w" ] || wrong_state="$wrong_state $m=$state:$reason(want $w)"
done <"$tmp/outbox-$N1"
check "notice 1: each row ends as its receipt says: delivered, expired EXPIRED, undelivered UNDELIV / REJECTD, expired no_report, skipped${wrong_state:+ (${wrong_state:0:300})}" \
    [ -z "$wrong_state" ]
read -r dl fl un sk au < <(report "$N1")
say "notice 1 report: delivered $dl, failed $fl, unknown $un, skipped $sk, audience $au"
check "notice 1 report: 283 delivered, 16 failed or expired, 0 unknown, 6 skipped (= audience $au)" \
    eval '[ "$dl $fl $un $sk" = "283 16 0 6" ] && [ $((dl + fl + un + sk)) = "$au" ]'
check "notice 1 report: failures by reason" \
    [ "$(jq -c '.reasons | {e: .["expired:EXPIRED"], n: .["expired:no_report"], u: .["undelivered:UNDELIV"], r: .["undelivered:REJECTD"]}' "$tmp/body")" = '{"e":4,"n":4,"u":4,"r":4}' ]
done1() { [ "$(sql "SELECT state FROM notices WHERE id = $N1")" = completed ]; }
check "notice 1 completed" poll 15 done1
# The daemon's counters (GET /metrics, read once) against what the
# database and the simulator saw: daemon a has sent notice 1 and the STOP's
# confirmation.
curl -s --max-time 5 -o "$tmp/metrics" "http://127.0.0.1:$RG_PORT/metrics"
metric() { sed -n "s/^$1 //p" "$tmp/metrics"; }
# metrics_sum ERE: the sum of the series that match (products of two labels
# are shown only where something was counted)
metrics_sum() { awk -v re="$1" '$0 ~ re { n += $2 } END { print n + 0 }' "$tmp/metrics"; }
sent1=$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N1 AND state <> 'skipped'")
m_acc=$(metric 'remigate_sms_out_total{kind="notice",outcome="accepted"}')
m_else=$(metrics_sum '^remigate_sms_out_total[{]kind="notice",outcome="(not_sent|refused|maybe)"')
check "metrics: notice SMS accepted by Kannel = notice 1's rows sent ($m_acc, $sent1), none otherwise ($m_else)" \
    eval '[ "$m_acc" = "$sent1" ] && [ "$m_else" = 0 ]'
counts=$(curl -s "$ctl/counts")
m_dl=$(metric 'remigate_delivery_reports_total{type="delivered"}')
m_un=$(metric 'remigate_delivery_reports_total{type="undelivered"}')
m_sub=$(metric 'remigate_delivery_reports_total{type="submitted"}')
s_dl=$(jq '(.receipts.DELIVRD // 0) - .receipts_early' <<<"$counts")
s_un=$(jq '[.receipts.EXPIRED, .receipts.UNDELIV, .receipts.REJECTD] | add' <<<"$counts")
m_all=$(metrics_sum '^remigate_sms_out_total[{].*outcome="accepted"')
say "metrics: delivery reports delivered $m_dl undelivered $m_un submitted $m_sub; simulator: DELIVRD not early $s_dl, failed $s_un; SMS accepted by Kannel $m_all"
check "metrics: delivery reports 'delivered' = the simulator's DELIVRD receipts Kannel could match ($m_dl, $s_dl)" \
    [ "$m_dl" = "$s_dl" ]
check "metrics: 'undelivered' = its EXPIRED, UNDELIV and REJECTD ($m_un, $s_un)" [ "$m_un" = "$s_un" ]
# one report of each kind a message, however many parts (bearerbox splits)
check "metrics: 'submitted' = the SMS Kannel accepted, the notice's and the STOP's reply ($m_sub, $m_all)" \
    eval '[ "$m_sub" = "$m_all" ] && [ "$m_all" = $((sent1 + 1)) ]'
m_stop=$(metric 'remigate_notice_optouts_total{action="stop"}')
m_start=$(metric 'remigate_notice_optouts_total{action="start"}')
check "metrics: one opt-out (the STOP), no opt-in ($m_stop, $m_start)" \
    eval '[ "$m_stop" = 1 ] && [ "$m_start" = 0 ]'
curl -s --max-time 5 -H 'Content-Type: application/json' -d '{}' "$ctl/receipts" >/dev/null

# ---- 2. kill -9 of the daemon while it sends -------------------------------------------

q2=$(approve "$N2") || bail "notice 2 approved" "$tmp/body"
check "notice 2: approval froze 200 recipients" [ "$q2" = 200 ]
some_sent() {
    [ "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N2 AND state <> 'queued'")" -ge 50 ]
}
poll 30 some_sent || bail "notice 2: nothing sent" "$tmp/remigate-a.log"
lost_fetch() { grep -c "Couldn't fetch" "$RUN_DIR/smsbox.log"; }
check "no delivery report lost by smsbox while the daemon ran ($(lost_fetch))" [ "$(lost_fetch)" = 0 ]
victims=$(family "$rg_pid_a")
exec 3>&2 2>/dev/null
# shellcheck disable=SC2086
kill -KILL $victims
wait "$rg_pid_a"
exec 2>&3 3>&-
mid=$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N2 AND state NOT IN ('queued', 'claimed')")
say "killed with $mid of 200 answered by Kannel, $(open_rows "$N2" "'claimed'") claimed and not answered"
check "kill -9: the daemon is gone mid-notice" eval '! alive "$rg_pid_a" && [ "$mid" -lt 200 ]'
start_daemon a "$RG_PORT" || bail "remigate restarted" "$tmp/remigate-a.log"
lost_at_kill=$(lost_fetch)
check "kill -9: after the restart every row is claimed and answered (60 s)" poll 60 none_open "$N2"
# Receipts that smsbox could not hand over while the daemon was down are
# lost (http-request-retry = 0): those rows wait for validity + 1 h, which
# the test moves into the past once the others are in.
poll 20 settled "$N2"
lost=$(open_rows "$N2" "'accepted','submitted','buffered'")
say "kill -9: $lost rows still wait for a receipt (lost while the daemon was down)"
sql "UPDATE notice_outbox SET expires_at = now() - interval '1 second' WHERE notice_id = $N2
     AND state IN ('accepted', 'submitted', 'buffered')" >/dev/null
check "kill -9: every row final once validity + 1 h has passed (sweep, 15 s)" poll 15 settled "$N2"
analyse "$N2" >"$tmp/a2"
sed -n 's/^bad /#   /p' "$tmp/a2"
check "kill -9: every recipient has at most one SMS at the simulator ($(field more "$tmp/a2") more than once)" \
    [ "$(field more "$tmp/a2")" = 0 ]
read -r dl fl un sk au < <(report "$N2")
say "notice 2 report: delivered $dl, failed $fl, unknown $un, skipped $sk, audience $au"
check "kill -9: delivered + failed + unknown + skipped = audience ($au)" \
    eval '[ $((dl + fl + un + sk)) = "$au" ] && [ "$au" = 200 ]'
check "kill -9: every delivered recipient got its SMS once, whole and right ($(field once "$tmp/a2") once, $(field wrong "$tmp/a2") wrong)" \
    eval '[ "$(field once "$tmp/a2")" -ge "$dl" ] && [ "$(field wrong "$tmp/a2")" = 0 ]'
check "kill -9: unknown only for rows claimed when it died ($un)" \
    [ "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N2 AND state = 'unknown' AND reason <> 'lost'")" = 0 ]

# ---- 3. two daemons on one notice ----------------------------------------------------------

start_daemon b "$RG2_PORT" || bail "a second daemon started" "$tmp/remigate-b.log"
q3=$(approve "$N3") || bail "notice 3 approved" "$tmp/body"
check "notice 3: approval froze 200 recipients" [ "$q3" = 200 ]
check "two daemons: every row claimed and answered (60 s)" poll 60 none_open "$N3"
check "two daemons: every receipt in (20 s)" poll 20 settled "$N3"
check "two daemons: both claimed rows" \
    [ "$(sql "SELECT count(DISTINCT claimed_by) FROM notice_outbox WHERE notice_id = $N3")" = 2 ]
analyse "$N3" >"$tmp/a3"
sed -n 's/^bad /#   /p' "$tmp/a3"
check "two daemons: each of the 200 got exactly one SMS, right ($(field once "$tmp/a3") once, $(field more "$tmp/a3") more, $(field wrong "$tmp/a3") wrong)" \
    eval '[ "$(field once "$tmp/a3") $(field more "$tmp/a3") $(field wrong "$tmp/a3")" = "200 0 0" ]'
read -r dl fl un sk au < <(report "$N3")
check "two daemons: report delivered $dl = audience $au" [ "$dl $au" = "200 200" ]
check "no delivery report lost by smsbox after the restart ($(($(lost_fetch) - lost_at_kill)); $lost_at_kill while the daemon was down)" \
    [ "$(lost_fetch)" = "$lost_at_kill" ]

# ---- 4. an SMSC that throttles, then says its queue is full ---------------------------

# shellcheck disable=SC2046
stop_pids $(family "$rg_pid_b")
curl -s --max-time 5 -H 'Content-Type: application/json' \
    -d '{"throttle_rate": 40, "throttle_role": "sms", "throttle_status": "throttled"}' "$ctl/faults" >/dev/null
c0=$(curl -s "$ctl/counts")
q4=$(approve "$N4") || bail "notice 4 approved" "$tmp/body"
check "notice 4: approval froze 100 recipients" [ "$q4" = 100 ]
# half the rows answered and some refusals seen: from now on, queue full
half_answered() {
    [ "$(open_rows "$N4" "'queued','claimed'")" -le 50 ] &&
        [ "$(curl -s "$ctl/counts" | jq '.throttled.sms // 0')" -gt "$(jq '.throttled.sms // 0' <<<"$c0")" ]
}
poll 30 half_answered
curl -s --max-time 5 -H 'Content-Type: application/json' -d '{"throttle_status": "qfull"}' "$ctl/faults" >/dev/null
check "notice 4: every row claimed and answered (60 s)" poll 60 none_open "$N4"
# Kannel sends refused parts again every second, 5 times at most
check "notice 4: Kannel's last resends and the receipts in (60 s)" \
    poll 60 eval '[ "$(open_rows "$N4" "'"'accepted','submitted','buffered'"'")" = 0 ]'
curl -s --max-time 5 -H 'Content-Type: application/json' -d '{"throttle_rate": 0, "throttle_status": "throttled"}' "$ctl/faults" >/dev/null
c1=$(curl -s "$ctl/counts")
th=$(($(jq '.throttled.sms // 0' <<<"$c1") - $(jq '.throttled.sms // 0' <<<"$c0")))
qf=$(($(jq '.queue_full.sms // 0' <<<"$c1") - $(jq '.queue_full.sms // 0' <<<"$c0")))
check "notice 4: the simulator refused submit_sm with ESME_RTHROTTLED ($th) and ESME_RMSGQFUL ($qf)" \
    eval '[ "$th" -gt 0 ] && [ "$qf" -gt 0 ]'
discarded=$(grep -c "Maximum retries for message exceeded" "$RUN_DIR/smsc-sms.log")
rejected=$(open_rows "$N4" "'rejected'")
say "notice 4: Kannel discarded $discarded parts after 5 refusals; $rejected rows rejected (delivery report 16)"
sql "UPDATE notice_outbox SET expires_at = now() - interval '1 second' WHERE notice_id = $N4
     AND state = 'rejected'" >/dev/null
check "notice 4: every row final once validity + 1 h has passed (sweep, 15 s)" poll 15 settled "$N4"
sleep 6 # a sweep (every 5 s) has run since
check "notice 4: rejected rows stay rejected after the sweep ($rejected)" \
    eval '[ "$(open_rows "$N4" "'"'rejected'"'")" = "$rejected" ]'
analyse "$N4" >"$tmp/a4"
sed -n 's/^bad /#   /p' "$tmp/a4"
check "notice 4: no part reached a phone twice ($(field more "$tmp/a4") numbers with a part twice or two messages)" \
    [ "$(field more "$tmp/a4")" = 0 ]
whole=$(field once "$tmp/a4")
part=$(field partial "$tmp/a4")
say "notice 4: $whole whole SMS, $part incomplete (a part discarded), $(field none "$tmp/a4") none"
check "notice 4: each whole SMS right ($(field wrong "$tmp/a4") wrong)" [ "$(field wrong "$tmp/a4")" = 0 ]
# recipients whose whole SMS reached the simulator: delivered
dl=$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N4 AND state = 'delivered'")
pl=$(field partial_list "$tmp/a4")
if [ -n "$pl" ]; then
    say "notice 4: rows of the incomplete ones: $(sql "SELECT string_agg(state || ':' || coalesce(reason, ''), ' ')
        FROM notice_outbox WHERE notice_id = $N4 AND msisdn IN ($(for m in $pl; do printf "'%s'," "$m"; done | sed 's/,$//'))")"
fi
check "notice 4: the recipients whose whole SMS arrived are delivered ($whole whole, $dl delivered, $part incomplete)" \
    eval '[ "$dl" -ge "$whole" ] && [ "$dl" -le $((whole + part)) ]'
read -r dl fl un sk au < <(report "$N4")
say "notice 4 report: delivered $dl, failed $fl, unknown $un, skipped $sk, audience $au"
check "notice 4 report: delivered + failed + unknown + skipped = audience ($au)" \
    eval '[ $((dl + fl + un + sk)) = "$au" ] && [ "$au" = 100 ]'

# ---- end -------------------------------------------------------------------------------------

for n in a b; do
    if grep -qE 'runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer' "$tmp/remigate-$n.log" 2>/dev/null; then
        not_ok "sanitizer report in remigate-$n.log"
        grep -m 5 -E 'runtime error:|Sanitizer' "$tmp/remigate-$n.log" | sed 's/^/#   /'
    fi
done
if [ $failed -gt 0 ]; then
    show_tail "$tmp/remigate-a.log" "$RUN_DIR/bearerbox.log" "$RUN_DIR/smsbox.log"
fi
[ "${E2E_KEEP:-0}" = 1 ] && say "kept $tmp"
summary
[ $failed -eq 0 ] && [ $passed -gt 0 ]
