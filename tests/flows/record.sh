#!/usr/bin/env bash
# tests/flows/record.sh "SIM ARGS" INPUT... -- print a transcript of a
# dialogue in the format tests/flows/run.sh reads: the args line, then each
# screen followed by the answer given to it.  Read the result line by line
# before you commit it: it becomes what the test expects.
set -eu
cd "$(dirname "$0")/../.."
args=$1; shift
printf '%s\n' "$@" >/tmp/remigate-record.$$
echo "args: $args"
# shellcheck disable=SC2086
build/remigate sim -c config/remigate.conf $args </tmp/remigate-record.$$ |
    awk -v inputs=/tmp/remigate-record.$$ '
        # after an end, the next input (a "~dial") follows its record
        /^== RECORD / { print; if (pend && (getline l < inputs) > 0) print "> " l; pend = 0; next }
        { if (pend && (getline l < inputs) > 0) print "> " l; pend = 0; print }
        /^== CON / { if ((getline line < inputs) > 0) print "> " line }
        /^== END / { pend = 1 }'
rm -f /tmp/remigate-record.$$
