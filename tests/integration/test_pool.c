/*
 * test_pool.c -- store_pool (the generic transaction pool) and migration
 * 004's console role against a real PostgreSQL (PG_DSN; tests/run starts
 * one), in a database of the test's own (tests/lib/itest_pg.h).  What is
 * checked: several statements commit together or not at all, their
 * results reach the callback, the console context (role, officer,
 * districts) holds for one transaction only, the console role is no
 * superuser, owns nothing and is held by row-level security, and
 * prepared statements keep to all that.  The pool when PostgreSQL fails
 * or is slow: test_pool_down.c.
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
    if (itest_env_new(&T, "test_pool", "remigate_pool") != 0) return -1;
    /* A scratch table with a district policy, as migration 005 will put
     * on the record tables. */
    PQclear(itest_sql(
        &T,
        "CREATE TABLE pool_t (k text PRIMARY KEY, district text NOT NULL);"
        "ALTER TABLE pool_t ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY pool_t_scope ON pool_t USING"
        " (remigate_officer_role() = 'admin' OR"
        "  district = ANY (remigate_officer_districts()));"
        "GRANT SELECT, INSERT, UPDATE ON pool_t TO remigate_console;"
        "INSERT INTO pool_t VALUES ('a1', 'BD-13'), ('a2', 'BD-13'),"
        " ('b1', 'BD-26')",
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

/* Three statements, one round trip, one commit; every result delivered. */
static void
test_statements_commit_together(void **state)
{
    struct store_pool *p = itest_pool_up(&T, 2, 2000, 0, NULL);
    struct store_tx tx = {
        .n = 3,
        .stmt = {{.sql = "INSERT INTO pool_t VALUES ($1, $2) RETURNING k",
                  .nparams = 2,
                  .params = {"c1", "BD-13"}},
                 {.sql = "UPDATE pool_t SET district = $2 WHERE k = $1",
                  .nparams = 2,
                  .params = {"c1", "BD-26"}},
                 {.sql = "SELECT k, district FROM pool_t WHERE k IN"
                         " ('c1', 'zz') ORDER BY k"}}};
    struct itest_tx o;

    (void)state;
    o = itest_tx_wait(&T, p, &tx);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.failed, -1);
    assert_string_equal(o.errstr, "");
    assert_int_equal(o.ntuples[0], 1);
    assert_string_equal(o.v[0][0], "c1");
    assert_int_equal(o.affected[1], 1);
    assert_int_equal(o.ntuples[2], 1); /* sees its own update */
    assert_string_equal(
        itest_sql1(&T, "SELECT district FROM pool_t WHERE k = 'c1'", 0),
        "BD-26");
    store_pool_free(p);
}

/* A failing statement: nothing of the transaction stays, the statement and
 * its SQLSTATE are named, and the connection serves the next one. */
static void
test_failure_rolls_back(void **state)
{
    struct store_pool *p = itest_pool_up(&T, 1, 2000, 0, NULL);
    struct store_tx tx = {
        .n = 3,
        .stmt = {{.sql = "INSERT INTO pool_t VALUES ('d1', 'BD-13')"},
                 {.sql = "INSERT INTO pool_t VALUES ('a1', 'BD-13')"},
                 {.sql = "INSERT INTO pool_t VALUES ('d2', 'BD-13')"}}};
    struct store_tx raise = {
        .n = 2,
        .stmt = {{.sql = "INSERT INTO pool_t VALUES ('d3', 'BD-13')"},
                 {.sql = "DO $$ BEGIN RAISE EXCEPTION 'stale' USING ERRCODE"
                         " = 'RG409'; END $$"}}};
    struct store_tx ok = {.n = 1, .stmt = {{.sql = "SELECT 1"}}};
    struct itest_tx o;

    (void)state;
    o = itest_tx_wait(&T, p, &tx);
    assert_int_equal(o.status, STORE_EREFUSED);
    assert_int_equal(o.failed, 1);
    assert_string_equal(o.sqlstate, "23505");
    assert_non_null(strstr(o.errstr, "23505"));
    assert_null(strstr(o.errstr, "a1")); /* no values in the log text */
    assert_string_equal(
        itest_sql1(&T, "SELECT count(*) FROM pool_t WHERE k IN ('d1', 'd2')",
                   0),
        "0");
    /* A code raised on purpose reaches the caller as it was raised. */
    o = itest_tx_wait(&T, p, &raise);
    assert_int_equal(o.status, STORE_EDB);
    assert_int_equal(o.failed, 1);
    assert_string_equal(o.sqlstate, "RG409");
    assert_string_equal(
        itest_sql1(&T, "SELECT count(*) FROM pool_t WHERE k = 'd3'", 0), "0");
    o = itest_tx_wait(&T, p, &ok);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "1");
    store_pool_free(p);
}

/* The console's context holds for one transaction only, on one
 * connection. */
static void
test_context_is_per_transaction(void **state)
{
    struct store_pool *p = itest_pool_up(&T, 1, 2000, 0, "remigate_console");
    struct store_tx who = {
        .officer = "42",
        .role = "officer",
        .districts = "BD-13,BD-26",
        .n = 1,
        .stmt = {{.sql = "SELECT current_user || ' ' ||"
                         " remigate_officer_id() || ' ' ||"
                         " remigate_officer_role() || ' ' ||"
                         " array_to_string(remigate_officer_districts(),"
                         " '|')"}}};
    struct store_tx nobody = {
        .n = 1,
        .stmt = {{.sql = "SELECT remigate_officer_id()"}, {.sql = NULL}}};
    struct itest_tx o;

    (void)state;
    o = itest_tx_wait(&T, p, &who);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console 42 officer BD-13|BD-26");
    o = itest_tx_wait(&T, p, &nobody);
    assert_int_equal(o.status, 0);
    assert_true(o.isnull[0][0]);
    store_pool_free(p);
}

/* An admin's transaction acts as the pool's admin_role (migration 013),
 * every other one as its role; the context is set either way. */
static void
test_admin_role(void **state)
{
    struct store_pool_config cfg = {.dsn = T.dsn,
                                    .role = "remigate_console",
                                    .admin_role = "remigate_console_admin",
                                    .pool = 1,
                                    .timeout_ms = 2000};
    static const char who_sql[] =
        "SELECT current_user || ' ' || remigate_officer_role()";
    struct store_tx admin = {
        .officer = "1", .role = "admin", .n = 1, .stmt = {{.sql = who_sql}}};
    struct store_tx officer = {.officer = "2",
                               .role = "officer",
                               .districts = "BD-13",
                               .n = 1,
                               .stmt = {{.sql = who_sql}}};
    struct store_tx analyst = {
        .officer = "3", .role = "analyst", .n = 1, .stmt = {{.sql = who_sql}}};
    char err[256];
    struct store_pool *p = store_pool_new(&cfg, T.base, err, sizeof(err));
    struct itest_pool_want w = {p, 1};
    struct itest_tx o;

    (void)state;
    assert_non_null(p);
    assert_int_equal(store_pool_start(p), 0);
    assert_true(run_until(itest_pool_connected, &w, 5000));
    o = itest_tx_wait(&T, p, &admin);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console_admin admin");
    o = itest_tx_wait(&T, p, &officer);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console officer");
    o = itest_tx_wait(&T, p, &analyst);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console analyst");
    o = itest_tx_wait(&T, p, &admin);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console_admin admin");
    store_pool_free(p);
    cfg.admin_role = "";
    p = store_pool_new(&cfg, T.base, err, sizeof(err));
    assert_non_null(p);
    w.p = p;
    assert_int_equal(store_pool_start(p), 0);
    assert_true(run_until(itest_pool_connected, &w, 5000));
    o = itest_tx_wait(&T, p, &admin);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console admin");
    store_pool_free(p);
}

/* The console role is no superuser, cannot bypass row-level security,
 * owns nothing, cannot change what it does not own, cannot rewrite the
 * audit log -- and a district policy holds it even with a crafted query. */
static void
test_console_role_is_held(void **state)
{
    struct store_pool *p = itest_pool_up(&T, 1, 2000, 0, "remigate_console");
    struct store_tx attrs = {
        .n = 2,
        .stmt = {{.sql = "SELECT rolsuper::text || rolbypassrls::text FROM"
                         " pg_roles WHERE rolname = current_user"},
                 {.sql = "SELECT count(*) FROM pg_tables WHERE"
                         " tableowner = current_user"}}};
    struct store_tx scoped = {
        .officer = "7",
        .role = "officer",
        .districts = "BD-13",
        .n = 2,
        .stmt = {{.sql = "SELECT k FROM pool_t ORDER BY k"},
                 /* crafted: asks for the other district by name */
                 {.sql = "SELECT count(*) FROM pool_t WHERE district ="
                         " 'BD-26' OR k = 'b1'"}}};
    struct store_tx none = {.n = 1,
                            .stmt = {{.sql = "SELECT count(*) FROM pool_t"}}};
    struct store_tx admin = {
        .officer = "1",
        .role = "admin",
        .n = 1,
        .stmt = {{.sql = "SELECT count(*) FROM pool_t WHERE k LIKE 'a%'"
                         " OR k LIKE 'b%'"}}};
    struct store_tx sneak = {
        .officer = "7",
        .role = "officer",
        .districts = "BD-13",
        .n = 1,
        .stmt = {{.sql = "UPDATE pool_t SET district = 'BD-13' WHERE"
                         " k = 'b1'"}}};
    static const char *const refused[] = {
        "DELETE FROM audit_log",
        "UPDATE audit_log SET action = 'x'",
        "ALTER TABLE officers ADD COLUMN x int",
        "ALTER TABLE pool_t DISABLE ROW LEVEL SECURITY",
    };
    struct itest_tx o;

    (void)state;
    o = itest_tx_wait(&T, p, &attrs);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "falsefalse");
    assert_string_equal(o.v[1][0], "0");
    o = itest_tx_wait(&T, p, &scoped);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.ntuples[0], 2);
    assert_string_equal(o.v[0][0], "a1");
    assert_string_equal(o.v[0][1], "a2");
    assert_string_equal(o.v[1][0], "0");
    o = itest_tx_wait(&T, p, &none);
    assert_string_equal(o.v[0][0], "0");
    o = itest_tx_wait(&T, p, &admin);
    assert_string_equal(o.v[0][0], "3");
    o = itest_tx_wait(&T, p, &sneak);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.affected[0], 0); /* the row is not there for it */
    assert_string_equal(
        itest_sql1(&T, "SELECT district FROM pool_t WHERE k = 'b1'", 0),
        "BD-26");
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct store_tx bad = {.n = 1, .stmt = {{.sql = refused[i]}}};
        o = itest_tx_wait(&T, p, &bad);
        if (o.status == 0) fail_msg("the console role could: %s", refused[i]);
        assert_int_equal(o.failed, 0);
    }
    store_pool_free(p);
}

/* Production's way (postgres.console_dsn): a login role of its own, a
 * member of remigate_console that starts as it; the pool sets no role.
 * current_user is remigate_console, the policy holds, and it cannot act
 * as the owner. */
static void
test_console_login_role(void **state)
{
    char q[512], user[64], dsn[1200], err[256];
    struct store_pool_config cfg = {
        .pool = 1, .timeout_ms = 2000, .admin_role = "remigate_console_admin"};
    struct store_pool *p;
    struct itest_pool_want w;
    struct store_tx who = {
        .officer = "9",
        .role = "officer",
        .districts = "BD-26",
        .n = 2,
        .stmt = {{.sql = "SELECT current_user"},
                 {.sql = "SELECT k FROM pool_t ORDER BY k"}}};
    struct store_tx admin = {
        .officer = "1",
        .role = "admin",
        .n = 2,
        .stmt = {{.sql = "SELECT current_user"},
                 {.sql = "SELECT k FROM pool_t ORDER BY k"}}};
    struct store_tx escape = {
        .n = 1,
        .stmt = {{.sql = "SELECT set_config('role', 'remigate', true)"}}};
    struct itest_tx o;
    size_t n;

    (void)state;
    snprintf(user, sizeof(user), "remigate_web_%ld", (long)getpid());
    snprintf(q, sizeof(q),
             "CREATE ROLE %s LOGIN IN ROLE remigate_console,"
             " remigate_console_admin;"
             " ALTER ROLE %s SET role = 'remigate_console'",
             user, user);
    itest_admin(&T, q);
    itest_dsn_with_db(T.dsn, T.dbname, dsn, sizeof(dsn));
    n = strlen(dsn);
    snprintf(dsn + n, sizeof(dsn) - n, " user='%s'", user);
    cfg.dsn = dsn;
    p = store_pool_new(&cfg, T.base, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(store_pool_start(p), 0);
    w.p = p;
    w.n = 1;
    assert_true(run_until(itest_pool_connected, &w, 5000));
    o = itest_tx_wait(&T, p, &who);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console");
    /* BD-26's rows only: b1, and c1 moved there by the first test */
    assert_int_equal(o.ntuples[1], 2);
    assert_string_equal(o.v[1][0], "b1");
    assert_string_equal(o.v[1][1], "c1");
    /* an admin's transaction as the admin role (docs/operators.md grants
     * it to the console's login) */
    o = itest_tx_wait(&T, p, &admin);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console_admin");
    /* every row of the scratch table (its policy lets admins see all) */
    assert_int_equal(o.ntuples[1],
                     atoi(itest_sql1(&T, "SELECT count(*) FROM pool_t", 0)));
    o = itest_tx_wait(&T, p, &escape);
    assert_int_not_equal(o.status, 0);
    store_pool_free(p);
    snprintf(q, sizeof(q), "DROP OWNED BY %s; DROP ROLE %s", user, user);
    {
        /* its sessions are gone with the pool; drop it from every database */
        PGconn *a = PQconnectdb(T.dsn);
        PGresult *r = PQexec(a, q);
        PQclear(r);
        PQfinish(a);
    }
}


/* Statements marked in store_tx.prepare: prepared once per connection,
 * then run by name (pg_prepared_statements counts every execution of the
 * one entry); under row-level security each officer still sees only their
 * rows once PostgreSQL has moved to a generic plan; a statement that does
 * not parse fails its transaction the same way every time (no "does not
 * exist" after it); a failure after a prepared statement leaves it usable;
 * a connection opened again prepares it again. */
static void
test_prepared_statements(void **state)
{
    static const char scope_sql[] =
        "SELECT string_agg(k, ',' ORDER BY k) FROM pool_t"
        " WHERE k IN ('a1', 'a2', 'b1') AND k <> $1";
    static const char count_sql[] =
        "SELECT coalesce(sum(generic_plans + custom_plans), 0)"
        " || ' ' || count(*) FROM pg_prepared_statements"
        " WHERE statement = $1";
    struct store_pool *p = itest_pool_up(&T, 1, 2000, 0, "remigate_console");
    struct store_tx scoped = {
        .officer = "7",
        .role = "officer",
        .n = 1,
        .prepare = 1u,
        .stmt = {{.sql = scope_sql, .nparams = 1, .params = {"zz"}}}};
    struct store_tx count = {
        .n = 1,
        .stmt = {{.sql = count_sql, .nparams = 1, .params = {scope_sql}}}};
    struct store_tx broken = {
        .n = 2,
        .prepare = 3u,
        .stmt = {{.sql = scope_sql, .nparams = 1, .params = {"zz"}},
                 {.sql = "SELEKT 1"}}};
    struct store_tx after = {
        .officer = "7",
        .role = "officer",
        .districts = "BD-13",
        .n = 2,
        .prepare = 1u,
        .stmt = {{.sql = scope_sql, .nparams = 1, .params = {"zz"}},
                 {.sql = "INSERT INTO pool_t VALUES ('a1', 'BD-13')"}}};
    struct itest_tx o;
    struct itest_pool_want w = {p, 1};

    (void)state;
    for (int i = 0; i < 8; i++) {
        scoped.districts = i % 2 ? "BD-26" : "BD-13";
        o = itest_tx_wait(&T, p, &scoped);
        assert_int_equal(o.status, 0);
        assert_string_equal(o.v[0][0], i % 2 ? "b1" : "a1,a2");
    }
    o = itest_tx_wait(&T, p, &count);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "8 1");
    for (int i = 0; i < 2; i++) {
        o = itest_tx_wait(&T, p, &broken);
        assert_int_equal(o.status, STORE_EDB);
        assert_int_equal(o.failed, 1);
        assert_string_equal(o.sqlstate, "42601");
    }
    o = itest_tx_wait(&T, p, &after);
    assert_int_equal(o.status, STORE_EREFUSED);
    assert_int_equal(o.failed, 1);
    scoped.districts = "BD-26";
    o = itest_tx_wait(&T, p, &scoped);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "b1");
    o = itest_tx_wait(&T, p, &count);
    assert_string_equal(o.v[0][0], "12 1"); /* the two broken ran it too */
    PQclear(itest_sql(&T,
                      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = current_database() AND pid <>"
                      " pg_backend_pid()",
                      0));
    /* the first transaction after the kill may meet the dead socket */
    for (int i = 0; i < 20; i++) {
        assert_true(run_until(itest_pool_connected, &w, 5000));
        o = itest_tx_wait(&T, p, &scoped);
        if (o.status == 0) break;
    }
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "b1");
    o = itest_tx_wait(&T, p, &count);
    assert_string_equal(o.v[0][0], "1 1");
    store_pool_free(p);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statements_commit_together),
        cmocka_unit_test(test_failure_rolls_back),
        cmocka_unit_test(test_context_is_per_transaction),
        cmocka_unit_test(test_admin_role),
        cmocka_unit_test(test_console_role_is_held),
        cmocka_unit_test(test_console_login_role),
        cmocka_unit_test(test_prepared_statements),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
