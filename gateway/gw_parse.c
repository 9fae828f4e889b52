/*
 * gw_parse.c -- the gateway's pure request parsers: percent-decoding,
 * query and form pairs, MSISDNs, secrets, address allowlists and a
 * request's framing.  What the channels make of the pairs is in
 * gw_kannel.c (Kannel's MO query and meta-data) and gw_at.c (the
 * aggregator USSD form).
 *
 * Everything here takes a buffer and a length and returns a status; no
 * I/O, no clock, no libevent, so each function is unit-tested alone and
 * fuzzed (tests/fuzz/fuzz_kannel_mo.c, fuzz_http.c).  Every bound is a
 * named constant in gw.h, and input beyond a bound is an error, never a
 * silent cut: a cut USSD answer would be a wrong answer.
 *
 * Kannel's URL encoder leaves "safe" bytes raw (a TLV octet 0x2A arrives
 * as '*') and encodes a space as '+', so decoding is a real decoder: any
 * byte but '%' stands for itself, and %XX may be any byte, NUL included.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gw.h"
#include "gateway/gw_assert.h"

const char *
gw_strerror(int err)
{
    switch (err) {
    case GW_OK:
        return "ok";
    case GW_ENOMEM:
        return "out of memory";
    case GW_EINVAL:
        return "malformed input";
    case GW_ETOOLONG:
        return "too long";
    case GW_ETOOMANY:
        return "too many items";
    case GW_EMISSING:
        return "required field missing";
    case GW_ESYS:
        return "system call failed";
    default:
        return "unknown error";
    }
}

static int
gw_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int
gw_pct_decode(const char *in, size_t len, int plus, char *out, size_t cap,
              size_t *outlen)
{
    size_t o = 0;

    AN(out);
    AN(outlen);
    if (cap == 0) return GW_ETOOLONG;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3) return GW_EINVAL;
            hi = gw_hexval((unsigned char)in[i + 1]);
            lo = gw_hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0) return GW_EINVAL;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (o + 1 >= cap) return GW_ETOOLONG;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *outlen = o;
    return GW_OK;
}

int
gw_pct_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = in[i];
        int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                    c == '_' || c == '~';
        size_t need = plain ? 1 : 3;
        if (o + need + 1 > cap) return -1;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o + 1 > cap) return -1;
    out[o] = '\0';
    return (int)o;
}

/* ------------------------------------------------------------------------
 * Query strings and form bodies
 */

void
gw_params_init(struct gw_params *ps)
{
    ps->n = 0;
    ps->buf = NULL;
}

void
gw_params_fini(struct gw_params *ps)
{
    free(ps->buf);
    ps->buf = NULL;
    ps->n = 0;
}

int
gw_params_parse(struct gw_params *ps, const char *in, size_t len,
                const char **why)
{
    size_t used = 0, cap, pos = 0;
    const char *dummy;

    if (why == NULL) why = &dummy;
    gw_params_fini(ps);
    if (len > GW_PARAMS_IN_MAX) {
        *why = "request too long";
        return GW_ETOOLONG;
    }
    /* Decoding never grows a piece, and each pair adds two NULs: this is
     * enough for GW_PARAMS_MAX pairs, and we stop at that many. */
    cap = len + 2 * GW_PARAMS_MAX + 2;
    ps->buf = malloc(cap);
    if (ps->buf == NULL) {
        *why = "out of memory";
        return GW_ENOMEM;
    }
    while (pos <= len && len > 0) {
        const char *p = in + pos;
        const char *amp = memchr(p, '&', len - pos);
        size_t plen = amp ? (size_t)(amp - p) : len - pos;
        const char *eq;
        size_t klen, vlen;
        struct gw_param *pp;
        int rc;

        pos += plen + 1;
        if (plen == 0) continue;
        if (ps->n == GW_PARAMS_MAX) {
            *why = "too many parameters";
            goto fail_many;
        }
        eq = memchr(p, '=', plen);
        klen = eq ? (size_t)(eq - p) : plen;
        if (klen == 0) {
            *why = "empty parameter name";
            goto fail_inval;
        }
        pp = &ps->p[ps->n];
        pp->key = ps->buf + used;
        rc = gw_pct_decode(p, klen, 1, ps->buf + used,
                           GW_PARAM_KEY_MAX + 1 < cap - used
                               ? GW_PARAM_KEY_MAX + 1
                               : cap - used,
                           &pp->klen);
        if (rc == GW_ETOOLONG) {
            *why = "parameter name too long";
            goto fail_long;
        }
        if (rc != GW_OK) {
            *why = "bad %-escape in a parameter name";
            goto fail_inval;
        }
        if (memchr(pp->key, '\0', pp->klen) != NULL) {
            *why = "NUL in a parameter name";
            goto fail_inval;
        }
        used += pp->klen + 1;
        vlen = eq ? plen - klen - 1 : 0;
        pp->val = ps->buf + used;
        rc = gw_pct_decode(eq ? eq + 1 : p + plen, vlen, 1, ps->buf + used,
                           GW_PARAM_VALUE_MAX + 1 < cap - used
                               ? GW_PARAM_VALUE_MAX + 1
                               : cap - used,
                           &pp->vlen);
        if (rc == GW_ETOOLONG) {
            *why = "parameter value too long";
            goto fail_long;
        }
        if (rc != GW_OK) {
            *why = "bad %-escape in a parameter value";
            goto fail_inval;
        }
        used += pp->vlen + 1;
        ps->n++;
    }
    return GW_OK;

fail_many:
    gw_params_fini(ps);
    return GW_ETOOMANY;
fail_long:
    gw_params_fini(ps);
    return GW_ETOOLONG;
fail_inval:
    gw_params_fini(ps);
    return GW_EINVAL;
}

const struct gw_param *
gw_params_get(const struct gw_params *ps, const char *key)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].key, key) == 0) return &ps->p[i];
    return NULL;
}

size_t
gw_params_count(const struct gw_params *ps, const char *key)
{
    size_t k = 0;
    for (size_t i = 0; i < ps->n; i++)
        k += strcmp(ps->p[i].key, key) == 0;
    return k;
}

/* ------------------------------------------------------------------------
 * MSISDN
 */

const char *
gw_msisdn_normalise(const char *in, size_t len, char *out, size_t cap)
{
    const char *d = in;
    size_t n = len;

    AN(cap >= GW_MSISDN_MAX);
    out[0] = '\0';
    if (n > 0 && d[0] == '+') {
        d++;
        n--;
        if (n < 3 || memcmp(d, "880", 3) != 0) return "not a Bangladesh number";
    } else if (n >= 2 && d[0] == '0' && d[1] == '0') {
        d += 2;
        n -= 2;
        if (n < 3 || memcmp(d, "880", 3) != 0) return "not a Bangladesh number";
    }
    for (size_t i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9') return "not a phone number";
    if (n == 11 && d[0] == '0' && d[1] == '1') {
        memcpy(out, "88", 2);
        memcpy(out + 2, d, 11);
    } else if (n == 13 && memcmp(d, "880", 3) == 0) {
        memcpy(out, d, 13);
    } else {
        return "not a Bangladesh mobile number";
    }
    out[13] = '\0';
    /* 8801 then the operator digit: 3..9 are mobile operators. */
    if (out[3] != '1' || out[4] < '3' || out[4] > '9') {
        out[0] = '\0';
        return "not a Bangladesh mobile number";
    }
    return NULL;
}

int
gw_secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen > blen ? alen : blen;
    unsigned d = alen != blen;

    for (size_t i = 0; i < n; i++) {
        unsigned char ca = i < alen ? (unsigned char)a[i] : 0;
        unsigned char cb = i < blen ? (unsigned char)b[i] : 0;
        d |= (unsigned)(ca ^ cb);
    }
    return d == 0;
}

/* ------------------------------------------------------------------------
 * Address allowlists
 */

const char *
gw_cidr_parse(const char *s, struct gw_cidr *out)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned max, bits;
    unsigned char v4[4];

    memset(out, 0, sizeof(*out));
    if (hlen == 0 || hlen >= sizeof(host)) return "not an IP address";
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, v4) == 1) {
        out->addr[10] = 0xFF;
        out->addr[11] = 0xFF;
        memcpy(out->addr + 12, v4, 4);
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        max = 128;
    } else {
        return "not an IP address";
    }
    bits = max;
    if (slash != NULL) {
        const char *d = slash + 1;
        if (*d == '\0' || strlen(d) > 3) return "bad prefix length";
        bits = 0;
        for (; *d; d++) {
            if (*d < '0' || *d > '9') return "bad prefix length";
            bits = bits * 10 + (unsigned)(*d - '0');
        }
        if (bits > max) return "prefix length too long";
    }
    out->bits = bits + (128 - max);
    return NULL;
}

int
gw_cidr_match(const struct gw_cidr *list, size_t n, const char *addr)
{
    struct gw_cidr a;

    if (strchr(addr, '/') != NULL || gw_cidr_parse(addr, &a) != NULL) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned bits = list[i].bits, full = bits / 8, rest = bits % 8;
        if (memcmp(list[i].addr, a.addr, full) != 0) continue;
        if (rest != 0) {
            unsigned char mask = (unsigned char)(0xFF << (8 - rest));
            if ((list[i].addr[full] & mask) != (a.addr[full] & mask)) continue;
        }
        return 1;
    }
    return 0;
}

/* Optional whitespace (RFC 9110 5.6.3) around list elements. */
static int
gw_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Every element of the Content-Length list v, into *len; the first seen
 * value sets it (*have), later ones must equal it.  NULL or why not. */
static const char *
gw_content_length(const char *v, uint64_t *len, int *have)
{
    const char *p = v;
    for (;;) {
        uint64_t x = 0;
        size_t digits = 0;
        while (gw_ows(*p))
            p++;
        for (; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits == 18) return "Content-Length too large";
            x = x * 10 + (uint64_t)(*p - '0');
        }
        while (gw_ows(*p))
            p++;
        if (digits == 0 || (*p != ',' && *p != '\0'))
            return "malformed Content-Length";
        if (*have && x != *len) return "conflicting Content-Length";
        *len = x;
        *have = 1;
        if (*p == '\0') return NULL;
        p++;
    }
}

const char *
gw_framing_check(const struct gw_header *h, size_t n)
{
    static const char chunked[] = "chunked";
    uint64_t len = 0;
    int have_len = 0, te = 0;

    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "Content-Length") == 0) {
            const char *why = gw_content_length(h[i].value, &len, &have_len);
            if (why != NULL) return why;
        } else if (strcasecmp(h[i].name, "Transfer-Encoding") == 0) {
            const char *v = h[i].value, *end;
            if (te++) return "more than one Transfer-Encoding";
            while (gw_ows(*v))
                v++;
            end = v + strlen(v);
            while (end > v && gw_ows(end[-1]))
                end--;
            if ((size_t)(end - v) != sizeof(chunked) - 1 ||
                strncasecmp(v, chunked, sizeof(chunked) - 1) != 0)
                return "unsupported Transfer-Encoding";
        }
    }
    if (te && have_len) return "Transfer-Encoding with Content-Length";
    return NULL;
}
