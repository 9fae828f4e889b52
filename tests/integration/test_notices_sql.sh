#!/usr/bin/env bash
# tests/integration/test_notices_sql.sh -- migration 008 (notices) against a real
# PostgreSQL: the audience of a notice for each criterion alone and for
# combinations, checked against SQL written here independently (the
# expected rows are computed another way: Asia/Dhaka from the tz database,
# education by position in a literal list, arrays by unnest); the frozen
# audience equals the preview and a second freeze adds nobody; opted-out,
# recently notified and capped numbers are skipped with their reason, at
# freeze and again at claim; claim/answer/sweep/delivery-report paths of
# the outbox; two claimers racing over one notice never claim a row twice;
# four eyes in the table; the console role sees only its districts.
#
# Uses PG_DSN when tests/run gives one (a fresh database), else starts its
# own PostgreSQL.  Prints "notices_sql: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=notices_sql
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
itest_tmpdir
itest_suite_servers pg

# eq NAME GOT WANT
eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi; }

sqlf() { srv_psql -At "$@"; }

printf 'postgres: { dsn = "%s"; };\n' "$PG_DSN" >"$tmp/conf"
check "remigate migrate applies 008" \
    "'$bin' migrate -c '$tmp/conf' >'$tmp/mig' 2>&1 && grep -q 008_notices '$tmp/mig'"

# 600 returnees with every attribute spread over its values.
sqlf <<'EOF' || bad "seed returnees"
INSERT INTO returnees (msisdn, sex, birth_year, district, country,
                       return_year, education, skills, need, lang, status,
                       reject_reason)
SELECT '88017' || lpad(g::text, 8, '0'),
       (ARRAY['m', 'f', 'x'])[1 + g % 3],
       1960 + (g * 7) % 45,
       (ARRAY['BD-13', 'BD-10', 'BD-60', 'BD-27', 'BD-54'])[1 + (g / 3) % 5],
       (ARRAY['SA', 'AE', 'QA', 'MY', 'KW'])[1 + (g / 5) % 5],
       2015 + (g * 3) % 11,
       (ARRAY['none', 'primary', 'jsc', 'ssc', 'hsc', 'diploma', 'bachelor',
              NULL])[1 + (g * 5) % 8],
       CASE g % 4 WHEN 0 THEN '{welder}' WHEN 1 THEN '{driver,cook}'
                  WHEN 2 THEN '{}' ELSE '{cook,electrician}' END::text[],
       (ARRAY['job_home', 'training', 'loan', NULL])[1 + (g / 2) % 4],
       CASE WHEN g % 4 = 0 THEN 'en' WHEN g % 9 = 0 THEN NULL ELSE 'bn' END,
       CASE WHEN g % 7 = 0 THEN 'pending' WHEN g % 11 = 0 THEN 'rejected'
            ELSE 'verified' END,
       CASE WHEN g % 7 <> 0 AND g % 11 = 0 THEN 'dup' END
  FROM generate_series(1, 600) g;
INSERT INTO officers (username, role, pw_hash)
VALUES ('author1', 'officer', 'x'), ('admin1', 'admin', 'x'),
       ('admin2', 'admin', 'x');
INSERT INTO officer_districts VALUES (1, 'BD-13'), (1, 'BD-10');
INSERT INTO programmes (kind, title_bn, reply_code, phone, deadline)
VALUES ('training', 'ওয়েল্ডিং প্রশিক্ষণ', 'J12', '01711000000', '2026-12-31'),
       ('job', 'চাকরি', 'K7', '01711000001', NULL);
EOF

# One notice per audience; cols is a SQL fragment of column = value.
mk() {
    sql "INSERT INTO notices (programme_id, text_bn, text_en, sms_bn, sms_en,
         parts_bn, parts_en, ucs2_en, author_id $1)
         VALUES (${3:-1}, 'x {code}', 'x {code}', 'বাংলা J12', 'English J12',
                 1, 1, false, 1 $2) RETURNING id"
}
# The expected set: returnees matching where (written against r.*), as a
# sorted list of ids, and what notice_audience() gives (nobody is skipped
# yet, so every row counts).
want() {
    sql "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '')
           FROM returnees r WHERE $1"
}
got() {
    sql "SELECT coalesce(string_agg(returnee_id::text, ',' ORDER BY returnee_id), '')
           FROM notice_audience($1, now(), 2, 7, 3) WHERE skip IS NULL"
}
yr="extract(year FROM now() AT TIME ZONE 'Asia/Dhaka')::int"
ver="r.status = 'verified'"
edu="array_position(ARRAY['none','primary','jsc','ssc','hsc','diploma','bachelor'], r.education)"

# criterion | notice columns | values | independent WHERE
while IFS='|' read -r name cols vals where; do
    [ -n "$name" ] || continue
    id=$(mk "$cols" "$vals")
    w=$(want "$where")
    g=$(got "$id")
    n=$(awk -F, '{print NF}' <<<"$w")
    if [ -n "$w" ] && [ "$w" = "$g" ]; then
        ok "audience: $name ($n people)"
    else
        bad "audience: $name: got $(awk -F, '{print NF}' <<<"$g"), want $n"
    fi
done <<EOF
verified only|||$ver
pending too|, statuses|, '{verified,pending}'|r.status IN ('verified','pending')
districts|, districts|, '{BD-13,BD-60}'|$ver AND r.district IN ('BD-13','BD-60')
sex|, sexes|, '{f}'|$ver AND r.sex = 'f'
age 25-40|, age_min, age_max|, 25, 40|$ver AND $yr - r.birth_year BETWEEN 25 AND 40
age min 50|, age_min|, 50|$ver AND $yr - r.birth_year >= 50
countries|, countries|, '{SA,QA}'|$ver AND r.country IN ('SA','QA')
skills any of|, skills|, '{welder,electrician}'|$ver AND EXISTS (SELECT 1 FROM unnest(r.skills) s WHERE s IN ('welder','electrician'))
education min ssc|, education_min|, 'ssc'|$ver AND $edu >= 4
return years|, return_year_min, return_year_max|, 2018, 2021|$ver AND r.return_year BETWEEN 2018 AND 2021
need|, needs|, '{training}'|$ver AND r.need = 'training'
language en|, langs|, '{en}'|$ver AND r.lang = 'en'
language bn|, langs|, '{bn}'|$ver AND (r.lang = 'bn' OR r.lang IS NULL)
combined|, districts, sexes, skills, education_min, age_max|, '{BD-13,BD-10,BD-27}', '{m,f}', '{cook}', 'primary', 55|$ver AND r.district IN ('BD-13','BD-10','BD-27') AND r.sex IN ('m','f') AND 'cook' = ANY (r.skills) AND $edu >= 2 AND $yr - r.birth_year <= 55
combined 2|, countries, return_year_min, needs, statuses|, '{AE,MY,KW}', 2020, '{job_home,loan}', '{verified,pending}'|r.status IN ('verified','pending') AND r.country IN ('AE','MY','KW') AND r.return_year >= 2020 AND r.need IN ('job_home','loan')
EOF

# An empty audience is empty, not everyone.
id=$(mk ", districts, sexes" ", '{BD-13}', '{nobody}'")
eq "audience: no one matches" "$(got "$id")" ""

# --- freeze = preview; skips with reasons --------------------------------
N=$(mk ", districts, state, approver_id" ", '{BD-13,BD-10}', 'approved', 2")
# opted out before the freeze
sql "INSERT INTO sms_optout SELECT msisdn, true FROM returnees
      WHERE district = 'BD-13' AND status = 'verified' ORDER BY id LIMIT 3" >/dev/null
# one number got a notice of the same programme two days ago: recent
O=$(mk ", state, approver_id" ", 'completed', 2")
r1=$(sql "SELECT id || ',' || msisdn FROM returnees WHERE district = 'BD-10'
           AND status = 'verified' ORDER BY id LIMIT 1")
sql "INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, lang, state,
     claimed_at) VALUES ($O, ${r1%%,*}, '${r1#*,}', 'bn', 'delivered',
     now() - interval '2 days')" >/dev/null
# one number had two notices of another programme this week: capped
P=$(mk ", state, approver_id" ", 'completed', 2" 2)
r2=$(sql "SELECT id || ',' || msisdn FROM returnees WHERE district = 'BD-10'
           AND status = 'verified' ORDER BY id LIMIT 1 OFFSET 1")
P2=$(mk ", state, approver_id" ", 'completed', 2" 2)
sql "INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, lang, state,
     claimed_at) VALUES ($P, ${r2%%,*}, '${r2#*,}', 'bn', 'delivered',
     now() - interval '3 days'), ($P2, ${r2%%,*}, '${r2#*,}', 'bn', 'unknown',
     now() - interval '1 day')" >/dev/null
prev=$(sql "SELECT count(*) FILTER (WHERE skip IS NULL) || ' ' ||
                   count(*) FILTER (WHERE skip = 'opted_out') || ' ' ||
                   count(*) FILTER (WHERE skip = 'recent') || ' ' ||
                   count(*) FILTER (WHERE skip = 'freq_cap')
              FROM notice_audience($N, now(), 2, 7, 3)")
all=$(want "$ver AND r.district IN ('BD-13','BD-10')" | awk -F, '{print NF}')
eq "preview skips 3 opted out, 1 recent, 1 capped" "${prev#* }" "3 1 1"
eq "preview: the rest get it" "${prev%% *}" "$((all - 5))"
frz=$(sql "SELECT notice_freeze($N, now(), 2, 7, 3)")
eq "freeze queues exactly the preview's count" "$frz" "${prev%% *}"
eq "freeze records skips with reasons" \
    "$(sql "SELECT string_agg(reason || '=' || n, ' ' ORDER BY reason) FROM
            (SELECT reason, count(*) n FROM notice_outbox WHERE notice_id = $N
              AND state = 'skipped' GROUP BY reason) s")" \
    "freq_cap=1 opted_out=3 recent=1"
eq "notices.audience is every row" "$(sql "SELECT audience FROM notices WHERE id = $N")" "$all"
eq "a second freeze adds nobody" "$(sql "SELECT notice_freeze($N, now(), 2, 7, 3)")" "0"
eq "language follows the returnee when the notice has English" \
    "$(sql "SELECT count(*) FROM notice_outbox o JOIN returnees r ON r.id = o.returnee_id
            WHERE o.notice_id = $N AND o.lang <> CASE WHEN r.lang = 'en' THEN 'en' ELSE 'bn' END")" "0"

# --- claim ---------------------------------------------------------------
eq "nothing is claimed before the notice is sending" \
    "$(sql "SELECT count(*) FROM notice_claim('w1', 10, 600, 2, 7, 3)")" "0"
sql "UPDATE notices SET state = 'sending' WHERE id = $N" >/dev/null
# opt-out after the freeze: the claim skips it
late=$(sql "SELECT msisdn FROM notice_outbox WHERE notice_id = $N AND state = 'queued' ORDER BY id LIMIT 1")
sql "INSERT INTO sms_optout VALUES ('$late', true)" >/dev/null
c1=$(sql "SELECT count(*) FROM notice_claim('w1', 6, 600, 2, 7, 3)")
eq "a claim of 6 rows gives 5 (one skipped)" "$c1" "5"
eq "an opt-out after the freeze is skipped at claim" \
    "$(sql "SELECT state || ':' || reason FROM notice_outbox WHERE msisdn = '$late' AND notice_id = $N")" \
    "skipped:opted_out"
eq "each claimed row has its sms_out row, kind notice" \
    "$(sql "SELECT count(*) FROM notice_outbox o JOIN sms_out s ON s.id = o.sms_id
            WHERE o.notice_id = $N AND o.state = 'claimed' AND s.kind = 'notice'
              AND s.msisdn = o.msisdn AND s.coding = CASE WHEN o.lang = 'en' THEN 0 ELSE 2 END
              AND s.text = CASE WHEN o.lang = 'en' THEN 'English J12' ELSE 'বাংলা J12' END")" "5"
eq "validity + 1 h is the expiry" \
    "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $N AND state = 'claimed'
            AND expires_at - claimed_at = interval '11 hours'")" "5"
# cap at claim: a number that meanwhile got 2 notices elsewhere
capn=$(sql "SELECT msisdn FROM notice_outbox WHERE notice_id = $N AND state = 'queued' ORDER BY id LIMIT 1")
capr=$(sql "SELECT returnee_id FROM notice_outbox WHERE msisdn = '$capn' AND notice_id = $N")
sql "INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, lang, state, claimed_at)
     VALUES ($P, $capr, '$capn', 'bn', 'submitted', now() - interval '1 hour'),
            ($P2, $capr, '$capn', 'bn', 'delivered', now() - interval '5 days')" >/dev/null
sql "SELECT count(*) FROM notice_claim('w1', 1, 600, 2, 7, 3)" >/dev/null
eq "a number over the cap at claim is skipped" \
    "$(sql "SELECT state || ':' || reason FROM notice_outbox WHERE msisdn = '$capn' AND notice_id = $N")" \
    "skipped:freq_cap"

# --- answers ---------------------------------------------------------------
mapfile -t cl < <(sql "SELECT id || ' ' || sms_id FROM notice_outbox WHERE notice_id = $N AND state = 'claimed' ORDER BY id")
set -- ${cl[0]}; a_id=$1 a_sms=$2
set -- ${cl[1]}; q_id=$1 q_sms=$2
set -- ${cl[2]}; f_id=$1 f_sms=$2
set -- ${cl[3]}; u_id=$1 u_sms=$2
set -- ${cl[4]}; d_id=$1 d_sms=$2
eq "accepted" "$(sql "SELECT notice_sent($a_id, '$a_sms', 'accepted', NULL)")" "accepted"
eq "nothing sent: back to queued" "$(sql "SELECT notice_sent($q_id, '$q_sms', 'requeue', 'http_503')")" "queued"
eq "a requeued row forgets its sms id" "$(sql "SELECT sms_id IS NULL AND claimed_at IS NULL FROM notice_outbox WHERE id = $q_id")" "t"
eq "4xx: failed" "$(sql "SELECT notice_sent($f_id, '$f_sms', 'failed', 'http_400')")" "failed"
eq "maybe sent: unknown" "$(sql "SELECT notice_sent($u_id, '$u_sms', 'unknown', 'timeout')")" "unknown"
eq "an answer for an old sms id changes nothing" "$(sql "SELECT notice_sent($q_id, '$q_sms', 'accepted', NULL)")" "queued"
eq "unknown is never claimed again" \
    "$(sql "SELECT count(*) FROM notice_claim('w1', 1000, 600, 9, 7, 3) c WHERE c.outbox_id IN ($u_id, $f_id, $a_id)")" "0"
eq "the requeued row is claimed again, with a new sms id" \
    "$(sql "SELECT state || ' ' || (sms_id <> '$q_sms') FROM notice_outbox WHERE id = $q_id")" "claimed true"
# a report that overtakes sendsms's answer
sql "UPDATE sms_out SET dlr_state = 8 WHERE id = '$d_sms'" >/dev/null
eq "DLR 8 before the answer: submitted" "$(sql "SELECT state FROM notice_outbox WHERE id = $d_id")" "submitted"
eq "the late 'accepted' does not undo it" "$(sql "SELECT notice_sent($d_id, '$d_sms', 'accepted', NULL)")" "submitted"

# --- delivery reports --------------------------------------------------------
dlr() { sql "UPDATE sms_out SET dlr_state = $2, dlr_answer = \$\$$3\$\$ WHERE id = '$1'" >/dev/null; }
mapfile -t more < <(sql "SELECT id || ' ' || sms_id FROM notice_outbox WHERE notice_id = $N AND state = 'claimed' AND id <> $q_id ORDER BY id LIMIT 5")
while IFS='|' read -r type answer want; do
    [ -n "$type" ] || continue
    set -- ${more[0]}
    more=("${more[@]:1}")
    dlr "$2" "$type" "$answer"
    case $want in rejected:*) r_id=$1 r_sms=$2 ;; esac
    eq "DLR $type '$answer' -> $want" "$(sql "SELECT state || ':' || coalesce(reason, '') FROM notice_outbox WHERE id = $1")" "$want"
done <<'EOF'
1|id:1 sub:001 dlvrd:001 stat:DELIVRD err:000 text:x|delivered:DELIVRD
2|id:2 stat:EXPIRED err:0FE text:stat:DELIVRD|expired:EXPIRED
2|id:3 STAT:undeliv err:001|undelivered:UNDELIV
2|id:4 stat:REJECTD err:00B text:|undelivered:REJECTD
16|NACK/0x00000045/Submit failed|rejected:
EOF
dlr "$a_sms" 4 "id:9 stat:BUFFRED"
eq "DLR 4: buffered" "$(sql "SELECT state FROM notice_outbox WHERE id = $a_id")" "buffered"
dlr "$u_sms" 1 "id:10 stat:DELIVRD"
eq "a report for an unknown row: it did leave" "$(sql "SELECT state FROM notice_outbox WHERE id = $u_id")" "delivered"

# the receipt's stat as SQL reads it: the same table as test_notices.c's
# t_receipt reads with notices_receipt_parse() (OTHER there is the raw
# word here; none is empty)
while IFS='|' read -r answer want; do
    [ -n "$answer" ] || continue
    eq "remigate_receipt_stat('$answer')" "$(sql "SELECT coalesce(remigate_receipt_stat(\$\$$answer\$\$), '')")" "$want"
done <<'EOF2'
id:0123456789 sub:001 dlvrd:001 submit date:2611221032 done date:2611221033 stat:DELIVRD err:000 text:Hello|DELIVRD
id:77 stat:EXPIRED err:0FE text:|EXPIRED
ID:a1b2 STAT:undeliv ERR:0x45|UNDELIV
stat:REJECTD err:001 id:9|REJECTD
id:1 stat:WEIRD err:12|WEIRD
id:5 stat:UNDELIV err:001 text:stat:DELIVRD id:6|UNDELIV
id:5 text:stat:DELIVRD|
id:xstat:DELIVRD|
ACK/|
NACK/0x00000045/Submit failed|
EOF2

# --- sweep -----------------------------------------------------------------
sql "UPDATE notice_outbox SET claimed_at = now() - interval '10 minutes' WHERE id = $q_id" >/dev/null
sql "UPDATE notice_outbox SET expires_at = now() - interval '1 second' WHERE id = $a_id" >/dev/null
sql "SELECT notice_sweep(interval '2 minutes')" >/dev/null
eq "claimed long ago: unknown (lost)" "$(sql "SELECT state || ':' || reason FROM notice_outbox WHERE id = $q_id")" "unknown:lost"
eq "no final report by validity + 1 h: expired" "$(sql "SELECT state || ':' || reason FROM notice_outbox WHERE id = $a_id")" "expired:no_report"
dlr "$a_sms" 1 "id:9 stat:DELIVRD"
eq "a late real report replaces expired-by-timeout" "$(sql "SELECT state FROM notice_outbox WHERE id = $a_id")" "delivered"
eq "a notice with rows left is not completed" "$(sql "SELECT state FROM notices WHERE id = $N")" "sending"
# rejected (DLR 16) is final (notices_rstate_final): it has its final_at,
# the sweep does not expire it, no later report moves it
eq "rejected has its final_at" "$(sql "SELECT final_at IS NOT NULL FROM notice_outbox WHERE id = $r_id")" "t"
sql "UPDATE notice_outbox SET expires_at = now() - interval '1 second' WHERE id = $r_id" >/dev/null
sql "SELECT notice_sweep(interval '2 minutes')" >/dev/null
eq "rejected past validity + 1 h: the sweep leaves it" "$(sql "SELECT state || ':' || coalesce(reason, '') FROM notice_outbox WHERE id = $r_id")" "rejected:"
dlr "$r_sms" 1 "id:11 stat:DELIVRD"
eq "rejected: a later report does not move it" "$(sql "SELECT state FROM notice_outbox WHERE id = $r_id")" "rejected"
# a notice whose only open row was rejected completes
J=$(mk ", state, approver_id" ", 'approved', 3")
sql "SELECT notice_freeze($J, now(), 99, 7, 3)" >/dev/null
sql "UPDATE notices SET state = 'sending' WHERE id = $J" >/dev/null
read -r j_id j_sms < <(sql "SELECT outbox_id || ' ' || sms_id FROM notice_claim('j', 1, 600, 99, 7, 3, $J)")
sql "UPDATE notice_outbox SET state = 'delivered' WHERE notice_id = $J AND state = 'queued'" >/dev/null
sql "SELECT notice_sent($j_id, '$j_sms', 'accepted', NULL)" >/dev/null
dlr "$j_sms" 16 "NACK/Discarded"
sql "SELECT notice_sweep(interval '2 minutes')" >/dev/null
eq "a notice whose last open row was rejected completes" "$(sql "SELECT state FROM notices WHERE id = $J")/$(sql "SELECT state FROM notice_outbox WHERE id = $j_id")" "completed/rejected"

# --- racing claimers ---------------------------------------------------------
R=$(mk ", state, approver_id" ", 'approved', 3")
sql "SELECT notice_freeze($R, now(), 99, 7, 3)" >/dev/null
sql "UPDATE notices SET state = 'sending' WHERE id = $R" >/dev/null
rq=$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $R AND state = 'queued'")
for w in 1 2 3 4; do
    (for i in $(seq 1 40); do
        sql "SELECT outbox_id FROM notice_claim('r$w', 7, 600, 99, 7, 3, $R)"
    done >"$tmp/claim.$w") &
done
wait
total=$(cat "$tmp"/claim.* | grep -c .)
uniq=$(cat "$tmp"/claim.* | sort -u | grep -c .)
eq "four racing claimers: no row claimed twice" "$uniq" "$total"
eq "four racing claimers: every queued row claimed by one of them" \
    "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $R AND state = 'claimed'")/$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $R AND state = 'queued'")" "$rq/0"
eq "one sms_out row per claimed recipient" \
    "$(sql "SELECT count(*) FROM sms_out s JOIN notice_outbox o ON o.sms_id = s.id WHERE o.notice_id = $R")" \
    "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $R AND state = 'claimed'")"
# the cap across notices holds when daemons claim for the same numbers at once
C1=$(mk ", state, approver_id" ", 'approved', 3")
C2=$(mk ", state, approver_id" ", 'approved', 3" 2)
C3=$(mk ", state, approver_id" ", 'approved', 3" 2)
for c in $C1 $C2 $C3; do
    sql "SELECT notice_freeze($c, now(), 99, 7, 3)" >/dev/null
done
sql "UPDATE notices SET state = 'sending' WHERE id IN ($C1, $C2, $C3)" >/dev/null
for w in 1 2 3; do
    (for i in $(seq 1 60); do
        sql "SELECT outbox_id FROM notice_claim('c$w', 9, 600, 2, 7, 3)"
    done >/dev/null) &
done
wait
eq "racing claimers respect the per-person cap of 2" \
    "$(sql "SELECT count(*) FROM (SELECT msisdn FROM notice_outbox
             WHERE notice_id IN ($R, $C1, $C2, $C3) AND state = 'claimed'
             GROUP BY msisdn HAVING count(*) > 2) x")" "0"

# --- completion -------------------------------------------------------------
sql "UPDATE notice_outbox SET state = 'delivered' WHERE notice_id = $R AND state = 'claimed'" >/dev/null
sql "SELECT notice_sweep(interval '2 minutes')" >/dev/null
eq "a notice with every row final is completed" "$(sql "SELECT state FROM notices WHERE id = $R")" "completed"

# --- updates in place (022) --------------------------------------------------
# Kannel's answer and a report that keeps the row open change no indexed
# column of notice_outbox or sms_out: PostgreSQL updates both rows in
# place (HOT), counted by the transaction's own statistics.  The final
# report takes the row out of the open rows' index (a full update), and
# the notice completes.
hp=$(sql "INSERT INTO programmes (kind, title_bn, reply_code)
          VALUES ('training', 'x', 'H22') RETURNING id")
H=$(mk ", state, approver_id" ", 'approved', 3" "$hp")
sql "SELECT notice_freeze($H, now(), 99, 7, 3)" >/dev/null
sql "UPDATE notices SET state = 'sending' WHERE id = $H" >/dev/null
# one recipient left queued: a number neither opted out nor capped
sql "UPDATE notice_outbox SET state = 'cancelled', final_at = now()
      WHERE notice_id = $H AND state = 'queued' AND id <> (
        SELECT min(o.id) FROM notice_outbox o
         WHERE o.notice_id = $H AND o.state = 'queued'
           AND NOT notice_capped(o.msisdn, now(), 99, 7, 3)
           AND NOT EXISTS (SELECT 1 FROM sms_optout s
                            WHERE s.msisdn = o.msisdn AND s.opted_out))" >/dev/null
eq "one recipient of the notice queued" \
    "$(sql "SELECT count(*) FROM notice_outbox WHERE notice_id = $H AND state = 'queued'")" "1"
read -r h_id h_sms < <(sql "SELECT outbox_id || ' ' || sms_id FROM notice_claim('h', 1, 600, 99, 7, 3, $H)")
hot=$(sqlf <<EOF | tail -n 1
BEGIN;
SELECT notice_sent($h_id, '$h_sms', 'accepted', NULL);
UPDATE sms_out SET tries = 1, kannel_status = 202, accepted_at = now()
 WHERE id = '$h_sms';
UPDATE sms_out SET dlr_state = 8, dlr_answer = 'ACK/' WHERE id = '$h_sms';
SELECT string_agg(relname || '=' || n_tup_upd || '/' || n_tup_hot_upd, ' '
                  ORDER BY relname)
  FROM pg_stat_xact_user_tables WHERE relname IN ('notice_outbox', 'sms_out');
COMMIT;
EOF
)
eq "accepted, then submitted: both updates of the recipient and the SMS in place" \
    "$hot" "notice_outbox=2/2 sms_out=2/2"
eq "... and the row is submitted" "$(sql "SELECT state FROM notice_outbox WHERE id = $h_id")" "submitted"
dlr "$h_sms" 1 "id:1 stat:DELIVRD"
sql "SELECT notice_sweep(interval '2 minutes')" >/dev/null
eq "the final report closes it and the notice completes" \
    "$(sql "SELECT o.state || '/' || n.state FROM notice_outbox o JOIN notices n ON n.id = o.notice_id WHERE o.id = $h_id")" \
    "delivered/completed"

# --- four eyes, states ------------------------------------------------------
check "the author cannot be the approver" \
    "! sql \"UPDATE notices SET approver_id = author_id WHERE id = $N\" 2>/dev/null"
check "an approved notice without approver is refused" \
    "! sql \"INSERT INTO notices (programme_id, text_bn, sms_bn, author_id, state) VALUES (1, 'x', 'x', 1, 'approved')\" 2>/dev/null"

# --- references (014: checked per statement, no longer per row) ------------
# refused NAME SQL TEXT: the statement fails with TEXT in its error
refused() {
    local out
    out=$(sql "$2" 2>&1)
    case $out in *"$3"*) ok "$1" ;; *) bad "$1: $out" ;; esac
}
one=$(sql "SELECT returnee_id FROM notice_outbox WHERE notice_id = $N ORDER BY id LIMIT 1")
refused "an outbox row of a notice that does not exist is refused" \
    "INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, lang)
     VALUES (99999, $one, '8801999000009', 'bn')" "notice 99999 does not exist"
refused "an outbox row of a returnee that does not exist is refused" \
    "INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, lang)
     VALUES ($N, 99999, '8801999000009', 'bn')" "returnee 99999 does not exist"
refused "... also among many good rows" \
    "INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, lang)
     SELECT $R, id, msisdn, 'bn' FROM returnees WHERE status = 'pending'
     UNION ALL SELECT $R, 99998, '8801999000008', 'bn'" "returnee 99998 does not exist"
refused "a returnee the outbox names cannot be deleted" \
    "DELETE FROM returnees WHERE id = $one" "still named by notice_outbox"
refused "a notice the outbox names cannot be deleted" \
    "DELETE FROM notices WHERE id = $N" "still named by notice_outbox"
refused "... nor given another id" \
    "UPDATE notices SET id = 99997 WHERE id = $N" "still named by notice_outbox"
refused "an outbox row keeps its returnee" \
    "UPDATE notice_outbox SET returnee_id = returnee_id + 1 WHERE notice_id = $N" "keeps its notice and returnee"
refused "returnees are not truncated from under the outbox" \
    "BEGIN; TRUNCATE returnees CASCADE; ROLLBACK" "notice_outbox still names its rows"
lone=$(sql "INSERT INTO returnees (msisdn) VALUES ('8801999000001') RETURNING id")
check "a returnee no outbox row names can be deleted" \
    "sql 'DELETE FROM returnees WHERE id = $lone' >/dev/null"
# an insert and a delete that cross: whichever checks second waits for the
# other's commit and fails
lone=$(sql "INSERT INTO returnees (msisdn) VALUES ('8801999000002') RETURNING id")
sql "BEGIN; INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, lang)
     VALUES ($N, $lone, '8801999000002', 'bn'); SELECT pg_sleep(1.5); COMMIT" >/dev/null &
holder=$!
sleep 0.5
refused "a delete crossing an uncommitted outbox row waits and is refused" \
    "DELETE FROM returnees WHERE id = $lone" "still named by notice_outbox"
wait "$holder"
lone=$(sql "INSERT INTO returnees (msisdn) VALUES ('8801999000003') RETURNING id")
sql "BEGIN; DELETE FROM returnees WHERE id = $lone; SELECT pg_sleep(1.5); COMMIT" >/dev/null &
holder=$!
sleep 0.5
refused "an outbox row crossing an uncommitted delete waits and is refused" \
    "INSERT INTO notice_outbox (notice_id, returnee_id, msisdn, lang)
     VALUES ($N, $lone, '8801999000003', 'bn')" "returnee $lone does not exist"
wait "$holder"

# --- the console role -------------------------------------------------------
as_officer() {
    psql -X -q "$PG_DSN" -At -c "BEGIN; SET LOCAL ROLE remigate_console;
      SELECT set_config('remigate.officer', '1', true),
             set_config('remigate.role', '$1', true),
             set_config('remigate.districts', '$2', true);
      $3; COMMIT;" 2>&1 | tail -n +2 | head -1
}
D=$(mk ", districts" ", '{BD-13}'")
E=$(mk ", districts" ", '{BD-60}'")
eq "an officer of BD-13,BD-10 sees the BD-13 notice" \
    "$(as_officer officer BD-13,BD-10 "SELECT count(*) FROM notices WHERE id = $D")" "1"
eq "... but not the BD-60 one, even by id" \
    "$(as_officer officer BD-13,BD-10 "SELECT count(*) FROM notices WHERE id = $E")" "0"
eq "... nor its outbox rows" \
    "$(as_officer officer BD-60 "SELECT count(*) FROM notice_outbox WHERE notice_id = $N")" "0"
eq "an admin sees both" \
    "$(as_officer admin '' "SELECT count(*) FROM notices WHERE id IN ($D, $E)")" "2"
eq "an analyst sees none" \
    "$(as_officer analyst '' "SELECT count(*) FROM notices")" "0"
check "an officer cannot write a notice for another district" \
    "as_officer officer BD-13 \"INSERT INTO notices (programme_id, text_bn, districts) VALUES (1, 'x', '{BD-60}')\" | grep -q 'row-level security'"
eq "the console role owns nothing and is not superuser" \
    "$(sql "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'remigate_console'")" "f"

finish
