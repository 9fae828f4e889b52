/*
 * store_pool.c -- the generic pool: transactions of parameterised
 * statements, on libevent.
 *
 * A connection is DOWN -> CONNECTING -> IDLE <-> BUSY with one socket event
 * and one timer.  The console's queries and the sms_out rows
 * (store_sms.c) run here.  A transaction goes out in one round
 * trip: libpq's pipeline mode, the context statement (set_config of the
 * role and the officer), the caller's statements, then one Sync.  Without
 * an explicit BEGIN the server runs everything up to the Sync as one
 * implicit transaction: when a statement fails, the rest are skipped
 * (PGRES_PIPELINE_ABORTED) and the Sync rolls it all back; otherwise the
 * Sync commits.  So set_config(..., true) holds for exactly the caller's
 * statements and a failure leaves nothing behind.
 *
 * Statements a transaction marks in store_tx.prepare (and the context
 * statement) are prepared on a connection the first time it runs them, in
 * the same pipeline (Parse of a named statement, then Bind/Execute by
 * that name), and by name only after that: no parse, analysis or rewrite
 * per call, and PostgreSQL's plan cache keeps a generic plan once it is
 * no worse than the custom ones (replanned by itself when the role acting
 * changes, since row-level security depends on it, or a table changes).
 * Each connection keeps its own list (POOL_PREP_MAX); a Parse that failed
 * or was skipped is forgotten when its Sync comes back, and a connection
 * closed forgets them all.
 *
 * Each transaction has its own deadline from the moment it was accepted;
 * when it passes, the connection running it is closed (PQcancel would
 * block) and opened again after a jittered backoff: a transaction whose
 * Sync may be on the wire is reported with unknown = 1.  Waiting
 * transactions sit in a bounded FIFO and are handed out from the loop (a
 * "kick" event), so no callback runs inside the call that started it.
 * With wait_ms, a transaction that finds the pool down (a failover, a
 * restart) waits in that FIFO up to wait_ms for a connection, its timer
 * moved to the end of the wait, while the pool tries every 100 ms.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "store/store_int.h"

#define POOL_MAGIC       0x504f4f4cu
#define POOL_TX_MAGIC    0x504f5458u
#define POOL_BACKOFF_MIN 100
#define POOL_BACKOFF_MAX 5000
#define POOL_CONNECT_MIN 2000
#define POOL_CTX_MAX     256 /* bytes of one context value */
#define POOL_PREP_MAX    64  /* prepared statements per connection */
#define POOL_ITEMS       (1 + 2 * STORE_TX_STMTS) /* sent per transaction */

/* The context statement, with and without a role to act as. */
static const char pool_ctx_sql[] =
    "SELECT set_config('remigate.officer', $1, true),"
    " set_config('remigate.role', $2, true),"
    " set_config('remigate.districts', $3, true)";
static const char pool_ctx_role_sql[] =
    "SELECT set_config('role', $4, true),"
    " set_config('remigate.officer', $1, true),"
    " set_config('remigate.role', $2, true),"
    " set_config('remigate.districts', $3, true)";

enum pool_conn_state {
    POOL_CONN_DOWN,       /* timer = next attempt */
    POOL_CONN_CONNECTING, /* timer = connect deadline */
    POOL_CONN_IDLE,
    POOL_CONN_BUSY
};

struct pool_conn;

/* One statement of a copied transaction: pointers into the tx's arena. */
struct pool_stmt {
    const char *sql;
    int nparams;
    const char *params[STORE_TX_PARAMS];
};

struct store_tx_result {
    int n;          /* caller's statements */
    PGresult **res; /* n + 1: [0] the context statement */
    int failed;     /* caller's index, -1 */
    int unknown;
    char sqlstate[6];
    char errstr[200];
};

struct pool_tx {
    unsigned magic;
    struct store_pool *p;
    TAILQ_ENTRY(pool_tx) link;
    int queued;
    int64_t t0;  /* accepted, CLOCK_MONOTONIC ms */
    int waiting; /* for the pool to come back (wait_ms): deadline moved */
    int sent;    /* the Sync went to the connection */
    struct pool_conn *conn;
    struct event *deadline;
    int timeout_ms;
    store_tx_cb *cb;
    void *arg;
    int status;
    int got;   /* items whose results were all seen (index of the current) */
    int error; /* a result with an error was seen */
    unsigned prepare; /* store_tx.prepare */
    /* What went out, in order: the query each item belongs to (0 the
     * context statement, i + 1 the caller's i) and, for the Parse of a
     * named statement, the connection's entry it fills (else -1). */
    int nitems;
    signed char item_q[POOL_ITEMS], item_prep[POOL_ITEMS];
    const char *ctx[4];
    struct pool_stmt stmt[STORE_TX_STMTS];
    struct store_tx_result r;
    char *arena; /* every string of the transaction */
};

TAILQ_HEAD(pool_tx_list, pool_tx);

/* A statement prepared (ready) or being prepared on a connection; its
 * server-side name is rg_<index>.  sql NULL: a free entry. */
struct pool_prep {
    char *sql;
    int ready;
};

struct pool_conn {
    struct store_pool *p;
    enum pool_conn_state state;
    struct store_link l;
    struct pool_tx *tx;
    int again; /* dropped while up: its first attempt to connect again */
    struct pool_prep prep[POOL_PREP_MAX];
};

struct store_pool {
    unsigned magic;
    struct event_base *base;
    char *dsn, *role, *admin_role;
    int pool, timeout_ms, max_waiting, wait_ms;
    int running;
    struct pool_conn *conns;
    struct pool_tx_list waiting;
    int nwaiting;
    struct event *kick;
};

static void pool_conn_drop(struct pool_conn *c, int status, const char *why);
static void pool_dispatch(struct store_pool *p);
static void pool_conn_on_io(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------------------
 * Results
 */

static const PGresult *
pool_res(const struct store_tx_result *res, int stmt)
{
    if (res == NULL || stmt < 0 || stmt >= res->n || res->res == NULL)
        return NULL;
    return res->res[stmt + 1];
}

int
store_tx_ntuples(const struct store_tx_result *res, int stmt)
{
    const PGresult *x = pool_res(res, stmt);
    return x && PQresultStatus(x) == PGRES_TUPLES_OK ? PQntuples(x) : 0;
}

int
store_tx_nfields(const struct store_tx_result *res, int stmt)
{
    const PGresult *x = pool_res(res, stmt);
    return x && PQresultStatus(x) == PGRES_TUPLES_OK ? PQnfields(x) : 0;
}

const char *
store_tx_value(const struct store_tx_result *res, int stmt, int row, int col)
{
    const PGresult *x = pool_res(res, stmt);

    if (x == NULL || PQresultStatus(x) != PGRES_TUPLES_OK || row < 0 ||
        row >= PQntuples(x) || col < 0 || col >= PQnfields(x) ||
        PQgetisnull(x, row, col))
        return NULL;
    return PQgetvalue(x, row, col);
}

long long
store_tx_affected(const struct store_tx_result *res, int stmt)
{
    const PGresult *x = pool_res(res, stmt);
    const char *t;

    if (x == NULL) return -1;
    t = PQcmdTuples((PGresult *)x);
    return t[0] ? atoll(t) : -1;
}

int
store_tx_failed(const struct store_tx_result *res)
{
    return res->failed;
}

const char *
store_tx_sqlstate(const struct store_tx_result *res)
{
    return res->sqlstate;
}

const char *
store_tx_errstr(const struct store_tx_result *res)
{
    return res->errstr;
}

int
store_tx_unknown(const struct store_tx_result *res)
{
    return res->unknown;
}

/* ------------------------------------------------------------------------
 * Transactions
 */

static void
pool_tx_free(struct pool_tx *t)
{
    if (t == NULL) return;
    if (t->deadline) event_free(t->deadline);
    if (t->r.res != NULL) {
        for (int i = 0; i <= t->r.n; i++)
            PQclear(t->r.res[i]);
        free(t->r.res);
    }
    free(t->arena);
    t->magic = 0;
    free(t);
}

/* t is on no list and no connection: call back, then free. */
static void
pool_tx_complete(struct pool_tx *t)
{
    STORE_AN(t->magic == POOL_TX_MAGIC);
    STORE_AN(!t->queued && t->conn == NULL);
    event_del(t->deadline);
    if (t->status != 0 && t->r.errstr[0] == '\0')
        snprintf(t->r.errstr, sizeof(t->r.errstr), "%s",
                 store_strerror(t->status));
    if (t->status == 0) t->r.errstr[0] = '\0';
    t->cb(t->status, &t->r, t->arg);
    pool_tx_free(t);
}

static void
pool_tx_unqueue(struct pool_tx *t)
{
    if (!t->queued) return;
    TAILQ_REMOVE(&t->p->waiting, t, link);
    t->queued = 0;
    t->p->nwaiting--;
}

static int64_t
pool_now_ms(void)
{
    struct timespec ts;

    STORE_AN(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* t's timer fires in ms (at least 1). */
static void
pool_tx_arm(struct pool_tx *t, int64_t ms)
{
    struct timeval tv;

    if (ms < 1) ms = 1;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    event_del(t->deadline);
    evtimer_add(t->deadline, &tv);
}

/* t no longer waits for the pool to come back: its own deadline again. */
static void
pool_tx_unwait(struct pool_tx *t)
{
    if (!t->waiting) return;
    t->waiting = 0;
    pool_tx_arm(t, t->t0 + t->timeout_ms - pool_now_ms());
}

static int pool_hope(const struct store_pool *p);

static void
pool_tx_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct pool_tx *t = arg;

    (void)fd;
    (void)what;
    STORE_AN(t->magic == POOL_TX_MAGIC);
    if (t->waiting) {
        /* its wait for the pool (wait_ms) is over */
        STORE_AN(t->queued);
        if (pool_hope(t->p) && t->t0 + t->timeout_ms - pool_now_ms() > 0) {
            /* back, but every connection busy: it waits its turn */
            pool_tx_unwait(t);
            return;
        }
        pool_tx_unqueue(t);
        t->status = STORE_EDOWN;
        snprintf(t->r.errstr, sizeof(t->r.errstr),
                 "database not connected (waited %d ms for it)",
                 (int)(pool_now_ms() - t->t0));
        pool_tx_complete(t);
        return;
    }
    t->status = STORE_ETIMEDOUT;
    snprintf(t->r.errstr, sizeof(t->r.errstr),
             "transaction deadline of %d ms passed", t->timeout_ms);
    if (t->queued) {
        pool_tx_unqueue(t);
        pool_tx_complete(t);
    } else {
        STORE_AN(t->conn != NULL);
        pool_conn_drop(t->conn, STORE_ETIMEDOUT, NULL);
    }
}

/* While a connection is on its first attempt (at start, or just after it
 * was up: a transaction's deadline or a lost backend closed it, and it
 * connects again at once) transactions wait in the queue under their
 * deadline; once every attempt failed, they fail at once.  Without the
 * wait after a drop, a pool whose connections were all closed by late
 * transactions under load answered everything "database not connected"
 * until one was back, although the server was there. */
static int
pool_hope(const struct store_pool *p)
{
    for (int i = 0; i < p->pool; i++)
        if (p->conns[i].state == POOL_CONN_IDLE ||
            p->conns[i].state == POOL_CONN_BUSY ||
            p->conns[i].l.backoff_ms == 0 || p->conns[i].again)
            return 1;
    return 0;
}

/* With wait_ms (store_pool_config), a transaction also waits when there
 * is no hope: see pool_tx_wait(). */
static int
pool_can_take(const struct store_pool *p)
{
    if (!p->running) return STORE_EDOWN;
    if (!pool_hope(p) && p->wait_ms == 0) return STORE_EDOWN;
    if (p->nwaiting >= p->max_waiting) return STORE_EBUSY;
    return 0;
}

/* The pool is down (no hope) and t, queued, may wait wait_ms from its
 * start for a connection (never past its deadline): its timer moves to
 * the end of that wait, and one connection tries at once instead of at
 * the end of its backoff (a failover's new primary is usually there
 * seconds before the backoff would look).  0, or -1 when its wait is
 * over already. */
static int
pool_tx_wait(struct pool_tx *t)
{
    struct store_pool *p = t->p;
    int64_t now = pool_now_ms();
    int64_t left = t->t0 + p->wait_ms - now;
    int64_t dl = t->t0 + t->timeout_ms - now;

    if (t->waiting) return 0;
    if (left <= 0 || dl <= 0) return -1;
    t->waiting = 1;
    pool_tx_arm(t, left < dl ? left : dl);
    for (int i = 0; i < p->pool; i++)
        if (p->conns[i].state == POOL_CONN_CONNECTING) return 0;
    for (int i = 0; i < p->pool; i++)
        if (p->conns[i].state == POOL_CONN_DOWN) {
            store_link_schedule(&p->conns[i].l, 0);
            break;
        }
    return 0;
}

/* Someone waits for the pool to come back. */
static int
pool_anyone_waits(const struct store_pool *p)
{
    const struct pool_tx *t;

    TAILQ_FOREACH (t, &p->waiting, link)
        if (t->waiting) return 1;
    return 0;
}

/* Append s (NUL included) to the arena at *off; returns its offset. */
static size_t
pool_arena_put(char *arena, size_t *off, const char *s)
{
    size_t at = *off, n = strlen(s) + 1;

    memcpy(arena + at, s, n);
    *off += n;
    return at;
}

/* A copy of tx, every string in one arena.  NULL when out of memory. */
static struct pool_tx *
pool_tx_copy(struct store_pool *p, const struct store_tx *tx)
{
    int admin =
        tx->role && strcmp(tx->role, "admin") == 0 && p->admin_role[0] != '\0';
    const char *ctx[4] = {
        tx->officer ? tx->officer : "", tx->role ? tx->role : "",
        tx->districts ? tx->districts : "", admin ? p->admin_role : p->role};
    size_t ctx_off[4], sql_off[STORE_TX_STMTS];
    size_t par_off[STORE_TX_STMTS][STORE_TX_PARAMS];
    size_t size = 0, off = 0;
    struct pool_tx *t = calloc(1, sizeof(*t));

    if (t == NULL) return NULL;
    for (int i = 0; i < 4; i++)
        size += strlen(ctx[i]) + 1;
    for (int i = 0; i < tx->n; i++) {
        size += strlen(tx->stmt[i].sql) + 1;
        for (int j = 0; j < tx->stmt[i].nparams; j++)
            if (tx->stmt[i].params[j] != NULL)
                size += strlen(tx->stmt[i].params[j]) + 1;
    }
    t->arena = malloc(size);
    t->r.res = calloc((size_t)tx->n + 1, sizeof(*t->r.res));
    if (t->arena == NULL || t->r.res == NULL) goto nomem;
    for (int i = 0; i < 4; i++)
        ctx_off[i] = pool_arena_put(t->arena, &off, ctx[i]);
    for (int i = 0; i < tx->n; i++) {
        sql_off[i] = pool_arena_put(t->arena, &off, tx->stmt[i].sql);
        for (int j = 0; j < tx->stmt[i].nparams; j++)
            par_off[i][j] =
                tx->stmt[i].params[j] == NULL
                    ? (size_t)-1
                    : pool_arena_put(t->arena, &off, tx->stmt[i].params[j]);
    }
    STORE_AN(off == size);
    /* Pointers only now: the arena no longer moves. */
    for (int i = 0; i < 4; i++)
        t->ctx[i] = t->arena + ctx_off[i];
    for (int i = 0; i < tx->n; i++) {
        t->stmt[i].sql = t->arena + sql_off[i];
        t->stmt[i].nparams = tx->stmt[i].nparams;
        for (int j = 0; j < tx->stmt[i].nparams; j++)
            t->stmt[i].params[j] =
                par_off[i][j] == (size_t)-1 ? NULL : t->arena + par_off[i][j];
    }
    t->r.n = tx->n;
    t->r.failed = -1;
    t->prepare = tx->prepare;
    return t;
nomem:
    free(t->arena);
    free(t->r.res);
    free(t);
    return NULL;
}

static int
pool_tx_valid(const struct store_tx *tx)
{
    if (tx == NULL || tx->n < 1 || tx->n > STORE_TX_STMTS) return 0;
    if ((tx->officer && strlen(tx->officer) >= POOL_CTX_MAX) ||
        (tx->role && strlen(tx->role) >= POOL_CTX_MAX) ||
        (tx->districts && strlen(tx->districts) >= 4096))
        return 0;
    for (int i = 0; i < tx->n; i++)
        if (tx->stmt[i].sql == NULL || tx->stmt[i].sql[0] == '\0' ||
            tx->stmt[i].nparams < 0 || tx->stmt[i].nparams > STORE_TX_PARAMS)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------
 * Connections
 */

/* Forget c's prepared statements: all of them (the connection closed) or
 * those whose Parse did not come back ok (its Sync did). */
static void
pool_prep_forget(struct pool_conn *c, int all)
{
    for (int i = 0; i < POOL_PREP_MAX; i++)
        if (c->prep[i].sql != NULL && (all || !c->prep[i].ready)) {
            free(c->prep[i].sql);
            c->prep[i].sql = NULL;
            c->prep[i].ready = 0;
        }
}

/* c's entry for sql, adding one (*added = 1) when there is none and room;
 * -1: none and no room (or no memory): run it unnamed. */
static int
pool_prep_entry(struct pool_conn *c, const char *sql, int *added)
{
    int free_at = -1;

    *added = 0;
    for (int i = 0; i < POOL_PREP_MAX; i++) {
        if (c->prep[i].sql == NULL) {
            if (free_at < 0) free_at = i;
        } else if (strcmp(c->prep[i].sql, sql) == 0) {
            return i;
        }
    }
    if (free_at < 0 || (c->prep[free_at].sql = strdup(sql)) == NULL) return -1;
    c->prep[free_at].ready = 0;
    *added = 1;
    return free_at;
}

/* When no connection is up and every one has failed its last attempt,
 * what waits would only wait for its deadline: EDOWN now, as a new
 * transaction would get. */
static void
pool_fail_waiting(struct store_pool *p)
{
    struct pool_tx *t;

    while (p->running && !pool_hope(p)) {
        /* (a callback may queue more: look again from the start) */
        TAILQ_FOREACH (t, &p->waiting, link)
            if (!t->waiting) break;
        if (t == NULL) return;
        if (p->wait_ms > 0 && pool_tx_wait(t) == 0) continue;
        pool_tx_unqueue(t);
        t->status = STORE_EDOWN;
        snprintf(t->r.errstr, sizeof(t->r.errstr), "database not connected");
        pool_tx_complete(t);
    }
}

/* Close c, plan the next attempt while running, fail its transaction. */
static void
pool_conn_drop(struct pool_conn *c, int status, const char *why)
{
    struct pool_tx *t = c->tx;

    /* up until now: one attempt at once that transactions wait for */
    c->again = c->state == POOL_CONN_IDLE || c->state == POOL_CONN_BUSY;
    store_link_close(&c->l);
    pool_prep_forget(c, 1);
    c->tx = NULL;
    c->state = POOL_CONN_DOWN;
    if (c->p->running)
        store_link_retry(&c->l, POOL_BACKOFF_MIN, POOL_BACKOFF_MAX);
    if (c->p->running && !c->again && pool_anyone_waits(c->p))
        /* transactions wait for it: try again soon, not after the backoff */
        store_link_schedule(&c->l, POOL_BACKOFF_MIN);
    if (t != NULL) {
        t->conn = NULL;
        if (t->status == 0 || status == STORE_ETIMEDOUT) t->status = status;
        t->r.unknown = t->sent;
        if (t->r.errstr[0] == '\0' && why != NULL)
            snprintf(t->r.errstr, sizeof(t->r.errstr), "%s", why);
        pool_tx_complete(t);
    }
    pool_fail_waiting(c->p);
}

static void
pool_conn_connect(struct pool_conn *c)
{
    int ms = c->p->timeout_ms > POOL_CONNECT_MIN ? c->p->timeout_ms
                                                 : POOL_CONNECT_MIN;

    if (store_link_connect(&c->l, c->p->dsn, ms) != 0) {
        pool_conn_drop(c, STORE_EDOWN, NULL);
        return;
    }
    c->state = POOL_CONN_CONNECTING;
}

static void
pool_conn_poll(struct pool_conn *c)
{
    int up = store_link_poll(&c->l);

    if (up == 0) return;
    if (up < 0 || store_link_watch(&c->l, EV_READ) != 0) {
        pool_conn_drop(c, STORE_EDOWN, NULL);
        return;
    }
    c->state = POOL_CONN_IDLE;
    c->l.backoff_ms = 0;
    c->again = 0;
    pool_dispatch(c->p);
}

/* Record the first error of t (x: an error result of query q, 0 being the
 * context statement, n + 1 the commit at the Sync). */
static void
pool_tx_error(struct pool_tx *t, const PGresult *x, int q)
{
    const char *code = PQresultErrorField(x, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(x, PG_DIAG_MESSAGE_PRIMARY);

    if (t->error) return;
    t->error = 1;
    t->r.failed = q >= 1 && q <= t->r.n ? q - 1 : -1;
    snprintf(t->r.sqlstate, sizeof(t->r.sqlstate), "%s", code ? code : "");
    /* SQLSTATE and the primary message only: details quote values */
    snprintf(t->r.errstr, sizeof(t->r.errstr), "%s: %s", code ? code : "?",
             msg ? msg : "no result");
    /* 57 (operator intervention: terminated, shutting down) and 08 (the
     * connection) say nothing about the statement: the server went away */
    if (code && (strncmp(code, "57", 2) == 0 || strncmp(code, "08", 2) == 0))
        t->status = STORE_EDOWN;
    else if (code &&
             (strncmp(code, "22", 2) == 0 || strncmp(code, "23", 2) == 0 ||
              strncmp(code, "54", 2) == 0))
        t->status = STORE_EREFUSED;
    else
        t->status = STORE_EDB;
}

/* The Sync's answer came: the transaction is over, c is idle again. */
static void
pool_conn_done(struct pool_conn *c)
{
    struct pool_tx *t = c->tx;
    struct store_pool *p = c->p;

    STORE_AN(t != NULL);
    c->tx = NULL;
    t->conn = NULL;
    pool_prep_forget(c, 0);
    if (!t->error && t->got != t->nitems) {
        t->status = STORE_EDB;
        snprintf(t->r.errstr, sizeof(t->r.errstr),
                 "%d results for %d queries sent", t->got, t->nitems);
    }
    if (PQexitPipelineMode(c->l.pg) != 1 ||
        PQstatus(c->l.pg) == CONNECTION_BAD) {
        /* the answer came; the connection is of no further use */
        pool_conn_drop(c, STORE_EDOWN, NULL);
        pool_tx_complete(t);
        return;
    }
    c->state = POOL_CONN_IDLE;
    pool_tx_complete(t);
    if (p->running) pool_dispatch(p);
}

static void
pool_conn_on_io(evutil_socket_t fd, short what, void *arg)
{
    struct pool_conn *c = arg;
    struct pool_tx *t;
    PGresult *x;
    int q;

    (void)fd;
    if (c->state == POOL_CONN_CONNECTING) {
        pool_conn_poll(c);
        return;
    }
    if ((what & EV_WRITE) && store_link_flush(&c->l) != 0) {
        pool_conn_drop(c, STORE_EDOWN, "connection lost");
        return;
    }
    if (!(what & EV_READ)) return;
    if (!PQconsumeInput(c->l.pg) || PQstatus(c->l.pg) == CONNECTION_BAD) {
        pool_conn_drop(c, STORE_EDOWN, "connection lost");
        return;
    }
    if (c->state == POOL_CONN_IDLE) {
        /* nothing is asked: only notifications or a server going away */
        while (!PQisBusy(c->l.pg) && (x = PQgetResult(c->l.pg)) != NULL)
            PQclear(x);
        return;
    }
    t = c->tx;
    STORE_AN(t != NULL);
    while (!PQisBusy(c->l.pg)) {
        x = PQgetResult(c->l.pg);
        if (x == NULL) { /* the end of one query's results */
            t->got++;
            continue;
        }
        switch (PQresultStatus(x)) {
        case PGRES_PIPELINE_SYNC:
            PQclear(x);
            pool_conn_done(c);
            return;
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
            if (t->got >= t->nitems) break;
            if (t->item_prep[t->got] >= 0) { /* a Parse went through */
                c->prep[t->item_prep[t->got]].ready = 1;
                break;
            }
            q = t->item_q[t->got];
            if (t->r.res[q] == NULL) {
                t->r.res[q] = x;
                x = NULL;
            }
            break;
        case PGRES_PIPELINE_ABORTED:
            break;
        default:
            pool_tx_error(t, x,
                          t->got < t->nitems ? t->item_q[t->got] : t->r.n + 1);
            break;
        }
        PQclear(x);
    }
}

static void
pool_conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pool_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->state == POOL_CONN_DOWN)
        pool_conn_connect(c);
    else if (c->state == POOL_CONN_CONNECTING)
        pool_conn_drop(c, STORE_EDOWN, NULL);
}

/* Send query q of t (0 the context statement): by name when prepare says
 * so and the connection has room, after its Parse the first time.  0 or
 * -1. */
static int
pool_conn_send_one(struct pool_conn *c, struct pool_tx *t, int q,
                   const char *sql, int nparams, const char *const *params,
                   int prepare)
{
    char name[16];
    int k = -1, added = 0;

    if (prepare) k = pool_prep_entry(c, sql, &added);
    if (k < 0) {
        if (!PQsendQueryParams(c->l.pg, sql, nparams, NULL, params, NULL, NULL,
                               0))
            return -1;
        t->item_q[t->nitems] = (signed char)q;
        t->item_prep[t->nitems++] = -1;
        return 0;
    }
    snprintf(name, sizeof(name), "rg_%d", k);
    if (added) {
        if (!PQsendPrepare(c->l.pg, name, sql, nparams, NULL)) return -1;
        t->item_q[t->nitems] = (signed char)q;
        t->item_prep[t->nitems++] = (signed char)k;
    }
    if (!PQsendQueryPrepared(c->l.pg, name, nparams, params, NULL, NULL, 0))
        return -1;
    t->item_q[t->nitems] = (signed char)q;
    t->item_prep[t->nitems++] = -1;
    return 0;
}

/* Send every query of t and the Sync on c.  0 or -1. */
static int
pool_conn_send(struct pool_conn *c, struct pool_tx *t)
{
    const char *role = t->ctx[3];

    if (PQenterPipelineMode(c->l.pg) != 1) return -1;
    t->nitems = 0;
    if (pool_conn_send_one(c, t, 0, role[0] ? pool_ctx_role_sql : pool_ctx_sql,
                           role[0] ? 4 : 3, t->ctx, 1) != 0)
        return -1;
    for (int i = 0; i < t->r.n; i++)
        if (pool_conn_send_one(c, t, i + 1, t->stmt[i].sql, t->stmt[i].nparams,
                               t->stmt[i].params, (t->prepare >> i) & 1u) != 0)
            return -1;
    STORE_AN(t->nitems <= POOL_ITEMS);
    if (PQpipelineSync(c->l.pg) != 1) return -1;
    t->sent = 1;
    return store_link_flush(&c->l);
}

static void
pool_dispatch(struct store_pool *p)
{
    while (p->running && !TAILQ_EMPTY(&p->waiting)) {
        struct pool_conn *c = NULL;
        struct pool_tx *t;

        for (int i = 0; i < p->pool; i++)
            if (p->conns[i].state == POOL_CONN_IDLE) {
                c = &p->conns[i];
                break;
            }
        if (c == NULL) return;
        t = TAILQ_FIRST(&p->waiting);
        pool_tx_unqueue(t);
        pool_tx_unwait(t);
        t->conn = c;
        c->tx = t;
        c->state = POOL_CONN_BUSY;
        if (pool_conn_send(c, t) != 0)
            pool_conn_drop(c, STORE_EDOWN, "send failed");
    }
}

static void
pool_on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_dispatch(arg);
}

/* ------------------------------------------------------------------------
 * Public
 */

struct store_pool *
store_pool_new(const struct store_pool_config *cfg, struct event_base *base,
               char *err, size_t errlen)
{
    struct store_pool *p;

    if (cfg == NULL || base == NULL || cfg->dsn == NULL || cfg->pool < 0 ||
        cfg->pool > 64 || cfg->timeout_ms < 0 || cfg->max_waiting < 0 ||
        cfg->wait_ms < 0 || (cfg->role && strlen(cfg->role) >= POOL_CTX_MAX) ||
        (cfg->admin_role && strlen(cfg->admin_role) >= POOL_CTX_MAX)) {
        snprintf(err, errlen, "store_pool: bad configuration");
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) goto nomem;
    p->magic = POOL_MAGIC;
    p->base = base;
    p->pool = cfg->pool ? cfg->pool : 2;
    p->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 2000;
    p->max_waiting = cfg->max_waiting ? cfg->max_waiting : 1024;
    p->wait_ms = cfg->wait_ms;
    TAILQ_INIT(&p->waiting);
    p->dsn = strdup(cfg->dsn);
    p->role = strdup(cfg->role ? cfg->role : "");
    p->admin_role = strdup(cfg->admin_role ? cfg->admin_role : "");
    p->conns = calloc((size_t)p->pool, sizeof(*p->conns));
    p->kick = event_new(base, -1, 0, pool_on_kick, p);
    if (p->dsn == NULL || p->role == NULL || p->admin_role == NULL ||
        p->conns == NULL || p->kick == NULL)
        goto nomem;
    for (int i = 0; i < p->pool; i++) {
        p->conns[i].p = p;
        if (store_link_init(&p->conns[i].l, base, pool_conn_on_io,
                            pool_conn_on_timer, &p->conns[i]) != 0)
            goto nomem;
    }
    return p;
nomem:
    snprintf(err, errlen, "store_pool: out of memory");
    store_pool_free(p);
    return NULL;
}

int
store_pool_start(struct store_pool *p)
{
    STORE_AN(p->magic == POOL_MAGIC);
    if (p->running) return STORE_EINVAL;
    p->running = 1;
    for (int i = 0; i < p->pool; i++) {
        p->conns[i].l.backoff_ms = 0;
        p->conns[i].again = 0;
        store_link_schedule(&p->conns[i].l, 0);
    }
    return 0;
}

void
store_pool_stop(struct store_pool *p)
{
    struct pool_tx_list failed;
    struct pool_tx *t;

    STORE_AN(p->magic == POOL_MAGIC);
    if (!p->running) return;
    p->running = 0;
    event_del(p->kick);
    TAILQ_INIT(&failed);
    for (int i = 0; i < p->pool; i++) {
        struct pool_conn *c = &p->conns[i];
        t = c->tx;
        c->tx = NULL;
        pool_conn_drop(c, STORE_EDOWN, NULL);
        if (t != NULL) {
            t->conn = NULL;
            t->r.unknown = t->sent;
            TAILQ_INSERT_TAIL(&failed, t, link);
        }
    }
    while ((t = TAILQ_FIRST(&p->waiting)) != NULL) {
        pool_tx_unqueue(t);
        TAILQ_INSERT_TAIL(&failed, t, link);
    }
    while ((t = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, t, link);
        t->status = STORE_EDOWN;
        snprintf(t->r.errstr, sizeof(t->r.errstr), "store stopped");
        pool_tx_complete(t);
    }
}

void
store_pool_free(struct store_pool *p)
{
    if (p == NULL) return;
    STORE_AN(p->magic == POOL_MAGIC);
    store_pool_stop(p);
    for (int i = 0; p->conns && i < p->pool; i++) {
        pool_prep_forget(&p->conns[i], 1);
        store_link_fini(&p->conns[i].l);
    }
    if (p->kick) event_free(p->kick);
    free(p->conns);
    free(p->dsn);
    free(p->role);
    free(p->admin_role);
    p->magic = 0;
    free(p);
}

int
store_pool_connected(const struct store_pool *p)
{
    int n = 0;

    for (int i = 0; i < p->pool; i++)
        if (p->conns[i].state == POOL_CONN_IDLE ||
            p->conns[i].state == POOL_CONN_BUSY)
            n++;
    return n;
}

int
store_pool_tx(struct store_pool *p, const struct store_tx *tx, store_tx_cb *cb,
              void *arg)
{
    struct pool_tx *t;
    struct timeval tv;
    int rc;

    if (p == NULL || cb == NULL || !pool_tx_valid(tx)) return STORE_EINVAL;
    STORE_AN(p->magic == POOL_MAGIC);
    if ((rc = pool_can_take(p)) != 0) return rc;
    if ((t = pool_tx_copy(p, tx)) == NULL) return STORE_ENOMEM;
    t->magic = POOL_TX_MAGIC;
    t->p = p;
    t->cb = cb;
    t->arg = arg;
    t->timeout_ms = tx->timeout_ms > 0 ? tx->timeout_ms : p->timeout_ms;
    t->t0 = pool_now_ms();
    t->deadline = evtimer_new(p->base, pool_tx_on_deadline, t);
    if (t->deadline == NULL) {
        pool_tx_free(t);
        return STORE_ENOMEM;
    }
    tv.tv_sec = t->timeout_ms / 1000;
    tv.tv_usec = (t->timeout_ms % 1000) * 1000;
    evtimer_add(t->deadline, &tv);
    TAILQ_INSERT_TAIL(&p->waiting, t, link);
    t->queued = 1;
    p->nwaiting++;
    if (!pool_hope(p)) (void)pool_tx_wait(t);
    event_active(p->kick, EV_TIMEOUT, 0);
    return 0;
}
