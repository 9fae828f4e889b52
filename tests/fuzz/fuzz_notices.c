/* fuzz: flows sessions store notices console gateway */
/*
 * fuzz_notices.c -- libFuzzer target for the text notices/ reads from
 * outside: delivery receipts (an SMSC's %A, through Kannel), notice
 * templates and placeholder values (officers' input), send windows
 * (config).  No input may crash them or make them read out of bounds, and
 * what they accept must keep its promises: a receipt's id is short and
 * printable, a rendered notice is UTF-8 within its bound and ends with the
 * STOP footer, a parsed window lies inside 06:00-22:00 and is never open at
 * night, and parts are counted as the units say.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flow.h"
#include "notices/notices.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *why)
{
    fprintf(stderr, "fuzz_notices: %s\n", why);
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *why;
    struct notices_receipt r;
    char out[NOTICES_TEXT_MAX + 1], spec[16];

    /* receipts */
    int rc = notices_receipt_parse(s, size, &r);
    if ((rc == 0) != (r.stat != NOTICES_STAT_NONE))
        fuzz_fail("receipt status and stat disagree");
    if (strlen(r.id) > NOTICES_RECEIPT_ID_MAX) fuzz_fail("receipt id overrun");
    for (const char *p = r.id; *p; p++)
        if (*p <= 0x20 || *p >= 0x7F) fuzz_fail("receipt id not printable");
    if (notices_dlr_rstate(2, &r) != NOTICES_R_EXPIRED &&
        notices_dlr_rstate(2, &r) != NOTICES_R_UNDELIVERED)
        fuzz_fail("a failed report is neither expired nor undelivered");

    /* templates: the input as a template, its first line as a value */
    const char *nl = memchr(s, '\n', size);
    size_t vlen = nl ? (size_t)(nl - s) : size;
    char val[64];
    if (vlen >= sizeof(val)) vlen = sizeof(val) - 1;
    memcpy(val, s, vlen);
    val[vlen] = '\0';
    struct notices_vars v = {"J12", val, "01711000000"};
    int n = notices_render(s, size, &v, size & 1, out, sizeof(out), &why);
    if (n >= 0) {
        const char *foot = size & 1 ? NOTICES_FOOTER_BN : NOTICES_FOOTER_EN;
        size_t fl = strlen(foot);
        if (notices_template_check(s, size) != NULL)
            fuzz_fail("rendered a template the check refuses");
        if ((size_t)n != strlen(out) || n > NOTICES_TEXT_MAX)
            fuzz_fail("rendered length");
        if (!flow_utf8_valid(out, (size_t)n)) fuzz_fail("rendered non-UTF-8");
        if ((size_t)n < fl || memcmp(out + n - fl, foot, fl) != 0)
            fuzz_fail("rendered without the STOP footer");
        struct notices_parts p;
        notices_parts_count(out, (size_t)n, &p);
        unsigned one = p.ucs2 ? NOTICES_UCS2_SINGLE : NOTICES_GSM7_SINGLE;
        unsigned per = p.ucs2 ? NOTICES_UCS2_MULTI : NOTICES_GSM7_MULTI;
        if (p.parts == 0 || (p.parts == 1) != (p.units <= one) ||
            (p.parts > 1 && (p.parts - 1) * per >= p.units) ||
            (p.parts > 1 && p.parts * per < p.units))
            fuzz_fail("parts do not match the units");
    } else if (why == NULL) {
        fuzz_fail("refused without a reason");
    }

    /* windows */
    if (size >= 11) {
        struct notices_window w = {0, 0};
        memcpy(spec, s, 11);
        spec[11] = '\0';
        if (notices_window_parse(spec, &w) == NULL) {
            if (w.open_min < NOTICES_WINDOW_EARLIEST ||
                w.close_min > NOTICES_WINDOW_LATEST ||
                w.open_min >= w.close_min)
                fuzz_fail("accepted a window outside 06:00-22:00");
        }
        /* any window, any time: never open at night */
        struct notices_window any = {(int)(data[0] * 7) - 100,
                                     (int)(data[1] * 7)};
        long long now = 0;
        memcpy(&now, s + 2, sizeof(now) < 8 ? sizeof(now) : 8);
        now %= 4000000000LL;
        struct notices_slot sl;
        notices_window_at(&any, now, &sl);
        if (sl.open && (sl.minute_of_day < NOTICES_WINDOW_EARLIEST ||
                        sl.minute_of_day >= NOTICES_WINDOW_LATEST))
            fuzz_fail("open at night");
        if (sl.open && now + sl.validity_min * 60LL > sl.closes_at)
            fuzz_fail("validity past the window");
        if (!sl.open && sl.next_open <= now) fuzz_fail("next open not ahead");
    }
    return 0;
}
