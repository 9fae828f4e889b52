/*
 * gw_ussd.c -- the dialogue endpoints: GET /kannel/mo (Kannel's
 * sms-service) and POST /ussd/at (USSD aggregators).
 *
 * One step of a dialogue:
 *
 *   parse and check the request (4xx, nothing touched)
 *   -> sess_get("s:<channel>:<msisdn>")          the caller's envelope
 *   -> a duplicate?  reply the envelope's last screen again, change nothing
 *   -> a dial or an SMS: sess_get("parts:<msisdn>") the parts saved on any
 *                                                 channel, merged in
 *   -> flow_dial() or flow_step()                 the pure engine
 *   -> the finished flow's action, if any         gw_action_run() (gw_store.c)
 *   -> sess_cas(version read + 1)                 exactly one writer wins
 *   -> reply: the screen, with continue/end for the channel
 *
 * The envelope is the flow state plus what the gateway needs to recognise
 * a repeat: the dialogue it belongs to, the last Kannel message id, the
 * sequence number and input of the last step, the AT text so far, and the
 * last screen sent.  It is one Redis hash (sess.h), so a save is one
 * compare-and-set.  A writer that loses the race reads the winner's
 * envelope and answers with its screen.  Redis down, slow or full: the
 * caller gets the "busy" message in their language and nothing changes.
 *
 * What in the envelope can hold personal answers -- the flow state, the
 * AT text, the last input and the last screen (a read-back) -- is sealed
 * with the crypto key (store_sess_seal(), bound to the session's key) as
 * one field "x"; the rest (dialogue id, sequence, times) stays readable.
 *
 * The parts of a registration saved (flow_state.parts) are the caller's,
 * not a channel's: a part saved over USSD must be offered as done when
 * the same number texts REG, and the reverse.  So besides the envelope
 * they go to one key per number, "parts:<msisdn>", a bitmask that a
 * saved part ORs into (sess_bits_or(), a single-key script: two channels
 * saving at once lose no bit) with the TTL sessions.parts_window.  It is
 * sent before the step's save on the same connection, so it is applied
 * before the caller reads the reply.  A dial (USSD) or an SMS reads it
 * before the engine decides what to offer, and merges it into the
 * envelope's state; a part under way in this envelope that was saved on
 * the other channel meanwhile (its bit in the key, not yet in the
 * envelope) loses its answers here, so it is never saved twice.  The key
 * holds no personal data: only which parts are done.
 * With a key configured an envelope whose secrets are in clear is not
 * read (the dialogue starts afresh); without one they are kept in clear
 * and the daemon says so loudly at start.  One seal per save and one open
 * per read (bench/RESULTS.md has the cost).
 *
 * This file holds the endpoints and the worker's part (flow sets, the
 * session store, probes); a step's machinery is in gw_step.c, its end (the
 * action, the save) in gw_step_save.c, an SMS's own answers in
 * gw_step_sms.c, the envelope and its cache in gw_env.c.
 */
#include <event2/event.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "gateway/gw_int.h"
#include "gateway/gw_ussd_int.h"
#include "sessions/sess.h"
#include "store/store.h"

/* ------------------------------------------------------------------------
 * Nonces
 */

void
gw_ussd_nonce(struct gw_ussd *u, unsigned char *out, size_t n)
{
    AN(n <= sizeof(u->pool));
    if (sizeof(u->pool) - u->pool_used < n) {
        randombytes_buf(u->pool, sizeof(u->pool));
        u->pool_used = 0;
    }
    memcpy(out, u->pool + u->pool_used, n);
    sodium_memzero(u->pool + u->pool_used, n);
    u->pool_used += n;
}

/* ------------------------------------------------------------------------
 * Flow sets
 */

static struct gw_flows *
gw_flows_load(const struct gw_config *cfg)
{
    struct flow_settings fs;
    struct flow_diag diag;
    gw_config_flow_settings(cfg, &fs);
    flow_diag_init(&diag);
    struct flow_set *set = flow_set_load(&fs, &diag);
    for (size_t i = 0; i < diag.n; i++)
        GW_LOG_ERROR(0, "flows: %s:%d: %s", diag.items[i].file,
                     diag.items[i].line, diag.items[i].msg);
    flow_diag_fini(&diag);
    if (set == NULL) return NULL;
    struct gw_flows *fl = calloc(1, sizeof(*fl));
    if (fl == NULL) {
        flow_set_free(set);
        return NULL;
    }
    fl->set = set;
    fl->refs = 1;
    return fl;
}

void
gw_flows_unref(struct gw_flows *fl)
{
    if (fl != NULL && --fl->refs == 0) {
        flow_set_free(fl->set);
        free(fl);
    }
}

/* ------------------------------------------------------------------------
 * The endpoints
 */

static struct gw_ussd *gw_ussd_of(struct gw_server *srv);

static struct gw_step *
gw_step_new(struct gw_req *r)
{
    struct gw_step *s = gw_req_alloc(r, sizeof(*s));
    if (s == NULL) {
        gw_reply_error(r, 500, "out of memory");
        return NULL;
    }
    s->r = r;
    s->u = gw_ussd_of(r->srv);
    return s;
}

void
gw_kannel_mo_handle(struct gw_req *r)
{
    const struct gw_config *cfg = gw_server_config(r->srv);
    const struct gw_params *ps;
    if (gw_req_kannel_or_404(r) < 0) return;
    if (gw_req_query_or_400(r, &ps) < 0) return;
    const struct gw_param *k = gw_params_get(ps, "key");
    if (gw_req_key_or_403(r, cfg->kannel_secret, k ? k->val : "",
                          k ? k->vlen : 0) < 0)
        return;

    struct gw_kannel_mo *mo = gw_req_alloc(r, sizeof(*mo));
    if (mo == NULL) {
        gw_reply_error(r, 500, "out of memory");
        return;
    }
    size_t qlen;
    const char *q = gw_req_query(r, &qlen);
    const char *why = NULL;
    if (gw_kannel_mo_parse(q, qlen, mo, &why) != 0) {
        gw_reply_error(r, 400, why ? why : "bad request");
        return;
    }
    if (!mo->has_ussd) {
        struct gw_step *s = gw_step_new(r);
        if (s == NULL) return;
        s->via = GW_VIA_SMS;
        s->ch = FLOW_CH_SMS;
        snprintf(s->msisdn, sizeof(s->msisdn), "%s", mo->msisdn);
        snprintf(s->dlg, sizeof(s->dlg), "sms");
        snprintf(s->mo, sizeof(s->mo), "%s", mo->id);
        s->input = mo->text;
        s->input_len = mo->text_len;
        gw_step_begin(s);
        return;
    }
    if (mo->ussd_op != 1 && mo->ussd_op != 18) {
        /* USSN confirm, a vendor's abort or timeout notice: nothing to
         * answer; the session expires by itself */
        GW_RLOG(GW_LEVEL_INFO, r, 0, "ussd_service_op %u ignored",
                (unsigned)mo->ussd_op);
        gw_reply_text(r, 200, "text/plain; charset=utf-8", "");
        return;
    }

    struct gw_step *s = gw_step_new(r);
    if (s == NULL) return;
    s->via = GW_VIA_KANNEL;
    s->ch = FLOW_CH_USSD;
    snprintf(s->msisdn, sizeof(s->msisdn), "%s", mo->msisdn);
    s->dial = mo->ussd_op == 1;
    s->has_sess = mo->has_sess;
    memcpy(s->sess, mo->sess, 2);
    if (mo->has_sess) {
        snprintf(s->dlg, sizeof(s->dlg), "k:%s:%u", mo->smsc,
                 (unsigned)mo->sess[0]);
        s->seq = mo->sess[1] >> 1;
        s->has_seq = 1;
    } else {
        snprintf(s->dlg, sizeof(s->dlg), "k:%s", mo->smsc);
    }
    snprintf(s->mo, sizeof(s->mo), "%s", mo->id);
    if (!s->dial) {
        s->input = mo->text;
        s->input_len = mo->text_len;
    }
    gw_step_begin(s);
}

void
gw_ussd_at_handle(struct gw_req *r)
{
    const struct gw_config *cfg = gw_server_config(r->srv);
    if (gw_req_peer_or_403(r, cfg->at_allow, (size_t)cfg->at_allow_n) < 0)
        return;
    const struct gw_params *ps;
    if (gw_req_form_or_4xx(r, &ps) < 0) return;
    const struct gw_param *k = gw_params_get(ps, "key");
    if (gw_req_key_or_403(r, cfg->at_key, k ? k->val : "", k ? k->vlen : 0) < 0)
        return;

    struct gw_at_req *at = gw_req_alloc(r, sizeof(*at));
    if (at == NULL) {
        gw_reply_error(r, 500, "out of memory");
        return;
    }
    size_t blen;
    const char *body = gw_req_body(r, &blen);
    const char *why = NULL;
    if (gw_at_parse(body, blen, at, &why) != 0) {
        gw_reply_error(r, 400, why ? why : "bad request");
        return;
    }
    struct gw_step *s = gw_step_new(r);
    if (s == NULL) return;
    s->via = GW_VIA_AT;
    s->ch = FLOW_CH_USSD;
    snprintf(s->msisdn, sizeof(s->msisdn), "%s", at->msisdn);
    snprintf(s->dlg, sizeof(s->dlg), "a:%s", at->session_id);
    s->at = at->text;
    s->at_len = at->text_len;
    gw_step_begin(s);
}
/* ------------------------------------------------------------------------
 * The worker's part: flows, the session store, probes and hooks
 */

static struct gw_ussd *
gw_ussd_of(struct gw_server *srv)
{
    return srv->ussd;
}

static void
gw_ussd_ping_cb(int status, void *arg)
{
    gw_probe_wait_end(arg, status == SESS_OK);
}

static void
gw_ussd_probe(void *probe_arg, gw_health_done_cb *done, void *done_arg)
{
    struct gw_ussd *u = probe_arg;
    struct gw_probe_wait *w = gw_probe_wait_new(done, done_arg);
    if (w != NULL && sess_ping(u->srv->sess, gw_ussd_ping_cb, w) != SESS_OK)
        gw_probe_wait_end(w, 0);
}

static int
gw_ussd_reload(struct gw_server *srv, void *arg)
{
    struct gw_ussd *u = arg;
    (void)srv;
    struct gw_flows *fl = gw_flows_load(u->cfg);
    if (fl == NULL) {
        GW_LOG_ERROR(0, "flows: reload refused, the old flows stay");
        return -1;
    }
    gw_flows_unref(u->flows);
    u->flows = fl;
    GW_LOG_INFO(0, "flows: reloaded");
    return 0;
}

/* The Redis connection went up or down: one line per change, so an
 * outage or a wrong password says so once, not at every step. */
static void
gw_ussd_redis_state(int error, const char *why, void *arg)
{
    struct gw_ussd *u = arg;
    int port;
    /* with sentinels, the primary they named: not redis.host and port */
    const char *host = sess_addr(u->srv->sess, &port);
    const char *via = u->cfg->redis_sentinels[0] ? " via=sentinel"
                      : u->cfg->redis_cluster[0] ? " via=cluster"
                                                 : "";
    if (error == 0) {
        GW_LOG_INFO(0, "redis: connected host=%s port=%d%s%s", host, port,
                    u->cfg->redis_password[0] ? " auth=yes" : "", via);
        if (!TAILQ_EMPTY(&u->parked)) event_active(u->unpark, EV_TIMEOUT, 1);
    } else if (error == SESS_EAUTH)
        GW_LOG_ERROR(0, "redis: %s host=%s port=%d%s", why, host, port, via);
    else
        GW_LOG_WARN(0, "redis: down (%s) host=%s port=%d%s; reconnecting",
                    why ? why : sess_strerror(error), host, port, via);
}

static void
gw_ussd_stop(struct gw_server *srv, void *arg)
{
    struct gw_ussd *u = arg;
    u->stopping = 1;
    gw_ussd_unpark_all_busy(u);
    gw_remind_stop(u);
    if (srv->sess != NULL) sess_stop(srv->sess);
}

static const struct gw_route gw_ussd_routes[] = {
    {"/kannel/mo", 0, GW_METHOD_GET, "kannel_mo", gw_kannel_mo_handle, NULL},
    {"/ussd/at", 0, GW_METHOD_POST, "ussd_at", gw_ussd_at_handle, NULL},
};

int
gw_ussd_start(struct gw_server *srv)
{
    const struct gw_config *cfg = gw_server_config(srv);
    if (sodium_init() < 0) {
        GW_LOG_ERROR(0, "libsodium did not initialise");
        return -1;
    }
    struct gw_ussd *u = calloc(1, sizeof(*u));
    if (u == NULL) return -1;
    u->srv = srv;
    u->cfg = cfg;
    u->pool_used = sizeof(u->pool); /* empty: the first nonce fills it */
    u->cache.cap = (size_t)cfg->cache_kb * 1024;
    TAILQ_INIT(&u->cache.lru);
    TAILQ_INIT(&u->parked);
    srv->ussd = u;
    u->unpark = event_new(gw_server_base(srv), -1, 0, gw_ussd_unpark_cb, u);
    if (u->unpark == NULL) return -1;
    u->flows = gw_flows_load(cfg);
    if (u->flows == NULL) {
        GW_LOG_ERROR(0, "flows: did not load (run remigate check-flows)");
        return -1;
    }
    struct sess_cfg sc = {
        .host = cfg->redis_host,
        .port = (int)cfg->redis_port,
        .prefix = cfg->redis_prefix,
        .timeout_ms = (int)cfg->redis_timeout_ms,
        .max_pending = (size_t)cfg->redis_max_pending,
        .password = cfg->redis_password,
        .on_state = gw_ussd_redis_state,
        .state_arg = u,
        .sentinels = cfg->redis_sentinels,
        .master_name = cfg->redis_master_name,
        .cluster = cfg->redis_cluster,
    };
    char err[256];
    srv->sess = sess_new(&sc, gw_server_base(srv), err, sizeof(err));
    if (srv->sess == NULL) {
        GW_LOG_ERROR(0, "redis: %s", err);
        return -1;
    }
    for (size_t i = 0; i < sizeof(gw_ussd_routes) / sizeof(gw_ussd_routes[0]);
         i++)
        if (gw_server_route(srv, &gw_ussd_routes[i]) != 0) return -1;
    if (gw_remind_start(u) != 0) return -1;
    if (sess_start(srv->sess) != 0 ||
        gw_health_register(srv, "redis", gw_ussd_probe, u) != 0 ||
        gw_server_on_reload(srv, gw_ussd_reload, u) != 0 ||
        gw_server_on_stop(srv, gw_ussd_stop, u) != 0)
        return -1;
    return 0;
}

const struct flow_set *
gw_server_flows(const struct gw_server *srv)
{
    const struct gw_ussd *u = srv ? srv->ussd : NULL;
    return u && u->flows ? u->flows->set : NULL;
}

void
gw_ussd_fini(struct gw_server *srv)
{
    struct gw_ussd *u = srv->ussd;
    if (srv->sess != NULL) {
        sess_free(srv->sess);
        srv->sess = NULL;
    }
    if (u != NULL) {
        gw_remind_free(u);
        gw_ussd_unpark_all_busy(u);
        if (u->unpark != NULL) event_free(u->unpark);
        gw_cache_fini(&u->cache);
        gw_flows_unref(u->flows);
        free(u);
        srv->ussd = NULL;
    }
}
