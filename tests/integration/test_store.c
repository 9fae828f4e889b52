/*
 * test_store.c -- store/ against a real PostgreSQL (PG_DSN from the
 * environment; tests/run starts one).  Each run works in a database of its
 * own, created here and dropped at the end.  The event loop is run until a
 * condition holds, with a deadline -- never a bare sleep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "store/store.h"
#include "tests/lib/itest.h"

static struct {
    char admin_dsn[1024]; /* PG_DSN as given */
    char dsn[1024];       /* our own database */
    char dbname[64];
    char tmp[128];
    char key_file[256];
    const char *mig_dir;
    struct event_base *base;
    PGconn *db; /* blocking, for checking rows */
} T;

/* One callback's outcome. */
struct outcome {
    int calls, status, duplicate, id_shared;
    enum store_rec_status rstatus;
    char ref[32], reason[128], lang[12];
};

static void
on_result(int status, const struct store_result *res, void *arg)
{
    struct outcome *o = arg;

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

struct all_called {
    struct outcome *o;
    int n;
};

static int
cond_all_called(void *arg)
{
    struct all_called *a = arg;
    for (int i = 0; i < a->n; i++)
        if (a->o[i].calls == 0) return 0;
    return 1;
}

struct want_conn {
    struct store *s;
    int n;
};

static int
cond_connected(void *arg)
{
    struct want_conn *w = arg;
    return store_connected(w->s) >= w->n;
}

/* conninfo of dsn with dbname replaced. */
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

static PGresult *
sql(const char *q, int n, ...)
{
    const char *vals[8];
    va_list ap;
    PGresult *r;

    va_start(ap, n);
    for (int i = 0; i < n; i++)
        vals[i] = va_arg(ap, const char *);
    va_end(ap);
    r = PQexecParams(T.db, q, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK &&
        PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", q, PQresultErrorMessage(r));
    return r;
}

/* The first value of a one-row query, copied into a static buffer. */
static const char *
sql1(const char *q, int n, ...)
{
    static char buf[4096];
    const char *vals[8];
    va_list ap;
    PGresult *r;

    va_start(ap, n);
    for (int i = 0; i < n; i++)
        vals[i] = va_arg(ap, const char *);
    va_end(ap);
    r = PQexecParams(T.db, q, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s (%d rows)", q, PQresultErrorMessage(r), PQntuples(r));
    snprintf(buf, sizeof(buf), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return buf;
}

static void
admin_exec(const char *q)
{
    PGconn *a = PQconnectdb(T.admin_dsn);
    PGresult *r;

    assert_int_equal(PQstatus(a), CONNECTION_OK);
    r = PQexec(a, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", q, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(a);
}

static int
group_setup(void **state)
{
    const char *dsn = getenv("PG_DSN");
    char err[512], q[256];

    (void)state;
    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr, "test_store: PG_DSN is not set (tests/run starts "
                        "PostgreSQL and sets it)\n");
        return -1;
    }
    snprintf(T.admin_dsn, sizeof(T.admin_dsn), "%s", dsn);
    snprintf(T.dbname, sizeof(T.dbname), "remigate_store_%ld", (long)getpid());
    snprintf(q, sizeof(q), "CREATE DATABASE %s", T.dbname);
    admin_exec(q);
    dsn_with_db(dsn, T.dbname, T.dsn, sizeof(T.dsn));
    snprintf(T.tmp, sizeof(T.tmp), "/tmp/remigate-store.XXXXXX");
    if (mkdtemp(T.tmp) == NULL) return -1;
    snprintf(T.key_file, sizeof(T.key_file), "%s/key", T.tmp);
    if (store_keygen(T.key_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "keygen: %s\n", err);
        return -1;
    }
    T.mig_dir = getenv("STORE_MIGRATIONS");
    if (T.mig_dir == NULL) T.mig_dir = STORE_MIGRATIONS_DIR;
    if (store_migrate(T.dsn, T.mig_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    T.db = PQconnectdb(T.dsn);
    if (PQstatus(T.db) != CONNECTION_OK) return -1;
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
    snprintf(q, sizeof(q), "rm -rf '%s'", T.tmp);
    return system(q) == 0 ? 0 : -1;
}

static struct store *
store_up(int pool, int timeout_ms, int max_waiting)
{
    struct store_config cfg = {.dsn = T.dsn,
                               .key_file = T.key_file,
                               .pool = pool,
                               .timeout_ms = timeout_ms,
                               .max_waiting = max_waiting};
    char err[256];
    struct store *s = store_new(&cfg, T.base, err, sizeof(err));
    struct want_conn w;

    if (s == NULL) fail_msg("store_new: %s", err);
    assert_int_equal(store_start(s), 0);
    w.s = s;
    w.n = pool;
    if (!run_until(cond_connected, &w, 5000))
        fail_msg("not connected: %s", store_errstr(s));
    return s;
}

/* A registration record as flow_record_json() makes it. */
static int
record(char *buf, size_t cap, const char *key, const char *msisdn,
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

static int
skills_record(char *buf, size_t cap, const char *key, const char *msisdn)
{
    return snprintf(buf, cap,
                    "{\"flow\":\"update_skills\",\"action\":\"update_skills\","
                    "\"key\":\"%s\",\"ref\":\"SKILLREF01\",\"lang\":\"en\","
                    "\"channel\":\"sms\",\"msisdn\":\"%s\",\"started\":"
                    "1795343567,\"answers\":{\"skills\":[\"farming\","
                    "\"tailor\",\"welder\"]}}",
                    key, msisdn);
}

/* Submit and wait for the callback. */
static struct outcome
submit_wait(struct store *s, const char *rec)
{
    struct outcome o = {0};
    int rc = store_submit(s, rec, strlen(rec), on_result, &o);

    if (rc != 0) fail_msg("store_submit: %s", store_strerror(rc));
    assert_int_equal(o.calls, 0); /* never from inside the call */
    assert_true(run_until(cond_called, &o, 5000));
    assert_int_equal(o.calls, 1);
    return o;
}

static int
count(const char *q, const char *param)
{
    return atoi(param ? sql1(q, 1, param) : sql1(q, 0));
}

/* ------------------------------------------------------------------------ */

static void
test_migrate_idempotent(void **state)
{
    char err[512], before[64];
    int files = 0;

    (void)state;
    snprintf(before, sizeof(before), "%s",
             sql1("SELECT max(applied_at)::text FROM schema_migrations", 0));
    files = count("SELECT count(*) FROM schema_migrations", NULL);
    assert_true(files >= 1);
    assert_int_equal(store_migrate(T.dsn, T.mig_dir, err, sizeof(err)), 0);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations", NULL),
                     files);
    assert_string_equal(
        sql1("SELECT max(applied_at)::text FROM schema_migrations", 0), before);
    assert_int_equal(store_migrate_check(T.dsn, T.mig_dir, err, sizeof(err)),
                     0);
    assert_string_equal(
        sql1("SELECT name FROM schema_migrations WHERE version = 1", 0),
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
    admin_exec(q);
    dsn_with_db(T.admin_dsn, db, dsn, sizeof(dsn));
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
    admin_exec(q);
}

static void
test_register_one_row_each(void **state)
{
    struct store *s = store_up(2, 2000, 0);
    char rec[2048];
    struct outcome o;
    PGresult *r;

    (void)state;
    record(rec, sizeof(rec), "a1000000000000000000000000000001",
           "8801712345678", "BD-13", "nid", "1234567890");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.duplicate, 0);
    assert_int_equal(o.rstatus, STORE_REC_PENDING);
    assert_string_equal(o.ref, "RA10000000");
    assert_int_equal(o.id_shared, 0);

    r = sql("SELECT sex, district, skills::text, status, birth_year, country,"
            " ref, channel, lang, name IS NULL, personal_enc"
            " FROM returnees WHERE msisdn = $1",
            1, "8801712345678");
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "f");
    assert_string_equal(PQgetvalue(r, 0, 1), "BD-13");
    assert_string_equal(PQgetvalue(r, 0, 2), "{mason,driver}");
    assert_string_equal(PQgetvalue(r, 0, 3), "pending");
    assert_string_equal(PQgetvalue(r, 0, 4), "1990");
    assert_string_equal(PQgetvalue(r, 0, 5), "SA");
    assert_string_equal(PQgetvalue(r, 0, 6), "RA10000000");
    assert_string_equal(PQgetvalue(r, 0, 7), "ussd");
    assert_string_equal(PQgetvalue(r, 0, 8), "bn");
    /* the name is personal (flows/flow.h): not in clear, but encrypted
     * with the msisdn bound, and it opens to the name */
    assert_string_equal(PQgetvalue(r, 0, 9), "t");
    {
        size_t enclen;
        unsigned char *enc = PQunescapeBytea(
            (const unsigned char *)PQgetvalue(r, 0, 10), &enclen);
        char plain[512];
        assert_non_null(enc);
        assert_int_equal(store_id_decrypt(s, enc, enclen, "8801712345678",
                                          plain, sizeof(plain)),
                         0);
        assert_string_equal(plain, "{\"name\":\"\xe0\xa6\xb0\xe0\xa6\xb9\xe0"
                                   "\xa6\xbf\xe0\xa6\xae\xe0\xa6\xbe\"}");
        /* moved to another row, it does not open */
        assert_int_equal(store_id_decrypt(s, enc, enclen, "8801712345679",
                                          plain, sizeof(plain)),
                         STORE_ECRYPTO);
        PQfreemem(enc);
    }
    PQclear(r);
    assert_int_equal(count("SELECT count(*) FROM submissions WHERE msisdn"
                           " = $1",
                           "8801712345678"),
                     1);
    r = sql("SELECT kind, answers->>'nid', answers::text, returnee_id IS NOT"
            " NULL FROM submissions WHERE idempotency_key = $1",
            1, "a1000000000000000000000000000001");
    assert_string_equal(PQgetvalue(r, 0, 0), "register");
    assert_string_equal(PQgetvalue(r, 0, 1), "***");
    assert_null(strstr(PQgetvalue(r, 0, 2), "1234567890"));
    assert_null(strstr(PQgetvalue(r, 0, 2), "\xe0\xa6\xb0\xe0\xa6\xb9"));
    assert_non_null(strstr(PQgetvalue(r, 0, 2), "\"name\": \"***\""));
    assert_string_equal(PQgetvalue(r, 0, 3), "t");
    PQclear(r);
    store_free(s);
}

/* Registrations waiting for the one connection share transactions
 * (batch 8): 20 sent at once, among them one PostgreSQL refuses (its start
 * time is out of range), a copy of an earlier one, and a second
 * registration of the same number.  The batch with the refused record rolls
 * back and each of its records runs alone: the refused one fails by itself
 * (STORE_EREFUSED), every other is stored once. */
static void
test_batch(void **state)
{
    struct store_config cfg = {.dsn = T.dsn,
                               .key_file = T.key_file,
                               .pool = 1,
                               .timeout_ms = 5000,
                               .batch = 8};
    struct outcome o[20];
    struct all_called all = {o, 20};
    struct want_conn w;
    char rec[20][2048], key[40], msisdn[16], err[256];
    struct store *s = store_new(&cfg, T.base, err, sizeof(err));

    (void)state;
    assert_non_null(s);
    assert_int_equal(store_start(s), 0);
    w.s = s;
    w.n = 1;
    assert_true(run_until(cond_connected, &w, 5000));
    for (int i = 0; i < 20; i++) {
        int k = i == 10 ? 3 : i, m = i == 15 ? 14 : k;
        snprintf(key, sizeof(key), "b%02d%029d", k, 0);
        snprintf(msisdn, sizeof(msisdn), "88019000000%02d", m);
        record(rec[i], sizeof(rec[i]), key, msisdn, "BD-02", "nid",
               "1987654321");
        if (i == 5) {
            char *t = strstr(rec[i], "1795343567");
            assert_non_null(t);
            memcpy(t, "9999999999", 10); /* far past year 294276 */
            memmove(t + 14, t + 10, strlen(t + 10) + 1);
            memcpy(t + 10, "9999", 4);
        }
    }
    memset(o, 0, sizeof(o));
    for (int i = 0; i < 20; i++)
        assert_int_equal(
            store_submit(s, rec[i], strlen(rec[i]), on_result, &o[i]), 0);
    assert_true(run_until(cond_all_called, &all, 10000));
    for (int i = 0; i < 20; i++) {
        assert_int_equal(o[i].calls, 1);
        if (i == 5) {
            assert_int_equal(o[i].status, STORE_EREFUSED);
            continue;
        }
        if (o[i].status != 0)
            fail_msg("record %d: %s", i, store_strerror(o[i].status));
        assert_int_equal(o[i].duplicate, i == 10);
    }
    assert_string_equal(o[10].ref, o[3].ref);
    assert_int_equal(count("SELECT count(*) FROM submissions WHERE msisdn"
                           " LIKE '8801900000%'",
                           NULL),
                     18);
    assert_int_equal(count("SELECT count(*) FROM returnees WHERE msisdn"
                           " LIKE '8801900000%'",
                           NULL),
                     17);
    assert_int_equal(count("SELECT count(*) FROM submissions WHERE msisdn"
                           " = '8801900000005'",
                           NULL),
                     0);
    assert_string_equal(sql1("SELECT ref FROM returnees WHERE msisdn ="
                             " '8801900000014'",
                             0),
                        o[15].ref);
    /* rows that share a transaction share xmin: 7 run alone after the
     * batch that failed, then two batches (8..15 and 16..19) */
    assert_int_equal(count("SELECT count(DISTINCT xmin::text) FROM"
                           " submissions WHERE msisdn LIKE '8801900000%'",
                           NULL),
                     9);
    store_free(s);
}

static void
test_retry_never_doubles(void **state)
{
    struct store *s = store_up(4, 3000, 0);
    const char *key = "a2000000000000000000000000000002";
    struct outcome o, many[10];
    struct all_called all = {many, 10};
    char rec[2048];
    int fresh = 0;

    (void)state;
    record(rec, sizeof(rec), key, "8801812345678", "BD-02", "passport",
           "AB1234567");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.duplicate, 0);
    /* The same completion again (lost reply, duplicate MO). */
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.duplicate, 1);
    assert_string_equal(o.ref, "RA20000000");
    assert_int_equal(o.rstatus, STORE_REC_PENDING);

    /* A new completion sent ten times at once, by "several workers". */
    record(rec, sizeof(rec), "a3000000000000000000000000000003",
           "8801812345678", "BD-02", "passport", "AB1234567");
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 10; i++)
        assert_int_equal(store_submit(s, rec, strlen(rec), on_result, &many[i]),
                         0);
    assert_true(run_until(cond_all_called, &all, 5000));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(many[i].calls, 1);
        assert_int_equal(many[i].status, 0);
        assert_string_equal(many[i].ref, "RA30000000");
        fresh += !many[i].duplicate;
    }
    assert_int_equal(fresh, 1);
    assert_int_equal(count("SELECT count(*) FROM returnees WHERE msisdn = $1",
                           "8801812345678"),
                     1);
    assert_int_equal(count("SELECT count(*) FROM submissions WHERE msisdn"
                           " = $1",
                           "8801812345678"),
                     2);
    store_free(s);
}

static void
test_reregistration_updates_profile(void **state)
{
    struct store *s = store_up(1, 2000, 0);
    char rec[2048];
    struct outcome o;

    (void)state;
    record(rec, sizeof(rec), "a4000000000000000000000000000004",
           "8801912345678", "BD-13", "nid", "5555666677");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    PQclear(sql("UPDATE returnees SET status = 'verified', verified_at ="
                " now(), verified_by = 7 WHERE msisdn = $1",
                1, "8801912345678"));
    record(rec, sizeof(rec), "a5000000000000000000000000000005",
           "8801912345678", "BD-47", "nid", "5555666677");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.duplicate, 0);
    assert_int_equal(o.rstatus, STORE_REC_PENDING);
    assert_string_equal(o.ref, "RA50000000");
    assert_string_equal(sql1("SELECT district || ' ' || status || ' ' ||"
                             " (verified_by IS NULL) FROM returnees WHERE"
                             " msisdn = $1",
                             1, "8801912345678"),
                        "BD-47 pending true");
    assert_int_equal(count("SELECT count(*) FROM returnees WHERE msisdn = $1",
                           "8801912345678"),
                     1);
    /* Both submissions kept, both linked to the one profile. */
    assert_int_equal(count("SELECT count(DISTINCT s.id) FROM submissions s"
                           " JOIN returnees r ON r.id = s.returnee_id WHERE"
                           " r.msisdn = $1",
                           "8801912345678"),
                     2);
    store_free(s);
}

static void
test_nid_encrypted_but_duplicate_found(void **state)
{
    struct store *s = store_up(1, 2000, 0);
    unsigned char hash[STORE_HASH_BYTES];
    char rec[2048], hex[2 * STORE_HASH_BYTES + 3], plain[64];
    struct outcome o;
    PGresult *r;

    (void)state;
    record(rec, sizeof(rec), "a6000000000000000000000000000006",
           "8801511111111", "BD-13", "nid", "19901234567890123");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.id_shared, 0);
    /* Neither the digits nor their text form are in the row. */
    assert_string_equal(
        sql1("SELECT position('19901234567890123'::bytea IN nid_enc) = 0"
             " AND position('19901234567890123'::bytea IN nid_hash) = 0"
             " AND position('19901234567890123' IN nid_enc::text) = 0"
             " AND length(nid_enc) > 40 AND length(nid_hash) = 32"
             " FROM returnees WHERE msisdn = $1",
             1, "8801511111111"),
        "t");
    assert_int_equal(count("SELECT count(*) FROM submissions WHERE"
                           " answers::text LIKE '%19901234567890123%'",
                           NULL),
                     0);
    /* A second number registers with the same NID (typed with spaces). */
    record(rec, sizeof(rec), "a7000000000000000000000000000007",
           "8801522222222", "BD-13", "nid", "1990 1234 5678 90123");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.id_shared, 1);
    assert_int_equal(store_id_hash(s, "nid", "19901234567890123", hash), 0);
    snprintf(hex, 3, "\\x");
    for (int i = 0; i < STORE_HASH_BYTES; i++)
        snprintf(hex + 2 + 2 * i, 3, "%02x", hash[i]);
    r = sql("SELECT msisdn FROM returnees WHERE nid_hash = $1::bytea ORDER"
            " BY msisdn",
            1, hex);
    assert_int_equal(PQntuples(r), 2);
    assert_string_equal(PQgetvalue(r, 0, 0), "8801511111111");
    assert_string_equal(PQgetvalue(r, 1, 0), "8801522222222");
    PQclear(r);
    /* The ciphertext decrypts with the key, for its own msisdn only. */
    r = PQexecParams(T.db, "SELECT nid_enc FROM returnees WHERE msisdn = $1", 1,
                     NULL, (const char *const[]){"8801511111111"}, NULL, NULL,
                     1);
    assert_int_equal(PQntuples(r), 1);
    assert_int_equal(
        store_id_decrypt(s, (const unsigned char *)PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0), "8801511111111", plain,
                         sizeof(plain)),
        0);
    assert_string_equal(plain, "19901234567890123");
    assert_int_equal(
        store_id_decrypt(s, (const unsigned char *)PQgetvalue(r, 0, 0),
                         (size_t)PQgetlength(r, 0, 0), "8801522222222", plain,
                         sizeof(plain)),
        STORE_ECRYPTO);
    PQclear(r);
    store_free(s);
}

static void
test_update_skills(void **state)
{
    struct store *s = store_up(1, 2000, 0);
    const char *key = "b1000000000000000000000000000001";
    char rec[2048];
    struct outcome o;

    (void)state;
    skills_record(rec, sizeof(rec), key, "8801300000000");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, STORE_ENOTREGISTERED);
    assert_int_equal(count("SELECT count(*) FROM submissions WHERE"
                           " idempotency_key = $1",
                           key),
                     0);
    /* On an existing record: only the skills change. */
    PQclear(sql("UPDATE returnees SET status = 'verified' WHERE msisdn = $1", 1,
                "8801712345678"));
    skills_record(rec, sizeof(rec), "b2000000000000000000000000000002",
                  "8801712345678");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.rstatus, STORE_REC_VERIFIED);
    assert_string_equal(o.ref, "RA10000000");
    assert_string_equal(sql1("SELECT skills::text || ' ' || status || ' ' ||"
                             " district FROM returnees WHERE msisdn = $1",
                             1, "8801712345678"),
                        "{farming,tailor,welder} verified BD-13");
    assert_string_equal(sql1("SELECT kind FROM submissions WHERE"
                             " idempotency_key = $1",
                             1, "b2000000000000000000000000000002"),
                        "update_skills");
    store_free(s);
}

static void
test_status_lookup(void **state)
{
    struct store *s = store_up(1, 2000, 0);
    struct outcome o = {0};

    (void)state;
    PQclear(sql("UPDATE returnees SET status = 'rejected', reject_reason ="
                " 'photo of NID unreadable' WHERE msisdn = $1",
                1, "8801812345678"));
    assert_int_equal(store_status(s, "8801812345678", on_result, &o), 0);
    assert_true(run_until(cond_called, &o, 5000));
    assert_int_equal(o.status, 0);
    assert_int_equal(o.rstatus, STORE_REC_REJECTED);
    assert_string_equal(o.reason, "photo of NID unreadable");
    assert_string_equal(o.ref, "RA30000000");
    assert_string_equal(o.lang, "bn"); /* the registration's language */

    memset(&o, 0, sizeof(o));
    assert_int_equal(store_status(s, "8801999999999", on_result, &o), 0);
    assert_true(run_until(cond_called, &o, 5000));
    assert_int_equal(o.status, STORE_ENOTFOUND);
    assert_int_equal(store_status(s, "88017'; DROP", on_result, &o),
                     STORE_EINVAL);
    store_free(s);
}

static void
test_bad_records_fail_now(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{\"flow\":\"register\",\"action\":\"submit_registration\"}",
        /* wrong sex code */
        "{\"flow\":\"register\",\"action\":\"submit_registration\",\"key\":"
        "\"c1000000000000000000000000000001\",\"ref\":\"ABCDEFGHJK\","
        "\"channel\":\"ussd\",\"msisdn\":\"8801712345678\",\"answers\":"
        "{\"sex\":\"q\"}}",
        /* msisdn not digits */
        "{\"flow\":\"register\",\"action\":\"submit_registration\",\"key\":"
        "\"c1000000000000000000000000000001\",\"ref\":\"ABCDEFGHJK\","
        "\"channel\":\"ussd\",\"msisdn\":\"+88017\",\"answers\":{}}",
        /* birth year a string */
        "{\"flow\":\"register\",\"action\":\"submit_registration\",\"key\":"
        "\"c1000000000000000000000000000001\",\"ref\":\"ABCDEFGHJK\","
        "\"channel\":\"ussd\",\"msisdn\":\"8801712345678\",\"answers\":"
        "{\"birth_year\":\"1990\"}}",
        /* NID with letters */
        "{\"flow\":\"register\",\"action\":\"submit_registration\",\"key\":"
        "\"c1000000000000000000000000000001\",\"ref\":\"ABCDEFGHJK\","
        "\"channel\":\"ussd\",\"msisdn\":\"8801712345678\",\"answers\":"
        "{\"nid\":\"12ab\"}}",
        /* unknown action */
        "{\"flow\":\"status\",\"action\":\"status_lookup\",\"key\":"
        "\"c1000000000000000000000000000001\",\"ref\":\"ABCDEFGHJK\","
        "\"channel\":\"ussd\",\"msisdn\":\"8801712345678\",\"answers\":{}}",
        /* an answer the action does not take (flows/flow.h): a flow
         * that renamed its field without store_as */
        "{\"flow\":\"register\",\"action\":\"submit_registration\",\"key\":"
        "\"c1000000000000000000000000000001\",\"ref\":\"ABCDEFGHJK\","
        "\"channel\":\"ussd\",\"msisdn\":\"8801712345678\",\"answers\":"
        "{\"national_id\":\"1234567890\"}}",
        /* an answer of another type than the action declares */
        "{\"flow\":\"register\",\"action\":\"submit_registration\",\"key\":"
        "\"c1000000000000000000000000000001\",\"ref\":\"ABCDEFGHJK\","
        "\"channel\":\"ussd\",\"msisdn\":\"8801712345678\",\"answers\":"
        "{\"skills\":\"mason\"}}",
        /* update_skills carries only skills */
        "{\"flow\":\"update_skills\",\"action\":\"update_skills\",\"key\":"
        "\"c1000000000000000000000000000001\",\"ref\":\"ABCDEFGHJK\","
        "\"channel\":\"ussd\",\"msisdn\":\"8801712345678\",\"answers\":"
        "{\"skills\":[\"mason\"],\"name\":\"x\"}}",
        /* update_skills without skills */
        "{\"flow\":\"update_skills\",\"action\":\"update_skills\",\"key\":"
        "\"c1000000000000000000000000000001\",\"ref\":\"ABCDEFGHJK\","
        "\"channel\":\"ussd\",\"msisdn\":\"8801712345678\",\"answers\":{}}",
    };
    struct store *s = store_up(1, 2000, 0);
    struct outcome o = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_submit(s, bad[i], strlen(bad[i]), on_result, &o),
                         STORE_EINVAL);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    assert_int_equal(o.calls, 0);
    assert_int_equal(count("SELECT count(*) FROM submissions WHERE"
                           " idempotency_key LIKE 'c1%'",
                           NULL),
                     0);
    store_free(s);
}

static void
test_deadline_then_reconnect(void **state)
{
    struct store *s = store_up(1, 300, 0);
    struct outcome slow = {0}, queued = {0}, after = {0};
    struct want_conn w = {s, 1};
    long t0 = itest_now_ms();

    (void)state;
    assert_int_equal(store_ping(s, 5000, on_result, &slow), 0);
    assert_int_equal(store_ping(s, 0, on_result, &queued), 0);
    assert_true(run_until(cond_called, &slow, 3000));
    assert_int_equal(slow.status, STORE_ETIMEDOUT);
    assert_true(itest_now_ms() - t0 < 1500);
    /* The one behind it had the same deadline while it waited. */
    assert_true(run_until(cond_called, &queued, 3000));
    assert_int_equal(queued.calls, 1);
    assert_true(run_until(cond_connected, &w, 5000));
    assert_int_equal(store_ping(s, 0, on_result, &after), 0);
    assert_true(run_until(cond_called, &after, 3000));
    assert_int_equal(after.status, 0);
    assert_int_equal(slow.calls, 1);
    store_free(s);
}

static void
test_backend_killed_then_reconnect(void **state)
{
    struct store *s = store_up(2, 5000, 0);
    struct outcome a = {0}, b = {0}, c = {0};
    struct want_conn w = {s, 2};
    char rec[2048];

    (void)state;
    assert_int_equal(store_ping(s, 3000, on_result, &a), 0);
    assert_int_equal(store_ping(s, 3000, on_result, &b), 0);
    /* Let both reach the server, then kill every session of ours. */
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    PQclear(sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <>"
                " pg_backend_pid()",
                0));
    assert_true(run_until(cond_called, &a, 3000));
    assert_true(run_until(cond_called, &b, 3000));
    assert_int_equal(a.status, STORE_EDOWN);
    assert_int_equal(b.status, STORE_EDOWN);
    assert_true(run_until(cond_connected, &w, 5000));
    record(rec, sizeof(rec), "a8000000000000000000000000000008",
           "8801600000000", "BD-13", "nid", "9999999999");
    assert_int_equal(store_submit(s, rec, strlen(rec), on_result, &c), 0);
    assert_true(run_until(cond_called, &c, 3000));
    assert_int_equal(c.status, 0);
    store_free(s);
}

static void
test_stop_calls_back_edown_once(void **state)
{
    struct store *s = store_up(2, 2000, 4);
    struct outcome o[6];
    char rec[2048];

    (void)state;
    memset(o, 0, sizeof(o));
    assert_int_equal(store_ping(s, 1000, on_result, &o[0]), 0);
    assert_int_equal(store_ping(s, 1000, on_result, &o[1]), 0);
    event_base_loop(T.base, EVLOOP_NONBLOCK); /* both on the wire */
    record(rec, sizeof(rec), "a9000000000000000000000000000009",
           "8801611111111", "BD-13", "nid", "8888888888");
    for (int i = 2; i < 6; i++)
        assert_int_equal(store_submit(s, rec, strlen(rec), on_result, &o[i]),
                         0);
    /* The waiting queue holds four: the next is refused now. */
    assert_int_equal(store_ping(s, 0, on_result, &o[0]), STORE_EBUSY);
    store_stop(s);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status, STORE_EDOWN);
    }
    assert_int_equal(store_connected(s), 0);
    assert_int_equal(store_ping(s, 0, on_result, &o[0]), STORE_EDOWN);
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
    struct outcome o = {0};
    char err[256];
    struct store *s = store_new(&cfg, T.base, err, sizeof(err));

    (void)state;
    assert_non_null(s);
    assert_int_equal(store_start(s), 0);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    assert_int_equal(store_connected(s), 0);
    assert_int_equal(store_ping(s, 0, on_result, &o), STORE_EDOWN);
    store_free(s);
    /* A missing key file is refused up front. */
    cfg.key_file = "/nonexistent/key";
    assert_null(store_new(&cfg, T.base, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/key"));
}

/* A queued record is sealed: nothing of it readable, it opens with the same
 * key only, and an altered copy does not open. */
static void
test_record_seal(void **state)
{
    struct store_config cfg = {.dsn = "host=127.0.0.1 port=1",
                               .key_file = T.key_file};
    char err[256], sealed[1024], plain[512];
    static const char rec[] = "{\"ref\":\"AB12CD34EF\",\"answers\":"
                              "{\"nid\":\"1234567890\"}}";
    struct store *s = store_new(&cfg, T.base, err, sizeof(err));

    (void)state;
    assert_non_null(s);
    int n = store_record_seal(s, rec, strlen(rec), sealed, sizeof(sealed));
    assert_true(n > 4);
    assert_memory_equal(sealed, "rq1:", 4);
    assert_null(strstr(sealed, "1234567890"));
    assert_null(strstr(sealed, "AB12CD34EF"));
    assert_int_equal(
        store_record_open(s, sealed, (size_t)n, plain, sizeof(plain)),
        (int)strlen(rec));
    assert_string_equal(plain, rec);
    sealed[n / 2] = sealed[n / 2] == 'A' ? 'B' : 'A';
    assert_int_equal(
        store_record_open(s, sealed, (size_t)n, plain, sizeof(plain)),
        STORE_ECRYPTO);
    assert_int_equal(
        store_record_open(s, rec, strlen(rec), plain, sizeof(plain)),
        STORE_EINVAL);
    assert_int_equal(store_record_seal(s, rec, strlen(rec), sealed, 10),
                     STORE_EINVAL);
    store_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_idempotent),
        cmocka_unit_test(test_migrate_changed_file_refused),
        cmocka_unit_test(test_migrate_schema_behind),
        cmocka_unit_test(test_register_one_row_each),
        cmocka_unit_test(test_retry_never_doubles),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_reregistration_updates_profile),
        cmocka_unit_test(test_nid_encrypted_but_duplicate_found),
        cmocka_unit_test(test_update_skills),
        cmocka_unit_test(test_status_lookup),
        cmocka_unit_test(test_bad_records_fail_now),
        cmocka_unit_test(test_deadline_then_reconnect),
        cmocka_unit_test(test_backend_killed_then_reconnect),
        cmocka_unit_test(test_stop_calls_back_edown_once),
        cmocka_unit_test(test_down_fails_now),
        cmocka_unit_test(test_record_seal),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
