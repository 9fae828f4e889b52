/* fuzz: flows sessions store notices console gateway */
/*
 * fuzz_parts.c -- libFuzzer target for gw_parts_parse(): the value of a
 * number's parts key (parts:MSISDN, "BITS" or "BITS LANG"), read back from
 * Redis, where anyone who can write to Redis chooses its bytes.  Any input
 * is taken or refused without a crash; a refused one leaves no bits and no
 * language; a taken one is digits, then a space and a language of
 * lowercase letters or '-' shorter than FLOW_LANG_MAX when there is one,
 * its bits below 2^31; and what was taken, written back as the daemon
 * writes it, reads back the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_ussd_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *why)
{
    fprintf(stderr, "fuzz_parts: %s\n", why);
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned bits = 12345, again = 0;
    char lang[FLOW_LANG_MAX], lang2[FLOW_LANG_MAX], buf[64];
    const char *v = (const char *)data;
    if (gw_parts_parse(v, size, &bits, lang) < 0) {
        if (bits != 0 || lang[0] != '\0') fuzz_fail("refused, but set");
        return 0;
    }
    size_t nl = strspn(lang, "abcdefghijklmnopqrstuvwxyz-");
    if (bits > 0x7fffffffu) fuzz_fail("bits of 2^31 or more taken");
    if (nl != strlen(lang) || nl >= FLOW_LANG_MAX)
        fuzz_fail("a language of other characters taken");
    if (size == 0 || v[0] < '0' || v[0] > '9') fuzz_fail("no digit first");
    if (lang[0] != '\0' && (size < nl + 2 || v[size - nl - 1] != ' ' ||
                            memcmp(v + size - nl, lang, nl) != 0))
        fuzz_fail("the language is not the input's tail");
    int n = lang[0] ? snprintf(buf, sizeof(buf), "%u %s", bits, lang)
                    : snprintf(buf, sizeof(buf), "%u", bits);
    if (gw_parts_parse(buf, (size_t)n, &again, lang2) != 0 || again != bits ||
        strcmp(lang, lang2) != 0)
        fuzz_fail("written back, it reads otherwise");
    return 0;
}
