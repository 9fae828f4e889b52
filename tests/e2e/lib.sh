# tests/e2e/lib.sh -- what the end-to-end scripts (run.sh, notices.sh)
# share, sourced after tests/lib/servers.sh and tests/lib/checks.sh:
#
#   pids=(...)             what the script started; cleanup (on EXIT)
#                          stops them in reverse order, each with its
#                          children, then the servers (srv_cleanup);
#                          E2E_KEEP=1 keeps the temporary directory
#   alive PID              PID is running
#   family PID             PID and its children (remigate forks workers)
#   stop_pids PID...       SIGTERM, then SIGKILL after 10 s; reaps them
#   show_tail LOG...       the last lines of each non-empty LOG
#   bail MESSAGE [LOG...]  a failure that stops the run
#   code URL               the HTTP status (000 when nothing answers)

pids=()
SRV_TMP=

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

family() { echo "$1"; ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }

stop_pids()
{
    local p end
    # shellcheck disable=SC2068
    kill -TERM $@ 2>/dev/null
    end=$((SECONDS + 10))
    for p in "$@"; do
        while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $end ]; do pause; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
}

cleanup()
{
    local i kids
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        alive "${pids[i]}" || { wait "${pids[i]}" 2>/dev/null; continue; }
        kids=$(family "${pids[i]}")
        # shellcheck disable=SC2086
        stop_pids $kids
    done
    pids=()
    if [ -n "$SRV_TMP" ] && [ "${E2E_KEEP:-0}" = 1 ]; then
        REMIGATE_TEST_KEEP=1
    fi
    srv_cleanup 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_tail()
{
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        say "--- last lines of ${f#"$tmp"/}"
        tail -n 20 "$f" | sed 's/^/#   /'
    done
}

bail()
{
    local m=$1
    shift
    not_ok "$m"
    show_tail "$@"
    summary
    exit 1
}

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }
