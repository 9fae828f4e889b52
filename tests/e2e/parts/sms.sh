# tests/e2e/parts/sms.sh -- sourced by tests/e2e/run.sh after ussd.sh:
# SMS keywords through Kannel's SMS bind and sendsms (scenarios 4, 5, 5b):
# REG, STOP, চালু, HELP, STATUS and অবস্থা; whole registrations by SMS in
# English and in Bangla, then SKILL and দক্ষতা; one number's parts across
# USSD and SMS.  Uses m1 and bn_answers (ussd.sh).

# ---- 4. SMS keyword ------------------------------------------------------------

m4=8801711000104
sms_step()
{
    local want=$1 text=$2 n
    n=$(sms_count "$m4")
    [ "$(sms_mo "$m4" "$text")" = 200 ] || return 1
    poll 20 sms_at_least "$m4" $((n + 1)) || return 1
    mts "$m4" | jq -r '[.[] | select(.role == "sms")][-1].text' >"$tmp/sms_last"
    grep -qF -- "$want" "$tmp/sms_last"
}
# REG is the English keyword: the dialogue is in English from the start
check "sms: REG -> the first question (consent) comes back by SMS" \
    sms_step "The government keeps" REG
check "sms: 1 (agree) -> the name question" sms_step "full name" 1
check "sms: a name -> the next question (sex)" sms_step "male or female" "Karim Uddin"
check "sms: every reply went out on the SMS bind through sendsms, no TLVs" \
    [ "$(mts "$m4" | jq 'all(.[]; .role == "sms" and (.tlvs | length) == 0)')" = true ]
check "sms: no row yet" [ "$(rows "$m4")" = 0 ]
optout() { sql "SELECT opted_out FROM sms_optout WHERE msisdn = '$m4'"; }
check "sms: STOP -> told no more programme SMS" sms_step "no more SMS" STOP
check "sms: ... and the number is opted out" [ "$(optout)" = t ]
check "sms: চালু (START in Bangla) -> told they come again, in the session's language (English)" \
    sms_step "You will get SMS about programmes again" "চালু"
check "sms: ... and the number is opted back in" [ "$(optout)" = f ]
check "sms: HELP -> the list of words" sms_step "Send REG to register" HELP

# STATUS after an officer's decision, for the number registered in test 1
sql "UPDATE returnees SET status = 'verified' WHERE msisdn = '$m1'" >/dev/null
status_sms() {
    local n
    n=$(sms_count "$m1")
    [ "$(sms_mo "$m1" "$1")" = 200 ] || return 1
    poll 20 sms_at_least "$m1" $((n + 1)) || return 1
    mts "$m1" | jq -r '[.[] | select(.role == "sms")][-1].text' >"$tmp/sms_last"
    grep -qF -- "$2" "$tmp/sms_last"
}
check "sms: STATUS after the officer verified -> verified, in the record's language (Bangla)" \
    status_sms STATUS "আপনার নিবন্ধন যাচাই হয়েছে"
sql "UPDATE returnees SET status = 'rejected', reject_reason = 'NID mismatch' WHERE msisdn = '$m1'" >/dev/null
check "sms: অবস্থা after a rejection -> the reason, in Bangla" \
    status_sms "অবস্থা" "NID mismatch"

# ---- 5. a whole registration over SMS keywords ---------------------------------

# One question per SMS, through Kannel's SMS bind and sendsms, in the three
# parts of a registration: REG starts part 1, and REG again (once part 1 is
# saved) the next part still to do.  In English with REG, then in Bangla
# with নিবন্ধন and answers in Bangla digits.  Each ends in one pending row
# with channel sms and the answers of every part, one submission a part,
# and the reference in part 1's last SMS (no separate confirmation: on SMS
# the answer itself stays on the phone).
sms_fields()
{
    with_name "$1" "SELECT status, ref, sex, birth_year, division, district, country,
        years_abroad, return_year, reason, education, skills, need, lang,
        channel, nid_enc IS NOT NULL, array_to_string(parts_done, ' ')
        FROM returnees WHERE msisdn = '$1' AND name IS NULL"
}
subs_of() { sql "SELECT count(*), string_agg(ref || '/' || channel || '/' || lang, ',') FROM submissions WHERE msisdn = '$1' AND kind = '$2'"; }
# parts_ok MSISDN SINCE CODING: every SMS part to MSISDN after SINCE has
# data_coding CODING; with 8, its short_message less the UDH is two
# octets for each character of the text the simulator decoded from it
parts_ok()
{
    mts "$1" "$2" | jq -e --argjson dc "$3" '[.[] | select(.role == "sms")]
        | length > 0 and all(.data_coding == $dc
            and ($dc != 8 or .sm_length - ((.udh_hex // "") | length / 2) == 2 * (.text | length)))' \
        >/dev/null
}

# sms_reg_landed LABEL MSISDN TRANSCRIPT NAME SEX LANG SENT: the end of a
# registration by SMS -- part 1's last SMS (TRANSCRIPT) gives a reference,
# one pending row with channel sms, the answers of every part and every
# part done, one submission a part, SENT SMS (one a message sent), only
# that one with the reference.
sms_reg_landed()
{
    local label=$1 m=$2 file=$3 name=$4 sex=$5 lang=$6 sent=$7 ref
    ref=$(tail -n 1 "$file" | jq -r .text | ref_of)
    check "$label: part 1's last SMS gives a reference (${ref:-none})" [ -n "$ref" ]
    poll 10 row_is "$m" "pending|$ref|$name|sms|$lang"
    check "$label: one pending row, channel sms, the answers of the 3 parts ($(sms_fields "$m"))" \
        [ "$(sms_fields "$m")" = "pending|$ref|$name|$sex|1990|C|BD-15|SA|5|2024|contract_end|ssc|{construction,welder,machine}|training|$lang|sms|t|register register_abroad register_skills" ]
    check "$label: one submission a part ($(subs_of "$m" register); $(subs_of "$m" register_abroad | cut -d'|' -f1); $(subs_of "$m" register_skills | cut -d'|' -f1))" \
        eval '[ "$(subs_of "$m" register)" = "1|$ref/sms/$lang" ] &&
            [ "$(subs_of "$m" register_abroad | cut -d"|" -f1)$(subs_of "$m" register_skills | cut -d"|" -f1)" = 11 ]'
    check "$label: one SMS for each message sent, only part 1's last with the reference" \
        sms_sent_ok "$m" "$ref" "$sent"
}
sms_sent_ok()   # MSISDN REF SENT
{
    [ "$(sms_msgs "$1" | jq "length")" = "$3" ] &&
        [ "$(sms_msgs "$1" | jq --arg r "$2" '[.[] | select(.text | contains($r))] | length')" = 1 ]
}

m10=8801711000110
sms_en=("REG=>The government keeps your answers"
    "1=>Please write your full name" "Abdul Malek=>Are you male or female?"
    "1=>In which year were you born?"
    "1990=>Which district do you live in? Write its first letters"
    "Farid=>District: Faridpur"
    "1234567890=>Please check:" "1=>Your reference is")
sms_en2=("REG=>Which country did you return from? Write its first letters"
    "saudi=>How many years were you abroad?" "5=>In which year did you come back?"
    "2024=>Why did you come back?" "1=>How far did you study?"
    "4=>Please check:" "1=>Part 2 of 3 saved")
sms_en3=("REG=>What work can you do?" "2 5 9=>What do you need most now?"
    "3=>Please check:" "1=>your registration is complete")
sms_dialogue "$m10" "$tmp/s10" "${sms_en[@]}" &&
    sms_dialogue "$m10" "$tmp/s10b" "${sms_en2[@]}" &&
    sms_dialogue "$m10" "$tmp/s10c" "${sms_en3[@]}"
check "sms reg en: REG and the answers of part 1, REG again for part 2, again for part 3, each the next question" [ $? = 0 ]
# an SMS stays on a shared phone (and in sms_out): the read-backs mask the
# name and show the ID number's last 3 digits only
readback_en1="Name: ***
Sex: Male
Birth year: 1990
District: Faridpur
NID/passport: *******890"
readback_en2="Country: Saudi Arabia
Years abroad: 5
Year returned: 2024
Reason: Contract ended
Education: SSC or Dakhil"
readback_en3="Skills: Construction worker, Welder, Machine operator
Main need: Skills training"
check "sms reg en: each read-back has its part's answers, the name and the NID masked" \
    eval '[[ "$(jq -r "select(.mo == \"1234567890\") | .text" "$tmp/s10")" == *"$readback_en1"* &&
        "$(jq -r "select(.mo == \"4\") | .text" "$tmp/s10b")" == *"$readback_en2"* &&
        "$(jq -r "select(.mo == \"3\") | .text" "$tmp/s10c")" == *"$readback_en3"* ]]'
check "sms reg en: no SMS to the caller carries the name or the NID" \
    eval '! cat "$tmp/s10" "$tmp/s10b" "$tmp/s10c" | jq -r .text | grep -q -e "Abdul Malek" -e 1234567890'
check "sms reg en: every part went with data_coding 0" parts_ok "$m10" 0 0
sms_reg_landed "sms reg en" "$m10" "$tmp/s10" "Abdul Malek" m en \
    $((${#sms_en[@]} + ${#sms_en2[@]} + ${#sms_en3[@]}))
m11=8801711000111
n11=$(mt_last "$m11")
sms_bn=("নিবন্ধন=>কাজ, ঋণ, প্রশিক্ষণ দিতে সরকার তথ্য রাখবে"
    "১=>আপনার পুরো নাম লিখুন" "রহিমা বেগম=>আপনি পুরুষ না নারী?"
    "২=>আপনার জন্ম কোন সালে?" "১৯৯০=>কোন জেলায় থাকেন? শুরুর অক্ষর লিখুন"
    "ফরিদ=>জেলা: ফরিদপুর" "১২৩৪৫৬৭৮৯০=>নাম: ***"
    "১=>রেফারেন্স")
sms_bn2=("নিবন্ধন=>কোন দেশ থেকে ফিরেছেন?" "সৌদি=>বিদেশে কত বছর?"
    "৫=>কোন সালে দেশে ফিরেছেন?" "২০২৪=>কেন দেশে ফিরেছেন?"
    "১=>কতদূর পড়াশোনা করেছেন?" "৪=>দেখে নিন:" "১=>২য় অংশ জমা হলো")
sms_bn3=("নিবন্ধন=>কী কাজ পারেন?" "২ ৫ ৯=>এখন কী সবচেয়ে দরকার?"
    "৩=>দেখে নিন:" "১=>নিবন্ধন সম্পূর্ণ")
sms_dialogue "$m11" "$tmp/s11" "${sms_bn[@]}" &&
    sms_dialogue "$m11" "$tmp/s11b" "${sms_bn2[@]}" &&
    sms_dialogue "$m11" "$tmp/s11c" "${sms_bn3[@]}"
check "sms reg bn: নিবন্ধন and the answers of each part in Bangla digits, each the next question" [ $? = 0 ]
check "sms reg bn: data_coding 8 on every part, UCS-2 text (2 octets a character)" \
    parts_ok "$m11" "$n11" 8
check "sms reg bn: the read-backs have every answer, numbers in Bangla digits" \
    eval 'cat "$tmp/s11" "$tmp/s11b" "$tmp/s11c" |
        jq -r "select(.mo == \"১২৩৪৫৬৭৮৯০\" or .mo == \"৪\" or .mo == \"৩\") | .text" |
        grep -c -e "লিঙ্গ: নারী" -e "জেলা: ফরিদপুর" -e "এনআইডি/পাসপোর্ট: \*\*\*\*\*\*\*890" -e "বিদেশ: সৌদি আরব" -e "বিদেশে কত বছর: ৫" -e "দক্ষতা: নির্মাণ শ্রমিক, ওয়েল্ডার, মেশিন অপারেটর" -e "সবচেয়ে দরকার: কাজের প্রশিক্ষণ" |
        grep -qx 7'
check "sms reg bn: no SMS to the caller carries the name or the NID" \
    eval '! cat "$tmp/s11" "$tmp/s11b" "$tmp/s11c" | jq -r .text | grep -q -e "রহিমা বেগম" -e 1234567890 -e ১২৩৪৫৬৭৮৯০'
sms_reg_landed "sms reg bn" "$m11" "$tmp/s11" "রহিমা বেগম" f bn \
    $((${#sms_bn[@]} + ${#sms_bn2[@]} + ${#sms_bn3[@]}))
# SKILL (and দক্ষতা) for the numbers just registered, after an officer
# verified them: the skills on the row change, one update_skills
# submission each.
sql "UPDATE returnees SET status = 'verified' WHERE msisdn IN ('$m10', '$m11')" >/dev/null
skills_of() { sql "SELECT status, array_to_string(skills, ' ') FROM returnees WHERE msisdn = '$1'"; }
sms_dialogue "$m10" "$tmp/s10k" "SKILL=>What work can you do?" \
    "1 15=>Skills: Mason, Hotel service" "1=>Your skills are updated"
check "sms skill en: SKILL, the skills, confirm -> updated" [ $? = 0 ]
check "sms skill en: the row has the new skills ($(skills_of "$m10"))" \
    [ "$(skills_of "$m10")" = "verified|mason hotel" ]
check "sms skill en: one update_skills submission" \
    [ "$(subs_of "$m10" update_skills | cut -d'|' -f1)" = 1 ]
n11=$(mt_last "$m11")
sms_dialogue "$m11" "$tmp/s11k" "দক্ষতা=>কী কাজ পারেন?" \
    "১ ৩=>দক্ষতা: রাজমিস্ত্রি, ইলেকট্রিশিয়ান" "১=>দক্ষতার তথ্য বদলানো হয়েছে"
check "sms skill bn: দক্ষতা, the skills in Bangla digits, confirm -> updated" [ $? = 0 ]
check "sms skill bn: data_coding 8 on every part" parts_ok "$m11" "$n11" 8
check "sms skill bn: the row has the new skills ($(skills_of "$m11"))" \
    [ "$(skills_of "$m11")" = "verified|mason electrician" ]
check "sms skill bn: one update_skills submission" \
    [ "$(subs_of "$m11" update_skills | cut -d'|' -f1)" = 1 ]

# ---- 5b. one number's parts across channels ------------------------------------

# The parts saved are the number's, not the channel's: part 1 over USSD
# through Kannel, then নিবন্ধন by SMS asks part 2's first question (not
# consent again), part 2 answered by SMS, and the next dial offers part 3
# of 3 over USSD; one row, its reference kept, one submission a part with
# the channel it came by.
m14=8801711000114
dial "$m14" 60 "$tmp/d14" "${bn_answers[@]}"
check "parts across channels: part 1 over USSD ran to its end" [ $? = 0 ]
ref14=$(tail -n 1 "$tmp/d14" | jq -r .text | ref_of)
# (its confirmation SMS first, so it is not read as an answer below)
poll 20 sms_at_least "$m14" 1
sms_dialogue "$m14" "$tmp/s14" "${sms_bn2[@]}"
check "parts across channels: নিবন্ধন by SMS asks part 2, not consent again; part 2 saved by SMS" [ $? = 0 ]
r14=$(ussd "$m14" 1 61 0 '*247#')
check "parts across channels: the next dial offers part 3 of 3 ($(jq -r .text <<<"$r14" | head -n 1))" \
    eval 'jq -r .text <<<"$r14" | grep -q "নিবন্ধনের ৩/৩ অংশ বাকি"'
subs14() { sql "SELECT string_agg(kind || '/' || channel, ' ' ORDER BY id) FROM submissions WHERE msisdn = '$m14'"; }
parts14() { sql "SELECT ref || '|' || array_to_string(parts_done, ' ') FROM returnees WHERE msisdn = '$m14'"; }
check "parts across channels: one submission a part, by the channel it came ($(subs14))" \
    [ "$(subs14)" = "register/ussd register_abroad/sms" ]
check "parts across channels: one row, the reference of part 1, parts 1 and 2 done ($(parts14))" \
    [ "$(parts14)" = "${ref14:-none}|register register_abroad" ]
