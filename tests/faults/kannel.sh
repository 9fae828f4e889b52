#!/usr/bin/env bash
# tests/faults/kannel.sh [BUILD] -- the Kannel side of the fault suite, on
# the HA topology of `scripts/stack up --ha` (in a temporary STACK_DIR,
# running BUILD/remigate): two daemons (A, B) sharing Redis and a
# PostgreSQL primary + standby, each behind its own Kannel pair, both
# pairs bound to one SMSC simulator (tests/e2e/smsc-sim.js).  Callers are
# the simulator's USSD deliver_sm, so every step goes simulator ->
# bearerbox -> smsbox -> daemon and back.
#
#   1. a registration whose steps alternate between pair A and pair B (so
#      between daemon A and daemon B) completes once: every step answered,
#      the replies came back on both pairs, one row with the reference of
#      the last screen, one confirmation SMS;
#   2. bearerbox A killed -9 mid-dialogue: nothing here starts it again --
#      the stack's supervisor (scripts/supervise, as systemd's
#      Restart=always in production) does, and logs it; a caller on pair B
#      registers meanwhile; once A's binds are back the first caller's next
#      answer goes on and the dialogue ends saved;
#   3. smsbox A killed -9 mid-dialogue: the caller's next answer waits in
#      bearerbox until the supervisor has started smsbox A again (a new
#      process, logged), then is answered and the dialogue ends saved;
# after all three: each caller told "saved" has exactly one row with the
# reference told and exactly one confirmation SMS carrying it (none lost,
# none doubled), and the daemons are the processes they were.
# Prints "kannel: N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
build=${1:-${BUILD:-build}}
case $build in /*) ;; *) build=$root/$build ;; esac
export CHECKS_LABEL=kannel
. tests/lib/checks.sh

finish()
{
    summary
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
    exit
}
[ -x "$build/remigate" ] || { not_ok "daemon binary $build/remigate"; finish; }
dir=$(mktemp -d /tmp/remigate-kfault.XXXXXX) || { not_ok "temp dir"; finish; }
chmod 755 "$dir"
export STACK_DIR=$dir STACK_BIN=$build/remigate
# no setting of another Kannel may reach the stack's
unset USSD_PW SMS_PW USSD_PORT SMS_PORT SMSC_HOST
cleanup()
{
    # also what this script started again: it runs from $dir too
    scripts/stack down >/dev/null 2>&1
    if [ "${REMIGATE_TEST_KEEP:-0}" = 1 ]; then
        echo "# kept $dir" >&2
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! timeout 300 scripts/stack up --ha >"$dir/up.log" 2>&1; then
    not_ok "scripts/stack up --ha"
    tail -n 20 "$dir/up.log" | sed 's/^/# /'
    finish
fi
ok "scripts/stack up --ha: two daemons, two Kannel pairs, PostgreSQL primary + standby"
check "scripts/stack status: every part up, both daemons healthy" \
    eval "scripts/stack status >'$dir/status.log' 2>&1 && grep -q 'remigate B .*: 200' '$dir/status.log'"
# shellcheck disable=SC1091
. "$dir/stack.env"
ctl=$SMSC_CONTROL_URL
sql() { psql -X -q -At "$PG_DSN" -c "$1"; }

# pid_of COMM WORD: the PID of the COMM process with WORD as an argument of
# its own, among the processes running from this stack's directory (all
# ours: it is new; an smsbox whose bearerbox went away starts a new
# process of itself, so the stack's PID file is not enough)
pid_of()
{
    local p
    for p in $(grep -lsF -- "$dir/" /proc/[0-9]*/cmdline | cut -d/ -f3); do
        [ "$(ps -o comm= -p "$p" 2>/dev/null)" = "$1" ] &&
            tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$2" &&
            echo "$p" && return 0
    done
    return 1
}
rg_a=$(pid_of remigate "${REMIGATE_URL##*:}")
rg_b=$(pid_of remigate "${REMIGATE_URL_B##*:}")
check "both daemons found (A $rg_a, B $rg_b)" test -n "$rg_a" -a -n "$rg_b"

# ussd MSISDN OP SESSION SEQ TEXT BIND: one deliver_sm on that bind; the
# answering submit_sm (JSON) to stdout, the HTTP status to $dir/st
ussd()
{
    local body
    body=$(jq -cn --arg m "$1" --argjson op "$2" --argjson s "$3" \
        --argjson q "$4" --arg t "$5" --arg b "$6" \
        '{msisdn: $m, op: $op, session: $s, seq: $q, text: $t,
          bind: $b, timeout: 20000}')
    curl -s -o "$dir/reply.$1" -w '%{http_code}' --max-time 25 \
        -H 'Content-Type: application/json' -d "$body" "$ctl/ussd" >"$dir/st.$1"
    cat "$dir/reply.$1"
}
st() { cat "$dir/st.$1"; }

# step MSISDN SESSION SEQ TEXT BIND: one answer; its reply's text in
# $dir/text.MSISDN, its ussd_service_op in $dir/op.MSISDN; false unless 200
step()
{
    local r
    r=$(ussd "$1" "$([ "$3" = 0 ] && echo 1 || echo 18)" "$2" "$3" "$4" "$5")
    jq -r '.text // ""' <<<"$r" >"$dir/text.$1" 2>/dev/null
    jq -r '.ussd_service_op // ""' <<<"$r" >"$dir/op.$1" 2>/dev/null
    [ "$(st "$1")" = 200 ]
}
told_ref() { grep -oE '\b[0-9A-Z]{10}\b' "$dir/text.$1" | head -n 1; }
saved() { grep -q 'Part 1 of 3 saved' "$dir/text.$1" && [ "$(cat "$dir/op.$1")" = 17 ]; }

# dialogue MSISDN SESSION NID FROM TO BINDS...: steps FROM..TO (0 = the
# dial) of the registration, step i on BINDS[i % #BINDS]
dialogue()
{
    local m=$1 s=$2 nid=$3 from=$4 to=$5 i text=''
    shift 5
    local binds=("$@")
    # part 1 in English after the dial: English, Register, consent, name,
    # sex, birth year, district by its first letters, NID, confirm (the
    # read-back fits one screen in English)
    local ans=(2 1 1 'Rahima Begum' 2 1990 Farid "$nid" 1)
    for ((i = from; i <= to; i++)); do
        if [ $i = 0 ]; then text='*247#'; else text=${ans[i - 1]}; fi
        step "$m" "$s" "$i" "$text" "${binds[i % ${#binds[@]}]}" ||
            { say "$m step $i on ${binds[i % ${#binds[@]}]}: HTTP $(st "$m")"; return 1; }
    done
}
told=()
# done_saved MSISDN: the dialogue ended saved; remembers MSISDN and its ref
done_saved()
{
    if saved "$1"; then
        told+=("$1:$(told_ref "$1")")
        return 0
    fi
    say "$1: last screen: $(head -c 160 "$dir/text.$1")"
    return 1
}

# --- 1. steps alternating between the two pairs (the two daemons) --------
m1=8801720000001
dialogue "$m1" 1 1720000001 0 9 "$USSD_BIND_A" "$USSD_BIND_B"
check "alternating A/B: every step answered, the dialogue ends saved" done_saved "$m1"
roles=$(curl -s "$ctl/mt?msisdn=$m1" | jq -r '[.[] | .role] | group_by(.) | map("\(.[0])=\(length)") | join(" ")')
check "alternating A/B: replies came back on both pairs ($roles)" \
    eval "[[ '$roles' == *'ussd='[1-9]* ]] && [[ '$roles' == *'ussdbind2='[1-9]* ]]"

# --- 2. bearerbox A killed mid-dialogue ----------------------------------
m2=8801720000002 m3=8801720000003
dialogue "$m2" 2 1720000002 0 4 "$USSD_BIND_A" ||
    not_ok "bearerbox: the first steps on pair A"
bb=$(pid_of bearerbox "$KANNEL_CONF")
check "bearerbox A found ($bb)" test -n "$bb"
kill -9 "$bb" 2>/dev/null
bind_a_gone() { [ "$(curl -s "$ctl/health" | jq '.by_role.ussd // 0')" = 0 ]; }
check "bearerbox A killed -9: its USSD bind is gone" poll 10 bind_a_gone
# pair B serves meanwhile
dialogue "$m3" 3 1720000003 0 9 "$USSD_BIND_B"
check "while A is down a caller on pair B registers" done_saved "$m3"
binds_a() {
    curl -s "$ctl/health" | jq -e '(.by_role.ussd // 0) >= 1 and (.by_role.sms // 0) >= 1' >/dev/null
}
smsbox_a_online()
{
    printf 'url = "%s/status.txt?password=%s"\n' "$KANNEL_ADMIN_URL" \
        "$(sed -n 's/^admin-password = "\(.*\)"$/\1/p' "$KANNEL_CONF" | head -n 1)" |
        curl -s --max-time 3 -K - | grep -qE '^[[:space:]]*smsbox:.*\(on-line'
}
check "bearerbox A came back by itself: its binds and smsbox A are back" \
    eval "poll 30 binds_a && poll 30 smsbox_a_online"
bb2=$(pid_of bearerbox "$KANNEL_CONF")
check "bearerbox A is a new process ($bb -> $bb2)" \
    eval "[ -n '$bb2' ] && [ '$bb2' != '$bb' ]"
# restarted LINE-PATTERN: the supervisor logged the restart
restarted() { grep -qE "supervise: $1 pid=$2 exited status=[^;]+; started again pid=[0-9]+" "$LOG_DIR/supervise.log"; }
check "the stack logged bearerbox A's restart ($(grep -c 'supervise: bearerbox ' "$LOG_DIR/supervise.log" 2>/dev/null) lines)" \
    poll 5 restarted bearerbox "$bb"
dialogue "$m2" 2 1720000002 5 9 "$USSD_BIND_A"
check "the caller on A goes on after the restart and ends saved" done_saved "$m2"

# --- 3. smsbox A killed mid-dialogue -------------------------------------
m4=8801720000004
dialogue "$m4" 4 1720000004 0 4 "$USSD_BIND_A" ||
    not_ok "smsbox: the first steps on pair A"
sb=$(pid_of smsbox "$KANNEL_CONF")
check "smsbox A found ($sb)" test -n "$sb"
kill -9 "$sb" 2>/dev/null
pause 0.5
# the next answer: bearerbox takes it and holds it until an smsbox is back
t0=$(date +%s%N)
(dialogue "$m4" 4 1720000004 5 5 "$USSD_BIND_A"; echo $? >"$dir/step5.rc") &
stepper=$!
new_smsbox() { p=$(pid_of smsbox "$KANNEL_CONF") && [ "$p" != "$sb" ]; }
check "smsbox A came back by itself: a new process within 10 s" poll 10 new_smsbox
check "the stack logged smsbox A's restart" poll 5 restarted smsbox "$sb"
wait "$stepper"
t1=$(date +%s%N)
check "smsbox A killed -9: the answer sent meanwhile is answered once it is back ($(((t1 - t0) / 1000000)) ms)" \
    test "$(cat "$dir/step5.rc" 2>/dev/null)" = 0
poll 30 smsbox_a_online || not_ok "smsbox A on-line again"
dialogue "$m4" 4 1720000004 6 9 "$USSD_BIND_A"
check "the caller on A ends saved" done_saved "$m4"

# --- nothing lost or doubled ---------------------------------------------
# confirmation SMS: wait until each told ref has one, then 5 s more for a
# second that should never come
sms_with() { curl -s "$ctl/mt?msisdn=$1" | jq --arg r "$2" '[.[] | select(.role != "ussd" and .role != "ussdbind2") | select(.text | contains($r))] | length'; }
for x in "${told[@]}"; do
    m=${x%%:*} ref=${x#*:}
    one_sms() { [ "$(sms_with "$m" "$ref")" -ge 1 ]; }
    poll 30 one_sms
done
pause 5
for x in "${told[@]}"; do
    m=${x%%:*} ref=${x#*:}
    rows=$(sql "SELECT string_agg(ref, ',') FROM returnees WHERE msisdn = '$m'")
    check "$m: one row, with the reference told ($ref = $rows)" test "$rows" = "$ref"
    n=$(sms_with "$m" "$ref")
    check "$m: one confirmation SMS with it ($n)" test "$n" = 1
done
check "four callers told saved (${#told[@]})" test "${#told[@]}" = 4
check "the daemons are the same processes (A $rg_a, B $rg_b)" \
    eval "kill -0 $rg_a && kill -0 $rg_b"
check "no assert or sanitizer report in the daemons' logs" \
    eval "! grep -q -e 'assert:' -e 'runtime error' -e 'Sanitizer' '$LOG_DIR/remigate.log' '$LOG_DIR/remigate-b.log'"
finish
