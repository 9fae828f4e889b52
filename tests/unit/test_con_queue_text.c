/*
 * test_con_queue_text.c -- the queue page's registration time and age
 * band made in C (console/con_queue.c): con_utc_text() writes what
 * PostgreSQL's to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
 * wrote for a table of times (the text taken from PostgreSQL 15: the
 * epoch, a microsecond either side of it, leap days, century years,
 * years BC, five- and six-digit years) and what gmtime_r() gives for
 * 200,000 random times of the years 1 to 9999; con_age_band() what
 * CON_AGE_BAND_SQL's CASE gave for the ages -3 to 70.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "console/con_int.h"

static void
test_utc_table(void **state)
{
    /* us, to_char()'s text: psql, SELECT (extract(epoch FROM t) *
     * 1000000)::bigint, to_char(t AT TIME ZONE 'UTC', ...) */
    static const struct {
        long long us;
        const char *text;
    } t[] = {
        {0LL, "1970-01-01T00:00:00Z"},
        {-1LL, "1969-12-31T23:59:59Z"},
        {999999LL, "1970-01-01T00:00:00Z"},
        {-1000000LL, "1969-12-31T23:59:59Z"},
        {-1000001LL, "1969-12-31T23:59:58Z"},
        {951782400000000LL, "2000-02-29T00:00:00Z"},
        {951868799999999LL, "2000-02-29T23:59:59Z"},
        {951868800000000LL, "2000-03-01T00:00:00Z"},
        {-2203891201000000LL, "1900-02-28T23:59:59Z"},
        {-2203891200000000LL, "1900-03-01T00:00:00Z"},
        {4107542399999999LL, "2100-02-28T23:59:59Z"},
        {4107542400000000LL, "2100-03-01T00:00:00Z"},
        {1709210096789000LL, "2024-02-29T12:34:56Z"},
        {1735689599999999LL, "2024-12-31T23:59:59Z"},
        {1735689600000000LL, "2025-01-01T00:00:00Z"},
        {1796314085123456LL, "2026-12-03T16:08:05Z"},
        {2147483648000000LL, "2038-01-19T03:14:08Z"},
        {-11670998400000000LL, "1600-02-29T00:00:00Z"},
        {-62135596800000000LL, "0001-01-01T00:00:00Z"},
        {-62135596801000000LL, "0001-12-31T23:59:59Z"},
        {-62162085600000000LL, "0001-02-29T10:00:00Z"},
        {-63517780800000000LL, "0044-03-15T12:00:00Z"},
        {-74784902400000000LL, "0401-02-29T00:00:00Z"},
        {-210835180800000000LL, "4713-11-24T00:00:00Z"},
        {253402300799999999LL, "9999-12-31T23:59:59Z"},
        {253402300800000000LL, "10000-01-01T00:00:00Z"},
        {327416976550500000LL, "12345-06-07T08:09:10Z"},
        {3093527980799000000LL, "99999-12-31T23:59:59Z"},
        {3093527980800000000LL, "100000-01-01T00:00:00Z"},
        {9152494300800000000LL, "292000-12-31T00:00:00Z"},
        {-999999LL, "1969-12-31T23:59:59Z"},
    };
    char out[CON_UTC_TEXT_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_int_equal(con_utc_text(t[i].us, out), 0);
        assert_string_equal(out, t[i].text);
    }
    /* before PostgreSQL's first timestamp: refused, out empty */
    assert_int_equal(con_utc_text(-210866803200000001LL, out), -1);
    assert_string_equal(out, "");
    assert_int_equal(con_utc_text(INT64_MIN, out), -1);
    /* the last bigint: a time PostgreSQL has (before 294277) */
    assert_int_equal(con_utc_text(INT64_MAX, out), 0);
    assert_int_equal(strncmp(out, "294247-", 7), 0);
}

static void
test_utc_random(void **state)
{
    /* 0001-01-01 and 10000-01-01, seconds from 1970 */
    const long long lo = -62135596800LL, hi = 253402300800LL;
    char out[CON_UTC_TEXT_MAX], want[64];

    (void)state;
    srand(20261203);
    for (int i = 0; i < 200000; i++) {
        unsigned long long r = ((unsigned long long)rand() << 40) ^
                               ((unsigned long long)rand() << 20) ^
                               (unsigned long long)rand();
        /* half anywhere in the years 1-9999, half within 40 years of
         * 2000 */
        long long s =
            i % 2 ? lo + (long long)(r % (unsigned long long)(hi - lo))
                  : 946684800LL - 631152000LL + (long long)(r % 1262304000ULL);
        long long us = s * 1000000 + (long long)(r % 1000000);
        time_t tt = (time_t)s;
        struct tm tm;

        assert_non_null(gmtime_r(&tt, &tm));
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        assert_int_equal(con_utc_text(us, out), 0);
        assert_string_equal(out, want);
    }
}

static void
test_age_band(void **state)
{
    /* CON_AGE_BAND_SQL's CASE for a = -3 .. 70 (PostgreSQL 15) */
    static const char *const want[] = {
        "<18",   "<18",   "<18",   "<18",   "<18",   "<18",   "<18",   "<18",
        "<18",   "<18",   "<18",   "<18",   "<18",   "<18",   "<18",   "<18",
        "<18",   "<18",   "<18",   "<18",   "<18",   "18-24", "18-24", "18-24",
        "18-24", "18-24", "18-24", "18-24", "25-29", "25-29", "25-29", "25-29",
        "25-29", "30-34", "30-34", "30-34", "30-34", "30-34", "35-39", "35-39",
        "35-39", "35-39", "35-39", "40-44", "40-44", "40-44", "40-44", "40-44",
        "45-49", "45-49", "45-49", "45-49", "45-49", "50-54", "50-54", "50-54",
        "50-54", "50-54", "55-59", "55-59", "55-59", "55-59", "55-59", "60+",
        "60+",   "60+",   "60+",   "60+",   "60+",   "60+",   "60+",   "60+",
        "60+",   "60+",
    };
    char out[CON_AGE_BAND_MAX];

    (void)state;
    for (int a = -3; a <= 70; a++) {
        con_age_band(a, out);
        assert_string_equal(out, want[a + 3]);
    }
    con_age_band(-2000, out);
    assert_string_equal(out, "<18");
    con_age_band(1200, out);
    assert_string_equal(out, "60+");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc_table),
        cmocka_unit_test(test_utc_random),
        cmocka_unit_test(test_age_band),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
