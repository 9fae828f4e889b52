/*
 * gw_parse.c -- the pure parsers of the gateway: percent-decoding, query
 * and form pairs, Kannel meta-data, MSISDNs, the Kannel MO query, the
 * aggregator USSD form, the reply meta-data, address allowlists.
 *
 * Everything here takes a buffer and a length and returns a status; no
 * I/O, no clock, no libevent, so each function is unit-tested alone and
 * the MO parser is fuzzed (tests/fuzz/fuzz_kannel_mo.c).  Every bound is
 * a named constant in gw.h, and input beyond a bound is an error, never a
 * silent cut: a cut USSD answer would be a wrong answer.
 *
 * Kannel's URL encoder leaves "safe" bytes raw (a TLV octet 0x2A arrives
 * as '*') and encodes a space as '+', so decoding is a real decoder: any
 * byte but '%' stands for itself, and %XX may be any byte, NUL included.
 * Meta-data is encoded twice in a query: once by Kannel's meta-data packer
 * and once more as a query value; gw_kannel_mo_parse() undoes both.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flows/flow.h"
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
 * Kannel meta-data
 */

/* Decode a group or key name: non-empty printable ASCII, no spaces. */
static int
gw_meta_name(const char *s, size_t len, char *out)
{
    size_t n;
    if (gw_pct_decode(s, len, 1, out, GW_META_NAME_MAX, &n) != GW_OK) return -1;
    if (n == 0) return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] <= 0x20 || (unsigned char)out[i] >= 0x7F)
            return -1;
    return 0;
}

int
gw_meta_parse(const char *s, size_t len, struct gw_meta *m, const char **why)
{
    char group[GW_META_NAME_MAX];
    int have_group = 0;
    size_t pos = 0;
    const char *dummy;

    if (why == NULL) why = &dummy;
    m->n = 0;
    group[0] = '\0';
    while (pos < len) {
        const char *p = s + pos;
        size_t end, eq;
        struct gw_meta_item *it;
        char val[GW_META_VALUE_MAX + 1];
        int rc;

        if (*p == '?') {
            const char *q = memchr(p + 1, '?', len - pos - 1);
            if (q == NULL) {
                *why = "meta-data: unterminated group";
                return GW_EINVAL;
            }
            if (gw_meta_name(p + 1, (size_t)(q - p - 1), group) < 0) {
                *why = "meta-data: bad group name";
                return GW_EINVAL;
            }
            have_group = 1;
            pos = (size_t)(q - s) + 1;
            continue;
        }
        /* A pair ends at '&', at the next group or at the end. */
        for (end = pos; end < len && s[end] != '&' && s[end] != '?'; end++)
            ;
        if (end == pos) { /* "&&" */
            pos++;
            continue;
        }
        if (!have_group) {
            *why = "meta-data: a pair before any group";
            return GW_EINVAL;
        }
        for (eq = pos; eq < end && s[eq] != '='; eq++)
            ;
        if (eq == end) {
            *why = "meta-data: a pair without '='";
            return GW_EINVAL;
        }
        if (m->n == GW_META_MAX) {
            *why = "meta-data: too many items";
            return GW_ETOOMANY;
        }
        it = &m->item[m->n];
        memcpy(it->group, group, sizeof(group));
        if (gw_meta_name(p, eq - pos, it->key) < 0) {
            *why = "meta-data: bad key";
            return GW_EINVAL;
        }
        rc = gw_pct_decode(s + eq + 1, end - eq - 1, 1, val, sizeof(val),
                           &it->vlen);
        if (rc == GW_ETOOLONG) {
            *why = "meta-data: value too long";
            return GW_ETOOLONG;
        }
        if (rc != GW_OK) {
            *why = "meta-data: bad %-escape";
            return GW_EINVAL;
        }
        memcpy(it->val, val, it->vlen);
        if (gw_meta_get(m, it->group, it->key, NULL) != NULL) {
            *why = "meta-data: duplicate key";
            return GW_EINVAL;
        }
        m->n++;
        pos = end < len && s[end] == '&' ? end + 1 : end;
    }
    return GW_OK;
}

const unsigned char *
gw_meta_get(const struct gw_meta *m, const char *group, const char *key,
            size_t *len)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct gw_meta_item *it = &m->item[i];
        if (strcmp(it->group, group) == 0 && strcmp(it->key, key) == 0) {
            if (len != NULL) *len = it->vlen;
            return it->val;
        }
    }
    return NULL;
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
 * The Kannel MO query
 */

/* Copy a short printable field (no control bytes); 0 or -1. */
static int
gw_copy_field(const struct gw_param *p, char *out, size_t cap)
{
    if (p->vlen >= cap) return -1;
    for (size_t i = 0; i < p->vlen; i++)
        if ((unsigned char)p->val[i] < 0x20 || p->val[i] == 0x7F) return -1;
    memcpy(out, p->val, p->vlen);
    out[p->vlen] = '\0';
    return 0;
}

static int
gw_put_utf8(char *out, size_t cap, size_t *o, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*o + n >= cap) return -1;
    memcpy(out + *o, b, n);
    *o += n;
    return 0;
}

enum gw_charset { GW_CS_UTF8, GW_CS_UTF16BE, GW_CS_LATIN1, GW_CS_OTHER };

static enum gw_charset
gw_charset_of(const char *cs, int coding)
{
    static const struct {
        const char *name;
        enum gw_charset cs;
    } names[] = {
        {"UTF-8", GW_CS_UTF8},       {"UTF8", GW_CS_UTF8},
        {"US-ASCII", GW_CS_UTF8},    {"ASCII", GW_CS_UTF8},
        {"UTF-16BE", GW_CS_UTF16BE}, {"UCS-2", GW_CS_UTF16BE},
        {"UCS-2BE", GW_CS_UTF16BE},  {"ISO-8859-1", GW_CS_LATIN1},
        {"LATIN1", GW_CS_LATIN1},    {"WINDOWS-1252", GW_CS_OTHER},
    };
    if (cs[0] == '\0') return coding == 2 ? GW_CS_UTF16BE : GW_CS_UTF8;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(cs, names[i].name) == 0) return names[i].cs;
    return GW_CS_OTHER;
}

/* Text in charset cs -> UTF-8 in mo->text. */
static int
gw_mo_text(struct gw_kannel_mo *mo, const struct gw_param *p,
           enum gw_charset cs, const char **why)
{
    const unsigned char *s = (const unsigned char *)p->val;
    size_t o = 0, cap = sizeof(mo->text);

    switch (cs) {
    case GW_CS_UTF8:
        if (p->vlen >= cap) goto toolong;
        memcpy(mo->text, p->val, p->vlen);
        o = p->vlen;
        break;
    case GW_CS_LATIN1:
        for (size_t i = 0; i < p->vlen; i++)
            if (gw_put_utf8(mo->text, cap, &o, s[i]) < 0) goto toolong;
        break;
    case GW_CS_UTF16BE:
        if (p->vlen % 2 != 0) {
            *why = "text: odd number of UTF-16 bytes";
            return GW_EINVAL;
        }
        for (size_t i = 0; i < p->vlen; i += 2) {
            uint32_t u = (uint32_t)s[i] << 8 | s[i + 1];
            if (u >= 0xD800 && u <= 0xDBFF && i + 3 < p->vlen) {
                uint32_t l = (uint32_t)s[i + 2] << 8 | s[i + 3];
                if (l >= 0xDC00 && l <= 0xDFFF) {
                    u = 0x10000 + ((u - 0xD800) << 10) + (l - 0xDC00);
                    i += 2;
                }
            }
            if (u >= 0xD800 && u <= 0xDFFF) {
                *why = "text: unpaired UTF-16 surrogate";
                return GW_EINVAL;
            }
            if (gw_put_utf8(mo->text, cap, &o, u) < 0) goto toolong;
        }
        break;
    case GW_CS_OTHER:
    default:
        *why = "text: unsupported charset";
        return GW_EINVAL;
    }
    mo->text[o] = '\0';
    mo->text_len = o;
    if (memchr(mo->text, '\0', o) != NULL) {
        *why = "text contains NUL";
        return GW_EINVAL;
    }
    if (!flow_utf8_valid(mo->text, o)) {
        *why = "text is not valid UTF-8";
        return GW_EINVAL;
    }
    return GW_OK;

toolong:
    *why = "text too long";
    return GW_ETOOLONG;
}

/* The fields gw_kannel_mo_parse() reads; each may appear once. */
static const struct {
    const char *name;
    const char *dup;
} gw_mo_fields[] = {
    {"from", "duplicate parameter: from"},
    {"to", "duplicate parameter: to"},
    {"text", "duplicate parameter: text"},
    {"smsc", "duplicate parameter: smsc"},
    {"id", "duplicate parameter: id"},
    {"coding", "duplicate parameter: coding"},
    {"charset", "duplicate parameter: charset"},
    {"key", "duplicate parameter: key"},
    {"meta", "duplicate parameter: meta"},
    {"op", "duplicate parameter: op"},
    {"sess", "duplicate parameter: sess"},
};

static int
gw_mo_fill(struct gw_kannel_mo *mo, const struct gw_params *ps,
           const char **why)
{
    const struct gw_param *p;
    const unsigned char *v;
    size_t vlen;
    int rc;

    for (size_t i = 0; i < sizeof(gw_mo_fields) / sizeof(gw_mo_fields[0]); i++)
        if (gw_params_count(ps, gw_mo_fields[i].name) > 1) {
            *why = gw_mo_fields[i].dup;
            return GW_EINVAL;
        }

    p = gw_params_get(ps, "from");
    if (p == NULL) {
        *why = "missing from";
        return GW_EMISSING;
    }
    if (gw_msisdn_normalise(p->val, p->vlen, mo->msisdn, sizeof(mo->msisdn)) !=
        NULL) {
        *why = "from is not a Bangladesh mobile number";
        return GW_EINVAL;
    }
    if ((p = gw_params_get(ps, "to")) != NULL &&
        gw_copy_field(p, mo->to, sizeof(mo->to)) < 0) {
        *why = "bad to";
        return GW_EINVAL;
    }
    if ((p = gw_params_get(ps, "smsc")) != NULL &&
        gw_copy_field(p, mo->smsc, sizeof(mo->smsc)) < 0) {
        *why = "bad smsc";
        return GW_EINVAL;
    }
    if ((p = gw_params_get(ps, "id")) != NULL &&
        gw_copy_field(p, mo->id, sizeof(mo->id)) < 0) {
        *why = "bad id";
        return GW_EINVAL;
    }
    if ((p = gw_params_get(ps, "charset")) != NULL &&
        gw_copy_field(p, mo->charset, sizeof(mo->charset)) < 0) {
        *why = "bad charset";
        return GW_EINVAL;
    }
    if ((p = gw_params_get(ps, "coding")) != NULL && p->vlen > 0) {
        if (p->vlen != 1 &&
            !(p->vlen == 2 && p->val[0] == '-' && p->val[1] == '1')) {
            *why = "bad coding";
            return GW_EINVAL;
        }
        if (p->vlen == 2)
            mo->coding = -1;
        else if (p->val[0] >= '0' && p->val[0] <= '3')
            mo->coding = p->val[0] - '0';
        else {
            *why = "bad coding";
            return GW_EINVAL;
        }
    }
    if ((p = gw_params_get(ps, "key")) != NULL) {
        if (p->vlen >= sizeof(mo->key) ||
            memchr(p->val, '\0', p->vlen) != NULL) {
            *why = "bad key";
            return GW_EINVAL;
        }
        memcpy(mo->key, p->val, p->vlen + 1);
        mo->has_key = 1;
    }

    if ((p = gw_params_get(ps, "meta")) != NULL) {
        rc = gw_meta_parse(p->val, p->vlen, &mo->meta, why);
        if (rc != GW_OK) return rc;
        mo->has_meta = 1;
        if ((v = gw_meta_get(&mo->meta, "smpp", "ussd_service_op", &vlen)) !=
            NULL) {
            if (vlen != 1) {
                *why = "ussd_service_op must be one octet";
                return GW_EINVAL;
            }
            mo->ussd_op = v[0];
            mo->has_ussd = 1;
        }
        if ((v = gw_meta_get(&mo->meta, "smpp", "its_session_info", &vlen)) !=
            NULL) {
            if (vlen != 2) {
                *why = "its_session_info must be two octets";
                return GW_EINVAL;
            }
            memcpy(mo->sess, v, 2);
            mo->has_sess = 1;
        }
    }
    if (!mo->has_ussd && (p = gw_params_get(ps, "op")) != NULL) {
        if (p->vlen != 1) {
            *why = "op must be one octet";
            return GW_EINVAL;
        }
        mo->ussd_op = (unsigned char)p->val[0];
        mo->has_ussd = 1;
    }
    if (!mo->has_sess && (p = gw_params_get(ps, "sess")) != NULL) {
        if (p->vlen != 2) {
            *why = "sess must be two octets";
            return GW_EINVAL;
        }
        memcpy(mo->sess, p->val, 2);
        mo->has_sess = 1;
    }

    p = gw_params_get(ps, "text");
    if (p == NULL) {
        *why = "missing text";
        return GW_EMISSING;
    }
    if (mo->coding == 1) {
        *why = "text: 8-bit data is not accepted";
        return GW_EINVAL;
    }
    return gw_mo_text(mo, p, gw_charset_of(mo->charset, mo->coding), why);
}

int
gw_kannel_mo_parse(const char *query, size_t len, struct gw_kannel_mo *mo,
                   const char **why)
{
    struct gw_params ps;
    const char *dummy;
    int rc;

    if (why == NULL) why = &dummy;
    *why = NULL;
    memset(mo, 0, sizeof(*mo));
    mo->coding = -1;
    gw_params_init(&ps);
    rc = gw_params_parse(&ps, query, len, why);
    if (rc == GW_OK) rc = gw_mo_fill(mo, &ps, why);
    gw_params_fini(&ps);
    return rc;
}

int
gw_kannel_meta_reply(int end, const unsigned char sess[2], int has_sess,
                     char *buf, size_t cap)
{
    int n;
    if (has_sess) {
        unsigned char s1 = end ? (unsigned char)(sess[1] | 1u)
                               : (unsigned char)(sess[1] & ~1u);
        n = snprintf(buf, cap,
                     "?smpp?ussd_service_op=%d&its_session_info=%%%02X%%%02X",
                     end ? 17 : 2, sess[0], s1);
    } else {
        n = snprintf(buf, cap, "?smpp?ussd_service_op=%d", end ? 17 : 2);
    }
    if (n < 0 || (size_t)n >= cap) return -1;
    return n;
}

/* ------------------------------------------------------------------------
 * Aggregator USSD
 */

static const struct {
    const char *name;
    const char *dup;
} gw_at_fields[] = {
    {"sessionId", "duplicate parameter: sessionId"},
    {"serviceCode", "duplicate parameter: serviceCode"},
    {"phoneNumber", "duplicate parameter: phoneNumber"},
    {"networkCode", "duplicate parameter: networkCode"},
    {"text", "duplicate parameter: text"},
};

/* Printable ASCII without spaces, 1..cap-1 bytes. */
static int
gw_copy_token(const struct gw_param *p, char *out, size_t cap)
{
    if (p->vlen == 0 || p->vlen >= cap) return -1;
    for (size_t i = 0; i < p->vlen; i++)
        if ((unsigned char)p->val[i] <= 0x20 ||
            (unsigned char)p->val[i] >= 0x7F)
            return -1;
    memcpy(out, p->val, p->vlen);
    out[p->vlen] = '\0';
    return 0;
}

static int
gw_at_fill(struct gw_at_req *at, const struct gw_params *ps, const char **why)
{
    const struct gw_param *p;

    for (size_t i = 0; i < sizeof(gw_at_fields) / sizeof(gw_at_fields[0]); i++)
        if (gw_params_count(ps, gw_at_fields[i].name) > 1) {
            *why = gw_at_fields[i].dup;
            return GW_EINVAL;
        }
    p = gw_params_get(ps, "sessionId");
    if (p == NULL) {
        *why = "missing sessionId";
        return GW_EMISSING;
    }
    if (gw_copy_token(p, at->session_id, sizeof(at->session_id)) < 0) {
        *why = "bad sessionId";
        return GW_EINVAL;
    }
    p = gw_params_get(ps, "phoneNumber");
    if (p == NULL) {
        *why = "missing phoneNumber";
        return GW_EMISSING;
    }
    if (gw_msisdn_normalise(p->val, p->vlen, at->msisdn, sizeof(at->msisdn)) !=
        NULL) {
        *why = "phoneNumber is not a Bangladesh mobile number";
        return GW_EINVAL;
    }
    if ((p = gw_params_get(ps, "serviceCode")) != NULL && p->vlen > 0 &&
        gw_copy_token(p, at->service_code, sizeof(at->service_code)) < 0) {
        *why = "bad serviceCode";
        return GW_EINVAL;
    }
    if ((p = gw_params_get(ps, "networkCode")) != NULL && p->vlen > 0 &&
        gw_copy_token(p, at->network_code, sizeof(at->network_code)) < 0) {
        *why = "bad networkCode";
        return GW_EINVAL;
    }
    if ((p = gw_params_get(ps, "text")) != NULL) {
        if (p->vlen > GW_AT_TEXT_MAX) {
            *why = "text too long";
            return GW_ETOOLONG;
        }
        if (memchr(p->val, '\0', p->vlen) != NULL) {
            *why = "text contains NUL";
            return GW_EINVAL;
        }
        if (!flow_utf8_valid(p->val, p->vlen)) {
            *why = "text is not valid UTF-8";
            return GW_EINVAL;
        }
        memcpy(at->text, p->val, p->vlen);
        at->text_len = p->vlen;
    }
    at->text[at->text_len] = '\0';
    return GW_OK;
}

int
gw_at_parse(const char *body, size_t len, struct gw_at_req *at,
            const char **why)
{
    struct gw_params ps;
    const char *dummy;
    int rc;

    if (why == NULL) why = &dummy;
    *why = NULL;
    memset(at, 0, sizeof(*at));
    gw_params_init(&ps);
    rc = gw_params_parse(&ps, body, len, why);
    if (rc == GW_OK) rc = gw_at_fill(at, &ps, why);
    gw_params_fini(&ps);
    return rc;
}

enum gw_at_step
gw_at_new_input(const char *prev_text, const char *text, const char **input,
                size_t *len)
{
    size_t tlen = strlen(text), plen;

    *input = text;
    *len = tlen;
    if (prev_text == NULL) return tlen == 0 ? GW_AT_DIAL : GW_AT_INPUT;
    plen = strlen(prev_text);
    if (plen == tlen && memcmp(prev_text, text, tlen) == 0) {
        *len = 0;
        return GW_AT_REPEAT;
    }
    if (plen == 0) return GW_AT_INPUT;
    if (tlen > plen && memcmp(prev_text, text, plen) == 0 &&
        text[plen] == '*') {
        *input = text + plen + 1;
        *len = tlen - plen - 1;
        return GW_AT_INPUT;
    }
    *len = 0;
    return GW_AT_UNRELATED;
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
