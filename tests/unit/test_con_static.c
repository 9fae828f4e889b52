/*
 * test_con_static.c -- the console file server's pure parts, table by
 * table: which request paths name which file (and why the others are
 * refused: every traversal spelling ends here), and If-None-Match against a
 * strong ETag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "console/con_int.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

static void
t_paths(void **state)
{
    static const struct {
        const char *path;
        const char *name; /* NULL: refused */
    } rows[] = {
        {"/console/", "index.html"},
        {"/console/index.html", "index.html"},
        {"/console/js/app.js", "js/app.js"},
        {"/console/vendor/qrcode.mjs", "vendor/qrcode.mjs"},
        {"/console/a-b_c.d/e.css", "a-b_c.d/e.css"},
        {"/console", NULL},
        {"/consolex/index.html", NULL},
        {"/api/records", NULL},
        {"/console/../secret", NULL},
        {"/console/..", NULL},
        {"/console/js/../index.html", NULL},
        {"/console/./index.html", NULL},
        {"/console/.git/config", NULL},
        {"/console/.hidden", NULL},
        {"/console//index.html", NULL},
        {"/console/js/", NULL},
        {"/console/%2e%2e/secret", NULL},
        {"/console/..%2fsecret", NULL},
        {"/console/%2F", NULL},
        {"/console/index.html%00.js", NULL},
        {"/console/..\\secret", NULL},
        {"/console/a b.html", NULL},
        {"/console/\xc3\xa9.html", NULL},
        {"/console/index.html?x=1", NULL}, /* the query is not in the path */
    };
    char name[64];

    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        const char *why = con_static_path(rows[i].path, strlen(rows[i].path),
                                          name, sizeof(name));
        if (rows[i].name == NULL) {
            if (why == NULL) fail_msg("%s: accepted as %s", rows[i].path, name);
        } else {
            if (why != NULL) fail_msg("%s: refused (%s)", rows[i].path, why);
            assert_string_equal(name, rows[i].name);
        }
    }
    /* a NUL inside the given length is refused, not cut short */
    static const char nul[] = "/console/index.html\0../x";
    assert_non_null(con_static_path(nul, sizeof(nul) - 1, name, sizeof(name)));
    /* longer than the buffer: refused, never truncated */
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    memcpy(longp, "/console/", 9);
    longp[sizeof(longp) - 1] = '\0';
    assert_non_null(con_static_path(longp, strlen(longp), name, sizeof(name)));
}

static void
t_etags(void **state)
{
    static const char tag[] = "\"0123456789abcdef0123456789abcdef\"";
    static const struct {
        const char *inm;
        int match;
    } rows[] = {
        {"\"0123456789abcdef0123456789abcdef\"", 1},
        {"W/\"0123456789abcdef0123456789abcdef\"", 1},
        {"\"x\", \"0123456789abcdef0123456789abcdef\"", 1},
        {"\"x\",W/\"0123456789abcdef0123456789abcdef\" , \"y\"", 1},
        {"*", 1},
        {" * ", 1},
        {"\"x\", *", 1},
        {"", 0},
        {"\"x\"", 0},
        {"0123456789abcdef0123456789abcdef", 0},      /* unquoted */
        {"\"0123456789abcdef0123456789abcdef", 0},    /* unterminated */
        {"\"0123456789abcdef0123456789abcde\"", 0},   /* one short */
        {"\"0123456789abcdef0123456789abcdef0\"", 0}, /* one long */
        {"*x", 0},
        {"W/", 0},
        {",,,", 0},
    };

    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++)
        if (con_etag_match(rows[i].inm, strlen(rows[i].inm), tag) !=
            rows[i].match)
            fail_msg("If-None-Match: %s: want %d", rows[i].inm, rows[i].match);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_paths),
        cmocka_unit_test(t_etags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
