#!/usr/bin/env bash
# tests/integration/test_stats_cache.sh -- the dashboards' answer cache
# (console/con_cache.c, console.stats_cache_ms) through the real daemon
# and PostgreSQL.  Each "served from the cache" is shown by a change made
# in the database between two identical requests: the second still has
# the old count (no query ran), then the new count once the TTL passed.
#
#   - a second identical GET /api/stats within the TTL: the old count, an
#     Age header, "lag_s" a number (the answer's age on the primary) that
#     grows with the age; after the TTL the new count and "lag_s" null;
#   - the parameters' order (and status=all vs none) does not split the
#     key; different parameters do;
#   - scope: two officers of different districts asking the same view each
#     get their own districts (never the other's), an officer of the same
#     districts shares the answer; an analyst and an admin asking the same
#     view get the suppressed and the true table, each theirs;
#   - decision-days is cached the same way;
#   - never cached: the aggregate CSV (a change shows at once, each
#     download audited), errors (a 422 too_few turns 200 as soon as enough
#     people match), and a disabled officer gets 401 at once;
#   - remigate_console_stats_cache_total counts hits and misses;
#   - console.stats_cache_kb bounds it: with 1 KiB the least recently used
#     answers go;
#   - console.stats_cache_ms = 0: every request reads PostgreSQL.
#
# Starts its own Redis and PostgreSQL.  Prints "stats-cache: N passed, N
# failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=stats-cache
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pid=
itest_servers redis pg
itest_config "$PG_DSN"

pw='Padma-River-Dawn-7'
printf '%s\n' "$pw" | officer add --username boss --role admin &&
    printf '%s\n' "$pw" | officer add --username rahim --role officer --district BD-15 &&
    printf '%s\n' "$pw" | officer add --username salma --role officer --district BD-15 &&
    printf '%s\n' "$pw" | officer add --username karim --role officer --district BD-26 &&
    printf '%s\n' "$pw" | officer add --username nasrin --role analyst ||
    { bad "officers added" "$(cat "$tmp/out")"; finish; }

# add N DISTRICT SEX STATUS: N more returnees
seq_no=0
add() {
    sql "INSERT INTO returnees (msisdn, district, division, sex, birth_year,
            country, return_year, reason, education, skills, need, lang,
            channel, status, reject_reason, ref, created_at)
         SELECT '88018' || lpad(($seq_no + i)::text, 8, '0'), '$2', 'C', '$3',
                1990 + i % 20, 'SA', 2024, 'contract_end', 'ssc',
                ARRAY['driver'], 'job_home', 'bn', 'ussd', '$4',
                CASE WHEN '$4' = 'rejected' THEN 'duplicate' END,
                'C' || lpad(($seq_no + i)::text, 9, '0'),
                timestamptz '2026-09-01 00:00+06' + i * interval '1 hour'
         FROM generate_series(1, $1) i" >/dev/null || bad "add $*"
    seq_no=$((seq_no + $1))
}
add 40 BD-13 m verified
add 30 BD-13 f pending
add 20 BD-15 m verified
add 12 BD-15 f rejected
add 3 BD-26 f verified
add 9 BD-26 m pending
is "114 returnees" 114 "$(sql 'SELECT count(*) FROM returnees')"

ttl=4000
itest_daemon --set kannel.secret=cache-test-secret --set console.admin_totp=optional \
    --set "console.stats_cache_ms=$ttl" --set console.stats_cache_kb=4096

api() { # METHOD PATH [USER]: the body in $tmp/body, the headers in $tmp/hdr
    local args=(-s -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' --max-time 20 -X "$1")
    [ -n "${3:-}" ] && args+=(-b "$tmp/jar-$3" -c "$tmp/jar-$3")
    curl "${args[@]}" "$base$2"
}
j() { jq -r "$1" "$tmp/body"; }
age() { tr -d '\r' <"$tmp/hdr" | sed -n 's/^[Aa]ge: //p'; }
for u in boss rahim salma karim nasrin; do
    curl -s -o /dev/null -c "$tmp/jar-$u" -H 'Content-Type: application/json' \
        --data "{\"username\":\"$u\",\"password\":\"$pw\"}" "$base/api/login"
done
metric() { curl -s "$base/metrics" | sed -n "s/^remigate_console_stats_cache_total{result=\"$1\"} //p"; }

# --- a second identical request within the TTL: no query -----------------
st=$(api GET '/api/stats?dims=sex' boss)
is "first request: 200, everyone, lag_s null (read from the primary), no Age" \
    "200 114 null " "$st $(j .total) $(j .lag_s) $(age)"
add 7 BD-13 f pending
st=$(api GET '/api/stats?dims=sex' boss)
is "7 added, the same request within the TTL: the old count (no query ran)" "200 114" "$st $(j .total)"
lag1=$(j .lag_s)
check "  with an Age header ($(age)) and lag_s its age, a number ($lag1)" \
    "[ -n '$(age)' ] && awk -v l='$lag1' 'BEGIN { exit !(l ~ /^[0-9.]+$/ && l >= 0 && l < $ttl / 1000) }'"
pause 1.5
api GET '/api/stats?dims=sex' boss >/dev/null
lag2=$(j .lag_s)
check "  lag_s grows with the answer's age ($lag1 -> $lag2 after 1.5 s)" \
    "awk -v a='$lag1' -v b='$lag2' 'BEGIN { exit !(b >= a + 1.3 && b < $ttl / 1000 + 0.1) }'"
is "  the cached answer is the same table" 114 "$(j .total)"
fresh() { [ "$(api GET "$1" "$2")" = 200 ] && [ "$(j .total)" = "$3" ]; }
check "after the TTL the new count shows (121)" wait_until 10 fresh "/api/stats?dims=sex" boss 121
is "  read afresh: lag_s null, no Age" "null " "$(j .lag_s) $(age)"

# --- the parameters' order does not split the key ------------------------
api GET '/api/stats?dims=sex&status=verified&district=BD-13' boss >/dev/null
v0=$(j .total)
add 2 BD-13 m verified
api GET '/api/stats?district=BD-13&status=verified&dims=sex' boss >/dev/null
is "same parameters in another order: the cached answer ($v0)" "$v0 yes" "$(j .total) $([ -n "$(age)" ] && echo yes)"
api GET '/api/stats?dims=sex&status=all' boss >/dev/null
is "status=all is status absent: the cached answer" "121 yes" "$(j .total) $([ -n "$(age)" ] && echo yes)"
api GET '/api/stats?dims=sex&status=verified&district=BD-13&sex=m' boss >/dev/null
is "another parameter: its own answer, read now (the 2 added count)" "$((v0 + 2)) " "$(j .total) $(age)"
api GET '/api/stats?dims=age_band,sex' boss >/dev/null
a1=$(j '.dims | join(",")')
api GET '/api/stats?dims=sex,age_band' boss >/dev/null
is "dims=a,b and b,a are different tables (rows and columns)" "age_band,sex sex,age_band " "$a1 $(j '.dims | join(",")') $(age)"

# --- scope ----------------------------------------------------------------
districts() { j '[.cells[].district] | unique | join(",")'; }
api GET '/api/stats?dims=district' rahim >/dev/null
is "officer rahim (BD-15): his district" "BD-15 32" "$(districts) $(j .total)"
api GET '/api/stats?dims=district' karim >/dev/null
is "officer karim (BD-26), the same parameters: his own, not rahim's" "BD-26 12 " "$(districts) $(j .total) $(age)"
api GET '/api/stats?dims=district' rahim >/dev/null
is "  rahim again: still his (from the cache)" "BD-15 32 yes" "$(districts) $(j .total) $([ -n "$(age)" ] && echo yes)"
api GET '/api/stats?dims=district' karim >/dev/null
is "  karim again: still his (from the cache)" "BD-26 12 yes" "$(districts) $(j .total) $([ -n "$(age)" ] && echo yes)"
api GET '/api/stats?dims=district' salma >/dev/null
is "officer salma, the same district as rahim: his answer, shared" "BD-15 32 yes" "$(districts) $(j .total) $([ -n "$(age)" ] && echo yes)"
api GET '/api/stats?dims=district,status' boss >/dev/null
is "admin: the true table, not suppressed" "false 0" "$(j .suppressed) $(j '[.cells[] | select((.n | type) == "string")] | length')"
api GET '/api/stats?dims=district,status' nasrin >/dev/null
is "analyst, the same parameters: her own, suppressed table (read now)" "true yes " \
    "$(j .suppressed) $([ "$(j '[.cells[], .totals[] | select((.n | type) == "string")] | length')" -gt 0 ] && echo yes) $(age)"
api GET '/api/stats?dims=district,status' boss >/dev/null
is "  the admin again: the true table (from the cache)" "false 0 yes" "$(j .suppressed) $(j '[.cells[] | select((.n | type) == "string")] | length') $([ -n "$(age)" ] && echo yes)"
api GET '/api/stats?dims=district&suppress=1' rahim >/dev/null
is "rahim with suppress=1: not his unsuppressed answer" "true " "$(j .suppressed) $(age)"

# --- decision-days --------------------------------------------------------
decided_at() { # every decided record without a time gets one
    sql "UPDATE returnees SET status_at = created_at + interval '3 days'
         WHERE status IN ('verified', 'rejected') AND status_at IS NULL" >/dev/null
}
decided_at
api GET '/api/stats/decision-days' boss >/dev/null
d0=$(j '[.districts[] | select(.district == "BD-15") | .decided] | .[0]')
add 1 BD-15 m verified
decided_at
api GET '/api/stats/decision-days' boss >/dev/null
is "decision-days: a second request within the TTL is the cached answer" "$d0 yes" \
    "$(j '[.districts[] | select(.district == "BD-15") | .decided] | .[0]') $([ -n "$(age)" ] && echo yes)"
api GET '/api/stats/decision-days' karim >/dev/null
is "  karim's: his district only (read now)" "BD-26 " "$(j '[.districts[].district] | join(",")') $(age)"
days_bd15() {
    [ "$(api GET /api/stats/decision-days boss)" = 200 ] &&
        [ "$(j '[.districts[] | select(.district == "BD-15") | .decided] | .[0]')" = "$1" ]
}
check "  after the TTL the new count shows ($((d0 + 1)))" wait_until 10 days_bd15 $((d0 + 1))

# --- never cached ---------------------------------------------------------
n_audit=$(sql "SELECT count(*) FROM audit_log WHERE action = 'export'")
api GET '/api/export.csv?kind=aggregate&dims=sex' boss >/dev/null
c1=$(tr -d '\r' <"$tmp/body" | awk -F, '$1 == "total" { print $NF }')
add 6 BD-13 m pending
st=$(api GET '/api/export.csv?kind=aggregate&dims=sex' boss)
c2=$(tr -d '\r' <"$tmp/body" | awk -F, '$1 == "total" { print $NF }')
is "aggregate CSV: counted afresh each time (6 added show at once), no Age" "200 $((c1 + 6)) " "$st $c2 $(age)"
is "  both downloads audited" $((n_audit + 2)) "$(sql "SELECT count(*) FROM audit_log WHERE action = 'export'")"
add 3 BD-02 x pending
st=$(api GET '/api/stats?dims=sex&sex=x&district=BD-02' nasrin)
is "analyst, 3 people: 422 too_few" "422 too_few" "$st $(j .error)"
add 4 BD-02 x pending
st=$(api GET '/api/stats?dims=sex&sex=x&district=BD-02' nasrin)
is "  4 more: 200 at once (the 422 was not kept)" "200 7 " "$st $(j .total) $(age)"
st=$(api GET '/api/stats?dims=sex&sex=y' boss)
is "a bad parameter: 400 before the cache" 400 "$st"
api GET '/api/stats?dims=district' rahim >/dev/null
sql "UPDATE officers SET disabled_at = now() WHERE username = 'rahim'" >/dev/null
is "a disabled officer: 401 at once, his view cached or not" 401 "$(api GET '/api/stats?dims=district' rahim)"
is "  salma (same districts) still gets the view" 200 "$(api GET '/api/stats?dims=district' salma)"

h=$(metric hit) m=$(metric miss)
check "remigate_console_stats_cache_total: hits ($h) and misses ($m) counted" \
    "[ '${h:-0}' -ge 8 ] && [ '${m:-0}' -ge 8 ]"
itest_stop

# --- bounded: 1 KiB holds a few small answers -----------------------------
itest_daemon --set kannel.secret=cache-test-secret --set console.admin_totp=optional \
    --set "console.stats_cache_ms=$ttl" --set console.stats_cache_kb=1
for u in boss; do
    curl -s -o /dev/null -c "$tmp/jar-$u" -H 'Content-Type: application/json' \
        --data "{\"username\":\"$u\",\"password\":\"$pw\"}" "$base/api/login"
done
api GET '/api/stats?dims=sex' boss >/dev/null
s0=$(j .total)
api GET '/api/stats?dims=sex' boss >/dev/null
is "stats_cache_kb=1: an answer is kept" "$s0 yes" "$(j .total) $([ -n "$(age)" ] && echo yes)"
for d in channel status need reason education country; do
    api GET "/api/stats?dims=$d" boss >/dev/null
done
add 1 BD-13 m pending
api GET '/api/stats?dims=sex' boss >/dev/null
is "  six answers later it was dropped (least recently used): read again" "$((s0 + 1)) " "$(j .total) $(age)"
itest_stop

# --- off ------------------------------------------------------------------
itest_daemon --set kannel.secret=cache-test-secret --set console.admin_totp=optional --set console.stats_cache_ms=0
curl -s -o /dev/null -c "$tmp/jar-boss" -H 'Content-Type: application/json' \
    --data "{\"username\":\"boss\",\"password\":\"$pw\"}" "$base/api/login"
api GET '/api/stats?dims=sex' boss >/dev/null
s0=$(j .total)
add 1 BD-13 m pending
api GET '/api/stats?dims=sex' boss >/dev/null
is "stats_cache_ms=0: every request reads PostgreSQL (lag_s null, no Age)" "$((s0 + 1)) null " "$(j .total) $(j .lag_s) $(age)"
is "  nothing counted as hit or miss" "" "$(metric hit | grep -v '^0$')$(metric miss | grep -v '^0$')"
itest_stop

finish
