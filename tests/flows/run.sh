#!/usr/bin/env bash
# tests/flows/run.sh -- transcript tests: whole dialogues through `remigate sim`.
#
# A transcript (tests/flows/*.txt) is what a flow author sees in the simulator:
#   args: --flow register --lang bn --now 1795343567 --seed 1
#   # comment
#   > 1                  an input line, fed to sim's stdin
#   anything else        an expected output line, in order
# The test passes when sim prints exactly the expected lines; besides, every
# status line "== CON|END enc used/limit" must have used <= limit.
# Usage: tests/flows/run.sh [BUILD_DIR]   (default build; SAN=1 uses build/san)
set -u
cd "$(dirname "$0")/../.."
build=${1:-build}
[ "${SAN:-0}" = 1 ] && [ $# -eq 0 ] && build=build/san
bin=$build/remigate
conf=${REMIGATE_CONF:-config/remigate.conf}
pass=0 fail=0
tmp=$(mktemp -d /tmp/remigate-flows.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$bin" ]; then
    echo "flows: $bin is missing (run make)"
    echo "flows: 0 passed, 1 failed"
    exit 1
fi

for t in tests/flows/*.txt; do
    name=$(basename "$t" .txt)
    args=$(sed -n 's/^args: //p' "$t" | head -1)
    grep '^> ' "$t" | sed 's/^> //' >"$tmp/in"
    grep -v -e '^> ' -e '^#' -e '^args: ' "$t" >"$tmp/want"
    # shellcheck disable=SC2086
    "$bin" sim -c "$conf" $args <"$tmp/in" >"$tmp/got" 2>"$tmp/err"
    rc=$?
    ok=1
    if [ $rc -ne 0 ]; then
        echo "not ok - $name: sim exited $rc"; sed 's/^/#   /' "$tmp/err"; ok=0
    elif ! diff -u "$tmp/want" "$tmp/got" >"$tmp/diff"; then
        echo "not ok - $name: screens differ"; sed 's/^/#   /' "$tmp/diff" | head -40; ok=0
    elif awk '/^== (CON|END) / { split($4, a, "/"); if (a[1] + 0 > a[2] + 0) { print; bad = 1 } } END { exit bad }' "$tmp/got" >"$tmp/over"; then
        :
    else
        echo "not ok - $name: a screen is over its page limit"; cat "$tmp/over"; ok=0
    fi
    if [ $ok = 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
# The session clock on the shipped flows: every part of every flow within
# flows.session_budget (--strict makes one over it an error), and part 1 of
# the Bangla registration, after the main menu, at most 9 screens and 90 s.
if "$bin" check-flows --strict -c "$conf" >"$tmp/clock" 2>"$tmp/err"; then
    pass=$((pass + 1))
else
    echo "not ok - check-flows --strict on the shipped flows"
    sed 's/^/#   /' "$tmp/err"
    fail=$((fail + 1))
fi
line=$(grep '^check-flows: register bn part 1/' "$tmp/clock")
if [[ $line =~ :\ ([0-9]+)\ screens\ .*\),\ ([0-9]+)\.([0-9])\ s\ of ]] &&
    [ "${BASH_REMATCH[1]}" -le 9 ] && [ "${BASH_REMATCH[2]}" -le 90 ] &&
    { [ "${BASH_REMATCH[2]}" -lt 90 ] || [ "${BASH_REMATCH[3]}" = 0 ]; }; then
    pass=$((pass + 1))
else
    echo "not ok - register part 1 in Bangla: ${line:-no such line} (want <= 9 screens, <= 90 s)"
    fail=$((fail + 1))
fi
echo "flows: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
