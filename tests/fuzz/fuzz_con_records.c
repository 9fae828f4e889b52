/* fuzz: flows sessions store notices console gateway */
/*
 * fuzz_con_records.c -- libFuzzer target for the records API's parsers,
 * each given the input as a string: If-Match, a date filter, a queue
 * cursor and a search word.  None may crash or read out of bounds, and
 * what each accepts must keep its promise: a version is the input's
 * digits; a date is 10 characters YYYY-MM-DD; a cursor's parts are the
 * digits on either side of its dot; a search word's forms are exact
 * (a phone number of 12..15 digits, an NID of 10/13/17 digits, a
 * reference or passport number of upper-case letters and digits).
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
    fprintf(stderr, "fuzz_con_records: %s: %s\n", why, in);
    abort();
}

static int
fuzz_all(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[256], at[24], id[24], digits[32];
    struct con_search cs;
    size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1, k = 0;

    memcpy(in, data, n);
    in[n] = '\0';

    long long v = con_if_match_parse(in);
    if (v >= 0) {
        for (const char *p = in; *p && k + 1 < sizeof(digits); p++)
            if (*p >= '0' && *p <= '9') digits[k++] = *p;
        digits[k] = '\0';
        if (k == 0 || k > 18 || strtoll(digits, NULL, 10) != v)
            fuzz_fail("a version that is not the input's digits", in);
    }
    if (con_date_ok(in) && (strlen(in) != 10 || in[4] != '-' || in[7] != '-' ||
                            !fuzz_all(in, "0123456789-")))
        fuzz_fail("a date that is not YYYY-MM-DD", in);
    if (con_cursor_parse(in, at, sizeof(at), id, sizeof(id)) == 0) {
        char back[64];
        snprintf(back, sizeof(back), "%s.%s", at, id);
        if (strcmp(back, in) != 0 || !fuzz_all(at, "0123456789") ||
            !fuzz_all(id, "0123456789") || at[0] == '\0' || id[0] == '\0')
            fuzz_fail("a cursor that is not MICROS.ID", in);
    }
    if (con_search_parse(in, &cs) == 0) {
        size_t len = strlen(cs.norm);
        if (cs.phone[0] && (!fuzz_all(cs.phone, "0123456789") ||
                            strlen(cs.phone) < 12 || strlen(cs.phone) > 15))
            fuzz_fail("a phone number that is not E.164 digits", in);
        if (cs.nid && (!fuzz_all(cs.norm, "0123456789") ||
                       (len != 10 && len != 13 && len != 17)))
            fuzz_fail("an NID of the wrong form", in);
        if ((cs.ref || cs.passport) &&
            !fuzz_all(cs.norm, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
            fuzz_fail("a reference or passport of other characters", in);
        if (cs.ref && len > CON_REF_MAX) fuzz_fail("a reference too long", in);
        if (len == 0) fuzz_fail("an empty search accepted", in);
    }
    return 0;
}
