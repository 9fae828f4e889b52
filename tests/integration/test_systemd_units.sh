#!/usr/bin/env bash
# tests/integration/test_systemd_units.sh -- the systemd units shipped in
# config/systemd/ (remigate, Kannel's bearerbox and smsbox), as
# docs/operators.md installs them.
#
# Checked:
#   - systemd-analyze verify (Debian's systemd package; it runs offline)
#     says nothing about any of the three: no unknown key, no value it
#     cannot parse, every ExecStart executable.  It exits 0 even for an
#     unknown key, so any line it prints is a failure -- and a copy with a
#     misspelt key is shown to be caught;
#   - remigate.service: runs as User=remigate the binary where
#     docs/operators.md installs it, with options the daemon's --help
#     lists, on /etc/remigate/remigate.conf; those very arguments (the
#     binary and the config path swapped for this build's and a copy of
#     config/) load the config (-t);
#   - the Kannel units restart their box always (StartLimitIntervalSec=0:
#     systemd never gives up), as User=kannel, on the config
#     scripts/kannel-config renders; smsbox is PartOf bearerbox;
#   - docs/operators.md names the files instead of copying them.
#
# Needs no server.  Prints "systemd-units: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=systemd-units
. tests/lib/itest.sh
bin=${REMIGATE_BIN:-build/remigate}
dir=config/systemd
tmp=$(mktemp -d /tmp/remigate-units.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

units="remigate.service kannel-bearerbox.service kannel-smsbox.service"
for u in $units; do
    check "$dir/$u is shipped" "[ -s '$dir/$u' ]"
done
[ -x "$bin" ] || { bad "$bin built"; finish; }

# key UNIT SECTION KEY: the value of KEY in SECTION (the last one wins, as
# in systemd)
key() {
    awk -v s="[$2]" -v k="$3" '
        /^\[/ { in_s = ($0 == s); next }
        in_s && index($0, k "=") == 1 { v = substr($0, length(k) + 2) }
        END { print v }' "$dir/$1"
}

# --- systemd-analyze verify -------------------------------------------------
# ExecStart must be executable where it points: the remigate binary is not
# installed on a test machine, nor perhaps Kannel: each copy points at this
# build's binary, or at a stand-in script, instead.
stub=$tmp/box
printf '#!/bin/sh\nexit 0\n' >"$stub"
chmod 755 "$stub"
for u in $units; do
    exe=$(key "$u" Service ExecStart | awk '{ print $1 }')
    case $bin in /*) to=$bin ;; *) to=$PWD/$bin ;; esac
    [ "$u" != remigate.service ] && { [ -x "$exe" ] && to=$exe || to=$stub; }
    sed "s|^ExecStart=$exe |ExecStart=$to |" "$dir/$u" >"$tmp/$u"
done
# (a copy with a misspelt key: the same check must see it)
sed 's/^Restart=always/Restrat=always/' "$tmp/kannel-smsbox.service" \
    >"$tmp/kannel-broken.service"
verify() { # UNIT...: what systemd-analyze verify prints (exit status kept)
    (cd "$tmp" && timeout 60 systemd-analyze verify --man=no "$@" 2>&1)
}
if command -v systemd-analyze >/dev/null 2>&1; then
    for u in $units; do
        out=$(verify "./$u")
        rc=$?
        check "systemd-analyze verify $u: exit 0 and nothing to say${out:+ ($out)}" \
            "[ $rc = 0 ] && [ -z \"\$out\" ]"
    done
    out=$(verify ./kannel-broken.service)
    check "... and a misspelt key is reported (Restrat=always)" \
        "printf '%s' \"\$out\" | grep -q \"Unknown key 'Restrat'\""
else
    # scripts/deps installs it: its absence is a failure, not a skip
    check "systemd-analyze is installed (Debian package systemd; scripts/deps)" false
fi

# --- remigate.service ---------------------------------------------------------
u=remigate.service
is "$u: User=remigate" remigate "$(key $u Service User)"
read -r -a argv <<<"$(key $u Service ExecStart)"
is "$u: ExecStart runs /usr/local/bin/remigate" /usr/local/bin/remigate "${argv[0]}"
check "... where docs/operators.md installs it" \
    "grep -qF 'install -m 755 build/remigate /usr/local/bin/remigate' docs/operators.md"
help=$("$bin" --help 2>&1)
conf_at=
for ((i = 1; i < ${#argv[@]}; i++)); do
    a=${argv[i]}
    case $a in
    -*)
        # the option as --help lists it ("-c, --config FILE", "--set KEY=...")
        check "$u: option $a is one remigate --help lists" \
            "printf '%s\n' \"\$help\" | grep -qE -- '(^|[ ,])$a([ ,=]|\$)'"
        case $a in -c | --config) conf_at=${argv[i + 1]:-} ;; esac
        ;;
    esac
done
is "$u: the config is /etc/remigate/remigate.conf" /etc/remigate/remigate.conf "$conf_at"
is "$u: WorkingDirectory is /opt/remigate (migrations, flows, lists)" \
    /opt/remigate "$(key $u Service WorkingDirectory)"
check "$u: the config and /opt/remigate are read-only to it" \
    "key $u Service ReadOnlyPaths | grep -qw /etc/remigate && key $u Service ReadOnlyPaths | grep -qw /opt/remigate"
is "$u: restarted when it fails" on-failure "$(key $u Service Restart)"
is "$u: no core dumps (callers' answers, the key)" 0 "$(key $u Service LimitCORE)"
# the unit's own arguments, the binary and the config path swapped
cp -r config "$tmp/config"
chmod 0600 "$tmp/config/remigate.conf"
args=()
for ((i = 1; i < ${#argv[@]}; i++)); do
    a=${argv[i]}
    [ "$a" = "$conf_at" ] && a=$tmp/config/remigate.conf
    args+=("$a")
done
out=$("$bin" "${args[@]}" --set kannel.secret=units-test -t 2>&1)
rc=$?
check "remigate ${argv[*]:1} -t (this build, a copy of config/): the config loads ($(printf "%s" "$out" | tail -n 1))" \
    "[ $rc = 0 ]"

# --- the Kannel units -----------------------------------------------------------
for box in bearerbox smsbox; do
    u=kannel-$box.service
    is "$u: Restart=always" always "$(key $u Service Restart)"
    is "$u: systemd never gives up restarting it" 0 "$(key $u Unit StartLimitIntervalSec)"
    is "$u: User=kannel" kannel "$(key $u Service User)"
    is "$u: ExecStart" "/usr/sbin/$box /etc/kannel/remigate.conf" "$(key $u Service ExecStart)"
done
check "... the config scripts/kannel-config renders (docs/operators.md)" \
    "grep -qF 'scripts/kannel-config /etc/kannel/remigate.conf' docs/operators.md"
is "kannel-smsbox.service is PartOf bearerbox" kannel-bearerbox.service \
    "$(key kannel-smsbox.service Unit PartOf)"

# --- the guide names the files --------------------------------------------------
for u in $units; do
    check "docs/operators.md names $dir/$u" "grep -qF '$dir/$u' docs/operators.md"
done
check "docs/operators.md has no inline copy of a unit (no ExecStart= line)" \
    "! grep -q '^ExecStart=' docs/operators.md"
finish
