# tests/lib/checks.sh -- assertions for the end-to-end scripts, sourced.
#
#   CHECKS_LABEL=e2e; . tests/lib/checks.sh
#   check NAME COMMAND...    one assertion: "ok   - NAME" or "FAIL - NAME"
#   poll SECONDS COMMAND...  wait until COMMAND succeeds, at most SECONDS
#   summary                  "LABEL: N passed, N failed"
# $passed and $failed count the assertions so far.

passed=0 failed=0

say() { echo "# $*"; }
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
not_ok() { failed=$((failed + 1)); echo "FAIL - $*"; }
check()
{
    local name=$1
    shift
    if "$@"; then ok "$name"; return 0; fi
    not_ok "$name"
    return 1
}
summary() { echo "${CHECKS_LABEL:-checks}: $passed passed, $failed failed"; }

# Short pause between polls without a sleep process (nothing to leave
# behind): read with a timeout on a pipe nobody writes to.
pause() { read -r -t "${1:-0.1}" <> <(:) 2>/dev/null || true; }
poll()
{
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $end ] || return 1
        pause
    done
}
