/*
 * gw_at.c -- the aggregator USSD callback (POST /ussd/at), pure: its form
 * fields, and what the caller typed on this step out of the text of every
 * input so far.  Built on gw_parse.c's form pairs and MSISDNs; a buffer
 * in, a status out, no I/O.
 */
#include <string.h>

#include "flows/flow.h"
#include "gateway/gw.h"

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
