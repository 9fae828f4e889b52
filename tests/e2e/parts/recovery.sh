# tests/e2e/parts/recovery.sh -- sourced by tests/e2e/run.sh after
# sms.sh: dialogues that survive trouble (scenarios 6-9b): a call dropped
# and dialled again; remigate SIGKILLed mid-dialogue and around the
# confirming answer; bearerbox and smsbox restarted; the SMSC throttling,
# slow, dropping its binds; every USSD session cut by the operator at
# 90 s.  Uses en_answers (ussd.sh) and the probes of setup.sh.

# ---- 6. a dialogue dropped mid-way, resumed by a new dial ----------------------

# The caller stops answering after the name (the network drops the call:
# no more deliver_sm in that session); a new dial, with a new session
# number, soon after (within sessions.resume_window) goes straight back to
# the question after the name; going on ends in one row with the name
# given before the drop.
m8=8801711000108
STOP_AFTER=1 dial "$m8" 80 "$tmp/d8a" 2 1 1 "Jamal Hossain"
check "drop: dialogue under way (op 2 after the name)" \
    [ "$(tail -n 1 "$tmp/d8a" | jq -r .ussd_service_op)" = 2 ]
dial "$m8" 81 "$tmp/d8" 1 1990 "Dhaka" 1234567890
check "drop: the new dial ran to its end over SMPP" [ $? = 0 ]
check "drop: the new dial goes straight back to the question after the name" \
    grep -q "male or female" <<<"$(head -n 1 "$tmp/d8" | jq -r .text)"
check "drop: ussd_service_op 2 then 17, session info of the new session" \
    eval 'ops_ok "$tmp/d8" && sess_ok "$tmp/d8" 81'
ref8=$(tail -n 1 "$tmp/d8" | jq -r .text | ref_of)
poll 10 row_is "$m8" "pending|$ref8|Jamal Hossain|ussd|en"
check "drop: one pending row with the name given before the drop ($(row "$m8"))" \
    eval '[ "$(rows "$m8")" = 1 ] && row_is "$m8" "pending|$ref8|Jamal Hossain|ussd|en"'
m9=8801711000109
STOP_AFTER=1 dial "$m9" 90 "$tmp/d9" 2 1 1 "Jamal Hossain"
r=$(ussd "$m9" 1 91 0 '*247#')
r=$(ussd "$m9" 18 91 1 00)
check "drop: 00 after the new dial goes to the main menu, in the caller's language" \
    grep -q "What do you want to do" <<<"$(jq -r .text <<<"$r")"
check "drop: no row for the abandoned form" [ "$(rows "$m9")" = 0 ]

# ---- 7. remigate SIGKILLed mid-dialogue -----------------------------------------

# kill_remigate: SIGKILL to remigate and its workers, as in a crash; true
# once it is gone (the shell's "Killed" notice is kept out of the output)
kill_remigate()
{
    local victims
    victims=$(family "$rg_pid")
    exec 3>&2 2>/dev/null
    # shellcheck disable=SC2086
    kill -KILL $victims
    poll 10 gone
    wait "$rg_pid"
    exec 2>&3 3>&-
    gone
}
gone() { ! alive "$rg_pid" && [ "$(code "$base/healthz")" = 000 ]; }

m5=8801711000105
STOP_AFTER=1 dial "$m5" 66 "$tmp/d5" 2 1 1 "Selim Khan"
check "kill: dialogue under way (op 2 after the name)" \
    [ "$(tail -n 1 "$tmp/d5" | jq -r .ussd_service_op)" = 2 ]
check "kill: remigate gone after SIGKILL" kill_remigate
check "kill: no half row" [ "$(rows "$m5")" = 0 ]
start_remigate
check "kill: remigate started again" [ "$(code "$base/healthz")" = 200 ]
r=$(ussd "$m5" 18 66 $((DIAL_SEQ + 1)) 1)
check "kill: the caller's next answer in the same dialogue carries on (sex -> birth year)" \
    grep -q "year were you born" <<<"$(jq -r .text <<<"$r")"
r=$(ussd "$m5" 1 67 0 '*247#')
check "kill: a new dial goes straight back to the question where it stopped (birth year)" \
    grep -q "year were you born" <<<"$(jq -r .text <<<"$r")"
check "kill: still no row for the unfinished form" [ "$(rows "$m5")" = 0 ]

# remigate SIGKILLed around the moment the caller confirms, at several
# delays after the confirming deliver_sm leaves the SMSC (the HTTP request
# reaches remigate some 15-60 ms later): whatever the moment, the returnee
# row and its submission are both there or both absent, and after a
# restart the caller ends with exactly one of each.
subs() { sql "SELECT count(*) FROM submissions WHERE msisdn = '$1'"; }
both_one() { [ "$(rows "$1")$(subs "$1")" = 11 ]; }
k=0 torn=0 lost=0 landed=0 resumed=0
for delay in 0.005 0.02 0.04 0.06 0.1; do
    k=$((k + 1))
    mk=88017110002$((10 + k))
    HOLD_CONFIRM=1 dial "$mk" $((100 + k)) "$tmp/dk$k" "${en_answers[@]}" ||
        { lost=$((lost + 1)); continue; }
    ussd "$mk" 18 $((100 + k)) $((DIAL_SEQ + 1)) 1 >"$tmp/dk$k.last" &
    curl_pid=$!
    pause "$delay"
    kill_remigate || lost=$((lost + 1))
    wait "$curl_pid"
    start_remigate || bail "remigate did not start again after SIGKILL" "$tmp/remigate.log"
    # a smsbox that panicked at the kill is started again by its supervisor
    poll 30 sb_up && poll 30 sendsms_up ||
        bail "smsbox not on-line again after the kill" "$tmp/smsbox.stderr" "$tmp/supervise.log"
    # a completion taken before the kill may still be in the record queue
    poll 5 both_one "$mk"
    case $(rows "$mk")$(subs "$mk") in
    11) landed=$((landed + 1)) ;;
    00)
        # the caller dials again and confirms what the form still holds
        dial "$mk" $((110 + k)) "$tmp/dk$k.again" 1 >/dev/null
        poll 10 both_one "$mk"
        resumed=$((resumed + 1))
        ;;
    *) torn=$((torn + 1)) ;;
    esac
    [ "$(rows "$mk")$(subs "$mk")" = 11 ] &&
        [ "$(sql "SELECT status FROM returnees WHERE msisdn = '$mk'")|$(pname "$mk")" = "pending|Karim Uddin" ] ||
        lost=$((lost + 1))
done
say "killed at confirmation: $landed landed before the kill, $resumed finished by dialling again; smsbox started again $(grep -c 'started again' "$tmp/supervise.log" 2>/dev/null) time(s) by its supervisor"
check "kill at confirmation: never a returnee without its submission or the other way round" \
    [ $torn = 0 ]
check "kill at confirmation: each of the 5 callers ends with exactly one pending row and one submission" \
    [ $lost = 0 ]

# ---- 8. bearerbox restarted mid-dialogue --------------------------------------

m6=8801711000106
STOP_AFTER=1 dial "$m6" 70 "$tmp/d6" 2 1 1 "Nasrin Akter"
check "bearerbox: dialogue under way" \
    [ "$(tail -n 1 "$tmp/d6" | jq -r .ussd_service_op)" = 2 ]
stop_pids "$sb_pid" "$bb_pid"
"$BEARERBOX" -v 2 "$tmp/kannel.conf" >>"$tmp/bearerbox.stderr" 2>&1 &
bb_pid=$!
pids+=("$bb_pid")
poll 30 bb_up
start_smsbox
poll 30 sb_up && poll 30 sendsms_up
check "bearerbox: restarted, both binds again" poll 30 binds_up
r=$(ussd "$m6" 18 70 5 2)
check "bearerbox: the caller's next answer goes on (sex -> birth year)" \
    grep -q "year were you born" <<<"$(jq -r .text <<<"$r")"
m7=8801711000107
dial "$m7" 72 "$tmp/d7" 2 1 1 "Nasrin Akter" 2 1985 "Dhaka" 1234567890 >/dev/null
check "bearerbox: ... and a whole registration after it ends with a pending row" \
    [ "$(rows "$m7")" = 1 ]

# ---- 9. the SMSC misbehaving, through Kannel ----------------------------------

# ESME_RTHROTTLED on a reply: bearerbox sends it again after
# sms-resend-freq (2 s here) and the caller gets the screen.
m12=8801711000112
faults '{"throttle_next_n": 1}'
r=$(ussd "$m12" 1 120 0 '*247#')
check "throttled: the first screen reaches the caller after ESME_RTHROTTLED (HTTP $(st))" \
    eval '[ "$(st)" = 200 ] && [ "$(jq -r .ussd_service_op <<<"$r")" = 2 ]'
throttled()
{
    curl -s --max-time 5 "$ctl/pdus" | jq --arg m "$m12" \
        '[.[] | select(.command == "submit_sm" and .throttled and .destination_addr == $m)] | length'
}
check "throttled: the simulator refused that reply once ($(throttled))" [ "$(throttled)" = 1 ]
# a slow SMSC: each submit_sm_resp 1.2 s late; the screen still arrives
faults '{"delay_ms": 1200}'
t0=$(date +%s%N)
r=$(ussd "$m12" 18 120 1 2)
t1=$(date +%s%N)
faults '{"delay_ms": 0}'
ms=$(((t1 - t0) / 1000000))
check "slow SMSC: 2 (English) -> the main menu, after >= 1.2 s (HTTP $(st) in $ms ms)" \
    eval '[ "$(st):$((ms >= 1200))" = 200:1 ] && grep -q "What do you want to do" <<<"$(jq -r .text <<<"$r")"'
# the SMSC drops both binds mid-dialogue: bearerbox binds again and the
# caller's next answer goes on
dropped=$(curl -s --max-time 5 -H 'Content-Type: application/json' \
    -d '{"drop_bind": true}' "$ctl/faults" | jq -r .dropped)
check "dropped binds: the simulator closed both ($dropped)" [ "$dropped" = 2 ]
check "dropped binds: bearerbox binds both again" poll 30 binds_up
r=$(ussd "$m12" 18 120 2 1)
check "dropped binds: the caller's next answer goes on (Register -> consent)" \
    grep -q "I agree" <<<"$(jq -r .text <<<"$r")"
sendsms_wrong=$(code "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms?username=$SENDSMS_USER&password=wrong&to=$m12&text=x")
check "sendsms with a wrong password refused ($sendsms_wrong)" [ "$sendsms_wrong" = 403 ]

# ---- 9b. every session cut by the operator at 90 s ------------------------------

# The operator ends each USSD dialogue 90 s after it began (what the
# regulator's pricing counts as one session).  The simulator keeps a clock
# of simulated time per dialogue: each answer adds what a caller takes to
# read the screen and type it -- a menu 6 s, a number 10 s, a name 30 s,
# first letters 8 s, a read-back page 6 s, the skills list 30 s (the
# clock of check-flows) -- and a 1 s round trip; an answer past 90 s never
# reaches Kannel.  A Bangla returnee registers through as many dials as
# that takes, answering each screen by what it asks: every question is
# answered once (none comes back after it was answered), and the end is
# one pending row, one reference, all three parts.
faults '{"session_limit_ms": 90000, "round_trip_ms": 1000}'
m13=8801711000113
# cut_plan SCREEN: "KEY|ANSWER|THINK_MS" for what the screen asks (KEY "-"
# for a screen that is not a question: the read-back, the next-part offer)
cut_plan()
{
    case $1 in
    *"ভাষা বেছে নিন"*) echo "lang|1|6000" ;;
    *"কী করতে চান"*) echo "home|1|6000" ;;
    *"সরকার তথ্য রাখবে"*) echo "consent|1|6000" ;;
    *"পুরো নাম"*) echo "name|রহিমা বেগম|30000" ;;
    *"পুরুষ না নারী"*) echo "sex|2|6000" ;;
    *"জন্ম কোন সালে"*) echo "birth_year|১৯৯০|10000" ;;
    *"কোন জেলায় থাকেন"*) echo "district|চট্ট|8000" ;;
    *"পাসপোর্ট নম্বর লিখুন"*) echo "id|১২৩৪৫৬৭৮৯০|10000" ;;
    *"অংশ বাকি"*) echo "-|1|6000" ;;
    *"কোন দেশ থেকে"*) echo "country|সৌদি|8000" ;;
    *"বিদেশে কত বছর?"*) echo "years|৫|10000" ;;
    *"কোন সালে দেশে ফিরেছেন"*) echo "return_year|২০২৪|10000" ;;
    *"কেন দেশে ফিরেছেন"*) echo "reason|1|6000" ;;
    *"পড়াশোনা করেছেন"*) echo "education|4|6000" ;;
    *"কী কাজ পারেন"*) echo "skills|২ ৫ ৯|30000" ;;
    *"এখন কী সবচেয়ে দরকার"*) echo "need|3|6000" ;;
    *"৯৮."*) echo "-|98|6000" ;;
    *"ঠিক আছে"*) echo "-|1|6000" ;;
    *) echo "?" ;;
    esac
}
declare -A answered=()
c_sess=130 c_seq=0 c_dials=1 c_cuts=0 c_steps=0 c_twice= c_lost= c_ref= c_done=0
r=$(ussd "$m13" 1 $c_sess 0 '*247#')
while [ $c_steps -lt 80 ] && [ "$(st)" = 200 ]; do
    c_steps=$((c_steps + 1))
    text=$(jq -r .text <<<"$r")
    if [ "$(jq -r .ussd_service_op <<<"$r")" = 17 ]; then
        # a part saved (or the last): the next part is a new dial
        [ -z "$c_ref" ] && c_ref=$(ref_of <<<"$text")
        if grep -q "নিবন্ধন সম্পূর্ণ" <<<"$text"; then c_done=1; break; fi
        c_sess=$((c_sess + 1)) c_seq=0 c_dials=$((c_dials + 1))
        r=$(ussd "$m13" 1 $c_sess 0 '*247#')
        continue
    fi
    plan=$(cut_plan "$text")
    [ "$plan" = "?" ] && { c_lost="an unexpected screen: $text"; break; }
    key=${plan%%|*} rest=${plan#*|}
    a=${rest%|*} think=${rest##*|}
    if [ "$key" != - ] && [ -n "${answered[$key]:-}" ]; then
        c_twice="$c_twice $key"
    fi
    c_seq=$((c_seq + 1))
    r=$(ussd "$m13" 18 $c_sess $c_seq "$a" "$think")
    if [ "$(jq -r '.cut // false' <<<"$r")" = true ]; then
        # cut: the phone shows the operator's notice; the caller dials again
        c_cuts=$((c_cuts + 1)) c_sess=$((c_sess + 1)) c_seq=0
        c_dials=$((c_dials + 1))
        r=$(ussd "$m13" 1 $c_sess 0 '*247#')
        continue
    fi
    [ "$key" != - ] && answered[$key]=1
done
faults '{"session_limit_ms": 0, "round_trip_ms": 0}'
say "cut at 90 s: $c_dials dials, $c_cuts cut by the operator, ${#answered[@]} questions answered"
check "cut at 90 s: the registration completed across sessions (${c_lost:-done})" \
    [ "$c_done:${c_lost:-}" = 1: ]
check "cut at 90 s: the operator cut at least one session ($c_cuts of $c_dials dials)" \
    [ "$c_cuts" -ge 1 ]
check "cut at 90 s: no question asked again once answered${c_twice:+ (asked again:$c_twice)}" \
    [ -z "$c_twice" ]
check "cut at 90 s: every one of the 15 questions answered" [ "${#answered[@]}" = 15 ]
cut_row() { with_name "$m13" "SELECT status, ref, district, country, array_to_string(skills, ' '), need, array_to_string(parts_done, ' ') FROM returnees WHERE msisdn = '$m13' AND name IS NULL"; }
poll 10 eval '[ "$(cut_row)" = "pending|$c_ref|রহিমা বেগম|BD-10|SA|construction welder machine|training|register register_abroad register_skills" ]'
check "cut at 90 s: one pending row with every part and the reference shown ($(cut_row))" \
    eval '[ "$(rows "$m13")" = 1 ] && [ "$(cut_row)" = "pending|$c_ref|রহিমা বেগম|BD-10|SA|construction welder machine|training|register register_abroad register_skills" ]'
check "cut at 90 s: one reference: part 1 submitted once, under it, and one submission a part" \
    [ "$(sql "SELECT string_agg(kind || '/' || (ref = '$c_ref')::text, ' ' ORDER BY id) FROM submissions WHERE msisdn = '$m13'")" = "register/true register_abroad/false register_skills/false" ]
check "cut at 90 s: one confirmation SMS, with the reference" \
    eval 'confirmation_ok "$m13" "${c_ref:-none}" 8 && [ "$(sms_count "$m13")" = 1 ]'
