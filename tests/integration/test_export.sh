#!/usr/bin/env bash
# tests/integration/test_export.sh -- GET /api/export.csv?kind=records and
# GET /api/export/dictionary.csv through the real daemon and PostgreSQL:
# a golden file (Bangla and English labels, RFC 4180 quoting, neutralised
# formulas, ISO 8601 +06:00, BOM, CRLF); the body streamed (chunked, more
# pages than one) with X-Total-Rows; every row the caller may see, once,
# and no other (an officer's file never holds another district: the SQL
# count of their districts, no other district code); never an NID,
# passport or phone number, except the phone number for an admin with a
# reason; the role x route matrix (admin, officer, analyst, no session)
# with its audit rows; each export's audit rows (started, then complete
# with the filter, rows and the SHA-256 of the bytes received); bad
# parameters (400, one log line); the data dictionary; the indicator
# destination x reason x year (SDMX-CSV and JSON) against the test's own
# SQL counts, and skills supply as JSON; stats.k audited when a start
# changes it.
#
# Starts its own Redis and PostgreSQL.  Prints "export: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ITEST_LABEL=export
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

# --- the golden rows: four in BD-26 with every kind of value -------------
sql "INSERT INTO returnees (msisdn, district, division, sex, birth_year, country,
        years_abroad, return_year, reason, education, skills, need, lang,
        channel, status, status_at, info_reason, reject_reason, reject_note,
        verified_by, verified_at, ref, created_at, nid_enc, nid_hash,
        passport_enc, passport_hash)
     VALUES
     ('8801911000001', 'BD-26', 'C', 'f', NULL, 'SA', 6, 2024, 'unpaid', 'ssc',
      ARRAY['cook','cleaning'], 'loan', 'bn', 'ussd', 'verified',
      '2026-10-02 09:30+06', NULL, NULL, NULL, 7, '2026-10-02 09:30+06',
      'G00000001', '2026-10-01 10:15+06', '\\x01', '\\x0101', NULL, NULL),
     ('8801911000002', 'BD-26', 'C', 'm', NULL, 'MY', NULL, NULL, NULL, NULL,
      '{}', NULL, 'en', 'sms', 'rejected', '2026-10-03 23:59:59+06', NULL,
      'duplicate', '=HYPERLINK(\"http://x\",\"click\")', NULL, NULL,
      'G00000002', '2026-10-01 23:30+00', NULL, NULL, '\\x02', '\\x0202'),
     ('8801911000003', 'BD-26', 'C', 'x', NULL, 'AE', 1, 2026, 'crisis', 'none',
      ARRAY['driver'], 'job_home', 'bn', 'ussd', 'needs_info',
      '2026-10-04 08:00+06', 'documents', NULL, NULL, NULL, NULL,
      'G00000003', '2026-10-02 06:00+06', NULL, NULL, NULL, NULL),
     ('8801911000004', 'BD-26', 'C', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      '{}', NULL, 'bn', 'ussd', 'rejected', '2026-10-05 12:00+06', NULL,
      'other', 'line one, \"quoted\"
+line two', NULL, NULL, 'G00000004', '2026-10-03 12:00+06', NULL, NULL,
      NULL, NULL)" >/dev/null || { bad "golden rows written"; finish; }
# --- 1,300 more, over three pages, most in BD-13, some in BD-15 ----------
sql "INSERT INTO returnees (msisdn, district, division, sex, birth_year, country,
        return_year, reason, education, skills, need, lang, channel, status,
        ref, created_at, nid_enc, nid_hash)
     SELECT '88017' || lpad(i::text, 8, '0'),
            CASE WHEN i % 10 < 7 THEN 'BD-13' ELSE 'BD-15' END, 'C',
            CASE WHEN i % 3 = 0 THEN 'f' ELSE 'm' END,
            extract(year FROM now())::int - 17 - (i * 7) % 48,
            (ARRAY['SA','MY','AE','QA','SA','SA','IT'])[1 + i % 7],
            CASE WHEN i % 53 = 0 THEN NULL ELSE 2022 + (i * 3) % 4 END,
            (ARRAY['contract_end','unpaid','sick','family','crisis'])[1 + (i * 7) % 5],
            'ssc', ARRAY['construction'], 'job_home', 'bn',
            'ussd', CASE WHEN i % 2 = 0 THEN 'verified' ELSE 'pending' END,
            'T' || lpad(i::text, 9, '0'),
            timestamptz '2026-09-01 00:00+06' + i * interval '1 hour',
            '\\x05', decode(lpad(to_hex(i), 8, '0'), 'hex')
     FROM generate_series(1, 1300) i" >/dev/null ||
    { bad "bulk rows written"; finish; }
is "1,304 returnees in the database" 1304 "$(sql 'SELECT count(*) FROM returnees')"

rm -f "$tmp/port"
"$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
    --redis-port "$REDIS_PORT" --set kannel.secret=export-test-secret \
    --set console.admin_totp=optional 2>>"$tmp/log" &
pids="$pids $!"
wait_until 10 test -s "$tmp/port" || { bad "daemon started"; finish; }
base=http://127.0.0.1:$(cat "$tmp/port")
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ]; }
wait_until 10 healthy || { bad "daemon healthy"; finish; }
ok "daemon started"

# api METHOD PATH [USER]: body to $tmp/body, headers to $tmp/head
api() {
    local args=(-s -o "$tmp/body" -D "$tmp/head" -w '%{http_code}' --max-time 30 -X "$1")
    [ -n "${3:-}" ] && args+=(-b "$tmp/jar-$3" -c "$tmp/jar-$3")
    curl "${args[@]}" "$base$2"
}
login() {
    curl -s -o "$tmp/body" -w '%{http_code}' -c "$tmp/jar-$1" -X POST \
        -H 'Content-Type: application/json' \
        --data "{\"username\":\"$1\",\"password\":\"$pw\"}" "$base/api/login"
}
for u in boss rahim nasrin; do is "login $u" 200 "$(login "$u")"; done
# the first field of each line of a CSV whose 4th field is empty (python's
# csv module: quoted commas and line breaks as a spreadsheet reads them)
dictcols() { python3 -c 'import csv, sys
for r in list(csv.reader(open(sys.argv[1], encoding="utf-8-sig", newline="")))[1:]:
    if r[3] == "": print(r[0])' "$1" | xargs; }
hdr() { tr -d '\r' <"$tmp/head" | awk -v k="$(echo "$1" | tr A-Z a-z)" -F': ' 'tolower($1) == k { print $2 }'; }
audits() { sql "SELECT count(*) FROM audit_log WHERE action = '$1'"; }
last_audit() { sql "SELECT $1 FROM audit_log WHERE action = 'export' AND target = 'records' ORDER BY id DESC LIMIT 1"; }
csvrows() { # data rows of a CSV body (quoted line breaks do not count)
    tail -c +4 "$1" | awk 'BEGIN { RS = "\r\n" } { n += gsub(/"/, "\"") } n % 2 == 0 { rows++ } END { print rows - 1 }'
}

# --- the golden file -----------------------------------------------------
is "admin, district BD-26: 200" 200 "$(api GET '/api/export.csv?kind=records&district=BD-26' boss)"
cp "$tmp/body" "$tmp/golden.csv"
[ -n "${UPDATE_GOLDEN:-}" ] && cp "$tmp/golden.csv" tests/integration/golden/export_records_bd26.csv
if cmp -s tests/integration/golden/export_records_bd26.csv "$tmp/golden.csv"; then
    ok "  the golden file, byte for byte (Bangla labels, quoting, a neutralised formula, +06:00 times, BOM, CRLF)"
else bad "  the golden file" "$(diff <(tr -d '\r' <tests/integration/golden/export_records_bd26.csv) <(tr -d '\r' <"$tmp/golden.csv") | head -8)"; fi
is "  starts with the UTF-8 BOM" "efbbbf" "$(head -c 3 "$tmp/body" | od -An -tx1 | tr -d ' \n')"
is "  every record ends in CRLF (5 of the 6 line feeds; the sixth is inside a quoted note)" \
    "5 6" "$(grep -c $'\r$' "$tmp/body") $(wc -l <"$tmp/body")"
check "  the formula in a note is neutralised ('=HYPERLINK...)" "grep -q \"'=HYPERLINK\" '$tmp/body'"
check "  a note starting with '+' after a line break stays inside its quotes" "grep -q '^+line two\"' '$tmp/body'"
is "  Content-Type" "text/csv; charset=utf-8" "$(hdr Content-Type)"
check "  a file name with scope, filter and time" "hdr Content-Disposition | grep -Eq 'filename=\"remigate_records_BD-26_all_[0-9]{8}T[0-9]{4}\\.csv\"'"
is "  X-Total-Rows" 4 "$(hdr X-Total-Rows)"
check "  no NID, passport or phone column" "! head -1 '$tmp/body' | grep -Eiq 'nid|passport|msisdn|phone'"
check "  no phone number in it" "! grep -q 8801911 '$tmp/body'"
is "  audited: started, then complete with the filter, 4 rows and the file's SHA-256" \
    "2 ok BD-26 4 4 $(sha256sum <"$tmp/body" | cut -d' ' -f1) complete" \
    "$(sql "SELECT count(*) FROM audit_log WHERE action = 'export' AND target = 'records'") $(last_audit "outcome || ' ' || (detail->'filter'->>'district') || ' ' || (detail->>'rows') || ' ' || (detail->>'total') || ' ' || (detail->>'sha256') || ' ' || (detail->>'state')")"
is "  the first row says started, before any byte left" "started" \
    "$(sql "SELECT detail->>'state' FROM audit_log WHERE action = 'export' ORDER BY id LIMIT 1")"

# --- everything, streamed ------------------------------------------------
is "admin, everything: 200" 200 "$(api GET '/api/export.csv?kind=records' boss)"
check "  streamed: chunked, no Content-Length" "hdr Transfer-Encoding | grep -q chunked && [ -z \"\$(hdr Content-Length)\" ]"
is "  X-Total-Rows is everyone" 1304 "$(hdr X-Total-Rows)"
is "  1,304 rows (three pages)" 1304 "$(csvrows "$tmp/body")"
is "  each reference once, the ones in the database" \
    "$(sql "SELECT ref FROM returnees ORDER BY ref" | md5sum)" \
    "$(tail -n +2 "$tmp/body" | grep -o '^[GT][0-9]*' | LC_ALL=C sort | md5sum)"
check "  no NID hash nor any number of the phones" "! grep -Eq '8801[0-9]{9}|\\\\x' '$tmp/body'"
n13=$(sql "SELECT count(*) FROM returnees WHERE district = 'BD-13' AND status = 'verified' AND sex = 'f'")
is "filters: BD-13, verified, women" "200 $n13 $n13" \
    "$(api GET '/api/export.csv?kind=records&district=BD-13&status=verified&sex=f' boss) $(hdr X-Total-Rows) $(csvrows "$tmp/body")"
check "  only such rows" "tail -n +2 '$tmp/body' | awk -F, '\$1 !~ /^[GT]/ { next } \$2 != \"verified\" || \$13 != \"BD-13\" || \$16 != \"f\" { bad = 1 } END { exit bad }'"
nd=$(sql "SELECT count(*) FROM returnees WHERE created_at >= '2026-09-10 00:00+06' AND created_at < '2026-09-13 00:00+06'")
is "dates: 2026-09-10..2026-09-12 (Dhaka days)" "$nd" \
    "$(api GET '/api/export.csv?kind=records&from=2026-09-10&to=2026-09-12' boss >/dev/null; csvrows "$tmp/body")"

# --- scope: an officer's file holds their districts only ----------------
is "officer rahim (BD-15, BD-26): 200" 200 "$(api GET '/api/export.csv?kind=records' rahim)"
is "  the SQL count of BD-15 and BD-26" \
    "$(sql "SELECT count(*) FROM returnees WHERE district IN ('BD-15','BD-26')")" "$(csvrows "$tmp/body")"
is "  no other district code" "BD-15 BD-26" \
    "$(tail -n +2 "$tmp/body" | grep -o ',BD-[0-9][0-9],' | tr -d , | LC_ALL=C sort -u | xargs)"
is "  X-Total-Rows counts the same scope" "$(csvrows "$tmp/body")" "$(hdr X-Total-Rows)"
d0=$(audits access.denied)
is "  asks for BD-13: 403, audited" "403 $((d0 + 1))" \
    "$(api GET '/api/export.csv?kind=records&district=BD-13' rahim) $(audits access.denied)"
is "  asks for phone numbers: 403, audited" "403 $((d0 + 2))" \
    "$(api GET '/api/export.csv?kind=records&contact=1&reason=follow-up+calls' rahim) $(audits access.denied)"
is "analyst: 403, audited" "403 $((d0 + 3)) role" \
    "$(api GET '/api/export.csv?kind=records' nasrin) $(audits access.denied) $(sql "SELECT detail->>'reason' FROM audit_log WHERE action = 'access.denied' ORDER BY id DESC LIMIT 1")"
is "  analyst's aggregate still 200" 200 "$(api GET '/api/export.csv?kind=aggregate&dims=sex' nasrin)"
is "no session: 401" 401 "$(api GET '/api/export.csv?kind=records')"
is "POST: 405" 405 "$(api POST '/api/export.csv?kind=records' boss)"

# --- phone numbers: admins, with a reason --------------------------------
e0=$(sql "SELECT count(*) FROM audit_log WHERE action = 'export'")
is "admin, contact=1 without a reason: 422, nothing audited" "422 reason_required $e0" \
    "$(api GET '/api/export.csv?kind=records&contact=1' boss) $(jq -r .error "$tmp/body") $(sql "SELECT count(*) FROM audit_log WHERE action = 'export'")"
is "admin, contact=1 with a reason: 200" 200 \
    "$(api GET '/api/export.csv?kind=records&district=BD-26&contact=1&reason=job+fair+follow-up+calls' boss)"
check "  the msisdn column, last" "head -1 '$tmp/body' | tr -d '\\r' | grep -q ',msisdn\$'"
is "  the numbers of the rows" "8801911000001 8801911000002 8801911000003 8801911000004" \
    "$(grep -o '8801911[0-9]*' "$tmp/body" | xargs)"
is "  audited with the reason" "true job fair follow-up calls" \
    "$(last_audit "(detail->>'contact') || ' ' || (detail->>'reason')")"

# --- bad parameters: 400, one log line each --------------------------------
for q in 'kind=records&foo=1' 'kind=records&status=bogus' 'kind=records&district=BD-99' \
    'kind=records&sex=q' 'kind=records&from=2026-13-01' 'kind=records&contact=2' \
    'kind=records&status=verified&status=pending' 'kind=records&reason=why+not'; do
    is "bad: $q -> 400" 400 "$(api GET "/api/export.csv?$q" boss)"
done
is "an empty result: header only, audited with 0 rows" "200 1 0" \
    "$(api GET '/api/export.csv?kind=records&district=BD-02' boss) $(tail -c +4 "$tmp/body" | grep -c .) $(last_audit "detail->>'rows'")"

# --- the data dictionary ---------------------------------------------------
is "dictionary of records: 200" 200 "$(api GET '/api/export/dictionary.csv?kind=records' boss)"
is "  one line per column of the records file (and msisdn, with contact=1)" \
    "$(head -1 "$tmp/golden.csv" | tail -c +4 | tr -d '\r' | tr , '\n' | xargs) msisdn" \
    "$(dictcols "$tmp/body")"
check "  the codes with their labels (a district, in Bangla)" "grep -q '^district_code,,,BD-26,কিশোরগঞ্জ,Kishoreganj' '$tmp/body'"
check "  a decision reason's labels" "grep -q '^reject_reason_code,,,duplicate,' '$tmp/body'"
is "dictionary of an aggregate: 200" 200 "$(api GET '/api/export/dictionary.csv?kind=aggregate&dims=sex,age_band' nasrin)"
is "  its columns" "sex_code sex_label_bn sex_label_en age_band_code age_band_label_bn age_band_label_en n" \
    "$(dictcols "$tmp/body")"
is "dictionary: bad kind 400" 400 "$(api GET '/api/export/dictionary.csv?kind=nope' boss)"

# --- the indicators: destination x reason x year, and both as JSON ------
# obs FILE: "D1|D2|D3=VALUE|STATUS" lines of an SDMX-CSV or indicator JSON
obs() { python3 -c 'import csv, json, sys
f = sys.argv[1]
if f.endswith(".json"):
    d = json.load(open(f))
    ids = [x["id"] for x in d["dimensions"]]
    rows = [([o[i] for i in ids], o["OBS_VALUE"], o["OBS_STATUS"]) for o in d["observations"]]
else:
    r = list(csv.reader(open(f, newline="")))
    rows = [(x[3:-2], x[-2], x[-1]) for x in r[1:]]
for v, n, s in rows:
    print("|".join(v) + "=" + ("" if n is None else str(n)) + "|" + s)' "$1" | LC_ALL=C sort; }
is "destination x reason x year (SDMX-CSV), admin: 200" 200 "$(api GET /api/indicators/destination_reason_year.csv boss)"
cp "$tmp/body" "$tmp/dry.csv"
is "  the header" "STRUCTURE,STRUCTURE_ID,ACTION,DESTINATION,RETURN_REASON,TIME_PERIOD,OBS_VALUE,OBS_STATUS" "$(head -1 "$tmp/dry.csv" | tr -d '\r')"
check "  every line of the dataflow BD_REMIGATE:DF_RETURN_REASONS(1.0)" "tail -n +2 '$tmp/dry.csv' | awk -F, '\$2 != \"BD_REMIGATE:DF_RETURN_REASONS(1.0)\" { bad = 1 } END { exit bad }'"
obs "$tmp/dry.csv" >"$tmp/dry.obs"
# the test's own counts of verified returnees: cells, and per year the
# margins (_T), missing values _U; no total over years
sql "WITH v AS (SELECT coalesce(country, '_U') c, coalesce(reason, '_U') r,
                       coalesce(return_year::text, '_U') y FROM returnees WHERE status = 'verified')
     SELECT c || '|' || r || '|' || y || '=' || count(*) FROM v GROUP BY c, r, y
     UNION ALL SELECT c || '|_T|' || y || '=' || count(*) FROM v GROUP BY c, y
     UNION ALL SELECT '_T|' || r || '|' || y || '=' || count(*) FROM v GROUP BY r, y
     UNION ALL SELECT '_T|_T|' || y || '=' || count(*) FROM v GROUP BY y" | LC_ALL=C sort >"$tmp/dry.want"
is "  one observation per non-zero cell and margin of each year, none over years" \
    "$(cut -d= -f1 "$tmp/dry.want" | md5sum)" "$(cut -d= -f1 "$tmp/dry.obs" | md5sum)"
is "  every shown value (A) is the SQL count" "" \
    "$(join -t= <(grep '|A$' "$tmp/dry.obs" | sed 's/|A$//' | cut -d= -f1,2) "$tmp/dry.want" | awk -F= '$2 != $3')"
is "  every count 1..4 confidential (C, no value)" "" \
    "$(join -t= "$tmp/dry.want" <(sed 's/=\([0-9]*\)|\([AC]\)$/=\1 \2/' "$tmp/dry.obs") | awk -F= '$2 < 5 && $3 !~ /^ C$/')"
check "  some counts are confidential, some shown" "[ \$(grep -c '|C\$' '$tmp/dry.obs') -gt 0 ] && [ \$(grep -c '|A\$' '$tmp/dry.obs') -gt 0 ]"
check "  a missing year of return is _U" "grep -q '|_U=' '$tmp/dry.obs'"
is "  audited as sdmx_destination_reason_year with rows and SHA-256" \
    "sdmx_destination_reason_year $(($(wc -l <"$tmp/dry.csv") - 1)) $(sha256sum <"$tmp/dry.csv" | cut -d' ' -f1)" \
    "$(sql "SELECT (detail->>'kind') || ' ' || (detail->>'rows') || ' ' || (detail->>'sha256') FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1")"
is "the same as JSON: 200" 200 "$(api GET /api/indicators/destination_reason_year.json boss)"
cp "$tmp/body" "$tmp/dry.json"
is "  the same observations as the CSV" "$(md5sum <"$tmp/dry.obs")" "$(obs "$tmp/dry.json" | md5sum)"
is "  code lists with labels (DESTINATION SA, in Bangla)" "সৌদি আরব" \
    "$(jq -r '.dimensions[] | select(.id == "DESTINATION") | .codes[] | select(.id == "SA") | .bn' "$tmp/dry.json")"
is "  RETURN_REASON's list holds _T, _U and every reason" "$(($(grep -c 'code = ' config/lists/reasons.conf) + 2))" \
    "$(jq '.dimensions[] | select(.id == "RETURN_REASON") | .codes | length' "$tmp/dry.json")"
is "  audited as json_destination_reason_year" json_destination_reason_year \
    "$(sql "SELECT detail->>'kind' FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1")"
is "analyst: 200, the same file" "200 $(md5sum <"$tmp/dry.obs")" \
    "$(api GET /api/indicators/destination_reason_year.json nasrin) $(obs "$tmp/body.json" 2>/dev/null; cp "$tmp/body" "$tmp/an.json"; obs "$tmp/an.json" | md5sum)"
api GET /api/indicators/destination_reason_year.json rahim >/dev/null
cp "$tmp/body" "$tmp/of.json"
is "officer: each year's shown total is their districts' count" "" \
    "$(join -t= <(obs "$tmp/of.json" | grep '^_T|_T|.*|A$' | sed 's/|A$//') \
        <(sql "SELECT '_T|_T|' || coalesce(return_year::text, '_U') || '=' || count(*) FROM returnees WHERE status = 'verified' AND district IN ('BD-15', 'BD-26') GROUP BY return_year" | LC_ALL=C sort) | awk -F= '$2 != $3')"
check "  and less than the country's" "[ \$(jq '[.observations[] | select(.DESTINATION == \"_T\" and .RETURN_REASON == \"_T\") | .OBS_VALUE // 0] | add' '$tmp/of.json') -lt \$(jq '[.observations[] | select(.DESTINATION == \"_T\" and .RETURN_REASON == \"_T\") | .OBS_VALUE // 0] | add' '$tmp/dry.json') ]"
is "a filter: women (and bad: sex=q 400, dims 400)" "200 400 400" \
    "$(api GET '/api/indicators/destination_reason_year.csv?sex=f' boss) $(api GET '/api/indicators/destination_reason_year.csv?sex=q' boss) $(api GET '/api/indicators/destination_reason_year.json?dims=sex' boss)"
is "no session: 401" 401 "$(api GET /api/indicators/destination_reason_year.json)"
is "skills supply as JSON: 200" 200 "$(api GET /api/indicators/skills_supply.json boss)"
cp "$tmp/body" "$tmp/ss.json"
api GET /api/indicators/skills_supply.csv boss >/dev/null
cp "$tmp/body" "$tmp/ss.csv"
is "  the same observations as its SDMX-CSV" "$(obs "$tmp/ss.csv" | md5sum)" "$(obs "$tmp/ss.json" | md5sum)"
is "  REF_AREA's code list: BD and the 64 districts" 65 \
    "$(jq '.dimensions[] | select(.id == "REF_AREA") | .codes | length' "$tmp/ss.json")"
is "dictionary of destination x reason x year" "STRUCTURE STRUCTURE_ID ACTION DESTINATION RETURN_REASON TIME_PERIOD OBS_VALUE OBS_STATUS" \
    "$(api GET '/api/export/dictionary.csv?kind=destination_reason_year' boss >/dev/null; dictcols "$tmp/body")"

# --- a client that goes away mid-stream -----------------------------------
# 20,000 more rows in BD-02 (about 8 MB of CSV: more than the kernel's
# socket buffers hold), a client that reads the headers and 64 KiB, then
# closes: the daemon stops reading pages, audits "failed" client_gone with
# the rows sent so far, and goes on serving.
sql "INSERT INTO returnees (msisdn, district, division, sex, country, reason,
        lang, channel, status, ref, reject_note, created_at)
     SELECT '88019' || lpad(i::text, 8, '0'), 'BD-02', 'A', 'm', 'SA', 'unpaid',
            'bn', 'ussd', 'pending', 'B' || lpad(i::text, 9, '0'),
            repeat('a long note to make the file big ', 8), now()
     FROM generate_series(1, 20000) i" >/dev/null
cookie=$(awk '$6 == "remigate_console" { print $7 }' "$tmp/jar-boss")
python3 - "$(cat "$tmp/port")" "$cookie" >"$tmp/gone" 2>&1 <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(("GET /api/export.csv?kind=records&district=BD-02 HTTP/1.1\r\n"
           "Host: x\r\nCookie: remigate_console=%s\r\n\r\n" % sys.argv[2]).encode())
got = b""
while len(got) < 65536:
    b = s.recv(4096)
    if not b:
        break
    got += b
print(got.split(b"\r\n")[0].decode(), len(got) >= 65536)
s.close()
PY
is "  the client read the start of a 20,000-row file" "HTTP/1.1 200 OK True" "$(cat "$tmp/gone")"
gone() { [ "$(last_audit "detail->>'state'")" = client_gone ]; }
wait_until 20 gone
is "  audited: failed, client_gone, fewer rows than the total" "failed client_gone 20000 1" \
    "$(last_audit "outcome || ' ' || (detail->>'state') || ' ' || (detail->>'total') || ' ' || ((detail->>'rows')::int < 20000)::int")"
is "  the daemon goes on serving" 200 "$(api GET '/api/export.csv?kind=records&district=BD-26' boss)"
a_whole() { [ "$(curl -s -o /dev/null -w '%{http_code}' -b "$tmp/jar-boss" --max-time 60 "$base/api/export.csv?kind=records&district=BD-02")" = 200 ]; }
check "  and a client that reads it all gets the 20,000 rows, audited complete" \
    "a_whole && [ \"\$(last_audit \"(detail->>'state') || ' ' || (detail->>'rows')\")\" = 'complete 20000' ]"

# a client that pauses 3 s (longer than limits.request_timeout_ms, 2 s)
# mid-file still gets all of it
python3 - "$(cat "$tmp/port")" "$cookie" >"$tmp/slow" 2>&1 <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET /api/export.csv?kind=records&district=BD-02 HTTP/1.1\r\n"
           "Host: x\r\nConnection: close\r\nCookie: remigate_console=%s\r\n\r\n" % sys.argv[2]).encode())
got = b""
while len(got) < 65536:
    got += s.recv(4096)
time.sleep(3)
s.settimeout(30)
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
print("whole" if got.endswith(b"\r\n0\r\n\r\n") else "cut", got.count(b"\nB0"))
PY
is "  a client that pauses 3 s mid-file gets it whole (the stream's idle limit is 60 s)" "whole 20000" "$(tail -n 1 "$tmp/slow")"

# --- the database fails mid-stream: the download must not look whole ------
# The client reads 64 KiB and waits; the console's role loses SELECT on
# returnees; the client reads on: the next page fails, the audit says
# failed/database_failed, and the body ends without its last chunk.
rm -f "$tmp/paused" "$tmp/go"
python3 - "$(cat "$tmp/port")" "$cookie" "$tmp" >"$tmp/dbfail" 2>&1 <<'PY' &
import os, socket, sys, time
port, cookie, tmp = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(("GET /api/export.csv?kind=records&district=BD-02 HTTP/1.1\r\n"
           "Host: x\r\nCookie: remigate_console=%s\r\n\r\n" % cookie).encode())
got = b""
while len(got) < 65536:
    got += s.recv(4096)
open(tmp + "/paused", "w").close()
for _ in range(300):
    if os.path.exists(tmp + "/go"):
        break
    time.sleep(0.1)
s.settimeout(30)
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except OSError as e:
    print("error", type(e).__name__)
print("whole" if got.endswith(b"\r\n0\r\n\r\n") else "cut", got.count(b"\nB0") < 20000)
PY
dbpid=$!
wait_until 20 test -e "$tmp/paused"
sql "REVOKE SELECT ON returnees FROM remigate_console" >/dev/null
touch "$tmp/go"
wait "$dbpid"
sql "GRANT SELECT ON returnees TO remigate_console" >/dev/null
is "  the client saw the body cut, not a whole file" "cut True" "$(tail -n 1 "$tmp/dbfail")"
is "  audited: failed, database_failed, fewer rows than the total" "failed database_failed 1" \
    "$(last_audit "outcome || ' ' || (detail->>'state') || ' ' || ((detail->>'rows')::int < 20000)::int")"
is "  the next export works again" 200 "$(api GET '/api/export.csv?kind=records&district=BD-26' boss)"

# --- stats.k is configuration: each start audits a changed value --------
kaudit() { sql "SELECT count(*) || ' ' || coalesce(string_agg(coalesce(detail->>'from', 'none') || '>' || (detail->>'to'), ',' ORDER BY id), '') FROM audit_log WHERE action = 'config.change' AND target = 'stats.k'"; }
k_first() { [ "$(kaudit)" = "1 none>5" ]; }
wait_until 10 k_first
is "the first start audits stats.k (none -> 5)" "1 none>5" "$(kaudit)"
restart() { # extra --set arguments
    for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    pids=
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
        --redis-port "$REDIS_PORT" --set kannel.secret=export-test-secret \
        --set console.admin_totp=optional "$@" 2>>"$tmp/log" &
    pids="$pids $!"
    wait_until 10 test -s "$tmp/port" && base=http://127.0.0.1:$(cat "$tmp/port") && wait_until 10 healthy
}
restart --set stats.k=7
k_second() { [ "$(kaudit)" = "2 none>5,5>7" ]; }
wait_until 10 k_second
is "started with stats.k = 7: audited 5 -> 7, and logged" "2 none>5,5>7 1" \
    "$(kaudit) $(grep -c 'config change audited key=stats.k from=5 to=7' "$tmp/log")"
is "  the aggregate CSV uses it (k in its audit row)" "200 7" \
    "$(api GET '/api/export.csv?kind=aggregate&dims=sex' nasrin) $(sql "SELECT detail->>'k' FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1")"
restart --set stats.k=7
pause 2
is "started again with the same k: no new row" "2 none>5,5>7" "$(kaudit)"

for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
pids=
if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$tmp/log"; then
    bad "no sanitizer report in the daemon's log" "$(grep -E -A12 'AddressSanitizer|LeakSanitizer|runtime error' "$tmp/log")"
else ok "no sanitizer report in the daemon's log"; fi
finish
