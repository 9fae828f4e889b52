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
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pass=0 fail=0
pid=
SRV_TMP=
srv_tmpdir || exit 1
tmp=$SRV_TMP
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    srv_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() {
    fail=$((fail + 1))
    echo "not ok - $1"
    [ -f "$tmp/body" ] && sed 's/^/#   body: /' "$tmp/body" | head -3
    [ -f "$tmp/log" ] && tail -3 "$tmp/log" | sed 's/^/#   /'
}
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
finish() {
    echo "console: $pass passed, $fail failed"
    [ $fail -eq 0 ] && [ $pass -gt 0 ]
    exit
}

srv_redis_start && srv_pg_start || {
    bad "servers started"
    finish
}
sql() { srv_psql -At -c "$1"; }

cp -r config "$tmp/config"
conf=$tmp/config/remigate.conf
sed -i -e "s|^\( *dsn = \)\"\";|\1\"$PG_DSN\";|" \
    -e "s|^\( *key_file = \)\"\";|\1\"$tmp/key\";|" "$conf"
"$bin" keygen "$tmp/key" >/dev/null
"$bin" migrate -c "$conf" >/dev/null 2>&1 || {
    bad "migrate"
    finish
}

# ------------------------------------------------------------------------
# remigate officer

officer() { "$bin" officer "$@" -c "$conf" >"$tmp/out" 2>&1; }
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
login() {
    st=$(api POST /api/login "{\"username\":\"$1\",\"password\":\"$2\"}" "$3")
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
        before=$(audits "action = 'access.denied' AND actor = '${who[$role]}'")
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
check "officer enable: karim logs in again" "[ $st = 200 ]"

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
# the log

check "no password in the log" "! grep -q -e '$pw_off' -e '$pw_admin' -e '$pw_ana' -e bad-guess -e wrong-password '$tmp/log'"
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
