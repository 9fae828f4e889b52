#!/usr/bin/env bash
# tests/e2e/kannel-smoke.sh -- check config/kannel/kannel.conf.in against the
# real Kannel 1.4.5 (bearerbox + smsbox) and the SMSC simulator, with a
# fixed HTTP responder (fake-remigate.js) in remigate's place.
#
# On free loopback ports, in a temporary directory: starts smsc-sim.js and
# fake-remigate.js, renders the config with scripts/kannel-config, starts
# bearerbox and smsbox, waits for both SMPP binds, then checks:
#   - a USSD start is answered on the USSD bind with service_type USSD,
#     ussd_service_op 2, its_session_info echoed, data_coding 0;
#   - the answer gets the Bangla end screen: ussd_service_op 17, end bit
#     set, data_coding 8, at most 80 UCS-2 characters decoding back to the
#     same text, no UDH;
#   - Kannel passed the shared key and the TLV bytes to the responder;
#   - sendsms (GET, credentials) sends Bangla on the SMS bind with
#     data_coding 8, and the delivery report reaches /kannel/dlr;
#   - sendsms with wrong credentials is refused;
#   - no message text in any Kannel log (access log, box and SMSC logs).
# Prints "kannel: N passed, N failed"; exit status 0 only when all passed.
# Stops everything it started (by PID) and removes the temporary directory
# (KANNEL_SMOKE_KEEP=1 keeps it and prints where).  KANNEL_TEMPLATE names
# another template to check instead of config/kannel/kannel.conf.in.
#
# Needs: node, /usr/sbin/bearerbox, /usr/sbin/smsbox (scripts/deps), and
# tests/e2e/node_modules (installed here with `npm ci` when missing).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BEARERBOX=${BEARERBOX:-/usr/sbin/bearerbox}
SMSBOX=${SMSBOX:-/usr/sbin/smsbox}

passed=0 failed=0
pids=()
tmp=

ok()
{
    passed=$((passed + 1))
    echo "ok   - $*"
}

not_ok()
{
    failed=$((failed + 1))
    echo "FAIL - $*"
}

# check NAME COMMAND...: one assertion.
check()
{
    local name=$1
    shift
    if "$@"; then
        ok "$name"
    else
        not_ok "$name"
    fi
}

summary()
{
    echo "kannel: $passed passed, $failed failed"
}

stop_all()
{
    local i pid deadline
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill -TERM "$pid" 2>/dev/null || continue
        deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            wait_a_little
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    pids=()
}

cleanup()
{
    stop_all
    if [ -n "$tmp" ] && [ -d "$tmp" ]; then
        if [ "${KANNEL_SMOKE_KEEP:-0}" = 1 ]; then
            echo "# kept $tmp"
        else
            rm -rf "$tmp"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A short pause between polls: `read -t` on a pipe nobody writes to, so
# there is no sleep process to leave behind.
wait_a_little()
{
    read -r -t 0.1 <> <(:) 2>/dev/null || true
}

# bail MESSAGE: a failure that stops the run (counted as one failure).
bail()
{
    not_ok "$*"
    summary
    exit 1
}

show_tail()
{
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "# --- last lines of ${f#"$tmp"/}"
        tail -n 25 "$f" | sed 's/^/#   /'
    done
}

# http METHOD URL [JSON]: prints the body; the status goes to $tmp/status.
http()
{
    node -e '
const [method, url, body] = process.argv.slice(1);
const u = new URL(url);
const req = require("http").request({host: u.hostname, port: u.port,
    path: u.pathname + u.search, method,
    headers: body ? {"Content-Type": "application/json"} : {}}, (res) => {
  const c = [];
  res.on("data", (d) => c.push(d));
  res.on("end", () => {
    require("fs").writeFileSync(process.env.STATUS_FILE,
        String(res.statusCode));
    process.stdout.write(Buffer.concat(c));
  });
});
req.on("error", (e) => {
  require("fs").writeFileSync(process.env.STATUS_FILE, "000");
  process.stderr.write(e.message + "\n");
});
req.setTimeout(30000, () => req.destroy(new Error("timeout")));
if (body) req.write(body);
req.end();' "$@"
}

status()
{
    cat "$tmp/status" 2>/dev/null
}

# js JSON EXPR [ARG...]: evaluates EXPR with `j` bound to the parsed JSON
# (ARGs are process.argv[3...]); prints the result (strings raw, others as
# JSON).
js()
{
    node -e '
const j = JSON.parse(process.argv[1]);
const v = eval(process.argv[2]);
process.stdout.write(typeof v === "string" ? v : JSON.stringify(v));' \
        "$@"
}

# poll SECONDS COMMAND...: runs COMMAND until it succeeds or time runs out.
poll()
{
    local deadline=$((SECONDS + $1))
    shift
    while ! "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        wait_a_little
    done
}

alive()
{
    kill -0 "$1" 2>/dev/null
}

# ---- prerequisites ----------------------------------------------------------

command -v node >/dev/null 2>&1 || bail "node is not installed (scripts/deps)"
for b in "$BEARERBOX" "$SMSBOX"; do
    [ -x "$b" ] || bail "$b is missing (scripts/deps installs kannel)"
done
if [ ! -d "$here/node_modules/smpp" ]; then
    echo "# installing tests/e2e/node_modules (npm ci)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
        bail "npm ci failed in tests/e2e"
fi

tmp=$(mktemp -d /tmp/remigate-kannel.XXXXXX) || bail "mktemp failed"
export STATUS_FILE=$tmp/status

# Six free loopback ports, held open together so they differ.
read -r SMSC_PORT CONTROL_PORT ADMIN_PORT SMSBOX_PORT SENDSMS_PORT FAKE_PORT \
    < <(node -e '
const net = require("net");
const ss = [], ports = [];
let n = 6;
for (let i = 0; i < 6; i++) {
  const s = net.createServer();
  ss.push(s);
  s.listen(0, "127.0.0.1", () => {
    ports.push(s.address().port);
    if (--n === 0) {
      console.log(ports.join(" "));
      ss.forEach((x) => x.close());
    }
  });
}') || bail "could not find free ports"
[ -n "$FAKE_PORT" ] || bail "could not find free ports"

export SMSC_PORT CONTROL_PORT ADMIN_PORT SMSBOX_PORT SENDSMS_PORT FAKE_PORT
export RUN_DIR=$tmp/run
export REMIGATE_URL=http://127.0.0.1:$FAKE_PORT
export KANNEL_SECRET=smoke-$RANDOM$RANDOM-key-$RANDOM$RANDOM
export SENDSMS_USER=remigate SENDSMS_PASS=s$RANDOM$RANDOM
export ADMIN_PASS=a$RANDOM$RANDOM
export SHORT_CODE=16247
# Resend throttled MTs after 2 s instead of 30 (the throttling check below).
export SMS_RESEND_FREQ=2
export USSD_SYSID=ussdbind USSD_PW=u$RANDOM SMS_SYSID=smsbind SMS_PW=s$RANDOM
ctl=http://127.0.0.1:$CONTROL_PORT
fake=http://127.0.0.1:$FAKE_PORT

# ---- simulator and stand-in ---------------------------------------------

node "$here/smsc-sim.js" >"$tmp/sim.log" 2>&1 &
pids+=($!)
sim_pid=$!
node "$here/fake-remigate.js" >"$tmp/fake.log" 2>&1 &
pids+=($!)
fake_pid=$!

sim_up()
{
    alive "$sim_pid" && http GET "$ctl/health" >/dev/null 2>&1 &&
        [ "$(status)" = 200 ]
}
fake_up()
{
    alive "$fake_pid" && http GET "$fake/health" >/dev/null 2>&1 &&
        [ "$(status)" = 200 ]
}
poll 15 sim_up || { show_tail "$tmp/sim.log"; bail "smsc-sim.js did not start"; }
poll 15 fake_up || {
    show_tail "$tmp/fake.log"
    bail "fake-remigate.js did not start"
}

# ---- Kannel -------------------------------------------------------------

conf=$tmp/kannel.conf
"$root/scripts/kannel-config" "$conf" ${KANNEL_TEMPLATE:+"$KANNEL_TEMPLATE"} \
    >"$tmp/render.log" 2>&1 || {
    show_tail "$tmp/render.log"
    bail "scripts/kannel-config failed"
}
ok "scripts/kannel-config renders the template"

"$BEARERBOX" -v 2 "$conf" >"$tmp/bearerbox.stderr" 2>&1 &
pids+=($!)
bb_pid=$!

bb_up()
{
    alive "$bb_pid" &&
        http GET "http://127.0.0.1:$ADMIN_PORT/status.txt?password=$ADMIN_PASS" \
            >/dev/null 2>&1 && [ "$(status)" = 200 ]
}
if ! poll 30 bb_up; then
    if alive "$bb_pid"; then
        echo "# bearerbox is running but its admin port does not answer"
    else
        wait "$bb_pid"
        echo "# bearerbox exited with status $?"
    fi
    show_tail "$tmp/bearerbox.stderr" "$RUN_DIR/bearerbox.log"
    bail "bearerbox did not start"
fi

"$SMSBOX" -v 2 "$conf" >"$tmp/smsbox.stderr" 2>&1 &
pids+=($!)
sb_pid=$!

sb_up()
{
    alive "$sb_pid" &&
        http GET "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms" \
            >/dev/null 2>&1 && [ "$(status)" != 000 ]
}
if ! poll 30 sb_up; then
    alive "$sb_pid" || echo "# smsbox exited"
    show_tail "$tmp/smsbox.stderr" "$RUN_DIR/smsbox.log"
    bail "smsbox did not start"
fi

binds_up()
{
    local h
    h=$(http GET "$ctl/health" 2>/dev/null) || return 1
    [ "$(js "$h" 'j.ussd_binds >= 1 && j.sms_binds >= 1')" = true ]
}
if ! poll 30 binds_up; then
    echo "# simulator: $(http GET "$ctl/health")"
    show_tail "$RUN_DIR/smsc-ussd.log" "$RUN_DIR/smsc-sms.log" \
        "$RUN_DIR/bearerbox.log"
    bail "bearerbox did not bind both SMPP connections"
fi
ok "bearerbox and smsbox up, USSD and SMS binds bound"

# Kannel smsbox connects to bearerbox after it starts listening for sendsms;
# wait until bearerbox lists the box.
box_up()
{
    local s
    s=$(http GET "http://127.0.0.1:$ADMIN_PORT/status.txt?password=$ADMIN_PASS" \
        2>/dev/null) || return 1
    grep -qE '^[[:space:]]*smsbox:.*\(on-line' <<<"$s"
}
if ! poll 30 box_up; then
    show_tail "$RUN_DIR/smsbox.log" "$tmp/smsbox.stderr"
    bail "smsbox did not connect to bearerbox"
fi

# ---- USSD: start -> continue screen -------------------------------------

msisdn=8801711000001
r=$(http POST "$ctl/ussd" \
    "{\"msisdn\":\"$msisdn\",\"text\":\"*247#\",\"op\":1,\"session\":42,\"seq\":0}")
st=$(status)
if [ "$st" != 200 ]; then
    not_ok "USSD start answered (HTTP $st: $r)"
    show_tail "$RUN_DIR/smsbox.log" "$RUN_DIR/bearerbox.log"
else
    check "USSD start: service_type USSD" [ "$(js "$r" j.service_type)" = USSD ]
    check "USSD start: ussd_service_op 2" [ "$(js "$r" j.ussd_service_op)" = 2 ]
    check "USSD start: its_session_info echoed (2a00)" \
        [ "$(js "$r" j.its_session_info)" = 2a00 ]
    check "USSD start: data_coding 0" [ "$(js "$r" j.data_coding)" = 0 ]
    check "USSD start: screen text" \
        [ "$(js "$r" 'JSON.stringify(j.text)')" = '"Welcome\n1. Jobs\n2. Remittance"' ]
    check "USSD start: no UDH" [ "$(js "$r" j.has_udh)" = false ]
fi

# What Kannel sent to the responder for that MO.
reqs=$(http GET "$fake/requests")
check "MO request carries the shared key" \
    [ "$(js "$reqs" "j.filter(x => x.path === '/kannel/mo' && x.params.key === process.env.KANNEL_SECRET).length >= 1")" = true ]
check "MO request: op byte 01, sess bytes 2a00, smsc ussd" \
    [ "$(js "$reqs" "(x => x.bytes.op + ' ' + x.bytes.sess + ' ' + x.params.smsc)(j.filter(x => x.path === '/kannel/mo')[0])")" = "01 2a00 ussd" ]

# ---- USSD: answer -> Bangla end screen ------------------------------------

bn='ধন্যবাদ। আপনার অনুরোধ গ্রহণ করা হয়েছে। শীঘ্রই একটি এসএমএস পাবেন। আবার আসবেন।'
r=$(http POST "$ctl/ussd" \
    "{\"msisdn\":\"$msisdn\",\"text\":\"1\",\"op\":18,\"session\":42,\"seq\":1}")
st=$(status)
if [ "$st" != 200 ]; then
    not_ok "USSD answer answered (HTTP $st: $r)"
    show_tail "$RUN_DIR/smsbox.log" "$RUN_DIR/bearerbox.log"
else
    check "USSD end: ussd_service_op 17" [ "$(js "$r" j.ussd_service_op)" = 17 ]
    check "USSD end: end bit set (2a03)" [ "$(js "$r" j.its_session_info)" = 2a03 ]
    check "USSD end: data_coding 8" [ "$(js "$r" j.data_coding)" = 8 ]
    check "USSD end: Bangla text intact" [ "$(js "$r" j.text)" = "$bn" ]
    check "USSD end: more than 70 and at most 80 UCS-2 characters" \
        [ "$(js "$r" 'j.sm_length > 140 && j.sm_length <= 160')" = true ]
    check "USSD end: no UDH, esm_class 0" \
        [ "$(js "$r" '!j.has_udh && j.esm_class === 0')" = true ]
fi
reqs=$(http GET "$fake/requests")
check "USSD answer MO: op byte 12, sess bytes 2a02, to *247#, text 1" \
    [ "$(js "$reqs" "(x => x.bytes.op + ' ' + x.bytes.sess + ' ' + x.params.to + ' ' + x.params.text)(j.filter(x => x.path === '/kannel/mo')[1])")" = "12 2a02 *247# 1" ]

# ---- SMS: sendsms -> submit_sm on the SMS bind, DLR -----------------------

sms_to=8801711000003
enc()
{
    node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' "$1"
}
dlr_url=$(enc "$fake/kannel/dlr?tag=smoke1&type=%d&smsc=%i&fid=%F")
sms_bn='আপনার নিবন্ধন নম্বর RG-1234'
q="username=$SENDSMS_USER&password=$SENDSMS_PASS&smsc=sms&from=$SHORT_CODE"
q="$q&to=%2B$sms_to&text=$(enc "$sms_bn")&coding=2&charset=UTF-8"
q="$q&dlr-mask=3&dlr-url=$dlr_url"
body=$(http GET "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms?$q")
check "sendsms accepted (202, got $(status): $body)" [ "$(status)" = 202 ]

mt=$(http GET "$ctl/mt?msisdn=$sms_to&wait=10000")
check "sendsms: one submit_sm on the SMS bind" \
    [ "$(js "$mt" "j.length === 1 && j[0].bind === process.env.SMS_SYSID")" = true ]
check "sendsms: data_coding 8, Bangla intact, no TLVs" \
    [ "$(js "$mt" "j.length === 1 && j[0].data_coding === 8 && j[0].text === process.argv[3] && Object.keys(j[0].tlvs).length === 0" "$sms_bn")" = true ]

dlr_seen()
{
    local q
    q=$(http GET "$fake/requests" 2>/dev/null) || return 1
    [ "$(js "$q" "j.some(x => x.path === '/kannel/dlr' && x.params.tag === 'smoke1' && x.params.type === '1' && x.params.smsc === 'sms')")" = true ]
}
if poll 15 dlr_seen; then
    ok "delivery report (type 1) reached /kannel/dlr"
else
    not_ok "delivery report (type 1) reached /kannel/dlr"
    show_tail "$RUN_DIR/bearerbox.log" "$RUN_DIR/smsc-sms.log"
fi

q="username=$SENDSMS_USER&password=wrong&smsc=sms&to=$sms_to&text=x"
http GET "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms?$q" >/dev/null
check "sendsms with a wrong password refused (403)" [ "$(status)" = 403 ]

# ---- SMS MO: reaches remigate, Kannel sends nothing by itself -----------

r=$(http POST "$ctl/sms" "{\"msisdn\":\"8801711000005\",\"to\":\"$SHORT_CODE\",\"text\":\"REG\"}")
check "SMS MO accepted by Kannel (got $(status): $r)" [ "$(status)" = 200 ]
sms_mo_seen()
{
    local q
    q=$(http GET "$fake/requests" 2>/dev/null) || return 1
    [ "$(js "$q" "j.some(x => x.path === '/kannel/mo' && x.params.smsc === 'sms' && x.params.text === 'REG' && x.params.from === '+8801711000005' && x.params.key === process.env.KANNEL_SECRET)")" = true ]
}
check "SMS MO reached /kannel/mo (smsc sms, text, from, key)" poll 10 sms_mo_seen
mt=$(http GET "$ctl/mt?msisdn=8801711000005&wait=1500")
check "SMS MO: no automatic reply (max-messages = 0)" [ "$mt" = "[]" ]

# ---- UCS-2 MO: mo-recode gives remigate UTF-8 ------------------------------

r=$(http POST "$ctl/ussd" \
    '{"msisdn":"8801711000002","text":"হ্যাঁ ১","op":1,"session":7}')
check "UCS-2 USSD MO answered (got $(status))" [ "$(status)" = 200 ]
check "UCS-2 USSD MO: reply echoes session 07" \
    [ "$(js "$r" j.its_session_info)" = 0700 ]
reqs=$(http GET "$fake/requests")
check "UCS-2 USSD MO reached remigate as UTF-8 (coding 0, charset UTF-8)" \
    [ "$(js "$reqs" "(x => x !== undefined && x.params.text === 'হ্যাঁ ১' && x.params.coding === '0' && x.params.charset === 'UTF-8')(j.filter(x => x.params.from === '+8801711000002')[0])")" = true ]

# ---- simulator faults, through Kannel --------------------------------------

http POST "$ctl/faults" '{"duplicate_next_deliver":true}' >/dev/null
r=$(http POST "$ctl/ussd" \
    '{"msisdn":"8801711000004","text":"*247#","op":1,"session":8}')
check "duplicated deliver_sm: first copy answered (got $(status))" \
    [ "$(status)" = 200 ]
two_mos()
{
    local q
    q=$(http GET "$fake/requests" 2>/dev/null) || return 1
    [ "$(js "$q" "j.filter(x => x.path === '/kannel/mo' && x.params.from === '+8801711000004').length")" = 2 ]
}
check "duplicated deliver_sm: Kannel passes both copies on" poll 10 two_mos

http POST "$ctl/faults" '{"throttle_next_n":1}' >/dev/null
r=$(http POST "$ctl/ussd" \
    '{"msisdn":"8801711000006","text":"*247#","op":1,"session":9,"timeout":15000}')
check "ESME_RTHROTTLED: Kannel resends, answer arrives (got $(status))" \
    [ "$(status)" = 200 ]
pdus=$(http GET "$ctl/pdus")
check "ESME_RTHROTTLED: the throttled submit_sm is recorded" \
    [ "$(js "$pdus" "j.filter(x => x.command === 'submit_sm' && x.throttled && x.destination_addr === '8801711000006').length")" = 1 ]

http POST "$ctl/faults" '{"delay_ms":1200}' >/dev/null
t0=$(date +%s%N)
r=$(http POST "$ctl/ussd" \
    '{"msisdn":"8801711000007","text":"*247#","op":1,"session":10}')
t1=$(date +%s%N)
http POST "$ctl/faults" '{"delay_ms":0}' >/dev/null
ms=$(((t1 - t0) / 1000000))
check "delayed submit_sm_resp: answered after >= 1.2 s (got $(status) in $ms ms)" \
    [ "$(status):$((ms >= 1200))" = 200:1 ]

r=$(http POST "$ctl/faults" '{"drop_bind":true}')
check "drop_bind closes both binds" [ "$(js "$r" j.dropped)" = 2 ]
if poll 30 binds_up; then
    ok "bearerbox binds again after the drop"
    r=$(http POST "$ctl/ussd" \
        '{"msisdn":"8801711000008","text":"*247#","op":1,"session":11}')
    check "USSD works after the rebind (got $(status))" [ "$(status)" = 200 ]
else
    not_ok "bearerbox binds again after the drop"
fi

r=$(http POST "$ctl/reset" '{}')
pdus=$(http GET "$ctl/pdus")
check "reset clears the PDU record" [ "$(js "$pdus" j.length)" = 0 ]

# ---- logs -------------------------------------------------------------------

# Stop Kannel first so the logs are flushed and closed.
stop_all
alog=$RUN_DIR/access.log
check "access log written" [ -s "$alog" ]
check "access log: MO, MT and DLR lines, each with the length field" \
    [ "$(grep -cE ' (Receive|Sent) (SMS|DLR) .*\[len:[0-9]+\]' "$alog")" -ge 6 ]
leaked=
for f in "$RUN_DIR"/*.log "$tmp"/bearerbox.stderr "$tmp"/smsbox.stderr; do
    for t in 'Welcome' 'Remittance' 'RG-1234' 'ধন্যবাদ' 'নিবন্ধন' \
        'Starting to service'; do
        if grep -qF -- "$t" "$f"; then
            leaked="$leaked ${f##*/}:$t"
        fi
    done
done
check "no message text in Kannel's logs${leaked:+ (found:$leaked)}" \
    [ -z "$leaked" ]

summary
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
