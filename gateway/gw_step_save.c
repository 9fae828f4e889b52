/*
 * gw_step_save.c -- the end of a step: the finished flow's action (the
 * record stored or queued, a status lookup, the notices switch), the
 * parts it saved marked for the other channel, the envelope's
 * compare-and-set, and the caller's reminder queued once that save has
 * won.  Exactly one writer of a session wins; a loser reads the winner's
 * envelope (gw_step.c) and answers with its screen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_int.h"
#include "gateway/gw_ussd_int.h"
#include "sessions/sess.h"

#define GW_RECORD_MAX 16384

/* ------------------------------------------------------------------------
 * Saving
 */

static void gw_remind_queue(struct gw_step *s);

static void
gw_step_saved(struct gw_step *s, int status, uint64_t version)
{
    struct gw_cached *c = s->save;
    switch (s->state) {
    case GW_STEP_SAVE:
        break;
    default:
        WRONG("compare-and-set answered out of turn");
    }
    s->save = NULL;
    if (status == SESS_OK) {
        if (c != NULL) {
            c->version = version;
            c->epoch = sess_epoch(s->u->srv->sess);
            gw_cache_put(&s->u->cache, c);
        }
        free(s->hit); /* this save replaces it */
        s->hit = NULL;
        if (s->ev_abandoned) gw_metric_inc(GW_M_SESSIONS, "abandoned", NULL);
        if (s->ev_dial) gw_metric_inc(GW_M_SESSIONS, s->ev_dial, NULL);
        if (s->completed) gw_metric_inc(GW_M_SESSIONS, "completed", NULL);
        gw_remind_queue(s);
        if (s->confirm[0] != '\0' &&
            gw_sms_send(s->u->srv, s->msisdn, s->confirm, s->confirm_ucs2,
                        "confirmation", NULL, NULL) != 0)
            GW_RLOG(GW_LEVEL_INFO, s->r, 0, "confirmation SMS not sent");
        gw_step_reply(s, s->out.text, s->out.enc, s->out.done);
        return;
    }
    free(c);
    if (status == SESS_ECONFLICT && s->hit != NULL) {
        /* the cached envelope was not the latest: start again from Redis */
        gw_step_reread(s);
        return;
    }
    if (status == SESS_ECONFLICT) {
        /* another copy of this step, or a step racing it, saved first:
         * answer with what it saved */
        gw_step_to(s, GW_STEP_RACE);
        int rc = sess_get(s->u->srv->sess, s->key, gw_step_get_cb, s);
        if (rc == SESS_OK) return;
        status = rc;
    }
    gw_metric_inc(GW_M_REDIS_ERRORS, NULL, NULL);
    if (s->kept) {
        /* the record is kept whatever happened to the session: say so,
         * not "try again".  The session stays at the confirm screen, so a
         * repeat or a new dial confirms again and gets the same reference
         * (and the confirmation SMS); this step sends none. */
        GW_RLOG(GW_LEVEL_WARN, s->r, 0,
                "session not saved (%s); the record is kept, its screen "
                "goes out",
                sess_strerror(status));
        gw_step_reply(s, s->out.text, s->out.enc, s->out.done);
        return;
    }
    /* the connection went under the save (which may or may not have been
     * applied): wait for Redis and run the step again from a fresh read,
     * which answers a save that was applied as a repeat -- not for a step
     * that finished a flow, whose action has run */
    if (status == SESS_EDOWN && !s->completed && gw_step_park(s) == 0) return;
    gw_step_busy(s, sess_strerror(status));
}

static void
gw_step_cas_cb(int status, uint64_t version, void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    gw_req_enter(r);
    gw_step_saved(s, status, version);
    gw_req_leave(r);
}

static void
gw_step_save(struct gw_step *s)
{
    const struct gw_config *cfg = s->u->cfg;
    struct gw_env *e = &s->env;
    if (flow_state_encode(&s->st, e->st, sizeof(e->st)) < 0) {
        GW_RLOG(GW_LEVEL_ERROR, s->r, 0, "flow state does not fit");
        gw_step_message(s, "state_lost");
        return;
    }
    snprintf(e->dlg, sizeof(e->dlg), "%s", s->dlg);
    e->seq = s->seq;
    snprintf(e->mo, sizeof(e->mo), "%s", s->mo);
    snprintf(e->at, sizeof(e->at), "%.*s", (int)s->at_len, s->at ? s->at : "");
    snprintf(e->in, sizeof(e->in), "%.*s", (int)s->input_len,
             s->input ? s->input : "");
    e->t = s->now;
    e->end = s->out.done;
    e->enc = s->out.enc;
    snprintf(e->out, sizeof(e->out), "%s", s->out.text);

    char *buf = s->u->envbuf;
    int n = gw_env_encode(s->u, gw_records_keys(s->u->srv), s->key, e, buf,
                          sizeof(s->u->envbuf));
    if (n < 0) {
        GW_RLOG(GW_LEVEL_ERROR, s->r, 0, "session envelope does not fit");
        gw_step_message(s, "state_lost");
        return;
    }
    long ttl = s->ch == FLOW_CH_SMS ? cfg->sms_ttl : cfg->resume_window;
    unsigned k, total;
    int unfinished = !(s->st.flags & FLOW_SF_DONE) && s->st.nanswers > 0;
    if (unfinished && ttl < cfg->offer_window) /* answers to offer back */
        ttl = cfg->offer_window;
    if (s->flows != NULL && flow_part_next(s->flows->set, &s->st, &k, &total) &&
        ttl < cfg->parts_window)
        /* parts of a registration to do: offered on a dial for longer
         * (answers older than the offer window are dropped at that dial) */
        ttl = cfg->parts_window;
    if (ttl < cfg->ussd_idle) ttl = cfg->ussd_idle;
    free(s->save);
    s->save = NULL;
    if (s->u->cache.cap > 0 && s->ch == FLOW_CH_USSD &&
        (s->save = malloc(sizeof(*s->save) + (size_t)n + 1)) != NULL) {
        struct gw_cached *c = s->save;
        snprintf(c->key, sizeof(c->key), "%s", s->key);
        c->len = (size_t)n;
        memcpy(c->value, buf, (size_t)n);
        c->value[n] = '\0';
        c->until = s->now + ttl / 2;
    }
    gw_step_to(s, GW_STEP_SAVE);
    int rc = sess_cas(s->u->srv->sess, s->key, s->version, buf, (size_t)n,
                      (unsigned)ttl, gw_step_cas_cb, s);
    /* a failure now is never a conflict; the callback frees s->save */
    if (rc != SESS_OK) gw_step_cas_cb(rc, 0, s);
}

/* ------------------------------------------------------------------------
 * The parts saved, per number (the design note at the top)
 */


static void
gw_parts_marked_cb(int status, uint64_t version, void *arg)
{
    (void)version;
    (void)arg;
    if (status == SESS_OK) return;
    gw_metric_inc(GW_M_REDIS_ERRORS, NULL, NULL);
    GW_LOG_WARN(0,
                "parts: a saved part not recorded for the other channel "
                "(%s)",
                sess_strerror(status));
}

/* The step's record kept a part: OR every part its state knows saved into
 * the caller's key (a failure is logged: the record is kept whatever
 * happens, and this channel's envelope still knows). */
static void
gw_step_parts_mark(struct gw_step *s)
{
    const struct gw_config *cfg = s->u->cfg;
    char key[GW_PARTS_KEY_MAX];
    if (cfg->parts_window <= 0 || s->st.parts == 0) return;
    gw_parts_key(s->msisdn, key, sizeof(key));
    int rc = sess_bits_or(s->u->srv->sess, key, s->st.parts & 0x7fffffffu,
                          s->st.lang, (unsigned)cfg->parts_window,
                          gw_parts_marked_cb, NULL);
    if (rc != SESS_OK) gw_parts_marked_cb(rc, 0, NULL);
}

/* ------------------------------------------------------------------------
 * Actions of finished flows
 */

/* "reason=LABEL": an officer's reason code shown by its short label in
 * lang (messages.conf "reason_CODE"); a code without a label, as it is. */
static void
gw_step_reason(const struct flow_set *set, const char *lang, const char *code,
               char *out, size_t cap)
{
    char id[192]; /* "reason_" and a code of the reason buffer */
    const char *label = code;
    if (code[0] && strlen(code) < FLOW_ID_MAX) {
        snprintf(id, sizeof(id), "reason_%s", code);
        const char *m = flow_message(set, lang, id);
        if (strcmp(m, id) != 0) label = m;
    }
    snprintf(out, cap, "reason=%s", label);
}

static void
gw_step_acted(struct gw_step *s, const struct gw_act_result *res)
{
    const struct flow_set *set = s->flows->set;
    const char *action = s->out.action ? s->out.action : "";
    int lookup = strcmp(action, "status_lookup") == 0;
    char ref[64], outcome[64], reason[160], phone[48];
    snprintf(ref, sizeof(ref), "ref=%s", res->ref);
    snprintf(outcome, sizeof(outcome), "outcome=%s", res->outcome);
    gw_step_reason(set, s->st.lang, res->reason, reason, sizeof(reason));
    snprintf(phone, sizeof(phone), "phone=%s", s->u->cfg->office_phone);
    const char *vars[] = {ref, outcome, reason, phone, NULL};

    switch (s->state) {
    case GW_STEP_ACT:
        break;
    default:
        WRONG("action answered out of turn");
    }
    if ((res->status == GW_ACT_DONE || res->status == GW_ACT_QUEUED) &&
        s->via != GW_VIA_SMS && res->ref[0] &&
        strcmp(action, "submit_registration") == 0) {
        /* a USSD screen is gone once read: the reference also goes by
         * SMS */
        struct flow_out sms;
        flow_render_message_vars(set, s->st.lang, FLOW_CH_SMS, "sms_registered",
                                 vars, &sms);
        /* sent once this step's save wins: a copy of the step that loses
         * the race sends nothing */
        snprintf(s->confirm, sizeof(s->confirm), "%s", sms.text);
        s->confirm_ucs2 = sms.enc == FLOW_ENC_UCS2;
    }
    s->kept =
        !lookup && (res->status == GW_ACT_DONE || res->status == GW_ACT_QUEUED);
    if (s->kept && flow_part_mark(set, &s->st) > 0)
        gw_step_parts_mark(s); /* the next dial, or REG, offers the next */
    switch (res->status) {
    case GW_ACT_DONE:
        flow_render_end(set, &s->st, res->ref[0] ? vars : vars + 1, &s->out);
        break;
    case GW_ACT_QUEUED:
        flow_render_message_vars(set, s->st.lang, s->ch, "saved_queued", vars,
                                 &s->out);
        break;
    case GW_ACT_NOT_REGISTERED:
        if (lookup) {
            snprintf(outcome, sizeof(outcome), "outcome=none");
            flow_render_end(set, &s->st, vars + 1, &s->out);
        } else {
            flow_render_message(set, s->st.lang, s->ch, "not_registered",
                                &s->out);
        }
        break;
    case GW_ACT_FAILED:
    default:
        /* nothing saved: the caller dials again and is offered to go on
         * from where this step started */
        GW_RLOG(GW_LEVEL_WARN, s->r, 0, "action %s failed", action);
        gw_step_message(s, lookup ? "busy" : "try_later");
        return;
    }
    s->out.done = 1;
    s->completed = 1;
    gw_step_save(s);
}

static void
gw_step_act_cb(const struct gw_act_result *res, void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    gw_req_enter(r);
    gw_step_acted(s, res);
    gw_req_leave(r);
}

/* Notices switched off or on (status 0) or not: the end screen, or "try
 * later" with nothing changed. */
static void
gw_step_notices_cb(int status, void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    static const char *const novars[] = {NULL};
    char to[GW_MSISDN_MAX];
    gw_req_enter(r);
    switch (s->state) {
    case GW_STEP_ACT:
        break;
    default:
        WRONG("notices switch answered out of turn");
    }
    if (status != 0) {
        GW_RLOG(GW_LEVEL_WARN, r, 0, "notices switch not recorded");
        gw_step_message(s, "try_later");
    } else {
        GW_RLOG(GW_LEVEL_INFO, r, 0, "notices %s by USSD for %s",
                s->optout ? "off" : "on",
                gw_log_msisdn(to, sizeof(to), s->msisdn));
        flow_render_end(s->flows->set, &s->st, novars, &s->out);
        s->out.done = 1;
        s->completed = 1;
        gw_step_save(s);
    }
    gw_req_leave(r);
}

/* The notices_set action: the caller's number opted out of programme
 * notices ("off") or in again ("on") in sms_optout, committed before the
 * caller reads the answer, so the dispatcher's next claim sees it. */
static void
gw_step_notices(struct gw_step *s)
{
    const char *v = flow_state_get(&s->st, "notices");
    gw_step_to(s, GW_STEP_ACT);
    if (v == NULL || (strcmp(v, "off") != 0 && strcmp(v, "on") != 0)) {
        GW_RLOG(GW_LEVEL_ERROR, s->r, 0, "notices_set without off or on");
        gw_step_message(s, "try_later");
        return;
    }
    s->optout = strcmp(v, "off") == 0;
    if (gw_sms_optout(s->u->srv, s->msisdn, s->optout, gw_step_notices_cb, s) !=
        0) {
        GW_RLOG(GW_LEVEL_WARN, s->r, 0, "notices switch could not run");
        gw_step_message(s, "try_later");
    }
}

void
gw_step_finish(struct gw_step *s)
{
    if (s->out.done && s->out.action != NULL && s->hit != NULL) {
        /* an action writes to the database: only on what Redis holds */
        gw_step_reread(s);
        return;
    }
    if (s->out.done && s->out.action != NULL &&
        strcmp(s->out.action, "notices_set") == 0) {
        gw_step_notices(s);
        return;
    }
    if (s->out.done && s->out.action != NULL) {
        int n = -1;
        gw_step_to(s, GW_STEP_ACT);
        s->record = gw_req_alloc(s->r, GW_RECORD_MAX);
        if (s->record != NULL)
            n = flow_record_json(s->flows->set, &s->st, s->msisdn, s->record,
                                 GW_RECORD_MAX);
        if (n < 0 || gw_action_run(s->u->srv, s->out.action, s->record,
                                   (size_t)n, gw_step_act_cb, s) != 0) {
            GW_RLOG(GW_LEVEL_ERROR, s->r, 0, "action %s could not run",
                    s->out.action);
            gw_step_message(s, "try_later");
        }
        return;
    }
    s->completed = s->out.done;
    gw_step_save(s);
}


/* After a won save: queue the caller's reminder, at the moments the
 * design note in gw_remind.c names. */
static void
gw_remind_queue(struct gw_step *s)
{
    const struct gw_config *cfg = s->u->cfg;
    unsigned total;
    if (s->ch != FLOW_CH_USSD || cfg->remind_after <= 0 || s->flows == NULL ||
        flow_part_todo(s->flows->set, &s->st, &total) == 0 ||
        !(s->dial || s->completed || s->st.nanswers == 1))
        return;
    if (gw_remind_push(s->u, s->msisdn, s->now + cfg->remind_after) != 0)
        GW_RLOG(GW_LEVEL_WARN, s->r, 0, "reminder not queued");
}
