#!/bin/sh
# tests/tally.sh LABEL BIN... -- run cmocka binaries in TAP mode and print,
# as its last line, "LABEL: N passed, N failed, N skipped".
#
# "ok N" counts as passed, "not ok N # SKIP" as skipped, any other
# "not ok N" as failed.  A binary that exits non-zero without a failing
# line (a crash, a sanitizer report, a failed group setup), that is missing
# or that runs longer than TEST_TIMEOUT seconds (default 300) counts as one
# failure.  TALLY_NOT_BUILT="name ..." adds one failure per name (test
# binaries that did not build).  Everything but the passing lines is shown:
# failures with their diagnostics, skips, sanitizer output.
# Exits 0 only when nothing failed and something passed or was skipped.
label=${1:?usage: tests/tally.sh LABEL BIN...}
shift
pass=0 fail=0 skip=0
for name in ${TALLY_NOT_BUILT:-}; do
    echo "not ok - $name: did not build"
    fail=$((fail + 1))
done
for t in "$@"; do
    name=$(basename "$t")
    if [ ! -x "$t" ]; then
        echo "not ok - $name: $t is missing"
        fail=$((fail + 1))
        continue
    fi
    out=$(CMOCKA_MESSAGE_OUTPUT=TAP timeout --foreground -k 10 \
        "${TEST_TIMEOUT:-300}" "$t" 2>&1 </dev/null)
    rc=$?
    p=$(printf '%s\n' "$out" | grep -c '^ok [0-9]')
    s=$(printf '%s\n' "$out" | grep -c '^not ok [0-9]* *# *SKIP')
    f=$(printf '%s\n' "$out" | grep '^not ok [0-9]' | grep -vc '# *SKIP')
    printf '%s\n' "$out" |
        grep -v -e '^ok [0-9]' -e '^# ok - ' -e '^1\.\.[0-9]' -e '^$' |
        sed "s|^|$name: |"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "not ok - $name: timed out after ${TEST_TIMEOUT:-300} s"
        else
            echo "not ok - $name: exited $rc without a failing test line"
        fi
    fi
    pass=$((pass + p))
    fail=$((fail + f))
    skip=$((skip + s))
done
echo "$label: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ $((pass + skip)) -gt 0 ]
