/*
 * test_dlr.c -- Kannel's delivery reports (GET /kannel/dlr) for the SMS
 * a worker sent through a stand-in for Kannel's sendsms, against the real
 * PostgreSQL tests/run started (the worker, the stand-in and its four
 * messages: tests/lib/itest_sms.h).
 *
 * The reports are played with the dlr-url the worker generated: one
 * before sendsms's answer, update, repeat, delivered-then-buffered,
 * malformed, wrong key, unknown id, many at once (they leave in
 * batches: store_sms.c), and postgres.sms_linger_ms's wait for company.  The
 * group teardown stops the worker with SIGTERM, which must exit 0 (under SAN=1,
 * without a leak).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "tests/lib/itest.h"
#include "tests/lib/itest_sms.h"

/* A report before sendsms's answer: the row was there, it took it. */
static void
t_dlr_before_answer(void **state)
{
    (void)state;
    assert_int_equal(itest_sms_log_count("DLRFIRST code=200", NULL), 1);
    itest_sms_assert_row(ITEST_SMS_N_EARLY, "dlr_state", "8");
    itest_sms_assert_row(ITEST_SMS_N_EARLY, "dlr_answer", "ACK/");
    itest_sms_assert_row(ITEST_SMS_N_EARLY,
                         "extract(epoch from dlr_smsc_at)::bigint",
                         "1795343567");
    itest_sms_assert_row(ITEST_SMS_N_EARLY, "accepted_at IS NOT NULL", "true");
    itest_sms_assert_row(ITEST_SMS_N_EARLY, "dlr_at <= accepted_at", "true");
}

/* Delivered: 200 and the row says so; the same report again changes
 * nothing; buffered after delivered does not go back. */
static void
t_dlr_update(void **state)
{
    char p[2048], at1[64], at2[64];
    (void)state;
    itest_sms_dlr_path(ITEST_SMS_N_BN, "8", "ACK%2F", "1795343600", p,
                       sizeof(p));
    assert_int_equal(itest_sms_get(p), 200);
    itest_sms_assert_row(ITEST_SMS_N_BN, "dlr_state", "8");
    itest_sms_dlr_path(
        ITEST_SMS_N_BN, "1",
        "id%3A1000008+sub%3A001+dlvrd%3A001+stat%3ADELIVRD+err%3A000+"
        "text%3A%E0%A6%86%E0%A6%AA",
        "1795343660", p, sizeof(p));
    assert_int_equal(itest_sms_get(p), 200);
    itest_sms_assert_row(ITEST_SMS_N_BN, "dlr_state", "1");
    itest_sms_assert_row(ITEST_SMS_N_BN, "dlr_answer",
                         "id:1000008 sub:001 dlvrd:001 stat:DELIVRD err:000 "
                         "text:\xE0\xA6\x86\xE0\xA6\xAA");
    itest_sms_assert_row(ITEST_SMS_N_BN,
                         "extract(epoch from dlr_smsc_at)::bigint",
                         "1795343660");
    itest_sms_row(ITEST_SMS_N_BN, "dlr_at", at1, sizeof(at1));

    /* the same report again */
    assert_int_equal(itest_sms_get(p), 200);
    itest_sms_row(ITEST_SMS_N_BN, "dlr_at", at2, sizeof(at2));
    assert_string_equal(at1, at2);
    itest_sms_assert_row(ITEST_SMS_N_BN, "dlr_state", "1");

    /* buffered, then submitted, after delivered */
    itest_sms_dlr_path(ITEST_SMS_N_BN, "4", "", "1795343700", p, sizeof(p));
    assert_int_equal(itest_sms_get(p), 200);
    itest_sms_dlr_path(ITEST_SMS_N_BN, "8", "ACK%2F", "1795343700", p,
                       sizeof(p));
    assert_int_equal(itest_sms_get(p), 200);
    itest_sms_assert_row(ITEST_SMS_N_BN, "dlr_state", "1");
    itest_sms_row(ITEST_SMS_N_BN, "dlr_at", at2, sizeof(at2));
    assert_string_equal(at1, at2);
    itest_sms_assert_row(ITEST_SMS_N_BN,
                         "extract(epoch from dlr_smsc_at)::bigint",
                         "1795343660");
    itest_sms_assert_row(ITEST_SMS_N_BN, "dlr_reports", "5");

    /* failed after delivered: the first final state stays */
    itest_sms_dlr_path(ITEST_SMS_N_BN, "2", "", "", p, sizeof(p));
    assert_int_equal(itest_sms_get(p), 200);
    itest_sms_assert_row(ITEST_SMS_N_BN, "dlr_state", "1");

    /* the one reported early goes on to delivered */
    itest_sms_dlr_path(ITEST_SMS_N_EARLY, "1", "", "", p, sizeof(p));
    assert_int_equal(itest_sms_get(p), 200);
    itest_sms_assert_row(ITEST_SMS_N_EARLY, "dlr_state", "1");
    itest_sms_assert_row(ITEST_SMS_N_EARLY, "dlr_smsc_at IS NULL", "true");
}

/* bad with each "@" replaced by id */
static void
subst_id(const char *bad, const char *id, char *out, size_t cap)
{
    size_t o = 0;
    for (; *bad && o + 40 < cap; bad++)
        if (*bad == '@')
            o += (size_t)snprintf(out + o, cap - o, "%s", id);
        else
            out[o++] = *bad;
    out[o] = '\0';
}

/* Malformed reports: 400, and nothing changes. */
static void
t_dlr_bad(void **state)
{
    char id[40], p[512];
    static const char *const bad[] = {
        "status=1&key=" ITEST_SMS_SECRET,                   /* no id */
        "id=12345&status=1&key=" ITEST_SMS_SECRET,          /* not a UUID */
        "id=@&key=" ITEST_SMS_SECRET,                       /* no status */
        "id=@&status=abc&key=" ITEST_SMS_SECRET,            /* not a number */
        "id=@&status=3&key=" ITEST_SMS_SECRET,              /* not a DLR type */
        "id=@&status=-1&key=" ITEST_SMS_SECRET,             /* negative */
        "id=@&status=1&ts=yesterday&key=" ITEST_SMS_SECRET, /* ts not a number
                                                             */
        "id=@&status=1&status=2&key=" ITEST_SMS_SECRET,     /* twice */
        "id=@&status=1&answer=%zz&key=" ITEST_SMS_SECRET,   /* bad escape */
        "id=@%00&status=1&key=" ITEST_SMS_SECRET,           /* NUL in the id */
    };
    (void)state;
    itest_sms_msg_id(ITEST_SMS_N_EN, id);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char q[256];
        subst_id(bad[i], id, q, sizeof(q));
        snprintf(p, sizeof(p), "/kannel/dlr?%s", q);
        if (itest_sms_get(p) != 400) fail_msg("expected 400 for %s", p);
    }
    itest_sms_assert_row(ITEST_SMS_N_EN,
                         "dlr_state IS NULL AND dlr_reports = 0", "true");
}

/* The key: missing or wrong is 403, and nothing changes. */
static void
t_dlr_key(void **state)
{
    char id[40], p[512];
    (void)state;
    itest_sms_msg_id(ITEST_SMS_N_EN, id);
    snprintf(p, sizeof(p), "/kannel/dlr?id=%s&status=1", id);
    assert_int_equal(itest_sms_get(p), 403);
    snprintf(p, sizeof(p), "/kannel/dlr?id=%s&status=1&key=wrong", id);
    assert_int_equal(itest_sms_get(p), 403);
    snprintf(p, sizeof(p),
             "/kannel/dlr?id=%s&status=1&key=" ITEST_SMS_SECRET "x", id);
    assert_int_equal(itest_sms_get(p), 403);
    itest_sms_assert_row(ITEST_SMS_N_EN,
                         "dlr_state IS NULL AND dlr_reports = 0", "true");
    snprintf(p, sizeof(p), "/kannel/dlr?id=%s&status=16&key=" ITEST_SMS_SECRET,
             id);
    assert_int_equal(itest_sms_get(p), 200);
    itest_sms_assert_row(ITEST_SMS_N_EN, "dlr_state", "16");
}

/* A UUID we never sent: 404. */
static void
t_dlr_unknown(void **state)
{
    (void)state;
    assert_int_equal(
        itest_sms_get("/kannel/dlr?id=0b5bd4f4-2a9e-4c1e-9d7a-"
                      "1f2e3d4c5b6a&status=1&key=" ITEST_SMS_SECRET),
        404);
}

/* Forty reports for one message at once (they leave in batches, several
 * to a transaction: store_sms.c): each answered 200, each counted once in
 * dlr_reports, and the state the first final one set. */
static void
t_dlr_burst(void **state)
{
    static const char *const types[] = {"8", "4", "1", "2"};
    static const char *const answers[] = {"ACK%2F", "stat%3AENROUTE",
                                          "stat%3ADELIVRD", "stat%3AEXPIRED"};
    char paths[40][2048], before[32], want[32];
    const char *pp[40];
    int status[40];
    (void)state;
    itest_sms_row(ITEST_SMS_N_EN, "dlr_reports", before, sizeof(before));
    for (int i = 0; i < 40; i++) {
        itest_sms_dlr_path(ITEST_SMS_N_EN, types[i % 4], answers[i % 4],
                           "1795343700", paths[i], sizeof(paths[i]));
        pp[i] = paths[i];
    }
    itest_sms_get_all(pp, 40, status);
    for (int i = 0; i < 40; i++)
        if (status[i] != 200)
            fail_msg("report %d (type %s): status %d", i, types[i % 4],
                     status[i]);
    snprintf(want, sizeof(want), "%d", atoi(before) + 40);
    itest_sms_assert_row(ITEST_SMS_N_EN, "dlr_reports", want);
    itest_sms_assert_row(ITEST_SMS_N_EN, "dlr_state IN (1, 2)", "true");
    itest_sms_assert_row(ITEST_SMS_N_EN,
                         "(dlr_state = 1) = (dlr_answer = 'stat:DELIVRD') AND "
                         "(dlr_state = 2) = (dlr_answer = 'stat:EXPIRED')",
                         "true");
}

/* Reports for many messages at once (30 messages, 2 reports each, and 2
 * for messages we do not know): they leave in batches, several to a
 * transaction (store_sms.c), yet each is answered as alone -- 200, or 404
 * for the unknown -- and each row ends delivered, counted twice, with its
 * own receipt (quotes, backslashes, braces, commas and Bangla taken as
 * they are) and SMSC time. */
static void
t_dlr_many(void **state)
{
    enum { NMSG = 30, NREP = 2 * NMSG + 2 };
    static const char *const receipt[] = {"stat%3ADELIVRD+%22q%22",
                                          "a%5Cb%5C%5C",
                                          "%7B1%2C2%7D+%22%7B%7D%22",
                                          "%E0%A6%86%E0%A6%AA+NULL",
                                          "",
                                          "%2C%2C"};
    static const char *const stored[] = {"stat:DELIVRD \"q\"",
                                         "a\\b\\\\",
                                         "{1,2} \"{}\"",
                                         "\xE0\xA6\x86\xE0\xA6\xAA NULL",
                                         "",
                                         ",,"};
    char ids[NMSG][40], paths[NREP][2048], ts[24], q[512];
    const char *pp[NREP];
    int status[NREP];
    PGresult *r;
    (void)state;
    r = PQexec(itest_sms.db,
               "INSERT INTO sms_out (id, msisdn, kind, text, coding)"
               " SELECT gen_random_uuid(), '8801711000099', 'reply',"
               " 'x', 0 FROM generate_series(1, 30)"
               " RETURNING id::text");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), NMSG);
    for (int i = 0; i < NMSG; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s", PQgetvalue(r, i, 0));
        if (i % 7 == 3) /* an id in capitals is the same message */
            for (char *c = ids[i]; *c; c++)
                if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A');
    }
    PQclear(r);
    for (int i = 0; i < NMSG; i++) {
        snprintf(ts, sizeof(ts), "%d", 1795343000 + i);
        snprintf(paths[2 * i], sizeof(paths[0]),
                 "/kannel/"
                 "dlr?id=%s&status=8&answer=ACK%%2F&ts=&key=" ITEST_SMS_SECRET,
                 ids[i]);
        snprintf(
            paths[2 * i + 1], sizeof(paths[0]),
            "/kannel/dlr?id=%s&status=1&answer=%s&ts=%s&key=" ITEST_SMS_SECRET,
            ids[i], receipt[i % 6], ts);
    }
    snprintf(paths[NREP - 2], sizeof(paths[0]),
             "/kannel/dlr?id=6f1e2d3c-4b5a-4968-8776-655443322110&status=1"
             "&key=" ITEST_SMS_SECRET);
    snprintf(paths[NREP - 1], sizeof(paths[0]),
             "/kannel/dlr?id=6f1e2d3c-4b5a-4968-8776-655443322111&status=8"
             "&answer=%%22x%%22&key=" ITEST_SMS_SECRET);
    for (int i = 0; i < NREP; i++)
        pp[i] = paths[i];
    itest_sms_get_all(pp, NREP, status);
    for (int i = 0; i < NREP; i++)
        if (status[i] != (i < 2 * NMSG ? 200 : 404))
            fail_msg("report %d: status %d", i, status[i]);
    for (int i = 0; i < NMSG; i++) {
        const char *params[1] = {ids[i]};
        snprintf(q, sizeof(q),
                 "SELECT dlr_reports, dlr_state, dlr_answer,"
                 " extract(epoch FROM dlr_smsc_at)::bigint"
                 " FROM sms_out WHERE id = $1::uuid");
        r = PQexecParams(itest_sms.db, q, 1, NULL, params, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(r), 1);
        snprintf(ts, sizeof(ts), "%d", 1795343000 + i);
        if (strcmp(PQgetvalue(r, 0, 0), "2") != 0 ||
            strcmp(PQgetvalue(r, 0, 1), "1") != 0 ||
            strcmp(PQgetvalue(r, 0, 2), stored[i % 6]) != 0 ||
            strcmp(PQgetvalue(r, 0, 3), ts) != 0)
            fail_msg("message %d: reports %s, state %s, answer \"%s\" "
                     "(want \"%s\"), smsc time %s",
                     i, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
                     PQgetvalue(r, 0, 2), stored[i % 6], PQgetvalue(r, 0, 3));
        PQclear(r);
    }
}

/* The number sql (one row, one column) gives with params. */
static int
db_count(const char *sql, int n, const char *const *params)
{
    PGresult *r =
        PQexecParams(itest_sms.db, sql, n, NULL, params, NULL, NULL, 0);
    int v;
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* How many transactions wrote the reports of ids a and b: the distinct
 * dlr_at (now(), the transaction's start) of their two rows. */
static int
linger_txs(const char *a, const char *b)
{
    const char *params[2] = {a, b};
    return db_count("SELECT count(DISTINCT dlr_at) FROM sms_out"
                    " WHERE id IN ($1::uuid, $2::uuid)"
                    " AND dlr_at IS NOT NULL",
                    2, params);
}

/* Three new messages (rows inserted as the worker would) and a
 * "delivered" report's path for each in p[]. */
static void
linger_rows(char ids[3][40], char p[3][2048])
{
    PGresult *r = PQexec(itest_sms.db,
                         "INSERT INTO sms_out (id, msisdn, kind, text, coding)"
                         " SELECT gen_random_uuid(), '8801711000098', 'reply',"
                         " 'x', 0 FROM generate_series(1, 3)"
                         " RETURNING id::text");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 3);
    for (int i = 0; i < 3; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s", PQgetvalue(r, i, 0));
        snprintf(p[i], sizeof(p[i]),
                 "/kannel/dlr?id=%s&status=1&answer=stat%%3ADELIVRD"
                 "&key=" ITEST_SMS_SECRET,
                 ids[i]);
    }
    PQclear(r);
}

/* Reports for ids 1 and 2 at once: both 200; how many transactions
 * wrote them. */
static int
linger_pair(char ids[3][40], char p[3][2048])
{
    const char *pp[2] = {p[1], p[2]};
    int status[2];
    itest_sms_get_all(pp, 2, status);
    assert_int_equal(status[0], 200);
    assert_int_equal(status[1], 200);
    return linger_txs(ids[1], ids[2]);
}

/* now() of the database, as text, in out. */
static void
db_now(char *out, size_t cap)
{
    PGresult *r = PQexec(itest_sms.db, "SELECT now()::text");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

/* How many of the four messages a worker's start sends, made after
 * since, have Kannel's verdict in their row. */
static int
start_verdicts(const char *since)
{
    const char *params[1] = {since};
    return db_count("SELECT count(*) FILTER (WHERE accepted_at IS NOT NULL"
                    " OR failed_at IS NOT NULL) FROM sms_out"
                    " WHERE created_at > $1::timestamptz"
                    " AND msisdn IN ('" ITEST_SMS_N_BN "', '" ITEST_SMS_N_EN
                    "', '" ITEST_SMS_N_EARLY "', '" ITEST_SMS_N_DENY "')",
                    1, params);
}

/* The worker again, with postgres.sms_linger_ms = ms, once the writes
 * its start brings are done -- each of its four messages' rows has Kannel's
 * verdict (the last writes of the start: the early report is answered
 * only once written) -- so that nothing lingers. */
static void
linger_worker(long ms)
{
    char since[64];
    int done = 0;

    if (itest_sms.worker > 0)
        assert_int_equal(itest_child_wait(&itest_sms.worker, SIGTERM, 8000), 0);
    db_now(since, sizeof(since));
    itest_sms.cfg.pg_sms_linger_ms = ms;
    assert_int_equal(itest_sms_worker_start(1), 0);
    assert_true(itest_sms_log_wait("DLRFIRST code=200", NULL));
    for (long t0 = itest_now_ms(); !done && itest_now_ms() - t0 < 8000;) {
        done = start_verdicts(since) == 4;
        if (!done) usleep(20 * 1000);
    }
    if (!done) fail_msg("the worker's start did not write its four verdicts");
}

/* postgres.sms_linger_ms: a report that finds no transaction of reports
 * out waits that long for others, and two a moment apart share one
 * transaction; with 0 a report leaves at once, in a transaction of its
 * own.  Each is still answered only once its row is written. */
static void
t_dlr_linger(void **state)
{
    char ids[3][40], p[3][2048];
    long t0, took, was = itest_sms.cfg.pg_sms_linger_ms;
    (void)state;

    linger_worker(400);
    linger_rows(ids, p);
    t0 = itest_now_ms();
    assert_int_equal(itest_sms_get(p[0]), 200);
    took = itest_now_ms() - t0;
    if (took < 400) fail_msg("a lone report answered after %ld ms", took);
    assert_int_equal(linger_txs(ids[0], ids[0]), 1); /* written */
    assert_int_equal(linger_pair(ids, p), 1);

    linger_worker(0);
    linger_rows(ids, p);
    assert_int_equal(linger_pair(ids, p), 2);

    linger_worker(was);
}

/* SIGTERM while Kannel's answers wait for company (a linger of 1 s) and
 * one message waits to be tried again (503 first): the worker writes
 * them all before it exits. */
static void
t_dlr_stop_drains(void **state)
{
    char since[64];
    long was = itest_sms.cfg.pg_sms_linger_ms;
    (void)state;

    assert_int_equal(itest_child_wait(&itest_sms.worker, SIGTERM, 8000), 0);
    db_now(since, sizeof(since));
    itest_sms.cfg.pg_sms_linger_ms = 1000;
    assert_int_equal(itest_sms_worker_start(1), 0);
    assert_true(itest_sms_log_wait("SENT to=" ITEST_SMS_N_BN, NULL));
    assert_int_equal(itest_child_wait(&itest_sms.worker, SIGTERM, 8000), 0);
    assert_int_equal(start_verdicts(since), 4);
    linger_worker(was);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_dlr_before_answer), cmocka_unit_test(t_dlr_update),
        cmocka_unit_test(t_dlr_bad),           cmocka_unit_test(t_dlr_key),
        cmocka_unit_test(t_dlr_unknown),       cmocka_unit_test(t_dlr_burst),
        cmocka_unit_test(t_dlr_many),          cmocka_unit_test(t_dlr_linger),
        cmocka_unit_test(t_dlr_stop_drains),
    };
    return cmocka_run_group_tests(tests, itest_sms_setup, itest_sms_teardown);
}
