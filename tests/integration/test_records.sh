#!/usr/bin/env bash
# tests/integration/test_records.sh -- what finished dialogues leave in
# PostgreSQL, through the daemon: `remigate migrate` and `keygen`, a Bangla
# registration over /ussd/at becomes a pending row with the reference the
# caller saw, status lookups (pending, verified, rejected with a reason, no
# registration), a skills update, the same registration submitted twice,
# and PostgreSQL killed: the record waits in the Redis queue, the caller
# still gets a reference, and the drainer stores it when PostgreSQL is back.
# A daemon on an unmigrated database refuses to start.  Two workers racing
# the same confirming answers (many copies at once) store each once.
#
# It starts its own Redis and PostgreSQL (tests/lib/servers.sh) so it can
# kill them.  Prints "records: N passed, N failed".
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
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    srv_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok()  { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; [ -f "$tmp/log" ] && tail -5 "$tmp/log" | sed 's/^/#   /'; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
finish() { echo "records: $pass passed, $fail failed"; [ $fail -eq 0 ] && [ $pass -gt 0 ]; exit; }

srv_redis_start && srv_pg_start || { bad "servers started"; finish; }
rc() { redis-cli -p "$REDIS_PORT" --raw "$@"; }
sql() { srv_psql -At -c "$1"; }

cp -r config "$tmp/config"
conf=$tmp/config/remigate.conf
sed -i -e "s|^\( *dsn = \)\"\";|\1\"$PG_DSN\";|" \
       -e "s|^\( *key_file = \)\"\";|\1\"$tmp/key\";|" "$conf"

"$bin" keygen "$tmp/key" >/dev/null
check "keygen wrote a key file" "[ -s '$tmp/key' ]"

# start [WORKERS]: the daemon on a free port (one worker unless asked)
start() {
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers "${1:-1}" --port 0 --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" --set limits.request_timeout_ms=1500 \
        --set postgres.timeout_ms=500 2>>"$tmp/log" &
    pid=$!
    for _ in $(seq 200); do
        [ -s "$tmp/port" ] && break
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    port=$(cat "$tmp/port" 2>/dev/null)
    base=http://127.0.0.1:$port
    [ -n "$port" ] || return 1
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] && return 0
        sleep 0.05
    done
    return 0
}

# a daemon on a database that was never migrated does not start
"$bin" -c "$conf" --workers 1 --port 0 --redis-port "$REDIS_PORT" 2>"$tmp/unmigrated.log" &
upid=$!
for _ in $(seq 100); do kill -0 $upid 2>/dev/null || break; sleep 0.05; done
if kill -0 $upid 2>/dev/null; then kill -9 $upid; wait $upid 2>/dev/null; urc=running; else wait $upid; urc=$?; fi
check "unmigrated database: the daemon stops (exit $urc) and names remigate migrate" "[ '$urc' != running ] && [ '$urc' != 0 ] && grep -q 'remigate migrate' '$tmp/unmigrated.log'"

"$bin" migrate -c "$conf" >"$tmp/migrate.out" 2>&1
check "migrate applies the migrations" "[ \$? = 0 ] && [ \"\$(sql 'SELECT count(*) FROM returnees')\" = 0 ]"
"$bin" migrate -c "$conf" >/dev/null 2>&1
check "migrate again is a no-op" "[ \$? = 0 ]"

start || { bad "daemon started"; finish; }
ok "daemon started on port $port"
s=$(curl -s "$base/healthz")
check "healthz names redis and postgres up ($s)" "[ '$s' = '{\"redis\":\"up\",\"postgres\":\"up\"}' ]"

# at SID PHONE TEXT
at() {
    curl -s -o "$tmp/body" -w '%{http_code}' --max-time 5 \
        --data-urlencode "sessionId=$1" --data-urlencode "serviceCode=*247#" \
        --data-urlencode "phoneNumber=$2" --data-urlencode "text=$3" "$base/ussd/at"
}
# dialogue SID PHONE ANSWERS...: every answer in turn; the last body stays
dialogue() {
    local sid=$1 phone=$2 text= a
    shift 2
    at "$sid" "$phone" "" >/dev/null
    for a in "$@"; do
        text=${text:+$text*}$a
        at "$sid" "$phone" "$text" >/dev/null
        head -c4 "$tmp/body" | grep -q '^CON ' || break
    done
}
body() { cat "$tmp/body"; }

reg=(1 1 1 "রহিমা বেগম" 2 ১৯৯০ 3 2 1 5 2024 1 4 "2 5 9" 3 1 ১২৩৪৫৬৭৮৯০ 98 98 98 98 98 1)
phone=8801712345678
dialogue r1 $phone "${reg[@]}"
ref=$(body | grep -oE '[0-9A-Z]{10}' | head -1)
check "registration: the caller gets a reference ($ref)" "[ -n '$ref' ] && body | grep -q '^END '"
row=$(sql "SELECT status, ref, name, district, array_to_string(skills, ' '), nid_enc IS NOT NULL FROM returnees WHERE msisdn = '$phone'")
check "registration: a pending row with that reference ($row)" "[ \"\$row\" = \"pending|$ref|রহিমা বেগম|BD-15|construction welder machine|t\" ]"
check "registration: the NID is not stored in clear" "! sql \"SELECT nid_enc::text FROM returnees\" | grep -q 1234567890"
check "registration: nothing waits in the queue" "[ \$(rc LLEN remigate:queue:records) = 0 ]"

# status: 1 (Bangla, remembered? no: a new session id, same phone) ...
status_of() { dialogue "st-$RANDOM" $phone 3; }
status_of
check "status: pending" "body | grep -q 'এখনো যাচাই হয়নি'"
sql "UPDATE returnees SET status = 'verified' WHERE msisdn = '$phone'" >/dev/null
status_of
check "status: verified" "body | grep -q 'যাচাই হয়েছে'"
sql "UPDATE returnees SET status = 'rejected', reject_reason = 'NID mismatch' WHERE msisdn = '$phone'" >/dev/null
status_of
check "status: rejected, with the officer's reason" "body | grep -q 'NID mismatch'"
dialogue st-none 8801912345000 1 3   # a new number: the language first
check "status: no registration for another number" "body | grep -q 'কোনো নিবন্ধন নেই'"

# skills: 2 from the main menu, then skills 1 and 15, read-back, confirm
dialogue sk1 $phone 2 "1 15" 98 1
skills=$(sql "SELECT array_to_string(skills, ' ') FROM returnees WHERE msisdn = '$phone'")
check "update skills: stored ($skills)" "[ '$skills' = 'mason hotel' ] && body | grep -q 'বদলানো হয়েছে'"
dialogue sk2 8801912345001 1 2 "1 15" 98 1
check "update skills without a registration: told so" "body | grep -q 'কোনো নিবন্ধন নেই'"

# the same registration again (a new dialogue): one row, the same number
dialogue r2 $phone "${reg[@]}"
check "registering again keeps one row for the number" "[ \$(sql \"SELECT count(*) FROM returnees WHERE msisdn = '$phone'\") = 1 ]"

# PostgreSQL down: the record waits in Redis; back: it is stored
phone2=8801812345678
srv_pg_kill9
for _ in $(seq 60); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 503 ] && break
    sleep 0.1
done
s=$(curl -s "$base/healthz")
check "postgres down: healthz says so ($s)" "printf '%s' '$s' | grep -q '\"postgres\":\"down\"'"
t0=$(date +%s%N)
dialogue r3 $phone2 "${reg[@]}"
t1=$(date +%s%N)
qref=$(body | grep -oE '[0-9A-Z]{10}' | head -1)
check "postgres down: the caller still gets a reference ($qref)" "[ -n '$qref' ] && body | grep -q 'জমা হলে SMS পাবেন'"
check "postgres down: the record waits in the Redis queue, sealed" "[ \$(rc LLEN remigate:queue:records) = 1 ] && rc LINDEX remigate:queue:records 0 | grep -q '^rq1:'"
check "postgres down: no name or NID in clear in Redis" "! rc LINDEX remigate:queue:records 0 | grep -q -e 1234567890 -e 'রহিমা'"
srv_pg_start_again
for _ in $(seq 150); do
    [ "$(rc LLEN remigate:queue:records)" = 0 ] && break
    sleep 0.1
done
check "postgres back: the queue drains by itself" "[ \$(rc LLEN remigate:queue:records) = 0 ]"
check "postgres back: the queued record is a pending row with its reference" "[ \"\$(sql \"SELECT status || ' ' || ref FROM returnees WHERE msisdn = '$phone2'\")\" = 'pending $qref' ]"
check "postgres back: healthz 200" "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $base/healthz)\" = 200 ]"

# 200 completions queued while PostgreSQL is down (as a daemon without a
# key writes them), 20 of them twice (a retry after a lost reply): once it
# is back, 200 rows and 200 submissions, none twice
srv_pg_kill9
rec() {
    printf '{"flow":"register","action":"submit_registration","key":"%032x","ref":"Q%09d","lang":"en","channel":"ussd","msisdn":"88015%08d","started":1795343567,"answers":{"consent":"yes","name":"Returnee %d","sex":"m","birth_year":1985,"division":"C","district":"BD-13","country":"SA","years_abroad":3,"return_year":2025,"reason":"lost_job","education":"none","skills":["mason"],"need":"job_home","id_type":"nid","nid":"%010d"}}' \
        $((4096 + $1)) "$1" "$1" "$1" $((2000000000 + $1))
}
{
    for i in $(seq 1 200); do
        printf 'RPUSH remigate:queue:records %s\n' "$(rec "$i" | sed 's/"/\\"/g; s/^/"/; s/$/"/')"
        [ $((i % 10)) = 0 ] && printf 'RPUSH remigate:queue:records %s\n' "$(rec "$i" | sed 's/"/\\"/g; s/^/"/; s/$/"/')"
    done
} | redis-cli -p "$REDIS_PORT" >/dev/null
check "200 completions (and 20 repeats) wait in the queue" "[ \$(rc LLEN remigate:queue:records) = 220 ]"
srv_pg_start_again
for _ in $(seq 300); do
    [ "$(rc LLEN remigate:queue:records)" = 0 ] && break
    sleep 0.1
done
check "postgres back: the queue drains" "[ \$(rc LLEN remigate:queue:records) = 0 ]"
check "200 rows, none twice" "[ \"\$(sql \"SELECT count(*), count(DISTINCT msisdn) FROM returnees WHERE msisdn LIKE '88015%'\")\" = '200|200' ]"
check "200 submissions, none twice" "[ \"\$(sql \"SELECT count(*) FROM submissions WHERE msisdn LIKE '88015%'\")\" = 200 ]"
check "nothing was set aside as malformed" "[ \$(rc LLEN remigate:queue:records:bad) = 0 ]"

kill -TERM "$pid"; wait "$pid"; src=$?; pid=
check "SIGTERM: exit 0 (got $src)" "[ $src = 0 ]"

# Two workers racing one completion: RACE_N dialogues are driven to the
# confirm screen, then the confirming answer of each is sent RACE_C times at
# once, each copy on its own connection, to a daemon with two workers
# (SO_REUSEPORT spreads the connections over both).  Each dialogue ends with
# one row in returnees and one in submissions, and every copy of its last
# answer gets the same screen with that row's reference.
race_n=6 race_c=12
start 2 || { bad "daemon with two workers started"; finish; }
ok "daemon with two workers started on port $port"
mark=$(wc -l <"$tmp/log")
confirm=${reg[-1]} upto=("${reg[@]:0:${#reg[@]}-1}")
at_text=$(IFS='*'; echo "${upto[*]}")
for d in $(seq $race_n); do
    dialogue "race$d" "880130000010$d" "${upto[@]}"
    head -c4 "$tmp/body" | grep -q '^CON ' || bad "race $d: reached the confirm screen"
done
mkdir -p "$tmp/race"
# every INSERT tried takes a number from the sequence, conflict or not
seq0=$(sql "SELECT last_value FROM submissions_id_seq")
cpids=()
for d in $(seq $race_n); do
    for c in $(seq $race_c); do
        curl -s -o "$tmp/race/$d.$c" --max-time 5 \
            --data-urlencode "sessionId=race$d" --data-urlencode "serviceCode=*247#" \
            --data-urlencode "phoneNumber=880130000010$d" \
            --data-urlencode "text=$at_text*$confirm" "$base/ussd/at" &
        cpids+=($!)
    done
done
wait "${cpids[@]}"
tries=$(( $(sql "SELECT last_value FROM submissions_id_seq") - seq0 ))
same=0 rows=0 subs=0 refs=0
for d in $(seq $race_n); do
    p=880130000010$d
    [ "$(cat "$tmp/race/$d".* | sort | uniq -c | wc -l)" = 1 ] &&
        [ "$(ls "$tmp/race/$d".* | wc -l)" = $race_c ] &&
        head -c4 "$tmp/race/$d.1" | grep -q '^END ' && same=$((same + 1))
    r=$(grep -oE '[0-9A-Z]{10}' "$tmp/race/$d.1" | head -1)
    [ "$(sql "SELECT count(*) || ' ' || min(ref) FROM returnees WHERE msisdn = '$p'")" = "1 $r" ] && rows=$((rows + 1))
    [ "$(sql "SELECT count(*) || ' ' || min(ref) FROM submissions WHERE msisdn = '$p'")" = "1 $r" ] && subs=$((subs + 1))
    [ -n "$r" ] && refs=$((refs + 1))
done
check "race: every copy of each last answer got the same END screen ($same of $race_n)" "[ $same = $race_n ]"
check "race: each screen carries a reference ($refs of $race_n)" "[ $refs = $race_n ]"
check "race: one returnees row per dialogue, with that reference ($rows of $race_n)" "[ $rows = $race_n ]"
check "race: one submission per dialogue, with that reference ($subs of $race_n)" "[ $subs = $race_n ]"
check "race: nothing went to the Redis queue" "[ \$(rc LLEN remigate:queue:records) = 0 ]"
check "race: copies reached PostgreSQL at the same time ($tries inserts tried for $race_n rows)" "[ $tries -gt $race_n ]"
pids=$(tail -n +"$((mark + 1))" "$tmp/log" | grep 'duplicate step' | grep -oE 'pid=[0-9]+' | sort -u | wc -l)
check "race: both workers answered copies ($pids pids logged repeats)" "[ $pids = 2 ]"
kill -TERM "$pid"; wait "$pid"; src=$?; pid=
check "two workers, SIGTERM: exit 0 (got $src)" "[ $src = 0 ]"
check "no assert or libevent error in the log" "! grep -q -e 'assert:' -e 'libevent:' '$tmp/log'"
finish
