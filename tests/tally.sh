#!/bin/sh
# tests/tally.sh LABEL BIN... -- run cmocka binaries in TAP mode and print
# "LABEL: N passed, N failed, N skipped".  A binary that exits non-zero
# without a failing test line (a crash, a sanitizer report) counts as one
# failure.  Exits non-zero on any failure or when nothing ran.
label=$1; shift
pass=0 fail=0 skip=0
for t in "$@"; do
    out=$(CMOCKA_MESSAGE_OUTPUT=TAP "$t" 2>&1); rc=$?
    p=$(printf '%s\n' "$out" | grep -c '^ok [0-9]')
    s=$(printf '%s\n' "$out" | grep -c '^not ok [0-9]* # SKIP')
    f=$(printf '%s\n' "$out" | grep '^not ok [0-9]' | grep -vc '# SKIP')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok - $(basename "$t"): exited $rc without a failing test line"
    fi
    # show everything but the passing lines: failures, skips, diagnostics
    printf '%s\n' "$out" | grep -v -e '^ok [0-9]' -e '^1\.\.[0-9]' -e '^$' | sed "s|^|$(basename "$t"): |"
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
done
echo "$label: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ $((pass + fail + skip)) -gt 0 ]
