/*
 * test_gw_cli.c -- the command line around gw_store.c, and a worker with
 * no database, against the PostgreSQL and Redis tests/run started
 * (PG_DSN, REDIS_PORT).  The worker and its plan are
 * tests/lib/itest_store.h's.
 *
 *   - no database configured: one warning, writes queued (sealed when a
 *     key is configured), lookups FAILED;
 *   - an unmigrated database: the worker does not start and says to run
 *     `remigate migrate -c FILE`; `remigate migrate` applies the
 *     migrations (and again: nothing to do), refuses a missing -c and an
 *     empty dsn; after it the worker starts;
 *   - `remigate keygen`: a 0600 key file, never overwritten.
 *
 * The record path with PostgreSQL or Redis slow or down: test_gw_store.c.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "gateway/gw_int.h"
#include "tests/lib/itest_pg.h"
#include "tests/lib/itest_store.h"

/* t_migrate's database: made empty, dropped by migrate_teardown. */
static char fresh_db[96];

/* The daemon: REMIGATE_BIN (tests/run sets it), else the plain build. */
static const char *
remigate_bin(void)
{
    const char *bin = getenv("REMIGATE_BIN");
    return bin != NULL ? bin : "build/remigate";
}

/* No database configured: the durable queue only. */
static void
t_no_database(void **state)
{
    (void)state;
    const char *m = "8801712000040";
    const char *reg = itest_store_rec_reg(0, "ff000000000000000000000000000001",
                                          "RE00000001", m);
    struct itest_store_step *s = itest_store.plan.steps;
    char first[4096];

    itest_store.cfg.pg_dsn[0] = '\0';
    itest_store_step(&s[0], "submit_registration", reg, NULL, NULL);
    itest_store_step(&s[1], "status_lookup", itest_store_rec_lookup(1, m), NULL,
                     NULL);
    itest_store_step(&s[2], "submit_registration", reg, NULL, NULL);
    itest_store_check_ran(itest_store_run());

    assert_int_equal(itest_store.shm->probe, 2); /* no "postgres" probe */
    itest_store_check_got(0, GW_ACT_QUEUED, "RE00000001");
    itest_store_check_got(1, GW_ACT_FAILED, "");
    itest_store_check_got(2, GW_ACT_QUEUED, "RE00000001");
    const char *log = itest_store_log(),
               *w = strstr(log, "postgres.dsn is empty");
    assert_non_null(w);
    assert_non_null(strstr(w, "(sealed)"));
    assert_null(strstr(w + 1, "postgres.dsn is empty")); /* once */
    assert_int_equal(itest_store_queue(first, sizeof(first)), 2);
    itest_store_check_sealed(first, reg);

    /* and no key either: the record as it came, and the log says so */
    itest_store.cfg.key_file[0] = '\0';
    snprintf(itest_store.cfg.redis_prefix, sizeof(itest_store.cfg.redis_prefix),
             "gwstore-nokey:");
    itest_store_check_ran(itest_store_run());
    itest_store_check_got(0, GW_ACT_QUEUED, "RE00000001");
    itest_store_check_got(1, GW_ACT_FAILED, "");
    assert_non_null(strstr(itest_store_log(), "in clear: no crypto.key_file"));
    assert_int_equal(itest_store_queue(first, sizeof(first)), 2);
    assert_string_equal(first, reg);
}

/* An unmigrated database, `remigate migrate`, then the worker starts. */
static void
t_migrate(void **state)
{
    (void)state;
    char conf[256], cmd[1024], out[256];
    char *dsn = itest_store.cfg.pg_dsn;
    const char *bin = remigate_bin();

    snprintf(fresh_db, sizeof(fresh_db), "%s_fresh", itest_store.pg.dbname);
    snprintf(cmd, sizeof(cmd), "CREATE DATABASE %s", fresh_db);
    itest_admin(&itest_store.pg, cmd);
    int rc = snprintf(dsn, GW_STR_MAX, "%s dbname=%s", itest_store.pg.admin_dsn,
                      fresh_db);
    assert_true(rc < GW_STR_MAX);
    itest_store_step(&itest_store.plan.steps[0], "status_lookup",
                     itest_store_rec_lookup(0, "8801712000050"), NULL, NULL);
    rc = itest_store_run();
    if (rc == 0 || itest_store.shm->started)
        fail_msg("worker on an unmigrated database: exit %d, started %d", rc,
                 itest_store.shm->started);
    const char *log = itest_store_log();
    if (strstr(log, "schema is behind") == NULL ||
        strstr(log, "remigate migrate -c config/remigate.conf") == NULL)
        fail_msg("log does not say to migrate:\n%s", log);

    /* a copy of the config (relative paths stay good) on that database */
    snprintf(conf, sizeof(conf), "%s/config/remigate.conf", itest_store.pg.tmp);
    snprintf(cmd, sizeof(cmd),
             "rm -rf '%s/config' && cp -r config '%s/config' && "
             "sed -i 's|^\\( *dsn = \\)\"\";|\\1\"%s\";|' '%s'",
             itest_store.pg.tmp, itest_store.pg.tmp, dsn, conf);
    assert_int_equal(system(cmd), 0);
    snprintf(out, sizeof(out), "%s/migrate.out", itest_store.pg.tmp);
    snprintf(cmd, sizeof(cmd), "'%s' migrate -c '%s' >'%s' 2>&1", bin, conf,
             out);
    rc = system(cmd);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
    rc = system(cmd); /* again: nothing to do */
    assert_int_equal(WEXITSTATUS(rc), 0);
    snprintf(cmd, sizeof(cmd), "grep -q 'schema up to date' '%s'", out);
    assert_int_equal(system(cmd), 0);

    /* usage errors and an empty dsn: clear messages, non-zero */
    snprintf(cmd, sizeof(cmd), "'%s' migrate >'%s' 2>&1", bin, out);
    rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 2);
    snprintf(cmd, sizeof(cmd),
             "'%s' migrate -c config/remigate.conf >'%s' 2>&1 && exit 9; "
             "grep -q 'postgres.dsn is empty' '%s'",
             bin, out, out);
    assert_int_equal(system(cmd), 0);

    itest_store.plan.wait_pg = 1;
    rc = itest_store_run();
    itest_store_check_ran(rc);
    assert_int_equal(itest_store.shm->probe, 0);
    itest_store_check_got(0, GW_ACT_NOT_REGISTERED, "");
}

/* t_migrate's teardown: its database dropped too. */
static int
migrate_teardown(void **state)
{
    char q[160];
    itest_store_teardown(state);
    if (fresh_db[0] == '\0') return 0;
    snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s WITH (FORCE)", fresh_db);
    itest_admin(&itest_store.pg, q);
    return 0;
}

/* `remigate keygen FILE`. */
static void
t_keygen(void **state)
{
    (void)state;
    char path[256], cmd[512];
    struct stat sb;
    unsigned char buf[128];
    const char *bin = remigate_bin();

    snprintf(path, sizeof(path), "%s/new.key", itest_store.pg.tmp);
    snprintf(cmd, sizeof(cmd), "'%s' keygen '%s' >/dev/null 2>&1", bin, path);
    int rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(n == 64 || n == 65); /* 64 hex characters (and a newline) */
    rc = system(cmd);                /* never overwritten */
    assert_int_equal(WEXITSTATUS(rc), 1);
    snprintf(cmd, sizeof(cmd), "'%s' keygen >/dev/null 2>&1", bin);
    rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_no_database, itest_store_setup,
                                        itest_store_teardown),
        cmocka_unit_test_setup_teardown(t_migrate, itest_store_setup,
                                        migrate_teardown),
        cmocka_unit_test_setup_teardown(t_keygen, itest_store_setup,
                                        itest_store_teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("gw_cli", tests, itest_store_group_setup,
                                       itest_store_group_teardown);
}
