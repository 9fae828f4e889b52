/*
 * flow_record.c -- the record of a finished dialogue as JSON (the answers
 * on the walked path, under their record names), its reference, and the
 * channel names.  Writes into the caller's buffer: no allocation.
 */
#include <stdio.h>
#include <string.h>

#include "flows/flow_int.h"
#include "flows/flow_model.h"

/* ------------------------------------------------------------------------
 * The record
 */

static void
flow_json_str(struct flow_buf *j, const char *s, size_t n)
{
    flow_buf_put(j, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            flow_buf_put(j, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            flow_buf_put(j, esc, 6);
        } else {
            flow_buf_put(j, (const char *)&s[i], 1);
        }
    }
    flow_buf_put(j, "\"", 1);
}

static void
flow_json_kv(struct flow_buf *j, const char *k, const char *v)
{
    flow_buf_put(j, ",", 1);
    flow_json_str(j, k, strlen(k));
    flow_buf_put(j, ":", 1);
    if (v == NULL)
        flow_buf_put(j, "null", 4);
    else
        flow_json_str(j, v, strlen(v));
}

struct flow_rec {
    struct flow_buf *j;
    const struct flow_state *st;
    int first;
};

static void
flow_rec_visit(const struct flow_node *nd, const char *value, void *arg)
{
    struct flow_rec *r = arg;
    struct flow_buf *j = r->j;
    const char *name = flow_node_rec_name(nd);
    if (strcmp(nd->field, "lang") == 0) return;
    if (nd->parent_field != NULL && flow_state_get(r->st, nd->parent_field)) {
        /* the parent an item found by search brought (its division) */
        const char *pv = flow_state_get(r->st, nd->parent_field);
        if (!r->first) flow_buf_put(j, ",", 1);
        r->first = 0;
        flow_json_str(j, nd->parent_field, strlen(nd->parent_field));
        flow_buf_put(j, ":", 1);
        flow_json_str(j, pv, strlen(pv));
    }
    if (!r->first) flow_buf_put(j, ",", 1);
    r->first = 0;
    flow_json_str(j, name, strlen(name));
    flow_buf_put(j, ":", 1);
    if (nd->kind == FLOW_K_MULTI) {
        flow_buf_put(j, "[", 1);
        const char *p = value;
        for (int i = 0; p != NULL && *p; i++) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (i) flow_buf_put(j, ",", 1);
            flow_json_str(j, p, len);
            p = e ? e + 1 : NULL;
        }
        flow_buf_put(j, "]", 1);
    } else if (nd->kind == FLOW_K_INPUT && (!strcmp(nd->validator, "year") ||
                                            !strcmp(nd->validator, "age") ||
                                            !strcmp(nd->validator, "number"))) {
        flow_buf_put(j, value, strlen(value)); /* validated digits */
    } else {
        flow_json_str(j, value, strlen(value));
    }
}

int
flow_record_json(const struct flow_set *set, const struct flow_state *st,
                 const char *msisdn, char *buf, size_t cap)
{
    struct flow_buf j = {.buf = buf, .cap = cap};
    const struct flow_def *f = flow_def_find(set, st->flow);
    const struct flow_node *nd = f ? flow_node_find(f, st->node) : NULL;
    char ref[FLOW_REF_MAX], num[32];
    if (cap == 0) return -1;
    buf[0] = '\0';
    flow_ref_from_key(st->key, ref);
    flow_buf_put(&j, "{\"flow\":", 8);
    flow_json_str(&j, st->flow, strlen(st->flow));
    flow_json_kv(&j, "action",
                 nd && nd->kind == FLOW_K_END ? nd->action : NULL);
    flow_json_kv(&j, "key", st->key);
    flow_json_kv(&j, "ref", ref);
    flow_json_kv(&j, "lang", st->lang);
    flow_json_kv(&j, "channel", flow_channel_name(st->channel));
    flow_json_kv(&j, "msisdn", msisdn);
    snprintf(num, sizeof(num), ",\"started\":%lld", (long long)st->started);
    flow_buf_put(&j, num, strlen(num));
    flow_buf_put(&j, ",\"answers\":{", 12);
    if (f != NULL) {
        struct flow_rec r = {.j = &j, .st = st, .first = 1};
        flow_walk(set, f, st, flow_rec_visit, &r);
    }
    flow_buf_put(&j, "}}", 2);
    return j.overflow ? -1 : (int)j.len;
}

void
flow_ref_from_key(const char *key, char *buf)
{
    /* Crockford base32 without I, L, O, U: easy to read out on a phone. */
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint64_t bits = 0;
    for (int i = 0; i < 13 && key[i]; i++) {
        char c = key[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                            : 0;
        bits = bits << 4 | d;
    }
    for (int i = 9; i >= 0; i--) {
        buf[i] = b32[bits & 31];
        bits >>= 5;
    }
    buf[10] = '\0';
}

const char *
flow_channel_name(enum flow_channel ch)
{
    return ch == FLOW_CH_SMS ? "sms" : "ussd";
}

int
flow_channel_parse(const char *name, enum flow_channel *ch)
{
    if (strcmp(name, "ussd") == 0)
        *ch = FLOW_CH_USSD;
    else if (strcmp(name, "sms") == 0)
        *ch = FLOW_CH_SMS;
    else
        return -1;
    return 0;
}
