# tests/e2e/parts/setup.sh -- sourced by tests/e2e/run.sh: the
# prerequisites (remigate built when missing), Redis and PostgreSQL, the
# database migrated and the key made, then the simulator, remigate
# (start_remigate), bearerbox and smsbox (start_smsbox, under
# scripts/supervise) with both SMPP binds bound.  Leaves $tmp, $bin,
# $conf, $ctl, $base, the ports and the PIDs ($sim_pid, $rg_pid, $bb_pid,
# $sb_pid) and the probes the scenarios use again after a restart: bb_up,
# sb_up, sendsms_up, binds_up and status_txt.

# ---- prerequisites -------------------------------------------------------

e2e_prereqs
if [ ! -x "$bin" ]; then
    say "building ${bin#"$root"/}"
    make --no-print-directory SAN="${SAN:-0}" "${bin#"$root"/}" \
        >/tmp/remigate-e2e-build.$$.log 2>&1
    [ -x "$bin" ] || {
        tail -n 20 /tmp/remigate-e2e-build.$$.log | sed 's/^/#   /'
        rm -f /tmp/remigate-e2e-build.$$.log
        bail "$bin is missing and make did not build it"
    }
    rm -f /tmp/remigate-e2e-build.$$.log
fi

# ---- servers, remigate config, migrate, keygen -----------------------------

e2e_servers
[ "$(sql 'SELECT count(*) FROM returnees')" = 0 ] ||
    bail "no returnees table after migrate" "$tmp/migrate.log" "$tmp/psql.err"
ok "Redis and PostgreSQL up, database migrated, key made"

# ---- ports, Kannel settings, simulator -------------------------------------

e2e_kannel_env 2 # Kannel resends a refused submit_sm after 2 s (test 9)
e2e_sim_start

# ---- remigate --------------------------------------------------------------

start_remigate()
{
    "$bin" -c "$conf" --workers 1 --port "$RG_PORT" --redis-port "$REDIS_PORT" \
        "${rg_kannel_flags[@]}" </dev/null >>"$tmp/remigate.log" 2>&1 &
    rg_pid=$!
    pids+=("$rg_pid")
    rg_up() { alive "$rg_pid" && [ "$(code "$base/healthz")" = 200 ]; }
    poll 20 rg_up
}
start_remigate || bail "remigate did not answer /healthz 200 within 20 s" \
    "$tmp/remigate.log"

# ---- Kannel ----------------------------------------------------------------

"$root/scripts/kannel-config" "$tmp/kannel.conf" >"$tmp/render.log" 2>&1 ||
    bail "scripts/kannel-config failed" "$tmp/render.log"
"$BEARERBOX" -v 2 "$tmp/kannel.conf" >"$tmp/bearerbox.stderr" 2>&1 &
bb_pid=$!
pids+=("$bb_pid")
status_txt() { curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/status.txt?password=$ADMIN_PASS"; }
bb_up() { alive "$bb_pid" && [ "$(code "http://127.0.0.1:$ADMIN_PORT/status.txt?password=$ADMIN_PASS")" = 200 ]; }
poll 30 bb_up || bail "bearerbox did not open its admin port within 30 s" \
    "$tmp/bearerbox.stderr" "$RUN_DIR/bearerbox.log"

# smsbox runs under scripts/supervise, as under systemd's Restart=always in
# production: Kannel 1.4.5's smsbox can panic (conn_unregister) when the
# daemon it is writing an MO to is killed, as section 7 does.  sb_pid is
# the supervisor's; sb_up is true once a smsbox of it is on-line.
start_smsbox()
{
    "$root/scripts/supervise" smsbox "$tmp/smsbox.stderr" \
        "$SMSBOX" -v 2 "$tmp/kannel.conf" >>"$tmp/supervise.log" 2>&1 &
    sb_pid=$!
    pids+=("$sb_pid")
}
start_smsbox
sb_up() { alive "$sb_pid" && status_txt | grep -qE '^[[:space:]]*smsbox:.*\(on-line'; }
poll 30 sb_up || bail "smsbox did not connect to bearerbox within 30 s" \
    "$tmp/smsbox.stderr" "$RUN_DIR/smsbox.log"
sendsms_up() { [ "$(code "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms")" != 000 ]; }
poll 30 sendsms_up || bail "smsbox sendsms port does not answer" \
    "$tmp/smsbox.stderr" "$RUN_DIR/smsbox.log"
binds_up()
{
    curl -s --max-time 5 "$ctl/health" |
        jq -e '.ussd_binds >= 1 and .sms_binds >= 1' >/dev/null 2>&1
}
poll 30 binds_up || bail "bearerbox did not bind USSD and SMS within 30 s" \
    "$RUN_DIR/smsc-ussd.log" "$RUN_DIR/smsc-sms.log" "$RUN_DIR/bearerbox.log" \
    "$tmp/sim.log"
ok "simulator, bearerbox, smsbox and remigate up; both binds bound"
