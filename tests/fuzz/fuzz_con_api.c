/* fuzz: flows sessions store notices console gateway */
/*
 * fuzz_con_api.c -- libFuzzer target for the console dispatcher's two
 * parsers: the route matcher (the input as a path, tried against every
 * pattern of the real route table) and the session cookie (the input as
 * a Cookie header).  Neither may crash or read out of bounds; a match
 * must be the pattern with each "{}" replaced by its parameter (a
 * non-empty [A-Za-z0-9._-] segment), and a cookie found must be 32
 * lower-case hex digits that appear in the input after "remigate_console=".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/con_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *why, const char *in)
{
    fprintf(stderr, "fuzz_con_api: %s: %s\n", why, in);
    abort();
}

/* Rebuild the path from pattern and params: it must be the input. */
static void
fuzz_check_match(const char *pattern, const char *path,
                 char params[CON_PARAMS_MAX][CON_PARAM_MAX], int n)
{
    char again[4096];
    size_t used = 0;
    int k = 0;

    for (const char *p = pattern; *p && used < sizeof(again) - 1;) {
        if (p[0] == '{' && p[1] == '}') {
            if (k >= n || params[k][0] == '\0') fuzz_fail("param", path);
            for (const char *c = params[k]; *c; c++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
                            "XYZ0123456789._-",
                            *c))
                    fuzz_fail("param character", path);
            used += (size_t)snprintf(again + used, sizeof(again) - used, "%s",
                                     params[k++]);
            p += 2;
        } else {
            again[used++] = *p++;
        }
    }
    again[used] = '\0';
    if (k != n || strcmp(again, path) != 0) fuzz_fail("rebuilt", path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1), params[CON_PARAMS_MAX][CON_PARAM_MAX];
    char sid[CON_TOKEN_HEX + 1];
    int n;

    if (in == NULL) return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    for (const struct con_route *const *t = con_route_tables; *t; t++)
        for (const struct con_route *x = *t; x->pattern; x++) {
            n = -1;
            if (con_path_match(x->pattern, in, params, &n))
                fuzz_check_match(x->pattern, in, params, n);
        }
    if (con_cookie_parse(in, sid)) {
        const char *at = strstr(in, "remigate_console=");
        if (strlen(sid) != CON_TOKEN_HEX ||
            strspn(sid, "0123456789abcdef") != CON_TOKEN_HEX || at == NULL ||
            strstr(in, sid) == NULL)
            fuzz_fail("cookie", in);
    }
    free(in);
    return 0;
}
