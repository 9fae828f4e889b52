/*
 * itest_pg.c -- the PostgreSQL side the C integration tests share
 * (itest_pg.h).  Failures inside a test are cmocka's (fail_msg, assert_*);
 * the group setup's are a line on stderr and -1, as cmocka wants them.
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

/* q with n parameters on c: the result; the test fails on an error.
 * Without parameters q may hold several statements (PQexec). */
static PGresult *
itest_exec(PGconn *c, const char *q, int n, const char *const *vals)
{
    PGresult *r =
        n > 0 ? PQexecParams(c, q, n, NULL, vals, NULL, NULL, 0) : PQexec(c, q);

    if (PQresultStatus(r) != PGRES_TUPLES_OK &&
        PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", q, PQresultErrorMessage(r));
    return r;
}

int
itest_env_new(struct itest_env *e, const char *prog, const char *prefix)
{
    const char *dsn = getenv("PG_DSN");
    char err[512], q[128];
    PGconn *a;
    PGresult *r;
    int made;

    memset(e, 0, sizeof(*e));
    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr,
                "%s: PG_DSN is not set (tests/run starts PostgreSQL and "
                "sets it)\n",
                prog);
        return -1;
    }
    snprintf(e->admin_dsn, sizeof(e->admin_dsn), "%s", dsn);
    snprintf(e->dbname, sizeof(e->dbname), "%s_%ld", prefix, (long)getpid());
    e->mig_dir = getenv("STORE_MIGRATIONS");
    if (e->mig_dir == NULL) e->mig_dir = STORE_MIGRATIONS_DIR;
    snprintf(q, sizeof(q), "CREATE DATABASE %s", e->dbname);
    a = PQconnectdb(e->admin_dsn);
    r = PQexec(a, q);
    made = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!made) fprintf(stderr, "%s: %s: %s", prog, q, PQerrorMessage(a));
    PQclear(r);
    PQfinish(a);
    if (!made) {
        e->dbname[0] = '\0'; /* not ours to drop */
        return -1;
    }
    itest_dsn_with_db(dsn, e->dbname, e->dsn, sizeof(e->dsn));
    if (store_migrate(e->dsn, e->mig_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: migrate: %s\n", prog, err);
        return -1;
    }
    e->db = PQconnectdb(e->dsn);
    if (PQstatus(e->db) != CONNECTION_OK) {
        fprintf(stderr, "%s: %s", prog, PQerrorMessage(e->db));
        return -1;
    }
    snprintf(e->tmp, sizeof(e->tmp), "/tmp/remigate-%s.XXXXXX", prog);
    if (mkdtemp(e->tmp) == NULL) {
        e->tmp[0] = '\0';
        fprintf(stderr, "%s: mkdtemp failed\n", prog);
        return -1;
    }
    snprintf(e->key_file, sizeof(e->key_file), "%s/key", e->tmp);
    if (store_keygen(e->key_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: keygen: %s\n", prog, err);
        return -1;
    }
    e->base = event_base_new();
    return e->base ? 0 : -1;
}

int
itest_env_free(struct itest_env *e)
{
    char q[256];
    PGconn *a;

    if (e->base != NULL) event_base_free(e->base);
    e->base = NULL;
    if (e->db != NULL) PQfinish(e->db);
    e->db = NULL;
    if (e->dbname[0] != '\0') {
        snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
                 e->dbname);
        a = PQconnectdb(e->admin_dsn);
        PQclear(PQexec(a, q));
        PQfinish(a);
        e->dbname[0] = '\0';
    }
    if (e->tmp[0] == '\0') return 0;
    snprintf(q, sizeof(q), "rm -rf '%s'", e->tmp);
    e->tmp[0] = '\0';
    return system(q) == 0 ? 0 : -1;
}

void
itest_admin(const struct itest_env *e, const char *q)
{
    PGconn *a = PQconnectdb(e->admin_dsn);

    if (PQstatus(a) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(a));
    PQclear(itest_exec(a, q, 0, NULL));
    PQfinish(a);
}

void
itest_dsn_with_db(const char *dsn, const char *db, char *out, size_t cap)
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

PGresult *
itest_sql(const struct itest_env *e, const char *q, int n, ...)
{
    const char *vals[16];
    va_list ap;

    assert_true(n >= 0 && n <= 16);
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        vals[i] = va_arg(ap, const char *);
    va_end(ap);
    return itest_exec(e->db, q, n, vals);
}

const char *
itest_sql1(const struct itest_env *e, const char *q, int n, ...)
{
    static char buf[4096];
    const char *vals[16];
    va_list ap;
    PGresult *r;

    assert_true(n >= 0 && n <= 16);
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        vals[i] = va_arg(ap, const char *);
    va_end(ap);
    r = itest_exec(e->db, q, n, vals);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %d rows, want 1", q, PQntuples(r));
    snprintf(buf, sizeof(buf), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return buf;
}

void
itest_tx_cb(int status, const struct store_tx_result *res, void *arg)
{
    struct itest_tx *o = arg;

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

int
itest_tx_called(void *arg)
{
    return ((struct itest_tx *)arg)->calls > 0;
}

int
itest_pool_connected(void *arg)
{
    struct itest_pool_want *w = arg;
    return store_pool_connected(w->p) >= w->n;
}

struct store_pool *
itest_pool_up(const struct itest_env *e, int n, int timeout_ms, int max_waiting,
              const char *role)
{
    struct store_pool_config cfg = {.dsn = e->dsn,
                                    .role = role,
                                    .pool = n,
                                    .timeout_ms = timeout_ms,
                                    .max_waiting = max_waiting};
    char err[256];
    struct store_pool *p = store_pool_new(&cfg, e->base, err, sizeof(err));
    struct itest_pool_want w = {p, n};

    if (p == NULL) fail_msg("store_pool_new: %s", err);
    assert_int_equal(store_pool_start(p), 0);
    assert_true(itest_run_until(e->base, itest_pool_connected, &w, 5000));
    return p;
}

struct itest_tx
itest_tx_wait(const struct itest_env *e, struct store_pool *p,
              const struct store_tx *tx)
{
    struct itest_tx o;
    int rc;

    memset(&o, 0, sizeof(o));
    rc = store_pool_tx(p, tx, itest_tx_cb, &o);
    if (rc != 0) fail_msg("store_pool_tx: %s", store_strerror(rc));
    assert_int_equal(o.calls, 0);
    assert_true(itest_run_until(e->base, itest_tx_called, &o, 5000));
    assert_int_equal(o.calls, 1);
    return o;
}

void
itest_rec_cb(int status, const struct store_result *res, void *arg)
{
    struct itest_rec *o = arg;

    assert_non_null(res);
    o->calls++;
    o->status = status;
    o->duplicate = res->duplicate;
    o->id_shared = res->id_shared;
    o->rstatus = res->status;
    snprintf(o->ref, sizeof(o->ref), "%s", res->ref);
    snprintf(o->reason, sizeof(o->reason), "%s", res->reject_reason);
    snprintf(o->lang, sizeof(o->lang), "%s", res->lang ? res->lang : "");
}

int
itest_rec_called(void *arg)
{
    return ((struct itest_rec *)arg)->calls > 0;
}

int
itest_rec_all_called(void *arg)
{
    struct itest_rec_all *a = arg;
    for (int i = 0; i < a->n; i++)
        if (a->o[i].calls == 0) return 0;
    return 1;
}

int
itest_store_connected(void *arg)
{
    struct itest_store_want *w = arg;
    return store_connected(w->s) >= w->n;
}

struct store *
itest_store_up(const struct itest_env *e, int pool, int timeout_ms,
               int max_waiting)
{
    struct store_config cfg = {.dsn = e->dsn,
                               .key_file = e->key_file,
                               .pool = pool,
                               .timeout_ms = timeout_ms,
                               .max_waiting = max_waiting};
    char err[256];
    struct store *s = store_new(&cfg, e->base, err, sizeof(err));
    struct itest_store_want w;

    if (s == NULL) fail_msg("store_new: %s", err);
    assert_int_equal(store_start(s), 0);
    w.s = s;
    w.n = pool;
    if (!itest_run_until(e->base, itest_store_connected, &w, 5000))
        fail_msg("not connected: %s", store_errstr(s));
    return s;
}

int
itest_record(char *buf, size_t cap, const char *key, const char *msisdn,
             const char *district, const char *id_type, const char *id)
{
    char ref[16];

    snprintf(ref, sizeof(ref), "R%.9s", key);
    for (char *p = ref; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    return snprintf(
        buf, cap,
        "{\"flow\":\"register\",\"action\":\"submit_registration\","
        "\"key\":\"%s\",\"ref\":\"%s\",\"lang\":\"bn\",\"channel\":\"ussd\","
        "\"msisdn\":\"%s\",\"started\":1795343567,\"answers\":{"
        "\"consent\":\"yes\",\"name\":\"\xe0\xa6\xb0\xe0\xa6\xb9\xe0\xa6\xbf"
        "\xe0\xa6\xae\xe0\xa6\xbe\",\"sex\":\"f\",\"birth_year\":1990,"
        "\"division\":\"C\",\"district\":\"%s\",\"country\":\"SA\","
        "\"years_abroad\":5,\"return_year\":2024,\"reason\":"
        "\"contract_end\",\"education\":\"ssc\",\"skills\":[\"mason\","
        "\"driver\"],\"need\":\"training\",\"id_type\":\"%s\",\"%s\":\"%s\"}}",
        key, ref, msisdn, district, id_type, id_type, id);
}
