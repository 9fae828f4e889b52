/*
 * test_store.c -- store/ against a real PostgreSQL (PG_DSN from the
 * environment; tests/run starts one), in a database of the test's own
 * (tests/lib/itest_pg.h): a registration makes one row in each table, a
 * retry never a second, batches, a registration again updates the
 * profile, ID numbers are sealed and their twins still found, skills and
 * status, bad records fail at once, queued records are sealed.  When
 * PostgreSQL is slow, killed or not there: test_store_down.c; migrations:
 * test_store_migrate.c.  The event loop is run until a condition holds,
 * with a deadline -- never a bare sleep.
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
    return itest_env_new(&T, "test_store", "remigate_store");
}

static int
group_teardown(void **state)
{
    (void)state;
    return itest_env_free(&T);
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
static struct itest_rec
submit_wait(struct store *s, const char *rec)
{
    struct itest_rec o = {0};
    int rc = store_submit(s, rec, strlen(rec), itest_rec_cb, &o);

    if (rc != 0) fail_msg("store_submit: %s", store_strerror(rc));
    assert_int_equal(o.calls, 0); /* never from inside the call */
    assert_true(run_until(itest_rec_called, &o, 5000));
    assert_int_equal(o.calls, 1);
    return o;
}

static int
count(const char *q, const char *param)
{
    return atoi(param ? itest_sql1(&T, q, 1, param) : itest_sql1(&T, q, 0));
}

/* ------------------------------------------------------------------------ */

static void
test_register_one_row_each(void **state)
{
    struct store *s = itest_store_up(&T, 2, 2000, 0);
    char rec[2048];
    struct itest_rec o;
    PGresult *r;

    (void)state;
    itest_record(rec, sizeof(rec), "a1000000000000000000000000000001",
                 "8801712345678", "BD-13", "nid", "1234567890");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.duplicate, 0);
    assert_int_equal(o.rstatus, STORE_REC_PENDING);
    assert_string_equal(o.ref, "RA10000000");
    assert_int_equal(o.id_shared, 0);

    r = itest_sql(
        &T,
        "SELECT sex, district, skills::text, status, birth_year, country,"
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
    r = itest_sql(
        &T,
        "SELECT kind, answers->>'nid', answers::text, returnee_id IS NOT"
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
    struct itest_rec o[20];
    struct itest_rec_all all = {o, 20};
    struct itest_store_want w;
    char rec[20][2048], key[40], msisdn[16], err[256];
    struct store *s = store_new(&cfg, T.base, err, sizeof(err));

    (void)state;
    assert_non_null(s);
    assert_int_equal(store_start(s), 0);
    w.s = s;
    w.n = 1;
    assert_true(run_until(itest_store_connected, &w, 5000));
    for (int i = 0; i < 20; i++) {
        int k = i == 10 ? 3 : i, m = i == 15 ? 14 : k;
        snprintf(key, sizeof(key), "b%02d%029d", k, 0);
        snprintf(msisdn, sizeof(msisdn), "88019000000%02d", m);
        itest_record(rec[i], sizeof(rec[i]), key, msisdn, "BD-02", "nid",
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
            store_submit(s, rec[i], strlen(rec[i]), itest_rec_cb, &o[i]), 0);
    assert_true(run_until(itest_rec_all_called, &all, 10000));
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
    assert_string_equal(itest_sql1(&T,
                                   "SELECT ref FROM returnees WHERE msisdn ="
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
    struct store *s = itest_store_up(&T, 4, 3000, 0);
    const char *key = "a2000000000000000000000000000002";
    struct itest_rec o, many[10];
    struct itest_rec_all all = {many, 10};
    char rec[2048];
    int fresh = 0;

    (void)state;
    itest_record(rec, sizeof(rec), key, "8801812345678", "BD-02", "passport",
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
    itest_record(rec, sizeof(rec), "a3000000000000000000000000000003",
                 "8801812345678", "BD-02", "passport", "AB1234567");
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 10; i++)
        assert_int_equal(
            store_submit(s, rec, strlen(rec), itest_rec_cb, &many[i]), 0);
    assert_true(run_until(itest_rec_all_called, &all, 5000));
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
    struct store *s = itest_store_up(&T, 1, 2000, 0);
    char rec[2048];
    struct itest_rec o;

    (void)state;
    itest_record(rec, sizeof(rec), "a4000000000000000000000000000004",
                 "8801912345678", "BD-13", "nid", "5555666677");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    PQclear(itest_sql(&T,
                      "UPDATE returnees SET status = 'verified', verified_at ="
                      " now(), verified_by = 7 WHERE msisdn = $1",
                      1, "8801912345678"));
    itest_record(rec, sizeof(rec), "a5000000000000000000000000000005",
                 "8801912345678", "BD-47", "nid", "5555666677");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.duplicate, 0);
    assert_int_equal(o.rstatus, STORE_REC_PENDING);
    assert_string_equal(o.ref, "RA50000000");
    assert_string_equal(itest_sql1(&T,
                                   "SELECT district || ' ' || status || ' ' ||"
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
    struct store *s = itest_store_up(&T, 1, 2000, 0);
    unsigned char hash[STORE_HASH_BYTES];
    char rec[2048], hex[2 * STORE_HASH_BYTES + 3], plain[64];
    struct itest_rec o;
    PGresult *r;

    (void)state;
    itest_record(rec, sizeof(rec), "a6000000000000000000000000000006",
                 "8801511111111", "BD-13", "nid", "19901234567890123");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.id_shared, 0);
    /* Neither the digits nor their text form are in the row. */
    assert_string_equal(
        itest_sql1(&T,
                   "SELECT position('19901234567890123'::bytea IN nid_enc) = 0"
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
    itest_record(rec, sizeof(rec), "a7000000000000000000000000000007",
                 "8801522222222", "BD-13", "nid", "1990 1234 5678 90123");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.id_shared, 1);
    assert_int_equal(store_id_hash(s, "nid", "19901234567890123", hash), 0);
    snprintf(hex, 3, "\\x");
    for (int i = 0; i < STORE_HASH_BYTES; i++)
        snprintf(hex + 2 + 2 * i, 3, "%02x", hash[i]);
    r = itest_sql(
        &T,
        "SELECT msisdn FROM returnees WHERE nid_hash = $1::bytea ORDER"
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
    struct store *s = itest_store_up(&T, 1, 2000, 0);
    const char *key = "b1000000000000000000000000000001";
    char rec[2048];
    struct itest_rec o;

    (void)state;
    skills_record(rec, sizeof(rec), key, "8801300000000");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, STORE_ENOTREGISTERED);
    assert_int_equal(count("SELECT count(*) FROM submissions WHERE"
                           " idempotency_key = $1",
                           key),
                     0);
    /* On an existing record: only the skills change. */
    PQclear(itest_sql(
        &T, "UPDATE returnees SET status = 'verified' WHERE msisdn = $1", 1,
        "8801712345678"));
    skills_record(rec, sizeof(rec), "b2000000000000000000000000000002",
                  "8801712345678");
    o = submit_wait(s, rec);
    assert_int_equal(o.status, 0);
    assert_int_equal(o.rstatus, STORE_REC_VERIFIED);
    assert_string_equal(o.ref, "RA10000000");
    assert_string_equal(
        itest_sql1(&T,
                   "SELECT skills::text || ' ' || status || ' ' ||"
                   " district FROM returnees WHERE msisdn = $1",
                   1, "8801712345678"),
        "{farming,tailor,welder} verified BD-13");
    assert_string_equal(itest_sql1(&T,
                                   "SELECT kind FROM submissions WHERE"
                                   " idempotency_key = $1",
                                   1, "b2000000000000000000000000000002"),
                        "update_skills");
    store_free(s);
}

static void
test_status_lookup(void **state)
{
    struct store *s = itest_store_up(&T, 1, 2000, 0);
    struct itest_rec o = {0};

    (void)state;
    PQclear(
        itest_sql(&T,
                  "UPDATE returnees SET status = 'rejected', reject_reason ="
                  " 'photo of NID unreadable' WHERE msisdn = $1",
                  1, "8801812345678"));
    assert_int_equal(store_status(s, "8801812345678", itest_rec_cb, &o), 0);
    assert_true(run_until(itest_rec_called, &o, 5000));
    assert_int_equal(o.status, 0);
    assert_int_equal(o.rstatus, STORE_REC_REJECTED);
    assert_string_equal(o.reason, "photo of NID unreadable");
    assert_string_equal(o.ref, "RA30000000");
    assert_string_equal(o.lang, "bn"); /* the registration's language */

    memset(&o, 0, sizeof(o));
    assert_int_equal(store_status(s, "8801999999999", itest_rec_cb, &o), 0);
    assert_true(run_until(itest_rec_called, &o, 5000));
    assert_int_equal(o.status, STORE_ENOTFOUND);
    assert_int_equal(store_status(s, "88017'; DROP", itest_rec_cb, &o),
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
    struct store *s = itest_store_up(&T, 1, 2000, 0);
    struct itest_rec o = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            store_submit(s, bad[i], strlen(bad[i]), itest_rec_cb, &o),
            STORE_EINVAL);
    event_base_loop(T.base, EVLOOP_NONBLOCK);
    assert_int_equal(o.calls, 0);
    assert_int_equal(count("SELECT count(*) FROM submissions WHERE"
                           " idempotency_key LIKE 'c1%'",
                           NULL),
                     0);
    store_free(s);
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
        cmocka_unit_test(test_register_one_row_each),
        cmocka_unit_test(test_retry_never_doubles),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_reregistration_updates_profile),
        cmocka_unit_test(test_nid_encrypted_but_duplicate_found),
        cmocka_unit_test(test_update_skills),
        cmocka_unit_test(test_status_lookup),
        cmocka_unit_test(test_bad_records_fail_now),
        cmocka_unit_test(test_record_seal),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
