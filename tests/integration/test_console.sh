#!/usr/bin/env bash
# tests/integration/test_console.sh -- officer accounts and the /api/ gate,
# through the real daemon, PostgreSQL and Redis: `remigate officer`
# (add, refusals, list, passwd, disable, enable), login (cookie, CSRF
# token, the session stored hashed, a new id on each login), logout, the
# role x route matrix over every route `remigate api-routes` lists (401
# without a session, 403 for a wrong role or without the CSRF token, the
# handler for the right one), 404 and 405, idle and absolute expiry
# (admin shorter), disabled accounts and changed passwords ending
# sessions, the login throttle (429 + Retry-After, never for good), the
# audit row of each, and no password or typed username in the log.
#
# Starts its own Redis and PostgreSQL.  Prints "console: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=console
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pid=
itest_servers redis pg

itest_config "$PG_DSN"

# ------------------------------------------------------------------------
# remigate officer

pw_admin='Ruposhi-Bangla-42'
pw_off='Padma-River-Dawn-7'
pw_ana='Jamuna-Bridge-1998'
printf '%s\n' "$pw_admin" | officer add --username boss --role admin
check "officer add: an admin" "[ \$? = 0 ]"
printf '%s\n' "$pw_off" | officer add --username rahim --role officer --district BD-13 --district BD-26
check "officer add: an officer of two districts" "[ \$? = 0 ]"
printf '%s\n' "$pw_ana" | officer add --username nasrin --role analyst
check "officer add: an analyst" "[ \$? = 0 ]"
printf '%s\n' "$pw_off" | officer add --username karim --role officer --district BD-02
check "officer add: a second officer" "[ \$? = 0 ]"

printf 'short\n' | officer add --username x1x --role officer --district BD-13
check "officer add: a 5-character password is refused" "[ \$? != 0 ] && grep -q 'at least 8' '$tmp/out'"
printf 'Password123\n' | officer add --username x1x --role officer --district BD-13
check "officer add: a common password is refused (any case)" "[ \$? != 0 ] && grep -q 'common passwords' '$tmp/out'"
printf 'x1x-x1x-x1x\n' | officer add --username x1x-x1x-x1x --role officer --district BD-13
check "officer add: the username as password is refused" "[ \$? != 0 ] && grep -q 'username' '$tmp/out'"
printf '%s\n' "$(printf 'a%.0s' $(seq 129))" | officer add --username x1x --role officer --district BD-13
check "officer add: 129 characters are refused" "[ \$? != 0 ] && grep -q 'at most 128' '$tmp/out'"
printf '%s\n' "$pw_off" | officer add --username x1x --role officer --district BD-99
check "officer add: an unknown district is refused" "[ \$? != 0 ] && grep -q 'BD-99' '$tmp/out'"
printf '%s\n' "$pw_off" | officer add --username x1x --role officer
check "officer add: an officer without a district is refused" "[ \$? != 0 ]"
printf '%s\n' "$pw_off" | officer add --username x1x --role chief
check "officer add: an unknown role is refused" "[ \$? != 0 ]"
printf '%s\n' "$pw_off" | officer add --username 'Bad Name' --role analyst
check "officer add: a malformed username is refused" "[ \$? != 0 ]"
printf '%s\n' "$pw_off" | officer add --username rahim --role analyst
check "officer add: a taken username is refused" "[ \$? != 0 ] && grep -q 'exists' '$tmp/out'"
check "officer add: nothing of the refused ones stored" "[ \$(sql \"SELECT count(*) FROM officers\") = 4 ]"
h=$(sql "SELECT pw_hash FROM officers WHERE username = 'rahim'")
check "officer add: argon2id, >= 19 MiB, >= 2 passes ($h)" "echo '$h' | grep -qE '^\\\$argon2id\\\$v=19\\\$m=(19456|[2-9][0-9]{4}|[0-9]{6,}),t=([2-9]|[1-9][0-9]),p=1\\\$'"
check "officer add: audited (actor cli)" "[ \$(sql \"SELECT count(*) FROM audit_log WHERE actor = 'cli' AND action = 'officer.add' AND target = 'officer:rahim' AND detail->'districts' = '[\\\"BD-13\\\", \\\"BD-26\\\"]'\") = 1 ]"
officer list
check "officer list: every account with role, state and districts" "grep -qE '^rahim +officer +no +active .*BD-13,BD-26' '$tmp/out' && grep -qE '^boss +admin' '$tmp/out' && [ \$(grep -c . '$tmp/out') = 5 ]"

# ------------------------------------------------------------------------
# the daemon

start() {
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" --set kannel.secret=console-test-secret \
        --set console.admin_totp=optional \
        --set console.throttle.user_free=3 --set console.throttle.addr_free=8 \
        "$@" 2>>"$tmp/log" &
    pid=$!
    for _ in $(seq 200); do
        [ -s "$tmp/port" ] && break
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    port=$(cat "$tmp/port" 2>/dev/null)
    base=http://127.0.0.1:$port
    [ -n "$port" ]
}
stop() {
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    pid=
}
start || {
    bad "daemon started"
    finish
}
ok "daemon started on port $port"

# The scheduler slices (listen.slice_us 100, console.hash_slice_us 100000):
# the loop thread (with one worker, the daemon's first thread) and the two
# hashing threads, where the kernel has slices to ask for (Linux >= 6.12).
slice_of() { awk -F: '/^se\.slice /{gsub(/ /, "", $2); print $2}' "/proc/$pid/task/$1/sched" 2>/dev/null; }
kv=$(uname -r | awk -F. '{print $1 * 100 + $2}')
if [ "$kv" -ge 612 ] && [ -n "$(slice_of "$pid")" ]; then
    # the worker sets them as it starts, which may be after the port file
    for _ in $(seq 100); do
        hs=0
        for t in /proc/$pid/task/*; do
            [ "$(slice_of "${t##*/}")" = 100000000 ] && hs=$((hs + 1))
        done
        [ "$hs" = 2 ] && [ "$(slice_of "$pid")" = 100000 ] && break
        sleep 0.02
    done
    check "scheduler: the event loop asks for a 0.1 ms slice ($(slice_of "$pid") ns)" "[ '$(slice_of "$pid")' = 100000 ]"
    check "scheduler: the two hashing threads ask for 100 ms ($hs)" "[ $hs = 2 ]"
else
    echo "skip - scheduler: no slices to ask for on this kernel ($(uname -r))"
fi

# api METHOD PATH [JSON] [JAR] [CSRF]: prints the status; body in $tmp/body,
# headers in $tmp/hdr
api() {
    local args=(-s -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' --max-time 10 -X "$1")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
    [ -n "${4:-}" ] && args+=(-b "$4" -c "$4")
    [ -n "${5:-}" ] && args+=(-H "X-CSRF-Token: $5")
    curl "${args[@]}" "$base$2"
}
err() { jq -r .error "$tmp/body" 2>/dev/null; }
# login USER PASSWORD JAR: sets st (the status) and csrf
# A login answered 503 busy (no hashing thread free within
# console.hash_max_wait_ms: a loaded machine) is tried again, as the
# console's user would; any other answer is the one checked.
login() {
    for _ in 1 2 3; do
        st=$(api POST /api/login "{\"username\":\"$1\",\"password\":\"$2\"}" "$3")
        [ "$st" = 503 ] || break
        sleep 0.5
    done
    csrf=$(jq -r '.csrf // empty' "$tmp/body" 2>/dev/null)
}
audits() { sql "SELECT count(*) FROM audit_log WHERE $1"; }

st=$(api GET /api/me)
check "no cookie: GET /api/me is 401 no_session" "[ $st = 401 ] && [ \"\$(err)\" = no_session ]"
check "errors are JSON with error and message" "jq -e '.message | length > 0' '$tmp/body' >/dev/null && grep -qi '^content-type: application/json' '$tmp/hdr'"
st=$(api GET /api/nothing-here)
check "unknown API path: 404 not_found" "[ $st = 404 ] && [ \"\$(err)\" = not_found ]"
st=$(api GET /api/login)
check "GET /api/login: 405 with Allow: POST" "[ $st = 405 ] && grep -qi '^allow: POST' '$tmp/hdr'"
st=$(api POST /api/login 'not json')
check "login with a body that is not JSON: 400" "[ $st = 400 ]"
st=$(api POST /api/login '{"username":"rahim"}')
check "login without a password: 400" "[ $st = 400 ]"

login rahim wrong-password-1 "$tmp/j0"
check "login with a wrong password: 401 bad_credentials" "[ $st = 401 ] && [ \"\$(err)\" = bad_credentials ]"
check "  audited: login failed, bad_password, the officer, the source" "[ \$(audits \"action = 'login' AND outcome = 'failed' AND actor = 'rahim' AND actor_id IS NOT NULL AND source = '127.0.0.1' AND detail->>'reason' = 'bad_password'\") = 1 ]"
login nobody-here "$pw_off" "$tmp/j0"
check "login with an unknown username: the same 401" "[ $st = 401 ] && [ \"\$(err)\" = bad_credentials ]"
check "  audited as anonymous, the typed name not kept" "[ \$(audits \"action = 'login' AND outcome = 'failed' AND actor = 'anonymous' AND target IS NULL AND detail->>'reason' = 'unknown_user'\") = 1 ] && [ \$(audits \"detail::text LIKE '%nobody-here%' OR target LIKE '%nobody-here%'\") = 0 ]"

j=$tmp/jar-rahim
login Rahim "$pw_off" "$j"
check "login: 200 (the username in any case)" "[ $st = 200 ]"
check "  answer: csrf (128 bits, hex), role, districts" "echo '$csrf' | grep -qE '^[0-9a-f]{32}$' && [ \"\$(jq -c '[.role, .districts]' '$tmp/body')\" = '[\"officer\",[\"BD-13\",\"BD-26\"]]' ]"
cookie=$(grep -i '^set-cookie:' "$tmp/hdr" | tr -d '\r')
check "  cookie: remigate_console, 128 bits, HttpOnly, SameSite=Strict, Path=/, not Secure by default" "echo '$cookie' | grep -qE 'remigate_console=[0-9a-f]{32};' && echo '$cookie' | grep -q 'HttpOnly' && echo '$cookie' | grep -q 'SameSite=Strict' && echo '$cookie' | grep -q 'Path=/' && ! echo '$cookie' | grep -q Secure"
sid=$(echo "$cookie" | sed -E 's/.*remigate_console=([0-9a-f]{32}).*/\1/')
sidhash=$(printf '%s' "$sid" | sha256sum | cut -c1-64)
check "  the session is stored by its SHA-256, never the id itself" "[ \$(sql \"SELECT count(*) FROM console_sessions WHERE id_hash = decode('$sidhash', 'hex') AND ended_at IS NULL\") = 1 ] && ! sql 'SELECT encode(id_hash, '\"'hex'\"'), csrf FROM console_sessions' | grep -q '$sid'"
check "  audited: login ok" "[ \$(audits \"action = 'login' AND outcome = 'ok' AND actor = 'rahim' AND role = 'officer'\") = 1 ]"
check "  the failure count of the username is cleared" "[ \$(sql \"SELECT count(*) FROM login_throttle WHERE key = 'u:rahim'\") = 0 ]"
st=$(api GET /api/me "" "$j")
check "GET /api/me: who, role, districts, csrf" "[ $st = 200 ] && [ \"\$(jq -c '[.username, .role, .districts, .csrf == \"$csrf\"]' '$tmp/body')\" = '[\"rahim\",\"officer\",[\"BD-13\",\"BD-26\"],true]' ]"
check "  no-store on API answers" "grep -qi '^cache-control: no-store' '$tmp/hdr'"

# a new id on each login: logging in again with the old cookie ends it
old_hash=$sidhash
login rahim "$pw_off" "$j"
csrf_r=$csrf
sid2=$(grep -i '^set-cookie:' "$tmp/hdr" | sed -E 's/.*remigate_console=([0-9a-f]{32}).*/\1/' | tr -d '\r')
check "login again: a new session id, the old one ended" "[ $st = 200 ] && [ '$sid2' != '$sid' ] && [ \"\$(sql \"SELECT ended_why FROM console_sessions WHERE id_hash = decode('$old_hash', 'hex')\")\" = logout ]"
st=$(curl -s -o /dev/null -w '%{http_code}' -b "remigate_console=$sid" "$base/api/me")
check "  the old id no longer works" "[ $st = 401 ]"

# ------------------------------------------------------------------------
# every route x every role

login boss "$pw_admin" "$tmp/jar-admin"
csrf_a=$csrf
login nasrin "$pw_ana" "$tmp/jar-analyst"
csrf_n=$csrf
declare -A jar=([admin]=$tmp/jar-admin [officer]=$j [analyst]=$tmp/jar-analyst)
declare -A tok=([admin]=$csrf_a [officer]=$csrf_r [analyst]=$csrf_n)
declare -A who=([admin]=boss [officer]=rahim [analyst]=nasrin)
declare -A pw=([admin]=$pw_admin [officer]=$pw_off [analyst]=$pw_ana)
"$bin" api-routes >"$tmp/routes"
nroutes=$(grep -c . "$tmp/routes")
check "api-routes lists the table ($nroutes routes)" "[ $nroutes -ge 3 ] && grep -q '^POST /api/login public -' '$tmp/routes'"
matrix_bad=0 matrix_n=0
while read -r method pattern roles csrf_flag _; do
    path=${pattern//\{\}/X0000TEST}
    body='{}'
    [ "$method" = GET ] && body=
    if [ "$roles" = public ]; then
        continue
    fi
    matrix_n=$((matrix_n + 1))
    st=$(api "$method" "$path" "$body")
    if [ "$st" != 401 ]; then
        matrix_bad=$((matrix_bad + 1))
        echo "# $method $pattern without a session: $st"
    fi
    for role in admin officer analyst; do
        before=$(audits "action = 'access.denied' AND actor = '${who[$role]}' AND target = '$path'")
        st=$(api "$method" "$path" "$body" "${jar[$role]}" "${tok[$role]}")
        e=$(err)
        if [[ ",$roles," == *",$role,"* ]]; then
            # allowed: the handler answers (whatever it says, not the gate)
            case "$st:$e" in
            401:* | 403:forbidden | 403:csrf | 404:not_found | 405:*)
                matrix_bad=$((matrix_bad + 1))
                echo "# $method $pattern as $role: $st $e"
                ;;
            esac
            if [ "$csrf_flag" = csrf ] && [ "$pattern" != /api/logout ]; then
                st=$(api "$method" "$path" "$body" "${jar[$role]}")
                if [ "$st:$(err)" != 403:csrf ]; then
                    matrix_bad=$((matrix_bad + 1))
                    echo "# $method $pattern as $role without X-CSRF-Token: $st"
                fi
                st=$(api "$method" "$path" "$body" "${jar[$role]}" 0123456789abcdef0123456789abcdef)
                if [ "$st:$(err)" != 403:csrf ]; then
                    matrix_bad=$((matrix_bad + 1))
                    echo "# $method $pattern as $role with a wrong X-CSRF-Token: $st"
                fi
            fi
            if [ "$pattern" = /api/logout ]; then
                login "${who[$role]}" "${pw[$role]}" "${jar[$role]}"
                tok[$role]=$csrf
            fi
        else
            after=$(audits "action = 'access.denied' AND actor = '${who[$role]}' AND outcome = 'denied' AND role = '$role' AND detail->>'reason' = 'role' AND target = '$path'")
            if [ "$st:$e" != 403:forbidden ] || [ "$after" -le "$before" ]; then
                matrix_bad=$((matrix_bad + 1))
                echo "# $method $pattern as $role: $st $e (denials audited: $before -> $after)"
            fi
        fi
    done
done <"$tmp/routes"
check "role x route: $matrix_n routes x (none, admin, officer, analyst): 401 / 403 audited / CSRF / the handler" "[ $matrix_bad = 0 ] && [ $matrix_n -ge 2 ]"

# ------------------------------------------------------------------------
# logout, expiry, disabled, password changed

st=$(api POST /api/logout "" "$j")
check "logout without the CSRF token: 403 csrf, still logged in" "[ $st = 403 ] && [ \"\$(err)\" = csrf ] && [ \$(api GET /api/me '' '$j') = 200 ]"
check "  the refusal is audited" "[ \$(audits \"action = 'access.denied' AND actor = 'rahim' AND detail->>'reason' = 'csrf'\") -ge 1 ]"
h=$(sql "SELECT encode(id_hash, 'hex') FROM console_sessions WHERE officer_id = (SELECT id FROM officers WHERE username = 'rahim') AND ended_at IS NULL")
st=$(api POST /api/logout "" "$j" "${tok[officer]}")
check "logout: 200, the cookie cleared" "[ $st = 200 ] && grep -i '^set-cookie:' '$tmp/hdr' | grep -q 'Max-Age=0'"
check "  the session ended (logout), audited" "[ \"\$(sql \"SELECT ended_why FROM console_sessions WHERE id_hash = decode('$h', 'hex')\")\" = logout ] && [ \$(audits \"action = 'logout' AND actor = 'rahim'\") -ge 1 ]"
st=$(curl -s -o /dev/null -w '%{http_code}' -b "remigate_console=$sid2" "$base/api/me")
check "  the old cookie: 401" "[ $st = 401 ]"

# idle: 30 minutes for officers, 15 for admins (the clock moved back in SQL)
login rahim "$pw_off" "$j"
login boss "$pw_admin" "$tmp/jar-admin"
back() { sql "UPDATE console_sessions s SET $2 FROM officers o WHERE o.id = s.officer_id AND o.username = '$1' AND s.ended_at IS NULL" >/dev/null; }
back rahim "last_seen_at = now() - interval '16 minutes'"
back boss "last_seen_at = now() - interval '16 minutes'"
st_o=$(api GET /api/me "" "$j")
st_a=$(api GET /api/me "" "$tmp/jar-admin")
check "16 minutes idle: the officer stays, the admin is out (15 min)" "[ $st_o = 200 ] && [ $st_a = 401 ] && [ \"\$(err)\" = session_expired ]"
check "  the admin's session ended as idle" "[ \$(sql \"SELECT count(*) FROM console_sessions s JOIN officers o ON o.id = s.officer_id WHERE o.username = 'boss' AND s.ended_why = 'idle'\") = 1 ]"
back rahim "last_seen_at = now() - interval '31 minutes'"
st=$(api GET /api/me "" "$j")
check "31 minutes idle: the officer is out" "[ $st = 401 ] && [ \"\$(err)\" = session_expired ]"
login rahim "$pw_off" "$j"
back rahim "created_at = now() - interval '12 hours 1 minute'"
st=$(api GET /api/me "" "$j")
check "12 hours after login: out however busy (absolute)" "[ $st = 401 ] && [ \$(sql \"SELECT count(*) FROM console_sessions WHERE ended_why = 'absolute'\") = 1 ]"

# disabled: the session ends at once, and login is refused
login karim "$pw_off" "$tmp/jar-karim"
check "karim logged in" "[ \$(api GET /api/me '' '$tmp/jar-karim') = 200 ]"
officer disable --username karim
check "officer disable: ok" "[ \$? = 0 ] && grep -q 'disable karim' '$tmp/out'"
st=$(api GET /api/me "" "$tmp/jar-karim")
check "  karim's open session: 401 on the next call" "[ $st = 401 ] && [ \$(sql \"SELECT count(*) FROM console_sessions s JOIN officers o ON o.id = s.officer_id WHERE o.username = 'karim' AND s.ended_why = 'disabled'\") = 1 ]"
login karim "$pw_off" "$tmp/jar-karim"
check "  login with the right password: 401, audited as disabled" "[ $st = 401 ] && [ \$(audits \"action = 'login' AND actor = 'karim' AND detail->>'reason' = 'disabled'\") = 1 ]"
check "  officer disable is audited" "[ \$(audits \"action = 'officer.disable' AND target = 'officer:karim'\") = 1 ]"
officer enable --username karim
login karim "$pw_off" "$tmp/jar-karim"
check "officer enable: karim logs in again (got $st)" "[ $st = 200 ]"

# password changed from the command line: sessions end, the old one fails
printf '%s\n' 'Meghna-Estuary-2026' | officer passwd --username karim
check "officer passwd: ok" "[ \$? = 0 ]"
st=$(api GET /api/me "" "$tmp/jar-karim")
check "  the open session ends (password)" "[ $st = 401 ] && [ \$(sql \"SELECT count(*) FROM console_sessions WHERE ended_why = 'password'\") -ge 1 ]"
login karim "$pw_off" "$tmp/jar-karim"; st1=$st
login karim 'Meghna-Estuary-2026' "$tmp/jar-karim"; st2=$st
check "  the old password fails, the new one works" "[ $st1 = 401 ] && [ $st2 = 200 ]"
printf 'qwerty123\n' | officer passwd --username karim
check "officer passwd: a common password is refused" "[ \$? != 0 ]"
printf '%s\n' "$pw_off" | officer passwd --username nobody
check "officer passwd: an unknown officer is an error" "[ \$? != 0 ] && grep -q 'no officer' '$tmp/out'"

# ------------------------------------------------------------------------
# the throttle: per username, per address; capped; never for good

sql "DELETE FROM login_throttle" >/dev/null
for i in 1 2 3; do login nasrin "bad-guess-$i" "$tmp/j9"; done
login nasrin "$pw_ana" "$tmp/j9"
check "3 failures are free: the right password still works" "[ $st = 200 ]"
for i in 1 2 3 4; do login nasrin "bad-guess-$i" "$tmp/j9"; done
login nasrin "$pw_ana" "$tmp/j9"
ra=$(grep -i '^retry-after:' "$tmp/hdr" | tr -dc '0-9')
check "the 4th failure in a row: the next attempt is 429 with Retry-After ($ra s)" "[ $st = 429 ] && [ \"\$(err)\" = throttled ] && [ -n '$ra' ] && [ '$ra' -ge 1 ] && [ '$ra' -le 2 ]"
check "  the throttled attempt is audited (denied)" "[ \$(audits \"action = 'login' AND actor = 'nasrin' AND outcome = 'denied' AND detail->>'reason' = 'throttled'\") -ge 1 ]"
sleep "$((ra + 1))"
login nasrin "$pw_ana" "$tmp/j9"
check "after the delay the right password works (no lockout)" "[ $st = 200 ]"
delay_after() {
    sql "INSERT INTO login_throttle (key, failures) VALUES ('u:nasrin', $1) ON CONFLICT (key) DO UPDATE SET failures = $1, blocked_until = NULL, last_failure_at = now()" >/dev/null
    login nasrin bad-guess-x "$tmp/j9"
    sql "SELECT ceil(extract(epoch FROM blocked_until - now())) FROM login_throttle WHERE key = 'u:nasrin'"
}
d6=$(delay_after 5)
d40=$(delay_after 40)
check "the delay grows (6th failure: 4 s, got $d6) and is capped (41st: console.throttle.max_delay 300 s, got $d40)" "[ '$d6' = 4 ] && [ '$d40' -ge 299 ] && [ '$d40' -le 300 ]"
sql "DELETE FROM login_throttle" >/dev/null
for i in $(seq 1 9); do login "ghost$i" "bad-guess-$i" "$tmp/j9"; done
login rahim "$pw_off" "$tmp/j9"
check "per address: 9 failures over 9 usernames (8 free): the next login from there is 429" "[ $st = 429 ]"
sql "DELETE FROM login_throttle" >/dev/null

# ------------------------------------------------------------------------
# TOTP for admins (console.admin_totp = required)

stop
start --set console.admin_totp=required || bad "daemon restarted"
ja=$tmp/jar-admin
login boss "$pw_admin" "$ja"
check "admin without TOTP: login 200 says totp_required" "[ $st = 200 ] && [ \"\$(jq -r .totp_required '$tmp/body')\" = true ]"
csrf_a=$csrf
st=$(api GET /api/officers "" "$ja")
check "  anything but enrolment: 403 totp_required (audited)" "[ $st = 403 ] && [ \"\$(err)\" = totp_required ] && [ \$(audits \"action = 'access.denied' AND actor = 'boss' AND detail->>'reason' = 'totp'\") -ge 1 ]"
st=$(api GET /api/me "" "$ja")
check "  /api/me still answers" "[ $st = 200 ]"
st=$(api POST /api/totp/enrol '{}' "$ja" "$csrf_a")
secret=$(jq -r .secret "$tmp/body")
uri=$(jq -r .uri "$tmp/body")
check "enrol: a base32 secret (160 bits) and an otpauth URI" "[ $st = 200 ] && echo '$secret' | grep -qE '^[A-Z2-7]{32}$' && [ '$uri' = 'otpauth://totp/remigate:boss?secret=$secret&issuer=remigate&algorithm=SHA1&digits=6&period=30' ]"
check "  stored sealed, not yet on" "[ \"\$(sql \"SELECT totp_enabled, totp_enc IS NOT NULL FROM officers WHERE username = 'boss'\")\" = 'f|t' ] && ! sql \"SELECT convert_from(totp_enc, 'SQL_ASCII') FROM officers\" | grep -q '$secret'"
st=$(api POST /api/totp/confirm '{"otp":"000000"}' "$ja" "$csrf_a")
[ "$(oathtool --totp -b "$secret")" = 000000 ] && st=400
check "confirm with a wrong code: 400 bad_otp, audited, still off" "[ $st = 400 ] && [ \"\$(err)\" = bad_otp ] && [ \$(audits \"action = 'totp.confirm' AND outcome = 'failed'\") = 1 ] && [ \"\$(sql \"SELECT totp_enabled FROM officers WHERE username = 'boss'\")\" = f ]"
code=$(oathtool --totp -b "$secret")
st=$(api POST /api/totp/confirm "{\"otp\":\"$code\"}" "$ja" "$csrf_a")
check "confirm with the app's code: on, audited" "[ $st = 200 ] && [ \"\$(sql \"SELECT totp_enabled FROM officers WHERE username = 'boss'\")\" = t ] && [ \$(audits \"action = 'totp.confirm' AND outcome = 'ok'\") = 1 ]"
st=$(api GET /api/officers "" "$ja")
check "  the same session may now do admin work" "[ $st = 200 ]"
st=$(api POST /api/totp/enrol '{}' "$ja" "$csrf_a")
check "  enrolling again: 409" "[ $st = 409 ]"
api POST /api/logout "" "$ja" "$csrf_a" >/dev/null
login boss "$pw_admin" "$ja"
check "login without a code: 401 otp_required" "[ $st = 401 ] && [ \"\$(err)\" = otp_required ]"
st=$(api POST /api/login "{\"username\":\"boss\",\"password\":\"$pw_admin\",\"otp\":\"$code\"}" "$ja")
check "login with the code already used: 401 (a code is good once)" "[ $st = 401 ] && [ \$(audits \"action = 'login' AND actor = 'boss' AND detail->>'reason' = 'otp_reused'\") = 1 ]"
st=$(api POST /api/login "{\"username\":\"boss\",\"password\":\"wrong-$pw_admin\",\"otp\":\"$(oathtool --totp -b --now="@$(($(date +%s) + 30))" "$secret")\"}" "$ja")
check "login with a good code but a wrong password: 401" "[ $st = 401 ]"
next=$(oathtool --totp -b --now="@$(($(date +%s) + 30))" "$secret")
st=$(api POST /api/login "{\"username\":\"boss\",\"password\":\"$pw_admin\",\"otp\":\"$next\"}" "$ja")
csrf_a=$(jq -r .csrf "$tmp/body")
check "login with password and the next code: 200" "[ $st = 200 ]"
sql "DELETE FROM login_throttle" >/dev/null

# ------------------------------------------------------------------------
# the admins' account calls

st=$(api GET /api/officers "" "$ja")
check "GET /api/officers: every account, districts, TOTP, state" "[ $st = 200 ] && [ \"\$(jq -c '[.items[] | select(.username == \"rahim\") | .role, .districts, .totp, .disabled]' '$tmp/body')\" = '[\"officer\",[\"BD-13\",\"BD-26\"],false,false]' ] && [ \"\$(jq '.items | length' '$tmp/body')\" = 4 ]"
pw_s='Karnaphuli-Tunnel-2023'
st=$(api POST /api/officers "{\"username\":\"salma\",\"role\":\"officer\",\"districts\":[\"BD-13\"],\"password\":\"$pw_s\"}" "$ja" "$csrf_a")
check "add an officer: 201, audited with the admin as actor" "[ $st = 201 ] && [ \$(audits \"action = 'officer.add' AND actor = 'boss' AND target = 'officer:salma' AND detail->'districts' = '[\\\"BD-13\\\"]'\") = 1 ]"
check "  argon2id hash stored" "sql \"SELECT pw_hash FROM officers WHERE username = 'salma'\" | grep -q '^\\\$argon2id\\\$v=19\\\$m=19456,t=2'"
st=$(api POST /api/officers "{\"username\":\"salma\",\"role\":\"analyst\",\"password\":\"$pw_s\"}" "$ja" "$csrf_a")
check "  the same username again: 409" "[ $st = 409 ] && [ \"\$(err)\" = username_taken ]"
bad_adds=0
for b in '{"username":"x2x","role":"officer","districts":["BD-99"],"password":"Karnaphuli-2023-x"}' \
         '{"username":"x2x","role":"officer","districts":[],"password":"Karnaphuli-2023-x"}' \
         '{"username":"x2x","role":"admin","districts":["BD-13"],"password":"Karnaphuli-2023-x"}' \
         '{"username":"x2x","role":"officer","districts":["BD-13"],"password":"password123"}' \
         '{"username":"x2x","role":"officer","districts":["BD-13"],"password":"short"}' \
         '{"username":"X 2","role":"officer","districts":["BD-13"],"password":"Karnaphuli-2023-x"}' \
         '{"username":"x2x","role":"boss","password":"Karnaphuli-2023-x"}' \
         '{"username":"x2x","role":"officer","districts":"BD-13","password":"Karnaphuli-2023-x"}'; do
    st=$(api POST /api/officers "$b" "$ja" "$csrf_a")
    [ "$st" = 400 ] || { bad_adds=$((bad_adds + 1)); echo "# $b: $st"; }
done
check "  bad district, none, districts for an admin, a common or short password, a bad username or role: 400 each" "[ $bad_adds = 0 ] && [ \$(sql \"SELECT count(*) FROM officers WHERE username = 'x2x'\") = 0 ]"
js=$tmp/jar-salma
login salma "$pw_s" "$js"
csrf_s=$csrf
check "the new officer logs in" "[ $st = 200 ]"
st=$(api POST /api/officers/salma/districts '{"districts":["BD-26","BD-02"]}' "$ja" "$csrf_a")
st2=$(api GET /api/me "" "$js")
check "new districts: in force for her open session at once" "[ $st = 200 ] && [ \"\$(jq -c .districts '$tmp/body')\" = '[\"BD-02\",\"BD-26\"]' ] && [ \$(audits \"action = 'officer.districts' AND target = 'officer:salma'\") = 1 ]"
st=$(api POST /api/officers/nasrin/districts '{"districts":["BD-26"]}' "$ja" "$csrf_a")
check "  districts for an analyst: 409" "[ $st = 409 ]"
st=$(api POST /api/officers/salma/password '{"password":"qwerty123"}' "$ja" "$csrf_a")
check "a common new password: 400" "[ $st = 400 ]"
st=$(api POST /api/officers/salma/password '{"password":"Sundarbans-Tiger-88"}' "$ja" "$csrf_a")
st2=$(api GET /api/me "" "$js")
check "a new password: 200, her session ends" "[ $st = 200 ] && [ $st2 = 401 ] && [ \$(audits \"action = 'officer.passwd' AND actor = 'boss'\") = 1 ]"
login salma "$pw_s" "$js"
st1=$st
login salma Sundarbans-Tiger-88 "$js"
check "  the old password fails, the new one works" "[ $st1 = 401 ] && [ $st = 200 ]"
st=$(api POST /api/officers/salma/disable '{}' "$ja" "$csrf_a")
st2=$(api GET /api/me "" "$js")
check "disable: 200, her session ends at once" "[ $st = 200 ] && [ $st2 = 401 ] && [ \$(audits \"action = 'officer.disable' AND actor = 'boss' AND target = 'officer:salma'\") = 1 ]"
login salma Sundarbans-Tiger-88 "$js"
check "  she cannot log in" "[ $st = 401 ]"
st=$(api POST /api/officers/salma/enable '{}' "$ja" "$csrf_a")
login salma Sundarbans-Tiger-88 "$js"
check "enable: she logs in again" "[ $st = 200 ]"
st=$(api POST /api/officers/boss/disable '{}' "$ja" "$csrf_a")
check "an admin cannot disable themselves: 409" "[ $st = 409 ] && [ \"\$(sql \"SELECT disabled_at IS NULL FROM officers WHERE username = 'boss'\")\" = t ]"
st=$(api POST /api/officers/nobody/enable '{}' "$ja" "$csrf_a")
check "an unknown account: 404 no_officer, nothing audited" "[ $st = 404 ] && [ \"\$(err)\" = no_officer ] && [ \$(audits \"target = 'officer:nobody'\") = 0 ]"
# a second admin enrols; the first resets it (a lost phone)
st=$(api POST /api/officers "{\"username\":\"boss2\",\"role\":\"admin\",\"password\":\"Lalbagh-Fort-1678\"}" "$ja" "$csrf_a")
j2=$tmp/jar-boss2
login boss2 Lalbagh-Fort-1678 "$j2"
c2=$csrf
api POST /api/totp/enrol '{}' "$j2" "$c2" >/dev/null
s2=$(jq -r .secret "$tmp/body")
st=$(api POST /api/totp/confirm "{\"otp\":\"$(oathtool --totp -b "$s2")\"}" "$j2" "$c2")
check "a second admin enrols" "[ $st = 200 ]"
st=$(api POST /api/officers/boss2/totp-reset '{}' "$ja" "$csrf_a")
st2=$(api GET /api/me "" "$j2")
check "TOTP reset by another admin: off, the secret gone, the sessions end, audited" "[ $st = 200 ] && [ $st2 = 401 ] && [ \"\$(sql \"SELECT totp_enabled, totp_enc IS NULL FROM officers WHERE username = 'boss2'\")\" = 'f|t' ] && [ \$(audits \"action = 'officer.totp_reset' AND target = 'officer:boss2'\") = 1 ]"
login boss2 Lalbagh-Fort-1678 "$j2"
check "  boss2 logs in with the password alone (to enrol again)" "[ $st = 200 ] && [ \"\$(jq -r .totp_required '$tmp/body')\" = true ]"

# ------------------------------------------------------------------------
# the audit log, for admins

st=$(api GET '/api/audit?limit=500' "" "$ja")
check "GET /api/audit?limit=500: 400 (at most 200)" "[ $st = 400 ]"
st=$(api GET '/api/audit?limit=200' "" "$ja")
ids=$(jq -r '[.items[].id] | map(tostring) | join(" ")' "$tmp/body")
check "GET /api/audit: newest first, every field" "[ $st = 200 ] && [ \"\$(jq '[.items[].id] == ([.items[].id] | sort | reverse)' '$tmp/body')\" = true ] && jq -e '.items[0] | has(\"at\") and has(\"actor\") and has(\"actor_id\") and has(\"role\") and has(\"source\") and has(\"action\") and has(\"target\") and has(\"outcome\") and has(\"detail\")' '$tmp/body' >/dev/null"
st=$(api GET '/api/audit?actor=boss&action=officer.add' "" "$ja")
check "filter by actor and action" "[ $st = 200 ] && [ \"\$(jq '[.items[] | select(.actor != \"boss\" or .action != \"officer.add\")] | length' '$tmp/body')\" = 0 ] && [ \"\$(jq '.items | length' '$tmp/body')\" = 2 ]"
st=$(api GET '/api/audit?target=officer:salma' "" "$ja")
n_salma=$(jq '.items | length' "$tmp/body")
check "filter by target ($n_salma rows about salma)" "[ $st = 200 ] && [ $n_salma = \$(audits \"target = 'officer:salma'\") ]"
st=$(api GET '/api/audit?outcome=denied' "" "$ja")
check "filter by outcome" "[ $st = 200 ] && [ \"\$(jq '[.items[] | select(.outcome != \"denied\")] | length' '$tmp/body')\" = 0 ] && [ \"\$(jq '.items | length' '$tmp/body')\" -ge 1 ]"
st=$(api GET "/api/audit?from=$(date -u +%Y-%m-%d)&to=2100-01-01" "" "$ja")
n1=$(jq '.items | length' "$tmp/body")
st2=$(api GET "/api/audit?to=2000-01-01" "" "$ja")
check "filter by date: today on ($n1), nothing before 2000" "[ $st = 200 ] && [ $n1 -ge 10 ] && [ $st2 = 200 ] && [ \"\$(jq '.items | length' '$tmp/body')\" = 0 ]"
# pages of 7: the same rows as one page, none twice, the last next null
all=$(audits "true")
cursor= seen= pages=0
while :; do
    st=$(api GET "/api/audit?limit=7${cursor:+&cursor=$cursor}" "" "$ja")
    [ "$st" = 200 ] || break
    seen="$seen $(jq -r '[.items[].id] | map(tostring) | join(" ")' "$tmp/body")"
    pages=$((pages + 1))
    cursor=$(jq -r '.next // empty' "$tmp/body")
    [ -n "$cursor" ] || break
    [ $pages -lt 100 ] || break
done
nseen=$(echo $seen | wc -w)
nuniq=$(echo $seen | tr ' ' '\n' | sort -u | grep -c .)
check "keyset pages of 7: $pages pages, every row once ($nseen seen of $all)" "[ $nseen -ge \$((all - 3)) ] && [ $nseen = $nuniq ] && [ $pages -ge 3 ]"
bad_q=0
for q in 'from=not-a-date' 'cursor=abc' 'limit=0' 'outcome=maybe' 'bogus=1' 'actor=a&actor=b'; do
    st=$(api GET "/api/audit?$q" "" "$ja")
    [ "$st" = 400 ] || { bad_q=$((bad_q + 1)); echo "# $q: $st"; }
done
check "malformed filters (a bad date, cursor, limit, outcome, unknown or repeated key): 400 each" "[ $bad_q = 0 ]"
check "the tables are append-only for the console role too" "! srv_psql -c \"SET ROLE remigate_console; DELETE FROM audit_log\" 2>/dev/null"

# ------------------------------------------------------------------------
# the log

check "no password or TOTP secret in the log" "! grep -q -e '$pw_off' -e '$pw_admin' -e '$pw_ana' -e '$pw_s' -e Sundarbans -e Lalbagh -e bad-guess -e wrong-password -e '$secret' -e '$s2' '$tmp/log'"
check "no username typed at the login form in the log" "! grep -q -e nobody-here -e ghost1 '$tmp/log'"

# the config keys: seconds are enough for the idle timeout
stop
start --set console.idle_timeout=1 || bad "daemon restarted"
login rahim "$pw_off" "$j"
sleep 2
st=$(api GET /api/me "" "$j")
check "console.idle_timeout=1: out after 2 s" "[ $st = 401 ]"
stop
check "the daemon stopped cleanly" "! grep -qi -e 'assertion' -e 'AddressSanitizer' -e 'runtime error' '$tmp/log'"
finish
