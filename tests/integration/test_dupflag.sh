#!/usr/bin/env bash
# tests/integration/test_dupflag.sh -- migration 023: the stored
# "possible duplicate" flag (returnees.possible_duplicate) always equals
# what remigate_duplicate_ids() (013) computes for every record.
#
# The schema is migrated to 022, records are made (pairs and triples of
# NID and passport hashes, records with neither), then 023 is applied:
# its backfill must flag exactly the computed set.  Then, checked after
# each: multi-row and single-row inserts, NID and passport changes (to
# another group, to none), status changes, deletes, the registration's
# upsert, a flag set by hand (put right again), a statement of more than
# 10,000 hashes (the rebuild path), two registrations of one new NID in
# two transactions open at once (both flagged once both commit), and
# four sessions writing at once.  A flag change is no new version.  The
# console's role sees its districts' flags only, and cannot read
# duplicate_keys nor call the rebuild.
#
# Migration 027: a group's row of duplicate_keys goes with its last
# member (a correction of the NID or passport, an erasure) -- after every
# step above no row is left without a member -- and a registration
# waiting for the lock of a group whose row is deleted meanwhile holds the
# lock all the same (a third registration of that NID waits for it, and
# both are flagged).
#
# Uses PG_DSN when tests/run gives one (a fresh database), else starts its
# own PostgreSQL.  Prints "dupflag: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=dupflag
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
pids=
itest_tmpdir
itest_suite_servers pg

# sql TEXT: as the owner (the migrating user), one value per line, errors
# too
sql() { srv_psql -At -c "$1" 2>&1; }
# as ROLE DISTRICTS SQL...: as the console's role with its scope set
as() {
    local role=$1 districts=$2 pgrole=remigate_console
    shift 2
    [ "$role" = admin ] && pgrole=remigate_console_admin
    {
        echo "BEGIN; SET LOCAL ROLE $pgrole;"
        echo "SELECT set_config('remigate.role', '$role', true) \\g /dev/null"
        [ -n "$districts" ] && echo "SELECT set_config('remigate.districts', '$districts', true) \\g /dev/null"
        printf '%s\n' "$@"
        echo "COMMIT;"
    } | psql -X -q -v ON_ERROR_STOP=1 -At "$PG_DSN" 2>&1
}

# The stored flags against remigate_duplicate_ids() over every record (as
# an admin would ask it): "wrong=N flagged=N of=N".  wrong must be 0;
# flagged and unflagged both present, or the check proves little.
flags() {
    psql -X -q -v ON_ERROR_STOP=1 -At "$PG_DSN" 2>&1 <<-'EOF'
	BEGIN;
	SELECT set_config('remigate.role', 'admin', true) \g /dev/null
	WITH d AS MATERIALIZED (
	    SELECT unnest(remigate_duplicate_ids(ARRAY(SELECT id FROM returnees))) AS id)
	SELECT 'wrong=' || count(*) FILTER (WHERE r.possible_duplicate <> (d.id IS NOT NULL))
	    || ' flagged=' || count(*) FILTER (WHERE r.possible_duplicate)
	    || ' of=' || count(*)
	    || ' orphans=' || (SELECT count(*) FROM duplicate_keys k
	                       WHERE NOT EXISTS (SELECT 1 FROM returnees WHERE nid_hash = k.hash)
	                         AND NOT EXISTS (SELECT 1 FROM returnees WHERE passport_hash = k.hash))
	FROM returnees r LEFT JOIN d ON d.id = r.id;
	COMMIT;
	EOF
}
# check_flags LABEL: wrong=0, some flagged, some not, and no row of
# duplicate_keys for a group without a member (027)
check_flags() {
    local out w f n o
    out=$(flags)
    w=$(echo "$out" | sed -n 's/^wrong=\([0-9]*\) .*/\1/p')
    f=$(echo "$out" | sed -n 's/.* flagged=\([0-9]*\) .*/\1/p')
    n=$(echo "$out" | sed -n 's/.* of=\([0-9]*\) .*/\1/p')
    o=$(echo "$out" | sed -n 's/.* orphans=\([0-9]*\)$/\1/p')
    if [ "${w:-x}" = 0 ] && [ "${f:-0}" -gt 0 ] && [ "${f:-0}" -lt "${n:-0}" ] &&
        [ "${o:-x}" = 0 ]; then
        ok "$1 ($out)"
    else
        bad "$1" "$out"
    fi
}

# Hash n of a small pool: 32 bytes, as the keyed hashes are.
H="decode(lpad(to_hex(%s), 64, '0'), 'hex')"
hx() { printf "$H" "$1"; }
# random pool hash or NULL, as SQL (p: chance of NULL)
rh() { echo "CASE WHEN random() < $2 THEN NULL ELSE decode(lpad(to_hex($1 + floor(random() * $3)::int), 64, '0'), 'hex') END"; }

# --- migrated to 022, records, then 023 -----------------------------------
mkdir -p "$tmp/old/store/migrations" "$tmp/config"
for f in store/migrations/*.sql; do
    n=$(basename "$f")
    [ "${n%%_*}" \< 023 ] && ln -s "$(pwd)/$f" "$tmp/old/store/migrations/$n"
done
cp -r config/. "$tmp/config"
conf=$tmp/config/remigate.conf
sed -i -e "s|^\( *dsn = \)\"\";|\1\"$PG_DSN\";|" "$conf"
(cd "$tmp/old" && "$bin" migrate -c "$conf") >"$tmp/migrate.out" 2>&1
is "migrated to 022" "0|22" "$?|$(sql "SELECT max(version) FROM schema_migrations")"

districts="ARRAY['dhaka', 'gazipur', 'sylhet', 'khulna']"
# ins N PREFIX: N records in one statement, NIDs from a pool of 200 (10 %
# none), passports from a pool of 100 (70 % none)
ins() {
    sql "SELECT setseed(0.$RANDOM);
         INSERT INTO returnees (msisdn, district, ref, status, nid_enc, nid_hash, passport_enc, passport_hash)
         SELECT '88017' || $2 || lpad(g::text, 5, '0'), ($districts)[1 + g % 4], 'R' || $2 || lpad(g::text, 6, '0'), 'pending',
                CASE WHEN n IS NULL THEN NULL ELSE '\\x01'::bytea END, n,
                CASE WHEN p IS NULL THEN NULL ELSE '\\x02'::bytea END, p
         FROM generate_series(1, $1) g,
              LATERAL (SELECT $(rh 1000 0.1 200) AS n, $(rh 5000 0.7 100) AS p, g AS gg) x;" >"$tmp/ins.out" 2>&1 ||
        cat "$tmp/ins.out"
}
ins 250 10 >/dev/null
(cd . && "$bin" migrate -c "$conf") >>"$tmp/migrate.out" 2>&1
is "023 and later applied on 250 records" "0|1" "$?|$(sql "SELECT count(*) FROM schema_migrations WHERE version = 23")"
check_flags "backfill: the flags of the records there were"
is "backfill: no record got a new version" 250 "$(sql "SELECT count(*) FROM returnees WHERE version = 1")"
is "the triggers of returnees are on again after the backfill" "" \
    "$(sql "SELECT string_agg(tgname, ',') FROM pg_trigger WHERE tgrelid = 'returnees'::regclass AND NOT tgisinternal AND tgenabled = 'D'")"

# --- one statement at a time ----------------------------------------------
ins 120 11
check_flags "a multi-row insert"
for i in $(seq 1 15); do
    sql "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash)
         VALUES ('8801712$(printf %05d "$i")', 'dhaka', 'S$(printf %06d "$i")', '\\x01', $(hx $((1000 + i * 6))))" >/dev/null
done
check_flags "single-row inserts"
sql "SELECT setseed(0.42); UPDATE returnees SET nid_hash = x.n, nid_enc = CASE WHEN x.n IS NULL THEN NULL ELSE '\\x01'::bytea END
     FROM (SELECT id, $(rh 1000 0.2 200) AS n FROM returnees WHERE random() < 0.2) x WHERE returnees.id = x.id" >/dev/null
check_flags "NID changes (to other groups, to none)"
sql "SELECT setseed(0.17); UPDATE returnees SET passport_hash = x.p, passport_enc = CASE WHEN x.p IS NULL THEN NULL ELSE '\\x02'::bytea END
     FROM (SELECT id, $(rh 5000 0.5 60) AS p FROM returnees WHERE random() < 0.2) x WHERE returnees.id = x.id" >/dev/null
check_flags "passport changes"
for i in $(seq 1 10); do
    sql "UPDATE returnees SET nid_hash = $(hx $((1000 + RANDOM % 90))), nid_enc = '\\x01' WHERE id = (SELECT id FROM returnees ORDER BY id OFFSET $((RANDOM % 300)) LIMIT 1)" >/dev/null
done
check_flags "single-row NID changes"
sql "UPDATE returnees SET status = 'rejected', reject_reason = 'duplicate' WHERE id % 7 = 0" >/dev/null
check_flags "rejects (status changes)"
sql "DELETE FROM returnees WHERE id % 11 = 3" >/dev/null
for i in $(seq 1 8); do
    sql "DELETE FROM returnees WHERE id = (SELECT id FROM returnees WHERE possible_duplicate ORDER BY id OFFSET $((RANDOM % 20)) LIMIT 1)" >/dev/null
done
check_flags "deletes (many at once, and one by one from flagged pairs)"
sql "INSERT INTO returnees AS t (msisdn, district, ref, nid_enc, nid_hash)
     SELECT msisdn, district, ref, '\\x01', $(hx 1003) FROM returnees WHERE id % 5 = 1
     UNION ALL SELECT '8801799999999', 'khulna', 'UPSERT0001', '\\x01', $(hx 1003)
     ON CONFLICT (msisdn) DO UPDATE SET nid_hash = EXCLUDED.nid_hash, nid_enc = EXCLUDED.nid_enc" >/dev/null
check_flags "the registration's upsert (updates and an insert in one statement)"

# --- a flag change is no new version ---------------------------------------
sql "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash) VALUES ('8801788800001', 'sylhet', 'VER0000001', '\\x01', $(hx 777777))" >/dev/null
before=$(sql "SELECT version || '|' || updated_at || '|' || possible_duplicate::text FROM returnees WHERE ref = 'VER0000001'")
sql "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash) VALUES ('8801788800002', 'dhaka', 'VER0000002', '\\x01', $(hx 777777))" >/dev/null
after=$(sql "SELECT version || '|' || updated_at || '|' || possible_duplicate FROM returnees WHERE ref = 'VER0000001'")
is "a twin registered elsewhere flags the first record" "${before%|false}|true" "$after"
sql "UPDATE returnees SET nid_hash = $(hx 777778) WHERE ref = 'VER0000002'" >/dev/null
is "  and its twin moving away unflags it, still the same version" "$before" \
    "$(sql "SELECT version || '|' || updated_at || '|' || possible_duplicate FROM returnees WHERE ref = 'VER0000001'")"

# --- the console ------------------------------------------------------------
sql "UPDATE returnees SET nid_hash = $(hx 777777) WHERE ref = 'VER0000002'" >/dev/null
is "officer of dhaka: their record's flag, not sylhet's twin" "VER0000002|t" \
    "$(as officer dhaka "SELECT ref, possible_duplicate FROM returnees WHERE ref LIKE 'VER%';" | tail -n 1)"
out=$(as officer dhaka "SELECT count(*) FROM duplicate_keys;")
if echo "$out" | grep -q 'permission denied'; then ok "console role cannot read duplicate_keys"; else bad "console role cannot read duplicate_keys" "$out"; fi
out=$(as admin "" "SELECT remigate_duplicate_rebuild();")
if echo "$out" | grep -q 'permission denied'; then ok "console role cannot run the rebuild"; else bad "console role cannot run the rebuild" "$out"; fi
lone=$(sql "SELECT ref FROM returnees WHERE district = 'dhaka' AND NOT possible_duplicate ORDER BY id LIMIT 1")
as officer dhaka "UPDATE returnees SET possible_duplicate = true WHERE ref = '$lone';" >/dev/null
is "a flag set by hand (by the console) is put right again" f \
    "$(sql "SELECT possible_duplicate FROM returnees WHERE ref = '$lone'")"
check_flags "after the console's writes"

# --- two registrations of one new NID, in transactions open at once --------
# Session 1 inserts and then waits (an advisory lock this script holds)
# before its commit; session 2 inserts the same NID and commits.  Neither
# can see the other's row when it inserts.
mkfifo "$tmp/ctl"
psql -X -q -At "$PG_DSN" <"$tmp/ctl" >"$tmp/ctl.out" 2>&1 &
pids="$pids $!"
exec 3>"$tmp/ctl"
echo "SELECT pg_advisory_lock(23023);" >&3
wait_sql() { # wait_sql SQL: until it prints t (10 s at most)
    for _ in $(seq 200); do [ "$(sql "$1")" = t ] && return 0; sleep 0.05; done
    return 1
}
wait_sql "SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 23023 AND granted"
sql "BEGIN; INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash) VALUES ('8801766600001', 'dhaka', 'CON0000001', '\\x01', $(hx 666666));
     SELECT pg_advisory_xact_lock_shared(23023); COMMIT;" >"$tmp/s1.out" 2>&1 &
s1=$!
pids="$pids $s1"
wait_sql "SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 23023 AND NOT granted"
sql "BEGIN; INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash) VALUES ('8801766600002', 'sylhet', 'CON0000002', '\\x01', $(hx 666666)); COMMIT;" >"$tmp/s2.out" 2>&1 &
s2=$!
pids="$pids $s2"
is "  session 2 waits for session 1's group" 0 \
    "$(wait_sql "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%CON0000002%')"; echo $?)"
echo "SELECT pg_advisory_unlock(23023);" >&3
exec 3>&-
wait "$s1" "$s2"
is "two registrations of one NID at once: both flagged" "CON0000001|true,CON0000002|true" \
    "$(sql "SELECT string_agg(ref || '|' || possible_duplicate, ',' ORDER BY ref) FROM returnees WHERE ref LIKE 'CON%'")"

# --- four sessions at once --------------------------------------------------
# Each: 60 statements -- inserts, NID changes, deletes -- on a pool of 40
# NIDs, autocommit.  Groups changed in opposite orders at once may
# deadlock: PostgreSQL cancels one statement (the store retries); the
# others must leave every flag right.
for w in 1 2 3 4; do
    {
        for i in $(seq 1 60); do
            case $((RANDOM % 4)) in
            0 | 1) echo "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash) VALUES ('88017$w$(printf %07d "$i")', 'gazipur', 'W$w$(printf %07d "$i")', '\\x01', $(hx $((2000 + RANDOM % 40))));" ;;
            2) echo "UPDATE returnees SET nid_hash = $(hx $((2000 + RANDOM % 40))), nid_enc = '\\x01' WHERE ref = 'W$w$(printf %07d $((1 + RANDOM % i)))';" ;;
            3) echo "DELETE FROM returnees WHERE ref = 'W$w$(printf %07d $((1 + RANDOM % i)))';" ;;
            esac
        done
    } >"$tmp/w$w.sql"
    psql -X -q -At "$PG_DSN" -f "$tmp/w$w.sql" >"$tmp/w$w.out" 2>&1 &
    pids="$pids $!"
done
wait
is "four sessions at once: no error but deadlocks" "" \
    "$(cat "$tmp"/w?.out | grep ERROR | grep -v 'deadlock detected' | head -n 3)"
check_flags "four sessions at once"
is "  they made groups" t "$(sql "SELECT count(*) > 10 FROM returnees WHERE ref LIKE 'W%' AND possible_duplicate")"

# --- a large group: a new member reads a bounded part of it ---------------
# (023 read every member of the group for each new one: a placeholder NID
# typed by thousands made each registration slower than the last)
sql "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash)
     SELECT '8801900' || lpad(g::text, 6, '0'), 'sylhet', 'G' || lpad(g::text, 8, '0'), '\\x01', $(hx 888888)
     FROM generate_series(1, 2000) g" >/dev/null
check_flags "a group of 2,000 made by one statement"
reads() { # the rows of returnees SQL fetched by index and read by scans, in its transaction
    sql "$1; SELECT idx_tup_fetch || '|' || seq_tup_read FROM pg_stat_xact_user_tables
         WHERE relid = 'returnees'::regclass"
}
r=$(reads "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash)
           VALUES ('8801901000001', 'sylhet', 'G900000001', '\\x01', $(hx 888888))")
echo "# a 2,001st member: index entries|rows scanned $r"
is "  a 2,001st member fetches under 50 rows and scans none" t \
    "$(echo "$r" | awk -F'|' '{ print ($1 < 50 && $2 == 0) ? "t" : "f" }')"
is "  ... and is flagged" t "$(sql "SELECT possible_duplicate FROM returnees WHERE ref = 'G900000001'")"
r=$(reads "DELETE FROM returnees WHERE ref = 'G00000007'")
is "  a member leaving it fetches under 50 rows and scans none ($r)" t \
    "$(echo "$r" | awk -F'|' '{ print ($1 < 50 && $2 == 0) ? "t" : "f" }')"
sql "DELETE FROM returnees WHERE ref LIKE 'G%' AND ref <> 'G00000001'" >/dev/null
check_flags "the group down to one member in one statement"
is "  its last member is unflagged" f "$(sql "SELECT possible_duplicate FROM returnees WHERE ref = 'G00000001'")"
r=$(reads "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash)
           VALUES ('8801901000002', 'sylhet', 'G900000002', '\\x01', $(hx 888888))")
is "  a second member again: both flagged ($r)" "true,true" \
    "$(sql "SELECT string_agg(possible_duplicate::text, ',' ORDER BY ref) FROM returnees WHERE ref IN ('G00000001', 'G900000002')")"
check_flags "a pair made again"

# --- a statement of more than 10,000 hashes: everything recomputed ---------
sql "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash)
     SELECT '8801800' || lpad(g::text, 6, '0'), 'khulna', 'B' || lpad(g::text, 8, '0'), '\\x01',
            decode(lpad(to_hex(100000 + g % 10500), 64, '0'), 'hex')
     FROM generate_series(1, 11000) g" >/dev/null
check_flags "a statement of 11,000 records (10,500 hashes)"
is "  the 500 NIDs given twice: 1,000 records flagged" 1000 \
    "$(sql "SELECT count(*) FROM returnees WHERE ref LIKE 'B%' AND possible_duplicate")"
sql "DELETE FROM returnees WHERE ref LIKE 'B%' AND right(ref, 1) IN ('1', '3')" >/dev/null
check_flags "deleting 2,200 of them in one statement"


# --- 027: a group emptied loses its row of duplicate_keys -------------------
keyrows() { # keyrows N...: how many rows duplicate_keys has for hashes N...
    local n l=
    for n in "$@"; do l=${l:+$l, }$(hx "$n"); done
    sql "SELECT count(*) FROM duplicate_keys WHERE hash IN ($l)"
}
sql "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash) VALUES ('8801755500001', 'dhaka', 'PRU0000001', '\\x01', $(hx 555555))" >/dev/null
is "a new NID: its group's row" 1 "$(keyrows 555555)"
sql "UPDATE returnees SET nid_hash = $(hx 555556) WHERE ref = 'PRU0000001'" >/dev/null
is "  the NID corrected: the old group's row gone, the new one's there" "0|1" "$(keyrows 555555)|$(keyrows 555556)"
sql "UPDATE returnees SET nid_hash = NULL, nid_enc = NULL, passport_hash = $(hx 555557), passport_enc = '\\x02' WHERE ref = 'PRU0000001'" >/dev/null
is "  an NID taken away for a passport: the NID's row gone, the passport's there" "0|1" "$(keyrows 555556)|$(keyrows 555557)"
sql "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash, passport_enc, passport_hash) VALUES ('8801755500002', 'sylhet', 'PRU0000002', '\\x01', $(hx 555558), '\\x02', $(hx 555557))" >/dev/null
sql "DELETE FROM returnees WHERE ref = 'PRU0000001'" >/dev/null
is "  one of a pair erased: the pair's row stays, the other unflagged" "1|f" \
    "$(keyrows 555557)|$(sql "SELECT possible_duplicate FROM returnees WHERE ref = 'PRU0000002'")"
sql "DELETE FROM returnees WHERE ref = 'PRU0000002'" >/dev/null
is "  the last one erased: no row left for its NID nor its passport" 0 "$(keyrows 555557 555558)"
check_flags "groups emptied one by one"

# Session A erases the one record with an NID and holds its transaction
# open (the group's row deleted, its lock held); session B registers that
# NID and waits for A's lock; A commits, so the row B waited for is gone.
# B must then hold the group's lock all the same (a row made anew): C,
# registering the same NID while B is still open, waits for B, and both
# are flagged.  (Had B gone on without the lock, neither B nor C would see
# the other's record.)
sql "INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash) VALUES ('8801744400000', 'khulna', 'RACE000000', '\\x01', $(hx 444444))" >/dev/null
mkfifo "$tmp/ctl2"
psql -X -q -At "$PG_DSN" <"$tmp/ctl2" >"$tmp/ctl2.out" 2>&1 &
pids="$pids $!"
exec 4>"$tmp/ctl2"
echo "SELECT pg_advisory_lock(27027); BEGIN; DELETE FROM returnees WHERE ref = 'RACE000000';" >&4
is "  A: the last record erased, its transaction open" 0 \
    "$(wait_sql "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%RACE000000%')"; echo $?)"
sql "BEGIN; INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash) VALUES ('8801744400001', 'dhaka', 'RACE000001', '\\x01', $(hx 444444));
     SELECT pg_advisory_xact_lock_shared(27027); COMMIT;" >"$tmp/b.out" 2>&1 &
sb=$!
pids="$pids $sb"
is "  B: waits for A's lock on the group" 0 \
    "$(wait_sql "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event <> 'advisory' AND query LIKE '%RACE000001%')"; echo $?)"
echo "COMMIT;" >&4
is "  A committed: B goes on, then waits before its commit" 0 \
    "$(wait_sql "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory' AND query LIKE '%RACE000001%')"; echo $?)"
sql "BEGIN; INSERT INTO returnees (msisdn, district, ref, nid_enc, nid_hash) VALUES ('8801744400002', 'sylhet', 'RACE000002', '\\x01', $(hx 444444)); COMMIT;" >"$tmp/c.out" 2>&1 &
sc=$!
pids="$pids $sc"
is "  C: waits for B's lock on the group (made anew)" 0 \
    "$(wait_sql "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event <> 'advisory' AND query LIKE '%RACE000002%')"; echo $?)"
echo "SELECT pg_advisory_unlock(27027);" >&4
exec 4>&-
wait "$sb" "$sc"
is "  B and C committed without an error" "" "$(cat "$tmp/b.out" "$tmp/c.out")"
is "  both flagged, one row for the NID" "RACE000001|true,RACE000002|true|1" \
    "$(sql "SELECT string_agg(ref || '|' || possible_duplicate, ',' ORDER BY ref) FROM returnees WHERE ref LIKE 'RACE%'")|$(keyrows 444444)"
check_flags "after the erasure and the registrations at once"

finish
