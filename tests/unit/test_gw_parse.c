/*
 * test_gw_parse.c -- the gateway's pure parsers, table by table: percent
 * decoding, query pairs, Kannel meta-data, MSISDNs, the Kannel MO query
 * (with the query strings Kannel 1.4.5 really sent, kannel-ussd.md 6.1 and
 * 6.2), the reply meta-data, the aggregator form and its '*' joined text,
 * address allowlists -- and hostile input for each.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/gw.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* Bytes with \x escapes outside printable ASCII, for failure messages. */
static const char *
show(const void *p, size_t len)
{
    static char buf[1024];
    const unsigned char *s = p;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < sizeof(buf); i++) {
        if (s[i] >= 0x20 && s[i] < 0x7F)
            buf[o++] = (char)s[i];
        else
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", s[i]);
    }
    buf[o] = '\0';
    return buf;
}

/* Kannel 1.4.5, USSD start (kannel-ussd.md 6.1), the whole query string. */
static const char q_ussd_start[] =
    "svc=ussd-mo&from=%2B8801711000001&to=*247%23&text=*247%23&bin=*247%23"
    "&kw=*247%23&smsc=ussd&id=233cb6f9-e736-4fd6-aac3-47dcdf4c7d8a"
    "&time=2026-11-22+10:32:47&ts=1795343567&coding=0&charset=UTF-8&dcs=00"
    "&binfo=USSD&acct=ussdbind&udh=&fid=&dlrmask=-1"
    "&meta=%3Fsmpp%3Fussd_service_op%3D%2501%26its_session_info%3D%2512%2500"
    "%26&op=%01&sess=%12%00&hex=2A32343723&q=%2B8801711000001&Q=*247%23"
    "&A=*247%23";

/* The answer "1" (6.2).  The reference records only the parts that
 * change -- text=1 and "meta=...&op=%12&sess=%12%02", copied here exactly
 * -- so the rest is the 6.1 query with a new id and time. */
static const char q_ussd_answer[] =
    "svc=ussd-mo&from=%2B8801711000001&to=*247%23&text=1&bin=1&kw=1"
    "&smsc=ussd&id=6d1f0c8e-2b7a-4d55-9e0b-2f4d8b1e7a10"
    "&time=2026-11-22+10:32:49&ts=1795343569&coding=0&charset=UTF-8&dcs=00"
    "&binfo=USSD&acct=ussdbind&udh=&fid=&dlrmask=-1"
    "&meta=%3Fsmpp%3Fussd_service_op%3D%2512%26its_session_info%3D%2512%2502"
    "%26&op=%12&sess=%12%02&hex=31&q=%2B8801711000001&Q=*247%23&A=1";

/* ------------------------------------------------------------------------
 * Percent-decoding
 */

static void
t_pct_decode(void **state)
{
    static const struct {
        const char *in;
        int plus;
        int rc;
        const char *want;
        size_t wlen;
    } rows[] = {
        {"abc", 1, GW_OK, "abc", 3},
        {"", 1, GW_OK, "", 0},
        {"a+b", 1, GW_OK, "a b", 3},
        {"a+b", 0, GW_OK, "a+b", 3},
        {"%41%42", 1, GW_OK, "AB", 2},
        {"%4a%4A", 1, GW_OK, "JJ", 2},
        {"%00", 1, GW_OK, "\0", 1},
        {"a%00b", 1, GW_OK, "a\0b", 3},
        {"%FF%fe", 1, GW_OK, "\xff\xfe", 2},
        {"*!'()", 1, GW_OK, "*!'()", 5},
        {"%2B", 1, GW_OK, "+", 1},
        {"%25", 1, GW_OK, "%", 1},
        {"%2501", 1, GW_OK, "%01", 3},
        {"\xe0\xa6\x95", 1, GW_OK, "\xe0\xa6\x95", 3},
        {"%", 1, GW_EINVAL, NULL, 0},
        {"%4", 1, GW_EINVAL, NULL, 0},
        {"abc%", 1, GW_EINVAL, NULL, 0},
        {"%%", 1, GW_EINVAL, NULL, 0},
        {"%G1", 1, GW_EINVAL, NULL, 0},
        {"%1G", 1, GW_EINVAL, NULL, 0},
        {"% 1", 1, GW_EINVAL, NULL, 0},
        {"%+1", 1, GW_EINVAL, NULL, 0},
        {"%-1", 1, GW_EINVAL, NULL, 0},
    };
    char out[64];
    size_t n;
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        int rc = gw_pct_decode(rows[i].in, strlen(rows[i].in), rows[i].plus,
                               out, sizeof(out), &n);
        if (rc != rows[i].rc)
            fail_msg("'%s': rc %d, want %d", rows[i].in, rc, rows[i].rc);
        if (rc != GW_OK) continue;
        if (n != rows[i].wlen || memcmp(out, rows[i].want, n) != 0 ||
            out[n] != '\0')
            fail_msg("'%s': got '%s'", rows[i].in, show(out, n));
    }
    /* The length is honoured, not a NUL after it. */
    assert_int_equal(gw_pct_decode("%4A", 2, 1, out, sizeof(out), &n),
                     GW_EINVAL);
    assert_int_equal(gw_pct_decode("a+", 1, 1, out, sizeof(out), &n), GW_OK);
    assert_int_equal(n, 1);
    /* The output must fit with its NUL. */
    assert_int_equal(gw_pct_decode("abcd", 4, 1, out, 4, &n), GW_ETOOLONG);
    assert_int_equal(gw_pct_decode("abc", 3, 1, out, 4, &n), GW_OK);
    assert_int_equal(gw_pct_decode("%41", 3, 1, out, 1, &n), GW_ETOOLONG);
    assert_int_equal(gw_pct_decode("", 0, 1, out, 0, &n), GW_ETOOLONG);
}

static void
t_pct_roundtrip(void **state)
{
    unsigned char all[256];
    char enc[256 * 3 + 1], dec[257];
    size_t n;
    (void)state;
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    int k = gw_pct_encode(all, sizeof(all), enc, sizeof(enc));
    assert_true(k > 0);
    assert_int_equal((size_t)k, strlen(enc));
    assert_null(strchr(enc, '+'));
    assert_int_equal(gw_pct_decode(enc, (size_t)k, 1, dec, sizeof(dec), &n),
                     GW_OK);
    assert_int_equal(n, 256);
    assert_memory_equal(dec, all, 256);
    /* Too small by one: refused, not cut. */
    assert_int_equal(gw_pct_encode(all, sizeof(all), enc, (size_t)k), -1);
    assert_int_equal(gw_pct_encode((const unsigned char *)"a b", 3, enc, 8), 5);
    assert_string_equal(enc, "a%20b");
}

/* ------------------------------------------------------------------------
 * Query pairs
 */

static void
t_params(void **state)
{
    static const struct {
        const char *in;
        int rc;
        size_t n;
        const char *k0, *v0, *k1, *v1;
    } rows[] = {
        {"a=1&b=2", GW_OK, 2, "a", "1", "b", "2"},
        {"a=1&&b=2&", GW_OK, 2, "a", "1", "b", "2"},
        {"&a=1", GW_OK, 1, "a", "1", NULL, NULL},
        {"", GW_OK, 0, NULL, NULL, NULL, NULL},
        {"&&&", GW_OK, 0, NULL, NULL, NULL, NULL},
        {"a", GW_OK, 1, "a", "", NULL, NULL},
        {"a=", GW_OK, 1, "a", "", NULL, NULL},
        {"a==b", GW_OK, 1, "a", "=b", NULL, NULL},
        {"a+b=c+d", GW_OK, 1, "a b", "c d", NULL, NULL},
        {"to=*247%23", GW_OK, 1, "to", "*247#", NULL, NULL},
        {"time=2026-11-22+10:32:47", GW_OK, 1, "time", "2026-11-22 10:32:47",
         NULL, NULL},
        {"%61=%62", GW_OK, 1, "a", "b", NULL, NULL},
        {"=x", GW_EINVAL, 0, NULL, NULL, NULL, NULL},
        {"a=1&=x", GW_EINVAL, 0, NULL, NULL, NULL, NULL},
        {"a=%zz", GW_EINVAL, 0, NULL, NULL, NULL, NULL},
        {"a=%", GW_EINVAL, 0, NULL, NULL, NULL, NULL},
        {"%zz=1", GW_EINVAL, 0, NULL, NULL, NULL, NULL},
        {"a%00b=1", GW_EINVAL, 0, NULL, NULL, NULL, NULL},
    };
    struct gw_params ps;
    const char *why;
    (void)state;
    gw_params_init(&ps);
    for (size_t i = 0; i < NROWS(rows); i++) {
        why = NULL;
        int rc = gw_params_parse(&ps, rows[i].in, strlen(rows[i].in), &why);
        if (rc != rows[i].rc)
            fail_msg("'%s': rc %d, want %d", rows[i].in, rc, rows[i].rc);
        if (rc != GW_OK) {
            assert_non_null(why);
            assert_int_equal(ps.n, 0);
            continue;
        }
        assert_int_equal(ps.n, rows[i].n);
        if (rows[i].k0 != NULL) {
            assert_string_equal(ps.p[0].key, rows[i].k0);
            assert_string_equal(ps.p[0].val, rows[i].v0);
        }
        if (rows[i].k1 != NULL) {
            assert_string_equal(ps.p[1].key, rows[i].k1);
            assert_string_equal(ps.p[1].val, rows[i].v1);
        }
    }
    gw_params_fini(&ps);

    /* A value may hold NUL bytes; its length says so. */
    assert_int_equal(gw_params_parse(&ps, "v=a%00b&v=2", 11, &why), GW_OK);
    assert_int_equal(ps.p[0].vlen, 3);
    assert_memory_equal(ps.p[0].val, "a\0b", 3);
    assert_int_equal(gw_params_count(&ps, "v"), 2);
    assert_ptr_equal(gw_params_get(&ps, "v"), &ps.p[0]);
    assert_null(gw_params_get(&ps, "w"));
    gw_params_fini(&ps);
    gw_params_fini(&ps); /* twice is fine */
}

/* Build "k=vvvv..." or many pairs, and check the bounds. */
static void
t_params_bounds(void **state)
{
    struct gw_params ps;
    const char *why;
    size_t cap = 20 * 10000 + GW_PARAMS_IN_MAX + 64;
    char *s = malloc(cap);
    size_t o;
    (void)state;
    assert_non_null(s);
    gw_params_init(&ps);

    /* exactly GW_PARAMS_MAX pairs, then one more */
    o = 0;
    for (int i = 0; i < GW_PARAMS_MAX; i++)
        o += (size_t)sprintf(s + o, "k%d=%d&", i, i);
    assert_int_equal(gw_params_parse(&ps, s, o, &why), GW_OK);
    assert_int_equal(ps.n, GW_PARAMS_MAX);
    o += (size_t)sprintf(s + o, "x=1");
    assert_int_equal(gw_params_parse(&ps, s, o, &why), GW_ETOOMANY);
    assert_string_equal(why, "too many parameters");

    /* 10,000 parameters */
    o = 0;
    for (int i = 0; i < 10000; i++)
        o += (size_t)sprintf(s + o, "a=1&");
    assert_int_equal(gw_params_parse(&ps, s, o, &why), GW_ETOOMANY);

    /* the longest value, then one byte more (encoded or not) */
    memcpy(s, "v=", 2);
    memset(s + 2, 'x', GW_PARAM_VALUE_MAX);
    assert_int_equal(gw_params_parse(&ps, s, 2 + GW_PARAM_VALUE_MAX, &why),
                     GW_OK);
    assert_int_equal(ps.p[0].vlen, GW_PARAM_VALUE_MAX);
    s[2 + GW_PARAM_VALUE_MAX] = 'x';
    assert_int_equal(gw_params_parse(&ps, s, 2 + GW_PARAM_VALUE_MAX + 1, &why),
                     GW_ETOOLONG);
    assert_string_equal(why, "parameter value too long");
    o = 2;
    for (int i = 0; i <= GW_PARAM_VALUE_MAX; i++)
        o += (size_t)sprintf(s + o, "%%41");
    assert_int_equal(gw_params_parse(&ps, s, o, &why), GW_ETOOLONG);

    /* the longest name, then one more */
    memset(s, 'k', GW_PARAM_KEY_MAX);
    s[GW_PARAM_KEY_MAX] = '=';
    assert_int_equal(gw_params_parse(&ps, s, GW_PARAM_KEY_MAX + 1, &why),
                     GW_OK);
    memset(s, 'k', GW_PARAM_KEY_MAX + 1);
    s[GW_PARAM_KEY_MAX + 1] = '=';
    assert_int_equal(gw_params_parse(&ps, s, GW_PARAM_KEY_MAX + 2, &why),
                     GW_ETOOLONG);

    /* the whole input */
    memset(s, 'a', GW_PARAMS_IN_MAX + 1);
    assert_int_equal(gw_params_parse(&ps, s, GW_PARAMS_IN_MAX + 1, &why),
                     GW_ETOOLONG);
    gw_params_fini(&ps);
    free(s);
}

/* ------------------------------------------------------------------------
 * Kannel meta-data
 */

static void
t_meta(void **state)
{
    static const struct {
        const char *in;
        int rc;
        size_t n;
        const char *group, *key;
        const char *val; /* NULL: not present */
        size_t vlen;
    } rows[] = {
        /* what a USSD start carries, after query decoding */
        {"?smpp?ussd_service_op=%01&its_session_info=%12%00&", GW_OK, 2, "smpp",
         "its_session_info", "\x12\x00", 2},
        {"?smpp?ussd_service_op=%01&its_session_info=%12%00", GW_OK, 2, "smpp",
         "ussd_service_op", "\x01", 1},
        /* safe bytes arrive raw: 0x2A as '*', 0x21 as '!' */
        {"?smpp?its_session_info=*%00&", GW_OK, 1, "smpp", "its_session_info",
         "*\x00", 2},
        {"?smpp?ussd_service_op=3&its_session_info=!%00&?orig_msg?dlr_mask="
         "24&?smpp_resp?",
         GW_OK, 3, "smpp", "its_session_info", "!\x00", 2},
        /* a raw space travels as '+' */
        {"?smpp?x=+%20&", GW_OK, 1, "smpp", "x", "  ", 2},
        /* delivery reports */
        {"?smpp_resp??orig_msg?dlr_mask=31&", GW_OK, 1, "orig_msg", "dlr_mask",
         "31", 2},
        {"?orig_msg?dlr_mask=31&?smpp?dlr_err=%03%00%00&", GW_OK, 2, "smpp",
         "dlr_err", "\x03\x00\x00", 3},
        {"?smpp?", GW_OK, 0, "smpp", "ussd_service_op", NULL, 0},
        {"", GW_OK, 0, "smpp", "x", NULL, 0},
        {"?smpp?a=1&&b=2", GW_OK, 2, "smpp", "b", "2", 1},
        {"?smpp?a=1?g2?a=2", GW_OK, 2, "g2", "a", "2", 1},
        {"?smpp?a=", GW_OK, 1, "smpp", "a", "", 0},
        {"?sm%70p?a=1", GW_OK, 1, "smpp", "a", "1", 1},
        /* hostile */
        {"ussd_service_op=%01", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"?smpp", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"?", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"??a=1", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"?smpp?foo", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"?smpp?=1", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"?smpp?a=%G1", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"?smpp?a=%0", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"?smpp?a=1&a=2", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"?smpp?a%00b=1", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"?sm pp?a=1", GW_EINVAL, 0, NULL, NULL, NULL, 0},
        {"?smpp?a+b=1", GW_EINVAL, 0, NULL, NULL, NULL, 0},
    };
    struct gw_meta m;
    const char *why;
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        size_t vlen = 0;
        const unsigned char *v;
        why = NULL;
        int rc = gw_meta_parse(rows[i].in, strlen(rows[i].in), &m, &why);
        if (rc != rows[i].rc)
            fail_msg("'%s': rc %d (%s), want %d", rows[i].in, rc,
                     why ? why : "-", rows[i].rc);
        if (rc != GW_OK) {
            assert_non_null(why);
            continue;
        }
        assert_int_equal(m.n, rows[i].n);
        v = gw_meta_get(&m, rows[i].group, rows[i].key, &vlen);
        if (rows[i].val == NULL) {
            assert_null(v);
            continue;
        }
        if (v == NULL || vlen != rows[i].vlen ||
            memcmp(v, rows[i].val, vlen) != 0)
            fail_msg("'%s': %s/%s = '%s'", rows[i].in, rows[i].group,
                     rows[i].key, v ? show(v, vlen) : "(none)");
    }
}

static void
t_meta_bounds(void **state)
{
    struct gw_meta m;
    const char *why;
    char s[2048];
    size_t o;
    (void)state;

    o = (size_t)sprintf(s, "?smpp?");
    for (int i = 0; i < GW_META_MAX; i++)
        o += (size_t)sprintf(s + o, "k%d=%d&", i, i);
    assert_int_equal(gw_meta_parse(s, o, &m, &why), GW_OK);
    assert_int_equal(m.n, GW_META_MAX);
    o += (size_t)sprintf(s + o, "x=1");
    assert_int_equal(gw_meta_parse(s, o, &m, &why), GW_ETOOMANY);

    o = (size_t)sprintf(s, "?smpp?v=");
    for (int i = 0; i < GW_META_VALUE_MAX; i++)
        o += (size_t)sprintf(s + o, "%%00");
    assert_int_equal(gw_meta_parse(s, o, &m, &why), GW_OK);
    assert_int_equal(m.item[0].vlen, GW_META_VALUE_MAX);
    o += (size_t)sprintf(s + o, "%%00");
    assert_int_equal(gw_meta_parse(s, o, &m, &why), GW_ETOOLONG);

    memset(s, 'g', sizeof(s));
    s[0] = '?';
    s[GW_META_NAME_MAX + 1] = '?';
    assert_int_equal(gw_meta_parse(s, GW_META_NAME_MAX + 2, &m, &why),
                     GW_EINVAL);
    s[GW_META_NAME_MAX] = '?';
    assert_int_equal(gw_meta_parse(s, GW_META_NAME_MAX + 1, &m, &why), GW_OK);
}

/* ------------------------------------------------------------------------
 * MSISDN
 */

static void
t_msisdn(void **state)
{
    static const struct {
        const char *in;
        const char *want; /* NULL: refused */
    } rows[] = {
        {"+8801712345678", "8801712345678"},
        {"8801712345678", "8801712345678"},
        {"008801712345678", "8801712345678"},
        {"01712345678", "8801712345678"},
        {"+8801311000000", "8801311000000"},
        {"01999999999", "8801999999999"},
        {"+8801711000001", "8801711000001"},
        {"01212345678", NULL}, /* 012: not a mobile operator */
        {"01012345678", NULL},
        {"+8801212345678", NULL},
        {"+880171234567", NULL}, /* one digit short */
        {"+88017123456789", NULL},
        {"0171234567", NULL},
        {"017123456789", NULL},
        {"1712345678", NULL},
        {"+8802712345678", NULL}, /* Dhaka land line */
        {"+9101712345678", NULL},
        {"+01712345678", NULL},
        {"0001712345678", NULL},
        {"+880 1712345678", NULL},
        {"+880-1712345678", NULL},
        {"+８８01712345678", NULL},
        {"8801712345678\n", NULL},
        {"", NULL},
        {"+", NULL},
        {"00", NULL},
        {"*247#", NULL},
    };
    char out[GW_MSISDN_MAX];
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        const char *why = gw_msisdn_normalise(rows[i].in, strlen(rows[i].in),
                                              out, sizeof(out));
        if (rows[i].want == NULL) {
            if (why == NULL) fail_msg("'%s' accepted as %s", rows[i].in, out);
            continue;
        }
        if (why != NULL) fail_msg("'%s' refused: %s", rows[i].in, why);
        assert_string_equal(out, rows[i].want);
    }
    /* The length is honoured, not the NUL. */
    assert_null(gw_msisdn_normalise("01712345678999", 11, out, sizeof(out)));
    assert_string_equal(out, "8801712345678");
}

static void
t_secret_equal(void **state)
{
    (void)state;
    assert_true(gw_secret_equal("s3cret", 6, "s3cret", 6));
    assert_false(gw_secret_equal("s3cret", 6, "s3cre", 5));
    assert_false(gw_secret_equal("s3cret", 6, "s3cret!", 7));
    assert_false(gw_secret_equal("s3cret", 6, "S3cret", 6));
    assert_false(gw_secret_equal("abc", 3, "ab\0", 3));
    assert_true(gw_secret_equal("", 0, "", 0));
    assert_false(gw_secret_equal("", 0, "a", 1));
}

/* ------------------------------------------------------------------------
 * The Kannel MO query
 */

static void
t_mo_captured(void **state)
{
    struct gw_kannel_mo mo;
    const char *why = NULL;
    (void)state;

    assert_int_equal(
        gw_kannel_mo_parse(q_ussd_start, strlen(q_ussd_start), &mo, &why),
        GW_OK);
    assert_string_equal(mo.msisdn, "8801711000001");
    assert_string_equal(mo.to, "*247#");
    assert_string_equal(mo.text, "*247#");
    assert_int_equal(mo.text_len, 5);
    assert_string_equal(mo.smsc, "ussd");
    assert_string_equal(mo.id, "233cb6f9-e736-4fd6-aac3-47dcdf4c7d8a");
    assert_int_equal(mo.coding, 0);
    assert_string_equal(mo.charset, "UTF-8");
    assert_false(mo.has_key);
    assert_true(mo.has_meta);
    assert_int_equal(mo.meta.n, 2);
    assert_true(mo.has_ussd);
    assert_int_equal(mo.ussd_op, 0x01);
    assert_true(mo.has_sess);
    assert_int_equal(mo.sess[0], 0x12);
    assert_int_equal(mo.sess[1], 0x00);

    assert_int_equal(
        gw_kannel_mo_parse(q_ussd_answer, strlen(q_ussd_answer), &mo, &why),
        GW_OK);
    assert_string_equal(mo.text, "1");
    assert_int_equal(mo.ussd_op, 18);
    assert_int_equal(mo.sess[0], 0x12);
    assert_int_equal(mo.sess[1], 0x02);
}

/* The captured start query with one parameter replaced or added. */
static int
mo_variant(const char *drop, const char *add, struct gw_kannel_mo *mo,
           const char **why)
{
    static char q[256 * 1024];
    struct gw_params ps;
    size_t o = 0;
    gw_params_init(&ps);
    /* re-encode the captured pairs, leaving out the named ones */
    if (gw_params_parse(&ps, q_ussd_start, strlen(q_ussd_start), why) != 0)
        return -99;
    for (size_t i = 0; i < ps.n; i++) {
        char dropkey[64];
        int skip = 0;
        for (const char *d = drop; d && *d;) {
            const char *comma = strchr(d, ',');
            size_t n = comma ? (size_t)(comma - d) : strlen(d);
            snprintf(dropkey, sizeof(dropkey), "%.*s", (int)n, d);
            skip |= strcmp(dropkey, ps.p[i].key) == 0;
            d += n + (comma != NULL);
        }
        if (skip) continue;
        o += (size_t)sprintf(q + o, "%s%s=", o ? "&" : "", ps.p[i].key);
        int k = gw_pct_encode((const unsigned char *)ps.p[i].val, ps.p[i].vlen,
                              q + o, sizeof(q) - o);
        if (k < 0) {
            gw_params_fini(&ps);
            return -98;
        }
        o += (size_t)k;
    }
    gw_params_fini(&ps);
    if (add != NULL) {
        assert_true(o + strlen(add) + 2 < sizeof(q));
        o += (size_t)sprintf(q + o, "&%s", add);
    }
    return gw_kannel_mo_parse(q, o, mo, why);
}

static void
t_mo_fields(void **state)
{
    static const struct {
        const char *drop, *add;
        int rc;
        const char *why;
    } rows[] = {
        /* re-encoding alone changes nothing */
        {NULL, NULL, GW_OK, NULL},
        {"from", NULL, GW_EMISSING, "missing from"},
        {"text", NULL, GW_EMISSING, "missing text"},
        {"text", "text=", GW_OK, NULL},
        {NULL, "from=%2B8801711000002", GW_EINVAL, "duplicate parameter: from"},
        {NULL, "text=2", GW_EINVAL, "duplicate parameter: text"},
        {NULL, "meta=%3Fsmpp%3F", GW_EINVAL, "duplicate parameter: meta"},
        {"from", "from=12345", GW_EINVAL,
         "from is not a Bangladesh mobile number"},
        {"from", "from=%2B8802712345678", GW_EINVAL,
         "from is not a Bangladesh mobile number"},
        {"from", "from=01711000001", GW_OK, NULL},
        {"text", "text=%C3%28", GW_EINVAL, "text is not valid UTF-8"},
        {"text", "text=%C0%AF", GW_EINVAL, "text is not valid UTF-8"},
        {"text", "text=%ED%A0%80", GW_EINVAL, "text is not valid UTF-8"},
        {"text", "text=%F4%90%80%80", GW_EINVAL, "text is not valid UTF-8"},
        {"text", "text=%FF", GW_EINVAL, "text is not valid UTF-8"},
        {"text", "text=1%002", GW_EINVAL, "text contains NUL"},
        {"text", "text=%E0%A6%B9", GW_OK, NULL},
        {"coding", "coding=1", GW_EINVAL, "text: 8-bit data is not accepted"},
        {"coding", "coding=7", GW_EINVAL, "bad coding"},
        {"coding", "coding=00", GW_EINVAL, "bad coding"},
        {"coding", "coding=-1", GW_OK, NULL},
        {"coding", "coding=", GW_OK, NULL},
        {"charset", "charset=KOI8-R", GW_EINVAL, "text: unsupported charset"},
        {"charset", "charset=utf-8", GW_OK, NULL},
        {"meta", "meta=%3Fsmpp%3Fussd_service_op%3D%2501%2502", GW_EINVAL,
         "ussd_service_op must be one octet"},
        {"meta", "meta=%3Fsmpp%3Fits_session_info%3D%2512", GW_EINVAL,
         "its_session_info must be two octets"},
        {"meta", "meta=ussd_service_op%3D%2501", GW_EINVAL,
         "meta-data: a pair before any group"},
        {"meta", "meta=%3Fsmpp%3Fa%3D%25G1", GW_EINVAL,
         "meta-data: bad %-escape"},
        {"meta,op", "op=%01%02", GW_EINVAL, "op must be one octet"},
        {"meta,sess", "sess=%12", GW_EINVAL, "sess must be two octets"},
        {"id", "id=a%0Ab", GW_EINVAL, "bad id"},
        {"to", "to=01234567890123456789012345678901", GW_EINVAL, "bad to"},
        {"smsc", "smsc=a%00", GW_EINVAL, "bad smsc"},
        {NULL, "key=s%00x", GW_EINVAL, "bad key"},
        {NULL, "bad=%zz", GW_EINVAL, "bad %-escape in a parameter value"},
    };
    struct gw_kannel_mo mo;
    const char *why;
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        why = NULL;
        int rc = mo_variant(rows[i].drop, rows[i].add, &mo, &why);
        if (rc != rows[i].rc)
            fail_msg("row %zu (%s): rc %d (%s), want %d", i,
                     rows[i].add ? rows[i].add : "-", rc, why ? why : "-",
                     rows[i].rc);
        if (rows[i].why != NULL) {
            assert_non_null(why);
            assert_string_equal(why, rows[i].why);
        }
    }
}

static void
t_mo_text(void **state)
{
    struct gw_kannel_mo mo;
    const char *why;
    (void)state;

    /* smsbox mo-recode: UCS-2 arrives as UTF-8 "হ্যাঁ ১" */
    assert_int_equal(mo_variant("text",
                                "text=%E0%A6%B9%E0%A7%8D%E0%A6%AF"
                                "%E0%A6%BE%E0%A6%81+%E0%A7%A7",
                                &mo, &why),
                     GW_OK);
    assert_string_equal(mo.text, "হ্যাঁ ১");

    /* without mo-recode: UTF-16BE bytes, a surrogate pair included */
    assert_int_equal(mo_variant("text,coding,charset",
                                "coding=2&charset=UTF-16BE"
                                "&text=%09%95%00%20%D8%3D%DE%00",
                                &mo, &why),
                     GW_OK);
    assert_string_equal(mo.text, "ক \xF0\x9F\x98\x80");
    assert_int_equal(mo_variant("text,coding,charset",
                                "coding=2&charset=&text=%09%95", &mo, &why),
                     GW_OK);
    assert_string_equal(mo.text, "ক");
    assert_int_equal(
        mo_variant("text,charset", "charset=UTF-16BE&text=%09", &mo, &why),
        GW_EINVAL);
    assert_int_equal(mo_variant("text,charset",
                                "charset=UTF-16BE&text=%D8%3D%00%41", &mo,
                                &why),
                     GW_EINVAL);
    assert_string_equal(why, "text: unpaired UTF-16 surrogate");
    assert_int_equal(
        mo_variant("text,charset", "charset=UTF-16BE&text=%DE%00", &mo, &why),
        GW_EINVAL);
    assert_int_equal(
        mo_variant("text,charset", "charset=UTF-16BE&text=%00%00", &mo, &why),
        GW_EINVAL);
    assert_string_equal(why, "text contains NUL");

    /* Latin-1 */
    assert_int_equal(
        mo_variant("text,charset", "charset=ISO-8859-1&text=%E9", &mo, &why),
        GW_OK);
    assert_string_equal(mo.text, "é");

    /* DCS 0x0F: coding=3, empty charset, text passed through raw */
    assert_int_equal(mo_variant("text,coding,charset",
                                "coding=3&charset=&text=*247*1%23", &mo, &why),
                     GW_OK);
    assert_int_equal(mo.coding, 3);
    assert_string_equal(mo.text, "*247*1#");
    assert_int_equal(mo_variant("text,coding,charset",
                                "coding=3&charset=&text=%80", &mo, &why),
                     GW_EINVAL);
}

static void
t_mo_bounds(void **state)
{
    struct gw_kannel_mo mo;
    const char *why;
    char *add = malloc(20 * 10000 + 64);
    size_t o;
    (void)state;
    assert_non_null(add);

    o = (size_t)sprintf(add, "text=");
    memset(add + o, 'a', GW_MO_TEXT_MAX);
    add[o + GW_MO_TEXT_MAX] = '\0';
    assert_int_equal(mo_variant("text", add, &mo, &why), GW_OK);
    assert_int_equal(mo.text_len, GW_MO_TEXT_MAX);
    add[o + GW_MO_TEXT_MAX] = 'a';
    add[o + GW_MO_TEXT_MAX + 1] = '\0';
    assert_int_equal(mo_variant("text", add, &mo, &why), GW_ETOOLONG);
    assert_string_equal(why, "text too long");
    /* Latin-1 doubles in UTF-8: 600 bytes become 1200 */
    o = (size_t)sprintf(add, "charset=latin1&text=");
    for (int i = 0; i < 600; i++)
        o += (size_t)sprintf(add + o, "%%E9");
    assert_int_equal(mo_variant("text,charset", add, &mo, &why), GW_ETOOLONG);

    /* 10,000 extra parameters */
    o = 0;
    for (int i = 0; i < 10000; i++)
        o += (size_t)sprintf(add + o, "%sx=1", i ? "&" : "");
    assert_int_equal(mo_variant(NULL, add, &mo, &why), GW_ETOOMANY);
    free(add);

    /* Garbage around the real thing. */
    assert_int_equal(gw_kannel_mo_parse("", 0, &mo, &why), GW_EMISSING);
    assert_int_equal(gw_kannel_mo_parse("&&&=", 4, &mo, &why), GW_EINVAL);
    assert_int_equal(
        gw_kannel_mo_parse("from=%2B8801711000001&text=%", 28, &mo, &why),
        GW_EINVAL);
}

static void
t_mo_sources(void **state)
{
    struct gw_kannel_mo mo;
    const char *why;
    (void)state;

    /* No meta: op and sess (%#smpp#...# values) are used. */
    assert_int_equal(mo_variant("meta", NULL, &mo, &why), GW_OK);
    assert_false(mo.has_meta);
    assert_true(mo.has_ussd);
    assert_int_equal(mo.ussd_op, 1);
    assert_true(mo.has_sess);
    assert_memory_equal(mo.sess, "\x12\x00", 2);

    /* meta wins over op and sess */
    assert_int_equal(mo_variant("op,sess", "op=%12&sess=%33%34", &mo, &why),
                     GW_OK);
    assert_int_equal(mo.ussd_op, 1);
    assert_memory_equal(mo.sess, "\x12\x00", 2);

    /* an SMS: meta "?smpp?", nothing USSD */
    assert_int_equal(mo_variant("meta,op,sess", "meta=%3Fsmpp%3F", &mo, &why),
                     GW_OK);
    assert_true(mo.has_meta);
    assert_false(mo.has_ussd);
    assert_false(mo.has_sess);

    /* raw '*' for 0x2A in meta */
    assert_int_equal(mo_variant("meta",
                                "meta=%3Fsmpp%3Fits_session_info%3D*%2500", &mo,
                                &why),
                     GW_OK);
    assert_memory_equal(mo.sess, "\x2a\x00", 2);

    /* the key is handed over for a constant-time compare */
    assert_int_equal(mo_variant(NULL, "key=s3cr%3Dt", &mo, &why), GW_OK);
    assert_true(mo.has_key);
    assert_string_equal(mo.key, "s3cr=t");
}

/* ------------------------------------------------------------------------
 * The reply meta-data
 */

static void
t_meta_reply(void **state)
{
    static const struct {
        int end;
        unsigned char s0, s1;
        int has;
        const char *want;
    } rows[] = {
        {0, 0x12, 0x00, 1, "?smpp?ussd_service_op=2&its_session_info=%12%00"},
        {1, 0x12, 0x00, 1, "?smpp?ussd_service_op=17&its_session_info=%12%01"},
        {1, 0x12, 0x02, 1, "?smpp?ussd_service_op=17&its_session_info=%12%03"},
        {0, 0x12, 0x03, 1, "?smpp?ussd_service_op=2&its_session_info=%12%02"},
        {0, 0xAB, 0xFE, 1, "?smpp?ussd_service_op=2&its_session_info=%AB%FE"},
        {0, 0x2A, 0x00, 1, "?smpp?ussd_service_op=2&its_session_info=%2A%00"},
        {0, 0, 0, 0, "?smpp?ussd_service_op=2"},
        {1, 0, 0, 0, "?smpp?ussd_service_op=17"},
    };
    char buf[128];
    struct gw_meta m;
    const char *why;
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        unsigned char sess[2] = {rows[i].s0, rows[i].s1};
        size_t vlen;
        const unsigned char *v;
        int n = gw_kannel_meta_reply(rows[i].end, sess, rows[i].has, buf,
                                     sizeof(buf));
        assert_int_equal(n, (int)strlen(rows[i].want));
        assert_string_equal(buf, rows[i].want);
        /* what we send parses back to what we meant */
        assert_int_equal(gw_meta_parse(buf, (size_t)n, &m, &why), GW_OK);
        v = gw_meta_get(&m, "smpp", "ussd_service_op", &vlen);
        assert_non_null(v);
        assert_memory_equal(v, rows[i].end ? "17" : "2", vlen);
        v = gw_meta_get(&m, "smpp", "its_session_info", &vlen);
        if (!rows[i].has) {
            assert_null(v);
            continue;
        }
        assert_int_equal(vlen, 2);
        assert_int_equal(v[0], rows[i].s0);
        assert_int_equal(v[1] & 1, rows[i].end);
    }
    unsigned char sess[2] = {0x12, 0};
    size_t need = strlen(rows[0].want);
    assert_int_equal(gw_kannel_meta_reply(0, sess, 1, buf, need), -1);
    assert_int_equal(gw_kannel_meta_reply(0, sess, 1, buf, need + 1),
                     (int)need);
}

/* ------------------------------------------------------------------------
 * Aggregator USSD
 */

static void
t_at_parse(void **state)
{
    static const struct {
        const char *body;
        int rc;
        const char *why;
        const char *text;
    } rows[] = {
        {"sessionId=ATUid_42&serviceCode=*247%23&phoneNumber=%2B8801711000001"
         "&text=1*2&networkCode=47001",
         GW_OK, NULL, "1*2"},
        {"sessionId=s1&phoneNumber=01711000001&text=", GW_OK, NULL, ""},
        {"sessionId=s1&phoneNumber=01711000001", GW_OK, NULL, ""},
        {"sessionId=s1&phoneNumber=01711000001&text=%E0%A6%95*Rahim+Uddin",
         GW_OK, NULL, "ক*Rahim Uddin"},
        {"phoneNumber=01711000001&text=1", GW_EMISSING, "missing sessionId",
         NULL},
        {"sessionId=s1&text=1", GW_EMISSING, "missing phoneNumber", NULL},
        {"sessionId=&phoneNumber=01711000001", GW_EINVAL, "bad sessionId",
         NULL},
        {"sessionId=a+b&phoneNumber=01711000001", GW_EINVAL, "bad sessionId",
         NULL},
        {"sessionId=s1&phoneNumber=12345", GW_EINVAL,
         "phoneNumber is not a Bangladesh mobile number", NULL},
        {"sessionId=s1&phoneNumber=01711000001&text=%FF", GW_EINVAL,
         "text is not valid UTF-8", NULL},
        {"sessionId=s1&phoneNumber=01711000001&text=a%00", GW_EINVAL,
         "text contains NUL", NULL},
        {"sessionId=s1&phoneNumber=01711000001&text=1&text=2", GW_EINVAL,
         "duplicate parameter: text", NULL},
        {"sessionId=s1&sessionId=s2&phoneNumber=01711000001", GW_EINVAL,
         "duplicate parameter: sessionId", NULL},
        {"sessionId=s1&phoneNumber=01711000001&serviceCode=%0A", GW_EINVAL,
         "bad serviceCode", NULL},
        {"sessionId=s1&phoneNumber=01711000001&text=%", GW_EINVAL, NULL, NULL},
    };
    struct gw_at_req at;
    const char *why;
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        why = NULL;
        int rc = gw_at_parse(rows[i].body, strlen(rows[i].body), &at, &why);
        if (rc != rows[i].rc)
            fail_msg("'%s': rc %d (%s), want %d", rows[i].body, rc,
                     why ? why : "-", rows[i].rc);
        if (rows[i].why != NULL) assert_string_equal(why, rows[i].why);
        if (rc == GW_OK) {
            assert_string_equal(at.text, rows[i].text);
            assert_int_equal(at.text_len, strlen(rows[i].text));
            assert_string_equal(at.msisdn, "8801711000001");
        }
    }
    assert_int_equal(gw_at_parse(rows[0].body, strlen(rows[0].body), &at, &why),
                     GW_OK);
    assert_string_equal(at.session_id, "ATUid_42");
    assert_string_equal(at.service_code, "*247#");
    assert_string_equal(at.network_code, "47001");

    /* the text bound */
    char *b = malloc(GW_AT_TEXT_MAX + 64);
    assert_non_null(b);
    int o = sprintf(b, "sessionId=s&phoneNumber=01711000001&text=");
    memset(b + o, '1', GW_AT_TEXT_MAX);
    assert_int_equal(gw_at_parse(b, (size_t)o + GW_AT_TEXT_MAX, &at, &why),
                     GW_OK);
    b[o + GW_AT_TEXT_MAX] = '1';
    assert_int_equal(gw_at_parse(b, (size_t)o + GW_AT_TEXT_MAX + 1, &at, &why),
                     GW_ETOOLONG);
    free(b);
}

static void
t_at_new_input(void **state)
{
    static const struct {
        const char *prev, *text;
        enum gw_at_step want;
        const char *input;
    } rows[] = {
        {NULL, "", GW_AT_DIAL, ""},
        {NULL, "1", GW_AT_INPUT, "1"},
        {NULL, "1*2", GW_AT_INPUT, "1*2"},
        {"", "", GW_AT_REPEAT, ""},
        {"", "1", GW_AT_INPUT, "1"},
        {"", "*", GW_AT_INPUT, "*"},
        {"1", "1*2", GW_AT_INPUT, "2"},
        {"1", "1*", GW_AT_INPUT, ""},
        {"1*2", "1*2*Rahim Uddin", GW_AT_INPUT, "Rahim Uddin"},
        /* a '*' typed inside a free-text answer is kept */
        {"1*2", "1*2*A*B", GW_AT_INPUT, "A*B"},
        {"1*2*A*B", "1*2*A*B*3", GW_AT_INPUT, "3"},
        {"1*2", "1*2", GW_AT_REPEAT, ""},
        {"1*2", "1*2x", GW_AT_UNRELATED, ""},
        {"1*2", "1", GW_AT_UNRELATED, ""},
        {"1*2", "", GW_AT_UNRELATED, ""},
        {"1*2", "3*4*5", GW_AT_UNRELATED, ""},
        {"12", "1*2", GW_AT_UNRELATED, ""},
    };
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        const char *in = NULL;
        size_t len = 99;
        enum gw_at_step st =
            gw_at_new_input(rows[i].prev, rows[i].text, &in, &len);
        if (st != rows[i].want)
            fail_msg("'%s' after '%s': step %d, want %d", rows[i].text,
                     rows[i].prev ? rows[i].prev : "(null)", st, rows[i].want);
        assert_int_equal(len, strlen(rows[i].input));
        assert_memory_equal(in, rows[i].input, len);
    }
}

/* ------------------------------------------------------------------------
 * Address allowlists
 */

static void
t_cidr(void **state)
{
    static const struct {
        const char *net, *addr;
        int want; /* -1: the network does not parse */
    } rows[] = {
        {"127.0.0.1", "127.0.0.1", 1},
        {"127.0.0.1", "127.0.0.2", 0},
        {"127.0.0.0/8", "127.200.3.4", 1},
        {"127.0.0.0/8", "128.0.0.1", 0},
        {"10.1.2.3/16", "10.1.99.1", 1},
        {"10.1.2.3/17", "10.1.200.1", 0},
        {"0.0.0.0/0", "203.0.113.9", 1},
        {"0.0.0.0/0", "::1", 0},
        {"::1", "::1", 1},
        {"::1", "::2", 0},
        {"fd00::/8", "fd12:3456::1", 1},
        {"fd00::/8", "fe80::1", 0},
        {"127.0.0.1", "::ffff:127.0.0.1", 1},
        {"::/0", "::ffff:10.0.0.1", 1},
        {"127.0.0.1", "localhost", 0},
        {"127.0.0.1", "127.0.0.1/32", 0},
        {"127.0.0.1", "", 0},
        {"localhost", "127.0.0.1", -1},
        {"127.0.0.1/33", "127.0.0.1", -1},
        {"::1/129", "::1", -1},
        {"127.0.0.1/", "127.0.0.1", -1},
        {"127.0.0.1/x", "127.0.0.1", -1},
        {"127.0.0.1/0008", "127.0.0.1", -1},
        {"", "127.0.0.1", -1},
        {"/8", "127.0.0.1", -1},
        {"1.2.3", "1.2.3.0", -1},
    };
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        struct gw_cidr c;
        const char *why = gw_cidr_parse(rows[i].net, &c);
        if (rows[i].want < 0) {
            if (why == NULL) fail_msg("'%s' parsed", rows[i].net);
            continue;
        }
        if (why != NULL) fail_msg("'%s': %s", rows[i].net, why);
        if (gw_cidr_match(&c, 1, rows[i].addr) != rows[i].want)
            fail_msg("%s in %s: want %d", rows[i].addr, rows[i].net,
                     rows[i].want);
    }
    struct gw_cidr two[2];
    assert_null(gw_cidr_parse("127.0.0.1", &two[0]));
    assert_null(gw_cidr_parse("::1", &two[1]));
    assert_true(gw_cidr_match(two, 2, "::1"));
    assert_false(gw_cidr_match(two, 1, "::1"));
    assert_false(gw_cidr_match(two, 0, "127.0.0.1"));
}

/* Request framing: one way to find the end of the body, or 400. */
static void
t_framing(void **state)
{
    static const struct {
        const char *h[4][2];
        const char *why; /* NULL: accepted */
    } rows[] = {
        {{{NULL, NULL}}, NULL},
        {{{"Host", "x"}, {"Content-Type", "a/b"}}, NULL},
        {{{"Content-Length", "5"}}, NULL},
        {{{"content-length", " 5 "}}, NULL},
        {{{"Content-Length", "5"}, {"Content-Length", "5"}}, NULL},
        {{{"Content-Length", "5, 5"}, {"CONTENT-LENGTH", "5"}}, NULL},
        {{{"Content-Length", "5"}, {"Content-Length", "40"}},
         "conflicting Content-Length"},
        {{{"Content-Length", "5,6"}}, "conflicting Content-Length"},
        {{{"Content-Length", "0"}, {"Content-Length", "00"}}, NULL},
        {{{"Content-Length", ""}}, "malformed Content-Length"},
        {{{"Content-Length", "5,"}}, "malformed Content-Length"},
        {{{"Content-Length", "-1"}}, "malformed Content-Length"},
        {{{"Content-Length", "+5"}}, "malformed Content-Length"},
        {{{"Content-Length", "5 5"}}, "malformed Content-Length"},
        {{{"Content-Length", "0x10"}}, "malformed Content-Length"},
        {{{"Content-Length", "1234567890123456789"}},
         "Content-Length too large"},
        {{{"Transfer-Encoding", "chunked"}}, NULL},
        {{{"transfer-encoding", " Chunked\t"}}, NULL},
        {{{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}},
         "Transfer-Encoding with Content-Length"},
        {{{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}},
         "Transfer-Encoding with Content-Length"},
        {{{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
         "more than one Transfer-Encoding"},
        {{{"Transfer-Encoding", "gzip, chunked"}},
         "unsupported Transfer-Encoding"},
        {{{"Transfer-Encoding", "chunked, identity"}},
         "unsupported Transfer-Encoding"},
        {{{"Transfer-Encoding", "xchunked"}}, "unsupported Transfer-Encoding"},
        {{{"Transfer-Encoding", ""}}, "unsupported Transfer-Encoding"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct gw_header h[4];
        size_t n = 0;
        while (n < 4 && rows[i].h[n][0] != NULL) {
            h[n].name = rows[i].h[n][0];
            h[n].value = rows[i].h[n][1];
            n++;
        }
        const char *why = gw_framing_check(h, n);
        if (rows[i].why == NULL ? why != NULL
                                : why == NULL || strcmp(why, rows[i].why) != 0)
            fail_msg("row %zu: got %s, want %s", i, why ? why : "accepted",
                     rows[i].why ? rows[i].why : "accepted");
    }
}

/* Phone numbers in log lines: masked unless the level is debug. */
static void
t_msisdn_mask(void **state)
{
    static const char *const rows[][2] = {
        {"8801712345678", "88017******78"},
        {"+8801712345678", "+8801*******78"},
        {"01712345678", "01712****78"},
        {"12345678", "******78"},
        {"1234", "****"},
        {"", ""},
    };
    char buf[GW_MSISDN_MAX + 8];
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_string_equal(gw_msisdn_mask(buf, sizeof(buf), rows[i][0]),
                            rows[i][1]);
    assert_string_equal(gw_msisdn_mask(buf, 8, "8801712345678"), "*****12");
    int level = gw_log_level;
    gw_log_set_level(GW_LEVEL_INFO);
    assert_string_equal(gw_log_msisdn(buf, sizeof(buf), "8801712345678"),
                        "88017******78");
    gw_log_set_level(GW_LEVEL_DEBUG);
    assert_string_equal(gw_log_msisdn(buf, sizeof(buf), "8801712345678"),
                        "8801712345678");
    gw_log_set_level(level);
}

static void
t_strerror(void **state)
{
    (void)state;
    for (int e = GW_ESYS; e <= GW_OK; e++)
        assert_string_not_equal(gw_strerror(e), "unknown error");
    assert_string_equal(gw_strerror(-100), "unknown error");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_pct_decode),  cmocka_unit_test(t_pct_roundtrip),
        cmocka_unit_test(t_params),      cmocka_unit_test(t_params_bounds),
        cmocka_unit_test(t_meta),        cmocka_unit_test(t_meta_bounds),
        cmocka_unit_test(t_msisdn),      cmocka_unit_test(t_secret_equal),
        cmocka_unit_test(t_mo_captured), cmocka_unit_test(t_mo_fields),
        cmocka_unit_test(t_mo_text),     cmocka_unit_test(t_mo_bounds),
        cmocka_unit_test(t_mo_sources),  cmocka_unit_test(t_meta_reply),
        cmocka_unit_test(t_at_parse),    cmocka_unit_test(t_at_new_input),
        cmocka_unit_test(t_cidr),        cmocka_unit_test(t_strerror),
        cmocka_unit_test(t_framing),     cmocka_unit_test(t_msisdn_mask),
    };
    return cmocka_run_group_tests_name("gw_parse", tests, NULL, NULL);
}
