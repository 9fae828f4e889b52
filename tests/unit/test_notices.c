/*
 * test_notices.c -- the pure rules of programme notices, table by table:
 * the send window in Asia/Dhaka with a clock set by the test (validity
 * clipped at the window's end, the night never open whatever the window
 * says), the token bucket, the per-person cap, parts and cost, templates
 * and the STOP footer, delivery receipts, and the state machines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "notices/notices.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* Unix time of a Dhaka wall-clock time (UTC+6), computed here from the
 * civil calendar (days from 1970-01-01, Howard Hinnant's algorithm), not
 * by the code under test. */
static long long
dhaka(int y, int m, int d, int hh, int mm)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    return days * 86400 + hh * 3600 + mm * 60 - 6 * 3600;
}

static void
t_dhaka_anchor(void **state)
{
    (void)state;
    /* date -u -d '2026-12-02 03:15' +%s  (09:15 in Dhaka) */
    assert_int_equal(dhaka(2026, 12, 2, 9, 15), 1796181300LL);
}

static void
t_window_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int ok, open, close;
    } rows[] = {
        {"09:00-20:00", 1, 540, 1200},
        {"06:00-22:00", 1, 360, 1320},
        {"10:30-17:45", 1, 630, 1065},
        {"05:59-20:00", 0, 0, 0},
        {"09:00-22:01", 0, 0, 0},
        {"00:00-06:00", 0, 0, 0},
        {"20:00-09:00", 0, 0, 0},
        {"09:00-09:00", 0, 0, 0},
        {"9:00-20:00", 0, 0, 0},
        {"09:60-20:00", 0, 0, 0},
        {"09:00-24:00", 0, 0, 0},
        {"09:00 20:00", 0, 0, 0},
        {"", 0, 0, 0},
        {"09:00-20:00x", 0, 0, 0},
        {"ab:cd-ef:gh", 0, 0, 0},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        struct notices_window w = {-1, -1};
        const char *why = notices_window_parse(rows[i].in, &w);
        if (rows[i].ok) {
            assert_null(why);
            assert_int_equal(w.open_min, rows[i].open);
            assert_int_equal(w.close_min, rows[i].close);
        } else {
            assert_non_null(why);
            assert_int_equal(w.open_min, -1); /* unchanged */
        }
    }
    assert_non_null(notices_window_parse(NULL, &(struct notices_window){0}));
}

static void
t_window_at(void **state)
{
    (void)state;
    static const struct {
        int open, close; /* window, minutes */
        int hh, mm;      /* now, Dhaka, on 2026-12-02 */
        int is_open;
        int validity;         /* if open */
        int next_day, nh, nm; /* if closed: next open, day offset */
    } rows[] = {
        /* default window 09:00-20:00 */
        {540, 1200, 8, 59, 0, 0, 0, 9, 0},
        {540, 1200, 9, 0, 1, 660, 0, 0, 0},
        {540, 1200, 12, 0, 1, 480, 0, 0, 0},
        {540, 1200, 19, 0, 1, 60, 0, 0, 0},
        {540, 1200, 19, 30, 1, 30, 0, 0, 0},
        {540, 1200, 19, 31, 0, 0, 1, 9, 0}, /* < 30 min left: tomorrow */
        {540, 1200, 20, 0, 0, 0, 1, 9, 0},
        {540, 1200, 23, 59, 0, 0, 1, 9, 0},
        {540, 1200, 0, 0, 0, 0, 0, 9, 0},
        {540, 1200, 3, 0, 0, 0, 0, 9, 0},
        /* widest window allowed */
        {360, 1320, 6, 0, 1, 960, 0, 0, 0},
        {360, 1320, 5, 59, 0, 0, 0, 6, 0},
        {360, 1320, 21, 0, 1, 60, 0, 0, 0},
        /* a window made by hand that reaches into the night is clipped */
        {0, 1440, 2, 0, 0, 0, 0, 6, 0},
        {0, 1440, 6, 0, 1, 960, 0, 0, 0},
        {0, 1440, 22, 30, 0, 0, 1, 6, 0},
        {0, 1440, 21, 45, 0, 0, 1, 6, 0},
        /* nonsense (open after close): the default */
        {1200, 540, 10, 0, 1, 600, 0, 0, 0},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        struct notices_window w = {rows[i].open, rows[i].close};
        struct notices_slot s;
        long long now = dhaka(2026, 12, 2, rows[i].hh, rows[i].mm);
        notices_window_at(&w, now, &s);
        assert_int_equal(s.minute_of_day, rows[i].hh * 60 + rows[i].mm);
        if (s.open != rows[i].is_open)
            fail_msg("row %zu: open %d, want %d", i, s.open, rows[i].is_open);
        if (rows[i].is_open) {
            assert_int_equal(s.validity_min, rows[i].validity);
            /* the SMSC gives up before the window closes */
            assert_true(now + s.validity_min * 60LL <= s.closes_at);
            assert_true(s.closes_at - now <
                        (long long)(s.validity_min + 1) * 60);
        } else {
            assert_int_equal(s.next_open, dhaka(2026, 12, 2 + rows[i].next_day,
                                                rows[i].nh, rows[i].nm));
        }
    }
}

/* Every minute of two days, for every window notices_window_parse()
 * accepts on a 30-minute grid: open exactly when inside the window (less
 * the last 30 min), never between 00:00 and 06:00 or at/after 22:00,
 * validity never past the close, next_open always in the future and
 * inside the window. */
static void
t_window_sweep(void **state)
{
    (void)state;
    long long day0 = dhaka(2026, 3, 1, 0, 0);
    for (int o = 0; o < 48; o++) {
        for (int c = o + 1; c <= 48; c++) {
            char spec[40];
            struct notices_window w;
            snprintf(spec, sizeof(spec), "%02d:%02d-%02d:%02d", o / 2,
                     o % 2 * 30, c / 2, c % 2 * 30);
            if (notices_window_parse(spec, &w) != NULL) {
                assert_true(o < 12 || c > 44);
                continue;
            }
            for (long long t = day0; t < day0 + 2 * 86400; t += 60) {
                struct notices_slot s;
                notices_window_at(&w, t, &s);
                int mod = s.minute_of_day;
                int want = mod >= w.open_min && mod + 30 <= w.close_min;
                assert_int_equal(s.open, want);
                if (s.open) {
                    assert_true(mod >= 360 && mod < 1320);
                    assert_true(t + s.validity_min * 60LL <= s.closes_at);
                    assert_true(s.validity_min >= 30);
                } else {
                    struct notices_slot n;
                    assert_true(s.next_open > t);
                    assert_true(s.next_open - t <= 86400);
                    notices_window_at(&w, s.next_open, &n);
                    assert_int_equal(n.minute_of_day, w.open_min);
                }
            }
        }
    }
}

static void
t_bucket(void **state)
{
    (void)state;
    struct notices_bucket b;
    long long now = 1000000;

    notices_bucket_init(&b, 10, 0, now);
    /* a full second's worth at once */
    for (int i = 0; i < 10; i++)
        assert_int_equal(notices_bucket_take(&b, 1, now), 0);
    long long w = notices_bucket_take(&b, 1, now);
    assert_true(w >= 100 && w <= 101);
    assert_int_equal(notices_bucket_take(&b, 1, now + 100), 0);

    /* a steady minute at 10/s: 600 parts (+ the first burst) */
    notices_bucket_init(&b, 10, 0, now);
    int sent = 0;
    for (long long t = now; t < now + 60000;) {
        long long wait = notices_bucket_take(&b, 2, t);
        if (wait == 0) {
            sent += 2;
            continue;
        }
        t += wait;
    }
    assert_true(sent >= 600 && sent <= 612);

    /* a message bigger than the bucket leaves it in debt */
    notices_bucket_init(&b, 2, 2, now);
    assert_int_equal(notices_bucket_take(&b, 6, now), 0);
    w = notices_bucket_take(&b, 1, now);
    assert_true(w >= 2500 && w <= 2501); /* -4 tokens, 1 needed: 2.5 s */

    /* hold: nothing for 1 s, then an empty bucket */
    notices_bucket_init(&b, 10, 0, now);
    notices_bucket_hold(&b, now, 1000);
    assert_int_equal(notices_bucket_take(&b, 1, now + 10), 990);
    w = notices_bucket_take(&b, 1, now + 1000);
    assert_true(w >= 100 && w <= 101);
    assert_int_equal(notices_bucket_take(&b, 1, now + 1100), 0);

    /* wait: how long until n tokens are there, nothing taken */
    notices_bucket_init(&b, 200, 0, now);
    for (int i = 0; i < 200; i++)
        assert_int_equal(notices_bucket_take(&b, 1, now), 0);
    assert_int_equal(notices_bucket_wait(&b, 0, now), 0);
    assert_int_equal(notices_bucket_wait(&b, 4, now), 21);      /* 20 ms */
    assert_int_equal(notices_bucket_wait(&b, 4, now + 10), 11); /* 2 there */
    assert_int_equal(notices_bucket_wait(&b, 4, now + 20), 0);
    assert_int_equal(notices_bucket_wait(&b, 4, now + 10), 11); /* unchanged */
    for (int i = 0; i < 4; i++)
        assert_int_equal(notices_bucket_take(&b, 1, now + 21), 0);
    assert_true(notices_bucket_take(&b, 1, now + 21) > 0);
    /* more than the bucket holds: a full bucket is enough */
    notices_bucket_init(&b, 2, 2, now);
    assert_int_equal(notices_bucket_wait(&b, 6, now), 0);
    /* a hold counts */
    notices_bucket_hold(&b, now, 700);
    assert_int_equal(notices_bucket_wait(&b, 1, now + 200), 500);

    /* a clock that goes back gives no tokens */
    notices_bucket_init(&b, 1, 1, now);
    assert_int_equal(notices_bucket_take(&b, 1, now), 0);
    assert_true(notices_bucket_take(&b, 1, now - 5000) > 0);
}

static void
t_cap(void **state)
{
    (void)state;
    const long long D = 86400, now = dhaka(2026, 12, 2, 12, 0);
    static const struct notices_cap def = {2, 7, 3};
    struct {
        struct notices_cap cap;
        long long ago[5];
        size_t n;
        int allowed;
    } rows[] = {
        {def, {0}, 0, 1},
        {def, {3 * D}, 1, 1},
        {def, {3 * D, 6 * D}, 2, 0},
        {def, {3 * D, 7 * D}, 2, 1}, /* exactly 7 days ago: out */
        {def, {3 * D, 7 * D - 1}, 2, 0},
        {def, {10 * D, 20 * D, 30 * D}, 3, 1},
        {{10, 7, 3}, {60, 120, 180}, 3, 0}, /* 3 today */
        {{10, 7, 3}, {60, 120, D}, 3, 1},   /* 2 in 24 h */
        {{10, 7, 9}, {60, 120, 180}, 3, 0}, /* 9/day is 3 */
        {{10, 7, 1}, {60}, 1, 0},
        {{10, 7, 1}, {D}, 1, 1},
        {def, {-3600}, 1, 1}, /* future counts */
        {{1, 7, 3}, {-3600}, 1, 0},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        long long sent[5];
        for (size_t k = 0; k < rows[i].n; k++)
            sent[k] = now - rows[i].ago[k];
        int got = notices_cap_allows(&rows[i].cap, sent, rows[i].n, now);
        if (got != rows[i].allowed)
            fail_msg("row %zu: allows %d, want %d", i, got, rows[i].allowed);
    }
    assert_null(notices_cap_check(&def));
    assert_non_null(notices_cap_check(&(struct notices_cap){2, 7, 4}));
    assert_non_null(notices_cap_check(&(struct notices_cap){0, 7, 3}));
    assert_non_null(notices_cap_check(&(struct notices_cap){2, 0, 3}));
}

/* n copies of a UTF-8 string. */
static const char *
rep(const char *s, int n)
{
    static char buf[8192];
    size_t o = 0, l = strlen(s);
    for (int i = 0; i < n && o + l < sizeof(buf); i++, o += l)
        memcpy(buf + o, s, l);
    buf[o] = '\0';
    return buf;
}

static void
t_parts(void **state)
{
    (void)state;
    static const struct {
        const char *unit;
        int n;
        int ucs2;
        unsigned units, parts;
    } rows[] = {
        {"a", 0, 0, 0, 0},
        {"a", 1, 0, 1, 1},
        {"a", 160, 0, 160, 1},
        {"a", 161, 0, 161, 2},
        {"a", 306, 0, 306, 2},
        {"a", 307, 0, 307, 3},
        {"{", 80, 0, 160, 1}, /* an extension character is 2 septets */
        {"{", 81, 0, 162, 2},
        {"\xe0\xa6\x95", 70, 1, 70, 1}, /* ক */
        {"\xe0\xa6\x95", 71, 1, 71, 2},
        {"\xe0\xa6\x95", 134, 1, 134, 2},
        {"\xe0\xa6\x95", 135, 1, 135, 3},
        {"\xf0\x9f\x98\x80", 35, 1, 70, 1}, /* a surrogate pair: 2 units */
        {"\xf0\x9f\x98\x80", 36, 1, 72, 2},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        struct notices_parts p;
        const char *t = rep(rows[i].unit, rows[i].n);
        notices_parts_count(t, strlen(t), &p);
        if (p.ucs2 != rows[i].ucs2 || p.units != rows[i].units ||
            p.parts != rows[i].parts)
            fail_msg("row %zu: ucs2 %d units %u parts %u, want %d %u %u", i,
                     p.ucs2, p.units, p.parts, rows[i].ucs2, rows[i].units,
                     rows[i].parts);
    }
    /* One Bangla letter in English text makes all of it UCS-2. */
    struct notices_parts p;
    const char *mixed = "Training at TTC Cumilla \xe0\xa6\x95";
    notices_parts_count(mixed, strlen(mixed), &p);
    assert_int_equal(p.ucs2, 1);
    assert_int_equal(notices_cost_paisa(3, 35), 105);
    assert_int_equal(notices_cost_paisa(0, 35), 0);
}

static void
t_template_check(void **state)
{
    (void)state;
    static const struct {
        const char *tpl;
        int ok;
    } rows[] = {
        {"Reply {code} by {deadline}, call {phone}", 1},
        {"no placeholders", 1},
        {"two\nlines", 1},
        {"{code}{code}", 1},
        {"", 0},
        {"{name}", 0},
        {"{code", 0},
        {"code}", 0},
        {"{{code}}", 0},
        {"{ code}", 0},
        {"{CODE}", 0},
        {"tab\there", 0},
        {"cr\rhere", 0},
        {"bad \xc3\x28 utf8", 0},
        {"\xed\xa0\x80 surrogate", 0},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        const char *why =
            notices_template_check(rows[i].tpl, strlen(rows[i].tpl));
        if ((why == NULL) != rows[i].ok)
            fail_msg("row %zu (%s): %s", i, rows[i].tpl, why ? why : "ok");
    }
    char big[NOTICES_TEXT_MAX + 2];
    memset(big, 'a', sizeof(big));
    assert_non_null(notices_template_check(big, sizeof(big)));
    assert_null(notices_template_check(big, NOTICES_TEXT_MAX));
    assert_non_null(notices_template_check("a\0b", 3));
}

static void
t_render(void **state)
{
    (void)state;
    struct notices_vars v = {"J12", "2026-12-31", "01711000000"};
    char out[NOTICES_TEXT_MAX + 1];
    const char *why;
    const char *tpl = "Welding course. Reply {code} by {deadline}. "
                      "Call {phone}. ({code})";
    int n = notices_render(tpl, strlen(tpl), &v, 0, out, sizeof(out), &why);
    assert_null(why);
    assert_string_equal(out, "Welding course. Reply J12 by 2026-12-31. Call "
                             "01711000000. (J12)\nReply STOP to stop");
    assert_int_equal(n, (int)strlen(out));

    /* Bangla: the Bangla footer */
    const char *bn = "\xe0\xa6\x95\xe0\xa7\x8b\xe0\xa6\xb8 {code}";
    n = notices_render(bn, strlen(bn), &v, 1, out, sizeof(out), &why);
    assert_true(n > 0);
    assert_string_equal(
        out, "\xe0\xa6\x95\xe0\xa7\x8b\xe0\xa6\xb8 J12\n" NOTICES_FOOTER_BN);
    assert_string_equal(NOTICES_FOOTER_BN, "বন্ধ করতে বন্ধ লিখুন");

    /* NULL values are empty */
    struct notices_vars none = {NULL, NULL, NULL};
    n = notices_render("[{code}]", 8, &none, 0, out, sizeof(out), &why);
    assert_string_equal(out, "[]\nReply STOP to stop");

    /* refused: bad template, bad value, too long for cap */
    assert_int_equal(notices_render("{x}", 3, &v, 0, out, sizeof(out), &why),
                     -1);
    assert_non_null(why);
    struct notices_vars evil = {"J{12}", "", ""};
    assert_int_equal(
        notices_render("{code}", 6, &evil, 0, out, sizeof(out), &why), -1);
    struct notices_vars nl = {"J12\nSTOP", "", ""};
    assert_int_equal(
        notices_render("{code}", 6, &nl, 0, out, sizeof(out), &why), -1);
    char small[24];
    assert_int_equal(
        notices_render("0123456789", 10, &v, 0, small, sizeof(small), &why),
        -1);
    assert_string_equal(small, "");
    /* exactly fits: 10 + 1 + 18 = 29 bytes and the NUL */
    char fits[30];
    assert_int_equal(
        notices_render("0123456789", 10, &v, 0, fits, sizeof(fits), &why), 29);
    /* the rendered text stays within NOTICES_TEXT_MAX */
    char big[NOTICES_TEXT_MAX];
    memset(big, 'a', sizeof(big));
    assert_int_equal(
        notices_render(big, sizeof(big), &v, 0, out, sizeof(out), &why), -1);
}

static void
t_receipt(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        const char *id;
        enum notices_stat stat;
        int err;
    } rows[] = {
        {"id:0123456789 sub:001 dlvrd:001 submit date:2611221032 done "
         "date:2611221033 stat:DELIVRD err:000 text:Hello",
         0, "0123456789", NOTICES_STAT_DELIVRD, 0},
        {"id:77 sub:001 dlvrd:000 submit date:2611221032 done date:2611231032 "
         "stat:EXPIRED err:0FE text:",
         0, "77", NOTICES_STAT_EXPIRED, 0xFE},
        {"ID:a1b2 STAT:undeliv ERR:0x45", 0, "a1b2", NOTICES_STAT_UNDELIV,
         0x45},
        {"stat:REJECTD err:001 id:9", 0, "9", NOTICES_STAT_REJECTD, 1},
        {"id:1 stat:DELETED", 0, "1", NOTICES_STAT_DELETED, -1},
        {"id:1 stat:UNKNOWN", 0, "1", NOTICES_STAT_UNKNOWN, -1},
        {"id:1 stat:ACCEPTD", 0, "1", NOTICES_STAT_ACCEPTD, -1},
        {"id:1 stat:ENROUTE", 0, "1", NOTICES_STAT_ENROUTE, -1},
        {"id:1 stat:BUFFRED", 0, "1", NOTICES_STAT_BUFFRED, -1},
        {"id:1 stat:WEIRD err:12", 0, "1", NOTICES_STAT_OTHER, 12},
        /* the free text may say anything: it is not read */
        {"id:5 stat:UNDELIV err:001 text:stat:DELIVRD id:6", 0, "5",
         NOTICES_STAT_UNDELIV, 1},
        {"id:5 text:stat:DELIVRD", -1, "5", NOTICES_STAT_NONE, -1},
        /* a key inside a value is not a key */
        {"id:xstat:DELIVRD", -1, "xstat:DELIVRD", NOTICES_STAT_NONE, -1},
        {"ACK/", -1, "", NOTICES_STAT_NONE, -1},
        {"NACK/0x00000045/Submit failed", -1, "", NOTICES_STAT_NONE, -1},
        {"", -1, "", NOTICES_STAT_NONE, -1},
        {"stat:", 0, "", NOTICES_STAT_OTHER, -1},
        {"err:zz stat:DELIVRD", 0, "", NOTICES_STAT_DELIVRD, -1},
        {"err:123456789 stat:DELIVRD", 0, "", NOTICES_STAT_DELIVRD, -1},
    };
    for (size_t i = 0; i < NROWS(rows); i++) {
        struct notices_receipt r;
        int rc = notices_receipt_parse(rows[i].text, strlen(rows[i].text), &r);
        if (rc != rows[i].rc || r.stat != rows[i].stat ||
            strcmp(r.id, rows[i].id) != 0 || r.err != rows[i].err)
            fail_msg("row %zu: rc %d id '%s' stat %s err %d", i, rc, r.id,
                     notices_stat_name(r.stat), r.err);
    }
    /* a long id is cut, not overrun */
    char longid[300] = "id:";
    memset(longid + 3, '7', 200);
    longid[203] = '\0';
    struct notices_receipt r;
    notices_receipt_parse(longid, strlen(longid), &r);
    assert_int_equal(strlen(r.id), NOTICES_RECEIPT_ID_MAX);
    assert_int_equal(notices_receipt_parse(NULL, 0, &r), -1);
}

static void
t_dlr_rstate(void **state)
{
    (void)state;
    struct notices_receipt exp = {"1", NOTICES_STAT_EXPIRED, 0};
    struct notices_receipt und = {"1", NOTICES_STAT_UNDELIV, 0};
    struct notices_receipt rej = {"1", NOTICES_STAT_REJECTD, 0};
    struct notices_receipt none = {"", NOTICES_STAT_NONE, -1};
    static const struct {
        int type;
        int which; /* 0 NULL, 1 exp, 2 und, 3 rej, 4 none */
        enum notices_rstate want;
    } rows[] = {
        {1, 0, NOTICES_R_DELIVERED},      {2, 1, NOTICES_R_EXPIRED},
        {2, 2, NOTICES_R_UNDELIVERED},    {2, 3, NOTICES_R_UNDELIVERED},
        {2, 0, NOTICES_R_UNDELIVERED},    {2 | 0x20, 0, NOTICES_R_EXPIRED},
        {2 | 0x20, 4, NOTICES_R_EXPIRED}, {2 | 0x40, 2, NOTICES_R_UNDELIVERED},
        {4, 0, NOTICES_R_BUFFERED},       {8, 0, NOTICES_R_SUBMITTED},
        {16, 0, NOTICES_R_REJECTED},      {0, 0, NOTICES_RSTATE_INVALID},
        {32, 0, NOTICES_RSTATE_INVALID},
    };
    const struct notices_receipt *rs[] = {NULL, &exp, &und, &rej, &none};
    for (size_t i = 0; i < NROWS(rows); i++)
        assert_int_equal(notices_dlr_rstate(rows[i].type, rs[rows[i].which]),
                         rows[i].want);
}

static void
t_states(void **state)
{
    (void)state;
    /* every allowed transition, the rest refused */
    static const struct {
        enum notices_state from;
        enum notices_action a;
        enum notices_state to;
    } ok[] = {
        {NOTICES_DRAFT, NOTICES_ACT_SUBMIT, NOTICES_SUBMITTED},
        {NOTICES_SUBMITTED, NOTICES_ACT_REJECT, NOTICES_DRAFT},
        {NOTICES_SUBMITTED, NOTICES_ACT_APPROVE, NOTICES_APPROVED},
        {NOTICES_APPROVED, NOTICES_ACT_START, NOTICES_SENDING},
        {NOTICES_APPROVED, NOTICES_ACT_PAUSE, NOTICES_PAUSED},
        {NOTICES_SENDING, NOTICES_ACT_PAUSE, NOTICES_PAUSED},
        {NOTICES_PAUSED, NOTICES_ACT_RESUME, NOTICES_SENDING},
        {NOTICES_SENDING, NOTICES_ACT_COMPLETE, NOTICES_COMPLETED},
        {NOTICES_DRAFT, NOTICES_ACT_CANCEL, NOTICES_CANCELLED},
        {NOTICES_SUBMITTED, NOTICES_ACT_CANCEL, NOTICES_CANCELLED},
        {NOTICES_APPROVED, NOTICES_ACT_CANCEL, NOTICES_CANCELLED},
        {NOTICES_SENDING, NOTICES_ACT_CANCEL, NOTICES_CANCELLED},
        {NOTICES_PAUSED, NOTICES_ACT_CANCEL, NOTICES_CANCELLED},
    };
    for (int s = 0; s < NOTICES_STATE_INVALID; s++) {
        for (int a = 0; a <= NOTICES_ACTION_INVALID; a++) {
            enum notices_state want = NOTICES_STATE_INVALID;
            for (size_t i = 0; i < NROWS(ok); i++)
                if ((int)ok[i].from == s && (int)ok[i].a == a) want = ok[i].to;
            enum notices_state got = notices_transition((enum notices_state)s,
                                                        (enum notices_action)a);
            if (got != want)
                fail_msg("%s --%s--> %s, want %s",
                         notices_state_name((enum notices_state)s),
                         notices_action_name((enum notices_action)a),
                         notices_state_name(got), notices_state_name(want));
        }
        /* names round-trip */
        assert_int_equal(
            notices_state_parse(notices_state_name((enum notices_state)s)), s);
    }
    for (int a = 0; a < NOTICES_ACTION_INVALID; a++)
        assert_int_equal(
            notices_action_parse(notices_action_name((enum notices_action)a)),
            a);
    assert_int_equal(notices_state_parse("nope"), NOTICES_STATE_INVALID);
    assert_int_equal(notices_state_parse(NULL), NOTICES_STATE_INVALID);
    assert_int_equal(notices_action_parse("x"), NOTICES_ACTION_INVALID);

    int finals = 0;
    for (int r = 0; r < NOTICES_RSTATE_INVALID; r++) {
        assert_int_equal(
            notices_rstate_parse(notices_rstate_name((enum notices_rstate)r)),
            r);
        finals += notices_rstate_final((enum notices_rstate)r);
    }
    assert_int_equal(finals, 8);
    assert_false(notices_rstate_final(NOTICES_R_QUEUED));
    assert_false(notices_rstate_final(NOTICES_R_ACCEPTED));
    assert_true(notices_rstate_final(NOTICES_R_UNKNOWN));
    assert_false(notices_rstate_final(NOTICES_RSTATE_INVALID));
    assert_string_equal(notices_rstate_name(NOTICES_RSTATE_INVALID), "invalid");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_dhaka_anchor), cmocka_unit_test(t_window_parse),
        cmocka_unit_test(t_window_at),    cmocka_unit_test(t_window_sweep),
        cmocka_unit_test(t_bucket),       cmocka_unit_test(t_cap),
        cmocka_unit_test(t_parts),        cmocka_unit_test(t_template_check),
        cmocka_unit_test(t_render),       cmocka_unit_test(t_receipt),
        cmocka_unit_test(t_dlr_rstate),   cmocka_unit_test(t_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
