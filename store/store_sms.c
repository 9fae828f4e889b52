/*
 * store_sms.c -- the sms_out table: a small pool of its own, on libevent.
 *
 * Every request here is one statement, so a connection is simpler than
 * the record store's: DOWN -> CONNECTING -> IDLE <-> BUSY, one socket
 * event and one timer, PQsendQueryParams with text parameters (no prepared
 * statements, so a fresh connection takes work at once).  Each request has
 * its own deadline from the moment it was accepted; when it passes, the
 * connection running it is closed (PQcancel would block) and opened again
 * after a jittered backoff.  Waiting requests sit in a bounded FIFO and
 * are handed out from the loop (a "kick" event), so no callback runs
 * inside the call that started it; state is settled before each callback.
 *
 * The statements keep the table's promises themselves: an insert that
 * finds its id does nothing, and a delivery report moves dlr_state only
 * to a higher remigate_dlr_rank() (002_sms.sql) under the row's lock, so
 * repeats, reordered reports and racing workers all end in one state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "store/store_int.h"

#define SMS_MAGIC       0x534d5351u
#define SMS_REQ_MAGIC   0x534d5352u
#define SMS_BACKOFF_MIN 100
#define SMS_BACKOFF_MAX 5000
#define SMS_CONNECT_MIN 2000
#define SMS_TEXT_MAX    4096 /* bytes of message text */
#define SMS_ANSWER_MAX  1024 /* bytes kept of an answer or receipt */
#define SMS_PARAMS_MAX  6

enum sms_kind {
    SMS_REQ_INSERT,
    SMS_REQ_SENT,
    SMS_REQ_DLR,
    SMS_REQ_OPTOUT,
    SMS_REQ_INTEREST
};

static const char *const sms_sql[] = {
    [SMS_REQ_INSERT] = "INSERT INTO sms_out (id, msisdn, kind, text, coding)"
                       " VALUES ($1::uuid, $2, $3, $4, $5::smallint)"
                       " ON CONFLICT (id) DO NOTHING",
    [SMS_REQ_SENT] =
        "UPDATE sms_out SET tries = $2::int,"
        " kannel_status = nullif($3::int, 0), kannel_answer = $4,"
        " accepted_at = CASE WHEN $5::bool THEN coalesce(accepted_at, now())"
        "  ELSE accepted_at END,"
        " failed_at = CASE WHEN $5::bool THEN NULL ELSE now() END"
        " WHERE id = $1::uuid RETURNING 1",
    /* Lock the row first so the rank is compared with the latest state. */
    [SMS_REQ_DLR] =
        "WITH o AS (SELECT id, dlr_state FROM sms_out WHERE id = $1::uuid"
        "  FOR UPDATE),"
        " a AS (SELECT remigate_dlr_rank($2::smallint) >"
        "  remigate_dlr_rank(o.dlr_state) AS adv FROM o)"
        " UPDATE sms_out s SET dlr_reports = s.dlr_reports + 1,"
        " dlr_state = CASE WHEN a.adv THEN $2::smallint ELSE s.dlr_state END,"
        " dlr_at = CASE WHEN a.adv THEN now() ELSE s.dlr_at END,"
        " dlr_answer = CASE WHEN a.adv THEN $3 ELSE s.dlr_answer END,"
        " dlr_smsc_at = CASE WHEN a.adv THEN to_timestamp($4::bigint)"
        "  ELSE s.dlr_smsc_at END"
        " FROM o, a WHERE s.id = o.id RETURNING s.dlr_state, a.adv",
    [SMS_REQ_OPTOUT] =
        "INSERT INTO sms_optout (msisdn, opted_out) VALUES ($1, $2::bool)"
        " ON CONFLICT (msisdn) DO UPDATE SET opted_out = EXCLUDED.opted_out,"
        " changed_at = now()",
    [SMS_REQ_INTEREST] = "SELECT notice_interest_record($1, $2)",
};

static const int sms_nparams[] = {[SMS_REQ_INSERT] = 5,
                                  [SMS_REQ_SENT] = 5,
                                  [SMS_REQ_DLR] = 4,
                                  [SMS_REQ_OPTOUT] = 2,
                                  [SMS_REQ_INTEREST] = 2};

enum sms_conn_state {
    SMS_CONN_DOWN,       /* timer = next attempt */
    SMS_CONN_CONNECTING, /* timer = connect deadline */
    SMS_CONN_IDLE,
    SMS_CONN_BUSY
};

struct sms_conn;

struct sms_req {
    unsigned magic;
    struct store_sms *q;
    TAILQ_ENTRY(sms_req) link;
    int queued;
    struct sms_conn *conn;
    struct event *deadline;
    store_sms_cb *cb;
    void *arg;
    enum sms_kind kind;
    int status;
    char *p[SMS_PARAMS_MAX]; /* owned; NULL = SQL NULL */
    int dlr_state, changed, interest;
    char errstr[160];
};

TAILQ_HEAD(sms_req_list, sms_req);

struct sms_conn {
    struct store_sms *q;
    enum sms_conn_state state;
    PGconn *pg;
    struct event *ev;
    int ev_fd;
    short ev_what;
    struct event *timer;
    int backoff_ms;
    PGresult *res;
    struct sms_req *req;
};

struct store_sms {
    unsigned magic;
    struct event_base *base;
    char *dsn;
    int pool, timeout_ms, max_waiting;
    int running;
    struct sms_conn *conns;
    struct sms_req_list waiting;
    int nwaiting;
    struct event *kick;
};

static void sms_conn_drop(struct sms_conn *c, int status, const char *why);
static void sms_dispatch(struct store_sms *q);
static void sms_conn_on_io(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------------------
 * Requests
 */

static void
sms_req_free(struct sms_req *r)
{
    if (r == NULL) return;
    if (r->deadline) event_free(r->deadline);
    for (int i = 0; i < SMS_PARAMS_MAX; i++)
        free(r->p[i]);
    r->magic = 0;
    free(r);
}

/* r is on no list and no connection: call back, then free. */
static void
sms_req_complete(struct sms_req *r)
{
    struct store_sms_result res;

    STORE_AN(r->magic == SMS_REQ_MAGIC);
    STORE_AN(!r->queued && r->conn == NULL);
    event_del(r->deadline);
    res.dlr_state = r->dlr_state;
    res.changed = r->changed;
    res.interest = r->interest;
    res.errstr = r->status == 0 ? ""
                 : r->errstr[0] ? r->errstr
                                : store_strerror(r->status);
    r->cb(r->status, &res, r->arg);
    sms_req_free(r);
}

static void
sms_req_unqueue(struct sms_req *r)
{
    if (!r->queued) return;
    TAILQ_REMOVE(&r->q->waiting, r, link);
    r->queued = 0;
    r->q->nwaiting--;
}

static void
sms_req_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct sms_req *r = arg;

    (void)fd;
    (void)what;
    STORE_AN(r->magic == SMS_REQ_MAGIC);
    r->status = STORE_ETIMEDOUT;
    snprintf(r->errstr, sizeof(r->errstr), "query deadline of %d ms passed",
             r->q->timeout_ms);
    if (r->queued) {
        sms_req_unqueue(r);
        sms_req_complete(r);
    } else {
        STORE_AN(r->conn != NULL);
        sms_conn_drop(r->conn, STORE_ETIMEDOUT, NULL);
    }
}

/* Checks shared by every request.  While a connection is on its first
 * attempt (at start, or just after it was up) requests wait in the queue
 * under their deadline; once every attempt failed, they fail at once. */
static int
sms_can_take(const struct store_sms *q)
{
    int hope = 0;

    if (!q->running) return STORE_EDOWN;
    for (int i = 0; i < q->pool; i++)
        if (q->conns[i].state == SMS_CONN_IDLE ||
            q->conns[i].state == SMS_CONN_BUSY || q->conns[i].backoff_ms == 0)
            hope = 1;
    if (!hope) return STORE_EDOWN;
    if (q->nwaiting >= q->max_waiting) return STORE_EBUSY;
    return 0;
}

static struct sms_req *
sms_req_new(struct store_sms *q, enum sms_kind kind, store_sms_cb *cb,
            void *arg)
{
    struct sms_req *r = calloc(1, sizeof(*r));

    if (r == NULL) return NULL;
    r->magic = SMS_REQ_MAGIC;
    r->q = q;
    r->kind = kind;
    r->cb = cb;
    r->arg = arg;
    r->deadline = evtimer_new(q->base, sms_req_on_deadline, r);
    if (r->deadline == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

/* Set parameter i to a copy of s (NULL stays SQL NULL).  0 or -1. */
static int
sms_req_param(struct sms_req *r, int i, const char *s)
{
    if (s == NULL) return 0;
    r->p[i] = strdup(s);
    return r->p[i] == NULL ? -1 : 0;
}

static int
sms_req_paramf(struct sms_req *r, int i, long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v);
    return sms_req_param(r, i, buf);
}

/* Start r's deadline and queue it.  Returns 0, or STORE_EBUSY (r freed). */
static int
sms_req_enqueue(struct store_sms *q, struct sms_req *r)
{
    struct timeval tv = {q->timeout_ms / 1000, (q->timeout_ms % 1000) * 1000};

    if (q->nwaiting >= q->max_waiting) {
        sms_req_free(r);
        return STORE_EBUSY;
    }
    evtimer_add(r->deadline, &tv);
    TAILQ_INSERT_TAIL(&q->waiting, r, link);
    r->queued = 1;
    q->nwaiting++;
    event_active(q->kick, EV_TIMEOUT, 0);
    return 0;
}

/* ------------------------------------------------------------------------
 * Connections
 */

static int
sms_conn_watch(struct sms_conn *c, short what)
{
    int fd = PQsocket(c->pg);

    if (fd < 0) return -1;
    if (c->ev != NULL && (c->ev_fd != fd || c->ev_what != what)) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (c->ev == NULL) {
        c->ev = event_new(c->q->base, fd, what | EV_PERSIST, sms_conn_on_io, c);
        if (c->ev == NULL || event_add(c->ev, NULL) != 0) return -1;
        c->ev_fd = fd;
        c->ev_what = what;
    }
    return 0;
}

static int
sms_conn_flush(struct sms_conn *c)
{
    int f = PQflush(c->pg);

    if (f < 0) return -1;
    return sms_conn_watch(c, f == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void
sms_conn_schedule(struct sms_conn *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

/* Close c, plan the next attempt while running, fail its request. */
static void
sms_conn_drop(struct sms_conn *c, int status, const char *why)
{
    struct sms_req *r = c->req;
    int delay;

    if (c->ev) {
        event_free(c->ev);
        c->ev = NULL;
    }
    evtimer_del(c->timer);
    if (c->res) {
        PQclear(c->res);
        c->res = NULL;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->req = NULL;
    c->state = SMS_CONN_DOWN;
    if (c->q->running) {
        delay = c->backoff_ms;
        if (delay > 0)
            delay =
                delay / 2 + (int)randombytes_uniform((uint32_t)delay / 2 + 1);
        c->backoff_ms = c->backoff_ms == 0 ? SMS_BACKOFF_MIN
                        : c->backoff_ms * 2 > SMS_BACKOFF_MAX
                            ? SMS_BACKOFF_MAX
                            : c->backoff_ms * 2;
        sms_conn_schedule(c, delay);
    }
    if (r != NULL) {
        r->conn = NULL;
        if (r->status == 0 || status == STORE_ETIMEDOUT) r->status = status;
        if (r->errstr[0] == '\0' && why != NULL)
            snprintf(r->errstr, sizeof(r->errstr), "%s", why);
        sms_req_complete(r);
    }
}

static void
sms_conn_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void
sms_conn_connect(struct sms_conn *c)
{
    int ms =
        c->q->timeout_ms > SMS_CONNECT_MIN ? c->q->timeout_ms : SMS_CONNECT_MIN;

    c->pg = PQconnectStart(c->q->dsn);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        sms_conn_drop(c, STORE_EDOWN, NULL);
        return;
    }
    PQsetNoticeProcessor(c->pg, sms_conn_notice, NULL);
    c->state = SMS_CONN_CONNECTING;
    if (sms_conn_watch(c, EV_WRITE) != 0) {
        sms_conn_drop(c, STORE_EDOWN, NULL);
        return;
    }
    sms_conn_schedule(c, ms);
}

static void
sms_conn_poll(struct sms_conn *c)
{
    if (c->ev) {
        event_free(c->ev);
        c->ev = NULL;
    }
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (sms_conn_watch(c, EV_READ) != 0) sms_conn_drop(c, STORE_EDOWN, 0);
        break;
    case PGRES_POLLING_WRITING:
        if (sms_conn_watch(c, EV_WRITE) != 0)
            sms_conn_drop(c, STORE_EDOWN, NULL);
        break;
    case PGRES_POLLING_OK:
        evtimer_del(c->timer);
        if (PQsetnonblocking(c->pg, 1) != 0 ||
            sms_conn_watch(c, EV_READ) != 0) {
            sms_conn_drop(c, STORE_EDOWN, NULL);
            break;
        }
        c->state = SMS_CONN_IDLE;
        c->backoff_ms = 0;
        sms_dispatch(c->q);
        break;
    case PGRES_POLLING_FAILED:
    case PGRES_POLLING_ACTIVE:
    default:
        sms_conn_drop(c, STORE_EDOWN, NULL);
        break;
    }
}

/* The statement of c's request has delivered all its results. */
static void
sms_conn_done(struct sms_conn *c)
{
    struct sms_req *r = c->req;
    struct store_sms *q = c->q;
    PGresult *res = c->res;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    c->res = NULL;
    STORE_AN(r != NULL);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : 0;
        const char *msg =
            res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : 0;
        /* SQLSTATE and the primary message only: details quote values */
        r->status = STORE_EDB;
        snprintf(r->errstr, sizeof(r->errstr), "%s: %s", code ? code : "?",
                 msg ? msg : "no result");
    } else if (r->kind == SMS_REQ_SENT && PQntuples(res) == 0) {
        r->status = STORE_ENOTFOUND;
    } else if (r->kind == SMS_REQ_INTEREST) {
        r->interest = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
    } else if (r->kind == SMS_REQ_DLR) {
        if (PQntuples(res) == 0) {
            r->status = STORE_ENOTFOUND;
        } else {
            r->dlr_state = atoi(PQgetvalue(res, 0, 0));
            r->changed = PQgetvalue(res, 0, 1)[0] == 't';
        }
    }
    PQclear(res);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        /* the answer came; the connection is of no further use */
        c->req = NULL;
        r->conn = NULL;
        sms_conn_drop(c, STORE_EDOWN, NULL);
        sms_req_complete(r);
        return;
    }
    c->req = NULL;
    c->state = SMS_CONN_IDLE;
    r->conn = NULL;
    sms_req_complete(r);
    if (q->running) sms_dispatch(q);
}

static void
sms_conn_on_io(evutil_socket_t fd, short what, void *arg)
{
    struct sms_conn *c = arg;
    PGresult *x;

    (void)fd;
    if (c->state == SMS_CONN_CONNECTING) {
        sms_conn_poll(c);
        return;
    }
    if ((what & EV_WRITE) && sms_conn_flush(c) != 0) {
        sms_conn_drop(c, STORE_EDOWN, "connection lost");
        return;
    }
    if (!(what & EV_READ)) return;
    if (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
        sms_conn_drop(c, STORE_EDOWN, "connection lost");
        return;
    }
    if (c->state == SMS_CONN_IDLE) {
        while ((x = PQgetResult(c->pg)) != NULL)
            PQclear(x);
        return;
    }
    while (!PQisBusy(c->pg)) {
        x = PQgetResult(c->pg);
        if (x == NULL) {
            sms_conn_done(c);
            return;
        }
        if (c->res == NULL || PQresultStatus(c->res) == PGRES_COMMAND_OK ||
            PQresultStatus(c->res) == PGRES_TUPLES_OK) {
            PQclear(c->res);
            c->res = x;
        } else {
            PQclear(x);
        }
    }
}

static void
sms_conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sms_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->state == SMS_CONN_DOWN)
        sms_conn_connect(c);
    else if (c->state == SMS_CONN_CONNECTING)
        sms_conn_drop(c, STORE_EDOWN, NULL);
}

static void
sms_dispatch(struct store_sms *q)
{
    while (q->running && !TAILQ_EMPTY(&q->waiting)) {
        struct sms_conn *c = NULL;
        struct sms_req *r;

        for (int i = 0; i < q->pool; i++)
            if (q->conns[i].state == SMS_CONN_IDLE) {
                c = &q->conns[i];
                break;
            }
        if (c == NULL) return;
        r = TAILQ_FIRST(&q->waiting);
        sms_req_unqueue(r);
        r->conn = c;
        c->req = r;
        c->state = SMS_CONN_BUSY;
        if (!PQsendQueryParams(c->pg, sms_sql[r->kind], sms_nparams[r->kind],
                               NULL, (const char *const *)r->p, NULL, NULL,
                               0) ||
            sms_conn_flush(c) != 0)
            sms_conn_drop(c, STORE_EDOWN, "send failed");
    }
}

static void
sms_on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sms_dispatch(arg);
}

/* ------------------------------------------------------------------------
 * Public
 */

struct store_sms *
store_sms_new(const struct store_sms_config *cfg, struct event_base *base,
              char *err, size_t errlen)
{
    struct store_sms *q;

    if (cfg == NULL || base == NULL || cfg->dsn == NULL || cfg->pool < 0 ||
        cfg->pool > 16 || cfg->timeout_ms < 0 || cfg->max_waiting < 0) {
        snprintf(err, errlen, "store_sms: bad configuration");
        return NULL;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL) goto nomem;
    q->magic = SMS_MAGIC;
    q->base = base;
    q->pool = cfg->pool ? cfg->pool : 2;
    q->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 2000;
    q->max_waiting = cfg->max_waiting ? cfg->max_waiting : 1024;
    TAILQ_INIT(&q->waiting);
    q->dsn = strdup(cfg->dsn);
    q->conns = calloc((size_t)q->pool, sizeof(*q->conns));
    q->kick = event_new(base, -1, 0, sms_on_kick, q);
    if (q->dsn == NULL || q->conns == NULL || q->kick == NULL) goto nomem;
    for (int i = 0; i < q->pool; i++) {
        q->conns[i].q = q;
        q->conns[i].timer = evtimer_new(base, sms_conn_on_timer, &q->conns[i]);
        if (q->conns[i].timer == NULL) goto nomem;
    }
    return q;
nomem:
    snprintf(err, errlen, "store_sms: out of memory");
    store_sms_free(q);
    return NULL;
}

int
store_sms_start(struct store_sms *q)
{
    STORE_AN(q->magic == SMS_MAGIC);
    if (q->running) return STORE_EINVAL;
    q->running = 1;
    for (int i = 0; i < q->pool; i++) {
        q->conns[i].backoff_ms = 0;
        sms_conn_schedule(&q->conns[i], 0);
    }
    return 0;
}

void
store_sms_stop(struct store_sms *q)
{
    struct sms_req_list failed;
    struct sms_req *r;

    STORE_AN(q->magic == SMS_MAGIC);
    if (!q->running) return;
    q->running = 0;
    event_del(q->kick);
    TAILQ_INIT(&failed);
    for (int i = 0; i < q->pool; i++) {
        struct sms_conn *c = &q->conns[i];
        r = c->req;
        c->req = NULL;
        sms_conn_drop(c, STORE_EDOWN, NULL);
        if (r != NULL) {
            r->conn = NULL;
            TAILQ_INSERT_TAIL(&failed, r, link);
        }
    }
    while ((r = TAILQ_FIRST(&q->waiting)) != NULL) {
        sms_req_unqueue(r);
        TAILQ_INSERT_TAIL(&failed, r, link);
    }
    while ((r = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, r, link);
        r->status = STORE_EDOWN;
        snprintf(r->errstr, sizeof(r->errstr), "store stopped");
        sms_req_complete(r);
    }
}

void
store_sms_free(struct store_sms *q)
{
    if (q == NULL) return;
    STORE_AN(q->magic == SMS_MAGIC);
    store_sms_stop(q);
    for (int i = 0; q->conns && i < q->pool; i++)
        if (q->conns[i].timer) event_free(q->conns[i].timer);
    if (q->kick) event_free(q->kick);
    free(q->conns);
    free(q->dsn);
    q->magic = 0;
    free(q);
}

int
store_sms_connected(const struct store_sms *q)
{
    int n = 0;

    for (int i = 0; i < q->pool; i++)
        if (q->conns[i].state == SMS_CONN_IDLE ||
            q->conns[i].state == SMS_CONN_BUSY)
            n++;
    return n;
}

int
store_sms_id_valid(const char *id)
{
    if (id == NULL || strlen(id) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (id[i] != '-') return 0;
        } else if (strchr("0123456789abcdefABCDEF", id[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* Copy at most SMS_ANSWER_MAX bytes of s into out, never cutting a UTF-8
 * sequence in two. */
static void
sms_cut(const char *s, char out[SMS_ANSWER_MAX + 1])
{
    size_t n = strlen(s);

    if (n > SMS_ANSWER_MAX) {
        n = SMS_ANSWER_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

static int
sms_digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    return n >= min && n <= max && strspn(s, "0123456789") == n;
}

int
store_sms_insert(struct store_sms *q, const char *id, const char *msisdn,
                 const char *kind, const char *text, int coding,
                 store_sms_cb *cb, void *arg)
{
    struct sms_req *r;
    int rc;

    if (q == NULL || cb == NULL || !store_sms_id_valid(id) || msisdn == NULL ||
        !sms_digits(msisdn, 8, 15) || kind == NULL ||
        (strcmp(kind, "reply") != 0 && strcmp(kind, "confirmation") != 0 &&
         strcmp(kind, "notice") != 0 && strcmp(kind, "reminder") != 0) ||
        text == NULL || strlen(text) > SMS_TEXT_MAX ||
        (coding != 0 && coding != 2))
        return STORE_EINVAL;
    STORE_AN(q->magic == SMS_MAGIC);
    if ((rc = sms_can_take(q)) != 0) return rc;
    if ((r = sms_req_new(q, SMS_REQ_INSERT, cb, arg)) == NULL)
        return STORE_ENOMEM;
    if (sms_req_param(r, 0, id) || sms_req_param(r, 1, msisdn) ||
        sms_req_param(r, 2, kind) || sms_req_param(r, 3, text) ||
        sms_req_paramf(r, 4, coding)) {
        sms_req_free(r);
        return STORE_ENOMEM;
    }
    return sms_req_enqueue(q, r);
}

int
store_sms_sent(struct store_sms *q, const char *id, int tries, int http_status,
               const char *answer, int accepted, store_sms_cb *cb, void *arg)
{
    struct sms_req *r;
    char cut[SMS_ANSWER_MAX + 1];
    int rc;

    if (q == NULL || cb == NULL || !store_sms_id_valid(id) || tries < 0 ||
        http_status < 0 || http_status > 999 || answer == NULL)
        return STORE_EINVAL;
    STORE_AN(q->magic == SMS_MAGIC);
    if ((rc = sms_can_take(q)) != 0) return rc;
    if ((r = sms_req_new(q, SMS_REQ_SENT, cb, arg)) == NULL)
        return STORE_ENOMEM;
    sms_cut(answer, cut);
    if (sms_req_param(r, 0, id) || sms_req_paramf(r, 1, tries) ||
        sms_req_paramf(r, 2, http_status) || sms_req_param(r, 3, cut) ||
        sms_req_param(r, 4, accepted ? "true" : "false")) {
        sms_req_free(r);
        return STORE_ENOMEM;
    }
    return sms_req_enqueue(q, r);
}

int
store_sms_dlr(struct store_sms *q, const char *id, int type, const char *answer,
              long long smsc_time, store_sms_cb *cb, void *arg)
{
    struct sms_req *r;
    char cut[SMS_ANSWER_MAX + 1];
    int rc;

    if (q == NULL || cb == NULL || !store_sms_id_valid(id) || answer == NULL ||
        (type != 1 && type != 2 && type != 4 && type != 8 && type != 16 &&
         type != (2 | 0x20) && type != (2 | 0x40)))
        return STORE_EINVAL;
    STORE_AN(q->magic == SMS_MAGIC);
    if ((rc = sms_can_take(q)) != 0) return rc;
    if ((r = sms_req_new(q, SMS_REQ_DLR, cb, arg)) == NULL) return STORE_ENOMEM;
    sms_cut(answer, cut);
    if (sms_req_param(r, 0, id) || sms_req_paramf(r, 1, type) ||
        sms_req_param(r, 2, cut) ||
        (smsc_time >= 0 && sms_req_paramf(r, 3, smsc_time))) {
        sms_req_free(r);
        return STORE_ENOMEM;
    }
    return sms_req_enqueue(q, r);
}

int
store_sms_optout(struct store_sms *q, const char *msisdn, int out,
                 store_sms_cb *cb, void *arg)
{
    struct sms_req *r;
    int rc;

    if (q == NULL || cb == NULL || msisdn == NULL || !sms_digits(msisdn, 8, 15))
        return STORE_EINVAL;
    STORE_AN(q->magic == SMS_MAGIC);
    if ((rc = sms_can_take(q)) != 0) return rc;
    if ((r = sms_req_new(q, SMS_REQ_OPTOUT, cb, arg)) == NULL)
        return STORE_ENOMEM;
    if (sms_req_param(r, 0, msisdn) || sms_req_param(r, 1, out ? "t" : "f")) {
        sms_req_free(r);
        return STORE_ENOMEM;
    }
    return sms_req_enqueue(q, r);
}

/* Contract in store.h. */
int
store_sms_interest(struct store_sms *q, const char *msisdn, const char *word,
                   store_sms_cb *cb, void *arg)
{
    struct sms_req *r;
    int rc;

    if (q == NULL || cb == NULL || msisdn == NULL || word == NULL ||
        !sms_digits(msisdn, 8, 15) || strlen(word) > 32)
        return STORE_EINVAL;
    STORE_AN(q->magic == SMS_MAGIC);
    if ((rc = sms_can_take(q)) != 0) return rc;
    if ((r = sms_req_new(q, SMS_REQ_INTEREST, cb, arg)) == NULL)
        return STORE_ENOMEM;
    if (sms_req_param(r, 0, msisdn) || sms_req_param(r, 1, word)) {
        sms_req_free(r);
        return STORE_ENOMEM;
    }
    return sms_req_enqueue(q, r);
}
