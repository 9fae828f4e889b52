/*
 * store_pool.c -- the generic pool: transactions of parameterised
 * statements, on libevent.  This file has the pool and its transactions
 * (accepted, queued, timed, completed); store_pool_conn.c has the
 * connections that run them.
 *
 * The console's queries and the sms_out rows (store_sms.c) run here.  A
 * transaction goes out in one round trip: libpq's pipeline mode, the
 * context statement (set_config of the role and the officer), the
 * caller's statements, then one Sync.  Without an explicit BEGIN the
 * server runs everything up to the Sync as one implicit transaction: when
 * a statement fails, the rest are skipped (PGRES_PIPELINE_ABORTED) and the
 * Sync rolls it all back; otherwise the Sync commits.  So
 * set_config(..., true) holds for exactly the caller's statements and a
 * failure leaves nothing behind.
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

#include "store/store_pool_int.h"

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
void
store_pool_tx_complete(struct pool_tx *t)
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

void
store_pool_tx_unqueue(struct pool_tx *t)
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
void
store_pool_tx_unwait(struct pool_tx *t)
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
            store_pool_tx_unwait(t);
            return;
        }
        store_pool_tx_unqueue(t);
        t->status = STORE_EDOWN;
        snprintf(t->r.errstr, sizeof(t->r.errstr),
                 "database not connected (waited %d ms for it)",
                 (int)(pool_now_ms() - t->t0));
        store_pool_tx_complete(t);
        return;
    }
    t->status = STORE_ETIMEDOUT;
    snprintf(t->r.errstr, sizeof(t->r.errstr),
             "transaction deadline of %d ms passed", t->timeout_ms);
    if (t->queued) {
        store_pool_tx_unqueue(t);
        store_pool_tx_complete(t);
    } else {
        STORE_AN(t->conn != NULL);
        store_pool_conn_drop(t->conn, STORE_ETIMEDOUT, NULL);
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
int
store_pool_anyone_waits(const struct store_pool *p)
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

/* When no connection is up and every one has failed its last attempt,
 * what waits would only wait for its deadline: EDOWN now, as a new
 * transaction would get. */
void
store_pool_fail_waiting(struct store_pool *p)
{
    struct pool_tx *t;

    while (p->running && !pool_hope(p)) {
        /* (a callback may queue more: look again from the start) */
        TAILQ_FOREACH (t, &p->waiting, link)
            if (!t->waiting) break;
        if (t == NULL) return;
        if (p->wait_ms > 0 && pool_tx_wait(t) == 0) continue;
        store_pool_tx_unqueue(t);
        t->status = STORE_EDOWN;
        snprintf(t->r.errstr, sizeof(t->r.errstr), "database not connected");
        store_pool_tx_complete(t);
    }
}

static void
pool_on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store_pool_dispatch(arg);
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
        if (store_link_init(&p->conns[i].l, base, store_pool_conn_on_io,
                            store_pool_conn_on_timer, &p->conns[i]) != 0)
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
        store_pool_conn_drop(c, STORE_EDOWN, NULL);
        if (t != NULL) {
            t->conn = NULL;
            t->r.unknown = t->sent;
            TAILQ_INSERT_TAIL(&failed, t, link);
        }
    }
    while ((t = TAILQ_FIRST(&p->waiting)) != NULL) {
        store_pool_tx_unqueue(t);
        TAILQ_INSERT_TAIL(&failed, t, link);
    }
    while ((t = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, t, link);
        t->status = STORE_EDOWN;
        snprintf(t->r.errstr, sizeof(t->r.errstr), "store stopped");
        store_pool_tx_complete(t);
    }
}

void
store_pool_free(struct store_pool *p)
{
    if (p == NULL) return;
    STORE_AN(p->magic == POOL_MAGIC);
    store_pool_stop(p);
    for (int i = 0; p->conns && i < p->pool; i++) {
        store_pool_prep_forget(&p->conns[i], 1);
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
