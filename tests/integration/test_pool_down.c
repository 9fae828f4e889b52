/*
 * test_pool_down.c -- store_pool (the generic transaction pool) when
 * PostgreSQL fails or is slow, against a real PostgreSQL (PG_DSN; tests/run
 * starts one), in a database of the test's own (tests/lib/itest_pg.h).
 * What is checked: deadlines roll back, a killed backend and a stopped
 * pool answer every caller once, bad calls and a server that is not there
 * fail at once, and with wait_ms a transaction waits for a pool that is
 * down.  The pool when all is well: test_pool.c.
 * The loop runs until a condition holds, with a deadline -- no sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "store/store.h"
#include "tests/lib/itest.h"
#include "tests/lib/itest_pg.h"

static struct itest_env T;

static int
run_until(int (*cond)(void *), void *arg, int ms)
{
    return itest_run_until(T.base, cond, arg, ms);
}

static int
group_setup(void **state)
{
    (void)state;
    if (itest_env_new(&T, "test_pool_down", "remigate_pool_down") != 0)
        return -1;
    PQclear(itest_sql(
        &T, "CREATE TABLE pool_t (k text PRIMARY KEY, district text NOT NULL)",
        0));
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    return itest_env_free(&T);
}

/* ------------------------------------------------------------------------ */

/* A late transaction: ETIMEDOUT with unknown set, its insert never
 * commits, the one queued behind it keeps its own deadline and runs once
 * the pool has connected again (it is not failed "not connected" while
 * the connection the deadline closed comes back), and so does one given
 * right after the drop. */
static void
test_deadline_rolls_back(void **state)
{
    struct store_pool *p = itest_pool_up(&T, 1, 300, 0, NULL);
    struct store_tx slow = {
        .n = 2,
        .stmt = {{.sql = "INSERT INTO pool_t VALUES ('e1', 'BD-13')"},
                 {.sql = "SELECT pg_sleep(5)"}}};
    struct store_tx quick = {.n = 1, .stmt = {{.sql = "SELECT 2"}}};
    struct itest_tx a, b, c, d;
    struct itest_pool_want w = {p, 1};
    long t0 = itest_now_ms();

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&d, 0, sizeof(d));
    assert_int_equal(store_pool_tx(p, &slow, itest_tx_cb, &a), 0);
    quick.timeout_ms = 3000;
    assert_int_equal(store_pool_tx(p, &quick, itest_tx_cb, &b), 0);
    assert_true(run_until(itest_tx_called, &a, 3000));
    assert_int_equal(a.status, STORE_ETIMEDOUT);
    assert_int_equal(a.unknown, 1);
    assert_true(itest_now_ms() - t0 < 2000);
    assert_int_equal(store_pool_tx(p, &quick, itest_tx_cb, &d), 0);
    assert_true(run_until(itest_tx_called, &b, 3000));
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, 0);
    assert_string_equal(b.v[0][0], "2");
    assert_true(run_until(itest_tx_called, &d, 3000));
    assert_int_equal(d.status, 0);
    assert_true(run_until(itest_pool_connected, &w, 5000));
    c = itest_tx_wait(&T, p, &quick);
    assert_int_equal(c.status, 0);
    assert_string_equal(c.v[0][0], "2");
    assert_string_equal(
        itest_sql1(&T, "SELECT count(*) FROM pool_t WHERE k = 'e1'", 0), "0");
    assert_int_equal(a.calls, 1);
    store_pool_free(p);
}

/* Every backend of ours killed in the middle: EDOWN once each, then the
 * pool is back. */
static void
test_backend_killed(void **state)
{
    struct store_pool *p = itest_pool_up(&T, 2, 5000, 0, "remigate_console");
    struct store_tx slow = {.n = 1, .stmt = {{.sql = "SELECT pg_sleep(3)"}}};
    struct store_tx ok = {.n = 1, .stmt = {{.sql = "SELECT 3"}}};
    struct itest_tx a, b, c;
    struct itest_pool_want w = {p, 2};
    PGresult *r;

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    assert_int_equal(store_pool_tx(p, &slow, itest_tx_cb, &a), 0);
    assert_int_equal(store_pool_tx(p, &slow, itest_tx_cb, &b), 0);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    r = PQexec(T.db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = current_database() AND pid <>"
                     " pg_backend_pid()");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    assert_true(run_until(itest_tx_called, &a, 3000));
    assert_true(run_until(itest_tx_called, &b, 3000));
    assert_int_equal(a.status, STORE_EDOWN);
    assert_int_equal(b.status, STORE_EDOWN);
    assert_true(run_until(itest_pool_connected, &w, 5000));
    c = itest_tx_wait(&T, p, &ok);
    assert_int_equal(c.status, 0);
    assert_int_equal(a.calls + b.calls, 2);
    store_pool_free(p);
}


/* Stop: what runs and what waits gets EDOWN exactly once, before
 * store_pool_stop() returns; a full queue refuses now; a stopped pool
 * refuses now and calls nothing later. */
static void
test_stop_and_busy(void **state)
{
    struct store_pool *p = itest_pool_up(&T, 1, 2000, 3, NULL);
    struct store_tx slow = {.n = 1, .stmt = {{.sql = "SELECT pg_sleep(1)"}}};
    struct itest_tx o[5];

    (void)state;
    memset(o, 0, sizeof(o));
    assert_int_equal(store_pool_tx(p, &slow, itest_tx_cb, &o[0]), 0);
    event_base_loop(T.base, EVLOOP_NONBLOCK); /* on the wire */
    for (int i = 1; i < 4; i++)
        assert_int_equal(store_pool_tx(p, &slow, itest_tx_cb, &o[i]), 0);
    assert_int_equal(store_pool_tx(p, &slow, itest_tx_cb, &o[4]), STORE_EBUSY);
    store_pool_stop(p);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status, STORE_EDOWN);
    }
    assert_int_equal(o[0].unknown, 1); /* it was sent */
    assert_int_equal(o[1].unknown, 0); /* it never left */
    assert_int_equal(store_pool_connected(p), 0);
    assert_int_equal(store_pool_tx(p, &slow, itest_tx_cb, &o[4]), STORE_EDOWN);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(o[i].calls, i < 4 ? 1 : 0);
    /* and it starts again */
    assert_int_equal(store_pool_start(p), 0);
    {
        struct itest_pool_want w = {p, 1};
        assert_true(run_until(itest_pool_connected, &w, 5000));
    }
    store_pool_free(p);
    store_pool_free(NULL);
}

/* Bad calls fail now without a callback; a server that is not there fails
 * now once its first attempt failed. */
static void
test_bad_calls_and_down(void **state)
{
    struct store_pool_config cfg = {.dsn = "host=127.0.0.1 port=1"
                                           " connect_timeout=1"};
    struct store_pool *p = itest_pool_up(&T, 1, 2000, 0, NULL);
    struct store_tx empty = {.n = 0};
    struct store_tx nosql = {.n = 1, .stmt = {{.sql = NULL}}};
    struct store_tx many = {.n = STORE_TX_STMTS + 1};
    struct store_tx params = {
        .n = 1, .stmt = {{.sql = "SELECT 1", .nparams = STORE_TX_PARAMS + 1}}};
    struct store_tx ok = {.n = 1, .stmt = {{.sql = "SELECT 1"}}};
    struct itest_tx o;
    char err[256];
    struct store_pool *down;

    (void)state;
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_pool_tx(p, &empty, itest_tx_cb, &o), STORE_EINVAL);
    assert_int_equal(store_pool_tx(p, &nosql, itest_tx_cb, &o), STORE_EINVAL);
    assert_int_equal(store_pool_tx(p, &many, itest_tx_cb, &o), STORE_EINVAL);
    assert_int_equal(store_pool_tx(p, &params, itest_tx_cb, &o), STORE_EINVAL);
    assert_int_equal(store_pool_tx(p, NULL, itest_tx_cb, &o), STORE_EINVAL);
    assert_int_equal(store_pool_tx(p, &ok, NULL, &o), STORE_EINVAL);
    assert_int_equal(store_pool_start(p), STORE_EINVAL);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    assert_int_equal(o.calls, 0);
    store_pool_free(p);

    cfg.pool = 65;
    assert_null(store_pool_new(&cfg, T.base, err, sizeof(err)));
    cfg.pool = 1;
    down = store_pool_new(&cfg, T.base, err, sizeof(err));
    assert_non_null(down);
    assert_int_equal(store_pool_start(down), 0);
    /* before the first attempt ends, a transaction waits for it */
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_pool_tx(down, &ok, itest_tx_cb, &o), 0);
    assert_true(run_until(itest_tx_called, &o, 5000));
    assert_int_equal(o.status, STORE_EDOWN);
    assert_int_equal(o.unknown, 0);
    assert_int_equal(store_pool_connected(down), 0);
    assert_int_equal(store_pool_tx(down, &ok, itest_tx_cb, &o), STORE_EDOWN);
    store_pool_free(down);
}

/* The pool's database refuses connections (ALLOW_CONNECTIONS false) and
 * its backends are ended: no connection up, the first attempts failed. */
static void
pool_shut_out(struct store_pool *p)
{
    char q[256];
    long end;

    snprintf(q, sizeof(q), "ALTER DATABASE %s ALLOW_CONNECTIONS false",
             T.dbname);
    itest_admin(&T, q);
    PQclear(itest_sql(&T,
                      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND pid <>"
                      " pg_backend_pid()",
                      0));
    /* the attempts at once after the drop fail too */
    end = itest_now_ms() + 400;
    while (itest_now_ms() < end)
        event_base_loop(T.base, EVLOOP_NONBLOCK);
    assert_int_equal(store_pool_connected(p), 0);
}

static void
on_let_in(evutil_socket_t fd, short what, void *arg)
{
    char q[256];

    (void)fd;
    (void)what;
    (void)arg;
    snprintf(q, sizeof(q), "ALTER DATABASE %s ALLOW_CONNECTIONS true",
             T.dbname);
    itest_admin(&T, q);
}

/* store_pool_config.wait_ms: a transaction given while the pool is down
 * waits for it instead of failing at once (a failover's new primary comes
 * up within seconds).  The server lets the pool in again 300 ms later: the
 * transaction runs, well within the wait.  Kept out: it fails with
 * STORE_EDOWN ("waited") once wait_ms has passed, not before. */
static void
test_wait_for_reconnect(void **state)
{
    struct store_pool_config cfg = {
        .dsn = T.dsn, .pool = 2, .timeout_ms = 3000, .wait_ms = 1200};
    struct store_tx ok = {.n = 1, .stmt = {{.sql = "SELECT 7"}}};
    struct timeval later = {0, 300000};
    struct event *let_in = evtimer_new(T.base, on_let_in, NULL);
    char err[256];
    struct store_pool *p = store_pool_new(&cfg, T.base, err, sizeof(err));
    struct itest_pool_want w = {p, 2};
    struct itest_tx o;
    long t0, took;
    int rc;

    (void)state;
    assert_non_null(p);
    assert_non_null(let_in);
    assert_int_equal(store_pool_start(p), 0);
    assert_true(run_until(itest_pool_connected, &w, 5000));

    pool_shut_out(p);
    memset(&o, 0, sizeof(o));
    t0 = itest_now_ms();
    rc = store_pool_tx(p, &ok, itest_tx_cb, &o);
    evtimer_add(let_in, &later);
    assert_int_equal(rc, 0); /* without wait_ms: STORE_EDOWN now */
    assert_int_equal(o.calls, 0);
    assert_true(run_until(itest_tx_called, &o, 5000));
    took = itest_now_ms() - t0;
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "7");
    assert_true(took >= 250 && took < 1200);

    pool_shut_out(p);
    memset(&o, 0, sizeof(o));
    t0 = itest_now_ms();
    rc = store_pool_tx(p, &ok, itest_tx_cb, &o);
    if (rc == 0) run_until(itest_tx_called, &o, 5000);
    took = itest_now_ms() - t0;
    on_let_in(-1, 0, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, STORE_EDOWN);
    assert_int_equal(o.unknown, 0);
    assert_non_null(strstr(o.errstr, "waited"));
    assert_true(took >= 1150 && took < 2500);
    w.n = 1;
    assert_true(run_until(itest_pool_connected, &w, 5000));
    event_free(let_in);
    store_pool_free(p);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_rolls_back),
        cmocka_unit_test(test_backend_killed),
        cmocka_unit_test(test_stop_and_busy),
        cmocka_unit_test(test_bad_calls_and_down),
        cmocka_unit_test(test_wait_for_reconnect),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
