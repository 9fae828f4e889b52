/*
 * test_sendsms.c -- SMS out through a stand-in for Kannel's sendsms,
 * against the real PostgreSQL tests/run started (the worker, the stand-in
 * and the four messages it answers: tests/lib/itest_sms.h).
 *
 * What the stand-in logged and the sms_out rows: the request as Kannel
 * gets it (POST, headers, the text's bytes and coding), a 503 tried
 * again, a 403 final, the counts in /metrics; then SIGTERM (the worker must
 * exit 0: under SAN=1 a leak fails it), and a worker without a database.  The
 * delivery reports back are test_dlr.c's.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/http.h>

#include "tests/lib/itest.h"
#include "tests/lib/itest_sms.h"

/* Bangla: coding 2, the UTF-8 bytes as they are, accepted and recorded. */
static void
t_bangla(void **state)
{
    char body[512], want[512];
    (void)state;
    itest_sms_log_field("REQ ", "to=+" ITEST_SMS_N_BN, "body", body,
                        sizeof(body));
    itest_sms_hex(ITEST_SMS_TXT_BN, want);
    assert_string_equal(body, want);
    assert_int_equal(itest_sms_log_count("REQ ", "to=+" ITEST_SMS_N_BN), 1);
    assert_true(itest_sms_log_count("REQ ", "to=+" ITEST_SMS_N_BN " ") == 1);
    assert_int_equal(
        itest_sms_log_count("to=+" ITEST_SMS_N_BN " ", "coding=2 "), 1);
    assert_int_equal(itest_sms_log_count("SENT to=" ITEST_SMS_N_BN, "status=0"),
                     1);
    itest_sms_assert_row(ITEST_SMS_N_BN, "text", ITEST_SMS_TXT_BN);
    itest_sms_assert_row(ITEST_SMS_N_BN, "coding", "2");
    itest_sms_assert_row(ITEST_SMS_N_BN, "kind", "confirmation");
    itest_sms_assert_row(ITEST_SMS_N_BN, "tries", "1");
    itest_sms_assert_row(ITEST_SMS_N_BN, "kannel_status", "202");
    itest_sms_assert_row(ITEST_SMS_N_BN, "kannel_answer",
                         "0: Accepted for delivery");
    itest_sms_assert_row(ITEST_SMS_N_BN,
                         "accepted_at IS NOT NULL AND failed_at IS NULL",
                         "true");
    itest_sms_assert_row(ITEST_SMS_N_BN, "created_at <= accepted_at", "true");
}

/* English: coding 0. */
static void
t_english(void **state)
{
    char body[512], want[512];
    (void)state;
    itest_sms_log_field("REQ ", "to=+" ITEST_SMS_N_EN, "body", body,
                        sizeof(body));
    itest_sms_hex(ITEST_SMS_TXT_EN, want);
    assert_string_equal(body, want);
    assert_int_equal(
        itest_sms_log_count("to=+" ITEST_SMS_N_EN " ", "coding=0 "), 2);
    itest_sms_assert_row(ITEST_SMS_N_EN, "coding", "0");
    itest_sms_assert_row(ITEST_SMS_N_EN, "kind", "reply");
}

/* POST to the sendsms path; credentials, sender, smsc, DLR in headers. */
static void
t_headers(void **state)
{
    char v[1024], id[40], want[512];
    (void)state;
    itest_sms_log_field("REQ ", "to=+" ITEST_SMS_N_BN, "method", v, sizeof(v));
    assert_int_equal(atoi(v), EVHTTP_REQ_POST);
    itest_sms_log_field("REQ ", "to=+" ITEST_SMS_N_BN, "uri", v, sizeof(v));
    assert_string_equal(v, "/cgi-bin/sendsms"); /* nothing in the query */
    itest_sms_log_field("REQ ", "to=+" ITEST_SMS_N_BN, "user", v, sizeof(v));
    assert_string_equal(v, "remi");
    assert_int_equal(
        itest_sms_log_count("to=+" ITEST_SMS_N_BN " ", "pass=pw 1&2 "), 1);
    itest_sms_log_field("REQ ", "to=+" ITEST_SMS_N_BN, "from", v, sizeof(v));
    assert_string_equal(v, itest_sms.cfg.short_code);
    itest_sms_log_field("REQ ", "to=+" ITEST_SMS_N_BN, "smsc", v, sizeof(v));
    assert_string_equal(v, itest_sms.cfg.sms_smsc);
    itest_sms_log_field("REQ ", "to=+" ITEST_SMS_N_BN, "mask", v, sizeof(v));
    assert_string_equal(v, "31");
    assert_int_equal(itest_sms_log_count("to=+" ITEST_SMS_N_BN " ",
                                         "ctype=text/plain; charset=UTF-8 "),
                     1);
    itest_sms_msg_id(ITEST_SMS_N_BN, id);
    snprintf(want, sizeof(want),
             "http://127.0.0.1:%d/kannel/dlr?id=%s&status=%%d&answer=%%A"
             "&ts=%%T&key=" ITEST_SMS_SECRET,
             itest_sms.port, id);
    itest_sms_log_field("REQ ", "to=+" ITEST_SMS_N_BN, "dlr", v, sizeof(v));
    assert_string_equal(v, want);
    itest_sms_assert_row(ITEST_SMS_N_BN, "id::text", id);
}

/* 503 then 202: tried again once, recorded with both tries. */
static void
t_retry(void **state)
{
    (void)state;
    assert_int_equal(itest_sms_log_count("REQ ", "to=+" ITEST_SMS_N_EN " "), 2);
    assert_int_equal(itest_sms_log_count("SENT to=" ITEST_SMS_N_EN, "status=0"),
                     1);
    itest_sms_assert_row(ITEST_SMS_N_EN, "tries", "2");
    itest_sms_assert_row(ITEST_SMS_N_EN, "kannel_status", "202");
    itest_sms_assert_row(ITEST_SMS_N_EN, "kannel_answer",
                         "3: Queued for later delivery");
    itest_sms_assert_row(ITEST_SMS_N_EN, "accepted_at IS NOT NULL", "true");
}

/* 403 is final: one try, the caller hears -1, the row says failed. */
static void
t_refused(void **state)
{
    (void)state;
    assert_int_equal(itest_sms_log_count("REQ ", "to=+" ITEST_SMS_N_DENY " "),
                     1);
    assert_int_equal(
        itest_sms_log_count("SENT to=" ITEST_SMS_N_DENY, "status=-1"), 1);
    itest_sms_assert_row(ITEST_SMS_N_DENY, "tries", "1");
    itest_sms_assert_row(ITEST_SMS_N_DENY, "kannel_status", "403");
    itest_sms_assert_row(ITEST_SMS_N_DENY,
                         "failed_at IS NOT NULL AND accepted_at IS NULL",
                         "true");
    /* refused arguments were never called back */
    assert_int_equal(itest_sms_log_count("SENT to=", NULL), 4);
}

/* GET /metrics: each message counted once, by kind and Kannel's final
 * answer (the 503 tried again counts as the 202 it came to); the sends
 * refused before Kannel not at all. */
static void
t_metrics(void **state)
{
    static char m[65536];
    static const char *const want[] = {
        "\nremigate_sms_out_total{kind=\"confirmation\",outcome=\"accepted\"} "
        "1\n",
        "\nremigate_sms_out_total{kind=\"reply\",outcome=\"accepted\"} 1\n",
        "\nremigate_sms_out_total{kind=\"notice\",outcome=\"accepted\"} 1\n",
        "\nremigate_sms_out_total{kind=\"reply\",outcome=\"refused\"} 1\n",
    };
    (void)state;
    assert_int_equal(itest_sms_fetch("/metrics", m, sizeof(m)), 200);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(m, want[i]) == NULL) fail_msg("no %s", want[i] + 1);
    assert_null(strstr(m, "outcome=\"not_sent\""));
    assert_null(strstr(m, "outcome=\"maybe\""));
    assert_non_null(strstr(m, "# TYPE remigate_sms_out_total counter\n"));
}

/* SIGTERM: the worker stops cleanly (exit 0; under SAN=1, no leak). */
static void
t_shutdown(void **state)
{
    (void)state;
    assert_int_equal(itest_child_wait(&itest_sms.worker, SIGTERM, 8000), 0);
}

/* No database: sending works, reports get 200. */
static void
t_no_database(void **state)
{
    char p[2048];
    (void)state;
    assert_int_equal(itest_sms_worker_start(0), 0);
    assert_true(itest_sms_log_wait("SENT to=" ITEST_SMS_N_BN, "status=0"));
    assert_true(itest_sms_log_wait("SENT to=" ITEST_SMS_N_EN, "status=0"));
    assert_true(itest_sms_log_wait("DLRFIRST code=200", NULL));
    itest_sms_dlr_path(ITEST_SMS_N_BN, "1", "", "", p, sizeof(p));
    assert_int_equal(itest_sms_get(p), 200);
    assert_int_equal(
        itest_sms_get("/kannel/dlr?id=x&status=1&key=" ITEST_SMS_SECRET), 400);
    assert_int_equal(itest_sms_get("/kannel/dlr?id=x&status=1&key=no"), 403);
    assert_int_equal(itest_child_wait(&itest_sms.worker, SIGTERM, 8000), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_bangla),   cmocka_unit_test(t_english),
        cmocka_unit_test(t_headers),  cmocka_unit_test(t_retry),
        cmocka_unit_test(t_refused),  cmocka_unit_test(t_metrics),
        cmocka_unit_test(t_shutdown), cmocka_unit_test(t_no_database),
    };
    return cmocka_run_group_tests(tests, itest_sms_setup, itest_sms_teardown);
}
