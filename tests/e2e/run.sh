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
# The parts, sourced in this order from parts/: setup.sh (prerequisites,
# servers, simulator, remigate, Kannel), helpers.sh, ussd.sh (1-3), sms.sh
# (4-5b), recovery.sh (6-9b), privacy.sh (10 and data at rest); lib.sh
# holds what this script shares with notices.sh.
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

. "$here/parts/setup.sh"
. "$here/parts/helpers.sh"
. "$here/parts/ussd.sh"
. "$here/parts/sms.sh"
. "$here/parts/recovery.sh"
. "$here/parts/privacy.sh"

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
