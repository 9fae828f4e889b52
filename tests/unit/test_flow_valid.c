/*
 * test_flow_valid.c -- input normalisation, GSM-7/UCS-2 measurement and the
 * validators, table by table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "flows/flow.h"

static void
t_measure(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        enum flow_enc enc;
        unsigned units;
    } rows[] = {
        {"Hello", FLOW_ENC_GSM7, 5},
        {"{x}", FLOW_ENC_GSM7, 5},          /* { } are extension: 2 each */
        {"\xe2\x82\xac" "5", FLOW_ENC_GSM7, 3}, /* euro sign */
        {"a\nb", FLOW_ENC_GSM7, 3},
        {"`", FLOW_ENC_UCS2, 1},             /* backtick is not GSM */
        {"ধন্যবাদ", FLOW_ENC_UCS2, 7},
        {"1. বাংলা", FLOW_ENC_UCS2, 8},      /* mixed Latin and Bangla */
        {"\xf0\x9f\x98\x80", FLOW_ENC_UCS2, 2}, /* emoji: a surrogate pair */
        {"\xff", FLOW_ENC_UCS2, 1},          /* invalid UTF-8 */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum flow_enc enc;
        unsigned u;
        flow_text_measure(rows[i].s, strlen(rows[i].s), &enc, &u);
        if (enc != rows[i].enc || u != rows[i].units)
            fail_msg("row %zu '%s': got %s %u", i, rows[i].s,
                     flow_enc_name(enc), u);
    }
}

static void
t_normalise(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"  12  ", "12"},
        {"\xe0\xa7\xa7\xe0\xa7\xaf\xe0\xa7\xaf\xe0\xa7\xa6", "1990"}, /* ১৯৯০ */
        {"\xe2\x80\x8b" "1\xe2\x80\x8b" "2\xef\xbb\xbf", "12"}, /* ZWSP, BOM */
        {"Rahima\t \xc2\xa0 Begum", "Rahima Begum"},
        {"\xe2\x80\x8d" "ক\xe2\x80\x8c", "ক"},    /* outer ZWJ/ZWNJ */
        {"র\xe2\x80\x8d্য", "র\xe2\x80\x8d্য"},  /* inner ZWJ kept */
        {" \t ", ""},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int n = flow_text_normalise(rows[i].in, strlen(rows[i].in), 1, out,
                                    sizeof(out));
        assert_int_equal(n, (int)strlen(rows[i].out));
        assert_string_equal(out, rows[i].out);
    }
    assert_int_equal(flow_text_normalise("\xc0\xaf", 2, 1, out, sizeof(out)),
                     -1); /* overlong */
    assert_int_equal(flow_text_normalise("\xed\xa0\x80", 3, 1, out,
                                         sizeof(out)), -1); /* surrogate */
    assert_int_equal(flow_text_normalise("12345", 5, 1, out, 4), -1);
}

static void
t_validators(void **state)
{
    (void)state;
    struct flow_vparam year = {.min = -75, .max = -16, .have_min = 1,
                               .have_max = 1};
    struct flow_vparam num = {.min = 1, .max = 50, .have_min = 1,
                              .have_max = 1};
    struct flow_vparam re = {.regex = "[A-Z]{2}[0-9]+"};
    static char sixty[256], sixtyone[256];
    memset(sixty, 'a', 60);
    memset(sixtyone, 'a', 61);
    const struct {
        const char *v;
        const struct flow_vparam *p;
        const char *in, *out, *why;
    } rows[] = {
        {"name", NULL, "Rahima Begum", "Rahima Begum", NULL},
        {"name", NULL, "রহিমা বেগম", "রহিমা বেগম", NULL},
        {"name", NULL, "Md. Abdul-Karim O'Neil", "Md. Abdul-Karim O'Neil",
         NULL},
        {"name", NULL, "ab", "ab", NULL},
        {"name", NULL, "a", NULL, "invalid_name"},
        {"name", NULL, sixty, sixty, NULL},
        {"name", NULL, sixtyone, NULL, "invalid_name"},
        {"name", NULL, "R2D2", NULL, "invalid_name"},
        {"name", NULL, "Rahimaরহিমা", NULL, "invalid_name"},
        {"name", NULL, "<script>", NULL, "invalid_name"},
        {"year", &year, "1990", "1990", NULL},
        {"year", &year, "1951", "1951", NULL}, /* 2026 - 75 */
        {"year", &year, "1950", NULL, "invalid_year"},
        {"year", &year, "2010", "2010", NULL}, /* 2026 - 16 */
        {"year", &year, "2011", NULL, "invalid_year"},
        {"year", &year, "90", NULL, "invalid_year"},
        {"number", &num, "1", "1", NULL},
        {"number", &num, "0", NULL, "invalid_number"},
        {"number", &num, "51", NULL, "invalid_number"},
        {"number", &num, "007", "7", NULL},
        {"number", &num, "1234567890", NULL, "invalid_number"},
        {"nid", NULL, "123456789", NULL, "invalid_nid"},
        {"nid", NULL, "1234567890", "1234567890", NULL},
        {"nid", NULL, "12345678901", NULL, "invalid_nid"},
        {"nid", NULL, "1234567890123", "1234567890123", NULL},
        {"nid", NULL, "12345678901234567", "12345678901234567", NULL},
        {"nid", NULL, "123456789012345678", NULL, "invalid_nid"},
        {"nid", NULL, "123 456 7890", "1234567890", NULL},
        {"passport", NULL, "a01234567", "A01234567", NULL},
        {"passport", NULL, "EB 0123456", "EB0123456", NULL},
        {"passport", NULL, "0123456", NULL, "invalid_passport"},
        {"passport", NULL, "ABC1234567", NULL, "invalid_passport"},
        {"phone", NULL, "01712345678", "8801712345678", NULL},
        {"phone", NULL, "+8801712345678", "8801712345678", NULL},
        {"phone", NULL, "8801712345678", "8801712345678", NULL},
        {"phone", NULL, "008801712345678", "8801712345678", NULL},
        {"phone", NULL, "017-1234-5678", "8801712345678", NULL},
        {"phone", NULL, "01212345678", NULL, "invalid_phone"},
        {"phone", NULL, "+01712345678", NULL, "invalid_phone"},
        {"regex", &re, "AB12", "AB12", NULL},
        {"regex", &re, "AB12x", NULL, "invalid_format"},
        {"colour", NULL, "red", NULL, "invalid"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char out[256] = "";
        const char *why = flow_validate(rows[i].v, rows[i].p, rows[i].in,
                                        2026, out, sizeof(out));
        if ((why == NULL) != (rows[i].why == NULL) ||
            (why && strcmp(why, rows[i].why)) ||
            (rows[i].out && strcmp(out, rows[i].out)))
            fail_msg("row %zu %s '%s': got %s '%s'", i, rows[i].v,
                     rows[i].in, why ? why : "ok", out);
    }
    assert_true(flow_validator_known("nid"));
    assert_false(flow_validator_known("colour"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_measure),
        cmocka_unit_test(t_normalise),
        cmocka_unit_test(t_validators),
    };
    return cmocka_run_group_tests_name("flow_valid", tests, NULL, NULL);
}
