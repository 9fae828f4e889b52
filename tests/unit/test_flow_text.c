/*
 * test_flow_text.c -- UTF-8 decoding, the GSM 03.38 alphabet, measuring
 * screens in GSM 7-bit or UCS-2, and input normalisation, table by table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "flows/flow.h"
#include "flows/flow_int.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* Bytes as a string with \x escapes for anything outside printable ASCII,
 * for failure messages. */
static const char *
show(const char *s, size_t len)
{
    static char buf[512];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < sizeof(buf); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F)
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

static void
t_gsm7_char(void **state)
{
    static const struct {
        uint32_t cp;
        int want;
    } rows[] = {
        {'@', 1},  {'$', 1},  {'_', 1},    {' ', 1},     {'\n', 1},
        {'\r', 1}, {'A', 1},  {'z', 1},    {'0', 1},     {'?', 1},
        {0xA3, 1}, {0xA5, 1}, {0xC7, 1},   {0xE7, 0},    {0xE0, 1},
        {0xDF, 1}, {0xBF, 1}, {0x394, 1},  {0x3A9, 1},   {0x3B1, 0},
        {'{', 2},  {'}', 2},  {'[', 2},    {']', 2},     {'~', 2},
        {'\\', 2}, {'|', 2},  {'^', 2},    {'\f', 2},    {0x20AC, 2},
        {'`', 0},  {0x1B, 0}, {0, 0},      {'\t', 0},    {0x7F, 0},
        {0xA0, 0}, {0xEA, 0}, {0x0995, 0}, {0x1F600, 0}, {0xC0, 0},
    };
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++)
        if (flow_gsm7_char(rows[i].cp) != rows[i].want)
            fail_msg("U+%04X: got %d, want %d", (unsigned)rows[i].cp,
                     flow_gsm7_char(rows[i].cp), rows[i].want);

    /* The whole of Unicode: 127 characters in the default alphabet (128
     * positions less the escape) and 10 in the extension table we use. */
    unsigned basic = 0, ext = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        int g = flow_gsm7_char(cp);
        basic += g == 1;
        ext += g == 2;
    }
    assert_int_equal(basic, 127);
    assert_int_equal(ext, 10);
}

static void
t_utf8_next(void **state)
{
    static const struct {
        const char *s;
        size_t len;
        int rc;
        uint32_t cp;
        size_t adv;
    } rows[] = {
        {"A", 1, 0, 'A', 1},
        {"\xc2\x80", 2, 0, 0x80, 2},
        {"\xc3\xa9x", 3, 0, 0xE9, 2},
        {"\xe0\xa6\xa7", 3, 0, 0x09A7, 3}, /* ধ */
        {"\xef\xbf\xbf", 3, 0, 0xFFFF, 3},
        {"\xf0\x9f\x98\x80", 4, 0, 0x1F600, 4}, /* emoji */
        {"\xf4\x8f\xbf\xbf", 4, 0, 0x10FFFF, 4},
        {"\xf4\x90\x80\x80", 4, -1, 0, 0}, /* above U+10FFFF */
        {"\xc0\xaf", 2, -1, 0, 0},         /* overlong '/' */
        {"\xc1\xbf", 2, -1, 0, 0},
        {"\xe0\x80\xaf", 3, -1, 0, 0},
        {"\xe0\x9f\xbf", 3, -1, 0, 0}, /* overlong U+07FF */
        {"\xf0\x80\x80\xaf", 4, -1, 0, 0},
        {"\xf0\x8f\xbf\xbf", 4, -1, 0, 0}, /* overlong U+FFFF */
        {"\xed\xa0\x80", 3, -1, 0, 0},     /* U+D800 */
        {"\xed\xbf\xbf", 3, -1, 0, 0},     /* U+DFFF */
        {"\xed\x9f\xbf", 3, 0, 0xD7FF, 3},
        {"\xe0\xa6", 2, -1, 0, 0},     /* truncated */
        {"\xe0\xa6\xa7", 2, -1, 0, 0}, /* cut by len */
        {"\xf0\x9f\x98", 3, -1, 0, 0},
        {"\x80", 1, -1, 0, 0},                 /* stray continuation */
        {"\xc3\x28", 2, -1, 0, 0},             /* bad continuation */
        {"\xf8\x88\x80\x80\x80", 5, -1, 0, 0}, /* 5-byte form */
        {"\xff", 1, -1, 0, 0},
        {"", 0, -1, 0, 0}, /* nothing left */
    };
    (void)state;
    for (size_t r = 0; r < NROWS(rows); r++) {
        size_t i = 0;
        uint32_t cp = 0xDEAD;
        int rc = flow_utf8_next(rows[r].s, rows[r].len, &i, &cp);
        if (rc != rows[r].rc || i != rows[r].adv ||
            (rc == 0 && cp != rows[r].cp) || (rc != 0 && cp != 0xDEAD))
            fail_msg("row %zu '%s': rc %d cp U+%04X advanced %zu", r,
                     show(rows[r].s, rows[r].len), rc, (unsigned)cp, i);
        /* a row of one sequence is valid UTF-8 exactly when it decodes */
        if (rows[r].len > 0 && (rows[r].rc != 0 || rows[r].adv == rows[r].len))
            assert_int_equal(flow_utf8_valid(rows[r].s, rows[r].len),
                             rows[r].rc == 0);
    }

    /* Decoding from the middle of a string. */
    const char *s = "a\xe0\xa6\xa7z";
    size_t i = 1;
    uint32_t cp;
    assert_int_equal(flow_utf8_next(s, 5, &i, &cp), 0);
    assert_int_equal(cp, 0x09A7);
    assert_int_equal(i, 4);
}

static void
t_utf8_valid(void **state)
{
    static const struct {
        const char *s;
        size_t len;
        int want;
    } rows[] = {
        {"", 0, 1},
        {"Hello", 5, 1},
        {"ধন্যবাদ", sizeof("ধন্যবাদ") - 1, 1},
        {"a\0b", 3, 1}, /* NUL is UTF-8; normalise refuses it */
        {"ok\xff", 3, 0},
        {"\xe0\xa6\xa7\xe0\xa6", 5, 0},
        {"x\xed\xa0\x80y", 5, 0},
    };
    (void)state;
    for (size_t r = 0; r < NROWS(rows); r++)
        if (flow_utf8_valid(rows[r].s, rows[r].len) != rows[r].want)
            fail_msg("row %zu '%s'", r, show(rows[r].s, rows[r].len));
    assert_true(flow_utf8_valid(NULL, 0));
}

static void
t_measure(void **state)
{
    static const struct {
        const char *s;
        enum flow_enc enc;
        unsigned units;
        unsigned gsm7, ucs2; /* flow_text_units() in each */
    } rows[] = {
        {"", FLOW_ENC_GSM7, 0, 0, 0},
        {"Hello", FLOW_ENC_GSM7, 5, 5, 5},
        {"{x}", FLOW_ENC_GSM7, 5, 5, 3}, /* { } are extension */
        {"[~]|\\^", FLOW_ENC_GSM7, 12, 12, 6},
        {"€5", FLOW_ENC_GSM7, 3, 3, 2}, /* euro sign */
        {"a\nb\r\f", FLOW_ENC_GSM7, 6, 6, 5},
        {"@\xc2\xa3$\xc2\xa5\xc3\xa8\xce\x94", FLOW_ENC_GSM7, 6, 6, 6},
        {"`", FLOW_ENC_UCS2, 1, 1, 1},        /* backtick is not GSM */
        {"\xc3\xaa", FLOW_ENC_UCS2, 1, 1, 1}, /* e circumflex is not */
        {"\t", FLOW_ENC_UCS2, 1, 1, 1},
        {"ধন্যবাদ", FLOW_ENC_UCS2, 7, 7, 7},
        {"1. বাংলা", FLOW_ENC_UCS2, 8, 8, 8},         /* Latin and Bangla */
        {"{ক}", FLOW_ENC_UCS2, 3, 5, 3},              /* UCS-2: { is one unit */
        {"\xf0\x9f\x98\x80", FLOW_ENC_UCS2, 2, 1, 2}, /* surrogate pair */
        {"a\xf0\x9f\x98\x80", FLOW_ENC_UCS2, 3, 2, 3},
        {"\xff", FLOW_ENC_UCS2, 1, 1, 1},         /* invalid UTF-8 */
        {"ab\xe0\xa6", FLOW_ENC_UCS2, 4, 4, 4},   /* truncated: per byte */
        {"\xed\xa0\x80", FLOW_ENC_UCS2, 3, 3, 3}, /* surrogate: per byte */
    };
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        size_t len = strlen(rows[i].s);
        enum flow_enc enc;
        unsigned u;
        flow_text_measure(rows[i].s, len, &enc, &u);
        if (enc != rows[i].enc || u != rows[i].units)
            fail_msg("row %zu '%s': got %s %u", i, show(rows[i].s, len),
                     flow_enc_name(enc), u);
        if (flow_text_units(rows[i].s, len, FLOW_ENC_GSM7) != rows[i].gsm7 ||
            flow_text_units(rows[i].s, len, FLOW_ENC_UCS2) != rows[i].ucs2)
            fail_msg("row %zu '%s': units gsm7 %u ucs2 %u", i,
                     show(rows[i].s, len),
                     flow_text_units(rows[i].s, len, FLOW_ENC_GSM7),
                     flow_text_units(rows[i].s, len, FLOW_ENC_UCS2));
    }

    /* A full USSD page of extension characters: 91 braces are 182. */
    char page[92];
    enum flow_enc enc;
    unsigned u;
    memset(page, '{', 91);
    flow_text_measure(page, 91, &enc, &u);
    assert_int_equal(enc, FLOW_ENC_GSM7);
    assert_int_equal(u, 182);

    /* len, not the NUL, ends the text. */
    flow_text_measure("abc", 2, &enc, &u);
    assert_int_equal(u, 2);
    flow_text_measure(NULL, 0, &enc, &u);
    assert_int_equal(enc, FLOW_ENC_GSM7);
    assert_int_equal(u, 0);

    assert_string_equal(flow_enc_name(FLOW_ENC_GSM7), "gsm7");
    assert_string_equal(flow_enc_name(FLOW_ENC_UCS2), "ucs2");
}

#define ZWSP "\xe2\x80\x8b"
#define ZWNJ "\xe2\x80\x8c"
#define ZWJ  "\xe2\x80\x8d"
#define WJ   "\xe2\x81\xa0"
#define BOM  "\xef\xbb\xbf"
#define NBSP "\xc2\xa0"

static void
t_normalise(void **state)
{
    static const struct {
        const char *in;
        size_t len; /* 0: strlen(in) */
        int digits;
        size_t cap;
        const char *out; /* NULL: -1 expected */
    } rows[] = {
        {"12", 0, 1, 64, "12"},
        {"  12  ", 0, 1, 64, "12"},
        {"\xe0\xa7\xa7\xe0\xa7\xaf\xe0\xa7\xaf\xe0\xa7\xa6", 0, 1, 64,
         "1990"}, /* ১৯৯০ */
        {"\xe0\xa7\xa7\xe0\xa7\xaf\xe0\xa7\xaf\xe0\xa7\xa6", 0, 0, 64,
         "\xe0\xa7\xa7\xe0\xa7\xaf\xe0\xa7\xaf\xe0\xa7\xa6"}, /* kept */
        {"\xe0\xa7\xa6\xe0\xa7\xaf", 0, 1, 64, "09"},         /* both ends */
        {"সাল ১৯৯০", 0, 1, 64, "সাল 1990"},
        {ZWSP "1" ZWSP "2" BOM, 0, 1, 64, "12"},
        {WJ "ab" WJ, 0, 1, 64, "ab"},
        {"a" ZWSP " b", 0, 1, 64, "a b"},
        {"a " ZWSP " b", 0, 1, 64, "a b"},
        {"Rahima\t " NBSP " Begum", 0, 1, 64, "Rahima Begum"},
        {"\r\nRahima\nBegum\r\n", 0, 1, 64, "Rahima Begum"},
        {NBSP "a" NBSP NBSP "b" NBSP, 0, 1, 64, "a b"},
        {"\ta\v\fb\t", 0, 1, 64, "a b"},
        {ZWJ "ক" ZWNJ, 0, 1, 64, "ক"}, /* outer joiners */
        {ZWNJ ZWJ " ক " ZWJ ZWNJ, 0, 1, 64, "ক"},
        {"র" ZWJ "্য", 0, 1, 64, "র" ZWJ "্য"}, /* inner ZWJ kept */
        {"ক" ZWNJ "ম", 0, 1, 64, "ক" ZWNJ "ম"},
        {"ক" ZWSP ZWJ ZWSP "ম", 0, 1, 64, "ক" ZWJ "ম"},
        {"ক" ZWJ " " ZWNJ "ম", 0, 1, 64, "ক ম"}, /* join nothing */
        {"", 0, 1, 64, ""},
        {" \t ", 0, 1, 64, ""},
        {ZWSP ZWJ NBSP BOM ZWNJ, 0, 1, 64, ""},
        {"\xc0\xaf", 0, 1, 64, NULL},         /* overlong */
        {"\xed\xa0\x80", 0, 1, 64, NULL},     /* surrogate */
        {"\xf4\x90\x80\x80", 0, 1, 64, NULL}, /* above U+10FFFF */
        {"ab\xe0\xa6", 0, 1, 64, NULL},       /* truncated */
        {"ok\xff", 0, 1, 64, NULL},
        {"a\0b", 3, 1, 64, NULL}, /* NUL */
        {"12345", 0, 1, 5, NULL}, /* no room for the NUL */
        {"12345", 0, 1, 6, "12345"},
        {"  12  ", 0, 1, 3, "12"}, /* only the result counts */
        {"ab" ZWJ ZWJ, 0, 1, 3, "ab"},
        {"\xe0\xa7\xa7\xe0\xa7\xa8\xe0\xa7\xa9", 0, 1, 4, "123"},
        {"\xe0\xa7\xa7\xe0\xa7\xa8\xe0\xa7\xa9", 0, 0, 4, NULL},
        {"ক", 0, 1, 3, NULL},
        {"ক", 0, 1, 4, "ক"},
        {"x", 0, 1, 0, NULL}, /* no room at all */
    };
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        char out[64];
        size_t len = rows[i].len ? rows[i].len : strlen(rows[i].in);
        memset(out, 'Z', sizeof(out));
        int n = flow_text_normalise(rows[i].in, len, rows[i].digits, out,
                                    rows[i].cap);
        if (rows[i].out == NULL) {
            if (n != -1)
                fail_msg("row %zu '%s': got %d, want -1", i,
                         show(rows[i].in, len), n);
            continue;
        }
        if (n != (int)strlen(rows[i].out) || strcmp(out, rows[i].out) != 0)
            fail_msg("row %zu '%s': got %d '%s'", i, show(rows[i].in, len), n,
                     n >= 0 ? show(out, (size_t)n) : "");
        /* nothing written past cap */
        for (size_t k = rows[i].cap; k < sizeof(out); k++)
            if (out[k] != 'Z')
                fail_msg("row %zu: byte %zu written past cap", i, k);
    }

    char out[8];
    assert_int_equal(flow_text_normalise(NULL, 0, 1, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(flow_text_normalise(NULL, 1, 1, out, sizeof(out)), -1);
    assert_int_equal(flow_text_normalise("a", 1, 1, NULL, 8), -1);
}

/* Normalising twice changes nothing, and the result is always UTF-8 with
 * no white space at either end: checked on pseudo-random mixes of the
 * characters that matter. */
static void
t_normalise_idempotent(void **state)
{
    static const char *const parts[] = {
        "a",  "ক",  "্",
        " ",  "\t", NBSP,
        ZWSP, ZWJ,  ZWNJ,
        BOM,  WJ,   "\xe0\xa7\xa7",
        "1",  "\n", "\xf0\x9f\x98\x80",
        "{",
    };
    uint32_t x = 2463534242u;
    (void)state;
    for (int iter = 0; iter < 20000; iter++) {
        char in[128], once[128], twice[128];
        size_t len = 0;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        int nparts = (int)(x % 12);
        for (int k = 0; k < nparts; k++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            const char *p = parts[x % NROWS(parts)];
            memcpy(in + len, p, strlen(p));
            len += strlen(p);
        }
        int digits = (int)(x >> 31);
        int n1 = flow_text_normalise(in, len, digits, once, sizeof(once));
        assert_true(n1 >= 0);
        int n2 =
            flow_text_normalise(once, (size_t)n1, digits, twice, sizeof(twice));
        if (n2 != n1 || memcmp(once, twice, (size_t)n1 + 1) != 0)
            fail_msg("'%s' not stable", show(in, len));
        assert_true(flow_utf8_valid(once, (size_t)n1));
        if (n1 > 0) {
            assert_true(once[0] != ' ' && once[n1 - 1] != ' ');
            assert_null(strstr(once, "  "));
            assert_null(strstr(once, ZWSP));
        }
    }
}

/* Numbers in a language's digits; what touches a Latin letter, '*' or
 * '#' stays as written. */
static void
t_digits(void **state)
{
    (void)state;
    static const char *const bn = "০১২৩৪৫৬৭৮৯";
    static const struct {
        const char *digits, *in, *want;
    } cases[] = {
        {bn, "98. আরও", "৯৮. আরও"},
        {bn, "জন্মসাল: 1988", "জন্মসাল: ১৯৮৮"},
        {bn, "যেমন 2 5", "যেমন ২ ৫"},
        {bn, "A01234567", "A01234567"},
        {bn, "রেফারেন্স 7K2M9QX3AB", "রেফারেন্স 7K2M9QX3AB"},
        {bn, "3AB 12", "3AB ১২"},
        {bn, "ডায়াল করুন *247#", "ডায়াল করুন *247#"},
        {bn, "0", "০"},
        {bn, "", ""},
        {bn, "১৯৯০ stays", "১৯৯০ stays"},
        {"0123456789", "98. More", "98. More"},
        {NULL, "98. আরও", "98. আরও"},
        {"০১২৩৪৫৬৭৮", "98", "98"},   /* nine digits: not used */
        {"০১২৩৪৫৬৭৮৯০", "98", "98"}, /* eleven */
    };
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = flow_digits_apply(cases[i].digits, cases[i].in,
                                     strlen(cases[i].in), out, sizeof(out));
        assert_string_equal(out, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
    /* no room for the longer digits: the text as it came, cut to fit */
    size_t n = flow_digits_apply(bn, "1234", 4, out, 8);
    assert_string_equal(out, "1234");
    assert_int_equal(n, 4);
    n = flow_digits_apply(bn, "123456789", 9, out, 5);
    assert_string_equal(out, "1234");
    /* the result reads back as the same number */
    char back[64];
    flow_digits_apply(bn, "2024", 4, out, sizeof(out));
    assert_int_equal(
        flow_text_normalise(out, strlen(out), 1, back, sizeof(back)), 4);
    assert_string_equal(back, "2024");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_gsm7_char),
        cmocka_unit_test(t_utf8_next),
        cmocka_unit_test(t_utf8_valid),
        cmocka_unit_test(t_measure),
        cmocka_unit_test(t_normalise),
        cmocka_unit_test(t_normalise_idempotent),
        cmocka_unit_test(t_digits),
    };
    return cmocka_run_group_tests_name("flow_text", tests, NULL, NULL);
}
