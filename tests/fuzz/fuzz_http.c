/* fuzz: flows sessions store notices console gateway */
/*
 * fuzz_http.c -- libFuzzer target for the request framing check (the
 * input as a header block, "Name: value" lines) and the log's phone
 * number mask (the input as a number).  No input may crash
 * gw_framing_check() or make it read out of bounds, and what it accepts
 * must be delimited one way only: no Transfer-Encoding beside a
 * Content-Length, at most one Transfer-Encoding, and every Content-Length
 * element the same number.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_HEADERS 16

static void
fuzz_fail(const char *why)
{
    fprintf(stderr, "fuzz_http: %s\n", why);
    abort();
}

/* An independent reading of what was accepted. */
static void
fuzz_accepted(const struct gw_header *h, size_t n)
{
    int te = 0, cl = 0;
    unsigned long long len = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "Transfer-Encoding") == 0) te++;
        if (strcasecmp(h[i].name, "Content-Length") != 0) continue;
        const char *p = h[i].value;
        while (*p) {
            char *end;
            if (*p == ',' || *p == ' ' || *p == '\t') {
                p++;
                continue;
            }
            if (*p < '0' || *p > '9') fuzz_fail("accepted a non-digit");
            unsigned long long x = strtoull(p, &end, 10);
            if (cl++ && x != len) fuzz_fail("accepted two lengths");
            len = x;
            p = end;
        }
    }
    if (te > 1) fuzz_fail("accepted two Transfer-Encoding headers");
    if (te && cl) fuzz_fail("accepted Transfer-Encoding with Content-Length");
}

/* The log's phone number mask: the length kept (up to the buffer), and
 * nothing but the first five and last two characters shown. */
static void
fuzz_mask(const char *in)
{
    char out[GW_MSISDN_MAX];
    size_t n = strlen(in);
    if (n > sizeof(out) - 1) n = sizeof(out) - 1;
    gw_msisdn_mask(out, sizeof(out), in);
    if (strlen(out) != n) fuzz_fail("mask changed the length");
    for (size_t i = n >= 9 ? 5 : 0; i + 2 < n; i++)
        if (out[i] != '*') fuzz_fail("mask showed a middle character");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *line, *next;
    struct gw_header h[FUZZ_HEADERS];
    size_t n = 0;

    if (buf == NULL) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    fuzz_mask(buf);
    for (line = buf; line != NULL && n < FUZZ_HEADERS; line = next) {
        char *colon;
        next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        if ((colon = strchr(line, ':')) == NULL) continue;
        *colon = '\0';
        h[n].name = line;
        h[n].value = colon + 1;
        n++;
    }
    if (gw_framing_check(h, n) == NULL) fuzz_accepted(h, n);
    free(buf);
    return 0;
}
