/*
 * test_con_json.c -- JSON strings written as text (console/con_json.c):
 * for a table of strings (plain, every escape, control characters, '/',
 * DEL, Bangla, four-byte UTF-8) and for 20,000 random byte strings, the
 * text con_json_str() appends is exactly what jansson's json_dumps()
 * writes for json_string() of the same string, and it refuses exactly
 * the strings json_string() refuses (not UTF-8: a lone continuation
 * byte, an overlong form, a surrogate, above U+10FFFF, a cut sequence),
 * leaving the buffer as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "console/con_int.h"

/* s through con_json_str() after "x", against jansson: 1 if written
 * (and equal), 0 if both refused. */
static int
same_as_jansson(const char *s)
{
    struct con_buf b = {NULL, 0, 0};
    json_t *j = json_string(s);
    char *want = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    int rc;

    assert_int_equal(con_buf_add(&b, "x", 1), 0);
    rc = con_json_str(&b, s);
    if (j == NULL) {
        assert_int_equal(rc, -1);
        assert_string_equal(b.p, "x");
    } else {
        assert_int_equal(rc, 0);
        assert_non_null(want);
        assert_string_equal(b.p + 1, want);
    }
    free(want);
    json_decref(j);
    free(b.p);
    return j != NULL;
}

static void
test_table(void **state)
{
    static const struct {
        const char *s, *text; /* text NULL: refused */
    } t[] = {
        {"", "\"\""},
        {"BD-15", "\"BD-15\""},
        {"a\"b\\c/d", "\"a\\\"b\\\\c/d\""},
        {"\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\""},
        {"\x01\x1f\x7f", "\"\\u0001\\u001F\x7f\""},
        {"\xe0\xa6\xa2\xe0\xa6\xbe\xe0\xa6\x95\xe0\xa6\xbe", /* ঢাকা */
         "\"\xe0\xa6\xa2\xe0\xa6\xbe\xe0\xa6\x95\xe0\xa6\xbe\""},
        {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},
        {"\x80", NULL},             /* a lone continuation byte */
        {"\xc0\xaf", NULL},         /* overlong '/' */
        {"\xe0\x80\xaf", NULL},     /* overlong, three bytes */
        {"\xed\xa0\x80", NULL},     /* a surrogate */
        {"\xf4\x90\x80\x80", NULL}, /* above U+10FFFF */
        {"ab\xe0\xa6", NULL},       /* cut */
    };
    struct con_buf b = {NULL, 0, 0};
    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        b.len = 0;
        assert_int_equal(con_json_str(&b, t[i].s), t[i].text ? 0 : -1);
        if (t[i].text)
            assert_string_equal(b.p, t[i].text);
        else
            assert_true(b.p == NULL || b.p[0] == '\0');
        assert_int_equal(same_as_jansson(t[i].s), t[i].text != NULL);
    }
    b.len = 0;
    assert_int_equal(con_json_str(&b, NULL), 0);
    assert_string_equal(b.p, "null");
    free(b.p);
}

static void
test_random(void **state)
{
    char s[24];
    int valid = 0;
    (void)state;
    srand(23);
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(rand() % 20);
        for (size_t k = 0; k < n; k++) {
            /* mostly ASCII and Bangla's lead and continuation bytes */
            static const unsigned char pick[] = {'a',  '"',  '\\', '\n', 0x01,
                                                 0x1f, 0x7f, 0xe0, 0xa6, 0x95,
                                                 0xc3, 0xf0, 0x9f};
            s[k] = (char)(rand() % 3 ? pick[rand() % (int)sizeof(pick)]
                                     : 1 + rand() % 255);
        }
        s[n] = '\0';
        valid += same_as_jansson(s);
    }
    assert_true(valid > 1000 && valid < 19000); /* both kinds were tried */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
