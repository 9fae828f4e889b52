#!/usr/bin/env bash
# tests/e2e/run.sh [BUILD] -- remigate end to end, behind the real Kannel
# 1.4.5, against the SMSC simulator: smsc-sim.js -> bearerbox -> smsbox ->
# BUILD/remigate (default build/) -> back to the simulator.
#
# Starts, on free loopback ports, in one temporary directory: Redis and
# PostgreSQL (tests/lib/servers.sh), `remigate migrate` and `keygen`,
# smsc-sim.js, remigate, bearerbox and smsbox (config rendered by
# scripts/kannel-config); each one has a deadline, and a part that does not
# come up is named with the tail of its log.  Then:
#   1. part 1 of a Bangla registration over USSD: every submit_sm has
#      service_type USSD, ussd_service_op 2 (17 on the last),
#      its_session_info echoed with the end bit only on the last,
#      data_coding 8, at most 80 UCS-2 characters (a screen over 70 in one
#      piece), no UDHI; then a pending row in PostgreSQL with the
#      reference of the last screen; then the confirmation SMS on the SMS
#      bind (data_coding 8, with the reference) and its delivery report
#      back in sms_out;
#   2. the same in English: data_coding 0 after the language choice, at
#      most 182 characters a screen;
#   3. deliver_sm duplicated by the SMSC (mid-dialogue and on the final
#      answer) changes nothing: one row, right answers, one confirmation;
#   4. SMS keyword REG: the questions come back as SMS through sendsms;
#      STOP and চালু (START) are recorded in sms_optout and answered in the
#      session's language; HELP; STATUS and অবস্থা after an officer's
#      decision, in the language of the record;
#   5. a whole registration by SMS keywords through Kannel, its three
#      parts each started by the keyword, in English (REG) and in Bangla
#      (নিবন্ধন, answers in Bangla digits): each answer gets the next
#      question (concatenated parts joined), each read-back has its part's
#      answers, Bangla parts are data_coding 8 with UCS-2 text; one
#      pending row with channel sms, the answers and every part done, one
#      submission a part, part 1's last SMS with the reference; then SKILL
#      and দক্ষতা change the skills on those rows;
#  5b. one number's parts across channels: part 1 over USSD, then
#      নিবন্ধন by SMS asks part 2 (not consent again), part 2 by SMS, and
#      the next dial offers part 3 of 3; one row, one submission a part;
#   6. a dialogue dropped after the name: a new dial (new session number)
#      goes straight back to the next question, going on ends in one row
#      with the name given before the drop; 00 goes to the main menu;
#   7. remigate SIGKILLed mid-dialogue and started again: no half row,
#      the caller's next answer in the same dialogue carries on, a new dial
#      goes back to where it stopped; then SIGKILL at five moments
#      around the confirming answer: a returnee row and its submission are
#      both there or both absent, and every caller ends (dialling again
#      when needed) with exactly one of each;
#   8. bearerbox and smsbox restarted mid-dialogue: both binds come back,
#      the caller's next answer goes on, and a later registration lands;
#   9. the SMSC misbehaving: a reply refused with ESME_RTHROTTLED reaches
#      the caller when bearerbox resends it, a 1.2 s late submit_sm_resp
#      only delays the screen, both binds dropped mid-dialogue come back
#      and the caller's next answer goes on; sendsms refuses a wrong
#      password;
#  9b. the simulator ends every USSD dialogue at 90 s of simulated typing
#      time, as an operator does: a Bangla returnee registers across as
#      many dials as that takes, no question is asked again once answered,
#      and there is one pending row with all three parts and one reference;
#  10. Kannel stopped: its access log has the MO, MT and DLR lines with
#      their lengths, and no log of Kannel's holds any message text (the
#      names, ID numbers, screens and references of the dialogues above);
#  11. once all of the above is stopped, tests/e2e/stack.sh (scripts/stack
#      up, its stack.env, status, a dial, down, up --no-kannel), counted in
#      the same total;
#  12. then tests/e2e/notices.sh (programme notices through Kannel: receipts
#      by stat, throttling, STOP mid-notice, kill -9, two daemons), counted
#      in the same total.
# Prints "e2e: N passed, N failed"; exits non-zero when something failed.
# Everything it started is stopped on exit (by PID); E2E_KEEP=1 keeps the
# temporary directory (logs) and prints where it is.
#
# Needs: node, npm (once, for tests/e2e/node_modules), bearerbox and smsbox
# (scripts/deps), redis-server, PostgreSQL 15, curl, jq.
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
CHECKS_LABEL=e2e
. "$root/tests/lib/checks.sh"

. "$here/lib.sh" # pids (simulator, Kannel, remigate), cleanup, bail, ...
rg_pid=

# ---- prerequisites -------------------------------------------------------

for c in node curl jq redis-server; do
    command -v "$c" >/dev/null 2>&1 || bail "$c is not installed (scripts/deps)"
done
for b in "$BEARERBOX" "$SMSBOX"; do
    [ -x "$b" ] || bail "$b is missing (scripts/deps installs kannel)"
done
if [ ! -x "$bin" ]; then
    say "building ${bin#"$root"/}"
    make --no-print-directory SAN="${SAN:-0}" "${bin#"$root"/}" \
        >/tmp/remigate-e2e-build.$$.log 2>&1
    [ -x "$bin" ] || {
        tail -n 20 /tmp/remigate-e2e-build.$$.log | sed 's/^/#   /'
        rm -f /tmp/remigate-e2e-build.$$.log
        bail "$bin is missing and make did not build it"
    }
    rm -f /tmp/remigate-e2e-build.$$.log
fi
if [ ! -d "$here/node_modules/smpp" ]; then
    say "installing tests/e2e/node_modules (npm ci)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
        bail "npm ci failed in tests/e2e"
fi

srv_tmpdir || bail "no temporary directory"
tmp=$SRV_TMP
say "work directory $tmp"
# One binary for the whole run, even if the tree is rebuilt meanwhile (the
# restart in test 7 must run the program that migrated the database).
cp "$bin" "$tmp/remigate" || bail "cannot copy $bin"
bin=$tmp/remigate

srv_redis_start 2>"$tmp/redis.err" ||
    bail "Redis did not start" "$tmp/redis.err" "$tmp/redis/redis.log"
srv_pg_start 2>"$tmp/pg.err" ||
    bail "PostgreSQL did not start" "$tmp/pg.err" "$tmp/pg/postgres.log"
sql() { srv_psql -At -c "$1" 2>>"$tmp/psql.err"; }

# ---- remigate config, migrate, keygen -------------------------------------

cp -r "$root/config" "$tmp/config"
conf=$tmp/config/remigate.conf
sed -i -e "s|^\( *dsn = \)\"\";|\1\"$PG_DSN\";|" \
    -e "s|^\( *key_file = \)\"\";|\1\"$tmp/key\";|" "$conf"
grep -q "$PG_PORT" "$conf" || bail "could not put postgres.dsn into $conf"
"$bin" keygen "$tmp/key" >"$tmp/keygen.log" 2>&1 ||
    bail "remigate keygen failed" "$tmp/keygen.log"
"$bin" migrate -c "$conf" >"$tmp/migrate.log" 2>&1 ||
    bail "remigate migrate failed" "$tmp/migrate.log"
[ "$(sql 'SELECT count(*) FROM returnees')" = 0 ] ||
    bail "no returnees table after migrate" "$tmp/migrate.log" "$tmp/psql.err"
ok "Redis and PostgreSQL up, database migrated, key made"

# ---- ports and Kannel settings ---------------------------------------------

for v in SMSC_PORT CONTROL_PORT ADMIN_PORT SMSBOX_PORT SENDSMS_PORT RG_PORT; do
    p=$(srv_free_port) || bail "no free port"
    printf -v "$v" %s "$p"
done
export SMSC_PORT CONTROL_PORT ADMIN_PORT SMSBOX_PORT SENDSMS_PORT
export RUN_DIR=$tmp/kannel
export REMIGATE_URL=http://127.0.0.1:$RG_PORT
export KANNEL_SECRET=e2e-$RANDOM$RANDOM-key-$RANDOM$RANDOM
export SENDSMS_USER=remigate SENDSMS_PASS=s$RANDOM$RANDOM
export ADMIN_PASS=a$RANDOM$RANDOM
export SHORT_CODE=16247 SMS_RESEND_FREQ=2
export USSD_SYSID=ussdbind USSD_PW=u$RANDOM SMS_SYSID=smsbind SMS_PW=s$RANDOM
ctl=http://127.0.0.1:$CONTROL_PORT
base=http://127.0.0.1:$RG_PORT

# ---- simulator -------------------------------------------------------------

node "$here/smsc-sim.js" >"$tmp/sim.log" 2>&1 &
sim_pid=$!
pids+=("$sim_pid")
sim_up() { alive "$sim_pid" && [ "$(code "$ctl/health")" = 200 ]; }
poll 15 sim_up || bail "smsc-sim.js did not start within 15 s" "$tmp/sim.log"

# ---- remigate --------------------------------------------------------------

start_remigate()
{
    "$bin" -c "$conf" --workers 1 --port "$RG_PORT" --redis-port "$REDIS_PORT" \
        --set "kannel.secret=$KANNEL_SECRET" \
        --set "kannel.sendsms_url=http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms" \
        --set "kannel.username=$SENDSMS_USER" \
        --set "kannel.password=$SENDSMS_PASS" \
        --set "kannel.short_code=$SHORT_CODE" \
        --set "kannel.dlr_url=$base" \
        </dev/null >>"$tmp/remigate.log" 2>&1 &
    rg_pid=$!
    pids+=("$rg_pid")
    rg_up() { alive "$rg_pid" && [ "$(code "$base/healthz")" = 200 ]; }
    poll 20 rg_up
}
start_remigate || bail "remigate did not answer /healthz 200 within 20 s" \
    "$tmp/remigate.log"

# ---- Kannel ----------------------------------------------------------------

"$root/scripts/kannel-config" "$tmp/kannel.conf" >"$tmp/render.log" 2>&1 ||
    bail "scripts/kannel-config failed" "$tmp/render.log"
"$BEARERBOX" -v 2 "$tmp/kannel.conf" >"$tmp/bearerbox.stderr" 2>&1 &
bb_pid=$!
pids+=("$bb_pid")
status_txt() { curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/status.txt?password=$ADMIN_PASS"; }
bb_up() { alive "$bb_pid" && [ "$(code "http://127.0.0.1:$ADMIN_PORT/status.txt?password=$ADMIN_PASS")" = 200 ]; }
poll 30 bb_up || bail "bearerbox did not open its admin port within 30 s" \
    "$tmp/bearerbox.stderr" "$RUN_DIR/bearerbox.log"

# smsbox runs under scripts/supervise, as under systemd's Restart=always in
# production: Kannel 1.4.5's smsbox can panic (conn_unregister) when the
# daemon it is writing an MO to is killed, as section 7 does.  sb_pid is
# the supervisor's; sb_up is true once a smsbox of it is on-line.
start_smsbox()
{
    "$root/scripts/supervise" smsbox "$tmp/smsbox.stderr" \
        "$SMSBOX" -v 2 "$tmp/kannel.conf" >>"$tmp/supervise.log" 2>&1 &
    sb_pid=$!
    pids+=("$sb_pid")
}
start_smsbox
sb_up() { alive "$sb_pid" && status_txt | grep -qE '^[[:space:]]*smsbox:.*\(on-line'; }
poll 30 sb_up || bail "smsbox did not connect to bearerbox within 30 s" \
    "$tmp/smsbox.stderr" "$RUN_DIR/smsbox.log"
sendsms_up() { [ "$(code "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms")" != 000 ]; }
poll 30 sendsms_up || bail "smsbox sendsms port does not answer" \
    "$tmp/smsbox.stderr" "$RUN_DIR/smsbox.log"
binds_up()
{
    curl -s --max-time 5 "$ctl/health" |
        jq -e '.ussd_binds >= 1 and .sms_binds >= 1' >/dev/null 2>&1
}
poll 30 binds_up || bail "bearerbox did not bind USSD and SMS within 30 s" \
    "$RUN_DIR/smsc-ussd.log" "$RUN_DIR/smsc-sms.log" "$RUN_DIR/bearerbox.log" \
    "$tmp/sim.log"
ok "simulator, bearerbox, smsbox and remigate up; both binds bound"

# ---- helpers on the simulator -----------------------------------------------

# ussd MSISDN OP SESSION SEQ TEXT: one deliver_sm on the USSD bind; the
# submit_sm that answered it (JSON) goes to stdout, the HTTP status to
# $tmp/st.
ussd()
{
    local body
    body=$(jq -cn --arg m "$1" --argjson op "$2" --argjson s "$3" \
        --argjson q "$4" --arg t "$5" --argjson th "${6:-0}" \
        '{msisdn: $m, op: $op, session: $s, seq: $q, text: $t, timeout: 15000,
          think_ms: $th}')
    curl -s -o "$tmp/reply" -w '%{http_code}' --max-time 20 \
        -H 'Content-Type: application/json' -d "$body" "$ctl/ussd" >"$tmp/st"
    cat "$tmp/reply"
}
st() { cat "$tmp/st"; }
faults() { curl -s --max-time 5 -H 'Content-Type: application/json' -d "$1" "$ctl/faults" >/dev/null; }
sms_mo()
{
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        -H 'Content-Type: application/json' \
        -d "$(jq -cn --arg m "$1" --arg t "$2" '{msisdn: $m, text: $t}')" \
        "$ctl/sms"
}
# mts MSISDN [SINCE]: every submit_sm to MSISDN (JSON array)
mts() { curl -s --max-time 5 "$ctl/mt?msisdn=$1&since=${2:-0}"; }
last_n() { curl -s --max-time 5 "$ctl/pdus" | jq '[.[].n] | max // 0'; }
# sms_count MSISDN [SINCE]: submit_sm on the SMS bind to MSISDN
sms_count() { mts "$1" "${2:-0}" | jq '[.[] | select(.role == "sms")] | length'; }
sms_at_least() { [ "$(sms_count "$1" "${3:-0}")" -ge "$2" ]; }

# sms_msgs MSISDN [SINCE]: the SMS sent to MSISDN on the SMS bind after
# record SINCE as a handset shows them: the parts of a concatenated SMS
# (same UDH reference) joined in the order of their numbers.  A JSON
# array, oldest first, of {n (its first record), text, parts, total,
# complete, codings (the parts' data_coding values)}.
sms_msgs()
{
    mts "$1" "${2:-0}" | jq '
        def hexn: ascii_downcase | explode
            | reduce .[] as $c (0; . * 16 + (if $c >= 97 then $c - 87 else $c - 48 end));
        def concat:
            (.udh_hex // "") as $u
            | if $u[2:6] == "0003" then
                {ref: $u[6:8], total: ($u[8:10] | hexn), seq: ($u[10:12] | hexn)}
              elif $u[2:6] == "0804" then
                {ref: $u[6:10], total: ($u[10:12] | hexn), seq: ($u[12:14] | hexn)}
              else null end;
        [.[] | select(.role == "sms") | . + {c: concat}
            | . + {key: (if .c then "r" + .c.ref else "n\(.n)" end)}]
        | group_by(.key)
        | map(sort_by(.c.seq // 0) | {n: (map(.n) | min),
            text: (map(.text) | join("")), parts: length,
            total: (.[0].c.total // 1),
            codings: (map(.data_coding) | unique)})
        | map(. + {complete: (.parts == .total)}) | sort_by(.n)'
}
# mt_last MSISDN: the record number of the last submit_sm to MSISDN (0)
mt_last() { mts "$1" | jq '[.[].n] | max // 0'; }

# sms_say MSISDN TEXT: TEXT as an SMS from MSISDN; waits for the whole
# answer (every part), whose text goes to $tmp/sms_last and whose
# sms_msgs entry to $tmp/sms_last.json.
sms_say()
{
    local m=$1 n0
    n0=$(mt_last "$m")
    [ "$(sms_mo "$m" "$2")" = 200 ] || return 1
    answered() { sms_msgs "$m" "$n0" | jq -e 'any(.[]; .complete)' >/dev/null; }
    poll 20 answered || return 1
    sms_msgs "$m" "$n0" | jq -c '[.[] | select(.complete)][-1]' >"$tmp/sms_last.json"
    jq -r .text "$tmp/sms_last.json" >"$tmp/sms_last"
}

# sms_dialogue MSISDN LOGFILE STEP...: a dialogue by SMS.  Each STEP is
# "TEXT=>WANT": sends TEXT, waits for the whole answer and needs WANT in
# it.  Each answer (sms_msgs entry plus .mo) is appended to LOGFILE.
# Stops at the first answer that does not come or lacks WANT, and says
# which.
sms_dialogue()
{
    local m=$1 log=$2 step in want
    shift 2
    : >"$log"
    for step in "$@"; do
        in=${step%%=>*} want=${step#*=>}
        sms_say "$m" "$in" || { say "sms $m: no answer to '$in'"; return 1; }
        jq -c --arg in "$in" '. + {mo: $in}' "$tmp/sms_last.json" >>"$log"
        grep -qF -- "$want" "$tmp/sms_last" || {
            say "sms $m: '$in' got: $(head -c 300 "$tmp/sms_last")"
            return 1
        }
    done
}

# The text of a screen and a reference in it.
ref_of() { grep -oE '\b[0-9A-Z]{10}\b' | head -n 1; }

# dial MSISDN SESSION LOGFILE ANSWERS...: a whole USSD dialogue.  Sends the
# dial (op 1), then each answer (op 18, sequence going up by one);  after
# the answers, pages on with 98 while the screen offers it and confirms
# with 1 (the read-back is paged differently per language).  Each reply's
# JSON is appended to LOGFILE with the MO's its_session_info byte
# (.mo_seq).  Stops at the first ussd_service_op 17 or failure.  DUP_AT
# lists answers (1-based; "last" = the one that ends the dialogue) whose
# deliver_sm the simulator sends twice; both replies are waited for and
# counted in DUP_SEEN.  STOP_AFTER=1: stop after the answers given.
# HOLD_CONFIRM=1: page on after the answers but stop at the confirmation
# screen, without confirming.  DIAL_SEQ is the sequence number of the last
# answer sent (the next one is DIAL_SEQ + 1).
dial()
{
    local m=$1 s=$2 log=$3 seq=0 r a i=0 extra=0 n0
    shift 3
    : >"$log"
    DIAL_SEQ=0
    r=$(ussd "$m" 1 "$s" 0 '*247#')
    [ "$(st)" = 200 ] || { say "dial $m: HTTP $(st): $r"; return 1; }
    jq -c '. + {mo_seq: 0}' <<<"$r" >>"$log"
    local todo=("$@")
    while :; do
        [ "$(jq -r .ussd_service_op <<<"$r")" = 17 ] && return 0
        if [ $i -lt ${#todo[@]} ]; then
            a=${todo[i]}
        elif [ "${STOP_AFTER:-0}" = 1 ]; then
            return 0
        elif [ $extra -lt 12 ]; then
            extra=$((extra + 1))
            if jq -r .text <<<"$r" | grep -qE '(^|[^0-9])(98|৯৮)[.)]'; then
                a=98
            elif [ "${HOLD_CONFIRM:-0}" = 1 ]; then
                return 0
            else
                a=1
            fi
        else
            say "dial $m: no end after the answers"
            return 1
        fi
        i=$((i + 1))
        seq=$((seq + 1))
        local dup=0
        if [[ " ${DUP_AT:-} " == *" $i "* ]] ||
            { [[ " ${DUP_AT:-} " == *" last "* ]] && [ "$a" = 1 ] &&
                [ $i -gt ${#todo[@]} ] &&
                ! jq -r .text <<<"$r" | grep -qE '(^|[^0-9])(98|৯৮)[.)]'; }; then
            dup=1
            n0=$(last_n)
            faults '{"duplicate_next_deliver": true}'
        fi
        r=$(ussd "$m" 18 "$s" "$seq" "$a")
        DIAL_SEQ=$seq
        [ "$(st)" = 200 ] || { say "dial $m step $i ($a): HTTP $(st): $r"; return 1; }
        jq -c --argjson q $((seq * 2)) '. + {mo_seq: $q}' <<<"$r" >>"$log"
        if [ $dup = 1 ]; then
            ussd_replies() { [ "$(mts "$m" "$n0" | jq '[.[] | select(.role == "ussd")] | length')" -ge 2 ]; }
            if poll 15 ussd_replies; then
                DUP_SEEN=$((DUP_SEEN + 1))
            else
                say "dial $m: the duplicated answer $i got no second reply"
            fi
        fi
    done
}
DUP_SEEN=0

# Per-screen checks over a dialogue log (one JSON reply a line).
ops_ok()
{
    jq -s -e 'length >= 2 and (.[:-1] | all(.ussd_service_op == 2))
        and .[-1].ussd_service_op == 17' "$1" >/dev/null
}
sess_ok()
{
    jq -s -e --argjson s "$2" '
        def hx(n): "0123456789abcdef" as $d
            | $d[(n / 16 | floor):(n / 16 | floor) + 1] + $d[(n % 16):(n % 16) + 1];
        (.[:-1] | all(.its_session_info == hx($s) + hx(.mo_seq)))
        and (.[-1] | .its_session_info == hx($s) + hx(.mo_seq + 1))' \
        "$1" >/dev/null
}
no_udh_ok()
{
    jq -s -e 'all(.has_udh == false and (.esm_class / 64 | floor) % 2 == 0)' \
        "$1" >/dev/null
}
bangla_ok()
{
    jq -s -e 'all(.data_coding == 8 and .sm_length <= 160)' "$1" >/dev/null
}
english_ok()
{
    jq -s -e '.[1:] | all(.data_coding == 0 and (.text | length) <= 182)' \
        "$1" >/dev/null
}
dial_report()
{
    say "screens of $1 (op, session info, coding, octets, esm):"
    jq -r '"#   \(.ussd_service_op) \(.its_session_info) dc=\(.data_coding) len=\(.sm_length) esm=\(.esm_class) mo=\(.mo_seq)"' "$1"
}

# pname MSISDN: the returnee's name, which PostgreSQL holds only encrypted
# (returnees.personal_enc), opened with the key
pname() { sql "SELECT personal_enc FROM returnees WHERE msisdn = '$1'" | "$bin" open -c "$conf" --msisdn "$1" 2>/dev/null | jq -r '.name // empty'; }
# with_name MSISDN SQL: the row SQL selects, its first two columns, then
# the name, then the rest ("" when there is no row)
with_name()
{
    local r
    r=$(sql "$2")
    [ -n "$r" ] || return 0
    printf '%s|%s\n' "$(cut -d'|' -f1-2 <<<"$r")|$(pname "$1")" "$(cut -d'|' -f3- <<<"$r")"
}
# row MSISDN: status|ref|name|channel|lang of the returnee
row() { with_name "$1" "SELECT status, ref, channel, lang FROM returnees WHERE msisdn = '$1' AND name IS NULL"; }
rows() { sql "SELECT count(*) FROM returnees WHERE msisdn = '$1'"; }
row_is() { [ "$(row "$1")" = "$2" ]; }

# confirmation MSISDN REF CODING: waits for the SMS with REF on the SMS bind
confirmation_ok()
{
    local m=$1 ref=$2 dc=$3
    has_conf()
    {
        mts "$m" | jq -e --arg r "$ref" --argjson dc "$dc" \
            'any(.[]; .role == "sms" and .data_coding == $dc and (.text | contains($r)))' \
            >/dev/null
    }
    poll 20 has_conf
}

# ---- 1. Bangla registration over USSD --------------------------------------

# part 1 of 3: language, Register, consent, name, sex, birth year, the
# district by its first letters (the only match is taken), the NID; dial()
# pages the read-back and confirms
bn_answers=(1 1 1 "রহিমা বেগম" 2 ১৯৯০ "চট্ট" ১২৩৪৫৬৭৮৯০)
m1=8801711000101
dial "$m1" 33 "$tmp/d1" "${bn_answers[@]}"
check "bn: the dialogue ran to its end over SMPP" [ $? = 0 ]
check "bn: ussd_service_op 2 on every screen, 17 on the last" ops_ok "$tmp/d1"
check "bn: its_session_info echoed, end bit on the last only" sess_ok "$tmp/d1" 33
check "bn: data_coding 8 and at most 80 UCS-2 characters on every screen" bangla_ok "$tmp/d1"
check "bn: no UDH and no UDHI in esm_class" no_udh_ok "$tmp/d1"
check "bn: service_type USSD on every screen" \
    jq -s -e 'all(.service_type == "USSD")' "$tmp/d1"
# the main menu is 79 UCS-2 characters: one screen over Kannel's default
# 140 octets comes whole only with sms-length and max-sms-octets at 160
check "bn: a screen of more than 70 UCS-2 characters came whole, in one submit_sm" \
    jq -s -e 'any(.sm_length > 140 and .sm_length <= 160)' "$tmp/d1"
[ $failed -eq 0 ] || dial_report "$tmp/d1"
ref1=$(tail -n 1 "$tmp/d1" | jq -r .text | ref_of)
check "bn: the last screen gives a reference (${ref1:-none})" [ -n "$ref1" ]
poll 10 row_is "$m1" "pending|$ref1|রহিমা বেগম|ussd|bn"
check "bn: a pending row with that reference ($(row "$m1"))" row_is "$m1" "pending|$ref1|রহিমা বেগম|ussd|bn"
check "bn: confirmation SMS on the SMS bind, data_coding 8, with the reference" \
    confirmation_ok "$m1" "${ref1:-none}" 8
delivered() { [ "$(sql "SELECT string_agg(dlr_state::text, ',') FROM sms_out WHERE msisdn = '$1' AND kind = 'confirmation'")" = 1 ]; }
check "bn: the confirmation's delivery report came back through Kannel (sms_out)" \
    poll 20 delivered "$m1"

# ---- 2. English registration over USSD -------------------------------------

f0=$failed
en_answers=(2 1 1 "Karim Uddin" 1 1990 "Dhaka" 1234567890)
m2=8801711000102
dial "$m2" 44 "$tmp/d2" "${en_answers[@]}"
check "en: the dialogue ran to its end over SMPP" [ $? = 0 ]
check "en: ussd_service_op 2 on every screen, 17 on the last" ops_ok "$tmp/d2"
check "en: its_session_info echoed, end bit on the last only" sess_ok "$tmp/d2" 44
check "en: data_coding 0 and at most 182 characters after the language choice" english_ok "$tmp/d2"
check "en: no UDH and no UDHI in esm_class" no_udh_ok "$tmp/d2"
[ $failed -eq "$f0" ] || dial_report "$tmp/d2"
ref2=$(tail -n 1 "$tmp/d2" | jq -r .text | ref_of)
check "en: the last screen gives a reference (${ref2:-none})" [ -n "$ref2" ]
poll 10 row_is "$m2" "pending|$ref2|Karim Uddin|ussd|en"
check "en: a pending row with that reference ($(row "$m2"))" row_is "$m2" "pending|$ref2|Karim Uddin|ussd|en"
check "en: confirmation SMS on the SMS bind, data_coding 0, with the reference" \
    confirmation_ok "$m2" "${ref2:-none}" 0

# ---- 3. duplicated deliver_sm -------------------------------------------------

m3=8801711000103
DUP_SEEN=0
DUP_AT="4 last" dial "$m3" 55 "$tmp/d3" "${en_answers[@]}"
check "dup: the dialogue ran to its end over SMPP" [ $? = 0 ]
check "dup: the name and the final answer, each delivered twice, got two replies each" \
    [ $DUP_SEEN = 2 ]
same_twice()
{
    mts "$m3" | jq -e '[.[] | select(.role == "ussd") | .text] as $t
        | [range(1; $t | length) | select($t[.] == $t[. - 1])] | length >= 2' \
        >/dev/null
}
check "dup: ... the same screen both times" same_twice
ref3=$(tail -n 1 "$tmp/d3" | jq -r .text | ref_of)
poll 10 row_is "$m3" "pending|$ref3|Karim Uddin|ussd|en"
one_row() { [ "$(rows "$m3")" = 1 ] && row_is "$m3" "pending|$ref3|Karim Uddin|ussd|en"; }
check "dup: exactly one row, with the answers given once ($(row "$m3"))" one_row
check "dup: one submission for the reference" \
    [ "$(sql "SELECT count(*) FROM submissions WHERE ref = '$ref3'")" = 1 ]
confirmation_ok "$m3" "${ref3:-none}" 0
# a second confirmation would follow the duplicate's reply, seen above:
# give it a few seconds to show up
! poll 3 sms_at_least "$m3" 2 0
if ! check "dup: one confirmation SMS ($(sms_count "$m3"))" [ "$(sms_count "$m3")" = 1 ]; then
    say "sms_out rows of $m3 (id, kind, created_at, accepted_at):"
    sql "SELECT id, kind, created_at, accepted_at FROM sms_out WHERE msisdn = '$m3'" |
        sed 's/^/#   /'
    grep -n 'duplicate\|kind=confirmation' "$tmp/remigate.log" | tail -n 4 |
        sed 's/^/#   /'
fi
check "dup: the two other numbers still have one row each" \
    [ "$(rows "$m1")$(rows "$m2")" = 11 ]

# ---- 4. SMS keyword ------------------------------------------------------------

m4=8801711000104
sms_step()
{
    local want=$1 text=$2 n
    n=$(sms_count "$m4")
    [ "$(sms_mo "$m4" "$text")" = 200 ] || return 1
    poll 20 sms_at_least "$m4" $((n + 1)) || return 1
    mts "$m4" | jq -r '[.[] | select(.role == "sms")][-1].text' >"$tmp/sms_last"
    grep -qF -- "$want" "$tmp/sms_last"
}
# REG is the English keyword: the dialogue is in English from the start
check "sms: REG -> the first question (consent) comes back by SMS" \
    sms_step "The government keeps" REG
check "sms: 1 (agree) -> the name question" sms_step "full name" 1
check "sms: a name -> the next question (sex)" sms_step "male or female" "Karim Uddin"
check "sms: every reply went out on the SMS bind through sendsms, no TLVs" \
    [ "$(mts "$m4" | jq 'all(.[]; .role == "sms" and (.tlvs | length) == 0)')" = true ]
check "sms: no row yet" [ "$(rows "$m4")" = 0 ]
optout() { sql "SELECT opted_out FROM sms_optout WHERE msisdn = '$m4'"; }
check "sms: STOP -> told no more programme SMS" sms_step "no more SMS" STOP
check "sms: ... and the number is opted out" [ "$(optout)" = t ]
check "sms: চালু (START in Bangla) -> told they come again, in the session's language (English)" \
    sms_step "You will get SMS about programmes again" "চালু"
check "sms: ... and the number is opted back in" [ "$(optout)" = f ]
check "sms: HELP -> the list of words" sms_step "Send REG to register" HELP

# STATUS after an officer's decision, for the number registered in test 1
sql "UPDATE returnees SET status = 'verified' WHERE msisdn = '$m1'" >/dev/null
status_sms() {
    local n
    n=$(sms_count "$m1")
    [ "$(sms_mo "$m1" "$1")" = 200 ] || return 1
    poll 20 sms_at_least "$m1" $((n + 1)) || return 1
    mts "$m1" | jq -r '[.[] | select(.role == "sms")][-1].text' >"$tmp/sms_last"
    grep -qF -- "$2" "$tmp/sms_last"
}
check "sms: STATUS after the officer verified -> verified, in the record's language (Bangla)" \
    status_sms STATUS "আপনার নিবন্ধন যাচাই হয়েছে"
sql "UPDATE returnees SET status = 'rejected', reject_reason = 'NID mismatch' WHERE msisdn = '$m1'" >/dev/null
check "sms: অবস্থা after a rejection -> the reason, in Bangla" \
    status_sms "অবস্থা" "NID mismatch"

# ---- 5. a whole registration over SMS keywords ---------------------------------

# One question per SMS, through Kannel's SMS bind and sendsms, in the three
# parts of a registration: REG starts part 1, and REG again (once part 1 is
# saved) the next part still to do.  In English with REG, then in Bangla
# with নিবন্ধন and answers in Bangla digits.  Each ends in one pending row
# with channel sms and the answers of every part, one submission a part,
# and the reference in part 1's last SMS (no separate confirmation: on SMS
# the answer itself stays on the phone).
sms_fields()
{
    with_name "$1" "SELECT status, ref, sex, birth_year, division, district, country,
        years_abroad, return_year, reason, education, skills, need, lang,
        channel, nid_enc IS NOT NULL, array_to_string(parts_done, ' ')
        FROM returnees WHERE msisdn = '$1' AND name IS NULL"
}
subs_of() { sql "SELECT count(*), string_agg(ref || '/' || channel || '/' || lang, ',') FROM submissions WHERE msisdn = '$1' AND kind = '$2'"; }
# parts_ok MSISDN SINCE CODING: every SMS part to MSISDN after SINCE has
# data_coding CODING; with 8, its short_message less the UDH is two
# octets for each character of the text the simulator decoded from it
parts_ok()
{
    mts "$1" "$2" | jq -e --argjson dc "$3" '[.[] | select(.role == "sms")]
        | length > 0 and all(.data_coding == $dc
            and ($dc != 8 or .sm_length - ((.udh_hex // "") | length / 2) == 2 * (.text | length)))' \
        >/dev/null
}

# sms_reg_landed LABEL MSISDN TRANSCRIPT NAME SEX LANG SENT: the end of a
# registration by SMS -- part 1's last SMS (TRANSCRIPT) gives a reference,
# one pending row with channel sms, the answers of every part and every
# part done, one submission a part, SENT SMS (one a message sent), only
# that one with the reference.
sms_reg_landed()
{
    local label=$1 m=$2 file=$3 name=$4 sex=$5 lang=$6 sent=$7 ref
    ref=$(tail -n 1 "$file" | jq -r .text | ref_of)
    check "$label: part 1's last SMS gives a reference (${ref:-none})" [ -n "$ref" ]
    poll 10 row_is "$m" "pending|$ref|$name|sms|$lang"
    check "$label: one pending row, channel sms, the answers of the 3 parts ($(sms_fields "$m"))" \
        [ "$(sms_fields "$m")" = "pending|$ref|$name|$sex|1990|C|BD-15|SA|5|2024|contract_end|ssc|{construction,welder,machine}|training|$lang|sms|t|register register_abroad register_skills" ]
    check "$label: one submission a part ($(subs_of "$m" register); $(subs_of "$m" register_abroad | cut -d'|' -f1); $(subs_of "$m" register_skills | cut -d'|' -f1))" \
        eval '[ "$(subs_of "$m" register)" = "1|$ref/sms/$lang" ] &&
            [ "$(subs_of "$m" register_abroad | cut -d"|" -f1)$(subs_of "$m" register_skills | cut -d"|" -f1)" = 11 ]'
    check "$label: one SMS for each message sent, only part 1's last with the reference" \
        sms_sent_ok "$m" "$ref" "$sent"
}
sms_sent_ok()   # MSISDN REF SENT
{
    [ "$(sms_msgs "$1" | jq "length")" = "$3" ] &&
        [ "$(sms_msgs "$1" | jq --arg r "$2" '[.[] | select(.text | contains($r))] | length')" = 1 ]
}

m10=8801711000110
sms_en=("REG=>The government keeps your answers"
    "1=>Please write your full name" "Abdul Malek=>Are you male or female?"
    "1=>In which year were you born?"
    "1990=>Which district do you live in? Write its first letters"
    "Farid=>District: Faridpur"
    "1234567890=>Please check:" "1=>Your reference is")
sms_en2=("REG=>Which country did you return from? Write its first letters"
    "saudi=>How many years were you abroad?" "5=>In which year did you come back?"
    "2024=>Why did you come back?" "1=>How far did you study?"
    "4=>Please check:" "1=>Part 2 of 3 saved")
sms_en3=("REG=>What work can you do?" "2 5 9=>What do you need most now?"
    "3=>Please check:" "1=>your registration is complete")
sms_dialogue "$m10" "$tmp/s10" "${sms_en[@]}" &&
    sms_dialogue "$m10" "$tmp/s10b" "${sms_en2[@]}" &&
    sms_dialogue "$m10" "$tmp/s10c" "${sms_en3[@]}"
check "sms reg en: REG and the answers of part 1, REG again for part 2, again for part 3, each the next question" [ $? = 0 ]
# an SMS stays on a shared phone (and in sms_out): the read-backs mask the
# name and show the ID number's last 3 digits only
readback_en1="Name: ***
Sex: Male
Birth year: 1990
District: Faridpur
NID/passport: *******890"
readback_en2="Country: Saudi Arabia
Years abroad: 5
Year returned: 2024
Reason: Contract ended
Education: SSC or Dakhil"
readback_en3="Skills: Construction worker, Welder, Machine operator
Main need: Skills training"
check "sms reg en: each read-back has its part's answers, the name and the NID masked" \
    eval '[[ "$(jq -r "select(.mo == \"1234567890\") | .text" "$tmp/s10")" == *"$readback_en1"* &&
        "$(jq -r "select(.mo == \"4\") | .text" "$tmp/s10b")" == *"$readback_en2"* &&
        "$(jq -r "select(.mo == \"3\") | .text" "$tmp/s10c")" == *"$readback_en3"* ]]'
check "sms reg en: no SMS to the caller carries the name or the NID" \
    eval '! cat "$tmp/s10" "$tmp/s10b" "$tmp/s10c" | jq -r .text | grep -q -e "Abdul Malek" -e 1234567890'
check "sms reg en: every part went with data_coding 0" parts_ok "$m10" 0 0
sms_reg_landed "sms reg en" "$m10" "$tmp/s10" "Abdul Malek" m en \
    $((${#sms_en[@]} + ${#sms_en2[@]} + ${#sms_en3[@]}))
m11=8801711000111
n11=$(mt_last "$m11")
sms_bn=("নিবন্ধন=>কাজ, ঋণ, প্রশিক্ষণ দিতে সরকার তথ্য রাখবে"
    "১=>আপনার পুরো নাম লিখুন" "রহিমা বেগম=>আপনি পুরুষ না নারী?"
    "২=>আপনার জন্ম কোন সালে?" "১৯৯০=>কোন জেলায় থাকেন? শুরুর অক্ষর লিখুন"
    "ফরিদ=>জেলা: ফরিদপুর" "১২৩৪৫৬৭৮৯০=>নাম: ***"
    "১=>রেফারেন্স")
sms_bn2=("নিবন্ধন=>কোন দেশ থেকে ফিরেছেন?" "সৌদি=>বিদেশে কত বছর?"
    "৫=>কোন সালে দেশে ফিরেছেন?" "২০২৪=>কেন দেশে ফিরেছেন?"
    "১=>কতদূর পড়াশোনা করেছেন?" "৪=>দেখে নিন:" "১=>২য় অংশ জমা হলো")
sms_bn3=("নিবন্ধন=>কী কাজ পারেন?" "২ ৫ ৯=>এখন কী সবচেয়ে দরকার?"
    "৩=>দেখে নিন:" "১=>নিবন্ধন সম্পূর্ণ")
sms_dialogue "$m11" "$tmp/s11" "${sms_bn[@]}" &&
    sms_dialogue "$m11" "$tmp/s11b" "${sms_bn2[@]}" &&
    sms_dialogue "$m11" "$tmp/s11c" "${sms_bn3[@]}"
check "sms reg bn: নিবন্ধন and the answers of each part in Bangla digits, each the next question" [ $? = 0 ]
check "sms reg bn: data_coding 8 on every part, UCS-2 text (2 octets a character)" \
    parts_ok "$m11" "$n11" 8
check "sms reg bn: the read-backs have every answer, numbers in Bangla digits" \
    eval 'cat "$tmp/s11" "$tmp/s11b" "$tmp/s11c" |
        jq -r "select(.mo == \"১২৩৪৫৬৭৮৯০\" or .mo == \"৪\" or .mo == \"৩\") | .text" |
        grep -c -e "লিঙ্গ: নারী" -e "জেলা: ফরিদপুর" -e "এনআইডি/পাসপোর্ট: \*\*\*\*\*\*\*890" -e "বিদেশ: সৌদি আরব" -e "বিদেশে কত বছর: ৫" -e "দক্ষতা: নির্মাণ শ্রমিক, ওয়েল্ডার, মেশিন অপারেটর" -e "সবচেয়ে দরকার: কাজের প্রশিক্ষণ" |
        grep -qx 7'
check "sms reg bn: no SMS to the caller carries the name or the NID" \
    eval '! cat "$tmp/s11" "$tmp/s11b" "$tmp/s11c" | jq -r .text | grep -q -e "রহিমা বেগম" -e 1234567890 -e ১২৩৪৫৬৭৮৯০'
sms_reg_landed "sms reg bn" "$m11" "$tmp/s11" "রহিমা বেগম" f bn \
    $((${#sms_bn[@]} + ${#sms_bn2[@]} + ${#sms_bn3[@]}))
# SKILL (and দক্ষতা) for the numbers just registered, after an officer
# verified them: the skills on the row change, one update_skills
# submission each.
sql "UPDATE returnees SET status = 'verified' WHERE msisdn IN ('$m10', '$m11')" >/dev/null
skills_of() { sql "SELECT status, array_to_string(skills, ' ') FROM returnees WHERE msisdn = '$1'"; }
sms_dialogue "$m10" "$tmp/s10k" "SKILL=>What work can you do?" \
    "1 15=>Skills: Mason, Hotel service" "1=>Your skills are updated"
check "sms skill en: SKILL, the skills, confirm -> updated" [ $? = 0 ]
check "sms skill en: the row has the new skills ($(skills_of "$m10"))" \
    [ "$(skills_of "$m10")" = "verified|mason hotel" ]
check "sms skill en: one update_skills submission" \
    [ "$(subs_of "$m10" update_skills | cut -d'|' -f1)" = 1 ]
n11=$(mt_last "$m11")
sms_dialogue "$m11" "$tmp/s11k" "দক্ষতা=>কী কাজ পারেন?" \
    "১ ৩=>দক্ষতা: রাজমিস্ত্রি, ইলেকট্রিশিয়ান" "১=>দক্ষতার তথ্য বদলানো হয়েছে"
check "sms skill bn: দক্ষতা, the skills in Bangla digits, confirm -> updated" [ $? = 0 ]
check "sms skill bn: data_coding 8 on every part" parts_ok "$m11" "$n11" 8
check "sms skill bn: the row has the new skills ($(skills_of "$m11"))" \
    [ "$(skills_of "$m11")" = "verified|mason electrician" ]
check "sms skill bn: one update_skills submission" \
    [ "$(subs_of "$m11" update_skills | cut -d'|' -f1)" = 1 ]

# ---- 5b. one number's parts across channels ------------------------------------

# The parts saved are the number's, not the channel's: part 1 over USSD
# through Kannel, then নিবন্ধন by SMS asks part 2's first question (not
# consent again), part 2 answered by SMS, and the next dial offers part 3
# of 3 over USSD; one row, its reference kept, one submission a part with
# the channel it came by.
m14=8801711000114
dial "$m14" 60 "$tmp/d14" "${bn_answers[@]}"
check "parts across channels: part 1 over USSD ran to its end" [ $? = 0 ]
ref14=$(tail -n 1 "$tmp/d14" | jq -r .text | ref_of)
# (its confirmation SMS first, so it is not read as an answer below)
poll 20 sms_at_least "$m14" 1
sms_dialogue "$m14" "$tmp/s14" "${sms_bn2[@]}"
check "parts across channels: নিবন্ধন by SMS asks part 2, not consent again; part 2 saved by SMS" [ $? = 0 ]
r14=$(ussd "$m14" 1 61 0 '*247#')
check "parts across channels: the next dial offers part 3 of 3 ($(jq -r .text <<<"$r14" | head -n 1))" \
    eval 'jq -r .text <<<"$r14" | grep -q "নিবন্ধনের ৩/৩ অংশ বাকি"'
subs14() { sql "SELECT string_agg(kind || '/' || channel, ' ' ORDER BY id) FROM submissions WHERE msisdn = '$m14'"; }
parts14() { sql "SELECT ref || '|' || array_to_string(parts_done, ' ') FROM returnees WHERE msisdn = '$m14'"; }
check "parts across channels: one submission a part, by the channel it came ($(subs14))" \
    [ "$(subs14)" = "register/ussd register_abroad/sms" ]
check "parts across channels: one row, the reference of part 1, parts 1 and 2 done ($(parts14))" \
    [ "$(parts14)" = "${ref14:-none}|register register_abroad" ]

# ---- 6. a dialogue dropped mid-way, resumed by a new dial ----------------------

# The caller stops answering after the name (the network drops the call:
# no more deliver_sm in that session); a new dial, with a new session
# number, soon after (within sessions.resume_window) goes straight back to
# the question after the name; going on ends in one row with the name
# given before the drop.
m8=8801711000108
STOP_AFTER=1 dial "$m8" 80 "$tmp/d8a" 2 1 1 "Jamal Hossain"
check "drop: dialogue under way (op 2 after the name)" \
    [ "$(tail -n 1 "$tmp/d8a" | jq -r .ussd_service_op)" = 2 ]
dial "$m8" 81 "$tmp/d8" 1 1990 "Dhaka" 1234567890
check "drop: the new dial ran to its end over SMPP" [ $? = 0 ]
check "drop: the new dial goes straight back to the question after the name" \
    grep -q "male or female" <<<"$(head -n 1 "$tmp/d8" | jq -r .text)"
check "drop: ussd_service_op 2 then 17, session info of the new session" \
    eval 'ops_ok "$tmp/d8" && sess_ok "$tmp/d8" 81'
ref8=$(tail -n 1 "$tmp/d8" | jq -r .text | ref_of)
poll 10 row_is "$m8" "pending|$ref8|Jamal Hossain|ussd|en"
check "drop: one pending row with the name given before the drop ($(row "$m8"))" \
    eval '[ "$(rows "$m8")" = 1 ] && row_is "$m8" "pending|$ref8|Jamal Hossain|ussd|en"'
m9=8801711000109
STOP_AFTER=1 dial "$m9" 90 "$tmp/d9" 2 1 1 "Jamal Hossain"
r=$(ussd "$m9" 1 91 0 '*247#')
r=$(ussd "$m9" 18 91 1 00)
check "drop: 00 after the new dial goes to the main menu, in the caller's language" \
    grep -q "What do you want to do" <<<"$(jq -r .text <<<"$r")"
check "drop: no row for the abandoned form" [ "$(rows "$m9")" = 0 ]

# ---- 7. remigate SIGKILLed mid-dialogue -----------------------------------------

# kill_remigate: SIGKILL to remigate and its workers, as in a crash; true
# once it is gone (the shell's "Killed" notice is kept out of the output)
kill_remigate()
{
    local victims
    victims=$(family "$rg_pid")
    exec 3>&2 2>/dev/null
    # shellcheck disable=SC2086
    kill -KILL $victims
    poll 10 gone
    wait "$rg_pid"
    exec 2>&3 3>&-
    gone
}
gone() { ! alive "$rg_pid" && [ "$(code "$base/healthz")" = 000 ]; }

m5=8801711000105
STOP_AFTER=1 dial "$m5" 66 "$tmp/d5" 2 1 1 "Selim Khan"
check "kill: dialogue under way (op 2 after the name)" \
    [ "$(tail -n 1 "$tmp/d5" | jq -r .ussd_service_op)" = 2 ]
check "kill: remigate gone after SIGKILL" kill_remigate
check "kill: no half row" [ "$(rows "$m5")" = 0 ]
start_remigate
check "kill: remigate started again" [ "$(code "$base/healthz")" = 200 ]
r=$(ussd "$m5" 18 66 $((DIAL_SEQ + 1)) 1)
check "kill: the caller's next answer in the same dialogue carries on (sex -> birth year)" \
    grep -q "year were you born" <<<"$(jq -r .text <<<"$r")"
r=$(ussd "$m5" 1 67 0 '*247#')
check "kill: a new dial goes straight back to the question where it stopped (birth year)" \
    grep -q "year were you born" <<<"$(jq -r .text <<<"$r")"
check "kill: still no row for the unfinished form" [ "$(rows "$m5")" = 0 ]

# remigate SIGKILLed around the moment the caller confirms, at several
# delays after the confirming deliver_sm leaves the SMSC (the HTTP request
# reaches remigate some 15-60 ms later): whatever the moment, the returnee
# row and its submission are both there or both absent, and after a
# restart the caller ends with exactly one of each.
subs() { sql "SELECT count(*) FROM submissions WHERE msisdn = '$1'"; }
both_one() { [ "$(rows "$1")$(subs "$1")" = 11 ]; }
k=0 torn=0 lost=0 landed=0 resumed=0
for delay in 0.005 0.02 0.04 0.06 0.1; do
    k=$((k + 1))
    mk=88017110002$((10 + k))
    HOLD_CONFIRM=1 dial "$mk" $((100 + k)) "$tmp/dk$k" "${en_answers[@]}" ||
        { lost=$((lost + 1)); continue; }
    ussd "$mk" 18 $((100 + k)) $((DIAL_SEQ + 1)) 1 >"$tmp/dk$k.last" &
    curl_pid=$!
    pause "$delay"
    kill_remigate || lost=$((lost + 1))
    wait "$curl_pid"
    start_remigate || bail "remigate did not start again after SIGKILL" "$tmp/remigate.log"
    # a smsbox that panicked at the kill is started again by its supervisor
    poll 30 sb_up && poll 30 sendsms_up ||
        bail "smsbox not on-line again after the kill" "$tmp/smsbox.stderr" "$tmp/supervise.log"
    # a completion taken before the kill may still be in the record queue
    poll 5 both_one "$mk"
    case $(rows "$mk")$(subs "$mk") in
    11) landed=$((landed + 1)) ;;
    00)
        # the caller dials again and confirms what the form still holds
        dial "$mk" $((110 + k)) "$tmp/dk$k.again" 1 >/dev/null
        poll 10 both_one "$mk"
        resumed=$((resumed + 1))
        ;;
    *) torn=$((torn + 1)) ;;
    esac
    [ "$(rows "$mk")$(subs "$mk")" = 11 ] &&
        [ "$(sql "SELECT status FROM returnees WHERE msisdn = '$mk'")|$(pname "$mk")" = "pending|Karim Uddin" ] ||
        lost=$((lost + 1))
done
say "killed at confirmation: $landed landed before the kill, $resumed finished by dialling again; smsbox started again $(grep -c 'started again' "$tmp/supervise.log" 2>/dev/null) time(s) by its supervisor"
check "kill at confirmation: never a returnee without its submission or the other way round" \
    [ $torn = 0 ]
check "kill at confirmation: each of the 5 callers ends with exactly one pending row and one submission" \
    [ $lost = 0 ]

# ---- 8. bearerbox restarted mid-dialogue --------------------------------------

m6=8801711000106
STOP_AFTER=1 dial "$m6" 70 "$tmp/d6" 2 1 1 "Nasrin Akter"
check "bearerbox: dialogue under way" \
    [ "$(tail -n 1 "$tmp/d6" | jq -r .ussd_service_op)" = 2 ]
stop_pids "$sb_pid" "$bb_pid"
"$BEARERBOX" -v 2 "$tmp/kannel.conf" >>"$tmp/bearerbox.stderr" 2>&1 &
bb_pid=$!
pids+=("$bb_pid")
poll 30 bb_up
start_smsbox
poll 30 sb_up && poll 30 sendsms_up
check "bearerbox: restarted, both binds again" poll 30 binds_up
r=$(ussd "$m6" 18 70 5 2)
check "bearerbox: the caller's next answer goes on (sex -> birth year)" \
    grep -q "year were you born" <<<"$(jq -r .text <<<"$r")"
m7=8801711000107
dial "$m7" 72 "$tmp/d7" 2 1 1 "Nasrin Akter" 2 1985 "Dhaka" 1234567890 >/dev/null
check "bearerbox: ... and a whole registration after it ends with a pending row" \
    [ "$(rows "$m7")" = 1 ]

# ---- 9. the SMSC misbehaving, through Kannel ----------------------------------

# ESME_RTHROTTLED on a reply: bearerbox sends it again after
# sms-resend-freq (2 s here) and the caller gets the screen.
m12=8801711000112
faults '{"throttle_next_n": 1}'
r=$(ussd "$m12" 1 120 0 '*247#')
check "throttled: the first screen reaches the caller after ESME_RTHROTTLED (HTTP $(st))" \
    eval '[ "$(st)" = 200 ] && [ "$(jq -r .ussd_service_op <<<"$r")" = 2 ]'
throttled()
{
    curl -s --max-time 5 "$ctl/pdus" | jq --arg m "$m12" \
        '[.[] | select(.command == "submit_sm" and .throttled and .destination_addr == $m)] | length'
}
check "throttled: the simulator refused that reply once ($(throttled))" [ "$(throttled)" = 1 ]
# a slow SMSC: each submit_sm_resp 1.2 s late; the screen still arrives
faults '{"delay_ms": 1200}'
t0=$(date +%s%N)
r=$(ussd "$m12" 18 120 1 2)
t1=$(date +%s%N)
faults '{"delay_ms": 0}'
ms=$(((t1 - t0) / 1000000))
check "slow SMSC: 2 (English) -> the main menu, after >= 1.2 s (HTTP $(st) in $ms ms)" \
    eval '[ "$(st):$((ms >= 1200))" = 200:1 ] && grep -q "What do you want to do" <<<"$(jq -r .text <<<"$r")"'
# the SMSC drops both binds mid-dialogue: bearerbox binds again and the
# caller's next answer goes on
dropped=$(curl -s --max-time 5 -H 'Content-Type: application/json' \
    -d '{"drop_bind": true}' "$ctl/faults" | jq -r .dropped)
check "dropped binds: the simulator closed both ($dropped)" [ "$dropped" = 2 ]
check "dropped binds: bearerbox binds both again" poll 30 binds_up
r=$(ussd "$m12" 18 120 2 1)
check "dropped binds: the caller's next answer goes on (Register -> consent)" \
    grep -q "I agree" <<<"$(jq -r .text <<<"$r")"
sendsms_wrong=$(code "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms?username=$SENDSMS_USER&password=wrong&to=$m12&text=x")
check "sendsms with a wrong password refused ($sendsms_wrong)" [ "$sendsms_wrong" = 403 ]

# ---- 9b. every session cut by the operator at 90 s ------------------------------

# The operator ends each USSD dialogue 90 s after it began (what the
# regulator's pricing counts as one session).  The simulator keeps a clock
# of simulated time per dialogue: each answer adds what a caller takes to
# read the screen and type it -- a menu 6 s, a number 10 s, a name 30 s,
# first letters 8 s, a read-back page 6 s, the skills list 30 s (the
# clock of check-flows) -- and a 1 s round trip; an answer past 90 s never
# reaches Kannel.  A Bangla returnee registers through as many dials as
# that takes, answering each screen by what it asks: every question is
# answered once (none comes back after it was answered), and the end is
# one pending row, one reference, all three parts.
faults '{"session_limit_ms": 90000, "round_trip_ms": 1000}'
m13=8801711000113
# cut_plan SCREEN: "KEY|ANSWER|THINK_MS" for what the screen asks (KEY "-"
# for a screen that is not a question: the read-back, the next-part offer)
cut_plan()
{
    case $1 in
    *"ভাষা বেছে নিন"*) echo "lang|1|6000" ;;
    *"কী করতে চান"*) echo "home|1|6000" ;;
    *"সরকার তথ্য রাখবে"*) echo "consent|1|6000" ;;
    *"পুরো নাম"*) echo "name|রহিমা বেগম|30000" ;;
    *"পুরুষ না নারী"*) echo "sex|2|6000" ;;
    *"জন্ম কোন সালে"*) echo "birth_year|১৯৯০|10000" ;;
    *"কোন জেলায় থাকেন"*) echo "district|চট্ট|8000" ;;
    *"পাসপোর্ট নম্বর লিখুন"*) echo "id|১২৩৪৫৬৭৮৯০|10000" ;;
    *"অংশ বাকি"*) echo "-|1|6000" ;;
    *"কোন দেশ থেকে"*) echo "country|সৌদি|8000" ;;
    *"বিদেশে কত বছর?"*) echo "years|৫|10000" ;;
    *"কোন সালে দেশে ফিরেছেন"*) echo "return_year|২০২৪|10000" ;;
    *"কেন দেশে ফিরেছেন"*) echo "reason|1|6000" ;;
    *"পড়াশোনা করেছেন"*) echo "education|4|6000" ;;
    *"কী কাজ পারেন"*) echo "skills|২ ৫ ৯|30000" ;;
    *"এখন কী সবচেয়ে দরকার"*) echo "need|3|6000" ;;
    *"৯৮."*) echo "-|98|6000" ;;
    *"ঠিক আছে"*) echo "-|1|6000" ;;
    *) echo "?" ;;
    esac
}
declare -A answered=()
c_sess=130 c_seq=0 c_dials=1 c_cuts=0 c_steps=0 c_twice= c_lost= c_ref= c_done=0
r=$(ussd "$m13" 1 $c_sess 0 '*247#')
while [ $c_steps -lt 80 ] && [ "$(st)" = 200 ]; do
    c_steps=$((c_steps + 1))
    text=$(jq -r .text <<<"$r")
    if [ "$(jq -r .ussd_service_op <<<"$r")" = 17 ]; then
        # a part saved (or the last): the next part is a new dial
        [ -z "$c_ref" ] && c_ref=$(ref_of <<<"$text")
        if grep -q "নিবন্ধন সম্পূর্ণ" <<<"$text"; then c_done=1; break; fi
        c_sess=$((c_sess + 1)) c_seq=0 c_dials=$((c_dials + 1))
        r=$(ussd "$m13" 1 $c_sess 0 '*247#')
        continue
    fi
    plan=$(cut_plan "$text")
    [ "$plan" = "?" ] && { c_lost="an unexpected screen: $text"; break; }
    key=${plan%%|*} rest=${plan#*|}
    a=${rest%|*} think=${rest##*|}
    if [ "$key" != - ] && [ -n "${answered[$key]:-}" ]; then
        c_twice="$c_twice $key"
    fi
    c_seq=$((c_seq + 1))
    r=$(ussd "$m13" 18 $c_sess $c_seq "$a" "$think")
    if [ "$(jq -r '.cut // false' <<<"$r")" = true ]; then
        # cut: the phone shows the operator's notice; the caller dials again
        c_cuts=$((c_cuts + 1)) c_sess=$((c_sess + 1)) c_seq=0
        c_dials=$((c_dials + 1))
        r=$(ussd "$m13" 1 $c_sess 0 '*247#')
        continue
    fi
    [ "$key" != - ] && answered[$key]=1
done
faults '{"session_limit_ms": 0, "round_trip_ms": 0}'
say "cut at 90 s: $c_dials dials, $c_cuts cut by the operator, ${#answered[@]} questions answered"
check "cut at 90 s: the registration completed across sessions (${c_lost:-done})" \
    [ "$c_done:${c_lost:-}" = 1: ]
check "cut at 90 s: the operator cut at least one session ($c_cuts of $c_dials dials)" \
    [ "$c_cuts" -ge 1 ]
check "cut at 90 s: no question asked again once answered${c_twice:+ (asked again:$c_twice)}" \
    [ -z "$c_twice" ]
check "cut at 90 s: every one of the 15 questions answered" [ "${#answered[@]}" = 15 ]
cut_row() { with_name "$m13" "SELECT status, ref, district, country, array_to_string(skills, ' '), need, array_to_string(parts_done, ' ') FROM returnees WHERE msisdn = '$m13' AND name IS NULL"; }
poll 10 eval '[ "$(cut_row)" = "pending|$c_ref|রহিমা বেগম|BD-10|SA|construction welder machine|training|register register_abroad register_skills" ]'
check "cut at 90 s: one pending row with every part and the reference shown ($(cut_row))" \
    eval '[ "$(rows "$m13")" = 1 ] && [ "$(cut_row)" = "pending|$c_ref|রহিমা বেগম|BD-10|SA|construction welder machine|training|register register_abroad register_skills" ]'
check "cut at 90 s: one reference: part 1 submitted once, under it, and one submission a part" \
    [ "$(sql "SELECT string_agg(kind || '/' || (ref = '$c_ref')::text, ' ' ORDER BY id) FROM submissions WHERE msisdn = '$m13'")" = "register/true register_abroad/false register_skills/false" ]
check "cut at 90 s: one confirmation SMS, with the reference" \
    eval 'confirmation_ok "$m13" "${c_ref:-none}" 8 && [ "$(sms_count "$m13")" = 1 ]'

# ---- 10. no message text in Kannel's logs ---------------------------------------

# Names, ID numbers and screens went through Kannel above; none may be in
# its logs (the access log has a format without %b, the boxes log at
# warning level).  Kannel is stopped first, so its logs are complete.
stop_pids "$sb_pid" "$bb_pid"
alog=$RUN_DIR/access.log
check "access log: MO, MT and DLR lines, each with the length field" \
    [ "$(grep -cE ' (Receive|Sent) (SMS|DLR) .*\[len:[0-9]+\]' "$alog" 2>/dev/null)" -ge 6 ]
leaked=
for f in "$RUN_DIR"/*.log "$tmp/bearerbox.stderr" "$tmp/smsbox.stderr"; do
    [ -f "$f" ] || continue
    for t in 'রহিমা বেগম' 'Karim Uddin' 'Jamal Hossain' 1234567890 ১২৩৪৫৬৭৮৯০ \
        'What do you want to do' 'I agree' 'কী করতে চান' "${ref1:-none}" \
        "${ref2:-none}" 'Starting to service'; do
        grep -qF -- "$t" "$f" && leaked="$leaked ${f##*/}:$t"
    done
done
check "no message text in any Kannel log${leaked:+ (found:$leaked)}" [ -z "$leaked" ]

# ---- personal data at rest (issue 9) -----------------------------------------------
# Every name and ID number typed in the dialogues above, through real Kannel:
# none in clear in any Redis key or value, in PostgreSQL (pg_dump, every
# table), in remigate's log, or in Kannel's files (logs, the message store).
pii=('রহিমা বেগম' 'Karim Uddin' 'Jamal Hossain' 'Abdul Malek' 'Nasrin Akter' 1234567890 ১২৩৪৫৬৭৮৯০)
redis-cli -p "$REDIS_PORT" --raw --scan --pattern '*' | while IFS= read -r k; do
    printf '%s\n' "$k"
    case $(redis-cli -p "$REDIS_PORT" --raw TYPE "$k") in
    string) redis-cli -p "$REDIS_PORT" --raw GET "$k" ;;
    hash) redis-cli -p "$REDIS_PORT" --raw HGETALL "$k" ;;
    list) redis-cli -p "$REDIS_PORT" --raw LRANGE "$k" 0 -1 ;;
    set) redis-cli -p "$REDIS_PORT" --raw SMEMBERS "$k" ;;
    zset) redis-cli -p "$REDIS_PORT" --raw ZRANGE "$k" 0 -1 ;;
    esac
done >"$tmp/redis-values"
srv_pg_dump >"$tmp/pg_dump" 2>>"$tmp/psql.err"
pii_in() { local t hits=; for t in "${pii[@]}"; do grep -rqF -- "$t" "$@" 2>/dev/null && hits="$hits [$t]"; done; printf '%s' "$hits"; }
check "at rest: Redis holds the sessions ($(grep -c '^remigate:s:' "$tmp/redis-values") keys)" \
    grep -q "^remigate:s:ussd:$m2\$" "$tmp/redis-values"
h=$(pii_in "$tmp/redis-values")
check "at rest: no name or ID number in any Redis key or value${h:+ (found:$h)}" [ -z "$h" ]
check "at rest: pg_dump holds the registrations" grep -q "${ref2:-none}" "$tmp/pg_dump"
h=$(pii_in "$tmp/pg_dump")
check "at rest: no name or ID number in PostgreSQL (pg_dump)${h:+ (found:$h)}" [ -z "$h" ]
h=$(pii_in "$tmp/remigate.log")
check "at rest: no name or ID number in remigate's log${h:+ (found:$h)}" [ -z "$h" ]
h=$(pii_in "$RUN_DIR" "$tmp/bearerbox.stderr" "$tmp/smsbox.stderr")
check "at rest: no name or ID number in Kannel's logs and message store${h:+ (found:$h)}" [ -z "$h" ]

# ---- end -------------------------------------------------------------------------

alive "$rg_pid" || not_ok "remigate still running at the end"
# a sanitizer build (SAN=1) reports here without always stopping the daemon
if grep -qE 'runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer' "$tmp/remigate.log"; then
    not_ok "sanitizer report in remigate's log"
    grep -m 5 -E 'runtime error:|Sanitizer' "$tmp/remigate.log" | sed 's/^/#   /'
fi
if [ $failed -gt 0 ]; then
    show_tail "$tmp/remigate.log" "$RUN_DIR/smsbox.log"
fi
if [ "${E2E_KEEP:-0}" = 1 ]; then say "kept $tmp"; fi

# ---- 11. scripts/stack (tests/e2e/stack.sh) ----------------------------------------

# once this run's own servers are stopped; its counts go into this total
cleanup
say "tests/e2e/stack.sh"
while IFS= read -r line; do
    echo "$line"
    case $line in
    "stack: "*" passed, "*" failed")
        set -- $line
        passed=$((passed + $2)) failed=$((failed + $4)) stack_seen=1
        ;;
    esac
done < <(bash "$here/stack.sh" 2>&1 </dev/null)
[ "${stack_seen:-0}" = 1 ] || not_ok "tests/e2e/stack.sh printed no summary"

# ---- 12. programme notices (tests/e2e/notices.sh) ----------------------------------

say "tests/e2e/notices.sh"
while IFS= read -r line; do
    echo "$line"
    case $line in
    "notices-e2e: "*" passed, "*" failed")
        set -- $line
        passed=$((passed + $2)) failed=$((failed + $4)) notices_seen=1
        ;;
    esac
done < <(bash "$here/notices.sh" "$build" 2>&1 </dev/null)
[ "${notices_seen:-0}" = 1 ] || not_ok "tests/e2e/notices.sh printed no summary"
summary
[ $failed -eq 0 ] && [ $passed -gt 0 ]
