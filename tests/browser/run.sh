#!/usr/bin/env bash
# tests/browser/run.sh [BUILD] -- the officer console in a real browser:
# playwright-core (tests/browser/package-lock.json, installed with npm ci
# when missing) drives Debian's chromium headless against the whole local
# stack, brought up by `scripts/stack up` in a temporary STACK_DIR (a
# developer's ./var is never touched) with its demo accounts, and stopped
# with `scripts/stack down --wipe` on exit.  console.test.mjs holds the
# tests.  Prints "browser: N passed, N failed"; exits non-zero when
# something failed.  BROWSER_KEEP=1 keeps the temporary directory (logs);
# BROWSER_ONLY=REGEXP runs only the tests whose name matches.
#
# BUILD (default build/; tests/run gives build/san/ under SAN=1) is the
# remigate the stack runs (scripts/stack's STACK_BIN); after the tests its log
# must hold no sanitizer report.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
CHECKS_LABEL=browser
. "$root/tests/lib/checks.sh"

fail_early() {
    not_ok "$1"
    [ -n "${2:-}" ] && [ -f "$2" ] && tail -n 30 "$2" | sed 's/^/#   /'
    summary
    exit 1
}

build=${1:-${BUILD:-build}}
case $build in /*) ;; *) build=$root/$build ;; esac
make --no-print-directory -s SAN="${SAN:-0}" "${build#"$root"/}/remigate" >/tmp/remigate-browser-make.log 2>&1 ||
    fail_early "make ${build#"$root"/}/remigate" /tmp/remigate-browser-make.log
export STACK_BIN=$build/remigate REMIGATE_BIN=$build/remigate

chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail_early "no $chromium (scripts/deps installs Debian's chromium)"
if [ ! -d "$here/node_modules/playwright-core" ] ||
    [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >/tmp/remigate-browser-npm.log 2>&1 ||
        fail_early "npm ci in tests/browser" /tmp/remigate-browser-npm.log
fi

dir=$(mktemp -d /tmp/remigate-browser.XXXXXX) || fail_early "no temporary directory"
chmod 755 "$dir"
export STACK_DIR=$dir
finish() {
    timeout 60 "$root/scripts/stack" down >/dev/null 2>&1
    if [ "${BROWSER_KEEP:-0}" = 1 ]; then
        say "kept $dir"
    else
        rm -rf "$dir"
    fi
}
trap finish EXIT
trap 'exit 130' INT TERM

t0=$SECONDS
# the programme notices' send window (09:00-20:00 Dhaka) open at any hour
# of the run: the dispatcher's clock starts at noon in Dhaka today
# (REMIGATE_TEST_NOW, docs/notices.md; nothing but the dispatcher reads it)
REMIGATE_TEST_NOW=$(date -u -d "$(date -u +%F) 06:00" +%s)
export REMIGATE_TEST_NOW
# a short undo window, so a decision's SMS reaches the handset within the
# test (the flows wait for it, and for its absence after an undo)
window=8
timeout -k 10 "${STACK_TIMEOUT:-300}" "$root/scripts/stack" up --demo 400 \
    --set review.undo_window_s=$window --set review.sms_poll_ms=500 \
    --set review.office_phone=01700000000 >"$dir/up.log" 2>&1 ||
    fail_early "scripts/stack up --demo 400" "$dir/up.log"
say "scripts/stack up took $((SECONDS - t0)) s"

STACK_ENV=$dir/stack.env CHROMIUM=$chromium UNDO_WINDOW_S=$window \
    timeout -k 10 "${BROWSER_TIMEOUT:-900}" node "$here/console.test.mjs" | tee "$dir/tests.log"
rc=${PIPESTATUS[0]}
timeout 60 "$root/scripts/stack" down >/dev/null 2>&1
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|assert: ' "$dir/log/remigate.log"; then
    grep -E -A12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|assert: ' "$dir/log/remigate.log" |
        head -n 40 | sed 's/^/#   /'
    # one more failure on the summary the tests printed
    line=$(grep -E '^browser: [0-9]+ passed, [0-9]+ failed' "$dir/tests.log" | tail -n 1)
    p=$(sed -E 's/^browser: ([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/^.* ([0-9]+) failed.*/\1/' <<<"$line")
    sk=$(sed -nE 's/^.* ([0-9]+) skipped.*/\1/p' <<<"$line")
    echo "FAIL - the daemon's log has a sanitizer report or an assert"
    echo "browser: ${p:-0} passed, $((${f:-0} + 1)) failed${sk:+, $sk skipped}"
    exit 1
fi
exit "$rc"
