/*
 * test_gw_store.c -- gw_store.c's record path in a real worker against
 * the PostgreSQL and Redis tests/run started (PG_DSN, REDIS_PORT), with
 * PostgreSQL or Redis slow, refusing or down: what a finished flow's
 * action gets back, and what it leaves in the database and the queue.
 * The worker and its plan are tests/lib/itest_store.h's.
 *
 *   - submit: a pending row, the record's ref; the same record again: the
 *     same ref, no second row; status_lookup pending, verified, rejected
 *     with the reason, and not registered; update_skills for a registered
 *     and an unregistered number; unknown actions and bad records refused;
 *   - PostgreSQL slow (a lock): a write is QUEUED with its ref after about
 *     half the request deadline, a lookup FAILED; once the lock goes the
 *     drainer stores the queued copy and there is still one row;
 *   - Redis refusing the copy of a write whose query still runs: DONE if
 *     it commits before its deadline, else FAILED and never a row; a push
 *     that Redis runs only after the caller heard FAILED changes nothing;
 *   - PostgreSQL down: writes QUEUED at once, sealed in Redis (no ID number
 *     in clear; it opens to the record); the probe says down;
 *   - PostgreSQL and Redis down: FAILED.
 *
 * The command line and a worker without a database: test_gw_cli.c.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/gw_int.h"
#include "tests/lib/itest.h"
#include "tests/lib/itest_pg.h"
#include "tests/lib/itest_store.h"

#define REQ_MS ITEST_STORE_REQ_MS
/* the tests that race a lock against deadlines: a longer request deadline,
 * so that a slow machine (or SAN=1) still fits in the margins, and the
 * deadline of a write's query: what is left of it after a tenth and a
 * Redis push (postgres.timeout_ms is longer still) */
#define SLOW_REQ_MS   3000
#define SLOW_STORE_MS (SLOW_REQ_MS - SLOW_REQ_MS / 10 - ITEST_STORE_REDIS_MS)

/* A loopback port with nothing listening on it (bound, then closed). */
static int
port_closed(void)
{
    int port = 0, fd = itest_listen(&port, 1);
    if (fd >= 0) close(fd);
    return port;
}

/* The worker's PostgreSQL: a port nothing listens on. */
static void
pg_down(void)
{
    snprintf(itest_store.cfg.pg_dsn, sizeof(itest_store.cfg.pg_dsn),
             "host=127.0.0.1 port=%d dbname=x user=x connect_timeout=1",
             port_closed());
}

/* A Redis that answers the connection's handshake (PING, TIME: sent
 * together) and then nothing more: a child process on a free loopback
 * port.  Its pid; kill it. */
static pid_t
redis_mute(int *port)
{
    int fd = itest_listen(port, 1);
    if (fd < 0) return -1;
    pid_t pid = fork();
    if (pid != 0) {
        close(fd);
        return pid;
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    int c = accept(fd, NULL, NULL);
    char buf[4096];
    ssize_t n = c >= 0 ? read(c, buf, sizeof(buf)) : -1;
    char t[64];
    int tn =
        snprintf(t, sizeof(t), "+PONG\r\n*2\r\n$10\r\n%010ld\r\n$1\r\n0\r\n",
                 (long)time(NULL));
    if (n > 0 && write(c, t, (size_t)tn) != tn) _exit(1);
    while (n > 0)
        n = read(c, buf, sizeof(buf)); /* never answered */
    _exit(0);
}

/* Step i: msisdn's registration (key, ref) while the submissions table is
 * locked, for unlock_ms (0: until the answer). */
static struct itest_store_step *
step_reg_locked(int i, const char *key, const char *ref, const char *msisdn,
                long unlock_ms)
{
    struct itest_store_step *st = &itest_store.plan.steps[i];
    itest_store_step(st, "submit_registration",
                     itest_store_rec_reg(i, key, ref, msisdn), NULL,
                     "LOCK TABLE submissions IN EXCLUSIVE MODE NOWAIT");
    st->unlock_ms = unlock_ms;
    return st;
}

/* The first value of sql on the test's database (static buffer). */
static const char *
sql1(const char *sql)
{
    return itest_sql1(&itest_store.pg, sql, 0);
}

/* Fail the test unless msisdn has want rows (a count, as text) in both
 * submissions and returnees. */
static void
check_rows(const char *msisdn, const char *want)
{
    assert_string_equal(itest_sql1(&itest_store.pg,
                                   "SELECT count(*) FROM submissions"
                                   " WHERE msisdn = $1",
                                   1, msisdn),
                        want);
    assert_string_equal(itest_sql1(&itest_store.pg,
                                   "SELECT count(*) FROM returnees"
                                   " WHERE msisdn = $1",
                                   1, msisdn),
                        want);
}

/* Everything with PostgreSQL up. */
static void
t_records(void **state)
{
    (void)state;
    const char *m1 = "8801712000001", *m2 = "8801712000002";
    const char *ka = "aa000000000000000000000000000001";
    struct itest_store_step *s = itest_store.plan.steps;

    itest_store.plan.wait_pg = 1;
    itest_store_step(&s[0], "submit_registration",
                     itest_store_rec_reg(0, ka, "RA00000001", m1), NULL, NULL);
    itest_store_step(&s[1], "submit_registration",
                     itest_store_rec_reg(1, ka, "RA00000001", m1), NULL, NULL);
    itest_store_step(&s[2], "status_lookup", itest_store_rec_lookup(2, m1),
                     NULL, NULL);
    itest_store_step(&s[3], "status_lookup", itest_store_rec_lookup(3, m1),
                     "UPDATE returnees SET status = 'verified'"
                     " WHERE msisdn = '8801712000001'",
                     NULL);
    itest_store_step(&s[4], "status_lookup", itest_store_rec_lookup(4, m1),
                     "UPDATE returnees SET status = 'rejected',"
                     " reject_reason = 'NID mismatch'"
                     " WHERE msisdn = '8801712000001'",
                     NULL);
    itest_store_step(&s[5], "status_lookup", itest_store_rec_lookup(5, m2),
                     NULL, NULL);
    itest_store_step(&s[6], "update_skills",
                     itest_store_rec_skills(6,
                                            "bb000000000000000000000000000001",
                                            "RK00000001", m1),
                     NULL, NULL);
    itest_store_step(&s[7], "update_skills",
                     itest_store_rec_skills(7,
                                            "bb000000000000000000000000000002",
                                            "RK00000002", m2),
                     NULL, NULL);
    itest_store_step(&s[8], "delete_everything", itest_store_rec_lookup(8, m1),
                     NULL, NULL);
    itest_store_step(&s[9], "submit_registration", "{\"msisdn\":", NULL, NULL);
    itest_store_step(&s[10], "status_lookup", "{\"ref\":\"RA00000001\"}", NULL,
                     NULL);
    /* a record the store refuses (no key) is not queued either */
    itest_store_step(&s[11], "submit_registration",
                     "{\"action\":\"submit_registration\","
                     "\"msisdn\":\"8801712000003\",\"ref\":\"RA3\"}",
                     NULL, NULL);
    itest_store_check_ran(itest_store_run());

    assert_int_equal(itest_store.shm->probe, 0);
    itest_store_check_got(0, GW_ACT_DONE, "RA00000001");
    itest_store_check_got(1, GW_ACT_DONE, "RA00000001");
    itest_store_check_got(2, GW_ACT_DONE, "RA00000001");
    assert_string_equal(itest_store.shm->got[2].res.outcome, "pending");
    itest_store_check_got(3, GW_ACT_DONE, "RA00000001");
    assert_string_equal(itest_store.shm->got[3].res.outcome, "verified");
    itest_store_check_got(4, GW_ACT_DONE, "RA00000001");
    assert_string_equal(itest_store.shm->got[4].res.outcome, "rejected");
    assert_string_equal(itest_store.shm->got[4].res.reason, "NID mismatch");
    itest_store_check_got(5, GW_ACT_NOT_REGISTERED, "");
    itest_store_check_got(6, GW_ACT_DONE, "RA00000001");
    itest_store_check_got(7, GW_ACT_NOT_REGISTERED, "");
    for (int i = 8; i <= 11; i++)
        if (itest_store.shm->got[i].rc != -1 ||
            itest_store.shm->got[i].calls != 0)
            fail_msg("step %d: rc %d calls %d, want -1 and no callback", i,
                     itest_store.shm->got[i].rc, itest_store.shm->got[i].calls);

    assert_string_equal(sql1("SELECT count(*) || ' ' || min(ref) || ' ' ||"
                             " array_to_string(min(skills), ' ') FROM returnees"
                             " WHERE msisdn = '8801712000001'"),
                        "1 RA00000001 mason hotel");
    assert_string_equal(sql1("SELECT count(*) FROM submissions WHERE"
                             " idempotency_key = "
                             "'aa000000000000000000000000000001'"),
                        "1");
    assert_string_equal(sql1("SELECT count(*) FROM returnees WHERE"
                             " msisdn IN ('8801712000002', '8801712000003')"),
                        "0");
    assert_string_equal(sql1("SELECT count(*) FROM submissions WHERE"
                             " msisdn IN ('8801712000002', '8801712000003')"),
                        "0");
    assert_int_equal(itest_store_queue(NULL, 0), 0);
}

/* PostgreSQL slow: a table lock held while the action runs. */
static void
t_pg_slow(void **state)
{
    (void)state;
    const char *m = "8801712000010";
    struct itest_store_step *s = itest_store.plan.steps;

    itest_store.plan.wait_pg = 1;
    itest_store.plan.wait_drained = 1;
    step_reg_locked(0, "cc000000000000000000000000000001", "RB00000001", m, 0);
    itest_store_step(&s[1], "status_lookup", itest_store_rec_lookup(1, m), NULL,
                     "LOCK TABLE returnees IN ACCESS EXCLUSIVE MODE NOWAIT");
    itest_store_check_ran(itest_store_run());

    itest_store_check_got(0, GW_ACT_QUEUED, "RB00000001");
    itest_store_check_got(1, GW_ACT_FAILED, "");
    itest_store_check_ms(0, 2, REQ_MS / 2 - 150, REQ_MS); /* about half */
    /* the query that waited on the lock and the drained copy: one row */
    assert_int_equal(itest_store.shm->drained, 1);
    assert_int_equal(itest_store_queue(NULL, 0), 0);
    assert_string_equal(sql1("SELECT count(*) || ' ' || min(status) || ' ' ||"
                             " min(ref) FROM returnees"
                             " WHERE msisdn = '8801712000010'"),
                        "1 pending RB00000001");
    assert_string_equal(sql1("SELECT count(*) FROM submissions WHERE"
                             " msisdn = '8801712000010'"),
                        "1");
}

/* PostgreSQL answers while a write that passed its deadline is still on
 * its way into a Redis that does not answer: the caller hears the store's
 * answer once, and the late push finds its action alive. */
static void
t_answer_race(void **state)
{
    (void)state;
    const char *m = "8801712000011";
    int port;
    pid_t hole = redis_mute(&port); /* answers the handshake, then nothing */

    assert_true(hole > 0);
    itest_store.cfg.redis_port = port;
    itest_store.cfg.request_timeout_ms = SLOW_REQ_MS;
    itest_store.plan.wait_pg = 1;
    /* unlocked once the push is out, well before the query's own deadline */
    step_reg_locked(0, "cc000000000000000000000000000002", "RB00000002", m,
                    SLOW_REQ_MS / 2 + 150);
    int rc = itest_store_run();
    kill(hole, SIGKILL);
    waitpid(hole, NULL, 0);
    itest_store_check_ran(rc);

    itest_store_check_got(0, GW_ACT_DONE, "RB00000002");
    /* about when the lock goes */
    itest_store_check_ms(0, 1, SLOW_REQ_MS / 2 + 100, SLOW_STORE_MS);
    assert_string_equal(sql1("SELECT count(*) FROM returnees"
                             " WHERE msisdn = '8801712000011'"),
                        "1");
}

/* Wait until no backend but ours is left on the test's database (the
 * worker's are gone and a query it left waiting on a lock has ended): 0,
 * or -1 after 10 s. */
static int
db_settled(void)
{
    for (long t0 = itest_now_ms(); itest_now_ms() - t0 < 10000;
         usleep(20 * 1000))
        if (strcmp(itest_sql1(&itest_store.pg,
                              "SELECT count(*) FROM pg_stat_activity WHERE"
                              " datname = $1 AND pid <> pg_backend_pid()",
                              1, itest_store.pg.dbname),
                   "0") == 0)
            return 0;
    return -1;
}

/* The caller hears the truth: Redis is stopped (SIGSTOP) while a write is
 * slow on a lock, so the copy pushed to the queue at half the deadline
 * waits in the socket, the push times out, the query's deadline passes:
 * the caller hears FAILED.  Redis is resumed after that and runs the push
 * it had read: it must change nothing -- no queued entry, so no row ever
 * (a plain RPUSH would land and the drainer would store a record whose
 * caller was told it was not saved). */
static void
t_push_late(void **state)
{
    (void)state;
    const char *m = "8801712000014";
    struct itest_store_step *st;

    if (itest_store.redis_pid <= 0) skip();
    itest_store.cfg.request_timeout_ms = SLOW_REQ_MS;
    itest_store.plan.wait_pg = 1;
    itest_store.plan.wait_drained = 1;
    st = step_reg_locked(0, "cc000000000000000000000000000005", "RB00000005", m,
                         SLOW_REQ_MS - 50);
    st->pause_redis_ms = SLOW_REQ_MS + 200; /* after the answer */
    int rc = itest_store_run();
    kill(itest_store.redis_pid, SIGCONT); /* whatever became of the worker */
    itest_store_check_ran(rc);

    itest_store_check_got(0, GW_ACT_FAILED, "");
    itest_store_check_ms(0, 1, 0, SLOW_REQ_MS);
    usleep(300 * 1000); /* a late push, if any, has run by now */
    assert_int_equal(itest_store_queue(NULL, 0), 0);
    assert_int_equal(db_settled(), 0);
    check_rows(m, "0");
}

/* Redis refuses the copy of a write whose query is still running (slow on
 * a lock): the query's outcome is what the caller hears.  Released before
 * the query's deadline, it commits and the caller hears DONE; held past
 * it, the caller hears FAILED and the row never appears, even once the
 * lock is gone. */
static void
t_push_fails(void **state)
{
    (void)state;
    const char *m1 = "8801712000012", *m2 = "8801712000013";

    itest_store.cfg.redis_port = port_closed();
    itest_store.cfg.request_timeout_ms = SLOW_REQ_MS;
    itest_store.plan.wait_redis = 0;
    itest_store.plan.wait_pg = 1;
    step_reg_locked(0, "cc000000000000000000000000000003", "RB00000003", m1,
                    SLOW_REQ_MS / 2 + 150);
    step_reg_locked(1, "cc000000000000000000000000000004", "RB00000004", m2,
                    SLOW_REQ_MS - 50);
    itest_store_check_ran(itest_store_run());

    itest_store_check_got(0, GW_ACT_DONE, "RB00000003");
    itest_store_check_got(1, GW_ACT_FAILED, "");
    itest_store_check_ms(0, 2, SLOW_REQ_MS / 2, SLOW_REQ_MS);
    /* FAILED at the query's deadline */
    itest_store_check_ms(1, 2, SLOW_STORE_MS - 20, SLOW_STORE_MS + 301);
    assert_non_null(strstr(itest_store_log(), "waiting for postgres"));
    assert_int_equal(db_settled(), 0);
    check_rows(m1, "1");
    check_rows(m2, "0");
}

/* PostgreSQL down (nothing listens on its port). */
static void
t_pg_down(void **state)
{
    (void)state;
    const char *m = "8801712000020";
    const char *reg = itest_store_rec_reg(0, "dd000000000000000000000000000001",
                                          "RC00000001", m);
    struct itest_store_step *s = itest_store.plan.steps;
    char first[4096];

    pg_down();
    itest_store_step(&s[0], "submit_registration", reg, NULL, NULL);
    itest_store_step(&s[1], "update_skills",
                     itest_store_rec_skills(1,
                                            "dd000000000000000000000000000002",
                                            "RK00000020", m),
                     NULL, NULL);
    itest_store_step(&s[2], "status_lookup", itest_store_rec_lookup(2, m), NULL,
                     NULL);
    itest_store_check_ran(itest_store_run());

    assert_int_equal(itest_store.shm->probe, -1);
    itest_store_check_got(0, GW_ACT_QUEUED, "RC00000001");
    itest_store_check_got(1, GW_ACT_QUEUED, "RK00000020");
    itest_store_check_got(2, GW_ACT_FAILED, "");
    itest_store_check_ms(0, 3, 0, REQ_MS / 2);
    assert_non_null(strstr(itest_store_log(), "schema not checked"));

    /* sealed: no name or ID number in clear; it opens to the record */
    assert_int_equal(itest_store_queue(first, sizeof(first)), 2);
    itest_store_check_sealed(first, reg);
}

/* PostgreSQL and Redis down. */
static void
t_both_down(void **state)
{
    (void)state;
    const char *m = "8801712000030";
    struct itest_store_step *s = itest_store.plan.steps;

    pg_down();
    itest_store.cfg.redis_port = port_closed();
    itest_store.plan.wait_redis = 0;
    itest_store_step(&s[0], "submit_registration",
                     itest_store_rec_reg(0, "ee000000000000000000000000000001",
                                         "RD00000001", m),
                     NULL, NULL);
    itest_store_step(&s[1], "status_lookup", itest_store_rec_lookup(1, m), NULL,
                     NULL);
    itest_store_check_ran(itest_store_run());

    itest_store_check_got(0, GW_ACT_FAILED, "");
    itest_store_check_got(1, GW_ACT_FAILED, "");
    itest_store_check_ms(0, 2, 0, REQ_MS);
    assert_non_null(strstr(itest_store_log(), "neither stored nor queued"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_records, itest_store_setup,
                                        itest_store_teardown),
        cmocka_unit_test_setup_teardown(t_pg_slow, itest_store_setup,
                                        itest_store_teardown),
        cmocka_unit_test_setup_teardown(t_answer_race, itest_store_setup,
                                        itest_store_teardown),
        cmocka_unit_test_setup_teardown(t_push_fails, itest_store_setup,
                                        itest_store_teardown),
        cmocka_unit_test_setup_teardown(t_push_late, itest_store_setup,
                                        itest_store_teardown),
        cmocka_unit_test_setup_teardown(t_pg_down, itest_store_setup,
                                        itest_store_teardown),
        cmocka_unit_test_setup_teardown(t_both_down, itest_store_setup,
                                        itest_store_teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name(
        "gw_store", tests, itest_store_group_setup, itest_store_group_teardown);
}
