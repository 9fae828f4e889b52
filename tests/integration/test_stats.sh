#!/usr/bin/env bash
# tests/integration/test_stats.sh -- GET /api/stats through the real
# daemon and PostgreSQL: every dimension one-way and the seed's two-way
# tables against counts the test computes itself in SQL (its own age band
# and week formulas), each filter, the scope of an officer, suppression
# for the analyst and on request (every count 1..k-1 shown as "<5", the
# shown counts true, every hidden cell's line with a second hidden entry),
# the refusal of a filter matching 1..k-1 people, stats.k, the role x
# route matrix, bad parameters (400, one log line), and that the console's
# database role cannot read returnees as an analyst nor call
# remigate_stats without a role.
#
# Starts its own Redis and PostgreSQL.  Prints "stats: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=stats
. tests/lib/itest.sh
. tests/lib/servers.sh
bin=${REMIGATE_BIN:-build/remigate}
pids=
itest_servers redis pg

itest_config "$PG_DSN"

pw='Padma-River-Dawn-7'
printf '%s\n' "$pw" | officer add --username boss --role admin &&
    printf '%s\n' "$pw" | officer add --username rahim --role officer --district BD-15 --district BD-26 &&
    printf '%s\n' "$pw" | officer add --username nasrin --role analyst ||
    { bad "officers added" "$(cat "$tmp/out")"; finish; }

# --- 700 returnees, skewed: most in BD-13 (Dhaka), some in BD-15 and
# BD-02, three in BD-26; a few with missing answers ----------------------
sql "INSERT INTO returnees (msisdn, district, division, sex, birth_year, country,
        return_year, reason, education, skills, need, lang, channel, status,
        info_reason, reject_reason, ref, created_at)
     SELECT '88017' || lpad(i::text, 8, '0'),
            CASE WHEN i <= 3 THEN 'BD-26' WHEN i % 10 < 6 THEN 'BD-13'
                 WHEN i % 10 < 9 THEN 'BD-15' ELSE 'BD-02' END,
            CASE WHEN i <= 3 THEN 'C' WHEN i % 10 < 6 THEN 'C'
                 WHEN i % 10 < 9 THEN 'C' ELSE 'A' END,
            CASE WHEN i % 97 = 0 THEN NULL WHEN i % 3 = 0 THEN 'f'
                 WHEN i % 151 = 0 THEN 'x' ELSE 'm' END,
            CASE WHEN i % 89 = 0 THEN NULL
                 ELSE extract(year FROM now())::int - 17 - (i * 7) % 48 END,
            (ARRAY['SA','SA','SA','MY','AE','QA','OM','KW','SG','IT'])[1 + (i * 3) % 10],
            2015 + (i * 5) % 11,
            (ARRAY['contract_end','unpaid','illness','covid','deported','family'])[1 + (i * 11) % 6],
            (ARRAY['none','primary','ssc','hsc','degree'])[1 + (i * 13) % 5],
            CASE WHEN i % 7 = 0 THEN '{}'::text[]
                 WHEN i % 5 = 0 THEN ARRAY['driver','cook','construction']
                 WHEN i % 2 = 0 THEN ARRAY['construction'] ELSE ARRAY['cook','cleaning'] END,
            (ARRAY['job_home','abroad_again','training','loan','health','legal'])[1 + (i * 17) % 6],
            'bn', CASE WHEN i % 4 = 0 THEN 'sms' ELSE 'ussd' END,
            CASE WHEN i % 5 < 2 THEN 'verified' WHEN i % 5 = 2 THEN 'pending'
                 WHEN i % 5 = 3 THEN 'needs_info' ELSE 'rejected' END,
            CASE WHEN i % 5 = 3 THEN 'unclear' END,
            CASE WHEN i % 5 = 4 THEN 'duplicate' END,
            'T' || lpad(i::text, 9, '0'),
            timestamptz '2026-09-01 00:00+06' + (i * 2.3) * interval '1 hour'
     FROM generate_series(1, 700) i" >/dev/null ||
    { bad "returnees written"; finish; }
is "700 returnees in the database" 700 "$(sql 'SELECT count(*) FROM returnees')"

rm -f "$tmp/port"
"$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
    --redis-port "$REDIS_PORT" --set kannel.secret=stats-test-secret \
    --set console.admin_totp=optional 2>>"$tmp/log" &
pids="$pids $!"
wait_until 10 test -s "$tmp/port" || { bad "daemon started"; finish; }
base=http://127.0.0.1:$(cat "$tmp/port")
# a function, so each try asks /healthz again
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ]; }
wait_until 10 healthy || { bad "daemon healthy"; finish; }
ok "daemon started"

api() {
    local args=(-s -o "$tmp/body" -w '%{http_code}' --max-time 20 -X "$1")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data "$3")
    [ -n "${4:-}" ] && args+=(-b "$tmp/jar-$4" -c "$tmp/jar-$4" -H "X-CSRF-Token: ${tok[$4]:-}")
    curl "${args[@]}" "$base$2"
}
declare -A tok
for u in boss rahim nasrin; do
    st=$(api POST /api/login "{\"username\":\"$u\",\"password\":\"$pw\"}" "$u")
    tok[$u]=$(jq -r '.csrf // empty' "$tmp/body")
    check "login $u" "[ $st = 200 ] && [ -n '${tok[$u]}' ]"
done
j() { jq -r "$1" "$tmp/body"; }

# --- roles ---------------------------------------------------------------
is "no session: 401" 401 "$(api GET '/api/stats?dims=sex')"
is "POST: 405" 405 "$(api POST '/api/stats?dims=sex' '{}' boss)"
for u in boss rahim nasrin; do
    is "$u may ask" 200 "$(api GET '/api/stats?dims=sex' '' "$u")"
done

# The test's own counts.  Expressions over returnees r; "unknown" for a
# missing value; skill unnested ('none' without any).
age="(SELECT CASE WHEN a IS NULL THEN 'unknown' WHEN a < 18 THEN '<18'
        WHEN a BETWEEN 18 AND 24 THEN '18-24' WHEN a >= 60 THEN '60+'
        ELSE (SELECT lo || '-' || (lo + 4) FROM generate_series(25, 55, 5) lo
              WHERE a BETWEEN lo AND lo + 4) END
      FROM (SELECT date_part('year', now())::int - r.birth_year AS a) y)"
week="(extract(isoyear FROM r.created_at AT TIME ZONE 'Asia/Dhaka')::text || '-W' ||
       lpad(extract(week FROM r.created_at AT TIME ZONE 'Asia/Dhaka')::text, 2, '0'))"
expr() {
    case $1 in
    age_band) echo "$age" ;;
    week) echo "$week" ;;
    skill) echo "coalesce(s.skill, 'none')" ;;
    return_year) echo "coalesce(r.return_year::text, 'unknown')" ;;
    *) echo "coalesce(r.$1, 'unknown')" ;;
    esac
}
# want DIM1 [DIM2] [WHERE]: "v1|v2=n" lines, sorted
want() {
    local e1 e2 from="returnees r"
    e1=$(expr "$1")
    e2=${2:+$(expr "$2")}
    case " $1 ${2:-} " in *" skill "*) from="returnees r LEFT JOIN LATERAL unnest(r.skills) s(skill) ON true" ;; esac
    if [ -n "${2:-}" ]; then
        sql "SELECT $e1 || '|' || $e2 || '=' || count(*) FROM $from WHERE ${3:-true} GROUP BY $e1, $e2" | LC_ALL=C sort
    else
        sql "SELECT $e1 || '=' || count(*) FROM $from WHERE ${3:-true} GROUP BY $e1" | LC_ALL=C sort
    fi
}
got() { # DIM1 [DIM2]: the same from the reply
    if [ -n "${2:-}" ]; then
        jq -r ".cells[] | \"\(.$1)|\(.$2)=\(.n)\"" "$tmp/body" | LC_ALL=C sort
    else
        jq -r ".cells[] | \"\(.$1)=\(.n)\"" "$tmp/body" | LC_ALL=C sort
    fi
}

# --- every dimension, one-way, as the admin (true counts) -----------------
for d in district division sex age_band education country skill reason need return_year channel status week; do
    st=$(api GET "/api/stats?dims=$d" "" boss)
    w=$(want "$d")
    g=$(got "$d")
    if [ "$st" = 200 ] && [ "$w" = "$g" ] && [ -n "$w" ]; then ok "one-way $d: $(echo "$w" | wc -l) values as SQL counts them"
    else bad "one-way $d" "$(diff <(echo "$w") <(echo "$g") | head -6)"; fi
done
api GET "/api/stats?dims=sex" "" boss >/dev/null
is "one-way total is everyone" 700 "$(j .total)"
api GET "/api/stats?dims=skill" "" boss >/dev/null
is "skill: a person counts once under each skill; the total counts mentions" \
    "$(sql "SELECT count(*) FROM returnees r LEFT JOIN LATERAL unnest(r.skills) s ON true")" "$(j .total)"

# --- the seed's two-way tables, with margins ----------------------------
for pair in sex,age_band country,skill education,sex district,need; do
    d1=${pair%,*} d2=${pair#*,}
    st=$(api GET "/api/stats?dims=$pair" "" boss)
    w=$(want "$d1" "$d2")
    g=$(got "$d1" "$d2")
    if [ "$st" = 200 ] && [ "$w" = "$g" ]; then ok "two-way $pair: $(echo "$w" | wc -l) cells as SQL counts them"
    else bad "two-way $pair" "$(diff <(echo "$w") <(echo "$g") | head -6)"; fi
    rt=$(jq -r ".totals[] | select(.$d2 == null) | \"\(.$d1)=\(.n)\"" "$tmp/body" | LC_ALL=C sort)
    is "  row totals of $pair (sums of its cells)" \
        "$(echo "$w" | awk -F'[|=]' '{ s[$1] += $3 } END { for (k in s) print k "=" s[k] }' | LC_ALL=C sort)" "$rt"
done

# --- filters --------------------------------------------------------------
for f in "status=verified|r.status = 'verified'" "district=BD-15|r.district = 'BD-15'" \
    "sex=f|r.sex = 'f'" "from=2026-09-10&to=2026-09-30|(r.created_at AT TIME ZONE 'Asia/Dhaka')::date BETWEEN '2026-09-10' AND '2026-09-30'" \
    "status=needs_info&district=BD-13&sex=m|r.status = 'needs_info' AND r.district = 'BD-13' AND r.sex = 'm'"; do
    q=${f%%|*} cond=${f#*|}
    st=$(api GET "/api/stats?dims=education,sex&$q" "" boss)
    w=$(want education sex "$cond")
    g=$(got education sex)
    if [ "$st" = 200 ] && [ "$w" = "$g" ] && [ -n "$w" ]; then ok "filter $q"
    else bad "filter $q" "$(diff <(echo "$w") <(echo "$g") | head -6)"; fi
done

# --- an officer: their districts only, true counts ----------------------
api GET "/api/stats?dims=district,sex" "" rahim >/dev/null
is "officer rahim: only BD-15 and BD-26, unsuppressed" "$(want district sex "r.district IN ('BD-15', 'BD-26')")" "$(got district sex)"
is "  not suppressed on screen" false "$(j .suppressed)"
api GET "/api/stats?dims=sex&district=BD-13" "" rahim >/dev/null
is "  another district as a filter: nothing" 0 "$(j .total)"

# --- the analyst: suppressed ---------------------------------------------
# Every shown count true, every count 1..4 hidden as "<5", each hidden
# cell's row and column hold another hidden entry (cell or total).
supp_check() { # DIM1 DIM2 who [query]
    local d1=$1 d2=$2 who=$3 extra=${4:-} errs=0 truth
    st=$(api GET "/api/stats?dims=$d1,$d2$extra" "" "$who")
    [ "$st" = 200 ] || { bad "suppressed $d1,$d2 as $who: $st"; return; }
    truth=$(want "$d1" "$d2")
    while IFS='=' read -r key n; do
        t=$(echo "$truth" | grep -F -x -- "$(echo "$truth" | grep -F -- "$key=" | head -1)" | cut -d= -f2)
        case $n in
        '<5') [ "$t" -ge 1 ] && [ "$t" -le 4 ] || { errs=$((errs + 1)); echo "# $key: <5 but $t"; } ;;
        x) [ "$t" -ge 5 ] || { errs=$((errs + 1)); echo "# $key: x but $t"; } ;;
        *) [ "$n" = "$t" ] || { errs=$((errs + 1)); echo "# $key: $n but $t"; } ;;
        esac
    done < <(got "$d1" "$d2")
    # every true 1..4 cell is "<5"
    while IFS='=' read -r key t; do
        if [ "$t" -lt 5 ]; then
            g=$(got "$d1" "$d2" | grep -F -- "$key=" | cut -d= -f2)
            [ "$g" = '<5' ] || { errs=$((errs + 1)); echo "# $key ($t) shown as $g"; }
        fi
    done <<<"$truth"
    # each line with a hidden cell has another hidden entry
    lines=$(jq -r --arg a "$d1" --arg b "$d2" '
        def hid: (.n | type) == "string";
        [ (.cells | group_by(.[$a])[] | {k: .[0][$a], h: (map(select(hid)) | length)}),
          (.cells | group_by(.[$b])[] | {k: .[0][$b], h: (map(select(hid)) | length), col: true}) ] as $l
        | .totals as $t
        | $l[] | select(.h == 1) | . as $x
        | select(if $x.col then ([$t[] | select(.[$b] == $x.k and .[$a] == null)] | .[0]) else ([$t[] | select(.[$a] == $x.k and .[$b] == null)] | .[0]) end | (.n | type) != "string")
        | $x.k' "$tmp/body")
    [ -z "$lines" ] || { errs=$((errs + 1)); echo "# a line with one hidden entry and a shown total: $lines"; }
    hidden=$(jq '[.cells[], .totals[] | select((.n | type) == "string")] | length' "$tmp/body")
    if [ $errs = 0 ]; then ok "suppressed $d1,$d2 as $who$extra ($hidden hidden): shown counts true, 1..4 as <5, no line with one hidden entry"
    else bad "suppressed $d1,$d2 as $who$extra: $errs problems"; fi
}
for pair in "sex age_band" "country skill" "education sex" "district need"; do
    supp_check $pair nasrin
done
api GET "/api/stats?dims=district,need" "" nasrin >/dev/null
is "the analyst's table says k and suppressed" "5 true" "$(j '"\(.k) \(.suppressed)"')"
supp_check district need rahim "&suppress=1"
st=$(api GET "/api/stats?dims=sex&district=BD-26" "" nasrin)
is "a filter matching 3 people: 422 too_few for the analyst" "422 too_few" "$st $(j .error)"
st=$(api GET "/api/stats?dims=sex&district=BD-26&suppress=1" "" rahim)
is "  and for the officer's download" "422 too_few" "$st $(j .error)"
st=$(api GET "/api/stats?dims=sex&district=BD-26" "" rahim)
is "  the officer on screen sees them" "200 3" "$st $(j .total)"

# --- the aggregate CSV ----------------------------------------------------
# A need no list knows, that a spreadsheet would run as a formula, for 6
# people (so it is shown), and a golden file of district x need.
sql "UPDATE returnees SET need = '=HYPERLINK(\"http://x\",\"a, b\")' WHERE ref IN ('T000000600', 'T000000610', 'T000000620', 'T000000630', 'T000000640', 'T000000650')" >/dev/null
csv() { # who query: the file into $tmp/csv, the status out
    curl -s -o "$tmp/csv" -D "$tmp/hdr" -w '%{http_code}' --max-time 20 -b "$tmp/jar-$1" "$base/api/export.csv?$2"
}
before=$(sql "SELECT count(*) FROM audit_log WHERE action = 'export'")
st=$(csv nasrin "kind=aggregate&dims=district,need")
is "analyst: aggregate CSV" 200 "$st"
check "  text/csv, an attachment named by its cut" "grep -qi '^content-type: text/csv; charset=utf-8' '$tmp/hdr' && grep -qi 'filename=\"remigate_aggregate_district-need_all.csv\"' '$tmp/hdr'"
is "  UTF-8 BOM first" efbbbf "$(head -c3 "$tmp/csv" | od -An -tx1 | tr -d ' \n')"
is "  every line ends CRLF" "$(wc -l <"$tmp/csv")" "$(grep -c $'\r$' "$tmp/csv")"
# UPDATE_GOLDEN=1 rewrites it (read the diff before committing it)
[ -n "${UPDATE_GOLDEN:-}" ] && cp "$tmp/csv" tests/integration/golden/stats_district_need.csv
if diff <(cat tests/integration/golden/stats_district_need.csv) "$tmp/csv" >"$tmp/diff"; then ok "  the golden file (labels in Bangla and English, <5 and x, totals, a neutralised formula quoted)"
else bad "  the golden file" "$(head -12 "$tmp/diff")"; fi
sha=$(sha256sum "$tmp/csv" | cut -d' ' -f1)
is "  audited once: who, filter, rows, k and the file's SHA-256" \
    "$((before + 1)) nasrin aggregate [\"district\", \"need\"] $(($(wc -l <"$tmp/csv") - 1)) 5 $sha" \
    "$(sql "SELECT count(*) FROM audit_log WHERE action = 'export'") $(sql "SELECT actor || ' ' || target || ' ' || (detail->'dims')::text || ' ' || (detail->>'rows') || ' ' || (detail->>'k') || ' ' || (detail->>'sha256') FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1")"
st=$(csv rahim "kind=aggregate&dims=district,sex")
is "officer's download: suppressed, their districts only" "200 BD-15,BD-26,total" \
    "$st $(tail -n +2 "$tmp/csv" | cut -d, -f1 | sort -u | tr -d '\r' | paste -sd,)"
check "  with its small counts hidden" "grep -q '<5' '$tmp/csv'"
is "records CSV not offered: 400" 400 "$(csv boss "kind=records&dims=sex")"
is "no session: 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$base/api/export.csv?kind=aggregate&dims=sex")"

# --- the SDMX-CSV indicator: verified returnees by district x skill -------
before=$(sql "SELECT count(*) FROM audit_log WHERE action = 'export'")
st=$(curl -s -o "$tmp/csv" -D "$tmp/hdr" -w '%{http_code}' --max-time 20 -b "$tmp/jar-nasrin" "$base/api/indicators/skills_supply.csv")
is "SDMX-CSV skills supply: 200, its header" "200 STRUCTURE,STRUCTURE_ID,ACTION,REF_AREA,SKILL,OBS_VALUE,OBS_STATUS" "$st $(head -1 "$tmp/csv" | tr -d '\r')"
# every shown observation is the true count of verified returnees
want_sdmx=$(want district skill "r.status = 'verified'" | sed 's/|/,/; s/=/,/')
bad_obs=$(tail -n +2 "$tmp/csv" | tr -d '\r' | awk -F, '$4 != "BD" && $5 != "_T" && $7 == "A" { print $4 "," $5 "," $6 }' | LC_ALL=C sort |
    LC_ALL=C comm -23 - <(echo "$want_sdmx" | LC_ALL=C sort))
is "  shown observations (status A) are the true counts" "" "$bad_obs"
nobs=$(tail -n +2 "$tmp/csv" | awk -F, '$4 != "BD" && $5 != "_T"' | wc -l)
is "  one observation per non-zero cell" "$(echo "$want_sdmx" | grep -c .)" "$nobs"
small=$(echo "$want_sdmx" | awk -F, '$3 < 5' | cut -d, -f1,2 | LC_ALL=C sort)
conf=$(tail -n +2 "$tmp/csv" | tr -d '\r' | awk -F, '$7 == "C" && $6 == "" { print $4 "," $5 }' | LC_ALL=C sort)
is "  every count 1..4 is confidential (C, no value)" "" "$(LC_ALL=C comm -23 <(echo "$small") <(echo "$conf") | grep . || true)"
check "  the country total (BD, _T) is there" "grep -q '^dataflow,BD_REMIGATE:DF_SKILLS_SUPPLY(1.0),I,BD,_T,' '$tmp/csv'"
is "  audited as sdmx_skills_supply" "$((before + 1)) sdmx_skills_supply" \
    "$(sql "SELECT count(*) FROM audit_log WHERE action = 'export'") $(sql "SELECT detail->>'kind' FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1")"
is "  its cut is fixed: dims is 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -b "$tmp/jar-nasrin" "$base/api/indicators/skills_supply.csv?dims=sex")"

# --- days to a decision ---------------------------------------------------
sql "UPDATE returnees SET status_at = created_at + ((id * 7) % 23) * interval '1 day' + interval '6 hours'
     WHERE status IN ('verified', 'rejected')" >/dev/null
median() { # district: the median of its decided records' days, by awk
    sql "SELECT extract(epoch FROM status_at - created_at) / 86400 FROM returnees
         WHERE district = '$1' AND status IN ('verified', 'rejected')" | sort -g |
        awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", int(m * 10 + 0.5) / 10 }'
}
decided() { sql "SELECT count(*) FROM returnees WHERE district = '$1' AND status IN ('verified', 'rejected')"; }
st=$(api GET "/api/stats/decision-days" "" boss)
is "decision days (admin): decided and median per district, as the test counts them" \
    "200 BD-02 $(decided BD-02) $(median BD-02) BD-13 $(decided BD-13) $(median BD-13) BD-15 $(decided BD-15) $(median BD-15) BD-26 $(decided BD-26) $(median BD-26)" \
    "$st $(jq -r '[.districts[] | "\(.district) \(.decided) \(.median_days * 10 | round / 10 | tostring | if test("\\.") then . else . + ".0" end)"] | join(" ")' "$tmp/body")"
api GET "/api/stats/decision-days" "" nasrin >/dev/null
is "  analyst: BD-26's $(decided BD-26) decisions hidden, no median" '"<5" null' "$(jq -c '.districts[] | select(.district == "BD-26") | [.decided, .median_days] | "\(.[0] | tojson) \(.[1])"' -r "$tmp/body")"
api GET "/api/stats/decision-days" "" rahim >/dev/null
is "  officer: their districts only" "BD-15 BD-26" "$(j '[.districts[].district] | join(" ")')"
is "  bad parameter: 400" 400 "$(api GET "/api/stats/decision-days?district=BD-99" "" boss)"
is "  no session: 401" 401 "$(api GET "/api/stats/decision-days")"

# --- bad parameters -------------------------------------------------------
nb=0
for q in "" "dims=" "dims=name" "dims=sex,sex" "dims=sex,age_band,need" "dims=sex&status=deleted" \
    "dims=sex&district=BD-99" "dims=sex&sex=q" "dims=sex&from=2026-13-01" "dims=sex&to=yesterday" \
    "dims=sex&suppress=2" "dims=sex&nid=1" "dims=sex&dims=need" "dims=sex%00"; do
    st=$(api GET "/api/stats?$q" "" boss)
    [ "$st" = 400 ] || { nb=$((nb + 1)); echo "# ?$q: $st"; }
done
is "bad parameters: 400 each" 0 $nb
check "the daemon still answers" "[ \"\$(api GET '/api/stats?dims=sex' '' boss)\" = 200 ]"

# --- the database side ----------------------------------------------------
as_console() { srv_psql -At -c "BEGIN; SET LOCAL ROLE remigate_console; $1; COMMIT;" 2>&1; }
is "remigate_console as an analyst reads no returnee rows" rows=0 \
    "$(as_console "SELECT set_config('remigate.role', 'analyst', true); SELECT 'rows=' || count(*) FROM returnees" | grep '^rows=')"
check "remigate_stats without a role is refused" \
    "as_console \"SELECT * FROM remigate_stats('sex', NULL, NULL, NULL, NULL, NULL, NULL, 5)\" | grep -q 'no console role'"
check "an analyst's k below 3 is refused" \
    "as_console \"SELECT set_config('remigate.role', 'analyst', true); SELECT * FROM remigate_stats('sex', NULL, NULL, NULL, NULL, NULL, NULL, 1)\" | grep -q 'k below 3'"
check "an unknown dimension is refused (no SQL from the caller)" \
    "as_console \"SELECT set_config('remigate.role', 'admin', true); SELECT * FROM remigate_stats('name', NULL, NULL, NULL, NULL, NULL, NULL, 5)\" | grep -q 'unknown dimension'"
is "PUBLIC may not call remigate_stats" f \
    "$(sql "SELECT has_function_privilege('public', 'remigate_stats(text,text,text,text,text,date,date,int)', 'EXECUTE')")"

# --- the daemon stops clean: no sanitizer report (SAN=1 builds), no crash -
for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
pids=
check "the daemon's log holds no sanitizer report" "! grep -q 'AddressSanitizer\|runtime error\|LeakSanitizer' '$tmp/log'"

finish
