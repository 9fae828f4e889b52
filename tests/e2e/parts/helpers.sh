# tests/e2e/parts/helpers.sh -- sourced by tests/e2e/run.sh after
# setup.sh: the helpers the scenarios use.  On the simulator: ussd (one
# USSD MO and its answer), faults, sms_mo, mts / sms_count / sms_msgs (the
# submit_sm to a number, SMS parts joined as a handset shows them),
# sms_say and sms_dialogue (a dialogue by SMS), dial (a whole USSD
# dialogue, with duplicated deliver_sm on demand) and the per-screen
# checks over its log (ops_ok, sess_ok, no_udh_ok, bangla_ok, english_ok);
# in PostgreSQL: pname (a name, decrypted), row / rows / row_is (the
# returnee of a number) and confirmation_ok (the confirmation SMS).

# ussd MSISDN OP SESSION SEQ TEXT: one deliver_sm on the USSD bind; the
# submit_sm that answered it (JSON) goes to stdout, the HTTP status to
# $tmp/st.
ussd()
{
    local body
    body=$(jq -cn --arg m "$1" --argjson op "$2" --argjson s "$3" \
        --argjson q "$4" --arg t "$5" --argjson th "${6:-0}" \
        '{msisdn: $m, op: $op, session: $s, seq: $q, text: $t, timeout: 15000,
          think_ms: $th}')
    curl -s -o "$tmp/reply" -w '%{http_code}' --max-time 20 \
        -H 'Content-Type: application/json' -d "$body" "$ctl/ussd" >"$tmp/st"
    cat "$tmp/reply"
}
st() { cat "$tmp/st"; }
faults() { curl -s --max-time 5 -H 'Content-Type: application/json' -d "$1" "$ctl/faults" >/dev/null; }
sms_mo()
{
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        -H 'Content-Type: application/json' \
        -d "$(jq -cn --arg m "$1" --arg t "$2" '{msisdn: $m, text: $t}')" \
        "$ctl/sms"
}
# mts MSISDN [SINCE]: every submit_sm to MSISDN (JSON array)
mts() { curl -s --max-time 5 "$ctl/mt?msisdn=$1&since=${2:-0}"; }
last_n() { curl -s --max-time 5 "$ctl/pdus" | jq '[.[].n] | max // 0'; }
# sms_count MSISDN [SINCE]: submit_sm on the SMS bind to MSISDN
sms_count() { mts "$1" "${2:-0}" | jq '[.[] | select(.role == "sms")] | length'; }
sms_at_least() { [ "$(sms_count "$1" "${3:-0}")" -ge "$2" ]; }

# sms_msgs MSISDN [SINCE]: the SMS sent to MSISDN on the SMS bind after
# record SINCE as a handset shows them: the parts of a concatenated SMS
# (same UDH reference) joined in the order of their numbers.  A JSON
# array, oldest first, of {n (its first record), text, parts, total,
# complete, codings (the parts' data_coding values)}.
sms_msgs()
{
    mts "$1" "${2:-0}" | jq '
        def hexn: ascii_downcase | explode
            | reduce .[] as $c (0; . * 16 + (if $c >= 97 then $c - 87 else $c - 48 end));
        def concat:
            (.udh_hex // "") as $u
            | if $u[2:6] == "0003" then
                {ref: $u[6:8], total: ($u[8:10] | hexn), seq: ($u[10:12] | hexn)}
              elif $u[2:6] == "0804" then
                {ref: $u[6:10], total: ($u[10:12] | hexn), seq: ($u[12:14] | hexn)}
              else null end;
        [.[] | select(.role == "sms") | . + {c: concat}
            | . + {key: (if .c then "r" + .c.ref else "n\(.n)" end)}]
        | group_by(.key)
        | map(sort_by(.c.seq // 0) | {n: (map(.n) | min),
            text: (map(.text) | join("")), parts: length,
            total: (.[0].c.total // 1),
            codings: (map(.data_coding) | unique)})
        | map(. + {complete: (.parts == .total)}) | sort_by(.n)'
}
# mt_last MSISDN: the record number of the last submit_sm to MSISDN (0)
mt_last() { mts "$1" | jq '[.[].n] | max // 0'; }

# sms_say MSISDN TEXT: TEXT as an SMS from MSISDN; waits for the whole
# answer (every part), whose text goes to $tmp/sms_last and whose
# sms_msgs entry to $tmp/sms_last.json.
sms_say()
{
    local m=$1 n0
    n0=$(mt_last "$m")
    [ "$(sms_mo "$m" "$2")" = 200 ] || return 1
    answered() { sms_msgs "$m" "$n0" | jq -e 'any(.[]; .complete)' >/dev/null; }
    poll 20 answered || return 1
    sms_msgs "$m" "$n0" | jq -c '[.[] | select(.complete)][-1]' >"$tmp/sms_last.json"
    jq -r .text "$tmp/sms_last.json" >"$tmp/sms_last"
}

# sms_dialogue MSISDN LOGFILE STEP...: a dialogue by SMS.  Each STEP is
# "TEXT=>WANT": sends TEXT, waits for the whole answer and needs WANT in
# it.  Each answer (sms_msgs entry plus .mo) is appended to LOGFILE.
# Stops at the first answer that does not come or lacks WANT, and says
# which.
sms_dialogue()
{
    local m=$1 log=$2 step in want
    shift 2
    : >"$log"
    for step in "$@"; do
        in=${step%%=>*} want=${step#*=>}
        sms_say "$m" "$in" || { say "sms $m: no answer to '$in'"; return 1; }
        jq -c --arg in "$in" '. + {mo: $in}' "$tmp/sms_last.json" >>"$log"
        grep -qF -- "$want" "$tmp/sms_last" || {
            say "sms $m: '$in' got: $(head -c 300 "$tmp/sms_last")"
            return 1
        }
    done
}

# The text of a screen and a reference in it.
ref_of() { grep -oE '\b[0-9A-Z]{10}\b' | head -n 1; }

# dial MSISDN SESSION LOGFILE ANSWERS...: a whole USSD dialogue.  Sends the
# dial (op 1), then each answer (op 18, sequence going up by one);  after
# the answers, pages on with 98 while the screen offers it and confirms
# with 1 (the read-back is paged differently per language).  Each reply's
# JSON is appended to LOGFILE with the MO's its_session_info byte
# (.mo_seq).  Stops at the first ussd_service_op 17 or failure.  DUP_AT
# lists answers (1-based; "last" = the one that ends the dialogue) whose
# deliver_sm the simulator sends twice; both replies are waited for and
# counted in DUP_SEEN.  STOP_AFTER=1: stop after the answers given.
# HOLD_CONFIRM=1: page on after the answers but stop at the confirmation
# screen, without confirming.  DIAL_SEQ is the sequence number of the last
# answer sent (the next one is DIAL_SEQ + 1).
dial()
{
    local m=$1 s=$2 log=$3 seq=0 r a i=0 extra=0 n0
    shift 3
    : >"$log"
    DIAL_SEQ=0
    r=$(ussd "$m" 1 "$s" 0 '*247#')
    [ "$(st)" = 200 ] || { say "dial $m: HTTP $(st): $r"; return 1; }
    jq -c '. + {mo_seq: 0}' <<<"$r" >>"$log"
    local todo=("$@")
    while :; do
        [ "$(jq -r .ussd_service_op <<<"$r")" = 17 ] && return 0
        if [ $i -lt ${#todo[@]} ]; then
            a=${todo[i]}
        elif [ "${STOP_AFTER:-0}" = 1 ]; then
            return 0
        elif [ $extra -lt 12 ]; then
            extra=$((extra + 1))
            if jq -r .text <<<"$r" | grep -qE '(^|[^0-9])(98|৯৮)[.)]'; then
                a=98
            elif [ "${HOLD_CONFIRM:-0}" = 1 ]; then
                return 0
            else
                a=1
            fi
        else
            say "dial $m: no end after the answers"
            return 1
        fi
        i=$((i + 1))
        seq=$((seq + 1))
        local dup=0
        if [[ " ${DUP_AT:-} " == *" $i "* ]] ||
            { [[ " ${DUP_AT:-} " == *" last "* ]] && [ "$a" = 1 ] &&
                [ $i -gt ${#todo[@]} ] &&
                ! jq -r .text <<<"$r" | grep -qE '(^|[^0-9])(98|৯৮)[.)]'; }; then
            dup=1
            n0=$(last_n)
            faults '{"duplicate_next_deliver": true}'
        fi
        r=$(ussd "$m" 18 "$s" "$seq" "$a")
        DIAL_SEQ=$seq
        [ "$(st)" = 200 ] || { say "dial $m step $i ($a): HTTP $(st): $r"; return 1; }
        jq -c --argjson q $((seq * 2)) '. + {mo_seq: $q}' <<<"$r" >>"$log"
        if [ $dup = 1 ]; then
            ussd_replies() { [ "$(mts "$m" "$n0" | jq '[.[] | select(.role == "ussd")] | length')" -ge 2 ]; }
            if poll 15 ussd_replies; then
                DUP_SEEN=$((DUP_SEEN + 1))
            else
                say "dial $m: the duplicated answer $i got no second reply"
            fi
        fi
    done
}
DUP_SEEN=0

# Per-screen checks over a dialogue log (one JSON reply a line).
ops_ok()
{
    jq -s -e 'length >= 2 and (.[:-1] | all(.ussd_service_op == 2))
        and .[-1].ussd_service_op == 17' "$1" >/dev/null
}
sess_ok()
{
    jq -s -e --argjson s "$2" '
        def hx(n): "0123456789abcdef" as $d
            | $d[(n / 16 | floor):(n / 16 | floor) + 1] + $d[(n % 16):(n % 16) + 1];
        (.[:-1] | all(.its_session_info == hx($s) + hx(.mo_seq)))
        and (.[-1] | .its_session_info == hx($s) + hx(.mo_seq + 1))' \
        "$1" >/dev/null
}
no_udh_ok()
{
    jq -s -e 'all(.has_udh == false and (.esm_class / 64 | floor) % 2 == 0)' \
        "$1" >/dev/null
}
bangla_ok()
{
    jq -s -e 'all(.data_coding == 8 and .sm_length <= 160)' "$1" >/dev/null
}
english_ok()
{
    jq -s -e '.[1:] | all(.data_coding == 0 and (.text | length) <= 182)' \
        "$1" >/dev/null
}
dial_report()
{
    say "screens of $1 (op, session info, coding, octets, esm):"
    jq -r '"#   \(.ussd_service_op) \(.its_session_info) dc=\(.data_coding) len=\(.sm_length) esm=\(.esm_class) mo=\(.mo_seq)"' "$1"
}

# pname MSISDN: the returnee's name, which PostgreSQL holds only encrypted
# (returnees.personal_enc), opened with the key
pname() { sql "SELECT personal_enc FROM returnees WHERE msisdn = '$1'" | "$bin" open -c "$conf" --msisdn "$1" 2>/dev/null | jq -r '.name // empty'; }
# with_name MSISDN SQL: the row SQL selects, its first two columns, then
# the name, then the rest ("" when there is no row)
with_name()
{
    local r
    r=$(sql "$2")
    [ -n "$r" ] || return 0
    printf '%s|%s\n' "$(cut -d'|' -f1-2 <<<"$r")|$(pname "$1")" "$(cut -d'|' -f3- <<<"$r")"
}
# row MSISDN: status|ref|name|channel|lang of the returnee
row() { with_name "$1" "SELECT status, ref, channel, lang FROM returnees WHERE msisdn = '$1' AND name IS NULL"; }
rows() { sql "SELECT count(*) FROM returnees WHERE msisdn = '$1'"; }
row_is() { [ "$(row "$1")" = "$2" ]; }

# confirmation MSISDN REF CODING: waits for the SMS with REF on the SMS bind
confirmation_ok()
{
    local m=$1 ref=$2 dc=$3
    has_conf()
    {
        mts "$m" | jq -e --arg r "$ref" --argjson dc "$dc" \
            'any(.[]; .role == "sms" and .data_coding == $dc and (.text | contains($r)))' \
            >/dev/null
    }
    poll 20 has_conf
}
