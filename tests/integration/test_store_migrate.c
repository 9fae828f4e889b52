/*
 * test_store_migrate.c -- store_migrate() and store_migrate_check()
 * against a real PostgreSQL (PG_DSN; tests/run starts one), in a database
 * of the test's own (tests/lib/itest_pg.h): migrating again changes
 * nothing, a file changed after it was applied is refused, a database
 * behind its files is named as such, and a failing file leaves nothing of
 * itself.  The rest of store/: test_store.c, test_store_down.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "store/store.h"
#include "tests/lib/itest_pg.h"

static struct itest_env T;

static int
group_setup(void **state)
{
    (void)state;
    return itest_env_new(&T, "test_store_migrate", "remigate_store_mig");
}

static int
group_teardown(void **state)
{
    (void)state;
    return itest_env_free(&T);
}

/* ------------------------------------------------------------------------ */

static void
test_migrate_idempotent(void **state)
{
    char err[512], before[64];
    int files = 0;

    (void)state;
    snprintf(before, sizeof(before), "%s",
             itest_sql1(
                 &T, "SELECT max(applied_at)::text FROM schema_migrations", 0));
    files = atoi(itest_sql1(&T, "SELECT count(*) FROM schema_migrations", 0));
    assert_true(files >= 1);
    assert_int_equal(store_migrate(T.dsn, T.mig_dir, err, sizeof(err)), 0);
    assert_int_equal(
        atoi(itest_sql1(&T, "SELECT count(*) FROM schema_migrations", 0)),
        files);
    assert_string_equal(
        itest_sql1(&T, "SELECT max(applied_at)::text FROM schema_migrations",
                   0),
        before);
    assert_int_equal(store_migrate_check(T.dsn, T.mig_dir, err, sizeof(err)),
                     0);
    assert_string_equal(
        itest_sql1(&T, "SELECT name FROM schema_migrations WHERE version = 1",
                   0),
        "001_init");
}

static void
test_migrate_changed_file_refused(void **state)
{
    char dir[256], cmd[600], err[512];
    FILE *f;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/mig", T.tmp);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s'", dir, T.mig_dir,
             dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(store_migrate(T.dsn, dir, err, sizeof(err)), 0);
    snprintf(cmd, sizeof(cmd), "%s/001_init.sql", dir);
    f = fopen(cmd, "a");
    assert_non_null(f);
    fputs("-- edited after it was applied\n", f);
    fclose(f);
    assert_int_not_equal(store_migrate(T.dsn, dir, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "changed after it was applied"));
    assert_int_equal(store_migrate_check(T.dsn, dir, err, sizeof(err)),
                     STORE_EINVAL);
}

static void
test_migrate_schema_behind(void **state)
{
    char dsn[1024], q[256], db[80], err[512], dir[256], cmd[600];
    FILE *f;

    (void)state;
    snprintf(db, sizeof(db), "%s_empty", T.dbname);
    snprintf(q, sizeof(q), "CREATE DATABASE %s", db);
    itest_admin(&T, q);
    itest_dsn_with_db(T.admin_dsn, db, dsn, sizeof(dsn));
    /* Nothing applied: the daemon must refuse and name the command. */
    assert_int_equal(store_migrate_check(dsn, T.mig_dir, err, sizeof(err)),
                     STORE_ESCHEMA);
    assert_non_null(strstr(err, "remigate migrate -c FILE"));
    assert_int_equal(store_migrate(dsn, T.mig_dir, err, sizeof(err)), 0);
    assert_int_equal(store_migrate_check(dsn, T.mig_dir, err, sizeof(err)), 0);
    /* A newer file than the database has: behind again.  A failing file
     * leaves nothing of itself behind. */
    snprintf(dir, sizeof(dir), "%s/mig2", T.tmp);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s'", dir, T.mig_dir,
             dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/900_broken.sql", dir);
    f = fopen(cmd, "w");
    assert_non_null(f);
    fputs("CREATE TABLE half_applied (x int);\nSELECT no_such_fn();\n", f);
    fclose(f);
    assert_int_equal(store_migrate_check(dsn, dir, err, sizeof(err)),
                     STORE_ESCHEMA);
    assert_int_not_equal(store_migrate(dsn, dir, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "900_broken"));
    {
        PGconn *c = PQconnectdb(dsn);
        PGresult *r = PQexec(c, "SELECT to_regclass('half_applied') IS NULL,"
                                " (SELECT count(*) FROM schema_migrations"
                                " WHERE version = 900)");
        assert_string_equal(PQgetvalue(r, 0, 0), "t");
        assert_string_equal(PQgetvalue(r, 0, 1), "0");
        PQclear(r);
        PQfinish(c);
    }
    snprintf(q, sizeof(q), "DROP DATABASE %s", db);
    itest_admin(&T, q);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_idempotent),
        cmocka_unit_test(test_migrate_changed_file_refused),
        cmocka_unit_test(test_migrate_schema_behind),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
