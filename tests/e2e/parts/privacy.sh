# tests/e2e/parts/privacy.sh -- sourced by tests/e2e/run.sh once every
# dialogue has run (scenario 10 and personal data at rest): Kannel
# stopped, its access log has the MO, MT and DLR lines and none of its
# logs a message text; no name or ID number typed above in clear in
# Redis, PostgreSQL (pg_dump), remigate's log or Kannel's files.  Uses
# m2, ref1, ref2 (ussd.sh).

# ---- 10. no message text in Kannel's logs ---------------------------------------

# Names, ID numbers and screens went through Kannel above; none may be in
# its logs (the access log has a format without %b, the boxes log at
# warning level).  Kannel is stopped first, so its logs are complete.
stop_pids "$sb_pid" "$bb_pid"
alog=$RUN_DIR/access.log
check "access log: MO, MT and DLR lines, each with the length field" \
    [ "$(grep -cE ' (Receive|Sent) (SMS|DLR) .*\[len:[0-9]+\]' "$alog" 2>/dev/null)" -ge 6 ]
leaked=
for f in "$RUN_DIR"/*.log "$tmp/bearerbox.stderr" "$tmp/smsbox.stderr"; do
    [ -f "$f" ] || continue
    for t in 'রহিমা বেগম' 'Karim Uddin' 'Jamal Hossain' 1234567890 ১২৩৪৫৬৭৮৯০ \
        'What do you want to do' 'I agree' 'কী করতে চান' "${ref1:-none}" \
        "${ref2:-none}" 'Starting to service'; do
        grep -qF -- "$t" "$f" && leaked="$leaked ${f##*/}:$t"
    done
done
check "no message text in any Kannel log${leaked:+ (found:$leaked)}" [ -z "$leaked" ]

# ---- personal data at rest (issue 9) -----------------------------------------------
# Every name and ID number typed in the dialogues above, through real Kannel:
# none in clear in any Redis key or value, in PostgreSQL (pg_dump, every
# table), in remigate's log, or in Kannel's files (logs, the message store).
pii=('রহিমা বেগম' 'Karim Uddin' 'Jamal Hossain' 'Abdul Malek' 'Nasrin Akter' 1234567890 ১২৩৪৫৬৭৮৯০)
redis-cli -p "$REDIS_PORT" --raw --scan --pattern '*' | while IFS= read -r k; do
    printf '%s\n' "$k"
    case $(redis-cli -p "$REDIS_PORT" --raw TYPE "$k") in
    string) redis-cli -p "$REDIS_PORT" --raw GET "$k" ;;
    hash) redis-cli -p "$REDIS_PORT" --raw HGETALL "$k" ;;
    list) redis-cli -p "$REDIS_PORT" --raw LRANGE "$k" 0 -1 ;;
    set) redis-cli -p "$REDIS_PORT" --raw SMEMBERS "$k" ;;
    zset) redis-cli -p "$REDIS_PORT" --raw ZRANGE "$k" 0 -1 ;;
    esac
done >"$tmp/redis-values"
srv_pg_dump >"$tmp/pg_dump" 2>>"$tmp/psql.err"
pii_in() { local t hits=; for t in "${pii[@]}"; do grep -rqF -- "$t" "$@" 2>/dev/null && hits="$hits [$t]"; done; printf '%s' "$hits"; }
check "at rest: Redis holds the sessions ($(grep -c '^remigate:s:' "$tmp/redis-values") keys)" \
    grep -q "^remigate:s:ussd:$m2\$" "$tmp/redis-values"
h=$(pii_in "$tmp/redis-values")
check "at rest: no name or ID number in any Redis key or value${h:+ (found:$h)}" [ -z "$h" ]
check "at rest: pg_dump holds the registrations" grep -q "${ref2:-none}" "$tmp/pg_dump"
h=$(pii_in "$tmp/pg_dump")
check "at rest: no name or ID number in PostgreSQL (pg_dump)${h:+ (found:$h)}" [ -z "$h" ]
h=$(pii_in "$tmp/remigate.log")
check "at rest: no name or ID number in remigate's log${h:+ (found:$h)}" [ -z "$h" ]
h=$(pii_in "$RUN_DIR" "$tmp/bearerbox.stderr" "$tmp/smsbox.stderr")
check "at rest: no name or ID number in Kannel's logs and message store${h:+ (found:$h)}" [ -z "$h" ]
