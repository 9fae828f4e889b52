/*
 * test_store_down.c -- store/ when PostgreSQL is slow, killed or not there
 * (PG_DSN; tests/run starts one), in a database of the test's own
 * (tests/lib/itest_pg.h): a late call fails at its deadline and the one
 * queued behind it at its own, a killed backend fails what it held once
 * and the store connects again, a stopped store answers every caller
 * once and nothing later, a server that is not there fails at once.  The
 * store when all is well: test_store.c.
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
    return itest_env_new(&T, "test_store_down", "remigate_store_down");
}

static int
group_teardown(void **state)
{
    (void)state;
    return itest_env_free(&T);
}

/* ------------------------------------------------------------------------ */

static void
test_deadline_then_reconnect(void **state)
{
    struct store *s = itest_store_up(&T, 1, 300, 0);
    struct itest_rec slow = {0}, queued = {0}, after = {0};
    struct itest_store_want w = {s, 1};
    long t0 = itest_now_ms();

    (void)state;
    assert_int_equal(store_ping(s, 5000, itest_rec_cb, &slow), 0);
    assert_int_equal(store_ping(s, 0, itest_rec_cb, &queued), 0);
    assert_true(run_until(itest_rec_called, &slow, 3000));
    assert_int_equal(slow.status, STORE_ETIMEDOUT);
    assert_true(itest_now_ms() - t0 < 1500);
    /* The one behind it had the same deadline while it waited. */
    assert_true(run_until(itest_rec_called, &queued, 3000));
    assert_int_equal(queued.calls, 1);
    assert_true(run_until(itest_store_connected, &w, 5000));
    assert_int_equal(store_ping(s, 0, itest_rec_cb, &after), 0);
    assert_true(run_until(itest_rec_called, &after, 3000));
    assert_int_equal(after.status, 0);
    assert_int_equal(slow.calls, 1);
    store_free(s);
}

static void
test_backend_killed_then_reconnect(void **state)
{
    struct store *s = itest_store_up(&T, 2, 5000, 0);
    struct itest_rec a = {0}, b = {0}, c = {0};
    struct itest_store_want w = {s, 2};
    char rec[2048];

    (void)state;
    assert_int_equal(store_ping(s, 3000, itest_rec_cb, &a), 0);
    assert_int_equal(store_ping(s, 3000, itest_rec_cb, &b), 0);
    /* Let both reach the server, then kill every session of ours. */
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    PQclear(itest_sql(&T,
                      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND pid <>"
                      " pg_backend_pid()",
                      0));
    assert_true(run_until(itest_rec_called, &a, 3000));
    assert_true(run_until(itest_rec_called, &b, 3000));
    assert_int_equal(a.status, STORE_EDOWN);
    assert_int_equal(b.status, STORE_EDOWN);
    assert_true(run_until(itest_store_connected, &w, 5000));
    itest_record(rec, sizeof(rec), "a8000000000000000000000000000008",
                 "8801600000000", "BD-13", "nid", "9999999999");
    assert_int_equal(store_submit(s, rec, strlen(rec), itest_rec_cb, &c), 0);
    assert_true(run_until(itest_rec_called, &c, 3000));
    assert_int_equal(c.status, 0);
    store_free(s);
}

static void
test_stop_calls_back_edown_once(void **state)
{
    struct store *s = itest_store_up(&T, 2, 2000, 4);
    struct itest_rec o[6];
    char rec[2048];

    (void)state;
    memset(o, 0, sizeof(o));
    assert_int_equal(store_ping(s, 1000, itest_rec_cb, &o[0]), 0);
    assert_int_equal(store_ping(s, 1000, itest_rec_cb, &o[1]), 0);
    event_base_loop(T.base, EVLOOP_NONBLOCK); /* both on the wire */
    itest_record(rec, sizeof(rec), "a9000000000000000000000000000009",
                 "8801611111111", "BD-13", "nid", "8888888888");
    for (int i = 2; i < 6; i++)
        assert_int_equal(store_submit(s, rec, strlen(rec), itest_rec_cb, &o[i]),
                         0);
    /* The waiting queue holds four: the next is refused now. */
    assert_int_equal(store_ping(s, 0, itest_rec_cb, &o[0]), STORE_EBUSY);
    store_stop(s);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status, STORE_EDOWN);
    }
    assert_int_equal(store_connected(s), 0);
    assert_int_equal(store_ping(s, 0, itest_rec_cb, &o[0]), STORE_EDOWN);
    /* Nothing runs later either. */
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    for (int i = 0; i < 6; i++)
        assert_int_equal(o[i].calls, 1);
    store_free(s);
    store_free(NULL);
}

static void
test_down_fails_now(void **state)
{
    struct store_config cfg = {.dsn = "host=127.0.0.1 port=1 "
                                      "connect_timeout=1",
                               .key_file = T.key_file};
    struct itest_rec o = {0};
    char err[256];
    struct store *s = store_new(&cfg, T.base, err, sizeof(err));

    (void)state;
    assert_non_null(s);
    assert_int_equal(store_start(s), 0);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    assert_int_equal(store_connected(s), 0);
    assert_int_equal(store_ping(s, 0, itest_rec_cb, &o), STORE_EDOWN);
    store_free(s);
    /* A missing key file is refused up front. */
    cfg.key_file = "/nonexistent/key";
    assert_null(store_new(&cfg, T.base, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/key"));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_then_reconnect),
        cmocka_unit_test(test_backend_killed_then_reconnect),
        cmocka_unit_test(test_stop_calls_back_edown_once),
        cmocka_unit_test(test_down_fails_now),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
