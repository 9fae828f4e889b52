/*
 * store_pool_conn.c -- the generic pool's connections (store_pool.c has
 * the pool and its transactions).
 *
 * A connection is DOWN -> CONNECTING -> IDLE <-> BUSY with one socket event
 * and one timer (store_link.c).  store_pool_dispatch() hands the first
 * waiting transaction to an idle connection, which sends it in one
 * pipeline (the context statement, the caller's statements, one Sync) and
 * reads the results back in order until the Sync's answer.
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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "store/store_pool_int.h"

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

/* ------------------------------------------------------------------------
 * Connections
 */

/* Forget c's prepared statements: all of them (the connection closed) or
 * those whose Parse did not come back ok (its Sync did). */
void
store_pool_prep_forget(struct pool_conn *c, int all)
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

/* Close c, plan the next attempt while running, fail its transaction. */
void
store_pool_conn_drop(struct pool_conn *c, int status, const char *why)
{
    struct pool_tx *t = c->tx;

    /* up until now: one attempt at once that transactions wait for */
    c->again = c->state == POOL_CONN_IDLE || c->state == POOL_CONN_BUSY;
    store_link_close(&c->l);
    store_pool_prep_forget(c, 1);
    c->tx = NULL;
    c->state = POOL_CONN_DOWN;
    if (c->p->running)
        store_link_retry(&c->l, POOL_BACKOFF_MIN, POOL_BACKOFF_MAX);
    if (c->p->running && !c->again && store_pool_anyone_waits(c->p))
        /* transactions wait for it: try again soon, not after the backoff */
        store_link_schedule(&c->l, POOL_BACKOFF_MIN);
    if (t != NULL) {
        t->conn = NULL;
        if (t->status == 0 || status == STORE_ETIMEDOUT) t->status = status;
        t->r.unknown = t->sent;
        if (t->r.errstr[0] == '\0' && why != NULL)
            snprintf(t->r.errstr, sizeof(t->r.errstr), "%s", why);
        store_pool_tx_complete(t);
    }
    store_pool_fail_waiting(c->p);
}

static void
pool_conn_connect(struct pool_conn *c)
{
    int ms = c->p->timeout_ms > POOL_CONNECT_MIN ? c->p->timeout_ms
                                                 : POOL_CONNECT_MIN;

    if (store_link_connect(&c->l, c->p->dsn, ms) != 0) {
        store_pool_conn_drop(c, STORE_EDOWN, NULL);
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
        store_pool_conn_drop(c, STORE_EDOWN, NULL);
        return;
    }
    c->state = POOL_CONN_IDLE;
    c->l.backoff_ms = 0;
    c->again = 0;
    store_pool_dispatch(c->p);
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
    store_pool_prep_forget(c, 0);
    if (!t->error && t->got != t->nitems) {
        t->status = STORE_EDB;
        snprintf(t->r.errstr, sizeof(t->r.errstr),
                 "%d results for %d queries sent", t->got, t->nitems);
    }
    if (PQexitPipelineMode(c->l.pg) != 1 ||
        PQstatus(c->l.pg) == CONNECTION_BAD) {
        /* the answer came; the connection is of no further use */
        store_pool_conn_drop(c, STORE_EDOWN, NULL);
        store_pool_tx_complete(t);
        return;
    }
    c->state = POOL_CONN_IDLE;
    store_pool_tx_complete(t);
    if (p->running) store_pool_dispatch(p);
}

void
store_pool_conn_on_io(evutil_socket_t fd, short what, void *arg)
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
        store_pool_conn_drop(c, STORE_EDOWN, "connection lost");
        return;
    }
    if (!(what & EV_READ)) return;
    if (!PQconsumeInput(c->l.pg) || PQstatus(c->l.pg) == CONNECTION_BAD) {
        store_pool_conn_drop(c, STORE_EDOWN, "connection lost");
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

void
store_pool_conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pool_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->state == POOL_CONN_DOWN)
        pool_conn_connect(c);
    else if (c->state == POOL_CONN_CONNECTING)
        store_pool_conn_drop(c, STORE_EDOWN, NULL);
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

void
store_pool_dispatch(struct store_pool *p)
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
        store_pool_tx_unqueue(t);
        store_pool_tx_unwait(t);
        t->conn = c;
        c->tx = t;
        c->state = POOL_CONN_BUSY;
        if (pool_conn_send(c, t) != 0)
            store_pool_conn_drop(c, STORE_EDOWN, "send failed");
    }
}
