#!/usr/bin/env bash
# tests/integration/test_sms.sh -- the language of SMS keyword answers,
# through GET /kannel/mo as Kannel's SMS service calls it, with a real
# Redis and PostgreSQL.  One rule for every keyword (STOP, START, HELP,
# REG, SKILL, STATUS and their Bangla words) and for the help text sent
# outside a dialogue: the language of the caller's SMS session, else the
# language of the caller's record, else the script of the word (Bangla ->
# Bangla, Latin letters -> English, neither -> the default, Bangla).
#
# The answers go out through sendsms; here kannel.sendsms_url points at a
# loopback port where nothing listens, and each answer is read from its
# sms_out row (written before the message is posted): text and coding.
#
# Uses the Redis and PostgreSQL of tests/run (REDIS_PORT, PG_DSN), or
# starts its own (tests/lib/servers.sh) when run alone.  Prints
# "sms: N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
ITEST_LABEL=sms
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pid=
own=0
tmp=$(mktemp -d /tmp/remigate-sms.XXXXXX) || exit 1
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    [ $own = 1 ] && srv_cleanup
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

itest_suite_servers

itest_config "$PG_DSN"

secret=sms-secret-for-tests
nobody=$(srv_free_port)    # sendsms: nothing listens there
rm -f "$tmp/port"
"$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
    --redis-port "$REDIS_PORT" --set "kannel.secret=$secret" \
    --set "kannel.sendsms_url=http://127.0.0.1:$nobody/cgi-bin/sendsms" \
    2>>"$tmp/log" &
pid=$!
itest_up "$pid" || { bad "daemon started"; finish; }
ok "daemon started with Redis and PostgreSQL"

# sms PHONE TEXT: an SMS as Kannel's sms-service passes it; waits (10 s)
# for its answer's sms_out row and prints "CODING|TEXT" of it (called in
# $( ): each message's Kannel id is made unique from the clock)
sms() { itest_sms "$1" "$2" "coding || '|' || text"; }
# expect NAME GOT CODING WORDS: the answer was sent with CODING and has WORDS
expect() {
    case $2 in
    "$3|"*"$4"*) ok "$1" ;;
    *) bad "$1 (got: ${2:0:90})" ;;
    esac
}

# ---- no record, no session: the word's script -----------------------------
# (a number each: STATUS and the flows keep a session afterwards)
HELP_EN="Send REG to register" HELP_BN="লিখে পাঠান: নিবন্ধন বা REG"
n=8801710000100
while IFS='|' read -r word coding words; do
    n=$((n + 1))
    expect "new number: $word -> $([ "$coding" = 2 ] && echo Bangla || echo English)" \
        "$(sms $n "$word")" "$coding" "$words"
done <<EOF
HELP|0|$HELP_EN
help|0|$HELP_EN
সাহায্য|2|$HELP_BN
STATUS|0|No registration found for this number
অবস্থা|2|এই নম্বরে কোনো নিবন্ধন নেই
STOP|0|You will get no more SMS about programmes
বন্ধ|2|কর্মসূচির SMS আর পাঠানো হবে না
START|0|You will get SMS about programmes again
চালু|2|কর্মসূচির SMS আবার পাবেন
STOPALL|0|You will get no more SMS about programmes
unsubscribe|0|You will get no more SMS about programmes
CANCEL|0|You will get no more SMS about programmes
END|0|You will get no more SMS about programmes
quit|0|You will get no more SMS about programmes
বাতিল|2|কর্মসূচির SMS আর পাঠানো হবে না
থামুন|2|কর্মসূচির SMS আর পাঠানো হবে না
BONDHO|0|You will get no more SMS about programmes
UNSTOP|0|You will get SMS about programmes again
শুরু|2|কর্মসূচির SMS আবার পাবেন
CHALU|0|You will get SMS about programmes again
REG|0|The government keeps your answers
নিবন্ধন|2|কাজ, ঋণ, প্রশিক্ষণ দিতে সরকার তথ্য রাখবে
SKILL|0|What work can you do?
দক্ষতা|2|কী কাজ পারেন?
hello|0|$HELP_EN
?|2|$HELP_BN
১|2|$HELP_BN
EOF

# ---- the aliases switch notices off and on, and nothing else does -----------
p=8801710000180
sms $p BONDHO >/dev/null
optout_is() { [ "$(sql "SELECT opted_out FROM sms_optout WHERE msisdn = '$p'")" = "$1" ]; }
if optout_is t; then ok "BONDHO records the opt-out"; else bad "BONDHO records the opt-out"; fi
sms $p HELP >/dev/null
sms $p REG >/dev/null
if optout_is t; then ok "other messages do not re-subscribe"; else bad "other messages do not re-subscribe"; fi
sms $p শুরু >/dev/null
if optout_is f; then ok "শুরু records the opt-in"; else bad "শুরু records the opt-in"; fi

# ---- a session's language wins over the word's script ----------------------
p=8801710000201
expect "session en: REG starts in English" "$(sms $p REG)" 0 "The government keeps"
expect "session en: সাহায্য -> English help, the dialogue goes on" "$(sms $p সাহায্য)" 0 "$HELP_EN"
expect "session en: ... the next answer still answers the question" "$(sms $p 1)" 0 "Please write your full name"
expect "session en: বন্ধ -> English" "$(sms $p বন্ধ)" 0 "You will get no more SMS"
expect "session en: চালু -> English" "$(sms $p চালু)" 0 "You will get SMS about programmes again"
expect "session en: অবস্থা -> English" "$(sms $p অবস্থা)" 0 "No registration found"
p=8801710000202
expect "session bn: নিবন্ধন starts in Bangla" "$(sms $p নিবন্ধন)" 2 "সরকার তথ্য রাখবে"
expect "session bn: HELP -> Bangla help" "$(sms $p HELP)" 2 "$HELP_BN"
expect "session bn: STOP -> Bangla" "$(sms $p STOP)" 2 "কর্মসূচির SMS আর পাঠানো হবে না"
expect "session bn: SKILL -> Bangla" "$(sms $p SKILL)" 2 "কী কাজ পারেন?"

# ---- a record's language, when there is no session -------------------------
sql "INSERT INTO returnees (msisdn, name, lang, channel, ref)
     VALUES ('8801710000301', 'Rahima', 'bn', 'ussd', 'LANGBN0001'),
            ('8801710000302', 'Karim', 'en', 'ussd', 'LANGEN0001')" >/dev/null
p=8801710000301
expect "record bn: HELP -> Bangla" "$(sms $p HELP)" 2 "$HELP_BN"
expect "record bn: STOP -> Bangla" "$(sms $p STOP)" 2 "কর্মসূচির SMS আর পাঠানো হবে না"
expect "record bn: STATUS -> Bangla, the record's status" "$(sms $p STATUS)" 2 "এখনো যাচাই হয়নি"
p=8801710000302
expect "record en: সাহায্য -> English" "$(sms $p সাহায্য)" 0 "$HELP_EN"
expect "record en: অবস্থা -> English, the record's status" "$(sms $p অবস্থা)" 0 "waiting for an officer"
expect "record en: দক্ষতা -> English" "$(sms $p দক্ষতা)" 0 "What work can you do?"

check_log() { ! grep -qE 'assert:|libevent:|runtime error:|Sanitizer' "$tmp/log"; }
if check_log; then ok "no assert, libevent or sanitizer report in the log"; else bad "assert, libevent or sanitizer report in the log"; fi
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
if [ $rc = 0 ]; then ok "SIGTERM: exit 0"; else bad "SIGTERM: exit $rc"; fi
finish
