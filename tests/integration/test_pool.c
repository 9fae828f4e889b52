/*
 * test_pool.c -- store_pool (the generic transaction pool) and migration
 * 004's console role against a real PostgreSQL (PG_DSN; tests/run starts
 * one).  A database of our own is created, migrated and dropped.  What is
 * checked: several statements commit together or not at all, their
 * results reach the callback, the console context (role, officer,
 * districts) holds for one transaction only, the console role is no
 * superuser, owns nothing and is held by row-level security, deadlines
 * roll back, a killed backend and a stopped pool answer every caller once,
 * and with wait_ms a transaction waits for a pool that is down.
 * The loop runs until a condition holds, with a deadline -- no sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "store/store.h"
#include "tests/lib/itest.h"

static struct {
    char admin_dsn[1024];
    char dsn[1024];
    char dbname[64];
    struct event_base *base;
    PGconn *db; /* blocking, as the owner, for checking rows */
} T;

/* One callback's outcome, copied out of the borrowed result. */
struct outcome {
    int calls, status, failed, unknown, ntuples[4];
    long long affected[4];
    char sqlstate[8], errstr[256];
    char v[4][4][128]; /* statement, row, first column */
    int isnull[4][4];
};

static void
on_tx(int status, const struct store_tx_result *res, void *arg)
{
    struct outcome *o = arg;

    assert_non_null(res);
    o->calls++;
    o->status = status;
    o->failed = store_tx_failed(res);
    o->unknown = store_tx_unknown(res);
    snprintf(o->sqlstate, sizeof(o->sqlstate), "%s", store_tx_sqlstate(res));
    snprintf(o->errstr, sizeof(o->errstr), "%s", store_tx_errstr(res));
    for (int s = 0; s < 4; s++) {
        o->ntuples[s] = store_tx_ntuples(res, s);
        o->affected[s] = store_tx_affected(res, s);
        for (int row = 0; row < 4; row++) {
            const char *v = store_tx_value(res, s, row, 0);
            o->isnull[s][row] = v == NULL;
            snprintf(o->v[s][row], sizeof(o->v[s][row]), "%s", v ? v : "");
        }
    }
}

static int
run_until(int (*cond)(void *), void *arg, int ms)
{
    return itest_run_until(T.base, cond, arg, ms);
}

static int
cond_called(void *arg)
{
    return ((struct outcome *)arg)->calls > 0;
}

struct want_conn {
    struct store_pool *p;
    int n;
};

static int
cond_connected(void *arg)
{
    struct want_conn *w = arg;
    return store_pool_connected(w->p) >= w->n;
}

static void
dsn_with_db(const char *dsn, const char *db, char *out, size_t cap)
{
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    size_t n = 0;

    assert_non_null(opts);
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *v = strcmp(o->keyword, "dbname") == 0 ? db : o->val;
        if (v == NULL) continue;
        n += (size_t)snprintf(out + n, cap - n, "%s='", o->keyword);
        for (const char *p = v; *p && n + 3 < cap; p++) {
            if (*p == '\'' || *p == '\\') out[n++] = '\\';
            out[n++] = *p;
        }
        n += (size_t)snprintf(out + n, cap - n, "' ");
    }
    PQconninfoFree(opts);
}

static void
exec_on(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);

    if (PQresultStatus(r) != PGRES_COMMAND_OK &&
        PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", q, PQresultErrorMessage(r));
    PQclear(r);
}

static void
admin_exec(const char *q)
{
    PGconn *a = PQconnectdb(T.admin_dsn);

    assert_int_equal(PQstatus(a), CONNECTION_OK);
    exec_on(a, q);
    PQfinish(a);
}

/* The first value of a one-row query as the owner. */
static const char *
sql1(const char *q)
{
    static char buf[1024];
    PGresult *r = PQexec(T.db, q);

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", q, PQresultErrorMessage(r));
    snprintf(buf, sizeof(buf), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return buf;
}

static int
group_setup(void **state)
{
    const char *dsn = getenv("PG_DSN");
    const char *mig = getenv("STORE_MIGRATIONS");
    char err[512], q[256];

    (void)state;
    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr, "test_pool: PG_DSN is not set (tests/run starts "
                        "PostgreSQL and sets it)\n");
        return -1;
    }
    snprintf(T.admin_dsn, sizeof(T.admin_dsn), "%s", dsn);
    snprintf(T.dbname, sizeof(T.dbname), "remigate_pool_%ld", (long)getpid());
    snprintf(q, sizeof(q), "CREATE DATABASE %s", T.dbname);
    admin_exec(q);
    dsn_with_db(dsn, T.dbname, T.dsn, sizeof(T.dsn));
    if (store_migrate(T.dsn, mig ? mig : STORE_MIGRATIONS_DIR, err,
                      sizeof(err)) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    T.db = PQconnectdb(T.dsn);
    if (PQstatus(T.db) != CONNECTION_OK) return -1;
    /* A scratch table with a district policy, as migration 005 will put
     * on the record tables. */
    exec_on(T.db,
            "CREATE TABLE pool_t (k text PRIMARY KEY, district text NOT NULL);"
            "ALTER TABLE pool_t ENABLE ROW LEVEL SECURITY;"
            "CREATE POLICY pool_t_scope ON pool_t USING"
            " (remigate_officer_role() = 'admin' OR"
            "  district = ANY (remigate_officer_districts()));"
            "GRANT SELECT, INSERT, UPDATE ON pool_t TO remigate_console;"
            "INSERT INTO pool_t VALUES ('a1', 'BD-13'), ('a2', 'BD-13'),"
            " ('b1', 'BD-26')");
    T.base = event_base_new();
    return T.base ? 0 : -1;
}

static int
group_teardown(void **state)
{
    char q[256];

    (void)state;
    PQfinish(T.db);
    if (T.base) event_base_free(T.base);
    snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s WITH (FORCE)", T.dbname);
    admin_exec(q);
    return 0;
}

static struct store_pool *
pool_up(int n, int timeout_ms, int max_waiting, const char *role)
{
    struct store_pool_config cfg = {.dsn = T.dsn,
                                    .role = role,
                                    .pool = n,
                                    .timeout_ms = timeout_ms,
                                    .max_waiting = max_waiting};
    char err[256];
    struct store_pool *p = store_pool_new(&cfg, T.base, err, sizeof(err));
    struct want_conn w = {p, n};

    if (p == NULL) fail_msg("store_pool_new: %s", err);
    assert_int_equal(store_pool_start(p), 0);
    assert_true(run_until(cond_connected, &w, 5000));
    return p;
}

/* Run tx and wait for its one callback (never from inside the call). */
static struct outcome
tx_wait(struct store_pool *p, const struct store_tx *tx)
{
    struct outcome o;
    int rc;

    memset(&o, 0, sizeof(o));
    rc = store_pool_tx(p, tx, on_tx, &o);
    if (rc != 0) fail_msg("store_pool_tx: %s", store_strerror(rc));
    assert_int_equal(o.calls, 0);
    assert_true(run_until(cond_called, &o, 5000));
    assert_int_equal(o.calls, 1);
    return o;
}

/* ------------------------------------------------------------------------ */

/* Three statements, one round trip, one commit; every result delivered. */
static void
test_statements_commit_together(void **state)
{
    struct store_pool *p = pool_up(2, 2000, 0, NULL);
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
    struct outcome o;

    (void)state;
    o = tx_wait(p, &tx);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.failed, -1);
    assert_string_equal(o.errstr, "");
    assert_int_equal(o.ntuples[0], 1);
    assert_string_equal(o.v[0][0], "c1");
    assert_int_equal(o.affected[1], 1);
    assert_int_equal(o.ntuples[2], 1); /* sees its own update */
    assert_string_equal(sql1("SELECT district FROM pool_t WHERE k = 'c1'"),
                        "BD-26");
    store_pool_free(p);
}

/* A failing statement: nothing of the transaction stays, the statement and
 * its SQLSTATE are named, and the connection serves the next one. */
static void
test_failure_rolls_back(void **state)
{
    struct store_pool *p = pool_up(1, 2000, 0, NULL);
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
    struct outcome o;

    (void)state;
    o = tx_wait(p, &tx);
    assert_int_equal(o.status, STORE_EREFUSED);
    assert_int_equal(o.failed, 1);
    assert_string_equal(o.sqlstate, "23505");
    assert_non_null(strstr(o.errstr, "23505"));
    assert_null(strstr(o.errstr, "a1")); /* no values in the log text */
    assert_string_equal(
        sql1("SELECT count(*) FROM pool_t WHERE k IN ('d1', 'd2')"), "0");
    /* A code raised on purpose reaches the caller as it was raised. */
    o = tx_wait(p, &raise);
    assert_int_equal(o.status, STORE_EDB);
    assert_int_equal(o.failed, 1);
    assert_string_equal(o.sqlstate, "RG409");
    assert_string_equal(sql1("SELECT count(*) FROM pool_t WHERE k = 'd3'"),
                        "0");
    o = tx_wait(p, &ok);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "1");
    store_pool_free(p);
}

/* The console's context holds for one transaction only, on one
 * connection. */
static void
test_context_is_per_transaction(void **state)
{
    struct store_pool *p = pool_up(1, 2000, 0, "remigate_console");
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
    struct outcome o;

    (void)state;
    o = tx_wait(p, &who);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console 42 officer BD-13|BD-26");
    o = tx_wait(p, &nobody);
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
    struct want_conn w = {p, 1};
    struct outcome o;

    (void)state;
    assert_non_null(p);
    assert_int_equal(store_pool_start(p), 0);
    assert_true(run_until(cond_connected, &w, 5000));
    o = tx_wait(p, &admin);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console_admin admin");
    o = tx_wait(p, &officer);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console officer");
    o = tx_wait(p, &analyst);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console analyst");
    o = tx_wait(p, &admin);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console_admin admin");
    store_pool_free(p);
    cfg.admin_role = "";
    p = store_pool_new(&cfg, T.base, err, sizeof(err));
    assert_non_null(p);
    w.p = p;
    assert_int_equal(store_pool_start(p), 0);
    assert_true(run_until(cond_connected, &w, 5000));
    o = tx_wait(p, &admin);
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
    struct store_pool *p = pool_up(1, 2000, 0, "remigate_console");
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
    struct outcome o;

    (void)state;
    o = tx_wait(p, &attrs);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "falsefalse");
    assert_string_equal(o.v[1][0], "0");
    o = tx_wait(p, &scoped);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.ntuples[0], 2);
    assert_string_equal(o.v[0][0], "a1");
    assert_string_equal(o.v[0][1], "a2");
    assert_string_equal(o.v[1][0], "0");
    o = tx_wait(p, &none);
    assert_string_equal(o.v[0][0], "0");
    o = tx_wait(p, &admin);
    assert_string_equal(o.v[0][0], "3");
    o = tx_wait(p, &sneak);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.affected[0], 0); /* the row is not there for it */
    assert_string_equal(sql1("SELECT district FROM pool_t WHERE k = 'b1'"),
                        "BD-26");
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct store_tx bad = {.n = 1, .stmt = {{.sql = refused[i]}}};
        o = tx_wait(p, &bad);
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
    struct want_conn w;
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
    struct outcome o;
    size_t n;

    (void)state;
    snprintf(user, sizeof(user), "remigate_web_%ld", (long)getpid());
    snprintf(q, sizeof(q),
             "CREATE ROLE %s LOGIN IN ROLE remigate_console,"
             " remigate_console_admin;"
             " ALTER ROLE %s SET role = 'remigate_console'",
             user, user);
    admin_exec(q);
    dsn_with_db(T.dsn, T.dbname, dsn, sizeof(dsn));
    n = strlen(dsn);
    snprintf(dsn + n, sizeof(dsn) - n, " user='%s'", user);
    cfg.dsn = dsn;
    p = store_pool_new(&cfg, T.base, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(store_pool_start(p), 0);
    w.p = p;
    w.n = 1;
    assert_true(run_until(cond_connected, &w, 5000));
    o = tx_wait(p, &who);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console");
    /* BD-26's rows only: b1, and c1 moved there by the first test */
    assert_int_equal(o.ntuples[1], 2);
    assert_string_equal(o.v[1][0], "b1");
    assert_string_equal(o.v[1][1], "c1");
    /* an admin's transaction as the admin role (docs/operators.md grants
     * it to the console's login) */
    o = tx_wait(p, &admin);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "remigate_console_admin");
    /* every row of the scratch table (its policy lets admins see all) */
    assert_int_equal(o.ntuples[1], atoi(sql1("SELECT count(*) FROM pool_t")));
    o = tx_wait(p, &escape);
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

/* A late transaction: ETIMEDOUT with unknown set, its insert never
 * commits, the one queued behind it keeps its own deadline and runs once
 * the pool has connected again (it is not failed "not connected" while
 * the connection the deadline closed comes back), and so does one given
 * right after the drop. */
static void
test_deadline_rolls_back(void **state)
{
    struct store_pool *p = pool_up(1, 300, 0, NULL);
    struct store_tx slow = {
        .n = 2,
        .stmt = {{.sql = "INSERT INTO pool_t VALUES ('e1', 'BD-13')"},
                 {.sql = "SELECT pg_sleep(5)"}}};
    struct store_tx quick = {.n = 1, .stmt = {{.sql = "SELECT 2"}}};
    struct outcome a, b, c, d;
    struct want_conn w = {p, 1};
    long t0 = itest_now_ms();

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&d, 0, sizeof(d));
    assert_int_equal(store_pool_tx(p, &slow, on_tx, &a), 0);
    quick.timeout_ms = 3000;
    assert_int_equal(store_pool_tx(p, &quick, on_tx, &b), 0);
    assert_true(run_until(cond_called, &a, 3000));
    assert_int_equal(a.status, STORE_ETIMEDOUT);
    assert_int_equal(a.unknown, 1);
    assert_true(itest_now_ms() - t0 < 2000);
    assert_int_equal(store_pool_tx(p, &quick, on_tx, &d), 0);
    assert_true(run_until(cond_called, &b, 3000));
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, 0);
    assert_string_equal(b.v[0][0], "2");
    assert_true(run_until(cond_called, &d, 3000));
    assert_int_equal(d.status, 0);
    assert_true(run_until(cond_connected, &w, 5000));
    c = tx_wait(p, &quick);
    assert_int_equal(c.status, 0);
    assert_string_equal(c.v[0][0], "2");
    assert_string_equal(sql1("SELECT count(*) FROM pool_t WHERE k = 'e1'"),
                        "0");
    assert_int_equal(a.calls, 1);
    store_pool_free(p);
}

/* Every backend of ours killed in the middle: EDOWN once each, then the
 * pool is back. */
static void
test_backend_killed(void **state)
{
    struct store_pool *p = pool_up(2, 5000, 0, "remigate_console");
    struct store_tx slow = {.n = 1, .stmt = {{.sql = "SELECT pg_sleep(3)"}}};
    struct store_tx ok = {.n = 1, .stmt = {{.sql = "SELECT 3"}}};
    struct outcome a, b, c;
    struct want_conn w = {p, 2};
    PGresult *r;

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    assert_int_equal(store_pool_tx(p, &slow, on_tx, &a), 0);
    assert_int_equal(store_pool_tx(p, &slow, on_tx, &b), 0);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    r = PQexec(T.db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = current_database() AND pid <>"
                     " pg_backend_pid()");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    assert_true(run_until(cond_called, &a, 3000));
    assert_true(run_until(cond_called, &b, 3000));
    assert_int_equal(a.status, STORE_EDOWN);
    assert_int_equal(b.status, STORE_EDOWN);
    assert_true(run_until(cond_connected, &w, 5000));
    c = tx_wait(p, &ok);
    assert_int_equal(c.status, 0);
    assert_int_equal(a.calls + b.calls, 2);
    store_pool_free(p);
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
    struct store_pool *p = pool_up(1, 2000, 0, "remigate_console");
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
    struct outcome o;
    struct want_conn w = {p, 1};

    (void)state;
    for (int i = 0; i < 8; i++) {
        scoped.districts = i % 2 ? "BD-26" : "BD-13";
        o = tx_wait(p, &scoped);
        assert_int_equal(o.status, 0);
        assert_string_equal(o.v[0][0], i % 2 ? "b1" : "a1,a2");
    }
    o = tx_wait(p, &count);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "8 1");
    for (int i = 0; i < 2; i++) {
        o = tx_wait(p, &broken);
        assert_int_equal(o.status, STORE_EDB);
        assert_int_equal(o.failed, 1);
        assert_string_equal(o.sqlstate, "42601");
    }
    o = tx_wait(p, &after);
    assert_int_equal(o.status, STORE_EREFUSED);
    assert_int_equal(o.failed, 1);
    scoped.districts = "BD-26";
    o = tx_wait(p, &scoped);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "b1");
    o = tx_wait(p, &count);
    assert_string_equal(o.v[0][0], "12 1"); /* the two broken ran it too */
    exec_on(T.db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE datname = current_database() AND pid <>"
                  " pg_backend_pid()");
    /* the first transaction after the kill may meet the dead socket */
    for (int i = 0; i < 20; i++) {
        assert_true(run_until(cond_connected, &w, 5000));
        o = tx_wait(p, &scoped);
        if (o.status == 0) break;
    }
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "b1");
    o = tx_wait(p, &count);
    assert_string_equal(o.v[0][0], "1 1");
    store_pool_free(p);
}

/* Stop: what runs and what waits gets EDOWN exactly once, before
 * store_pool_stop() returns; a full queue refuses now; a stopped pool
 * refuses now and calls nothing later. */
static void
test_stop_and_busy(void **state)
{
    struct store_pool *p = pool_up(1, 2000, 3, NULL);
    struct store_tx slow = {.n = 1, .stmt = {{.sql = "SELECT pg_sleep(1)"}}};
    struct outcome o[5];

    (void)state;
    memset(o, 0, sizeof(o));
    assert_int_equal(store_pool_tx(p, &slow, on_tx, &o[0]), 0);
    event_base_loop(T.base, EVLOOP_NONBLOCK); /* on the wire */
    for (int i = 1; i < 4; i++)
        assert_int_equal(store_pool_tx(p, &slow, on_tx, &o[i]), 0);
    assert_int_equal(store_pool_tx(p, &slow, on_tx, &o[4]), STORE_EBUSY);
    store_pool_stop(p);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status, STORE_EDOWN);
    }
    assert_int_equal(o[0].unknown, 1); /* it was sent */
    assert_int_equal(o[1].unknown, 0); /* it never left */
    assert_int_equal(store_pool_connected(p), 0);
    assert_int_equal(store_pool_tx(p, &slow, on_tx, &o[4]), STORE_EDOWN);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(o[i].calls, i < 4 ? 1 : 0);
    /* and it starts again */
    assert_int_equal(store_pool_start(p), 0);
    {
        struct want_conn w = {p, 1};
        assert_true(run_until(cond_connected, &w, 5000));
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
    struct store_pool *p = pool_up(1, 2000, 0, NULL);
    struct store_tx empty = {.n = 0};
    struct store_tx nosql = {.n = 1, .stmt = {{.sql = NULL}}};
    struct store_tx many = {.n = STORE_TX_STMTS + 1};
    struct store_tx params = {
        .n = 1, .stmt = {{.sql = "SELECT 1", .nparams = STORE_TX_PARAMS + 1}}};
    struct store_tx ok = {.n = 1, .stmt = {{.sql = "SELECT 1"}}};
    struct outcome o;
    char err[256];
    struct store_pool *down;

    (void)state;
    memset(&o, 0, sizeof(o));
    assert_int_equal(store_pool_tx(p, &empty, on_tx, &o), STORE_EINVAL);
    assert_int_equal(store_pool_tx(p, &nosql, on_tx, &o), STORE_EINVAL);
    assert_int_equal(store_pool_tx(p, &many, on_tx, &o), STORE_EINVAL);
    assert_int_equal(store_pool_tx(p, &params, on_tx, &o), STORE_EINVAL);
    assert_int_equal(store_pool_tx(p, NULL, on_tx, &o), STORE_EINVAL);
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
    assert_int_equal(store_pool_tx(down, &ok, on_tx, &o), 0);
    assert_true(run_until(cond_called, &o, 5000));
    assert_int_equal(o.status, STORE_EDOWN);
    assert_int_equal(o.unknown, 0);
    assert_int_equal(store_pool_connected(down), 0);
    assert_int_equal(store_pool_tx(down, &ok, on_tx, &o), STORE_EDOWN);
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
    admin_exec(q);
    exec_on(T.db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE datname = current_database() AND pid <>"
                  " pg_backend_pid()");
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
    admin_exec(q);
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
    struct want_conn w = {p, 2};
    struct outcome o;
    long t0, took;
    int rc;

    (void)state;
    assert_non_null(p);
    assert_non_null(let_in);
    assert_int_equal(store_pool_start(p), 0);
    assert_true(run_until(cond_connected, &w, 5000));

    pool_shut_out(p);
    memset(&o, 0, sizeof(o));
    t0 = itest_now_ms();
    rc = store_pool_tx(p, &ok, on_tx, &o);
    evtimer_add(let_in, &later);
    assert_int_equal(rc, 0); /* without wait_ms: STORE_EDOWN now */
    assert_int_equal(o.calls, 0);
    assert_true(run_until(cond_called, &o, 5000));
    took = itest_now_ms() - t0;
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.v[0][0], "7");
    assert_true(took >= 250 && took < 1200);

    pool_shut_out(p);
    memset(&o, 0, sizeof(o));
    t0 = itest_now_ms();
    rc = store_pool_tx(p, &ok, on_tx, &o);
    if (rc == 0) run_until(cond_called, &o, 5000);
    took = itest_now_ms() - t0;
    on_let_in(-1, 0, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, STORE_EDOWN);
    assert_int_equal(o.unknown, 0);
    assert_non_null(strstr(o.errstr, "waited"));
    assert_true(took >= 1150 && took < 2500);
    w.n = 1;
    assert_true(run_until(cond_connected, &w, 5000));
    event_free(let_in);
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
        cmocka_unit_test(test_deadline_rolls_back),
        cmocka_unit_test(test_backend_killed),
        cmocka_unit_test(test_prepared_statements),
        cmocka_unit_test(test_stop_and_busy),
        cmocka_unit_test(test_bad_calls_and_down),
        cmocka_unit_test(test_wait_for_reconnect),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
