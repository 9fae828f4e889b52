/*
 * store_pool_int.h -- private to the generic pool: its connection and
 * transaction types, shared by store_pool.c (the pool and its
 * transactions) and store_pool_conn.c (the connections that run them).
 */
#ifndef STORE_POOL_INT_H
#define STORE_POOL_INT_H

#include <stdint.h>
#include <sys/queue.h>

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

/* ------------------------------------------------------------------------
 * store_pool.c
 */

/* t is on no list and no connection: call back, then free. */
void store_pool_tx_complete(struct pool_tx *t);
/* Take t off the waiting list if it is on it. */
void store_pool_tx_unqueue(struct pool_tx *t);
/* t no longer waits for the pool to come back: its own deadline again. */
void store_pool_tx_unwait(struct pool_tx *t);
/* When no connection is up and every one has failed its last attempt,
 * fail what waits (or let it wait, with wait_ms). */
void store_pool_fail_waiting(struct store_pool *p);
/* Someone waits for the pool to come back. */
int store_pool_anyone_waits(const struct store_pool *p);

/* ------------------------------------------------------------------------
 * store_pool_conn.c
 */

/* A connection's socket and timer callbacks (arg: the struct pool_conn). */
void store_pool_conn_on_io(evutil_socket_t fd, short what, void *arg);
void store_pool_conn_on_timer(evutil_socket_t fd, short what, void *arg);
/* Close c, plan the next attempt while running, fail its transaction. */
void store_pool_conn_drop(struct pool_conn *c, int status, const char *why);
/* Forget c's prepared statements: all of them (the connection closed) or
 * those whose Parse did not come back ok (its Sync did). */
void store_pool_prep_forget(struct pool_conn *c, int all);
/* Hand waiting transactions to idle connections. */
void store_pool_dispatch(struct store_pool *p);

#endif
