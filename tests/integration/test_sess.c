/*
 * test_sess.c -- sessions/ against the real Redis tests/run started
 * (REDIS_PORT): get, compare-and-set, TTL, prefix, lists, binary values,
 * argument errors and EBUSY without callbacks, racing writers, bits
 * OR-ed by several writers at once, and
 * sess_stop() answering every command in flight exactly once.  (Redis
 * killed, hung and restarted is covered through the daemon in
 * test_ussd.sh.)  The event loop runs until a condition holds, with a
 * deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "sessions/sess.h"
#include "tests/lib/itest.h"

static struct event_base *base;
static struct sess *S;
static redisContext *R; /* blocking, for checking */
static char prefix[64];

struct res {
    int calls, status;
    uint64_t version;
    char value[256];
    size_t len;
};

static void
on_get(int status, const char *v, size_t len, uint64_t version, void *arg)
{
    struct res *r = arg;
    r->calls++;
    r->status = status;
    r->version = version;
    r->len = len;
    if (v && len < sizeof(r->value)) memcpy(r->value, v, len);
}

static void
on_cas(int status, uint64_t version, void *arg)
{
    struct res *r = arg;
    r->calls++;
    r->status = status;
    r->version = version;
}

static void
on_done(int status, void *arg)
{
    struct res *r = arg;
    r->calls++;
    r->status = status;
}

/* Run the loop until *calls >= n or 3 s pass. */
static void
run_until(const int *calls, int n)
{
    long end = itest_now_ms() + 3000;
    while (*calls < n && itest_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static int
setup(void **state)
{
    (void)state;
    const char *p = getenv("REDIS_PORT");
    if (p == NULL) return -1;
    snprintf(prefix, sizeof(prefix), "t%ld:", (long)itest_now_ms());
    base = event_base_new();
    struct sess_cfg cfg = {.host = "127.0.0.1",
                           .port = atoi(p),
                           .prefix = prefix,
                           .timeout_ms = 1000,
                           .max_pending = 8};
    char err[128];
    S = sess_new(&cfg, base, err, sizeof(err));
    R = redisConnect("127.0.0.1", atoi(p));
    if (S == NULL || R == NULL || R->err || sess_start(S) != 0) return -1;
    long end = itest_now_ms() + 3000;
    while (!sess_connected(S) && itest_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    return sess_connected(S) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    sess_free(S);
    redisFree(R);
    event_base_free(base);
    return 0;
}

static long long
redis_int(const char *fmt, const char *key)
{
    char k[128];
    snprintf(k, sizeof(k), "%s%s", prefix, key);
    redisReply *r = redisCommand(R, fmt, k);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -99;
    freeReplyObject(r);
    return v;
}

static void
t_get_cas(void **state)
{
    (void)state;
    struct res g = {0}, c = {0};
    assert_int_equal(sess_get(S, "a", on_get, &g), SESS_OK);
    assert_int_equal(g.calls, 0); /* never from inside the call */
    run_until(&g.calls, 1);
    assert_int_equal(g.status, SESS_ENOTFOUND);
    assert_int_equal(g.version, 0);

    assert_int_equal(sess_cas(S, "a", 0, "one", 3, 60, on_cas, &c), SESS_OK);
    run_until(&c.calls, 1);
    assert_int_equal(c.status, SESS_OK);
    assert_int_equal(c.version, 1);

    memset(&c, 0, sizeof(c));
    assert_int_equal(sess_cas(S, "a", 0, "two", 3, 60, on_cas, &c), SESS_OK);
    run_until(&c.calls, 1);
    assert_int_equal(c.status, SESS_ECONFLICT);
    assert_int_equal(c.version, 1);

    memset(&c, 0, sizeof(c));
    assert_int_equal(sess_cas(S, "a", 1, "two", 3, 90, on_cas, &c), SESS_OK);
    run_until(&c.calls, 1);
    assert_int_equal(c.status, SESS_OK);
    assert_int_equal(c.version, 2);

    memset(&g, 0, sizeof(g));
    sess_get(S, "a", on_get, &g);
    run_until(&g.calls, 1);
    assert_int_equal(g.status, SESS_OK);
    assert_int_equal(g.version, 2);
    assert_int_equal(g.len, 3);
    assert_memory_equal(g.value, "two", 3);
    long long ttl = redis_int("TTL %s", "a");
    assert_true(ttl > 80 && ttl <= 90);
    assert_int_equal(redis_int("EXISTS %s", "a"), 1); /* the prefix is used */
}

/* calls= of a command in INFO commandstats, or -1. */
static long long
redis_calls(const char *cmd)
{
    redisReply *r = redisCommand(R, "INFO commandstats");
    long long n = -1;
    char want[64];
    snprintf(want, sizeof(want), "cmdstat_%s:calls=", cmd);
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, want);
        if (p) n = atoll(p + strlen(want));
    }
    freeReplyObject(r);
    return n;
}

/* The compare-and-set goes by EVALSHA once the connection has loaded the
 * script; after SCRIPT FLUSH one compare-and-set fails (it did not run),
 * the next sends the script whole and works, and EVALSHA comes back. */
static void
t_script_cache(void **state)
{
    (void)state;
    struct res c = {0};
    long long sha0 = redis_calls("evalsha");
    assert_int_equal(sess_cas(S, "s", 0, "one", 3, 60, on_cas, &c), SESS_OK);
    run_until(&c.calls, 1);
    assert_int_equal(c.status, SESS_OK);
    assert_true(redis_calls("evalsha") == (sha0 < 0 ? 1 : sha0 + 1));

    freeReplyObject(redisCommand(R, "SCRIPT FLUSH"));
    memset(&c, 0, sizeof(c));
    assert_int_equal(sess_cas(S, "s", 1, "two", 3, 60, on_cas, &c), SESS_OK);
    run_until(&c.calls, 1);
    assert_int_equal(c.status, SESS_EPROTO);
    struct res g = {0};
    sess_get(S, "s", on_get, &g);
    run_until(&g.calls, 1);
    assert_int_equal(g.version, 1); /* it did not run */

    memset(&c, 0, sizeof(c));
    assert_int_equal(sess_cas(S, "s", 1, "two", 3, 60, on_cas, &c), SESS_OK);
    run_until(&c.calls, 1);
    assert_int_equal(c.status, SESS_OK);
    assert_int_equal(c.version, 2);

    long long sha1 = redis_calls("evalsha");
    memset(&c, 0, sizeof(c));
    assert_int_equal(sess_cas(S, "s", 2, "three", 5, 60, on_cas, &c), SESS_OK);
    run_until(&c.calls, 1);
    assert_int_equal(c.status, SESS_OK);
    assert_int_equal(c.version, 3);
    assert_true(redis_calls("evalsha") == sha1 + 1);
}

static void
t_binary_and_lists(void **state)
{
    (void)state;
    static const char bin[] = {'x', '\0', '\n', 'y', '\xff'};
    struct res c = {0}, g = {0}, d = {0};
    sess_cas(S, "bin", 0, bin, sizeof(bin), 60, on_cas, &c);
    run_until(&c.calls, 1);
    sess_get(S, "bin", on_get, &g);
    run_until(&g.calls, 1);
    assert_int_equal(g.len, sizeof(bin));
    assert_memory_equal(g.value, bin, sizeof(bin));

    struct res p1 = {0}, p2 = {0}, pk = {0}, sh = {0};
    sess_push(S, "q", "first", 5, on_done, &p1);
    sess_push(S, "q", "second", 6, on_done, &p2);
    run_until(&p2.calls, 1);
    assert_int_equal(p1.status, SESS_OK);
    sess_peek(S, "q", on_get, &pk);
    run_until(&pk.calls, 1);
    assert_int_equal(pk.status, SESS_OK);
    assert_memory_equal(pk.value, "first", 5);
    /* shift only takes the head if it is still what was stored */
    sess_shift(S, "q", "second", 6, on_done, &sh);
    run_until(&sh.calls, 1);
    assert_int_equal(redis_int("LLEN %s", "q"), 2);
    memset(&sh, 0, sizeof(sh));
    sess_shift(S, "q", "first", 5, on_done, &sh);
    run_until(&sh.calls, 1);
    assert_int_equal(redis_int("LLEN %s", "q"), 1);

    sess_del(S, "q", on_done, &d);
    run_until(&d.calls, 1);
    assert_int_equal(redis_int("EXISTS %s", "q"), 0);
    memset(&pk, 0, sizeof(pk));
    sess_peek(S, "q", on_get, &pk);
    run_until(&pk.calls, 1);
    assert_int_equal(pk.status, SESS_ENOTFOUND);
}

static void
t_errors_without_callback(void **state)
{
    (void)state;
    struct res r = {0};
    char big[SESS_VALUE_MAX + 1];
    char longkey[SESS_KEY_MAX + 2];
    memset(big, 'v', sizeof(big));
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_int_equal(sess_get(S, longkey, on_get, &r), SESS_EINVAL);
    assert_int_equal(sess_get(S, "", on_get, &r), SESS_EINVAL);
    assert_int_equal(sess_cas(S, "a", 0, big, sizeof(big), 60, on_cas, &r),
                     SESS_EINVAL);
    assert_int_equal(sess_cas(S, "a", 0, "x", 1, 0, on_cas, &r), SESS_EINVAL);

    /* max_pending is 8 */
    struct res many[9];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 8; i++)
        assert_int_equal(sess_ping(S, on_done, &many[i]), SESS_OK);
    assert_int_equal(sess_pending(S), 8);
    assert_int_equal(sess_ping(S, on_done, &many[8]), SESS_EBUSY);
    run_until(&many[7].calls, 1);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(many[i].calls, 1);
        assert_int_equal(many[i].status, SESS_OK);
    }
    assert_int_equal(many[8].calls, 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(sess_pending(S), 0);
}

static void
t_race(void **state)
{
    (void)state;
    struct res c = {0};
    sess_cas(S, "race", 0, "v1", 2, 60, on_cas, &c);
    run_until(&c.calls, 1);
    struct res w[6];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 6; i++)
        assert_int_equal(sess_cas(S, "race", 1, "w", 1, 60, on_cas, &w[i]),
                         SESS_OK);
    run_until(&w[5].calls, 1);
    int won = 0;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].version, 2);
        won += w[i].status == SESS_OK;
        if (w[i].status != SESS_OK)
            assert_int_equal(w[i].status, SESS_ECONFLICT);
    }
    assert_int_equal(won, 1);
}

/* sess_bits_or(): bits OR-ed into the number in "d", the label replaced
 * or kept, the version bumped and the TTL set on every call; several at
 * once lose no bit; a "d" that is not a number counts as 0; bad arguments
 * fail without a callback. */
static void
expect_d(const char *key, const char *want)
{
    struct res g = {0};
    sess_get(S, key, on_get, &g);
    run_until(&g.calls, 1);
    assert_int_equal(g.status, SESS_OK);
    assert_int_equal(g.len, strlen(want));
    assert_memory_equal(g.value, want, g.len);
}

static void
t_bits_or(void **state)
{
    (void)state;
    struct res c = {0}, g = {0};
    assert_int_equal(sess_bits_or(S, "bits", 1, NULL, 60, on_cas, &c), SESS_OK);
    assert_int_equal(c.calls, 0);
    run_until(&c.calls, 1);
    assert_int_equal(c.status, SESS_OK);
    assert_int_equal(c.version, 1);
    assert_true(redis_int("TTL %s", "bits") > 50);
    expect_d("bits", "1");
    struct res w[5];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 5; i++)
        assert_int_equal(sess_bits_or(S, "bits", 2u << i, i == 2 ? "bn" : "",
                                      900, on_cas, &w[i]),
                         SESS_OK);
    run_until(&w[4].calls, 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].status, SESS_OK);
    }
    sess_get(S, "bits", on_get, &g);
    run_until(&g.calls, 1);
    assert_int_equal(g.version, 6);
    expect_d("bits", "63 bn"); /* the label of the third, kept after */
    assert_true(redis_int("TTL %s", "bits") > 800);
    /* the same bits again: the number stays; a new label replaces */
    memset(&c, 0, sizeof(c));
    sess_bits_or(S, "bits", 5, "en", 900, on_cas, &c);
    run_until(&c.calls, 1);
    expect_d("bits", "63 en");
    /* a value that is not a number is replaced */
    memset(&c, 0, sizeof(c));
    sess_cas(S, "notnum", 0, "abc", 3, 60, on_cas, &c);
    run_until(&c.calls, 1);
    memset(&c, 0, sizeof(c));
    sess_bits_or(S, "notnum", 4, NULL, 60, on_cas, &c);
    run_until(&c.calls, 1);
    assert_int_equal(c.status, SESS_OK);
    assert_int_equal(c.version, 2);
    expect_d("notnum", "4");
    char longlabel[SESS_LABEL_MAX + 2];
    memset(longlabel, 'x', sizeof(longlabel) - 1);
    longlabel[sizeof(longlabel) - 1] = '\0';
    memset(&c, 0, sizeof(c));
    assert_int_equal(sess_bits_or(S, "bits", 1, NULL, 0, on_cas, &c),
                     SESS_EINVAL);
    assert_int_equal(sess_bits_or(S, "bits", 0x80000000u, NULL, 60, on_cas, &c),
                     SESS_EINVAL);
    assert_int_equal(sess_bits_or(S, "", 1, NULL, 60, on_cas, &c), SESS_EINVAL);
    assert_int_equal(sess_bits_or(S, "bits", 1, longlabel, 60, on_cas, &c),
                     SESS_EINVAL);
    assert_int_equal(c.calls, 0);
}

static void
t_stop_answers_once(void **state)
{
    (void)state;
    struct res r[4];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 4; i++)
        assert_int_equal(sess_get(S, "a", on_get, &r[i]), SESS_OK);
    sess_stop(S);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, SESS_EDOWN);
    }
    assert_false(sess_connected(S));
    struct res x = {0};
    assert_int_equal(sess_get(S, "a", on_get, &x), SESS_EDOWN);
    /* nothing more arrives later */
    long end = itest_now_ms() + 200;
    while (itest_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r[i].calls, 1);
    assert_int_equal(x.calls, 0);
    /* and it starts again */
    assert_int_equal(sess_start(S), 0);
    end = itest_now_ms() + 3000;
    while (!sess_connected(S) && itest_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_true(sess_connected(S));
    sess_get(S, "a", on_get, &x);
    run_until(&x.calls, 1);
    assert_int_equal(x.status, SESS_OK);
}

/* sess_push_until(): appended when Redis runs it in time; a push that
 * waits in the socket while Redis is stopped (SIGSTOP, REDIS_PID) past its
 * deadline answers SESS_ELATE when Redis resumes and appends nothing. */
static void
t_push_until(void **state)
{
    (void)state;
    struct res r = {0};
    assert_int_equal(sess_push_until(S, "q", "one", 3, 500, on_done, &r),
                     SESS_OK);
    run_until(&r.calls, 1);
    assert_int_equal(r.status, SESS_OK);
    assert_int_equal(redis_int("LLEN %s", "q"), 1);
    assert_int_equal(sess_push_until(S, "q", "x", 1, -1, on_done, &r),
                     SESS_EINVAL);

    const char *p = getenv("REDIS_PID");
    if (p == NULL) skip();
    pid_t pid = (pid_t)atol(p);
    memset(&r, 0, sizeof(r));
    assert_int_equal(kill(pid, SIGSTOP), 0);
    assert_int_equal(sess_push_until(S, "q", "two", 3, 100, on_done, &r),
                     SESS_OK);
    long end = itest_now_ms() + 400; /* the push goes out, Redis sleeps on it */
    while (itest_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(kill(pid, SIGCONT), 0);
    run_until(&r.calls, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, SESS_ELATE);
    assert_int_equal(redis_int("LLEN %s", "q"), 1); /* "two" is not there */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_get_cas),
        cmocka_unit_test(t_script_cache),
        cmocka_unit_test(t_binary_and_lists),
        cmocka_unit_test(t_errors_without_callback),
        cmocka_unit_test(t_race),
        cmocka_unit_test(t_push_until),
        cmocka_unit_test(t_bits_or),
        cmocka_unit_test(t_stop_answers_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
