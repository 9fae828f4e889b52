/*
 * gw_kannel.c -- Kannel's side of the gateway, pure: the MO query of
 * GET /kannel/mo (its fields, the text's charset to UTF-8), Kannel
 * meta-data (the SMPP TLVs of a USSD dialogue) and the meta-data of a
 * USSD reply.
 *
 * Like gw_parse.c, whose query pairs and MSISDNs it builds on: a buffer
 * in, a status out, no I/O; fuzzed by tests/fuzz/fuzz_kannel_mo.c.
 * Meta-data is encoded twice in a query: once by Kannel's meta-data
 * packer and once more as a query value; gw_kannel_mo_parse() undoes
 * both.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "flows/flow.h"
#include "gateway/gw.h"

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
