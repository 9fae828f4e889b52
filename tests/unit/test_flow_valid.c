/*
 * test_flow_valid.c -- the validators of free-text answers, table by table,
 * at the edges of every length and range, and on random bytes.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "flows/flow.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))
#define YEAR     2026

#define ZWJ  "\xe2\x80\x8d"
#define ZWNJ "\xe2\x80\x8c"

struct row {
    const char *v; /* validator */
    const struct flow_vparam *p;
    const char *in;
    const char *out; /* canonical value when valid */
    const char *why; /* NULL: valid */
};

/* Run a table; every row names what it expects, valid or not. */
static void
run_rows(const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char out[256];
        memset(out, 'Z', sizeof(out));
        out[sizeof(out) - 1] = '\0';
        const char *why = flow_validate(rows[i].v, rows[i].p, rows[i].in, YEAR,
                                        out, sizeof(out));
        if ((why == NULL) != (rows[i].why == NULL) ||
            (why != NULL && strcmp(why, rows[i].why) != 0))
            fail_msg("row %zu %s '%s': got %s, want %s", i, rows[i].v,
                     rows[i].in, why ? why : "ok",
                     rows[i].why ? rows[i].why : "ok");
        if (why == NULL && strcmp(out, rows[i].out) != 0)
            fail_msg("row %zu %s '%s': stored '%s', want '%s'", i, rows[i].v,
                     rows[i].in, out, rows[i].out);
        if (why != NULL && out[0] != '\0')
            fail_msg("row %zu %s '%s': refused but out is '%s'", i, rows[i].v,
                     rows[i].in, out);
    }
}

/* n copies of s. */
static char *
repeat(char *buf, size_t cap, const char *s, int n)
{
    size_t len = strlen(s), o = 0;
    for (int i = 0; i < n && o + len < cap; i++, o += len)
        memcpy(buf + o, s, len);
    buf[o] = '\0';
    return buf;
}

static void
t_name(void **state)
{
    static char lat1[8], lat2[8], lat60[64], lat61[64];
    static char bn1[8], bn2[8], bn60[256], bn61[256], bn60sp[256];
    (void)state;
    repeat(lat1, sizeof(lat1), "a", 1);
    repeat(lat2, sizeof(lat2), "a", 2);
    repeat(lat60, sizeof(lat60), "a", 60);
    repeat(lat61, sizeof(lat61), "a", 61);
    repeat(bn1, sizeof(bn1), "ক", 1);
    repeat(bn2, sizeof(bn2), "ক", 2);
    repeat(bn60, sizeof(bn60), "ক", 60);
    repeat(bn61, sizeof(bn61), "ক", 61);
    repeat(bn60sp, sizeof(bn60sp), "কম ", 20); /* 60 with a space at end */
    bn60sp[strlen(bn60sp) - 1] = 'x';          /* ... made a Latin x */
    const struct row rows[] = {
        {"name", NULL, "Rahima Begum", "Rahima Begum", NULL},
        {"name", NULL, "রহিমা বেগম", "রহিমা বেগম", NULL},
        {"name", NULL, "Md. Abdul-Karim O'Neil", "Md. Abdul-Karim O'Neil",
         NULL},
        {"name", NULL, "মোঃ আব্দুল করিম", "মোঃ আব্দুল করিম", NULL},
        {"name", NULL, "José Núñez", "José Núñez", NULL},
        {"name", NULL, "Rahima রহিমা", "Rahima রহিমা", NULL}, /* 2 words */
        {"name", NULL, lat1, NULL, "invalid_name"},
        {"name", NULL, lat2, lat2, NULL},
        {"name", NULL, lat60, lat60, NULL},
        {"name", NULL, lat61, NULL, "invalid_name"},
        {"name", NULL, bn1, NULL, "invalid_name"},
        {"name", NULL, bn2, bn2, NULL},
        {"name", NULL, bn60, bn60, NULL},
        {"name", NULL, bn61, NULL, "invalid_name"},
        {"name", NULL, bn60sp, NULL, "invalid_name"}, /* "কমx" mixes */
        {"name", NULL, "কা", NULL, "invalid_name"},   /* a letter and a sign */
        {"name", NULL, "A.", NULL, "invalid_name"},   /* one letter */
        {"name", NULL, "A. Karim", "A. Karim", NULL},
        {"name", NULL, "...", NULL, "invalid_name"},
        {"name", NULL, "", NULL, "invalid_name"},
        {"name", NULL, "R2D2", NULL, "invalid_name"},
        {"name", NULL, "রহিমা১", NULL, "invalid_name"}, /* Bangla digit */
        {"name", NULL, "Rahimaরহিমা", NULL, "invalid_name"},
        {"name", NULL, "রহিমাR", NULL, "invalid_name"},
        {"name", NULL, "Rahima-রহিমা", NULL, "invalid_name"},
        {"name", NULL, "<script>", NULL, "invalid_name"},
        {"name", NULL, "Rahima\tBegum", NULL, "invalid_name"},
        {"name", NULL, "Rahima_Begum", NULL, "invalid_name"},
        {"name", NULL, "র" ZWJ "্যাব", "র" ZWJ "্যাব", NULL},
        {"name", NULL, "ক" ZWNJ "মল", "ক" ZWNJ "মল", NULL},
        {"name", NULL, "ab" ZWJ "cd", NULL, "invalid_name"}, /* Latin */
        {"name", NULL, "কম" ZWJ, NULL, "invalid_name"},      /* at the end */
        {"name", NULL, "ক " ZWJ "ম", NULL, "invalid_name"},  /* word start */
        {"name", NULL, "ক" ZWJ " ম", NULL, "invalid_name"},  /* word end */
        {"name", NULL, "ক" ZWJ ZWJ "ম", NULL, "invalid_name"},
        {"name", NULL, "িকম", NULL, "invalid_name"}, /* sign first */
        {"name", NULL, "ab িক", NULL, "invalid_name"},
        {"name", NULL, "e\xcc\x81mile", "e\xcc\x81mile", NULL}, /* é NFD */
        {"name", NULL, "\xcc\x81mile", NULL, "invalid_name"},
        {"name", NULL, "ক\xcc\x81ম", NULL, "invalid_name"},
        {"name", NULL, "\xe0\xa7\xb3টাকা", NULL, "invalid_name"}, /* ৳ */
        {"name", NULL, "ab\xff", NULL, "invalid_name"},
        {"name", NULL, "ab\xe0", NULL, "invalid_name"},     /* truncated */
        {"name", NULL, "ab\xc0\xaf", NULL, "invalid_name"}, /* overlong */
        {"name", NULL, "Ab\xc3\x97", NULL, "invalid_name"}, /* x sign */
    };
    run_rows(rows, NROWS(rows));
}

static void
t_numbers(void **state)
{
    static const struct flow_vparam year = {
        .min = -75, .max = -16, .have_min = 1, .have_max = 1};
    static const struct flow_vparam since = {.min = -5, .have_min = 1};
    static const struct flow_vparam wide = {
        .min = LONG_MIN, .max = LONG_MAX, .have_min = 1, .have_max = 1};
    static const struct flow_vparam age = {
        .min = 16, .max = 99, .have_min = 1, .have_max = 1};
    static const struct flow_vparam num = {
        .min = 1, .max = 50, .have_min = 1, .have_max = 1};
    static const struct row rows[] = {
        {"year", &year, "1990", "1990", NULL},
        {"year", &year, "1951", "1951", NULL}, /* 2026 - 75 */
        {"year", &year, "1950", NULL, "invalid_year"},
        {"year", &year, "2010", "2010", NULL}, /* 2026 - 16 */
        {"year", &year, "2011", NULL, "invalid_year"},
        {"year", &year, "90", NULL, "invalid_year"},
        {"year", &year, "19900", NULL, "invalid_year"},
        {"year", &year, "199a", NULL, "invalid_year"},
        {"year", &year, "+1990", NULL, "invalid_year"},
        {"year", &year, "-1990", NULL, "invalid_year"},
        {"year", &year, "", NULL, "invalid_year"},
        {"year", &since, "2021", "2021", NULL},
        {"year", &since, "2020", NULL, "invalid_year"},
        {"year", &since, "9999", "9999", NULL}, /* no upper bound */
        {"year", NULL, "0042", "0042", NULL},   /* no bounds at all */
        {"year", &wide, "1990", "1990", NULL},
        {"age", &age, "16", "16", NULL},
        {"age", &age, "15", NULL, "invalid_age"},
        {"age", &age, "99", "99", NULL},
        {"age", &age, "100", NULL, "invalid_age"},
        {"age", &age, "030", "30", NULL},
        {"age", &age, "", NULL, "invalid_age"},
        {"age", &age, "+30", NULL, "invalid_age"},
        {"age", &age, "-30", NULL, "invalid_age"},
        {"age", &age, "30.5", NULL, "invalid_age"},
        {"age", &age, "3 0", NULL, "invalid_age"},
        {"age", &wide, "0", "0", NULL},
        {"number", &num, "1", "1", NULL},
        {"number", &num, "0", NULL, "invalid_number"},
        {"number", &num, "00", NULL, "invalid_number"},
        {"number", &num, "50", "50", NULL},
        {"number", &num, "51", NULL, "invalid_number"},
        {"number", &num, "007", "7", NULL},
        {"number", NULL, "999999999", "999999999", NULL},
        {"number", NULL, "1000000000", NULL, "invalid_number"},
        {"number", NULL, "000000001", "1", NULL},
        {"number", NULL, "0000000001", NULL, "invalid_number"},
        {"number", NULL, "99999999999999999999999", NULL, "invalid_number"},
        {"number", NULL, "five", NULL, "invalid_number"},
    };
    (void)state;
    run_rows(rows, NROWS(rows));
}

static void
t_nid(void **state)
{
    static const struct row rows[] = {
        {"nid", NULL, "123456789", NULL, "invalid_nid"},
        {"nid", NULL, "1234567890", "1234567890", NULL},
        {"nid", NULL, "12345678901", NULL, "invalid_nid"},
        {"nid", NULL, "123456789012", NULL, "invalid_nid"},
        {"nid", NULL, "1234567890123", "1234567890123", NULL},
        {"nid", NULL, "12345678901234", NULL, "invalid_nid"},
        {"nid", NULL, "1234567890123456", NULL, "invalid_nid"},
        {"nid", NULL, "19901234567890123", "19901234567890123", NULL},
        {"nid", NULL, "123456789012345678", NULL, "invalid_nid"},
        {"nid", NULL, "1234567890123456789012345678901234567890", NULL,
         "invalid_nid"},
        {"nid", NULL, "123 456 7890", "1234567890", NULL},
        {"nid", NULL, "1234-567-890", "1234567890", NULL},
        {"nid", NULL, "1234 - 567 - 890", "1234567890", NULL},
        {"nid", NULL, "-1234567890", NULL, "invalid_nid"},
        {"nid", NULL, "1234567890-", NULL, "invalid_nid"},
        {"nid", NULL, "123456789O", NULL, "invalid_nid"},
        {"nid", NULL, "1234567890.", NULL, "invalid_nid"},
        {"nid", NULL, "", NULL, "invalid_nid"},
        {"passport", NULL, "A01234567", "A01234567", NULL},
        {"passport", NULL, "a01234567", "A01234567", NULL},
        {"passport", NULL, "EB0123456", "EB0123456", NULL},
        {"passport", NULL, "eB 0123456", "EB0123456", NULL},
        {"passport", NULL, "EB 012 3456", "EB0123456", NULL},
        {"passport", NULL, "0123456", NULL, "invalid_passport"},
        {"passport", NULL, "012345678", NULL, "invalid_passport"},
        {"passport", NULL, "A0123456", NULL, "invalid_passport"},
        {"passport", NULL, "A012345678", NULL, "invalid_passport"},
        {"passport", NULL, "EB012345", NULL, "invalid_passport"},
        {"passport", NULL, "EB01234567", NULL, "invalid_passport"},
        {"passport", NULL, "ABC123456", NULL, "invalid_passport"},
        {"passport", NULL, "E1B234567", NULL, "invalid_passport"},
        {"passport", NULL, "A0123456X", NULL, "invalid_passport"},
        {"passport", NULL, "A-1234567", NULL, "invalid_passport"},
        {"passport", NULL, "ÉB0123456", NULL, "invalid_passport"},
        {"passport", NULL, "", NULL, "invalid_passport"},
        {"phone", NULL, "01712345678", "8801712345678", NULL},
        {"phone", NULL, "8801712345678", "8801712345678", NULL},
        {"phone", NULL, "+8801712345678", "8801712345678", NULL},
        {"phone", NULL, "008801712345678", "8801712345678", NULL},
        {"phone", NULL, "+880 1712-345678", "8801712345678", NULL},
        {"phone", NULL, "+880-1712345678", "8801712345678", NULL},
        {"phone", NULL, "017-1234-5678", "8801712345678", NULL},
        {"phone", NULL, "0171 234 5678", "8801712345678", NULL},
        {"phone", NULL, "00880 1712 345678", "8801712345678", NULL},
        {"phone", NULL, "01312345678", "8801312345678", NULL},
        {"phone", NULL, "01912345678", "8801912345678", NULL},
        {"phone", NULL, "01212345678", NULL, "invalid_phone"},
        {"phone", NULL, "01112345678", NULL, "invalid_phone"},
        {"phone", NULL, "02712345678", NULL, "invalid_phone"},
        {"phone", NULL, "0171234567", NULL, "invalid_phone"},
        {"phone", NULL, "017123456789", NULL, "invalid_phone"},
        {"phone", NULL, "1712345678", NULL, "invalid_phone"},
        {"phone", NULL, "8801212345678", NULL, "invalid_phone"},
        {"phone", NULL, "88001712345678", NULL, "invalid_phone"},
        {"phone", NULL, "+01712345678", NULL, "invalid_phone"},
        {"phone", NULL, "+008801712345678", NULL, "invalid_phone"},
        {"phone", NULL, "+ 8801712345678", NULL, "invalid_phone"},
        {"phone", NULL, "++8801712345678", NULL, "invalid_phone"},
        {"phone", NULL, "9101712345678", NULL, "invalid_phone"},
        {"phone", NULL, "008811712345678", NULL, "invalid_phone"},
        {"phone", NULL, "01712345678 ", NULL, "invalid_phone"},
        {"phone", NULL, "(017)12345678", NULL, "invalid_phone"},
        {"phone", NULL, "+", NULL, "invalid_phone"},
        {"phone", NULL, "", NULL, "invalid_phone"},
    };
    (void)state;
    run_rows(rows, NROWS(rows));
}

static void
t_regex(void **state)
{
    static const struct flow_vparam code = {.regex = "[A-Z]{2}[0-9]+"};
    static const struct flow_vparam alt = {.regex = "a|b"};
    static const struct flow_vparam bad = {.regex = "([A-Z"};
    static const struct flow_vparam none = {.regex = NULL};
    static char longpat[1024];
    static struct flow_vparam big = {.regex = longpat};
    memset(longpat, 'a', 600);
    const struct row rows[] = {
        {"regex", &code, "AB12", "AB12", NULL},
        {"regex", &code, "AB12x", NULL, "invalid_format"},
        {"regex", &code, "xAB12", NULL, "invalid_format"},
        {"regex", &code, "", NULL, "invalid_format"},
        {"regex", &alt, "a", "a", NULL},
        {"regex", &alt, "b", "b", NULL},
        {"regex", &alt, "ab", NULL, "invalid_format"}, /* anchored as a whole */
        {"regex", &bad, "AB", NULL, "invalid_format"},
        {"regex", &none, "AB", NULL, "invalid_format"},
        {"regex", NULL, "AB", NULL, "invalid_format"},
        {"regex", &big, longpat, NULL, "invalid_format"},
    };
    (void)state;
    run_rows(rows, NROWS(rows));
}

/* Inputs arrive with Bangla digits and as typed: normalise, then validate. */
static void
t_after_normalise(void **state)
{
    static const struct {
        const char *v, *in, *out;
    } rows[] = {
        {"nid", "১২৩৪৫৬৭৮৯০", "1234567890"},
        {"nid", " ১২৩ ৪৫৬\xc2\xa0৭৮৯০ ", "1234567890"},
        {"nid", "১৯৯০১২৩৪৫৬৭৮৯০১২৩", "19901234567890123"},
        {"phone", "০১৭১২৩৪৫৬৭৮", "8801712345678"},
        {"phone", "+৮৮০ ১৭১২ ৩৪৫৬৭৮", "8801712345678"},
        {"passport", "eb ০১২৩৪৫৬", "EB0123456"},
        {"year", "১৯৯০", "1990"},
        {"name", "\xe2\x80\x8b রহিমা\t\tবেগম \xe2\x80\x8d", "রহিমা বেগম"},
        {"name", "  Rahima   Begum\r\n", "Rahima Begum"},
    };
    static const struct flow_vparam year = {
        .min = -75, .max = -16, .have_min = 1, .have_max = 1};
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        char norm[FLOW_INPUT_MAX + 1], out[FLOW_VALUE_MAX];
        int n = flow_text_normalise(rows[i].in, strlen(rows[i].in), 1, norm,
                                    sizeof(norm));
        assert_true(n >= 0);
        const char *why =
            flow_validate(rows[i].v, &year, norm, YEAR, out, sizeof(out));
        if (why != NULL || strcmp(out, rows[i].out) != 0)
            fail_msg("row %zu %s '%s': got %s '%s'", i, rows[i].v, norm,
                     why ? why : "ok", out);
    }
}

static void
t_calls(void **state)
{
    static const char *const known[] = {"name", "year",     "age",   "number",
                                        "nid",  "passport", "phone", "regex"};
    char out[16];
    (void)state;
    for (size_t i = 0; i < NROWS(known); i++)
        assert_true(flow_validator_known(known[i]));
    assert_false(flow_validator_known("colour"));
    assert_false(flow_validator_known("NAME"));
    assert_false(flow_validator_known(""));
    assert_false(flow_validator_known(NULL));

    assert_string_equal(
        flow_validate("colour", NULL, "red", YEAR, out, sizeof(out)),
        "invalid");
    assert_string_equal(out, "");
    assert_string_equal(
        flow_validate(NULL, NULL, "red", YEAR, out, sizeof(out)), "invalid");
    assert_string_equal(
        flow_validate("name", NULL, NULL, YEAR, out, sizeof(out)), "invalid");
    /* out too small: 10 digits need 11 bytes */
    assert_string_equal(flow_validate("nid", NULL, "1234567890", YEAR, out, 10),
                        "invalid");
    assert_null(flow_validate("nid", NULL, "1234567890", YEAR, out, 11));
    assert_string_equal(out, "1234567890");
    assert_string_equal(
        flow_validate("phone", NULL, "01712345678", YEAR, out, 13), "invalid");
    assert_string_equal(flow_validate("nid", NULL, "1234567890", YEAR, out, 0),
                        "invalid");
    assert_string_equal(
        flow_validate("nid", NULL, "1234567890", YEAR, NULL, 64), "invalid");
}

static uint32_t
xorshift(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Random bytes never crash a validator (run it under SAN=1), and what it
 * stores is always a NUL-terminated string within cap: UTF-8, or "" when
 * it refuses. */
static void
t_random(void **state)
{
    static const char alphabet[] = "0123456789 -+.'abAB\xe0\xa6\xa7\xe2\x80"
                                   "\x8d\xff\xc3\xa9";
    static const struct flow_vparam p = {.min = -100,
                                         .max = 100,
                                         .have_min = 1,
                                         .have_max = 1,
                                         .regex = "[0-9a-z ]*"};
    static const char *const names[] = {"name", "year",     "age",   "number",
                                        "nid",  "passport", "phone", "regex"};
    uint32_t x = 88172645u;
    (void)state;
    for (int iter = 0; iter < 40000; iter++) {
        char in[64], out[24];
        size_t len = xorshift(&x) % sizeof(in);
        int bytes = (int)(xorshift(&x) & 1);
        for (size_t k = 0; k < len; k++)
            in[k] = bytes ? (char)(xorshift(&x) % 255 + 1)
                          : alphabet[xorshift(&x) % (sizeof(alphabet) - 1)];
        in[len] = '\0';
        const char *v = names[xorshift(&x) % NROWS(names)];
        size_t cap = 1 + xorshift(&x) % sizeof(out);
        memset(out, 'Z', sizeof(out));
        const char *why = flow_validate(v, &p, in, YEAR, out, cap);
        size_t n = strnlen(out, sizeof(out));
        if (n >= cap || (why != NULL && n != 0) ||
            (why == NULL && !flow_utf8_valid(out, n)))
            fail_msg("%s '%s' cap %zu: %s, out %zu bytes", v, in, cap,
                     why ? why : "ok", n);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_name),
        cmocka_unit_test(t_numbers),
        cmocka_unit_test(t_nid),
        cmocka_unit_test(t_regex),
        cmocka_unit_test(t_after_normalise),
        cmocka_unit_test(t_calls),
        cmocka_unit_test(t_random),
    };
    return cmocka_run_group_tests_name("flow_valid", tests, NULL, NULL);
}
