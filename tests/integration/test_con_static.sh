#!/usr/bin/env bash
# tests/integration/test_con_static.sh -- the console's files at /console/
# from the outside: build/remigate (one worker) serves a web dir the test
# makes (the shipped web/ plus hostile neighbours), and
#   - every shipped file comes back byte for byte with its Content-Type, a
#     strong ETag, Cache-Control and the strict headers (CSP exactly as
#     specified, nosniff, no-referrer, frame-ancestors 'none');
#   - If-None-Match (exact, weak, in a list, "*") gives 304 without a body,
#     a stale tag gives 200; HEAD has no body; /console is a 301;
#   - path traversal cannot reach a file outside the loaded set: ../,
#     %2e%2e, encoded slashes and backslashes, NUL, double slashes, dot
#     files, a symbolic link to a secret, files of other kinds -- each a 4xx,
#     never the secret's bytes, and one log line each;
#   - POST is 405 with Allow; SIGHUP reads the files again (new ETag);
#   - /api/ replies carry the same strict headers;
#   - a missing web dir: the daemon still runs, /console/ is 404;
#   - the requests are counted under endpoint="console".
# Prints "con_static: N passed, N failed"; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
bin=${REMIGATE_BIN:-build/remigate}
CHECKS_LABEL=con_static
. tests/lib/checks.sh

tmp=$(mktemp -d /tmp/remigate-con-static.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$bin" ]; then
    not_ok "$bin is missing (run make)"
    summary
    exit 1
fi

# The web dir: the shipped files, and beside them what must never be served.
web=$tmp/site/web
mkdir -p "$tmp/site"
cp -R "$root/web" "$web"
secret="SECRET-$RANDOM$RANDOM"
echo "$secret" >"$tmp/site/secret.txt"
echo "$secret" >"$web/.hidden.txt"
mkdir -p "$web/.git"
echo "$secret" >"$web/.git/config.txt"
echo "$secret" >"$web/notes.md"
echo "$secret" >"$web/index.html~"
ln -s "$tmp/site/secret.txt" "$web/link.txt"
ln -s "$tmp/site" "$web/up"

cp -R config "$tmp/config"
conf=$tmp/config/remigate.conf
sed -i 's/^\( *secret = \)"";/\1"con-static-secret";/' "$conf"

start() {
    rm -f "$tmp/port"
    "$bin" -c "$conf" --workers 1 --port 0 --port-file "$tmp/port" \
        --set "console.web_dir=$1" 2>>"$tmp/log" &
    pid=$!
    poll 10 test -s "$tmp/port" || return 1
    base=http://127.0.0.1:$(cat "$tmp/port")
}
stop() {
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
}

# fetch PATH [curl args]: status into $s, headers in $tmp/h, body in $tmp/b
fetch() {
    local p=$1
    shift
    rm -f "$tmp/b" "$tmp/h"
    s=$(curl -s --path-as-is -o "$tmp/b" -D "$tmp/h" -w '%{http_code}' \
        --max-time 5 "$@" "$base$p")
}
header() { sed -n "s/^$1: \(.*\)\r$/\1/Ip" "$tmp/h" | head -n 1; }

csp="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
strict_headers() {
    [ "$(header Content-Security-Policy)" = "$csp" ] &&
        [ "$(header X-Content-Type-Options)" = nosniff ] &&
        [ "$(header Referrer-Policy)" = no-referrer ]
}

if ! check "the daemon starts with web_dir=$web" start "$web"; then
    sed 's/^/#   /' "$tmp/log"
    summary
    exit 1
fi

# ---- every shipped file ------------------------------------------------------
nfiles=0 bad=
while IFS= read -r f; do
    rel=${f#"$root/web/"}
    case $rel in
    *.html) want="text/html; charset=utf-8" ;;
    *.css) want="text/css; charset=utf-8" ;;
    *.js | *.mjs) want="text/javascript; charset=utf-8" ;;
    *.svg) want="image/svg+xml" ;;
    *.png) want="image/png" ;;
    *.ico) want="image/x-icon" ;;
    *.json) want="application/json" ;;
    *) continue ;;
    esac
    nfiles=$((nfiles + 1))
    fetch "/console/$rel"
    if [ "$s" != 200 ] || ! cmp -s "$tmp/b" "$f" ||
        [ "$(header Content-Type)" != "$want" ] || ! strict_headers ||
        ! header ETag | grep -qE '^"[0-9a-f]{32}"$' ||
        [ "$(header Cache-Control)" != no-cache ]; then
        bad="$bad $rel($s)"
    fi
done < <(find "$root/web" -type f ! -name '.*' | sort)
check "every shipped file ($nfiles) byte for byte, Content-Type, ETag, no-cache, strict headers${bad:+; wrong:$bad}" \
    eval '[ -z "$bad" ] && [ "$nfiles" -gt 2 ]'

fetch /console/
check "/console/ is index.html" cmp -s "$tmp/b" "$root/web/index.html"
etag=$(header ETag)
check "the ETag is the BLAKE2b-128 of the bytes (as loaded, not as requested)" \
    [ "${etag//\"/}" = "$(python3 -c 'import hashlib,sys; print(hashlib.blake2b(open(sys.argv[1],"rb").read(), digest_size=16).hexdigest())' "$root/web/index.html")" ]

# ---- conditional requests, HEAD, redirect ----------------------------------
fetch /console/index.html -H "If-None-Match: $etag"
check "If-None-Match with the ETag: 304, no body, ETag and CSP still sent" \
    eval '[ "$s" = 304 ] && [ ! -s "$tmp/b" ] && [ "$(header ETag)" = "$etag" ] && strict_headers'
fetch /console/index.html -H "If-None-Match: \"0000\", W/$etag"
check "a weak form of it in a list: 304" [ "$s" = 304 ]
fetch /console/index.html -H "If-None-Match: *"
check "If-None-Match: * is 304" [ "$s" = 304 ]
fetch /console/index.html -H 'If-None-Match: "00000000000000000000000000000000"'
check "a stale ETag: 200 with the body" eval '[ "$s" = 200 ] && [ -s "$tmp/b" ]'
fetch /console/index.html -H "If-None-Match: ${etag%\"}"
check "an unterminated ETag: 200" [ "$s" = 200 ]
fetch /console/index.html -I
# (curl -I writes the headers where the body would go: nothing else)
check "HEAD: 200, headers, no body" eval '[ "$s" = 200 ] && cmp -s "$tmp/b" "$tmp/h" && strict_headers'
fetch /console
check "/console: 301 to /console/" eval '[ "$s" = 301 ] && [ "$(header Location)" = /console/ ]'
fetch /console/index.html -X POST -d x=1
check "POST: 405, Allow: GET, HEAD" eval '[ "$s" = 405 ] && [ "$(header Allow)" = "GET, HEAD" ]'

# ---- what must never be served ---------------------------------------------
lines0=$(grep -c 'refused status=4' "$tmp/log")
n=0 leaks= wrong=
for p in \
    /console/../secret.txt /console/../../config/remigate.conf \
    /console/%2e%2e/secret.txt /console/%2E%2E/secret.txt \
    /console/..%2fsecret.txt /console/..%2Fsecret.txt /console/%2e%2e%2fsecret.txt \
    /console/..%5csecret.txt '/console/..\secret.txt' /console/%5c..%5csecret.txt \
    /console/index.html%00.txt /console/%00 /console/.hidden.txt \
    /console/.git/config.txt /console/./index.html /console//index.html \
    /console/css/../index.html /console/link.txt /console/up/secret.txt \
    /console/notes.md /console/index.html~ /console/index.html/ \
    /console/%69ndex.html /console/js/ /console/nope.html \
    /console/%252e%252e/secret.txt; do
    n=$((n + 1))
    fetch "$p"
    case $s in 4??) ;; *) wrong="$wrong $p($s)" ;; esac
    grep -q "$secret" "$tmp/b" && leaks="$leaks $p"
    strict_headers || wrong="$wrong $p(headers)"
done
check "$n traversal and hidden-file requests: each a 4xx with the strict headers${wrong:+; wrong:$wrong}" [ -z "$wrong" ]
check "... none of them returns the secret${leaks:+; leaked by:$leaks}" [ -z "$leaks" ]
printf 'GET /console/\0../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n' |
    timeout 3 bash -c "cat >/dev/tcp/127.0.0.1/${base##*:}; cat <&0" >"$tmp/raw" 2>/dev/null
check "a raw NUL in the request line: no secret" eval '! grep -q "$secret" "$tmp/raw"'
# refusals are logged at most 20 a second; the next line written says how
# many were held back (suppressed=K): one more refusal after a second
# settles the count
pause 1.2
fetch /console/nope-after.html
n=$((n + 1))
refused() { grep 'refused status=4' "$tmp/log" | tail -n +$((lines0 + 1)); }
lines1=$(refused | wc -l)
held=$(refused | sed -nE 's/.* suppressed=([0-9]+).*/\1/p' | awk '{s += $1} END {print s + 0}')
check "each refusal is logged or counted as held back (400 or 404; $lines1 lines + $held held back for $n)" \
    [ $((lines1 + held)) -eq "$n" ]
check "no log line carries the secret" eval '! grep -q "$secret" "$tmp/log"'

# ---- /api/ replies carry the same headers (no database here: 503) ----------
fetch /api/me
check "/api/ (503 without a database): CSP, nosniff, no-referrer, no-store" \
    eval '[ "$s" = 503 ] && strict_headers && [ "$(header Cache-Control)" = no-store ]'
fetch /api/nope -X POST -d '{}'
check "... an unknown /api/ path too" eval 'strict_headers'

# ---- SIGHUP reloads ----------------------------------------------------------
echo '<!doctype html><title>v2</title>' >"$web/index.html"
kill -HUP "$pid"
poll 5 eval 'fetch /console/; grep -q v2 "$tmp/b"'
check "SIGHUP: the new index.html is served, with a new ETag" \
    eval 'grep -q v2 "$tmp/b" && [ "$(header ETag)" != "$etag" ]'
fetch /console/index.html -H "If-None-Match: $etag"
check "... and the old ETag is no longer 304" [ "$s" = 200 ]
mv "$web" "$web.away"
kill -HUP "$pid"
poll 5 grep -q 'hooks failed and keep what was loaded' "$tmp/log"
check "SIGHUP with the web dir gone: the log says which part kept its old state" \
    grep -q 'reload: 1 of [0-9]* hooks failed and keep what was loaded; the others reloaded' "$tmp/log"
fetch /console/
check "... and the pages loaded before are still served" eval '[ "$s" = 200 ] && grep -q v2 "$tmp/b"'
mv "$web.away" "$web"

fetch /metrics
check "metrics: console requests counted by status (200, 304, 400, 404)" \
    eval 'for c in 200 304 400 404; do grep -q "^remigate_requests_total{endpoint=\"console\",status=\"$c\"} [1-9]" "$tmp/b" || exit 1; done'
check "no assert in the log" eval '! grep -q "assert:" "$tmp/log"'
stop

# ---- a web dir that is not there ---------------------------------------------
: >"$tmp/log"
check "web_dir missing: the daemon starts all the same" start "$tmp/none"
fetch /console/
check "... /console/ is 404" [ "$s" = 404 ]
check "... and the log says the files were not loaded" grep -q 'console files not loaded' "$tmp/log"
fetch /healthz
check "... the rest of the daemon answers" eval '[ "$s" = 200 ] || [ "$s" = 503 ]'
stop

summary
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
