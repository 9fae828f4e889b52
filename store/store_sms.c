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
 * more than their statements.  At most batches_max transactions of them
 * are out at once; a call made while they are goes into a queue, and when
 * one comes back the queue leaves as transactions of up to SMS_BATCH_CALLS
 * calls.  With nothing out, a call runs at once, alone: a quiet pool adds
 * no wait.  A batch's calls are in the order of their ids (a stable sort:
 * one id's reports keep their order).  Each answer is a statement of its
 * own; the delivery reports of a batch go as few statements over arrays
 * (sms_sql_dlrs: one row of unnest() per report, each row still moved
 * along the lattice of 002_sms.sql under its own lock, exactly as
 * SMS_REQ_DLR would) -- one statement for the first report of each id,
 * one for the second, and so on, so that no statement holds two reports
 * for one row and one id's reports keep their order.  A round of one
 * report runs as SMS_REQ_DLR.  Every batch takes its sms_out rows' locks
 * in the order of their ids (statement by statement; a statement over
 * arrays with ORDER BY ... FOR UPDATE; a batch of answers and arrays
 * first locks them all that way), so two batches lock sms_out rows --
 * and through notice_outbox_dlr() their recipients -- in one order and
 * cannot deadlock each other.  A batch the server refused (one bad
 * statement fails them all) runs again call by call, so one call's
 * failure stays its own.
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

#include "store/store_int.h"

#define SMS_MAGIC       0x534d5351u
#define SMS_CALL_MAGIC  0x534d5352u
#define SMS_TEXT_MAX    4096 /* bytes of message text */
#define SMS_ANSWER_MAX  1024 /* bytes kept of an answer or receipt */
#define SMS_PARAMS_MAX  5
#define SMS_BATCH_MAGIC 0x534d5342u
#define SMS_PENDING_MAX 4096 /* calls queued behind the batches */
#define SMS_BATCH_CALLS 64   /* calls in one batch transaction */

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

/* A batch's rows locked in the order of their ids (sms_batch_run). */
static const char sms_sql_lock[] =
    "SELECT 1 FROM sms_out WHERE id = ANY ($1::uuid[]) ORDER BY id FOR UPDATE";

/* Several delivery reports, of distinct ids, as SMS_REQ_DLR's statement
 * over arrays: ids, types, receipts, SMSC times (NULL: none).  A row back
 * per report whose message is there: its id, its state after, and
 * whether it moved it.  The arrays are read through p so that the planner
 * never sees their length: with it, each custom plan (a few reports) looks
 * cheaper than the generic one and the statement was planned again at
 * every call, costing PostgreSQL more than the statements it replaced. */
static const char sms_sql_dlrs[] =
    "WITH p AS MATERIALIZED (SELECT $1::uuid[] AS id, $2::smallint[] AS st,"
    "  $3::text[] AS ans, $4::bigint[] AS ts),"
    " i AS MATERIALIZED (SELECT u.* FROM p,"
    "  unnest(p.id, p.st, p.ans, p.ts) AS u(id, st, ans, ts)),"
    " o AS MATERIALIZED (SELECT s.id, s.dlr_state FROM sms_out s"
    "  WHERE s.id IN (SELECT id FROM i) ORDER BY s.id FOR UPDATE OF s),"
    " a AS (SELECT o.id, i.st, i.ans, i.ts, remigate_dlr_rank(i.st) >"
    "  remigate_dlr_rank(o.dlr_state) AS adv FROM o JOIN i ON i.id = o.id)"
    " UPDATE sms_out s SET dlr_reports = s.dlr_reports + 1,"
    " dlr_state = CASE WHEN a.adv THEN a.st ELSE s.dlr_state END,"
    " dlr_at = CASE WHEN a.adv THEN now() ELSE s.dlr_at END,"
    " dlr_answer = CASE WHEN a.adv THEN a.ans ELSE s.dlr_answer END,"
    " dlr_smsc_at = CASE WHEN a.adv THEN to_timestamp(a.ts)"
    "  ELSE s.dlr_smsc_at END"
    " FROM a WHERE s.id = a.id RETURNING s.id, s.dlr_state, a.adv";

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

/* A transaction of batchable calls c[0..n), in the order of their ids:
 * call i's rows are those of statement stmt[i] -- of sms_sql_dlrs when
 * many[i] (its row the one of its id), else of its kind's own. */
struct sms_batch {
    unsigned magic;
    struct store_sms *q;
    int n;
    struct sms_call *c[SMS_BATCH_CALLS];
    signed char stmt[SMS_BATCH_CALLS];
    unsigned char many[SMS_BATCH_CALLS];
};

/* Statement stmt of a transaction that came back with status, read the
 * way c's kind means it (many: a report's row among those of
 * sms_sql_dlrs, found by its id); c is called back and freed. */
static void
sms_deliver(struct sms_call *c, int status, const struct store_tx_result *res,
            int stmt, int many)
{
    struct store_sms_result out = {0};
    int n, row = 0, col = 0;

    STORE_AN(c->magic == SMS_CALL_MAGIC);
    /* a statement the server refused is a failure like any other here */
    if (status == STORE_EREFUSED) status = STORE_EDB;
    n = status == 0 ? store_tx_ntuples(res, stmt) : 0;
    if (status == 0 && many) {
        STORE_AN(c->kind == SMS_REQ_DLR);
        col = 1;
        for (row = 0; row < n; row++) {
            const char *id = store_tx_value(res, stmt, row, 0);
            if (id != NULL && strcasecmp(id, c->id) == 0) break;
        }
        n = row < n ? 1 : 0;
    }
    if (status == 0 && (c->kind == SMS_REQ_SENT || c->kind == SMS_REQ_DLR) &&
        n == 0) {
        status = STORE_ENOTFOUND;
    } else if (status == 0 && c->kind == SMS_REQ_INTEREST && n == 1) {
        const char *v = store_tx_value(res, stmt, 0, 0);
        out.interest = v ? atoi(v) : 0;
    } else if (status == 0 && c->kind == SMS_REQ_DLR) {
        const char *st = store_tx_value(res, stmt, row, col);
        const char *adv = store_tx_value(res, stmt, row, col + 1);
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
    sms_deliver(arg, status, res, 0, 0);
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
            if (rc != 0) sms_deliver(b->c[i], rc, NULL, 0, 0);
        }
    } else {
        for (int i = 0; i < b->n; i++)
            sms_deliver(b->c[i], status, res, b->stmt[i], b->many[i]);
    }
    b->magic = 0;
    free(b);
    if (!q->stopping) sms_flush(q);
}

/* Append s to the array literal at *o as a quoted element. */
static void
sms_array_quote(char **o, const char *s)
{
    *(*o)++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') *(*o)++ = '\\';
        *(*o)++ = *s;
    }
    *(*o)++ = '"';
}

/* The round of delivery reports r of b (the r-th report of each id) as
 * sms_sql_dlrs's four array literals in buf (room for every report of
 * b), statement k of tx.  The reports' stmt/many are set. */
static void
sms_batch_dlrs(struct sms_batch *b, const int *round, int r, char *buf,
               struct store_tx *tx, int k)
{
    char *o = buf;
    int first;

    tx->stmt[k].sql = sms_sql_dlrs;
    tx->stmt[k].nparams = 4;
    for (int p = 0; p < 4; p++) {
        tx->stmt[k].params[p] = o;
        *o++ = '{';
        first = 1;
        for (int i = 0; i < b->n; i++) {
            struct sms_call *c = b->c[i];
            if (c->kind != SMS_REQ_DLR || round[i] != r) continue;
            if (!first) *o++ = ',';
            first = 0;
            if (p == 0)
                o += sprintf(o, "%s", c->p[0]);
            else if (p == 1)
                o += sprintf(o, "%s", c->p[1]);
            else if (p == 2)
                sms_array_quote(&o, c->p[2]);
            else
                o += sprintf(o, "%s", c->p[3] ? c->p[3] : "NULL");
            b->stmt[i] = (signed char)k;
            b->many[i] = 1;
        }
        *o++ = '}';
        *o++ = '\0';
    }
}

/* Call i of b as its kind's own statement, the next of tx. */
static void
sms_batch_one(struct sms_batch *b, int i, struct store_tx *tx)
{
    struct sms_call *x = b->c[i];

    STORE_AN(tx->n < STORE_TX_STMTS);
    b->stmt[i] = (signed char)tx->n;
    tx->stmt[tx->n].sql = sms_sql[x->kind];
    tx->stmt[tx->n].nparams = sms_nparams[x->kind];
    for (int k = 0; k < tx->stmt[tx->n].nparams; k++)
        tx->stmt[tx->n].params[k] = x->p[k];
    tx->n++;
}

/* Room for the array literals of every report of c[0..n). */
static size_t
sms_batch_room(struct sms_call *const *c, int n)
{
    size_t size = 64;
    for (int i = 0; i < n; i++)
        size += 2 * strlen(c[i]->answer) + 40 + 8 + 24 + 16;
    return size;
}

/* How many statements c[0..n] needs as one batch, given those of
 * c[0..n) in *other (answers and calls that are not reports) and *rounds
 * (the most reports of one id); updates both. */
static int
sms_batch_add(struct sms_call *const *c, int n, int *other, int *rounds)
{
    int same = 0;

    if (c[n]->kind != SMS_REQ_DLR) {
        (*other)++;
    } else {
        for (int j = 0; j < n; j++)
            if (c[j]->kind == SMS_REQ_DLR &&
                strcasecmp(c[j]->id, c[n]->id) == 0)
                same++;
        if (same + 1 > *rounds) *rounds = same + 1;
    }
    /* and the statement that locks every row first (sms_batch_run) */
    return *other + *rounds + (*other > 0 && *rounds > 0);
}

/* Run c[0..n) (n <= SMS_BATCH_CALLS, sms_batch_add() <= STORE_TX_STMTS)
 * as one transaction, in the order of their ids.  0, or the pool's error
 * (nothing taken: the calls are the caller's again). */
static int
sms_batch_run(struct store_sms *q, struct sms_call **c, int n)
{
    struct store_tx tx = {.officer = "", .role = "", .districts = ""};
    struct sms_batch *b;
    int round[SMS_BATCH_CALLS], nround[SMS_BATCH_CALLS] = {0}, rounds = 0;
    char *arrays = NULL, *at, *ids = NULL;
    size_t room;
    int rc, answers = 0, many = 0;

    STORE_AN(n >= 1 && n <= SMS_BATCH_CALLS);
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
    /* a report's round: how many of its id's reports come before it */
    for (int i = 0; i < n; i++) {
        round[i] = -1;
        if (b->c[i]->kind != SMS_REQ_DLR) continue;
        round[i] = 0;
        for (int j = i - 1; j >= 0 && strcasecmp(b->c[j]->id, b->c[i]->id) == 0;
             j--)
            if (b->c[j]->kind == SMS_REQ_DLR) round[i]++;
        nround[round[i]]++;
        if (round[i] + 1 > rounds) rounds = round[i] + 1;
    }
    for (int i = 0; i < n; i++)
        if (b->c[i]->kind != SMS_REQ_DLR)
            answers++;
        else if (nround[round[i]] > 1)
            many = 1;
    if (!many) {
        /* each call its own statement, in the order of the ids */
        for (int i = 0; i < n; i++)
            sms_batch_one(b, i, &tx);
        goto run;
    }
    /* Answers with rounds of reports: every row locked first, in the
     * order of the ids -- the statements below do not take them in that
     * order, and two batches must not wait for each other.  (Rounds
     * alone: each locks in that order, and a later round only ids of the
     * first.) */
    if (answers > 0) {
        if ((ids = malloc((size_t)n * 37 + 3)) == NULL) goto nomem;
        at = ids;
        *at++ = '{';
        for (int i = 0; i < n; i++)
            at += sprintf(at, "%s%s", i ? "," : "", b->c[i]->id);
        *at++ = '}';
        *at = '\0';
        tx.stmt[0].sql = sms_sql_lock;
        tx.stmt[0].nparams = 1;
        tx.stmt[0].params[0] = ids;
        tx.n = 1;
    }
    /* the answers, then round by round the reports */
    for (int i = 0; i < n; i++)
        if (b->c[i]->kind != SMS_REQ_DLR) sms_batch_one(b, i, &tx);
    room = sms_batch_room(b->c, n);
    if ((arrays = malloc(room * (size_t)rounds)) == NULL) goto nomem;
    for (int r = 0; r < rounds; r++) {
        STORE_AN(tx.n < STORE_TX_STMTS);
        if (nround[r] > 1) {
            sms_batch_dlrs(b, round, r, arrays + room * (size_t)r, &tx, tx.n);
            tx.n++;
            continue;
        }
        for (int i = 0; i < n; i++)
            if (round[i] == r) sms_batch_one(b, i, &tx);
    }
run:
    /* every statement of this file by name once prepared: a report's or
     * an answer's plan does not hang on its values (one row by id, or an
     * index scan per id of the arrays) */
    tx.prepare = (1u << tx.n) - 1u;
    rc = store_pool_tx(q->pool, &tx, sms_on_batch, b);
    free(arrays); /* copied by the pool */
    free(ids);
    if (rc != 0) {
        b->magic = 0;
        free(b);
        return rc;
    }
    q->batches++;
    return 0;
nomem:
    free(arrays);
    free(ids);
    b->magic = 0;
    free(b);
    return STORE_ENOMEM;
}

/* Send what waits, as batches, while fewer than batches_max are out.
 * From a callback only: a batch that cannot start calls its calls back. */
static void
sms_flush(struct store_sms *q)
{
    while (q->batches < q->batches_max && !TAILQ_EMPTY(&q->queue)) {
        struct sms_call *c[SMS_BATCH_CALLS];
        int n = 0, rc, other = 0, rounds = 0;
        while (n < SMS_BATCH_CALLS && !TAILQ_EMPTY(&q->queue)) {
            c[n] = TAILQ_FIRST(&q->queue);
            if (sms_batch_add(c, n, &other, &rounds) > STORE_TX_STMTS) break;
            TAILQ_REMOVE(&q->queue, c[n], link);
            q->nqueue--;
            n++;
        }
        if ((rc = sms_batch_run(q, c, n)) != 0)
            for (int i = 0; i < n; i++)
                sms_deliver(c[i], rc, NULL, 0, 0);
    }
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
    } else if (q->batches < q->batches_max && TAILQ_EMPTY(&q->queue)) {
        if ((rc = sms_batch_run(q, &c, 1)) == 0) return 0;
    } else if (q->nqueue >= SMS_PENDING_MAX) {
        rc = STORE_EBUSY;
    } else {
        TAILQ_INSERT_TAIL(&q->queue, c, link);
        q->nqueue++;
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
        cfg->wait_ms < 0 || cfg->wait_ms > 600000 || cfg->timeout_ms > 600000) {
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
    pc = (struct store_pool_config){.dsn = cfg->dsn,
                                    .pool = cfg->pool,
                                    .timeout_ms = cfg->timeout_ms,
                                    .max_waiting = cfg->max_waiting,
                                    .wait_ms = cfg->wait_ms};
    if ((q->pool = store_pool_new(&pc, base, err, errlen)) == NULL) {
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
store_sms_stop(struct store_sms *q)
{
    struct sms_call *c;

    STORE_AN(q->magic == SMS_MAGIC);
    q->stopping = 1;
    store_pool_stop(q->pool); /* batches out: STORE_EDOWN */
    while ((c = TAILQ_FIRST(&q->queue)) != NULL) {
        TAILQ_REMOVE(&q->queue, c, link);
        q->nqueue--;
        sms_deliver(c, STORE_EDOWN, NULL, 0, 0);
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
