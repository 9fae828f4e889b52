/* fuzz: flows sessions store notices console gateway */
/*
 * fuzz_kannel_mo.c -- libFuzzer target for what arrives from the network:
 * the Kannel MO query, the aggregator form, Kannel meta-data and the
 * aggregator's '*' joined text.  No input may crash a parser or make it
 * read out of bounds, and whatever a parser accepts must keep its promises:
 * an accepted MO has a normalised Bangladesh MSISDN and UTF-8 text without
 * NUL within its bound, and its session bytes survive the reply meta-data
 * round trip.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flow.h"
#include "gateway/gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *why)
{
    fprintf(stderr, "fuzz_kannel_mo: %s\n", why);
    abort();
}

static void
fuzz_msisdn(const char *m)
{
    if (strlen(m) != 13 || memcmp(m, "8801", 4) != 0 || m[4] < '3' ||
        m[4] > '9')
        fuzz_fail("accepted a malformed MSISDN");
    for (int i = 0; i < 13; i++)
        if (m[i] < '0' || m[i] > '9') fuzz_fail("accepted a malformed MSISDN");
}

static void
fuzz_text(const char *t, size_t len, size_t max)
{
    if (len > max || strlen(t) != len) fuzz_fail("text length or NUL");
    if (!flow_utf8_valid(t, len)) fuzz_fail("accepted text that is not UTF-8");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gw_kannel_mo mo;
    static struct gw_at_req at;
    static struct gw_meta meta;
    const char *s = (const char *)data, *why = NULL;
    char reply[128];

    if (gw_kannel_mo_parse(s, size, &mo, &why) == GW_OK) {
        fuzz_msisdn(mo.msisdn);
        fuzz_text(mo.text, mo.text_len, GW_MO_TEXT_MAX);
        if (mo.has_sess) {
            const unsigned char *v;
            size_t vlen;
            int n = gw_kannel_meta_reply(1, mo.sess, 1, reply, sizeof(reply));
            if (n < 0 || gw_meta_parse(reply, (size_t)n, &meta, &why) != 0)
                fuzz_fail("our reply meta-data does not parse");
            v = gw_meta_get(&meta, "smpp", "its_session_info", &vlen);
            if (v == NULL || vlen != 2 || v[0] != mo.sess[0] ||
                v[1] != (mo.sess[1] | 1))
                fuzz_fail("session bytes changed in the round trip");
        }
    } else if (why == NULL) {
        fuzz_fail("refused without a reason");
    }

    if (gw_at_parse(s, size, &at, &why) == GW_OK) {
        const char *in;
        size_t len;
        fuzz_msisdn(at.msisdn);
        fuzz_text(at.text, at.text_len, GW_AT_TEXT_MAX);
        /* Every non-empty prefix of the text ending before a '*' is a
         * previous step; the input found must be the rest.  (An empty
         * prev is the dial: then the whole text is the input.) */
        for (size_t i = 1; i < at.text_len; i++) {
            char prev[GW_AT_TEXT_MAX + 1];
            if (at.text[i] != '*') continue;
            memcpy(prev, at.text, i);
            prev[i] = '\0';
            if (gw_at_new_input(prev, at.text, &in, &len) != GW_AT_INPUT ||
                in != at.text + i + 1 || len != at.text_len - i - 1)
                fuzz_fail("new input is not what follows prev*");
        }
    }

    if (gw_meta_parse(s, size, &meta, &why) == GW_OK && meta.n > GW_META_MAX)
        fuzz_fail("too many meta items");
    return 0;
}
