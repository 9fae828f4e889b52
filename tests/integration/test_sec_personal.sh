#!/usr/bin/env bash
# tests/integration/test_sec_personal.sh -- personal data is sealed
# wherever it rests (issue 9): names and ID numbers typed by returnees are
# found in clear nowhere outside what the caller's own phone shows.
#
# The flows are a copy of config/ with the ID field renamed (id_number ->
# id_doc, with store_as = "id_number"), so what is encrypted follows the
# declaration, not the field's name.  Five registrations: Bangla over POST
# /ussd/at (ID in Bangla digits), English over Kannel's USSD (GET
# /kannel/mo with meta-data), English by SMS keywords (a passport), one
# dropped and resumed by a new dial (its read-back must mask), and one made
# while PostgreSQL is down (it waits in the Redis queue).  Redis writes an
# append-only file the whole time, so every value it ever held is on disk.
# Then the names' and the numbers' bytes are looked for in: every Redis key
# and value (--scan, by type), the AOF (before and after BGREWRITEAOF) and
# the RDB (SAVE), pg_dump of the database, the daemon's log and its files.
# Positive controls check each place holds the dialogues at all (the
# phone numbers, the references), and the personal data opens with the key.
#
# SEC_STOCK_FLOWS=1 runs with the shipped flows unchanged (to show what an
# older remigate, which knows no store_as, leaves in clear).  Starts its own
# Redis and PostgreSQL.  Prints "sec_personal: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=sec_personal
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pid=
# servers of its own (it kills PostgreSQL, and Redis writes an AOF)
SRV_TMP=
srv_tmpdir || exit 1
tmp=$SRV_TMP
# the daemon's files (grepped) and the test's own (what the caller's phone
# showed: not grepped)
run=$tmp/run
mine=$tmp/mine
mkdir -p "$run" "$mine"
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    srv_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

REDIS_AOF=1 srv_redis_start && srv_pg_start || { bad "servers started"; finish; }
rc() { redis-cli -p "$REDIS_PORT" --raw "$@"; }
sql() { srv_psql -At -c "$1"; }

# ---- the config: ID field renamed ------------------------------------------
cp -r config "$run/config"
conf=$run/config/remigate.conf
reg=$run/config/flows/register.conf
sed -i -e "s|^\( *dsn = \)\"\";|\1\"$PG_DSN\";|" \
    -e "s|^\( *key_file = \)\"\";|\1\"$run/key\";|" "$conf"
if [ "${SEC_STOCK_FLOWS:-0}" != 1 ]; then
    sed -i -e 's/field = "id_number"; validator = "id";/field = "id_doc"; validator = "id";/' \
        -e 's/"district", "id_number" \]/"district", "id_doc" ]/' "$reg"
    out=$("$bin" check-flows -c "$conf" 2>&1)
    check "renamed without store_as: check-flows refuses it with file:line" \
        "printf '%s' \"\$out\" | grep -q \"^$reg:[0-9]*: action 'submit_registration' takes no field 'id_doc'\""
    sed -i -e 's/field = "id_doc"; validator = "id";/field = "id_doc"; validator = "id"; store_as = "id_number";/' "$reg"
    grep -q 'field = "id_doc"; validator = "id"; store_as = "id_number";' "$reg" ||
        { bad "register.conf has the field renamed"; finish; }
fi
check "check-flows passes the renamed field with store_as" "'$bin' check-flows -c '$conf' >'$mine/lint' 2>&1"
"$bin" keygen "$run/key" >/dev/null && "$bin" migrate -c "$conf" >"$mine/migrate" 2>&1 ||
    { bad "keygen and migrate"; cat "$mine/migrate"; finish; }

# every value Redis is given goes to its append-only file
rdir=$(rc CONFIG GET dir | sed -n 2p)
check "redis writes an append-only file" "[ \"\$(rc CONFIG GET appendonly | sed -n 2p)\" = yes ]"

secret=sec-kannel-secret
nobody=$(srv_free_port) # sendsms: nothing listens; sms_out holds each SMS
start() {
    rm -f "$run/port"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$run/port" \
        --redis-port "$REDIS_PORT" --set "kannel.secret=$secret" \
        --set "kannel.sendsms_url=http://127.0.0.1:$nobody/cgi-bin/sendsms" \
        --set limits.request_timeout_ms=3000 2>>"$run/log" &
    pid=$!
    for _ in $(seq 200); do
        [ -s "$run/port" ] && break
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    base=http://127.0.0.1:$(cat "$run/port")
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] && return 0
        sleep 0.05
    done
    return 1
}
start || { bad "daemon started"; tail -5 "$run/log"; finish; }
ok "daemon started with Redis (append-only) and PostgreSQL"

body() { cat "$mine/body"; }
more_key() { grep -qE '(^|[^0-9])(98|৯৮)[.)]' "$mine/body"; }

# at SID PHONE TEXT: one aggregator step
at() {
    curl -s -o "$mine/body" -w '%{http_code}' --max-time 5 \
        --data-urlencode "sessionId=$1" --data-urlencode "serviceCode=*247#" \
        --data-urlencode "phoneNumber=$2" --data-urlencode "text=$3" "$base/ussd/at"
}
# at_dialogue SID PHONE ANSWERS...: the answers, then "more" while the
# read-back offers it, then 1 to confirm (CONFIRM=0: stop before)
at_dialogue() {
    local sid=$1 phone=$2 text= a
    shift 2
    at "$sid" "$phone" "" >/dev/null
    for a in "$@"; do
        text=${text:+$text*}$a
        at "$sid" "$phone" "$text" >/dev/null
        head -c4 "$mine/body" | grep -q '^CON ' || return 1
    done
    for _ in $(seq 12); do
        if more_key; then a=98; elif [ "${CONFIRM:-1}" = 1 ]; then a=1; else return 0; fi
        text=$text*$a
        at "$sid" "$phone" "$text" >/dev/null
        head -c4 "$mine/body" | grep -q '^END ' && return 0
    done
    return 1
}
# mo PHONE OP SESS SEQ TEXT: Kannel's USSD query (OP, SESS, SEQ: 2 hex digits)
mo() {
    local t
    t=$(printf '%s' "$5" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')
    curl -s -o "$mine/body" -w '%{http_code}' --max-time 5 \
        "$base/kannel/mo?svc=ussd-mo&from=%2B$1&to=*247%23&text=$t&smsc=ussd&id=$1-$4-$RANDOM&coding=0&charset=UTF-8&binfo=USSD&meta=%3Fsmpp%3Fussd_service_op%3D%25$2%26its_session_info%3D%25$3%25$4%26&key=$secret"
}
mo_dialogue() {
    local phone=$1 sn=$2 seq=0 a
    shift 2
    mo "$phone" 01 "$sn" 00 '*247#' >/dev/null
    for a in "$@"; do
        seq=$((seq + 2)) # even while the session goes on
        mo "$phone" 12 "$sn" "$(printf %02x $seq)" "$a" >/dev/null
    done
    for _ in $(seq 12); do
        if more_key; then a=98; else a=1; fi
        seq=$((seq + 2))
        mo "$phone" 12 "$sn" "$(printf %02x $seq)" "$a" >/dev/null
        grep -q 'Your reference is' "$mine/body" && return 0
    done
    return 1
}
# sms PHONE TEXT: an SMS as Kannel's sms-service passes it; waits for the
# answer's sms_out row (written before sendsms is called)
sms() { itest_sms "$1" "$2" >"$mine/body"; }
ref_of() { grep -oE '\b[0-9A-Z]{10}\b' | head -n 1; }

# the personal data of each registration: names (Bangla and Latin) and ID
# numbers (as typed and as stored); none may appear in clear anywhere
n1="সুলতানা পারভীন" id1_bn="৭৩১৯২৬৪৫৮০" id1=7319264580 p1=8801715000001
n2="Morjina Akhter" id2=5827394061 p2=8801715000002
n3="Nurjahan Sultana" id3=EK7319264 p3=8801715000003
n4="Hosneara Khanom" id4=6150493827 p4=8801715000004
n5="Shirin Akter" id5=4093718265 p5=8801715000005
secrets=("$n1" "$id1_bn" "$id1" "$n2" "$id2" "$n3" "$id3" "$n4" "$id4" "$n5" "$id5")
# 8 characters from inside each number too: a number cut short is a leak
# (8, so that hex and base64 text do not hold one by chance)
secrets+=("${id1:1:8}" "${id2:1:8}" "${id4:1:8}" "${id5:1:8}" "${id3:1:8}")

# ---- 1. Bangla, POST /ussd/at, the ID in Bangla digits ----------------------
# (part 1 of the registration: the district by its first letters; the ID
# number, an NID or a passport number, in one answer)
at_dialogue sec-1 $p1 1 1 1 "$n1" 2 ১৯৯০ "চট্ট" "$id1_bn"
ref1=$(body | ref_of)
check "at (bn): registered, a reference ($ref1)" "[ -n '$ref1' ] && body | grep -q '^END '"

# ---- 2. English, Kannel USSD -------------------------------------------------
mo_dialogue $p2 42 2 1 1 "$n2" 2 1990 "Dhaka" $id2 ||
    echo "# kannel: $(head -c 200 "$mine/body" | tr '\n' ' ')"
ref2=$(body | ref_of)
check "kannel (en): registered, a reference ($ref2)" "[ -n '$ref2' ]"

# ---- 3. English by SMS, a passport -------------------------------------------
ok3=1
for a in REG 1 "$n3" 2 1990 "Dhaka" $id3; do
    sms $p3 "$a" || { ok3=0; break; }
done
cp "$mine/body" "$mine/readback3"
check "sms (en): the answers went through, each answered by SMS" "[ $ok3 = 1 ]"
check "sms (en): the read-back by SMS masks the passport (last 3) and the name" \
    "grep -q '^NID/passport: \*\*\*\*\*\*264$' '$mine/readback3' && grep -q '^Name: \*\*\*$' '$mine/readback3'"
sms $p3 1
ref3=$(body | ref_of)
check "sms (en): confirmed, a reference ($ref3)" "[ -n '$ref3' ]"

# ---- 4. dropped at the read-back, resumed by a new dial ----------------------
CONFIRM=0 at_dialogue sec-4a $p4 2 1 1 "$n4" 2 1990 "Dhaka" $id4
check "drop: the caller is at the read-back" "body | grep -q '^CON ' && body | grep -q 'Confirm'"
at sec-4b $p4 "" >/dev/null
check "resume: a new dial soon after goes straight back to the read-back" "body | grep -q '^CON ' && body | grep -q 'Please check'"
text=
cp "$mine/body" "$mine/resumed4"
while more_key; do
    text=${text:+$text*}98
    at sec-4b $p4 "$text" >/dev/null
    cat "$mine/body" >>"$mine/resumed4"
done
check "resume: the read-back masks the NID (last 3) and shows no name" \
    "grep -q 'NID/passport: \*\*\*\*\*\*\*827' '$mine/resumed4' && grep -q 'Name: \*\*\*' '$mine/resumed4' && ! grep -q -e '$n4' -e '${id4:0:7}' '$mine/resumed4'"
text=${text:+$text*}1
at sec-4b $p4 "$text" >/dev/null
ref4=$(body | ref_of)
check "resume: confirmed, a reference ($ref4)" "[ -n '$ref4' ]"

# ---- 5. PostgreSQL down: the record waits in the Redis queue -----------------
srv_pg_kill9
for _ in $(seq 60); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 503 ] && break
    sleep 0.1
done
at_dialogue sec-5 $p5 2 1 1 "$n5" 2 1990 "Dhaka" $id5
ref5=$(body | ref_of)
check "postgres down: the caller still gets a reference ($ref5)" "[ -n '$ref5' ]"
queued=$(rc LRANGE remigate:queue:records 0 -1)
check "postgres down: the record waits in the queue, sealed" \
    "[ \$(rc LLEN remigate:queue:records) = 1 ] && printf '%s' \"\$queued\" | grep -q '^rq1:'"
srv_pg_start_again || bad "postgres started again"
for _ in $(seq 150); do
    [ "$(rc LLEN remigate:queue:records)" = 0 ] && break
    sleep 0.1
done
check "postgres back: the queue drains" "[ \$(rc LLEN remigate:queue:records) = 0 ]"

# ---- what reached PostgreSQL ---------------------------------------------------
for i in 1 2 3 4 5; do
    p=p$i ref=ref$i
    check "row $i: pending with its reference" \
        "[ \"\$(sql \"SELECT status || ' ' || ref FROM returnees WHERE msisdn = '${!p}'\")\" = 'pending ${!ref}' ]"
done
pname() { sql "SELECT personal_enc FROM returnees WHERE msisdn = '$1'" | "$bin" open -c "$conf" --msisdn "$1" 2>/dev/null | jq -r .name; }
check "the names are encrypted, and open with the key to what was typed" \
    "[ \"\$(pname $p1)|\$(pname $p2)|\$(pname $p3)|\$(pname $p4)|\$(pname $p5)\" = '$n1|$n2|$n3|$n4|$n5' ]"
nid_open() { sql "SELECT ${2:-nid}_enc FROM returnees WHERE msisdn = '$1'" | "$bin" open -c "$conf" --msisdn "$1" 2>/dev/null; }
check "the renamed ID field is encrypted as an NID, and opens to the number" \
    "[ \"\$(nid_open $p1)|\$(nid_open $p2)|\$(nid_open $p4)|\$(nid_open $p5)|\$(nid_open $p3 passport)\" = '$id1|$id2|$id4|$id5|$id3' ]"
check "... with its keyed hash beside it (duplicates are found)" \
    "[ \$(sql \"SELECT count(*) FROM returnees WHERE msisdn LIKE '88017150000%' AND (nid_hash IS NOT NULL OR passport_hash IS NOT NULL)\") = 5 ]"
# (8 SMS of the registration by SMS -- part 1: REG, 6 answers, the confirm
# -- and the confirmations of the three USSD registrations made while
# PostgreSQL was up)
check "every SMS kept (sms_out) was written ($(sql "SELECT count(*) FROM sms_out"))" \
    "[ \$(sql 'SELECT count(*) FROM sms_out') -ge 11 ]"

# ---- looking for the bytes ---------------------------------------------------
# found FILE...: which secrets the files hold (fixed strings)
found() {
    local s hits=
    for s in "${secrets[@]}"; do
        grep -rqF -- "$s" "$@" 2>/dev/null && hits="$hits [$s]"
    done
    printf '%s' "$hits"
}
# every key, every value, by type
rc --scan --pattern '*' >"$mine/keys"
: >"$mine/redis-values"
while IFS= read -r k; do
    printf '%s\n' "$k" >>"$mine/redis-values"
    case $(rc TYPE "$k") in
    string) rc GET "$k" ;;
    hash) rc HGETALL "$k" ;;
    list) rc LRANGE "$k" 0 -1 ;;
    set) rc SMEMBERS "$k" ;;
    zset) rc ZRANGE "$k" 0 -1 WITHSCORES ;;
    stream) rc XRANGE "$k" - + ;;
    esac >>"$mine/redis-values"
done <"$mine/keys"
x=$(rc HGET "remigate:s:ussd:$p4" d | sed -n 's/^x=//p')
echo "# the sealed part of a finished registration's session: ${#x} bytes of text"
check "redis: the session's answers are sealed (x=ss1:...), none in clear" \
    "[ \"\${x:0:4}\" = ss1: ] && ! rc HGET remigate:s:ussd:$p4 d | grep -q -e '^st=' -e '^at=' -e '^in=' -e '^out='"
check "redis: the sessions of all five are there ($(wc -l <"$mine/keys") keys)" \
    "grep -q 's:ussd:$p1' '$mine/keys' && grep -q 's:sms:$p3' '$mine/keys' && grep -q 's:ussd:$p4' '$mine/keys'"
check "redis: the parts each number saved are there too (parts:MSISDN), by USSD and by SMS" \
    "grep -q 'parts:$p1\$' '$mine/keys' && grep -q 'parts:$p3\$' '$mine/keys' && grep -q 'parts:$p4\$' '$mine/keys'"
h=$(found "$mine/redis-values")
check "redis: no name or ID number in any key or value (--scan, every type)${h:+: found$h}" "[ -z '$h' ]"

aofdir=$rdir/$(rc CONFIG GET appenddirname | sed -n 2p)
check "redis AOF: written, and it holds the dialogues (the sessions' keys)" \
    "grep -rqF 's:ussd:$p1' '$aofdir' && grep -rqF 's:sms:$p3' '$aofdir'"
h=$(found "$aofdir")
check "redis AOF: no name or ID number in its whole history${h:+: found$h}" "[ -z '$h' ]"
rc BGREWRITEAOF >/dev/null
for _ in $(seq 100); do
    sleep 0.1
    [ "$(rc INFO persistence | tr -d '\r' | sed -n 's/^aof_rewrite_in_progress://p')" = 0 ] &&
        [ "$(rc INFO persistence | tr -d '\r' | sed -n 's/^aof_rewrite_scheduled://p')" = 0 ] && break
done
h=$(found "$aofdir")
check "redis AOF after BGREWRITEAOF: none${h:+: found$h}" "[ -z '$h' ]"
rc SAVE >/dev/null
rdb=$rdir/$(rc CONFIG GET dbfilename | sed -n 2p)
check "redis RDB (SAVE): written" "[ -s '$rdb' ]"
# the RDB may compress values: look inside with the dump of each key too
: >"$mine/dumps"
while IFS= read -r k; do rc DUMP "$k" >>"$mine/dumps"; done <"$mine/keys"
h=$(found "$rdb" "$mine/dumps")
check "redis RDB: no name or ID number${h:+: found$h}" "[ -z '$h' ]"

srv_pg_dump >"$mine/pg_dump"
check "pg_dump: every table dumped, the references in it" \
    "grep -q '$ref1' '$mine/pg_dump' && grep -q '$ref3' '$mine/pg_dump' && grep -q 'COPY public.sms_out' '$mine/pg_dump'"
h=$(found "$mine/pg_dump")
check "pg_dump: no name or ID number in any table${h:+: found$h}" "[ -z '$h' ]"
check "sms_out: no SMS text carries an ID number or a name" \
    "[ -z \"\$(sql \"SELECT text FROM sms_out\" | { grep -F -e '$id1' -e '$id2' -e '$id3' -e '$id4' -e '$id5' -e '$n3' -e '$n2' || true; })\" ]"

# refused requests are logged (path, source, why), never with what they carry
t=$(printf '%s' "$id2" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')
s1=$(curl -s -o /dev/null -w '%{http_code}' "$base/kannel/mo?from=%2B$p2&to=16247&text=$t&smsc=sms&id=x-1&coding=0&charset=UTF-8&key=wrong")
s2=$(curl -s -o /dev/null -w '%{http_code}' --data-urlencode "sessionId=x-2" \
    --data-urlencode "serviceCode=*247#" --data-urlencode "phoneNumber=not-a-number" \
    --data-urlencode "text=1*1*1*$n2*2*1990" "$base/ussd/at")
check "refused: a wrong key and a bad number get 4xx ($s1, $s2)" "[ '${s1:0:1}' = 4 ] && [ '${s2:0:1}' = 4 ]"

kill -TERM "$pid"
wait "$pid"
pid=
check "the daemon's log has the dialogues in it ($(wc -l <"$run/log") lines)" "[ -s '$run/log' ]"
h=$(found "$run")
check "the daemon's log and files: no name or ID number${h:+: found$h}" "[ -z '$h' ]"
check "no assert, libevent or sanitizer report in the log" \
    "! grep -qE -e '^(assert|wrong) [a-z_0-9]+ [^ ]+:[0-9]+' -e '\[err\]' -e 'Sanitizer' '$run/log'"

# Without a key (possible only without a database: a test or a demo) the
# daemon keeps sessions in clear and says so, loudly, at start.
sed -i -e 's|^\( *dsn = \)".*";|\1"";|' -e 's|^\( *key_file = \)".*";|\1"";|' "$conf"
: >"$run/log"
start || bad "daemon started without a key or a database"
kill -TERM "$pid" 2>/dev/null
wait "$pid"
pid=
check "no key: a warning at start that names and ID numbers are kept in clear" \
    "grep -q 'warn .*crypto.key_file is empty: names and ID numbers .* IN CLEAR in Redis' '$run/log'"
finish
