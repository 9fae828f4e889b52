/*
 * store_pg.c -- the records store: its public calls and its requests.
 * The connections, the statements and the batches are store_pg_conn.c; a
 * record's JSON is read into a request by store_pg_rec.c.
 *
 * A request is a chain of steps run on one connection (a submission is
 * BEGIN, insert the submission, apply it to the profile, COMMIT), with one
 * deadline timer from the moment it was accepted.  When the deadline
 * passes the connection is simply closed (PQcancel would block the loop);
 * the open transaction dies with it.  Requests wait in a bounded FIFO while
 * every connection is busy; they are handed to connections from the loop
 * (a "kick" event), so no callback ever runs inside the API call that
 * started it.  State is always settled before a callback runs, and nothing
 * of the request is touched after it, so callbacks may start new requests
 * or stop the store.
 *
 * Why not store_pool.c: a submission's next statement depends on the last
 * one's result (the insert's RETURNING id, else the duplicate's row; the
 * apply's row, else COMMIT or ROLLBACK as keep_unregistered says), and
 * several registrations share one transaction (STORE_BATCH_MAX) and run
 * again alone when it fails.  The pool sends a fixed list of statements
 * in one pipeline, so moving onto it would change the SQL and the
 * batching, not only where the code lives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "store/store_pg_int.h"


const char *
store_strerror(int err)
{
    switch (err) {
#define STORE_X_STR(name, val, text)                                           \
    case name:                                                                 \
        return text;
        STORE_ERRORS(STORE_X_STR)
#undef STORE_X_STR
    default:
        return "unknown error";
    }
}

const char *
store_rec_status_name(enum store_rec_status st)
{
    switch (st) {
    case STORE_REC_PENDING:
        return "pending";
    case STORE_REC_VERIFIED:
        return "verified";
    case STORE_REC_REJECTED:
        return "rejected";
    case STORE_REC_NEEDS_INFO:
        return "needs_info";
    case STORE_REC_NONE:
    default:
        return "none";
    }
}

enum store_rec_status
store_rec_status_parse(const char *s)
{
    if (strcmp(s, "pending") == 0) return STORE_REC_PENDING;
    if (strcmp(s, "verified") == 0) return STORE_REC_VERIFIED;
    if (strcmp(s, "rejected") == 0) return STORE_REC_REJECTED;
    if (strcmp(s, "needs_info") == 0) return STORE_REC_NEEDS_INFO;
    return STORE_REC_NONE;
}

void
store_assert_fail(const char *func, const char *file, int line,
                  const char *cond)
{
    fprintf(stderr, "store: assertion failed in %s %s:%d: %s\n", func, file,
            line, cond);
    abort();
}

const struct store_keys *
store_keys_of(const struct store *s)
{
    return s->keys;
}

const char *
store_errstr(const struct store *s)
{
    return s->errstr;
}

/* Remember a libpq message, on one line. */
void
store_set_err(struct store *s, const char *what, const char *msg)
{
    snprintf(s->errstr, sizeof(s->errstr), "%s: %s", what, msg ? msg : "");
    for (char *p = s->errstr; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

/* ------------------------------------------------------------------------
 * Requests
 */

static void
store_req_free(struct store_req *r)
{
    if (r == NULL) return;
    if (r->deadline) event_free(r->deadline);
    free(r->answers);
    free(r->pers_enc);
    sodium_memzero(r, sizeof(*r));
    free(r);
}

/* The request is detached from every list and connection: run its
 * callback and free it. */
void
store_req_complete(struct store_req *r)
{
    struct store_result res;
    store_submit_cb *cb = r->cb;
    void *arg = r->arg;
    int status = r->status;

    STORE_AN(r->magic == STORE_REQ_MAGIC);
    STORE_AN(!r->queued && r->conn == NULL);
    event_del(r->deadline);
    res.ref = r->ref_out;
    res.duplicate = r->duplicate;
    res.status = r->rstatus;
    res.reject_reason = r->reason;
    res.lang = r->lang_out;
    res.id_shared = r->id_shared;
    res.unknown = r->unknown;
    res.errstr = status == 0    ? ""
                 : r->errstr[0] ? r->errstr
                                : store_strerror(status);
    cb(status, &res, arg);
    store_req_free(r);
}

void
store_req_unqueue(struct store_req *r)
{
    struct store *s = r->s;

    if (r->queued) {
        TAILQ_REMOVE(&s->waiting, r, link);
        r->queued = 0;
        s->nwaiting--;
    }
}

static void
store_req_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct store_req *r = arg;

    (void)fd;
    (void)what;
    STORE_AN(r->magic == STORE_REQ_MAGIC);
    r->status = STORE_ETIMEDOUT;
    snprintf(r->errstr, sizeof(r->errstr), "query deadline of %d ms passed",
             r->timeout_ms);
    if (r->queued) {
        store_req_unqueue(r);
        store_req_complete(r);
    } else {
        /* Close the connection that runs it: drop settles the connection,
         * then calls back with r->status. */
        STORE_AN(r->conn != NULL);
        store_conn_drop(r->conn, STORE_ETIMEDOUT, "query deadline passed");
    }
}

/* A request with its deadline (timeout_ms, <= 0: the store's) running, or
 * NULL. */
static struct store_req *
store_req_new(struct store *s, enum store_req_kind kind, int timeout_ms,
              store_submit_cb *cb, void *arg)
{
    struct store_req *r = calloc(1, sizeof(*r));
    struct timeval tv;

    if (r == NULL) return NULL;
    r->magic = STORE_REQ_MAGIC;
    r->s = s;
    r->kind = kind;
    r->cb = cb;
    r->arg = arg;
    r->deadline = evtimer_new(s->base, store_req_on_deadline, r);
    if (r->deadline == NULL) {
        free(r);
        return NULL;
    }
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : s->timeout_ms;
    tv.tv_sec = r->timeout_ms / 1000;
    tv.tv_usec = (r->timeout_ms % 1000) * 1000;
    evtimer_add(r->deadline, &tv);
    return r;
}

/* Queue r (the deadline already runs); the loop hands it to a connection.
 * Returns 0 or STORE_EBUSY (r is then freed). */
static int
store_req_enqueue(struct store *s, struct store_req *r)
{
    if (s->nwaiting >= s->max_waiting) {
        store_req_free(r);
        return STORE_EBUSY;
    }
    TAILQ_INSERT_TAIL(&s->waiting, r, link);
    r->queued = 1;
    s->nwaiting++;
    event_active(s->kick, EV_TIMEOUT, 0);
    return 0;
}

static void
store_on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store_dispatch(arg);
}

/* ------------------------------------------------------------------------
 * Public
 */

struct store *
store_new(const struct store_config *cfg, struct event_base *base, char *err,
          size_t errlen)
{
    struct store *s;

    if (cfg == NULL || base == NULL || cfg->pool < 0 || cfg->pool > 64 ||
        cfg->timeout_ms < 0 || cfg->max_waiting < 0 || cfg->batch < 0 ||
        cfg->batch > STORE_BATCH_MAX) {
        snprintf(err, errlen, "store: bad configuration");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "store: out of memory");
        return NULL;
    }
    s->magic = STORE_MAGIC;
    s->base = base;
    s->pool = cfg->pool ? cfg->pool : 4;
    s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 2000;
    s->max_waiting = cfg->max_waiting ? cfg->max_waiting : 1024;
    s->batch = cfg->batch ? cfg->batch : 1;
    TAILQ_INIT(&s->waiting);
    /* guard pages, mlock and MADV_DONTDUMP (libsodium 1.0.18's
     * sodium_malloc() does all three), so the keys stay out of swap and of
     * any core dump */
    s->keys = sodium_init() >= 0 ? sodium_malloc(sizeof(*s->keys)) : NULL;
    if (s->keys == NULL) {
        snprintf(err, errlen, "store: out of memory for the keys");
        goto fail;
    }
    if (store_keys_load(cfg->key_file, s->keys, err, errlen) != 0) goto fail;
    s->dsn = strdup(cfg->dsn ? cfg->dsn : "");
    s->conns = calloc((size_t)s->pool, sizeof(*s->conns));
    s->kick = event_new(base, -1, 0, store_on_kick, s);
    if (s->dsn == NULL || s->conns == NULL || s->kick == NULL) {
        snprintf(err, errlen, "store: out of memory");
        goto fail;
    }
    for (int i = 0; i < s->pool; i++) {
        struct store_conn *c = &s->conns[i];
        c->magic = STORE_CONN_MAGIC;
        c->s = s;
        if (store_link_init(&c->l, base, store_conn_on_io, store_conn_on_timer,
                            c) != 0) {
            snprintf(err, errlen, "store: out of memory");
            goto fail;
        }
    }
    return s;
fail:
    store_free(s);
    return NULL;
}

int
store_start(struct store *s)
{
    STORE_AN(s->magic == STORE_MAGIC);
    if (s->running) return STORE_EINVAL;
    s->running = 1;
    for (int i = 0; i < s->pool; i++) {
        s->conns[i].l.backoff_ms = 0;
        store_link_schedule(&s->conns[i].l, 0);
    }
    return 0;
}

void
store_stop(struct store *s)
{
    struct store_req_list failed;
    struct store_req *r;

    STORE_AN(s->magic == STORE_MAGIC);
    if (!s->running) return;
    s->running = 0;
    event_del(s->kick);
    TAILQ_INIT(&failed);
    /* Settle everything first, then call back. */
    for (int i = 0; i < s->pool; i++) {
        struct store_conn *c = &s->conns[i];
        struct store_req *reqs[STORE_BATCH_MAX];
        int n = store_conn_detach(c, reqs);
        store_conn_drop(c, STORE_EDOWN, NULL);
        for (int k = 0; k < n; k++)
            TAILQ_INSERT_TAIL(&failed, reqs[k], link);
    }
    while ((r = TAILQ_FIRST(&s->waiting)) != NULL) {
        store_req_unqueue(r);
        TAILQ_INSERT_TAIL(&failed, r, link);
    }
    while ((r = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, r, link);
        r->status = STORE_EDOWN;
        snprintf(r->errstr, sizeof(r->errstr), "store stopped");
        store_req_complete(r);
    }
}

void
store_free(struct store *s)
{
    if (s == NULL) return;
    STORE_AN(s->magic == STORE_MAGIC);
    store_stop(s);
    for (int i = 0; s->conns && i < s->pool; i++)
        store_link_fini(&s->conns[i].l);
    if (s->kick) event_free(s->kick);
    free(s->conns);
    free(s->dsn);
    if (s->keys != NULL) {
        store_keys_wipe(s->keys);
        sodium_free(s->keys);
    }
    s->magic = 0;
    free(s);
}

int
store_connected(const struct store *s)
{
    int n = 0;

    for (int i = 0; i < s->pool; i++)
        if (s->conns[i].state == STORE_CONN_IDLE ||
            s->conns[i].state == STORE_CONN_BUSY)
            n++;
    return n;
}

/* Checks shared by every request. */
static int
store_can_take(const struct store *s)
{
    if (!s->running || store_connected(s) == 0) return STORE_EDOWN;
    if (s->nwaiting >= s->max_waiting) return STORE_EBUSY;
    return 0;
}

int
store_submit(struct store *s, const char *record_json, size_t len,
             store_submit_cb *cb, void *arg)
{
    return store_submit_with(s, record_json, len, NULL, cb, arg);
}

int
store_submit_with(struct store *s, const char *record_json, size_t len,
                  const struct store_submit_opts *opts, store_submit_cb *cb,
                  void *arg)
{
    struct store_req *r;
    int rc;

    if (s == NULL || record_json == NULL || cb == NULL) return STORE_EINVAL;
    STORE_AN(s->magic == STORE_MAGIC);
    if ((rc = store_can_take(s)) != 0) return rc;
    r = store_req_new(s, STORE_REQ_REGISTER, opts ? opts->timeout_ms : 0, cb,
                      arg);
    if (r == NULL) return STORE_ENOMEM;
    r->keep = opts ? opts->keep_unregistered : 0;
    rc = store_req_parse(s, r, record_json, len);
    if (rc != 0) {
        store_req_free(r);
        return rc;
    }
    return store_req_enqueue(s, r);
}

int
store_status(struct store *s, const char *msisdn, store_status_cb *cb,
             void *arg)
{
    struct store_req *r;
    int rc;

    if (s == NULL || msisdn == NULL || cb == NULL ||
        !store_str_chars(msisdn, "0123456789", 8, 15))
        return STORE_EINVAL;
    STORE_AN(s->magic == STORE_MAGIC);
    if ((rc = store_can_take(s)) != 0) return rc;
    r = store_req_new(s, STORE_REQ_STATUS, 0, cb, arg);
    if (r == NULL) return STORE_ENOMEM;
    snprintf(r->msisdn, sizeof(r->msisdn), "%s", msisdn);
    return store_req_enqueue(s, r);
}

int
store_ping(struct store *s, int sleep_ms, store_status_cb *cb, void *arg)
{
    struct store_req *r;
    int rc;

    if (s == NULL || cb == NULL || sleep_ms < 0 || sleep_ms > 600000)
        return STORE_EINVAL;
    STORE_AN(s->magic == STORE_MAGIC);
    if ((rc = store_can_take(s)) != 0) return rc;
    r = store_req_new(s, STORE_REQ_PING, 0, cb, arg);
    if (r == NULL) return STORE_ENOMEM;
    snprintf(r->sleep_ms, sizeof(r->sleep_ms), "%d", sleep_ms);
    return store_req_enqueue(s, r);
}
