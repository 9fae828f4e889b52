# tests/e2e/parts/ussd.sh -- sourced by tests/e2e/run.sh: registrations
# over USSD through Kannel (scenarios 1-3): part 1 in Bangla and in
# English, screen by screen on the wire, then the row, the confirmation
# SMS and its delivery report; deliver_sm duplicated by the SMSC.  Sets
# what later parts use: bn_answers, en_answers, m1, m2, ref1, ref2.

# ---- 1. Bangla registration over USSD --------------------------------------

# part 1 of 3: language, Register, consent, name, sex, birth year, the
# district by its first letters (the only match is taken), the NID; dial()
# pages the read-back and confirms
bn_answers=(1 1 1 "রহিমা বেগম" 2 ১৯৯০ "চট্ট" ১২৩৪৫৬৭৮৯০)
m1=8801711000101
dial "$m1" 33 "$tmp/d1" "${bn_answers[@]}"
check "bn: the dialogue ran to its end over SMPP" [ $? = 0 ]
check "bn: ussd_service_op 2 on every screen, 17 on the last" ops_ok "$tmp/d1"
check "bn: its_session_info echoed, end bit on the last only" sess_ok "$tmp/d1" 33
check "bn: data_coding 8 and at most 80 UCS-2 characters on every screen" bangla_ok "$tmp/d1"
check "bn: no UDH and no UDHI in esm_class" no_udh_ok "$tmp/d1"
check "bn: service_type USSD on every screen" \
    jq -s -e 'all(.service_type == "USSD")' "$tmp/d1"
# the main menu is 79 UCS-2 characters: one screen over Kannel's default
# 140 octets comes whole only with sms-length and max-sms-octets at 160
check "bn: a screen of more than 70 UCS-2 characters came whole, in one submit_sm" \
    jq -s -e 'any(.sm_length > 140 and .sm_length <= 160)' "$tmp/d1"
[ $failed -eq 0 ] || dial_report "$tmp/d1"
ref1=$(tail -n 1 "$tmp/d1" | jq -r .text | ref_of)
check "bn: the last screen gives a reference (${ref1:-none})" [ -n "$ref1" ]
poll 10 row_is "$m1" "pending|$ref1|রহিমা বেগম|ussd|bn"
check "bn: a pending row with that reference ($(row "$m1"))" row_is "$m1" "pending|$ref1|রহিমা বেগম|ussd|bn"
check "bn: confirmation SMS on the SMS bind, data_coding 8, with the reference" \
    confirmation_ok "$m1" "${ref1:-none}" 8
delivered() { [ "$(sql "SELECT string_agg(dlr_state::text, ',') FROM sms_out WHERE msisdn = '$1' AND kind = 'confirmation'")" = 1 ]; }
check "bn: the confirmation's delivery report came back through Kannel (sms_out)" \
    poll 20 delivered "$m1"

# ---- 2. English registration over USSD -------------------------------------

f0=$failed
en_answers=(2 1 1 "Karim Uddin" 1 1990 "Dhaka" 1234567890)
m2=8801711000102
dial "$m2" 44 "$tmp/d2" "${en_answers[@]}"
check "en: the dialogue ran to its end over SMPP" [ $? = 0 ]
check "en: ussd_service_op 2 on every screen, 17 on the last" ops_ok "$tmp/d2"
check "en: its_session_info echoed, end bit on the last only" sess_ok "$tmp/d2" 44
check "en: data_coding 0 and at most 182 characters after the language choice" english_ok "$tmp/d2"
check "en: no UDH and no UDHI in esm_class" no_udh_ok "$tmp/d2"
[ $failed -eq "$f0" ] || dial_report "$tmp/d2"
ref2=$(tail -n 1 "$tmp/d2" | jq -r .text | ref_of)
check "en: the last screen gives a reference (${ref2:-none})" [ -n "$ref2" ]
poll 10 row_is "$m2" "pending|$ref2|Karim Uddin|ussd|en"
check "en: a pending row with that reference ($(row "$m2"))" row_is "$m2" "pending|$ref2|Karim Uddin|ussd|en"
check "en: confirmation SMS on the SMS bind, data_coding 0, with the reference" \
    confirmation_ok "$m2" "${ref2:-none}" 0

# ---- 3. duplicated deliver_sm -------------------------------------------------

m3=8801711000103
DUP_SEEN=0
DUP_AT="4 last" dial "$m3" 55 "$tmp/d3" "${en_answers[@]}"
check "dup: the dialogue ran to its end over SMPP" [ $? = 0 ]
check "dup: the name and the final answer, each delivered twice, got two replies each" \
    [ $DUP_SEEN = 2 ]
same_twice()
{
    mts "$m3" | jq -e '[.[] | select(.role == "ussd") | .text] as $t
        | [range(1; $t | length) | select($t[.] == $t[. - 1])] | length >= 2' \
        >/dev/null
}
check "dup: ... the same screen both times" same_twice
ref3=$(tail -n 1 "$tmp/d3" | jq -r .text | ref_of)
poll 10 row_is "$m3" "pending|$ref3|Karim Uddin|ussd|en"
one_row() { [ "$(rows "$m3")" = 1 ] && row_is "$m3" "pending|$ref3|Karim Uddin|ussd|en"; }
check "dup: exactly one row, with the answers given once ($(row "$m3"))" one_row
check "dup: one submission for the reference" \
    [ "$(sql "SELECT count(*) FROM submissions WHERE ref = '$ref3'")" = 1 ]
confirmation_ok "$m3" "${ref3:-none}" 0
# a second confirmation would follow the duplicate's reply, seen above:
# give it a few seconds to show up
! poll 3 sms_at_least "$m3" 2 0
if ! check "dup: one confirmation SMS ($(sms_count "$m3"))" [ "$(sms_count "$m3")" = 1 ]; then
    say "sms_out rows of $m3 (id, kind, created_at, accepted_at):"
    sql "SELECT id, kind, created_at, accepted_at FROM sms_out WHERE msisdn = '$m3'" |
        sed 's/^/#   /'
    grep -n 'duplicate\|kind=confirmation' "$tmp/remigate.log" | tail -n 4 |
        sed 's/^/#   /'
fi
check "dup: the two other numbers still have one row each" \
    [ "$(rows "$m1")$(rows "$m2")" = 11 ]
