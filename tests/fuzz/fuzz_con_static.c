/* fuzz: flows sessions store gateway console notices */
/*
 * fuzz_con_static.c -- libFuzzer target for what a browser sends the
 * console's file server: the request path and If-None-Match.  The input is
 * split at its first newline into a path and an If-None-Match value.  No
 * input may crash either parser or read out of bounds, and an accepted path
 * must keep the promise that makes traversal impossible: a name of
 * [A-Za-z0-9_./-] whose segments are neither empty nor start with '.', so
 * it can only be an exact name of a loaded file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/con_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *why)
{
    fprintf(stderr, "fuzz_con_static: %s\n", why);
    abort();
}

static void
fuzz_name(const char *name)
{
    size_t n = strlen(name);
    int seg = 1;

    if (n == 0) fuzz_fail("empty name accepted");
    if (name[n - 1] == '/') fuzz_fail("trailing slash accepted");
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '/') {
            if (seg) fuzz_fail("empty segment accepted");
            seg = 1;
            continue;
        }
        if (seg && c == '.') fuzz_fail("dot segment accepted");
        seg = 0;
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_.-",
                    c))
            fuzz_fail("byte outside the name set accepted");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - data) : size;
    char *path = malloc(plen + 1);
    char name[256];
    const char *etag = "\"0123456789abcdef0123456789abcdef\"";

    if (path == NULL) return 0;
    memcpy(path, in, plen);
    path[plen] = '\0';
    if (con_static_path(path, plen, name, sizeof(name)) == NULL)
        fuzz_name(name);
    free(path);
    if (nl != NULL) {
        size_t off = plen + 1, len = size - off;
        char *inm = malloc(len ? len : 1);
        if (inm == NULL) return 0;
        memcpy(inm, in + off, len); /* exactly len bytes: ASan sees overreads */
        int m = con_etag_match(inm, len, etag);
        if (m != 0 && m != 1) fuzz_fail("match is neither 0 nor 1");
        if (len == strlen(etag) && memcmp(inm, etag, len) == 0 && m != 1)
            fuzz_fail("the tag itself does not match");
        free(inm);
    }
    return 0;
}
