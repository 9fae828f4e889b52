/*
 * store_sms.c -- the sms_out table, on a pool of its own (store_pool.c).
 *
 * Every request here is one statement with text parameters, run as a
 * transaction of the generic pool: its deadline, its bounded queue, its
 * reconnects and its "callback from the loop, exactly once" are the
 * pool's.  What is left here is the statements, the checks of their
 * arguments and what their rows mean.
 *
 * The statements keep the table's promises themselves: an insert that
 * finds its id does nothing, and a delivery report moves dlr_state only
 * to a higher remigate_dlr_rank() (002_sms.sql) under the row's lock, so
 * repeats, reordered reports and racing workers all end in one state.
 *
 * Batches: Kannel's answers (store_sms_sent) and delivery reports
 * (store_sms_dlr) come two or three per SMS, and a transaction each cost
 * more than their statements.  At most SMS_BATCHES transactions of them
 * are out at once; a call made while they are goes into a queue, and when
 * one comes back the queue leaves as transactions of up to STORE_TX_STMTS
 * statements -- each still its own statement, so a batch means exactly
 * what its calls would have one by one.  With nothing out, a call waits
 * linger_ms (postgres.sms_linger_ms) for others to join it, then leaves
 * with them -- sooner when a whole batch has gathered; with linger_ms 0 it
 * runs at once, alone.  At a notice's pace (a few hundred reports a
 * second) most reports would otherwise find nothing out and go one to a
 * transaction: the wait makes them share commits and wake-ups
 * (bench/RESULTS.md).  A batch's statements are in the
 * order of their ids (a stable sort: one id's reports keep their order),
 * so two batches lock sms_out rows -- and through notice_outbox_dlr()
 * their recipients -- in one order and cannot deadlock each other.  A
 * batch the server refused (one bad statement fails them all) runs again
 * call by call, so one call's failure stays its own.
 *
 * PostgreSQL restarting or failing over: with wait_ms, every call waits
 * in the pool for a connection (up to wait_ms, never past its deadline)
 * instead of failing at once -- a delivery report then still gets 200
 * and its row, a reply's row is written before the reply leaves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "store/store_int.h"

#define SMS_MAGIC       0x534d5351u
#define SMS_CALL_MAGIC  0x534d5352u
#define SMS_TEXT_MAX    4096 /* bytes of message text */
#define SMS_ANSWER_MAX  1024 /* bytes kept of an answer or receipt */
#define SMS_PARAMS_MAX  5
#define SMS_BATCH_MAGIC 0x534d5342u
#define SMS_PENDING_MAX 4096 /* calls queued behind the batches */

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

struct sms_call;
TAILQ_HEAD(sms_calls, sms_call);

struct store_sms {
    unsigned magic;
    struct store_pool *pool;
    int insert_timeout_ms;  /* an insert's deadline: timeout + wait */
    int batches_max;        /* batch transactions out at once */
    int batches;            /* out now */
    int stopping;           /* in store_sms_stop(): nothing new */
    struct sms_calls queue; /* batchable calls waiting for a batch */
    size_t nqueue;
    int linger_ms;        /* a lone call waits this long for company */
    struct event *linger; /* armed while a lone call lingers */
};

/* One request on its way: what to call back with what its rows mean.  A
 * batchable one keeps copies of its parameters until its batch leaves. */
struct sms_call {
    unsigned magic;
    enum sms_kind kind;
    store_sms_cb *cb;
    void *arg;
    const char *p[SMS_PARAMS_MAX];
    char id[40], num[2][24];
    char answer[SMS_ANSWER_MAX + 1];
    TAILQ_ENTRY(sms_call) link;
};

/* A transaction of batchable calls, statement i for call c[i]. */
struct sms_batch {
    unsigned magic;
    struct store_sms *q;
    int n;
    struct sms_call *c[STORE_TX_STMTS];
};

/* Statement stmt of a transaction that came back with status, read the
 * way c's kind means it; c is called back and freed. */
static void
sms_deliver(struct sms_call *c, int status, const struct store_tx_result *res,
            int stmt)
{
    struct store_sms_result out = {0};
    int n;

    STORE_AN(c->magic == SMS_CALL_MAGIC);
    /* a statement the server refused is a failure like any other here */
    if (status == STORE_EREFUSED) status = STORE_EDB;
    n = status == 0 ? store_tx_ntuples(res, stmt) : 0;
    if (status == 0 && (c->kind == SMS_REQ_SENT || c->kind == SMS_REQ_DLR) &&
        n == 0) {
        status = STORE_ENOTFOUND;
    } else if (status == 0 && c->kind == SMS_REQ_INTEREST && n == 1) {
        const char *v = store_tx_value(res, stmt, 0, 0);
        out.interest = v ? atoi(v) : 0;
    } else if (status == 0 && c->kind == SMS_REQ_DLR) {
        const char *st = store_tx_value(res, stmt, 0, 0);
        const char *adv = store_tx_value(res, stmt, 0, 1);
        out.dlr_state = st ? atoi(st) : 0;
        out.changed = adv != NULL && adv[0] == 't';
    }
    out.errstr = status == 0 ? ""
                 : res != NULL && store_tx_errstr(res)[0]
                     ? store_tx_errstr(res)
                     : store_strerror(status);
    c->magic = 0;
    c->cb(status, &out, c->arg);
    free(c);
}

/* The pool's answer to a call of its own. */
static void
sms_on_tx(int status, const struct store_tx_result *res, void *arg)
{
    sms_deliver(arg, status, res, 0);
}

static int sms_batch_run(struct store_sms *q, struct sms_call **c, int n);
static void sms_flush(struct store_sms *q);

/* A batch came back: each call gets its statement's rows.  A batch the
 * server refused runs again call by call. */
static void
sms_on_batch(int status, const struct store_tx_result *res, void *arg)
{
    struct sms_batch *b = arg;
    struct store_sms *q = b->q;

    STORE_AN(b->magic == SMS_BATCH_MAGIC);
    q->batches--;
    if ((status == STORE_EREFUSED || status == STORE_EDB) && b->n > 1 &&
        !q->stopping) {
        for (int i = 0; i < b->n; i++) {
            int rc = sms_batch_run(q, &b->c[i], 1);
            if (rc != 0) sms_deliver(b->c[i], rc, NULL, 0);
        }
    } else {
        for (int i = 0; i < b->n; i++)
            sms_deliver(b->c[i], status, res, i);
    }
    b->magic = 0;
    free(b);
    if (!q->stopping) sms_flush(q);
}

/* Run c[0..n) (n <= STORE_TX_STMTS) as one transaction, in the order of
 * their ids.  0, or the pool's error (nothing taken: the calls are the
 * caller's again). */
static int
sms_batch_run(struct store_sms *q, struct sms_call **c, int n)
{
    struct store_tx tx = {.officer = "", .role = "", .districts = "", .n = n};
    struct sms_batch *b;
    int rc;

    if ((b = calloc(1, sizeof(*b))) == NULL) return STORE_ENOMEM;
    b->magic = SMS_BATCH_MAGIC;
    b->q = q;
    for (int i = 0; i < n; i++) {
        int k = b->n++;
        /* insertion sort, stable: equal ids keep their order */
        while (k > 0 && strcasecmp(b->c[k - 1]->id, c[i]->id) > 0) {
            b->c[k] = b->c[k - 1];
            k--;
        }
        b->c[k] = c[i];
    }
    /* every statement of this file by name once prepared: a report's or
     * an answer's plan does not hang on its values (one row by id) */
    tx.prepare = (1u << n) - 1u;
    for (int i = 0; i < n; i++) {
        tx.stmt[i].sql = sms_sql[b->c[i]->kind];
        tx.stmt[i].nparams = sms_nparams[b->c[i]->kind];
        for (int k = 0; k < tx.stmt[i].nparams; k++)
            tx.stmt[i].params[k] = b->c[i]->p[k];
    }
    if ((rc = store_pool_tx(q->pool, &tx, sms_on_batch, b)) != 0) {
        b->magic = 0;
        free(b);
        return rc;
    }
    q->batches++;
    return 0;
}

/* Send what waits, as batches, while fewer than batches_max are out.
 * From a callback only: a batch that cannot start calls its calls back. */
static void
sms_flush(struct store_sms *q)
{
    while (q->batches < q->batches_max && !TAILQ_EMPTY(&q->queue)) {
        struct sms_call *c[STORE_TX_STMTS];
        int n = 0, rc;
        while (n < STORE_TX_STMTS && !TAILQ_EMPTY(&q->queue)) {
            c[n] = TAILQ_FIRST(&q->queue);
            TAILQ_REMOVE(&q->queue, c[n], link);
            q->nqueue--;
            n++;
        }
        if ((rc = sms_batch_run(q, c, n)) != 0)
            for (int i = 0; i < n; i++)
                sms_deliver(c[i], rc, NULL, 0);
    }
}

static void
sms_on_linger(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sms_flush(arg);
}

/* A batchable call (its parameters copied into c): at once when no batch
 * is out, else behind them.  0 or a failure now (c is then freed). */
static int
sms_call_batched(struct store_sms *q, struct sms_call *c)
{
    int rc;

    c->magic = SMS_CALL_MAGIC;
    if (q->stopping) {
        rc = STORE_EDOWN;
    } else if (q->batches < q->batches_max && TAILQ_EMPTY(&q->queue) &&
               q->linger_ms == 0) {
        if ((rc = sms_batch_run(q, &c, 1)) == 0) return 0;
    } else if (q->nqueue >= SMS_PENDING_MAX) {
        rc = STORE_EBUSY;
    } else {
        TAILQ_INSERT_TAIL(&q->queue, c, link);
        q->nqueue++;
        if (q->linger_ms > 0 && q->batches < q->batches_max) {
            if (q->nqueue >= STORE_TX_STMTS) {
                /* a full batch waits for no one: flush on the next turn */
                evtimer_del(q->linger);
                event_active(q->linger, EV_TIMEOUT, 0);
            } else if (!evtimer_pending(q->linger, NULL)) {
                struct timeval tv = {q->linger_ms / 1000,
                                     (q->linger_ms % 1000) * 1000};
                evtimer_add(q->linger, &tv);
            }
        }
        return 0;
    }
    c->magic = 0;
    free(c);
    return rc;
}

/* Run kind's statement with params (borrowed; NULL is SQL NULL).  0, or
 * the pool's STORE_EDOWN / STORE_EBUSY / STORE_ENOMEM / STORE_EINVAL. */
static int
sms_call(struct store_sms *q, enum sms_kind kind,
         const char *const params[SMS_PARAMS_MAX], store_sms_cb *cb, void *arg)
{
    struct store_tx tx = {.officer = "", .role = "", .districts = "", .n = 1};
    struct sms_call *c;
    int rc;

    STORE_AN(q->magic == SMS_MAGIC);
    if (kind == SMS_REQ_INSERT) tx.timeout_ms = q->insert_timeout_ms;
    tx.prepare = 1u;
    tx.stmt[0].sql = sms_sql[kind];
    tx.stmt[0].nparams = sms_nparams[kind];
    for (int i = 0; i < sms_nparams[kind]; i++)
        tx.stmt[0].params[i] = params[i];
    if ((c = calloc(1, sizeof(*c))) == NULL) return STORE_ENOMEM;
    c->magic = SMS_CALL_MAGIC;
    c->kind = kind;
    c->cb = cb;
    c->arg = arg;
    if ((rc = store_pool_tx(q->pool, &tx, sms_on_tx, c)) != 0) {
        c->magic = 0;
        free(c);
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * Public
 */

struct store_sms *
store_sms_new(const struct store_sms_config *cfg, struct event_base *base,
              char *err, size_t errlen)
{
    struct store_pool_config pc;
    struct store_sms *q;

    if (cfg == NULL || base == NULL || cfg->dsn == NULL || cfg->pool < 0 ||
        cfg->pool > 16 || cfg->timeout_ms < 0 || cfg->max_waiting < 0 ||
        cfg->wait_ms < 0 || cfg->wait_ms > 600000 || cfg->timeout_ms > 600000 ||
        cfg->linger_ms < 0 || cfg->linger_ms > 1000) {
        snprintf(err, errlen, "store_sms: bad configuration");
        return NULL;
    }
    if ((q = calloc(1, sizeof(*q))) == NULL) {
        snprintf(err, errlen, "store_sms: out of memory");
        return NULL;
    }
    q->magic = SMS_MAGIC;
    TAILQ_INIT(&q->queue);
    /* half the connections (at least one) for batches: the rest stay
     * free for inserts, opt-outs and interest replies */
    q->batches_max = ((cfg->pool ? cfg->pool : 2) + 1) / 2;
    q->insert_timeout_ms =
        (cfg->timeout_ms ? cfg->timeout_ms : 2000) + cfg->wait_ms;
    q->linger_ms = cfg->linger_ms;
    if ((q->linger = evtimer_new(base, sms_on_linger, q)) == NULL) {
        snprintf(err, errlen, "store_sms: out of memory");
        free(q);
        return NULL;
    }
    pc = (struct store_pool_config){.dsn = cfg->dsn,
                                    .pool = cfg->pool,
                                    .timeout_ms = cfg->timeout_ms,
                                    .max_waiting = cfg->max_waiting,
                                    .wait_ms = cfg->wait_ms};
    if ((q->pool = store_pool_new(&pc, base, err, errlen)) == NULL) {
        event_free(q->linger);
        free(q);
        return NULL;
    }
    return q;
}

int
store_sms_start(struct store_sms *q)
{
    STORE_AN(q->magic == SMS_MAGIC);
    return store_pool_start(q->pool);
}

void
store_sms_drain(struct store_sms *q)
{
    STORE_AN(q->magic == SMS_MAGIC);
    q->linger_ms = 0;
    evtimer_del(q->linger);
    if (!q->stopping) sms_flush(q);
}

void
store_sms_stop(struct store_sms *q)
{
    struct sms_call *c;

    STORE_AN(q->magic == SMS_MAGIC);
    q->stopping = 1;
    evtimer_del(q->linger);
    store_pool_stop(q->pool); /* batches out: STORE_EDOWN */
    while ((c = TAILQ_FIRST(&q->queue)) != NULL) {
        TAILQ_REMOVE(&q->queue, c, link);
        q->nqueue--;
        sms_deliver(c, STORE_EDOWN, NULL, 0);
    }
    q->stopping = 0;
}

void
store_sms_free(struct store_sms *q)
{
    if (q == NULL) return;
    STORE_AN(q->magic == SMS_MAGIC);
    store_sms_stop(q);
    store_pool_free(q->pool);
    event_free(q->linger);
    q->magic = 0;
    free(q);
}

int
store_sms_connected(const struct store_sms *q)
{
    return store_pool_connected(q->pool);
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
    char cod[8];

    if (q == NULL || cb == NULL || !store_sms_id_valid(id) || msisdn == NULL ||
        !sms_digits(msisdn, 8, 15) || kind == NULL ||
        (strcmp(kind, "reply") != 0 && strcmp(kind, "confirmation") != 0 &&
         strcmp(kind, "notice") != 0 && strcmp(kind, "reminder") != 0) ||
        text == NULL || strlen(text) > SMS_TEXT_MAX ||
        (coding != 0 && coding != 2))
        return STORE_EINVAL;
    snprintf(cod, sizeof(cod), "%d", coding);
    const char *p[SMS_PARAMS_MAX] = {id, msisdn, kind, text, cod};
    return sms_call(q, SMS_REQ_INSERT, p, cb, arg);
}

/* A batchable call for q's kind with id, or NULL (out of memory). */
static struct sms_call *
sms_call_new(enum sms_kind kind, const char *id, store_sms_cb *cb, void *arg)
{
    struct sms_call *c = calloc(1, sizeof(*c));
    if (c == NULL) return NULL;
    c->kind = kind;
    c->cb = cb;
    c->arg = arg;
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->p[0] = c->id;
    return c;
}

int
store_sms_sent(struct store_sms *q, const char *id, int tries, int http_status,
               const char *answer, int accepted, store_sms_cb *cb, void *arg)
{
    struct sms_call *c;

    if (q == NULL || cb == NULL || !store_sms_id_valid(id) || tries < 0 ||
        http_status < 0 || http_status > 999 || answer == NULL)
        return STORE_EINVAL;
    STORE_AN(q->magic == SMS_MAGIC);
    if ((c = sms_call_new(SMS_REQ_SENT, id, cb, arg)) == NULL)
        return STORE_ENOMEM;
    sms_cut(answer, c->answer);
    snprintf(c->num[0], sizeof(c->num[0]), "%d", tries);
    snprintf(c->num[1], sizeof(c->num[1]), "%d", http_status);
    c->p[1] = c->num[0];
    c->p[2] = c->num[1];
    c->p[3] = c->answer;
    c->p[4] = accepted ? "true" : "false";
    return sms_call_batched(q, c);
}

int
store_sms_dlr(struct store_sms *q, const char *id, int type, const char *answer,
              long long smsc_time, store_sms_cb *cb, void *arg)
{
    struct sms_call *c;

    if (q == NULL || cb == NULL || !store_sms_id_valid(id) || answer == NULL ||
        (type != 1 && type != 2 && type != 4 && type != 8 && type != 16 &&
         type != (2 | 0x20) && type != (2 | 0x40)))
        return STORE_EINVAL;
    STORE_AN(q->magic == SMS_MAGIC);
    if ((c = sms_call_new(SMS_REQ_DLR, id, cb, arg)) == NULL)
        return STORE_ENOMEM;
    sms_cut(answer, c->answer);
    snprintf(c->num[0], sizeof(c->num[0]), "%d", type);
    snprintf(c->num[1], sizeof(c->num[1]), "%lld", smsc_time);
    c->p[1] = c->num[0];
    c->p[2] = c->answer;
    c->p[3] = smsc_time >= 0 ? c->num[1] : NULL;
    return sms_call_batched(q, c);
}

int
store_sms_optout(struct store_sms *q, const char *msisdn, int out,
                 store_sms_cb *cb, void *arg)
{
    if (q == NULL || cb == NULL || msisdn == NULL || !sms_digits(msisdn, 8, 15))
        return STORE_EINVAL;
    const char *p[SMS_PARAMS_MAX] = {msisdn, out ? "t" : "f"};
    return sms_call(q, SMS_REQ_OPTOUT, p, cb, arg);
}

/* Contract in store.h. */
int
store_sms_interest(struct store_sms *q, const char *msisdn, const char *word,
                   store_sms_cb *cb, void *arg)
{
    if (q == NULL || cb == NULL || msisdn == NULL || word == NULL ||
        !sms_digits(msisdn, 8, 15) || strlen(word) > 32)
        return STORE_EINVAL;
    const char *p[SMS_PARAMS_MAX] = {msisdn, word};
    return sms_call(q, SMS_REQ_INTEREST, p, cb, arg);
}
