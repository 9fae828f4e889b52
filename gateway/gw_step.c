/*
 * gw_step.c -- one step of a dialogue, from its request to its reply:
 * the envelope read (or taken from the cache), the parts saved merged in
 * at a dial or an SMS, the engine run, the wait for Redis when it is not
 * connected, and the replies (the screen, "busy", a repeat, the request
 * deadline).  The order of a step is in gw_ussd.c's design note; its end
 * (the finished flow's action, the save) is in gw_step_save.c, an SMS's
 * own answers (keywords, STOP, reply codes) in gw_step_sms.c.
 *
 * A step's progress is one state (GW_STEP_STATES in gw_ussd_int.h): each
 * callback checks it in one switch, so an answer out of turn is a bug
 * that aborts, not a second reply.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "gateway/gw_int.h"
#include "gateway/gw_ussd_int.h"
#include "sessions/sess.h"


/* Steps waiting for Redis at once, at most, per worker. */
#define GW_PARK_MAX 4096

const char *const gw_step_state_names[] = {
#define GW_STEP_NAME(id, name) name,
    GW_STEP_STATES(GW_STEP_NAME)
#undef GW_STEP_NAME
};

/* Move s to state next (logged at debug). */
void
gw_step_to(struct gw_step *s, enum gw_step_state next)
{
    if (s->state == GW_STEP_DONE) WRONG("step went on after its reply");
    GW_RLOG(GW_LEVEL_DEBUG, s->r, 0, "step %s -> %s",
            gw_step_state_names[s->state], gw_step_state_names[next]);
    s->state = next;
}

/* Send a read of key for the step (cb answers it).  Redis not connected
 * (dropped, or not yet back -- also between a read taken from the cache
 * and this one): the step waits for it (gw_step_park(), redis.wait_ms in
 * all); any other refusal, or that time over, answers "busy".  The step's reads
 * of its session and of its parts go through here, so that none answers "busy"
 * where it could wait (the read after a lost race has its own answers). */
void
gw_step_get(struct gw_step *s, const char *key, sess_get_cb *cb)
{
    int rc = sess_get(s->u->srv->sess, key, cb, s);
    if (rc == SESS_EDOWN && gw_step_park(s) == 0) return;
    if (rc != SESS_OK) {
        gw_metric_inc(GW_M_REDIS_ERRORS, NULL, NULL);
        gw_step_busy(s, sess_strerror(rc));
    }
}

/* ------------------------------------------------------------------------
 * Replies
 */

static double
gw_step_elapsed(const struct gw_req *r)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - r->t0.tv_sec) +
           (double)(now.tv_nsec - r->t0.tv_nsec) / 1e9;
}

/* The step ends without its save having won: the entry it ran on is as
 * good as before, back it goes.  (A stale one fails its next
 * compare-and-set, and that step reads afresh.) */
static void
gw_step_cache_end(struct gw_step *s)
{
    if (s->hit != NULL) gw_cache_put(&s->u->cache, s->hit);
    s->hit = NULL;
    free(s->save);
    s->save = NULL;
}

/* Send text as a screen; end: the dialogue ends with it.  Ends the
 * request and the step. */
void
gw_step_reply(struct gw_step *s, const char *text, int enc, int end)
{
    struct gw_req *r = s->r;
    gw_step_to(s, GW_STEP_DONE);
    gw_step_cache_end(s);
    gw_metric_observe(GW_M_STEP_SECONDS, flow_channel_name(s->ch),
                      gw_step_elapsed(r));
    gw_flows_unref(s->flows);
    s->flows = NULL;
    if (s->via == GW_VIA_SMS) {
        /* Kannel's SMS service does not reply itself: sendsms does */
        if (text[0] != '\0' &&
            gw_sms_send(s->u->srv, s->msisdn, text, enc == FLOW_ENC_UCS2,
                        "reply", NULL, NULL) != 0)
            GW_RLOG(GW_LEVEL_WARN, r, 0, "SMS reply not sent");
        gw_reply_text(r, 200, "text/plain; charset=utf-8", "");
        return;
    }
    if (s->via == GW_VIA_KANNEL) {
        char meta[128];
        if (gw_kannel_meta_reply(end, s->sess, s->has_sess, meta,
                                 sizeof(meta)) > 0)
            gw_req_header_add(r, "X-Kannel-Meta-Data", meta);
        if (enc == FLOW_ENC_UCS2) gw_req_header_add(r, "X-Kannel-Coding", "2");
        gw_reply_text(r, 200, "text/plain; charset=utf-8", text);
        return;
    }
    size_t n = strlen(text);
    char *body = gw_req_alloc(r, n + 5);
    if (body == NULL) {
        gw_reply_error(r, 500, "out of memory");
        return;
    }
    memcpy(body, end ? "END " : "CON ", 4);
    memcpy(body + 4, text, n);
    gw_reply(r, 200, "text/plain; charset=utf-8", body, n + 4);
}

/* A system message as a last screen, in the caller's language. */
void
gw_step_message(struct gw_step *s, const char *id)
{
    struct flow_out *out = &s->out;
    flow_render_message(s->flows->set, s->st.lang, s->ch, id, out);
    gw_step_reply(s, out->text, out->enc, 1);
}

/* "Busy" -- unless the step has finished its flow (s->completed: the
 * action, if any, succeeded; a record is stored or queued): then what
 * failed is only the session's save, and the caller hears the step's own
 * last screen (the reference), never "try again" for a kept record. */
void
gw_step_busy(struct gw_step *s, const char *why)
{
    if (s->completed) {
        GW_RLOG(GW_LEVEL_WARN, s->r, 0,
                "%s state=%s; the flow has ended, its screen goes out", why,
                gw_step_state_names[s->state]);
        gw_step_reply(s, s->out.text, s->out.enc, 1);
        return;
    }
    GW_RLOG(GW_LEVEL_WARN, s->r, 0, "busy reply: %s state=%s", why,
            gw_step_state_names[s->state]);
    gw_step_message(s, "busy");
}

/* The finished flow's action being run is a write of a record (not a
 * lookup, not the notices switch). */
static int
gw_step_writing(const struct gw_step *s)
{
    const char *a = s->out.action;
    return s->state == GW_STEP_ACT && a != NULL &&
           strcmp(a, "status_lookup") != 0 && strcmp(a, "notices_set") != 0;
}

/* The request deadline passed first (the process or its peers stalled):
 * the client is answered now; the step goes on and ends quietly (its
 * reply then only frees the request).  What the client hears must not
 * claim a failure the step may yet undo:
 *   the flow has ended (s->completed)  its own last screen: the record is
 *                                      stored or queued, with its reference
 *   a record's write in flight         "saving": stored or not is not known
 *                                      yet (the query or the push to the
 *                                      Redis queue may still land); an SMS
 *                                      with the reference follows if it does
 *   anything else                      "busy": nothing of the step is kept */
static void
gw_step_deadline(struct gw_req *r, void *arg)
{
    struct gw_step *s = arg;
    struct flow_out out;
    const char *id = gw_step_writing(s) ? "saving" : "busy";
    if (s->via == GW_VIA_SMS) {
        /* the SMS answer goes out through sendsms when the step ends */
        gw_reply_text(r, 200, "text/plain; charset=utf-8", "");
        return;
    }
    const struct flow_out *o = &out;
    if (s->completed) {
        GW_RLOG(GW_LEVEL_WARN, r, 0,
                "deadline in state=%s: the flow has ended, its screen goes out",
                gw_step_state_names[s->state]);
        o = &s->out;
    } else {
        GW_RLOG(GW_LEVEL_WARN, r, 0, "deadline in state=%s: %s reply",
                gw_step_state_names[s->state], id);
        flow_render_message(s->flows->set, s->st.lang, s->ch, id, &out);
    }
    if (s->via == GW_VIA_KANNEL) {
        char meta[128];
        if (gw_kannel_meta_reply(1, s->sess, s->has_sess, meta, sizeof(meta)) >
            0)
            gw_req_header_add(r, "X-Kannel-Meta-Data", meta);
        if (o->enc == FLOW_ENC_UCS2)
            gw_req_header_add(r, "X-Kannel-Coding", "2");
        gw_reply_text(r, 200, "text/plain; charset=utf-8", o->text);
    } else {
        char body[FLOW_TEXT_MAX + 8];
        snprintf(body, sizeof(body), "END %s", o->text);
        gw_reply_text(r, 200, "text/plain; charset=utf-8", body);
    }
}

static void
gw_step_replay(struct gw_step *s)
{
    gw_metric_inc(GW_M_DUPLICATES, flow_channel_name(s->ch), NULL);
    GW_RLOG(GW_LEVEL_INFO, s->r, 0, "duplicate step: same screen again");
    gw_step_reply(s, s->env.out, s->env.enc, s->env.end);
}

/* ------------------------------------------------------------------------
 * The parts saved, per number (the design note in gw_ussd.c)
 */

static void gw_step_run(struct gw_step *s);

static void
gw_step_parts_got(struct gw_step *s, int status, const char *value, size_t len)
{
    switch (s->state) {
    case GW_STEP_PARTS:
        break;
    default:
        WRONG("parts read answered out of turn");
    }
    /* the connection went under the read: wait, and run the step again
     * from a fresh read of its session (nothing is written before this) */
    if (status == SESS_EDOWN && gw_step_park(s) == 0) return;
    if (status != SESS_OK && status != SESS_ENOTFOUND) {
        gw_metric_inc(GW_M_REDIS_ERRORS, NULL, NULL);
        gw_step_busy(s, sess_strerror(status));
        return;
    }
    unsigned bits = 0, dropped;
    char lang[FLOW_LANG_MAX] = "";
    if (status == SESS_OK && gw_parts_parse(value, len, &bits, lang) < 0)
        GW_RLOG(GW_LEVEL_WARN, s->r, 0, "parts: unreadable value ignored");
    dropped = gw_parts_merge(s->flows->set, &s->st, bits, lang);
    if (dropped > 0)
        GW_RLOG(GW_LEVEL_INFO, s->r, 0,
                "part %u was saved on another channel: this session's "
                "answers to it dropped",
                dropped);
    s->parts_read = 1;
    gw_step_run(s);
}

static void
gw_step_parts_cb(int status, const char *value, size_t len, uint64_t version,
                 void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    (void)version;
    gw_req_enter(r);
    gw_step_parts_got(s, status, value, len);
    gw_req_leave(r);
}

/* Ask the caller's parts; the step runs again from gw_step_run() with
 * them merged.  Without a parts window there is nothing to ask. */
void
gw_step_parts_read(struct gw_step *s)
{
    char key[GW_PARTS_KEY_MAX];
    if (s->u->cfg->parts_window <= 0) {
        s->parts_read = 1;
        gw_step_run(s);
        return;
    }
    gw_parts_key(s->msisdn, key, sizeof(key));
    gw_step_to(s, GW_STEP_PARTS);
    gw_step_get(s, key, gw_step_parts_cb);
}

/* ------------------------------------------------------------------------
 * The step
 */

static int
gw_step_same(const char *a, const char *b, size_t blen)
{
    return strlen(a) == blen && memcmp(a, b, blen) == 0;
}

/* Run the engine on the envelope just read (again once the parts are
 * merged: what it decides before is decided from the envelope alone, so
 * the second run decides the same). */
static void
gw_step_run(struct gw_step *s)
{
    const struct gw_config *cfg = s->u->cfg;
    const struct flow_set *set = s->flows->set;
    struct gw_env *e = &s->env;
    int same_dlg = e->dlg[0] && strcmp(e->dlg, s->dlg) == 0;

    if (s->via == GW_VIA_SMS) {
        gw_sms_run(s);
        return;
    }
    if (s->via == GW_VIA_KANNEL) {
        if (s->mo[0] && strcmp(e->mo, s->mo) == 0) {
            gw_step_replay(s);
            return;
        }
        /* a second answer to a screen already answered: the gateway's
         * sequence number did not move (a racing copy, or a resend with
         * other text); the current screen again */
        if (!s->dial && same_dlg && s->has_seq && s->seq != 0 &&
            e->seq == s->seq) {
            gw_step_replay(s);
            return;
        }
        /* the same dialogue, sequence number and input again, soon */
        if (same_dlg && s->has_seq && e->seq == s->seq &&
            gw_step_same(e->in, s->input ? s->input : "", s->input_len) &&
            cfg->dedup_window > 0 && s->now - e->t <= cfg->dedup_window) {
            gw_step_replay(s);
            return;
        }
        if (!s->dial &&
            (!same_dlg || e->end || s->now - e->t > cfg->ussd_idle)) {
            GW_RLOG(GW_LEVEL_INFO, s->r, 0,
                    "answer to a dialogue that is over or unknown");
            gw_step_message(s, "ended");
            return;
        }
    } else if (same_dlg) {
        const char *in;
        size_t inlen;
        /* a repeat, text that does not extend the last one, or anything
         * after the end: the last screen again */
        if (gw_at_new_input(e->at, s->at, &in, &inlen) != GW_AT_INPUT ||
            e->end) {
            gw_step_replay(s);
            return;
        }
        s->input = in;
        s->input_len = inlen;
    } else {
        const char *in;
        size_t inlen;
        s->dial = 1;
        if (gw_at_new_input(NULL, s->at, &in, &inlen) == GW_AT_INPUT) {
            s->input = in;
            s->input_len = inlen;
        }
    }

    if (s->dial && !s->parts_read) {
        /* what to offer depends on the parts saved on any channel */
        gw_step_parts_read(s);
        return;
    }
    /* an answer over FLOW_INPUT_MAX is the engine's to re-ask
     * ("too_long"), in the caller's language, like any wrong answer */
    struct flow_ctx ctx = {.now = s->now};
    gw_ussd_nonce(s->u, ctx.nonce, sizeof(ctx.nonce));
    if (s->dial) {
        long keep = cfg->offer_window > cfg->resume_window ? cfg->offer_window
                                                           : cfg->resume_window;
        if (e->t && s->now - e->t > keep && !(s->st.flags & FLOW_SF_DONE)) {
            /* too late to go on: keep only the language and the parts of
             * a registration saved */
            char lang[FLOW_LANG_MAX];
            unsigned chose = s->st.flags & FLOW_SF_LANG, parts = s->st.parts;
            snprintf(lang, sizeof(lang), "%s", s->st.lang);
            memset(&s->st, 0, sizeof(s->st));
            snprintf(s->st.lang, sizeof(s->st.lang), "%s", lang);
            s->st.flags = chose;
            s->st.parts = parts;
            s->ev_abandoned = 1;
        }
        ctx.resume_window = (unsigned)cfg->resume_window;
        int open = s->st.flow[0] && !(s->st.flags & FLOW_SF_DONE) &&
                   s->st.nanswers > 0;
        flow_dial(set, &s->st, NULL, s->ch, &ctx, &s->out);
        /* gone on at the open question, or asked whether to */
        s->ev_dial = open && s->st.nanswers > 0 ? "resumed" : "started";
        /* an aggregator may pass what was typed with the dial */
        if (s->input && !s->out.done)
            flow_step(set, &s->st, s->input, s->input_len, &ctx, &s->out);
    } else {
        flow_step(set, &s->st, s->input, s->input_len, &ctx, &s->out);
    }
    gw_step_finish(s);
}

static void
gw_step_got(struct gw_step *s, int status, const char *value, size_t len,
            uint64_t version)
{
    switch (s->state) {
    case GW_STEP_READ:
    case GW_STEP_RACE:
        break;
    default:
        WRONG("session read answered out of turn");
    }
    if (status == SESS_EDOWN && s->state == GW_STEP_READ &&
        gw_step_park(s) == 0)
        return; /* the connection went under the read: wait, read again */
    if (status != SESS_OK && status != SESS_ENOTFOUND) {
        gw_metric_inc(GW_M_REDIS_ERRORS, NULL, NULL);
        gw_step_busy(s, sess_strerror(status));
        return;
    }
    if (s->state == GW_STEP_RACE) {
        /* after a lost race: the winner's screen, if it was this dialogue */
        if (status == SESS_OK &&
            gw_env_decode(s->u, gw_records_keys(s->u->srv), s->key, value, len,
                          &s->env) == 0 &&
            strcmp(s->env.dlg, s->dlg) == 0) {
            gw_step_replay(s);
            return;
        }
        gw_step_busy(s, "lost a race to another dialogue");
        return;
    }
    s->version = version;
    memset(&s->st, 0, sizeof(s->st));
    if (status == SESS_OK) {
        if (gw_env_decode(s->u, gw_records_keys(s->u->srv), s->key, value, len,
                          &s->env) < 0 ||
            flow_state_decode(&s->st, s->env.st, strlen(s->env.st)) != 0) {
            GW_RLOG(GW_LEVEL_WARN, s->r, 0,
                    "unreadable session, starting afresh");
            memset(&s->env, 0, sizeof(s->env));
            memset(&s->st, 0, sizeof(s->st));
        }
    } else {
        memset(&s->env, 0, sizeof(s->env));
    }
    gw_step_run(s);
}

void
gw_step_get_cb(int status, const char *value, size_t len, uint64_t version,
               void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    gw_req_enter(r);
    gw_step_got(s, status, value, len, version);
    gw_req_leave(r);
}

/* Run the step again from what Redis holds: the cached envelope it ran
 * on was stale, or is not trusted for what the step would do. */
void
gw_step_reread(struct gw_step *s)
{
    free(s->hit);
    s->hit = NULL;
    free(s->save);
    s->save = NULL;
    s->dial = s->dial0;
    s->input = s->input0;
    s->input_len = s->input_len0;
    s->completed = 0;
    s->confirm[0] = '\0';
    s->confirm_ucs2 = 0;
    s->record = NULL;
    s->ev_abandoned = 0;
    s->ev_dial = NULL;
    s->parts_read = 0;
    gw_step_to(s, GW_STEP_READ);
    gw_step_get(s, s->key, gw_step_get_cb);
}

void
gw_step_begin(struct gw_step *s)
{
    struct gw_ussd *u = s->u;
    s->flows = u->flows;
    s->flows->refs++;
    s->now = (int64_t)time(NULL);
    snprintf(s->key, sizeof(s->key), "s:%s:%s", flow_channel_name(s->ch),
             s->msisdn);
    gw_req_on_deadline(s->r, gw_step_deadline, s);
    s->dial0 = s->dial;
    s->input0 = s->input;
    s->input_len0 = s->input_len;
    gw_step_to(s, GW_STEP_READ);
    if (s->ch == FLOW_CH_USSD) {
        s->hit =
            gw_cache_take(&u->cache, s->key, s->now, sess_epoch(u->srv->sess));
        if (s->hit != NULL) {
            gw_step_get_cb(SESS_OK, s->hit->value, s->hit->len, s->hit->version,
                           s);
            return;
        }
    }
    gw_step_get(s, s->key, gw_step_get_cb);
}

/* ------------------------------------------------------------------------
 * Waiting for Redis
 *
 * A step that finds Redis not connected (restarted, or failed over to
 * another primary: the sessions store is reconnecting) waits for it up to
 * redis.wait_ms -- but never past the request deadline less one
 * redis.timeout_ms, which the step then still has for its read and save
 * -- instead of hearing "busy" at once: a caller whose USSD dialogue
 * ends with "busy" must dial the code again.  When the store says it is
 * up again, the steps waiting go on, oldest first, from the event loop
 * (not from inside the store's callback); a step whose wait ends first
 * hears "busy" as before.  A step whose read or save was in flight when
 * the connection went waits too, and then runs again from a fresh read
 * (a save that had been applied is then answered as a repeat) -- unless
 * it finished a flow: its action has run, and it says what it must.  A
 * step waits once at most.
 */

static void
gw_step_unpark(struct gw_step *s)
{
    struct gw_ussd *u = s->u;
    TAILQ_REMOVE(&u->parked, s, park_link);
    u->nparked--;
    event_free(s->park_ev);
    s->park_ev = NULL;
}

static void
gw_step_park_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    (void)fd;
    (void)what;
    gw_step_unpark(s);
    gw_metric_inc(GW_M_REDIS_ERRORS, NULL, NULL);
    gw_req_enter(r);
    gw_step_busy(s, "redis not connected (waited redis.wait_ms)");
    gw_req_leave(r);
}

/* Wait for Redis, up to redis.wait_ms from the step's first wait: 0, or
 * -1 (not configured, stopping, too many waiting, that time over): then
 * the caller hears "busy" now.  A step woken by Redis coming back may
 * find it gone again (a cluster says CLUSTERDOWN for a moment after its
 * promotion) and waits again for what is left of its time. */
int
gw_step_park(struct gw_step *s)
{
    struct gw_ussd *u = s->u;
    const struct gw_config *cfg = u->cfg;
    struct timespec now;
    long long now_ms;
    long ms = cfg->redis_wait_ms;
    if (ms > cfg->request_timeout_ms - cfg->redis_timeout_ms)
        ms = cfg->request_timeout_ms - cfg->redis_timeout_ms;
    if (ms <= 0 || u->stopping || u->nparked >= GW_PARK_MAX) return -1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (s->park_until == 0)
        s->park_until = now_ms + ms;
    else if (s->park_until - now_ms < ms)
        ms = (long)(s->park_until - now_ms);
    if (ms <= 0) return -1;
    s->park_ev = evtimer_new(gw_server_base(u->srv), gw_step_park_timeout, s);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (s->park_ev == NULL || evtimer_add(s->park_ev, &tv) != 0) {
        if (s->park_ev != NULL) event_free(s->park_ev);
        s->park_ev = NULL;
        return -1;
    }
    TAILQ_INSERT_TAIL(&u->parked, s, park_link);
    u->nparked++;
    /* connected again already (a drop seen late): go on at once; while
     * hiredis answers a dropped connection's commands it still looks
     * connected, and gw_ussd_unpark_cb() then leaves the steps waiting */
    if (sess_connected(u->srv->sess)) event_active(u->unpark, EV_TIMEOUT, 1);
    GW_RLOG(GW_LEVEL_DEBUG, s->r, 0, "waiting for redis (at most %ld ms)", ms);
    return 0;
}

/* Redis is back: every step waiting runs again from a fresh read now (and
 * hears "busy" at once if Redis went again meanwhile). */
void
gw_ussd_unpark_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_ussd *u = arg;
    struct gw_step *s;
    (void)fd;
    (void)what;
    /* a step parked from inside the dropped connection's last callbacks
     * saw it still connected: the next "up" brings it here again */
    if (!sess_connected(u->srv->sess)) return;
    while ((s = TAILQ_FIRST(&u->parked)) != NULL) {
        struct gw_req *r = s->r;
        gw_step_unpark(s);
        gw_req_enter(r);
        gw_step_reread(s);
        gw_req_leave(r);
    }
}

/* Stopping: every step waiting hears "busy" now. */
void
gw_ussd_unpark_all_busy(struct gw_ussd *u)
{
    struct gw_step *s;
    while ((s = TAILQ_FIRST(&u->parked)) != NULL) {
        struct gw_req *r = s->r;
        gw_step_unpark(s);
        gw_req_enter(r);
        gw_step_busy(s, "shutting down");
        gw_req_leave(r);
    }
}
