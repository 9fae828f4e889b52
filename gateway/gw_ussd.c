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
 */
#include <event2/event.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include "gateway/gw_int.h"
#include "gateway/gw_ussd_int.h"
#include "sessions/sess.h"
#include "store/store.h"

/* Steps waiting for Redis at once, at most, per worker. */
#define GW_PARK_MAX 4096

enum gw_via { GW_VIA_KANNEL, GW_VIA_AT, GW_VIA_SMS };

/* Where a step is: what it waits for, and so which callback may come
 * next.  Each callback checks its state in one switch; a step leaves DONE
 * only with its request.  The names go to the debug log. */
#define GW_STEP_STATES(X)                                                      \
    X(NEW, "new")           /* parsed; nothing asked yet */                    \
    X(READ, "read")         /* the envelope asked from Redis (or the cache) */ \
    X(PARTS, "parts")       /* a dial or SMS: the parts saved asked */         \
    X(LOOKUP, "lookup")     /* SMS: the record's language asked */             \
    X(OPTOUT, "optout")     /* SMS: STOP or START being recorded */            \
    X(INTEREST, "interest") /* SMS: a reply code being recorded */             \
    X(ACT, "act")           /* the finished flow's action running */           \
    X(SAVE, "save")         /* the new envelope's compare-and-set sent */      \
    X(RACE, "race") /* that save lost: reading what the winner saved */        \
    X(DONE, "done") /* replied; the request ends with the last frame */

enum gw_step_state {
#define GW_STEP_ENUM(id, name) GW_STEP_##id,
    GW_STEP_STATES(GW_STEP_ENUM)
#undef GW_STEP_ENUM
};

static const char *const gw_step_state_names[] = {
#define GW_STEP_NAME(id, name) name,
    GW_STEP_STATES(GW_STEP_NAME)
#undef GW_STEP_NAME
};

struct gw_step {
    struct gw_req *r;
    struct gw_ussd *u;
    enum gw_step_state state;
    struct gw_flows *flows; /* a reference */
    enum gw_via via;
    enum flow_channel ch;
    char key[64];
    char msisdn[GW_MSISDN_MAX];
    int dial;       /* a new dialogue */
    int parts_read; /* "parts:<msisdn>" merged into st */
    char dlg[160];
    unsigned seq; /* Kannel: sequence of this MO */
    int has_seq;
    unsigned char sess[2]; /* Kannel: its_session_info to echo */
    int has_sess;
    char mo[64];
    const char *at; /* AT text (request memory) */
    size_t at_len;
    const char *input; /* what was typed (request memory), or NULL */
    size_t input_len;
    int64_t now;
    uint64_t version; /* of the envelope read */
    struct gw_env env;
    struct flow_state st;
    struct flow_out out;
    int completed;               /* this step ends a flow */
    int kept;                    /* its record is stored or queued */
    int optout;                  /* SMS STOP (1) or START (0) */
    char confirm[FLOW_TEXT_MAX]; /* the SMS to send once saved, or "" */
    int confirm_ucs2;
    char *record; /* GW_RECORD_MAX bytes of request memory, once needed */
    /* the cache: the entry this step runs on (taken out of the cache, the
     * step's), the entry its save will become, and what the request
     * brought, to start again from a fresh read */
    struct gw_cached *hit, *save;
    int dial0;
    const char *input0;
    size_t input_len0;
    /* sessions metrics of this step, counted once its save has won */
    int ev_abandoned;
    const char *ev_dial; /* "started", "resumed" or NULL */
    /* waiting for Redis (gw_step_park()): on u->parked, with its timer */
    TAILQ_ENTRY(gw_step) park_link;
    struct event *park_ev;
    int waited; /* it did, once: a step waits once at most */
};

#define GW_RECORD_MAX 16384

static void gw_step_get_cb(int status, const char *value, size_t len,
                           uint64_t version, void *arg);

/* Move s to state next (logged at debug). */
static void
gw_step_to(struct gw_step *s, enum gw_step_state next)
{
    if (s->state == GW_STEP_DONE) WRONG("step went on after its reply");
    GW_RLOG(GW_LEVEL_DEBUG, s->r, 0, "step %s -> %s",
            gw_step_state_names[s->state], gw_step_state_names[next]);
    s->state = next;
}
static void gw_step_reread(struct gw_step *s);
static int gw_step_park(struct gw_step *s);
static void gw_step_busy(struct gw_step *s, const char *why);

/* Send a read of key for the step (cb answers it).  Redis not connected
 * (dropped, or not yet back -- also between a read taken from the cache
 * and this one): the step waits for it, once (gw_step_park()); any other
 * refusal, or a second wait, answers "busy".  The step's reads of its
 * session and of its parts go through here, so that none answers "busy"
 * where it could wait (the read after a lost race has its own answers). */
static void
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
 * Nonces
 */

static void
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
 * The envelope cache
 */

static size_t
gw_cache_slot(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (GW_CACHE_BUCKETS - 1);
}

static size_t
gw_cached_size(const struct gw_cached *c)
{
    return sizeof(*c) + c->len + 1;
}

/* Unlink c from its chain and the LRU list; the caller owns it then. */
static void
gw_cache_unlink(struct gw_cache *ca, struct gw_cached *c)
{
    struct gw_cached **pp = &ca->bucket[gw_cache_slot(c->key)];
    while (*pp != c) {
        AN(*pp);
        pp = &(*pp)->hnext;
    }
    *pp = c->hnext;
    TAILQ_REMOVE(&ca->lru, c, lru);
    ca->bytes -= gw_cached_size(c);
}

static struct gw_cached *
gw_cache_find(const struct gw_cache *ca, const char *key)
{
    struct gw_cached *c = ca->bucket[gw_cache_slot(key)];
    while (c != NULL && strcmp(c->key, key) != 0)
        c = c->hnext;
    return c;
}

/* The entry for key, taken out of the cache, if it may still be used;
 * NULL otherwise (a stale one is dropped). */
static struct gw_cached *
gw_cache_take(struct gw_cache *ca, const char *key, int64_t now, unsigned epoch)
{
    struct gw_cached *c;
    if (ca->cap == 0 || (c = gw_cache_find(ca, key)) == NULL) return NULL;
    gw_cache_unlink(ca, c);
    if (c->epoch != epoch || now > c->until) {
        free(c);
        return NULL;
    }
    return c;
}

/* Keep c (the cache owns it from here), unless an entry of a later version
 * of its key is there already; then drop the least recently saved entries
 * while there are more bytes than the cap. */
static void
gw_cache_put(struct gw_cache *ca, struct gw_cached *c)
{
    struct gw_cached *old = gw_cache_find(ca, c->key);
    if (old != NULL) {
        if (old->epoch == c->epoch && old->version >= c->version) {
            free(c);
            return;
        }
        gw_cache_unlink(ca, old);
        free(old);
    }
    if (gw_cached_size(c) > ca->cap) {
        free(c);
        return;
    }
    size_t slot = gw_cache_slot(c->key);
    c->hnext = ca->bucket[slot];
    ca->bucket[slot] = c;
    TAILQ_INSERT_TAIL(&ca->lru, c, lru);
    ca->bytes += gw_cached_size(c);
    while (ca->bytes > ca->cap) {
        struct gw_cached *first = TAILQ_FIRST(&ca->lru);
        gw_cache_unlink(ca, first);
        free(first);
    }
}

static void
gw_cache_fini(struct gw_cache *ca)
{
    struct gw_cached *c;
    while ((c = TAILQ_FIRST(&ca->lru)) != NULL) {
        gw_cache_unlink(ca, c);
        free(c);
    }
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
 * The envelope: "name=value\n" lines; '\\' and newlines in values escaped
 * as "\\\\" and "\\n".  Unknown names are refused: an envelope written by
 * a newer daemon is not half-read.
 */

static int
gw_env_put(char *buf, size_t cap, size_t *len, const char *name, const char *v,
           size_t vlen)
{
    size_t n = *len;
    size_t nl = strlen(name);
    if (n + nl + 1 >= cap) return -1;
    memcpy(buf + n, name, nl);
    n += nl;
    buf[n++] = '=';
    for (size_t i = 0; i < vlen; i++) {
        char c = v[i];
        if (n + 3 >= cap) return -1;
        if (c == '\\' || c == '\n') {
            buf[n++] = '\\';
            c = c == '\n' ? 'n' : '\\';
        }
        buf[n++] = c;
    }
    buf[n++] = '\n';
    *len = n;
    return 0;
}

static int
gw_env_puts(char *buf, size_t cap, size_t *len, const char *name, const char *v)
{
    return gw_env_put(buf, cap, len, name, v, strlen(v));
}

static int
gw_env_putn(char *buf, size_t cap, size_t *len, const char *name, int64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", (long long)v);
    return gw_env_put(buf, cap, len, name, num, (size_t)n);
}

/* The fields that can hold personal answers. */
static int
gw_env_put_secrets(const struct gw_env *e, char *buf, size_t cap, size_t *n)
{
    return gw_env_puts(buf, cap, n, "at", e->at) < 0 ||
                   gw_env_puts(buf, cap, n, "in", e->in) < 0 ||
                   gw_env_puts(buf, cap, n, "out", e->out) < 0 ||
                   gw_env_puts(buf, cap, n, "st", e->st) < 0
               ? -1
               : 0;
}

/* Encode e for the session skey into buf; with keys (not NULL) the
 * secrets go sealed as "x" (u's scratch buffers).  Its length, or -1. */
static int
gw_env_encode(struct gw_ussd *u, const struct store *keys, const char *skey,
              const struct gw_env *e, char *buf, size_t cap)
{
    size_t n = 0;
    if (gw_env_puts(buf, cap, &n, "e", "1") < 0 ||
        gw_env_puts(buf, cap, &n, "dlg", e->dlg) < 0 ||
        gw_env_putn(buf, cap, &n, "seq", e->seq) < 0 ||
        gw_env_puts(buf, cap, &n, "mo", e->mo) < 0 ||
        gw_env_putn(buf, cap, &n, "t", e->t) < 0 ||
        gw_env_putn(buf, cap, &n, "end", e->end) < 0 ||
        gw_env_putn(buf, cap, &n, "enc", e->enc) < 0)
        return -1;
    if (keys == NULL)
        return gw_env_put_secrets(e, buf, cap, &n) < 0 ? -1 : (int)n;
    size_t m = 0;
    int rc = -1;
    if (gw_env_put_secrets(e, u->secret, sizeof(u->secret), &m) == 0) {
        int sl = store_sess_seal(keys, skey, u->secret, m, u->sealed,
                                 sizeof(u->sealed));
        rc =
            sl >= 0 && gw_env_put(buf, cap, &n, "x", u->sealed, (size_t)sl) == 0
                ? (int)n
                : -1;
    }
    sodium_memzero(u->secret, m);
    return rc;
}

/* Unescape v[0..n) into out (cap bytes, NUL-terminated). */
static int
gw_env_unesc(const char *v, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\0') return -1;
        if (c == '\\') {
            if (++i == n) return -1;
            if (v[i] == 'n')
                c = '\n';
            else if (v[i] == '\\')
                c = '\\';
            else
                return -1;
        }
        if (o + 1 >= cap) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int
gw_env_num(const char *v, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    char num[24];
    if (n == 0 || n >= sizeof(num)) return -1;
    memcpy(num, v, n);
    num[n] = '\0';
    char *end;
    long long x = strtoll(num, &end, 10);
    if (*end != '\0' || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

/* Lines of buf into e.  secret: the sealed part, which has only the
 * secret fields; else the envelope, whose secrets must come sealed ("x",
 * opened with keys for the session skey) when keys is not NULL.  Sets
 * *version when "e=1" was read. */
static int
gw_env_lines(struct gw_ussd *u, const struct store *keys, const char *skey,
             const char *buf, size_t len, struct gw_env *e, int secret,
             int *version)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (nl == NULL) return -1;
        const char *line = buf + i;
        size_t ll = (size_t)(nl - line);
        const char *eq = memchr(line, '=', ll);
        if (eq == NULL) return -1;
        size_t kl = (size_t)(eq - line);
        const char *v = eq + 1;
        size_t vl = ll - kl - 1;
        int64_t x;
        int rc = 0;
        /* the secret fields come sealed when there is a key */
        int clear_ok = secret || keys == NULL;
#define GW_ENV_IS(s) (kl == sizeof(s) - 1 && memcmp(line, s, kl) == 0)
        if (GW_ENV_IS("at")) {
            rc = clear_ok ? gw_env_unesc(v, vl, e->at, sizeof(e->at)) : -1;
        } else if (GW_ENV_IS("in")) {
            rc = clear_ok ? gw_env_unesc(v, vl, e->in, sizeof(e->in)) : -1;
        } else if (GW_ENV_IS("out")) {
            rc = clear_ok ? gw_env_unesc(v, vl, e->out, sizeof(e->out)) : -1;
        } else if (GW_ENV_IS("st")) {
            rc = clear_ok ? gw_env_unesc(v, vl, e->st, sizeof(e->st)) : -1;
        } else if (secret) {
            rc = -1;
        } else if (GW_ENV_IS("x")) {
            int n = keys != NULL ? store_sess_open(keys, skey, v, vl, u->secret,
                                                   sizeof(u->secret))
                                 : -1;
            rc = n >= 0 ? gw_env_lines(u, keys, skey, u->secret, (size_t)n, e,
                                       1, version)
                        : -1;
            sodium_memzero(u->secret, sizeof(u->secret));
        } else if (GW_ENV_IS("e")) {
            rc = vl == 1 && v[0] == '1' ? 0 : -1;
            *version = 1;
        } else if (GW_ENV_IS("dlg")) {
            rc = gw_env_unesc(v, vl, e->dlg, sizeof(e->dlg));
        } else if (GW_ENV_IS("seq")) {
            rc = gw_env_num(v, vl, 0, 255, &x);
            e->seq = (unsigned)x;
        } else if (GW_ENV_IS("mo")) {
            rc = gw_env_unesc(v, vl, e->mo, sizeof(e->mo));
        } else if (GW_ENV_IS("t")) {
            rc = gw_env_num(v, vl, 0, INT64_MAX, &e->t);
        } else if (GW_ENV_IS("end")) {
            rc = gw_env_num(v, vl, 0, 1, &x);
            e->end = (int)x;
        } else if (GW_ENV_IS("enc")) {
            rc = gw_env_num(v, vl, 0, 1, &x);
            e->enc = (int)x;
        } else {
            rc = -1;
        }
#undef GW_ENV_IS
        if (rc < 0) return -1;
        i += ll + 1;
    }
    return 0;
}

/* Contract in gw_ussd_int.h. */
int
gw_env_decode(struct gw_ussd *u, const struct store *keys, const char *skey,
              const char *buf, size_t len, struct gw_env *e)
{
    int version = 0;
    memset(e, 0, sizeof(*e));
    if (gw_env_lines(u, keys, skey, buf, len, e, 0, &version) < 0) return -1;
    return version == 1 ? 0 : -1;
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
static void
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
static void
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
static void
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

static void gw_step_run(struct gw_step *s);

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
static void
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

static void
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

/* ------------------------------------------------------------------------
 * The step
 */

static int
gw_step_same(const char *a, const char *b, size_t blen)
{
    return strlen(a) == blen && memcmp(a, b, blen) == 0;
}

/* Is the first word of an SMS one of words (after normalisation)? */
static int
gw_sms_word(const char *word, const char *const *words)
{
    for (size_t i = 0; words[i]; i++)
        if (strcasecmp(word, words[i]) == 0) return 1;
    return 0;
}

/* STOP or START recorded (status 0) or not: say so by SMS. */
static void
gw_sms_optout_cb(int status, void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    gw_req_enter(r);
    switch (s->state) {
    case GW_STEP_OPTOUT:
        break;
    default:
        WRONG("opt-out answered out of turn");
    }
    const char *id = status != 0 ? "try_later"
                     : s->optout ? "sms_stopped"
                                 : "sms_started";
    flow_render_message(s->flows->set, s->st.lang, FLOW_CH_SMS, id, &s->out);
    gw_step_reply(s, s->out.text, s->out.enc, 1);
    gw_req_leave(r);
}

/* A reply of interest recorded (or not): thank the caller, ask for the
 * code when "1" could mean several notices, else the help text. */
static void
gw_sms_interest_cb(int status, int outcome, void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    gw_req_enter(r);
    switch (s->state) {
    case GW_STEP_INTEREST:
        break;
    default:
        WRONG("interest answered out of turn");
    }
    const char *id = status != 0                    ? "try_later"
                     : outcome == 1 || outcome == 2 ? "sms_interest"
                     : outcome == 3                 ? "sms_interest_which"
                                                    : "sms_help";
    GW_RLOG(GW_LEVEL_INFO, r, 0, "interest reply outcome=%d", outcome);
    flow_render_message(s->flows->set, s->st.lang, FLOW_CH_SMS, id, &s->out);
    gw_step_reply(s, s->out.text, s->out.enc, 1);
    gw_req_leave(r);
}

/* Could word be a reply to a notice: "1", or a reply code (a letter then
 * 1..7 letters or digits, as 008_notices.sql allows)? */
static int
gw_sms_reply_code(const char *word)
{
    size_t n = strlen(word);
    if (strcmp(word, "1") == 0) return 1;
    if (n < 2 || n > 8) return 0;
    if (!((word[0] >= 'A' && word[0] <= 'Z') ||
          (word[0] >= 'a' && word[0] <= 'z')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = word[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9')))
            return 0;
    }
    /* a code has a digit; words without one are left to the keywords */
    return strcspn(word, "0123456789") < n;
}

/* The language of an SMS answer, one rule for every keyword (STOP,
 * START, HELP, REG, SKILL, STATUS, their Bangla words) and for the help
 * text sent outside a dialogue: the language of the caller's SMS session
 * (chosen or given in the last sessions.sms_ttl), else known (the
 * language of the caller's record; NULL: none), else the script of the
 * first word: Bangla (anything outside ASCII) -> "bn", a Latin letter ->
 * "en", neither (digits, "?", nothing) -> "" (the flows' default). */
static const char *
gw_sms_lang(const struct flow_state *st, const char *known, const char *word)
{
    if (st->flags & FLOW_SF_LANG) return st->lang;
    if (known != NULL && known[0] != '\0') return known;
    int letter = 0;
    for (const unsigned char *p = (const unsigned char *)word; *p; p++) {
        if (*p >= 0x80) return "bn";
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) letter = 1;
    }
    return letter ? "en" : "";
}

/* An SMS, once the language on record is known (known: NULL when the
 * caller has none, or it could not be read): STOP and START (and their
 * Bangla words) switch programme notices off and on; a keyword starts its
 * flow; HELP (or anything outside a dialogue) gets the help text;
 * otherwise it answers the open question.  One question per SMS, the
 * session kept for sessions.sms_ttl. */
static void
gw_sms_answer(struct gw_step *s, const char *known)
{
    static const char *const help[] = {"HELP", "সাহায্য", "?", NULL};
    /* the usual opt-out and opt-in words (reference/notices.md 6): never
     * YES, and no other message re-subscribes a number */
    static const char *const stop[] = {
        "STOP",  "STOPALL", "UNSUBSCRIBE", "CANCEL", "END",   "QUIT", "বন্ধ",
        "বাতিল", "থামুন",    "BONDHO",      "BONDO",  "BATIL", NULL};
    static const char *const start[] = {"START", "UNSTOP", "চালু",
                                        "শুরু",    "CHALU",  NULL};
    const struct flow_set *set = s->flows->set;
    struct flow_ctx ctx = {.now = s->now};
    gw_ussd_nonce(s->u, ctx.nonce, sizeof(ctx.nonce));

    char norm[FLOW_INPUT_MAX + 1], word[FLOW_INPUT_MAX + 1];
    if (s->input_len > FLOW_INPUT_MAX ||
        flow_text_normalise(s->input, s->input_len, 1, norm, sizeof(norm)) < 0)
        norm[0] = '\0';
    size_t wl = strcspn(norm, " ");
    memcpy(word, norm, wl);
    word[wl] = '\0';

    char lang[FLOW_LANG_MAX];
    snprintf(lang, sizeof(lang), "%s", gw_sms_lang(&s->st, known, word));
    int out = gw_sms_word(word, stop) ? 1 : gw_sms_word(word, start) ? 0 : -1;
    if (out >= 0) {
        snprintf(s->st.lang, sizeof(s->st.lang), "%s", lang);
        s->optout = out;
        gw_step_to(s, GW_STEP_OPTOUT);
        if (gw_sms_optout(s->u->srv, s->msisdn, out, gw_sms_optout_cb, s) !=
            0) {
            GW_RLOG(GW_LEVEL_WARN, s->r, 0, "opt-out not recorded");
            gw_sms_optout_cb(-1, s);
        }
        return;
    }
    const char *kw = wl ? flow_keyword(set, word) : NULL;
    int live = s->st.flow[0] && !(s->st.flags & FLOW_SF_DONE);
    if (kw == NULL && !live && gw_sms_reply_code(word) &&
        s->u->cfg->pg_dsn[0] != '\0') {
        /* outside a dialogue, "J12" or "1" may answer a notice */
        snprintf(s->st.lang, sizeof(s->st.lang), "%s", lang);
        gw_step_to(s, GW_STEP_INTEREST);
        if (gw_sms_interest(s->u->srv, s->msisdn, word, gw_sms_interest_cb,
                            s) != 0)
            gw_sms_interest_cb(-1, 0, s);
        return;
    }
    if (kw != NULL) {
        /* REG after part 1 was saved: the first part still to do */
        unsigned parts = s->st.parts, k, total;
        const char *next = flow_part_next(set, &s->st, &k, &total);
        if (next != NULL && flow_part_num(set, kw) == 1) kw = next;
        memset(&s->st, 0, sizeof(s->st));
        flow_start(set, &s->st, kw, lang, FLOW_CH_SMS, &ctx, &s->out);
        s->st.flags |= FLOW_SF_LANG;
        s->st.parts = parts;
        gw_metric_inc(GW_M_SESSIONS, "started", NULL);
    } else if (!live || gw_sms_word(word, help)) {
        flow_render_message(set, lang, FLOW_CH_SMS, "sms_help", &s->out);
        gw_step_reply(s, s->out.text, s->out.enc, 1);
        return;
    } else {
        flow_step(set, &s->st, s->input, s->input_len, &ctx, &s->out);
    }
    gw_step_finish(s);
}

/* The caller's record looked up for its language. */
static void
gw_sms_lang_cb(const struct gw_act_result *res, void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    gw_req_enter(r);
    switch (s->state) {
    case GW_STEP_LOOKUP:
        break;
    default:
        WRONG("language lookup answered out of turn");
    }
    gw_sms_answer(s, res->status == GW_ACT_DONE ? res->lang : NULL);
    gw_req_leave(r);
}

/* An SMS: a repeat of one already answered is dropped; without a language
 * in the caller's SMS session, the record's is looked up first (when there
 * is a database). */
static void
gw_sms_run(struct gw_step *s)
{
    struct gw_env *e = &s->env;
    if (s->mo[0] && strcmp(e->mo, s->mo) == 0) {
        /* Kannel delivered this MO twice: the answer went out already */
        gw_metric_inc(GW_M_DUPLICATES, "sms", NULL);
        GW_RLOG(GW_LEVEL_INFO, s->r, 0, "duplicate SMS: not answered again");
        gw_flows_unref(s->flows);
        s->flows = NULL;
        gw_reply_text(s->r, 200, "text/plain; charset=utf-8", "");
        return;
    }
    if (!s->parts_read) {
        /* REG offers the part still to do, whichever channel saved the
         * others; an answer to a part saved by USSD meanwhile is not
         * taken */
        gw_step_parts_read(s);
        return;
    }
    if ((s->st.flags & FLOW_SF_LANG) || s->u->cfg->pg_dsn[0] == '\0') {
        gw_sms_answer(s, NULL);
        return;
    }
    char rec[GW_MSISDN_MAX + 16];
    int n = snprintf(rec, sizeof(rec), "{\"msisdn\":\"%s\"}", s->msisdn);
    gw_step_to(s, GW_STEP_LOOKUP);
    if (gw_action_run(s->u->srv, "status_lookup", rec, (size_t)n,
                      gw_sms_lang_cb, s) != 0)
        gw_sms_answer(s, NULL);
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

static void
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
static void
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

static void
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

/* Wait for Redis, once a step: 0, or -1 (not configured, stopping, too
 * many waiting, waited once already): then the caller hears "busy" now. */
static int
gw_step_park(struct gw_step *s)
{
    struct gw_ussd *u = s->u;
    const struct gw_config *cfg = u->cfg;
    long ms = cfg->redis_wait_ms;
    if (ms > cfg->request_timeout_ms - cfg->redis_timeout_ms)
        ms = cfg->request_timeout_ms - cfg->redis_timeout_ms;
    if (ms <= 0 || u->stopping || u->nparked >= GW_PARK_MAX || s->waited)
        return -1;
    s->park_ev = evtimer_new(gw_server_base(u->srv), gw_step_park_timeout, s);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (s->park_ev == NULL || evtimer_add(s->park_ev, &tv) != 0) {
        if (s->park_ev != NULL) event_free(s->park_ev);
        s->park_ev = NULL;
        return -1;
    }
    TAILQ_INSERT_TAIL(&u->parked, s, park_link);
    u->nparked++;
    s->waited = 1;
    /* connected again already (a drop seen late): go on at once; while
     * hiredis answers a dropped connection's commands it still looks
     * connected, and gw_ussd_unpark_cb() then leaves the steps waiting */
    if (sess_connected(u->srv->sess)) event_active(u->unpark, EV_TIMEOUT, 1);
    GW_RLOG(GW_LEVEL_DEBUG, s->r, 0, "waiting for redis (at most %ld ms)", ms);
    return 0;
}

/* Redis is back: every step waiting runs again from a fresh read now (and
 * hears "busy" at once if Redis went again meanwhile). */
static void
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
static void
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
    struct {
        gw_health_done_cb *done;
        void *arg;
    } *p = arg;
    p->done(status == SESS_OK ? 0 : -1, p->arg);
    free(p);
}

static void
gw_ussd_probe(void *probe_arg, gw_health_done_cb *done, void *done_arg)
{
    struct gw_ussd *u = probe_arg;
    struct {
        gw_health_done_cb *done;
        void *arg;
    } *p = malloc(sizeof(*p));
    if (p == NULL) {
        done(-1, done_arg);
        return;
    }
    p->done = done;
    p->arg = done_arg;
    if (sess_ping(u->srv->sess, gw_ussd_ping_cb, p) != SESS_OK) {
        free(p);
        done(-1, done_arg);
    }
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
