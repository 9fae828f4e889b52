#!/usr/bin/env bash
# tests/integration/test_stats_summary.sh -- migration 015 in SQL: the
# summary behind remigate_stats() follows every change of returnees, and
# gives the rows 011's full scan gives.
#
# 011's remigate_stats() is loaded beside the new one (as test_stats_011,
# from store/migrations/011_stats.sql itself) and both are called for
# every one- and two-way table of the 13 dimensions, as an admin, an
# analyst (k = 5: the same refusals) and an officer of two districts,
# with filters on status, district, sex and periods that cut months, hold
# whole months, or lie inside one month: the same rows in the same order
# (counts, people, margins) or the same error.  Again after each kind of
# change -- inserts (one and many rows), a status change of many rows,
# decisions and a correction through the console's role (district,
# skills, birth year changed) and its undo, a district change, a move
# across a month, deletes, the store's upsert (ON CONFLICT DO UPDATE),
# and a statement that changes nothing -- and
# stats_counts, with stats_delta folded into it, is then what
# remigate_stats_rebuild() makes from scratch; the changes wait in
# stats_delta (readers add it) until a fold, every 64th statement.
# Concurrent writers (inserts and status changes in parallel sessions)
# leave no deadlock and a summary equal to the rebuild.  The console's
# role cannot read the summary nor call its functions.
#
# Migration 020: the same for the funnel's median days (012's sort,
# loaded as test_stats_days_012) and the indicator destination x reason x
# year (019's scan, as test_ind_019), for every role and filter after
# each kind of change, and three medians worked out by hand (the two
# middle decisions in one bucket of 0.1 day, in two, and a midpoint that
# rounds up).
#
# Migration 021: the same comparisons now also read the day-grain kinds
# (a whole-country view whose period cuts months, at either end or both),
# the flat twins per district (an officer's or a district filter's view
# without status and sex) and the funnel's two flat kinds (whole days,
# then that day's buckets of 0.1); with every returnee deleted in a
# rolled-back transaction those views give the same numbers (read from
# the summary alone) while a view the summary does not keep changes; and
# medians whose two middle decisions lie in two whole days, or share a
# bucket though their whole days are read apart, are worked out by hand.
#
# Migration 024: a period cut per district (or for a pair without a
# daily kind) reads each end as its days or as the whole month less the
# days left out, whichever is fewer: the periods above take each way at
# either end (and both ends inside two months none of which is whole, or
# inside one); the indicator without a period reads its whole (all-time)
# kind, and the district dimension's kinds (none, need) are kept by day
# per district: from the summary alone with returnees deleted, the same
# as 011's and 019's scans for every role and filter.
#
# Migration 026: the cut days per district read from returnees one range
# per end (a range of created_at each), and need kept by day per
# district flat too (read without status and sex): the comparisons above
# read both, and from the summary alone the whole country's district x
# need, an officer's and a district filter's need over a cut period give
# the same numbers.
#
# Migration 028: the day-grain kinds of the console's other views
# (division, age band, education, destination, skill, reason, year of
# return, channel, week, destination x skill) kept per district too, and
# the cut days from a day-grain kind read as the days kept or the whole
# month less the days left out, whichever is fewer: the comparisons above
# read them, and from the summary alone an officer's destination x skill,
# education, sex x age band and a district filter's education x sex and
# week over cut periods give the same numbers.
#
# Migration 030: every pair of two value dimensions kept per district
# (the comparisons above read them for an officer and a district filter,
# with and without periods that cut months): from the summary alone an
# officer's and a district filter's pairs without a period or over whole
# months give the same numbers, and over periods cutting months too with
# the returnees of the whole months deleted (while with every returnee
# deleted the cut days' counts change); the funnel's cut days read as
# the whole month less the days left out, and a median worked out by
# hand over such a period.
#
# Migration 031: every pair of two value dimensions kept by day for the
# whole country (the comparisons above read them for the whole country
# over periods cutting months): from the summary alone (every returnee
# deleted) the whole country's pairs over such periods give the same
# numbers, for every role and with status and sex filters; the whole
# country's district dimension over such periods reads its summary rows
# district by district (the comparisons above, and a district whose
# only rows are still in stats_delta).
#
# Uses PG_DSN when tests/run gives one (a fresh database), else starts its
# own PostgreSQL.  Prints "stats-summary: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=stats-summary
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
itest_tmpdir
itest_suite_servers pg

sql() { srv_psql -At -c "$1" 2>&1; }
# as ROLE DISTRICTS OFFICER SQL: as the console's role, scope set as the
# console sets it (an admin's transaction as remigate_console_admin,
# migration 013)
as() {
    local pgrole=remigate_console
    [ "$1" = admin ] && pgrole=remigate_console_admin
    printf '%s\n' "BEGIN; SET LOCAL ROLE $pgrole;" \
        "SELECT set_config('remigate.role', '$1', true), set_config('remigate.districts', '$2', true), set_config('remigate.officer', '$3', true) \\g /dev/null" \
        "$4" "COMMIT;" | psql -X -q -v ON_ERROR_STOP=1 -At "$PG_DSN" 2>&1
}

itest_config "$PG_DSN"
is "migrate applies 015" 1 "$(sql "SELECT count(*) FROM schema_migrations WHERE version = 15")"

# 011's function under another name, from the file itself
sed -n '/^CREATE FUNCTION remigate_stats(p_dim1/,/^\$\$;/p' store/migrations/011_stats.sql |
    sed 's/^CREATE FUNCTION remigate_stats(/CREATE FUNCTION test_stats_011(/' >"$tmp/old.sql"
psql -X -q -v ON_ERROR_STOP=1 "$PG_DSN" -f "$tmp/old.sql" >"$tmp/out" 2>&1
is "011's remigate_stats loaded as test_stats_011" "0" "$?"
# and 012's remigate_stats_days (the funnel's median days, a full sort)
sed -n '/^CREATE FUNCTION remigate_stats_days(/,/^\$\$;/p' store/migrations/012_stats_days.sql |
    sed 's/^CREATE FUNCTION remigate_stats_days(/CREATE FUNCTION test_stats_days_012(/' >"$tmp/old_days.sql"
psql -X -q -v ON_ERROR_STOP=1 "$PG_DSN" -f "$tmp/old_days.sql" >"$tmp/out" 2>&1
is "012's remigate_stats_days loaded as test_stats_days_012" "0" "$?"
# and 019's remigate_indicator_returns (destination x reason x year)
sed -n '/^CREATE FUNCTION remigate_indicator_returns(/,/^\$\$;/p' store/migrations/019_indicator_returns.sql |
    sed 's/^CREATE FUNCTION remigate_indicator_returns(/CREATE FUNCTION test_ind_019(/' >"$tmp/old_ind.sql"
psql -X -q -v ON_ERROR_STOP=1 "$PG_DSN" -f "$tmp/old_ind.sql" >"$tmp/out" 2>&1
is "019's remigate_indicator_returns loaded as test_ind_019" "0" "$?"

# One call's rows (in order) or its error, as text.
sql "CREATE FUNCTION test_stats_call(fn text, d1 text, d2 text, st text,
         di text, sx text, fr date, t date) RETURNS text
     LANGUAGE plpgsql AS \$\$
     DECLARE out text;
     BEGIN
         EXECUTE format('SELECT string_agg(x::text, '';'') FROM %I(\$1, \$2, \$3, \$4, \$5, \$6, \$7, 5) x', fn)
             INTO out USING d1, d2, st, di, sx, fr, t;
         RETURN coalesce(out, '');
     EXCEPTION WHEN OTHERS THEN
         RETURN 'error ' || SQLSTATE || ' ' || SQLERRM;
     END \$\$;
     -- every table (one- and two-way) x the roles x the filters given:
     -- the calls made, and the first differences
     CREATE FUNCTION test_stats_diff(roles text[], filters jsonb)
     RETURNS TABLE (calls int, diffs int, first text)
     LANGUAGE plpgsql AS \$\$
     DECLARE
         dims text[] := ARRAY['district', 'division', 'sex', 'age_band',
             'education', 'country', 'skill', 'reason', 'need',
             'return_year', 'channel', 'status', 'week'];
         who text; f jsonb; d1 text; d2 text; a text; b text;
     BEGIN
         calls := 0; diffs := 0; first := '';
         FOREACH who IN ARRAY roles LOOP
             PERFORM set_config('remigate.role', who, true);
             PERFORM set_config('remigate.districts',
                 CASE WHEN who = 'officer' THEN 'BD-15,BD-26' ELSE '' END, true);
             FOR f IN SELECT jsonb_array_elements(filters) LOOP
                 FOREACH d1 IN ARRAY dims LOOP
                     FOREACH d2 IN ARRAY ARRAY[NULL] || dims LOOP
                         CONTINUE WHEN d1 = d2;
                         a := test_stats_call('remigate_stats', d1, d2, f->>'status', f->>'district', f->>'sex', (f->>'from')::date, (f->>'to')::date);
                         b := test_stats_call('test_stats_011', d1, d2, f->>'status', f->>'district', f->>'sex', (f->>'from')::date, (f->>'to')::date);
                         calls := calls + 1;
                         IF a IS DISTINCT FROM b THEN
                             diffs := diffs + 1;
                             IF diffs <= 3 THEN
                                 first := first || format(E'%s %s,%s %s:\n  new %s\n  011 %s\n',
                                     who, d1, d2, f, left(a, 300), left(b, 300));
                             END IF;
                         END IF;
                     END LOOP;
                 END LOOP;
             END LOOP;
         END LOOP;
         RETURN NEXT;
     END \$\$;
     CREATE FUNCTION test_ind_call(fn text, f jsonb) RETURNS text
     LANGUAGE plpgsql AS \$\$
     DECLARE out text;
     BEGIN
         EXECUTE format('SELECT string_agg(x::text, '';'') FROM %I(\$1, \$2, \$3, \$4, 5) x', fn)
             INTO out USING f->>'district', f->>'sex', (f->>'from')::date, (f->>'to')::date;
         RETURN coalesce(out, '');
     EXCEPTION WHEN OTHERS THEN
         RETURN 'error ' || SQLSTATE || ' ' || SQLERRM;
     END \$\$;
     -- the funnel's days against 012's sort, and the indicator
     -- destination x reason x year against 019's scan: the roles x the
     -- filters given (district, sex, from, to)
     CREATE FUNCTION test_days_diff(roles text[], filters jsonb)
     RETURNS TABLE (calls int, diffs int, first text)
     LANGUAGE plpgsql AS \$\$
     DECLARE who text; f jsonb; a text; b text;
     BEGIN
         calls := 0; diffs := 0; first := '';
         FOREACH who IN ARRAY roles LOOP
             PERFORM set_config('remigate.role', who, true);
             PERFORM set_config('remigate.districts',
                 CASE WHEN who = 'officer' THEN 'BD-15,BD-26' ELSE '' END, true);
             FOR f IN SELECT jsonb_array_elements(filters) LOOP
                 SELECT string_agg(x::text, ';') INTO a FROM remigate_stats_days(f->>'district', (f->>'from')::date, (f->>'to')::date) x;
                 SELECT string_agg(x::text, ';') INTO b FROM test_stats_days_012(f->>'district', (f->>'from')::date, (f->>'to')::date) x;
                 calls := calls + 1;
                 IF a IS DISTINCT FROM b THEN
                     diffs := diffs + 1;
                     IF diffs <= 3 THEN
                         first := first || format(E'%s %s:\n  new %s\n  012 %s\n', who, f, left(a, 400), left(b, 400));
                     END IF;
                 END IF;
                 a := test_ind_call('remigate_indicator_returns', f);
                 b := test_ind_call('test_ind_019', f);
                 calls := calls + 1;
                 IF a IS DISTINCT FROM b THEN
                     diffs := diffs + 1;
                     IF diffs <= 3 THEN
                         first := first || format(E'indicator %s %s:\n  new %s\n  019 %s\n', who, f, left(a, 400), left(b, 400));
                     END IF;
                 END IF;
             END LOOP;
         END LOOP;
         RETURN NEXT;
     END \$\$;
     -- stats_counts (rows not counted down to zero) against a rebuild
     CREATE FUNCTION test_stats_vs_rebuild() RETURNS text
     LANGUAGE plpgsql AS \$\$
     DECLARE kept bigint; missing bigint; extra bigint;
     BEGIN
         PERFORM remigate_stats_fold();
         CREATE TEMP TABLE kept_rows ON COMMIT DROP AS
             SELECT kind, district, mon, status, sex, a, b, n, p
             FROM stats_counts WHERE n <> 0 OR p <> 0;
         SELECT count(*) INTO kept FROM kept_rows;
         PERFORM remigate_stats_rebuild();
         SELECT count(*) INTO missing FROM (SELECT kind, district, mon, status, sex, a, b, n, p
             FROM stats_counts EXCEPT SELECT * FROM kept_rows) x;
         SELECT count(*) INTO extra FROM (SELECT * FROM kept_rows EXCEPT
             SELECT kind, district, mon, status, sex, a, b, n, p FROM stats_counts) x;
         RETURN format('rows=%s missing=%s extra=%s', kept > 0, missing, extra);
     END \$\$;" >"$tmp/out"
is "test helpers created" "" "$(cat "$tmp/out")"

# diff NAME ROLES FILTERS: every table the same as 011's
diff_all() {
    local r
    r=$(printf '%s\n' "BEGIN;" "SELECT calls, diffs FROM test_stats_diff('$2', '$3');" \
        "SELECT first FROM test_stats_diff('$2', '$3') WHERE diffs > 0;" "COMMIT;" |
        psql -X -q -v ON_ERROR_STOP=1 -At "$PG_DSN" 2>&1)
    case $(echo "$r" | head -1) in
    *'|0') ok "$1: $(echo "$r" | head -1 | cut -d'|' -f1) tables, each the same rows as 011's scan" ;;
    *) bad "$1" "$r" ;;
    esac
}
# days NAME ROLES FILTERS: the funnel's median days the same as 012's
days_all() {
    local r
    r=$(printf '%s\n' "BEGIN;" "SELECT calls, diffs FROM test_days_diff('$2', '$3');" \
        "SELECT first FROM test_days_diff('$2', '$3') WHERE diffs > 0;" "COMMIT;" |
        psql -X -q -v ON_ERROR_STOP=1 -At "$PG_DSN" 2>&1)
    case $(echo "$r" | head -1) in
    *'|0') ok "$1: $(echo "$r" | head -1 | cut -d'|' -f1) funnels and indicators, each the same as 012's and 019's" ;;
    *) bad "$1" "$r" ;;
    esac
}
rebuilt() { is "$1: stats_counts is what a rebuild makes" "rows=t missing=0 extra=0" "$(sql "BEGIN; SET LOCAL client_min_messages = warning; SELECT test_stats_vs_rebuild(); ROLLBACK;")"; }

F_ALL='[{}, {"status":"verified"}, {"district":"BD-15"}, {"sex":"f"},
  {"from":"2026-03-10","to":"2026-07-20"}, {"from":"2026-03-01","to":"2026-05-31"},
  {"from":"2026-06-05","to":"2026-06-20"}, {"to":"2026-04-03"}, {"from":"2026-07-31"},
  {"status":"pending","district":"BD-13","sex":"m","from":"2026-02-15"},
  {"from":"2026-05-01","to":"2026-04-30"},
  {"status":"verified","sex":"f","from":"2026-02-03","to":"2026-06-27"},
  {"from":"2026-03-10","to":"2026-04-20"}, {"district":"BD-13","from":"2026-02-03","to":"2026-07-05"}]'
F_MID='[{}, {"district":"BD-26"}, {"from":"2026-03-10","to":"2026-07-20"}, {"from":"2026-06-01","to":"2026-07-31"},
  {"status":"pending","sex":"f","to":"2026-06-30"}]'
F_FEW='[{}, {"district":"BD-15"}, {"status":"verified","from":"2026-02-27","to":"2026-06-30"},
  {"from":"2026-01-15","to":"2026-08-10"}]'

# --- 640 returnees over Jan..Aug 2026 (Dhaka), a few on the last and
# first second of a month; skewed districts, missing answers, a skill
# given twice, a NULL among the skills -----------------------------------
sql "INSERT INTO returnees (msisdn, district, division, sex, birth_year, country,
        return_year, reason, education, skills, need, lang, channel, status,
        info_reason, reject_reason, ref, created_at)
     SELECT '88017' || lpad(i::text, 8, '0'),
            CASE WHEN i % 53 = 0 THEN NULL WHEN i <= 3 THEN 'BD-26' WHEN i % 10 < 6 THEN 'BD-13'
                 WHEN i % 10 < 9 THEN 'BD-15' ELSE 'BD-02' END,
            CASE WHEN i % 59 = 0 THEN NULL WHEN i % 10 < 9 THEN 'C' ELSE 'A' END,
            CASE WHEN i % 97 = 0 THEN NULL WHEN i % 3 = 0 THEN 'f'
                 WHEN i % 151 = 0 THEN 'x' ELSE 'm' END,
            CASE WHEN i % 89 = 0 THEN NULL ELSE extract(year FROM now())::int - 17 - (i * 7) % 48 END,
            CASE WHEN i % 71 = 0 THEN NULL ELSE (ARRAY['SA','SA','SA','MY','AE','QA','OM','KW','SG','IT'])[1 + (i * 3) % 10] END,
            CASE WHEN i % 83 = 0 THEN NULL ELSE 2015 + (i * 5) % 11 END,
            (ARRAY['contract_end','unpaid','illness','covid','deported','family'])[1 + (i * 11) % 6],
            CASE WHEN i % 67 = 0 THEN NULL ELSE (ARRAY['none','primary','ssc','hsc','degree'])[1 + (i * 13) % 5] END,
            CASE WHEN i % 7 = 0 THEN '{}'::text[]
                 WHEN i % 61 = 0 THEN ARRAY['cook', 'cook', 'driver']
                 WHEN i % 79 = 0 THEN ARRAY['none', NULL]
                 WHEN i % 5 = 0 THEN ARRAY['driver','cook','construction']
                 WHEN i % 2 = 0 THEN ARRAY['construction'] ELSE ARRAY['cook','cleaning'] END,
            (ARRAY['job_home','abroad_again','training','loan','health','legal'])[1 + (i * 17) % 6],
            'bn', CASE WHEN i % 101 = 0 THEN NULL WHEN i % 4 = 0 THEN 'sms' ELSE 'ussd' END,
            CASE WHEN i % 5 < 2 THEN 'verified' WHEN i % 5 = 2 THEN 'pending'
                 WHEN i % 5 = 3 THEN 'needs_info' ELSE 'rejected' END,
            CASE WHEN i % 5 = 3 THEN 'unclear' END,
            CASE WHEN i % 5 = 4 THEN 'duplicate' END,
            'S' || lpad(i::text, 9, '0'),
            CASE WHEN i % 40 = 1 THEN timestamptz '2026-01-01 00:00+06' + (i / 40) * interval '1 month' - interval '1 second'
                 WHEN i % 40 = 2 THEN timestamptz '2026-01-01 00:00+06' + (i / 40) * interval '1 month'
                 ELSE timestamptz '2026-01-01 00:00+06' + (i * 9.1) * interval '1 hour' END
     FROM generate_series(1, 640) i" >/dev/null
is "640 returnees, one statement" 640 "$(sql 'SELECT count(*) FROM returnees')"
diff_all "after the first insert, admin and officer, every filter" '{admin,officer}' "$F_ALL"
days_all "after the first insert, admin and officer, every filter" '{admin,officer,analyst}' "$F_ALL"
diff_all "after the first insert, analyst (k = 5)" '{analyst}' "$F_FEW"
rebuilt "after the first insert"

# --- the median's two middle decisions: in one bucket of 0.1 day, in two
# (read from returnees and interpolated), and a midpoint that rounds up
# though both its ends round down ------------------------------------------
sql "INSERT INTO returnees (msisdn, district, sex, skills, status, ref, created_at, status_at)
     SELECT '88016' || lpad((d * 10 + i)::text, 8, '0'), 'BD-' || d, 'm', '{}', 'verified',
            'M' || d || '-' || i, timestamptz '2026-05-10 10:00+06',
            timestamptz '2026-05-10 10:00+06' + (ARRAY[[1, 2, 3, 4], [1.01, 1.02, 1.03, 5], [2.04, 2.06, NULL, NULL]])[d - 61][i] * interval '1 day'
     FROM generate_series(62, 64) d, generate_series(1, 4) i
     WHERE (ARRAY[[1, 2, 3, 4], [1.01, 1.02, 1.03, 5], [2.04, 2.06, NULL, NULL]])[d - 61][i] IS NOT NULL" >/dev/null
is "median days: 2 and 3 -> 2.5, 1.02 and 1.03 -> 1.0, 2.04 and 2.06 -> 2.1 (as 012)" \
    "BD-62|4|2.5 BD-63|4|1.0 BD-64|2|2.1 / BD-62|4|2.5 BD-63|4|1.0 BD-64|2|2.1" \
    "$(as admin '' 1 "SELECT * FROM remigate_stats_days(NULL, '2026-05-01', '2026-05-31') WHERE district IN ('BD-62', 'BD-63', 'BD-64');" | paste -sd' ') / $(as admin '' 1 "SELECT * FROM test_stats_days_012(NULL, '2026-05-01', '2026-05-31') WHERE district IN ('BD-62', 'BD-63', 'BD-64');" | paste -sd' ')"
days_all "after those" '{admin,officer,analyst}' "$F_ALL"
# 021: the middle decisions in two whole days (2.94 and 3.02 -> 2.98 ->
# 3.0), in one bucket read from one whole day (2.96 and 3.02: both 3.0),
# and three days apart (1.5 and 4.9 -> 3.2)
sql "INSERT INTO returnees (msisdn, district, sex, skills, status, ref, created_at, status_at)
     SELECT '88015' || lpad((d * 10 + i)::text, 8, '0'), 'BD-' || d, 'f', '{}', 'verified',
            'W' || d || '-' || i, timestamptz '2026-06-10 10:00+06',
            timestamptz '2026-06-10 10:00+06' + (ARRAY[[2.94, 3.02, NULL, NULL], [2.96, 3.02, NULL, NULL], [0.2, 1.5, 4.9, 9]])[d - 58][i] * interval '1 day'
     FROM generate_series(59, 61) d, generate_series(1, 4) i
     WHERE (ARRAY[[2.94, 3.02, NULL, NULL], [2.96, 3.02, NULL, NULL], [0.2, 1.5, 4.9, 9]])[d - 58][i] IS NOT NULL" >/dev/null
is "median days over whole days: 2.94, 3.02 -> 3.0; 2.96, 3.02 -> 3.0; 1.5, 4.9 -> 3.2 (as 012)" \
    "BD-59|2|3.0 BD-60|2|3.0 BD-61|4|3.2 / BD-59|2|3.0 BD-60|2|3.0 BD-61|4|3.2" \
    "$(as admin '' 1 "SELECT * FROM remigate_stats_days(NULL, NULL, NULL) WHERE district IN ('BD-59', 'BD-60', 'BD-61');" | paste -sd' ') / $(as admin '' 1 "SELECT * FROM test_stats_days_012(NULL, NULL, NULL) WHERE district IN ('BD-59', 'BD-60', 'BD-61');" | paste -sd' ')"
is "  and over a period cutting June at both ends (its days from the daily kinds)" \
    "BD-59|2|3.0 BD-60|2|3.0 BD-61|4|3.2" \
    "$(as admin '' 1 "SELECT * FROM remigate_stats_days(NULL, '2026-06-09', '2026-06-11') WHERE district IN ('BD-59', 'BD-60', 'BD-61');" | paste -sd' ')"
# 030: a period cutting May at its start reads May whole less 1-4 May
# (counted negative) and 1-2 June: decisions of 2 May (1, 1, 1 days) and
# 10 June (9) outside it, of 10 May (5, 6) and 2 June (7) in it -> 6 (the
# four outside counted in, or added instead of taken off, move it)
sql "INSERT INTO returnees (msisdn, district, sex, skills, status, ref, created_at, status_at)
     SELECT '88014' || lpad(i::text, 8, '0'), 'BD-58', 'm', '{}', 'verified', 'C58-' || i,
            (ARRAY[timestamptz '2026-05-02 10:00+06', '2026-05-02 11:00+06', '2026-05-02 12:00+06',
                   '2026-05-10 10:00+06', '2026-05-10 11:00+06', '2026-06-02 10:00+06',
                   '2026-06-10 10:00+06'])[i],
            (ARRAY[timestamptz '2026-05-02 10:00+06', '2026-05-02 11:00+06', '2026-05-02 12:00+06',
                   '2026-05-10 10:00+06', '2026-05-10 11:00+06', '2026-06-02 10:00+06',
                   '2026-06-10 10:00+06'])[i] + (ARRAY[1, 1, 1, 5, 6, 7, 9])[i] * interval '1 day'
     FROM generate_series(1, 7) i" >/dev/null
is "median days over 5 May-2 June (May less its first four days, 1-2 June): 5, 6, 7 -> 6 (as 012)" \
    "BD-58|3|6.0 / BD-58|3|6.0" \
    "$(as admin '' 1 "SELECT * FROM remigate_stats_days('BD-58', '2026-05-05', '2026-06-02');" | paste -sd' ') / $(as admin '' 1 "SELECT * FROM test_stats_days_012('BD-58', '2026-05-05', '2026-06-02');" | paste -sd' ')"
is "  and every day of May and June: 1, 1, 1, 5, 6, 7, 9 -> 5" "BD-58|7|5.0" \
    "$(as admin '' 1 "SELECT * FROM remigate_stats_days('BD-58', '2026-05-01', '2026-06-30');" | paste -sd' ')"
days_all "after those" '{admin,officer,analyst}' "$F_ALL"

# --- 021: what is read from the summary alone ---------------------------
is "021's kinds: 12 daily for the whole country (024: none and need per district too; 026: need flat per district; 028: the ten others per district too; 031: the 44 other pairs for the whole country) and the funnel's 2 per district, 13 flat twins per district (026: 14), the funnel's 4" \
    "59|15|56 14|14|0 4|4|0" \
    "$(sql "SELECT count(*) || '|' || count(*) FILTER (WHERE dist) || '|' || count(*) FILTER (WHERE nation) FROM stats_kinds WHERE daily UNION ALL SELECT count(*) || '|' || count(*) FILTER (WHERE dist) || '|' || count(*) FILTER (WHERE nation) FROM stats_kinds WHERE flat AND da NOT LIKE 'days%' UNION ALL SELECT count(*) || '|' || count(*) FILTER (WHERE dist) || '|' || count(*) FILTER (WHERE nation) FROM stats_kinds WHERE flat AND da LIKE 'days%'" | paste -sd' ')"
# view ROLE DISTRICTS ARGS: the rows of remigate_stats(ARGS), as text
view() {
    local q="SELECT string_agg(x::text, ';') FROM remigate_stats($3) x;"
    case $3 in SELECT*) q=$3 ;; esac
    printf "SELECT set_config('remigate.role', '%s', true), set_config('remigate.districts', '%s', true), set_config('remigate.officer', '7', true) \\g /dev/null\n%s\n" "$1" "$2" "$q"
}
summary_alone() {
    printf '%s\n' "BEGIN;" "$(view "$1" "$2" "$3")" \
        "SET LOCAL session_replication_role = replica;" "DELETE FROM returnees;" \
        "SET LOCAL ROLE $([ "$1" = admin ] && echo remigate_console_admin || echo remigate_console);" \
        "$(view "$1" "$2" "$3")" "ROLLBACK;" | psql -X -q -v ON_ERROR_STOP=1 -At "$PG_DSN" 2>&1
}
# same_rows FN OK BAD CASE...: each CASE "ROLE|DISTRICTS|ARGS" through FN
# (summary_alone or months_alone) gives two equal, non-empty answers:
# "OK: ROLE (ARGS)" passes, else "BAD: ROLE (ARGS)" fails with the answers
same_rows() {
    local fn=$1 okmsg=$2 badmsg=$3 v who ds args r
    shift 3
    for v in "$@"; do
        IFS='|' read -r who ds args <<<"$v"
        r=$("$fn" "$who" "$ds" "$args")
        # shellcheck disable=SC2086
        set -- $r
        if [ $# = 2 ] && [ "$1" = "$2" ] && [ -n "$1" ]; then
            ok "$okmsg: $who ($args)"
        else
            bad "$badmsg: $who ($args)" "$r"
        fi
    done
}
same_rows summary_alone "from the summary alone (returnees deleted, same rows)" \
    "from the summary alone" \
    "admin||'country', 'skill', 'verified', NULL, NULL, '2026-03-10', '2026-07-20', 5" \
    "admin||'skill', NULL, NULL, NULL, NULL, '2026-02-03', '2026-06-27', 5" \
    "admin||'week', NULL, NULL, NULL, 'f', '2026-06-05', '2026-06-20', 5" \
    "officer|BD-15,BD-26|'country', 'skill', NULL, NULL, NULL, NULL, NULL, 5" \
    "admin||'district', 'need', NULL, NULL, NULL, NULL, NULL, 5" \
    "admin||'district', 'need', 'verified', NULL, NULL, '2026-03-10', '2026-07-20', 5" \
    "officer|BD-15,BD-26|'district', 'status', NULL, NULL, 'f', '2026-02-03', '2026-06-27', 5" \
    "admin||'need', 'reason', NULL, 'BD-13', NULL, '2026-03-01', '2026-05-31', 5" \
    "admin||'district', 'need', NULL, NULL, NULL, '2026-03-10', '2026-07-20', 5" \
    "officer|BD-15,BD-26|'need', NULL, NULL, NULL, NULL, '2026-02-03', '2026-06-27', 5" \
    "admin||'need', NULL, NULL, 'BD-13', NULL, '2026-03-10', '2026-04-20', 5" \
    "officer|BD-15,BD-26|'country', 'skill', NULL, NULL, NULL, '2026-03-10', '2026-07-20', 5" \
    "officer|BD-15,BD-26|'education', NULL, NULL, NULL, NULL, '2026-03-10', '2026-07-20', 5" \
    "officer|BD-15,BD-26|'sex', 'age_band', 'verified', NULL, NULL, '2026-02-03', '2026-06-27', 5" \
    "admin||'education', 'sex', NULL, 'BD-13', NULL, '2026-03-10', '2026-04-20', 5" \
    "admin||'week', NULL, NULL, 'BD-13', 'm', '2026-02-15', '2026-06-05', 5" \
    "admin||SELECT string_agg(concat(district, ':', decided), ';') FROM remigate_stats_days(NULL, '2026-03-10', '2026-07-20');" \
    "officer|BD-15,BD-26|SELECT string_agg(concat(district, ':', decided), ';') FROM remigate_stats_days(NULL, '2026-02-03', NULL);" \
    "officer|BD-15,BD-26|SELECT string_agg(x::text, ';') FROM remigate_indicator_returns(NULL, NULL, NULL, NULL, 5) x;" \
    "admin||SELECT string_agg(x::text, ';') FROM remigate_indicator_returns(NULL, 'f', NULL, NULL, 5) x;"
is "024's whole kind: the indicator's, per district and for the country" "indicator_returns|true|true" \
    "$(sql "SELECT da || '|' || dist || '|' || nation FROM stats_kinds WHERE whole")"
r=$(summary_alone admin '' "'education', 'need', NULL, 'BD-13', NULL, '2026-03-10', '2026-07-20', 5")
set -- $r
is "  while a pair per district reads its cut days from returnees (its counts change)" "2 t" "$# $([ "$1" != "$2" ] && echo t)"
is "026: need by day per district, flat (status and sex ''), no '*' rows" "need|true|true|false" \
    "$(sql "SELECT da || '|' || dist || '|' || flat || '|' || nation FROM stats_kinds WHERE daily AND flat AND da NOT LIKE 'days%'")"
is "028: the console's ten other kinds by day per district as well as for the country" \
    "age_band,channel,country,division,education,reason,return_year,skill,skill x country,week|10" \
    "$(sql "SELECT string_agg(concat_ws(' x ', da, nullif(db, '')), ',' ORDER BY da, db) || '|' || count(*) FROM stats_kinds WHERE daily AND NOT flat AND dist AND nation AND da NOT IN ('', 'need')")"
r=$(summary_alone officer BD-15,BD-26 "'need', 'reason', NULL, NULL, NULL, '2026-03-10', '2026-07-20', 5")
set -- $r
is "  while an officer's need x reason (no day grain, not a view of the console) over a cut period reads its cut days from returnees (its counts change)" "2 t" "$# $([ "$1" != "$2" ] && echo t)"
# 030: every pair of two value dimensions kept per district (by month,
# with status and sex); its whole months read from the summary, the days
# a period cuts off a month from returnees
is "030: all 45 pairs by month kept per district as well as for the country" "45|45" \
    "$(sql "SELECT count(*) || '|' || count(*) FILTER (WHERE dist AND nation) FROM stats_kinds WHERE da <> '' AND db <> '' AND NOT daily AND NOT flat AND NOT whole")"
same_rows summary_alone "030: a pair per district from the summary alone (returnees deleted, same rows)" \
    "030: a pair per district from the summary alone" \
    "officer|BD-15,BD-26|'education', 'need', NULL, NULL, NULL, NULL, NULL, 5" \
    "officer|BD-15,BD-26|'age_band', 'country', 'verified', NULL, NULL, NULL, NULL, 5" \
    "admin||'reason', 'return_year', NULL, 'BD-13', 'f', NULL, NULL, 5" \
    "admin||'age_band', 'return_year', 'verified', 'BD-13', NULL, NULL, NULL, 5" \
    "analyst||'education', 'need', NULL, 'BD-13', 'm', NULL, NULL, 5" \
    "admin||'week', 'channel', 'pending', 'BD-13', NULL, '2026-03-01', '2026-05-31', 5" \
    "officer|BD-15,BD-26|'skill', 'education', NULL, NULL, NULL, '2026-02-01', '2026-06-30', 5"
# months_alone ROLE DISTRICTS ARGS: the rows before and after deleting (in
# a rolled-back transaction) the returnees of April to June, the whole
# months of the periods below
months_alone() {
    printf '%s\n' "BEGIN;" "$(view "$1" "$2" "$3")" \
        "SET LOCAL session_replication_role = replica;" \
        "DELETE FROM returnees WHERE created_at >= '2026-04-01 00:00+06' AND created_at < '2026-07-01 00:00+06';" \
        "SET LOCAL ROLE $([ "$1" = admin ] && echo remigate_console_admin || echo remigate_console);" \
        "$(view "$1" "$2" "$3")" "ROLLBACK;" | psql -X -q -v ON_ERROR_STOP=1 -At "$PG_DSN" 2>&1
}
same_rows months_alone "030: a pair per district over a cut period reads its whole months from the summary (April-June's returnees deleted, same rows)" \
    "030: a pair per district over a cut period, whole months from the summary" \
    "officer|BD-15,BD-26|'need', 'education', NULL, NULL, NULL, '2026-03-10', '2026-07-20', 5" \
    "officer|BD-15,BD-26|'skill', 'reason', 'verified', NULL, NULL, '2026-03-25', '2026-07-05', 5" \
    "admin||'age_band', 'return_year', NULL, 'BD-13', NULL, '2026-03-10', '2026-07-20', 5" \
    "admin||'country', 'channel', NULL, 'BD-13', 'm', '2026-03-03', '2026-07-28', 5"
r=$(summary_alone officer BD-15,BD-26 "'need', 'education', NULL, NULL, NULL, '2026-03-10', '2026-07-20', 5")
set -- $r
is "  while its cut days come from returnees (with every returnee deleted its counts change)" "2 t" "$# $([ "$1" != "$2" ] && echo t)"

# 031: every pair by day for the whole country too, so the whole
# country's pairs over a period cutting months read no returnees
is "031: all 45 pairs by day for the whole country (not per district but destination x skill)" "45|1" \
    "$(sql "SELECT count(*) || '|' || count(*) FILTER (WHERE dist) FROM stats_kinds WHERE da <> '' AND db <> '' AND daily AND NOT flat AND nation")"
same_rows summary_alone "031: the whole country's pair over a cut period from the summary alone (returnees deleted, same rows)" \
    "031: the whole country's pair over a cut period from the summary alone" \
    "admin||'age_band', 'skill', NULL, NULL, NULL, '2026-03-10', '2026-07-20', 5" \
    "admin||'age_band', 'week', 'verified', NULL, NULL, '2026-03-10', '2026-07-20', 5" \
    "admin||'education', 'skill', NULL, NULL, 'f', '2026-02-03', '2026-06-27', 5" \
    "admin||'education', 'need', NULL, NULL, NULL, '2026-03-10', '2026-07-20', 5" \
    "analyst||'reason', 'return_year', NULL, NULL, NULL, '2026-01-15', '2026-08-10', 5" \
    "admin||'channel', 'division', 'pending', NULL, 'm', '2026-03-25', '2026-07-05', 5" \
    "admin||'need', 'skill', NULL, NULL, NULL, '2026-06-05', '2026-06-20', 5"
# the whole country's district dimension over a cut period, with a
# district whose only rows wait in stats_delta (not folded; one in the
# period, one in the days it leaves out of July): the same rows as 011's
# scan
is "031: a district whose rows are all in stats_delta, over a cut period: district x age band, x skill, x return year as 011's" "0|1|t|t|t" \
    "$(printf '%s\n' "BEGIN;" "SELECT setval('stats_delta_seq', 1) \\g /dev/null" \
        "INSERT INTO returnees (msisdn, district, division, sex, birth_year, skills, return_year, status, ref, created_at) VALUES ('8801800000001', 'BD-44', 'F', 'f', 1990, '{cook}', 2024, 'verified', 'D44', '2026-03-12 10:00+06'), ('8801800000002', 'BD-44', 'F', 'm', 1980, '{driver}', 2023, 'verified', 'D44b', '2026-07-25 10:00+06');" \
        "SELECT (SELECT count(*) FROM stats_counts WHERE district = 'BD-44') || '|' || (SELECT count(*) > 0 FROM stats_delta WHERE district = 'BD-44')::int;" \
        "SELECT set_config('remigate.role', 'admin', true), set_config('remigate.districts', '', true) \\g /dev/null" \
        "SELECT bool_and(test_stats_call('remigate_stats', 'district', d, NULL, NULL, NULL, '2026-03-10', '2026-07-20') = test_stats_call('test_stats_011', 'district', d, NULL, NULL, NULL, '2026-03-10', '2026-07-20') AND test_stats_call('remigate_stats', 'district', d, NULL, NULL, NULL, '2026-03-10', '2026-07-20') LIKE '%BD-44%') FROM unnest(ARRAY['age_band']) d;" \
        "SELECT bool_and(test_stats_call('remigate_stats', 'district', d, 'verified', NULL, NULL, '2026-03-10', '2026-07-20') = test_stats_call('test_stats_011', 'district', d, 'verified', NULL, NULL, '2026-03-10', '2026-07-20') AND test_stats_call('remigate_stats', 'district', d, 'verified', NULL, NULL, '2026-03-10', '2026-07-20') LIKE '%BD-44%') FROM unnest(ARRAY['skill']) d;" \
        "SELECT bool_and(test_stats_call('remigate_stats', d, 'district', NULL, NULL, NULL, '2026-03-10', '2026-07-20') = test_stats_call('test_stats_011', d, 'district', NULL, NULL, NULL, '2026-03-10', '2026-07-20') AND test_stats_call('remigate_stats', d, 'district', NULL, NULL, NULL, '2026-03-10', '2026-07-20') LIKE '%BD-44%') FROM unnest(ARRAY['return_year']) d;" \
        "ROLLBACK;" | psql -X -q -v ON_ERROR_STOP=1 -At "$PG_DSN" 2>&1 | paste -sd'|')"

# --- many rows change status in one statement ---------------------------
sql "UPDATE returnees SET status = 'verified', info_reason = NULL, reject_reason = NULL
     WHERE id % 7 = 0 AND status <> 'verified'" >/dev/null
is "  the changes wait in stats_delta (read with stats_counts)" t "$(sql "SELECT count(*) > 0 FROM stats_delta")"
diff_all "after a status change of many rows" '{admin,officer}' "$F_FEW"
days_all "after a status change of many rows" '{admin,officer,analyst}' "$F_FEW"
is "a fold moves stats_delta into stats_counts" "t 0" "$(sql "SELECT remigate_stats_fold() > 0" | tr -d '\n') $(sql "SELECT count(*) FROM stats_delta")"
diff_all "  and the tables are the same after it" '{admin}' "$F_FEW"
days_all "  and the tables are the same after it" '{admin}' "$F_FEW"

# --- decisions and a correction through the console's role --------------
ver() { sql "SELECT version FROM returnees WHERE ref = '$1'"; }
pend=$(sql "SELECT ref FROM returnees WHERE status = 'pending' AND district = 'BD-15' ORDER BY id LIMIT 3" | paste -sd' ')
set -- $pend
is "officer verifies one of BD-15" ok "$(as officer BD-15,BD-26 7 "SELECT outcome FROM remigate_decide('$1', $(ver "$1"), 'verify', NULL, NULL, NULL, NULL, 0, NULL, 0, 0);")"
is "officer rejects another" ok "$(as officer BD-15,BD-26 7 "SELECT outcome FROM remigate_decide('$2', $(ver "$2"), 'reject', 'duplicate', NULL, NULL, NULL, 0, NULL, 0, 60);")"
is "admin corrects a third: district, skills, birth year, sex" ok \
    "$(as admin '' 1 "SELECT outcome FROM remigate_correct('$3', $(ver "$3"), '{\"district\":\"BD-26\",\"skills\":[\"welding\",\"cook\"],\"birth_year\":1970,\"sex\":\"f\"}', NULL, NULL, 0, NULL, 0, 60);")"
diff_all "after decisions and a correction by the console" '{admin,officer}' "$F_FEW"
days_all "after decisions and a correction by the console" '{admin,officer,analyst}' "$F_FEW"
is "undo of the rejection" ok "$(as officer BD-15,BD-26 7 "SELECT outcome FROM remigate_undo('$2');")"
is "undo of the correction (the old district, skills, ... back)" ok "$(as admin '' 1 "SELECT outcome FROM remigate_undo('$3');")"
is "  the record is in BD-15 again" BD-15 "$(sql "SELECT district FROM returnees WHERE ref = '$3'")"
diff_all "after the undos" '{admin,officer}' "$F_FEW"
days_all "after the undos" '{admin,officer,analyst}' "$F_FEW"
rebuilt "after decisions, a correction and undos"

# --- a district change, a move across months, deletes, inserts, upserts -
sql "UPDATE returnees SET district = 'BD-26', division = 'D' WHERE id IN (SELECT id FROM returnees WHERE district = 'BD-13' ORDER BY id LIMIT 9);
     UPDATE returnees SET created_at = created_at + interval '20 days' WHERE id % 11 = 0;
     UPDATE returnees SET skills = skills || 'driver'::text WHERE id % 13 = 0;
     DELETE FROM returnees WHERE id IN (SELECT id FROM returnees r WHERE NOT EXISTS (SELECT 1 FROM decisions d WHERE d.returnee_id = r.id) AND id % 17 = 0);
     INSERT INTO returnees (msisdn, district, division, sex, birth_year, country, skills, status, channel, ref, created_at)
     VALUES ('8801900000001', 'BD-15', 'C', 'f', 1999, 'JO', '{tailoring}', 'pending', 'sms', 'N1', '2026-06-30 23:59:59+06');
     INSERT INTO returnees (msisdn, district, sex, skills, status, ref, created_at)
     SELECT '88019' || lpad(i::text, 8, '0'), 'BD-02', 'm', '{cook}', 'pending', 'N' || i, '2026-07-15 12:00+06'
     FROM generate_series(2, 8) i" >/dev/null
# the store's profile upsert: a number registering again (UPDATE through
# ON CONFLICT) and a new one (INSERT) in one statement
sql "INSERT INTO returnees (msisdn, district, division, sex, birth_year, country, skills, need, status, ref)
     SELECT msisdn, 'BD-02', 'A', 'x', 1985, 'LB', '{driver}', 'loan', 'pending', 'U' || id
     FROM returnees WHERE id % 19 = 0
     UNION ALL SELECT '8801900000099', 'BD-13', 'C', 'm', 1980, 'SA', '{}', NULL, 'pending', 'U99'
     ON CONFLICT (msisdn) DO UPDATE SET district = EXCLUDED.district, division = EXCLUDED.division,
         sex = EXCLUDED.sex, birth_year = EXCLUDED.birth_year, country = EXCLUDED.country,
         skills = EXCLUDED.skills, need = EXCLUDED.need" >/dev/null
is "deletes happened" t "$(sql "SELECT count(*) < 640 + 8 FROM returnees")"
diff_all "after district changes, moves, skills, deletes, inserts and upserts" '{admin,officer}' "$F_MID"
days_all "after district changes, moves, skills, deletes, inserts and upserts" '{admin,officer,analyst}' "$F_MID"
rebuilt "after district changes, moves, skills, deletes, inserts and upserts"

# --- a statement that changes nothing writes nothing ---------------------
before=$(sql "SELECT count(*), sum(n), sum(p), sum(xmin::text::bigint), (SELECT count(*) FROM stats_delta) FROM stats_counts")
sql "UPDATE returnees SET status = status, skills = skills WHERE id % 3 = 0" >/dev/null
is "an UPDATE that changes no counted field writes nothing to the summary" "$before" \
    "$(sql "SELECT count(*), sum(n), sum(p), sum(xmin::text::bigint), (SELECT count(*) FROM stats_delta) FROM stats_counts")"

# --- writers in parallel: no deadlock, the same summary -----------------
xid=$(sql "SELECT pg_current_xact_id()::text::bigint")
for w in 1 2 3; do
    {
        for i in $(seq 1 40); do
            echo "INSERT INTO returnees (msisdn, district, sex, skills, status, ref, country) VALUES ('8802$w$(printf %07d "$i")', 'BD-13', 'm', '{cook,driver}', 'pending', 'P$w-$i', 'SA');"
            echo "UPDATE returnees SET status = CASE status WHEN 'pending' THEN 'verified' ELSE 'pending' END, info_reason = NULL, reject_reason = NULL WHERE id IN (SELECT id FROM returnees WHERE district = 'BD-13' AND status IN ('pending', 'verified') ORDER BY random() LIMIT 3);"
        done
    } | psql -X -q -v ON_ERROR_STOP=1 "$PG_DSN" >"$tmp/w$w.out" 2>&1 &
    eval "wp$w=$!"
done
errs=0
for w in 1 2 3; do
    eval "wait \$wp$w" || errs=$((errs + 1))
done
is "3 sessions x 40 inserts and 40 status changes in parallel: no error (no deadlock)" "0 " "$errs $(cat "$tmp"/w?.out | grep -i 'error\|deadlock' | head -2)"
is "  they folded on the way (every 64th statement): stats_counts rows written since" t \
    "$(sql "SELECT count(*) > 0 FROM stats_counts WHERE xmin::text::bigint > $xid")"
rebuilt "after the parallel writers"
diff_all "after the parallel writers" '{admin}' '[{}]'
days_all "after the parallel writers" '{admin}' '[{}]'

# --- who may read it -----------------------------------------------------
is "the console's role cannot read stats_counts" t \
    "$(as officer BD-15 7 "SELECT count(*) FROM stats_counts;" | grep -q 'permission denied' && echo t)"
is "  nor stats_delta" t \
    "$(as officer BD-15 7 "SELECT count(*) FROM stats_delta;" | grep -q 'permission denied' && echo t)"
is "  nor stats_kinds" t \
    "$(as admin '' 1 "SELECT count(*) FROM stats_kinds;" | grep -q 'permission denied' && echo t)"
is "  row-level security on stats_counts all the same" t \
    "$(sql "SELECT relrowsecurity FROM pg_class WHERE relname = 'stats_counts'")"
is "PUBLIC may not call remigate_stats_core, _rebuild, _fold" "false false false" \
    "$(sql "SELECT has_function_privilege('public', 'remigate_stats_core(text,text,text,text,text,date,date,text[])', 'EXECUTE') || ' ' || has_function_privilege('public', 'remigate_stats_rebuild()', 'EXECUTE') || ' ' || has_function_privilege('public', 'remigate_stats_fold()', 'EXECUTE')")"
is "the console's role may not rebuild" t \
    "$(as admin '' 1 "SELECT remigate_stats_rebuild();" | grep -q 'permission denied' && echo t)"

finish
