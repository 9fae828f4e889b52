/*
 * gw_parts.c -- the parts of a registration a number has saved, on any
 * channel: the Redis key's name and value ("BITS" or "BITS LANG"), and
 * their merge into a flow state.  Shared by the USSD/SMS step
 * (gw_step.c, gw_step_save.c), the reminders' worker (gw_remind.c) and
 * fuzz_parts.  Contracts in gw_ussd_int.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_ussd_int.h"

/* Contract in gw_ussd_int.h. */
void
gw_parts_key(const char *msisdn, char *key, size_t cap)
{
    snprintf(key, cap, "parts:%s", msisdn);
}

/* Contract in gw_ussd_int.h. */
int
gw_parts_parse(const char *value, size_t len, unsigned *bits, char *lang)
{
    size_t nl = 0, ll = 0;
    char num[16];
    *bits = 0;
    lang[0] = '\0';
    while (nl < len && value[nl] >= '0' && value[nl] <= '9')
        nl++;
    if (nl < len && value[nl] == ' ') ll = len - nl - 1;
    if (nl == 0 || nl >= sizeof(num) || (nl < len && ll == 0) ||
        ll >= FLOW_LANG_MAX)
        return -1;
    memcpy(num, value, nl);
    num[nl] = '\0';
    unsigned long b = strtoul(num, NULL, 10);
    if (b > 0x7fffffffu) return -1;
    for (size_t i = 0; i < ll; i++) {
        char c = value[nl + 1 + i];
        if (!((c >= 'a' && c <= 'z') || c == '-')) {
            lang[0] = '\0';
            return -1;
        }
        lang[i] = c;
    }
    lang[ll] = '\0';
    *bits = (unsigned)b;
    return 0;
}

/* Contract in gw_ussd_int.h. */
unsigned
gw_parts_merge(const struct flow_set *set, struct flow_state *st, unsigned bits,
               const char *lang)
{
    unsigned fresh = bits & ~st->parts;
    unsigned n = flow_part_num(set, st->flow), dropped = 0;
    if (n > 0 && (fresh & (1u << (n - 1))) && !(st->flags & FLOW_SF_DONE)) {
        char had[FLOW_LANG_MAX];
        unsigned chose = st->flags & FLOW_SF_LANG, parts = st->parts;
        snprintf(had, sizeof(had), "%s", st->lang);
        memset(st, 0, sizeof(*st));
        snprintf(st->lang, sizeof(st->lang), "%s", had);
        st->flags = chose;
        st->parts = parts;
        dropped = n;
    }
    st->parts |= bits;
    if (bits != 0 && lang[0] != '\0' && !(st->flags & FLOW_SF_LANG)) {
        snprintf(st->lang, sizeof(st->lang), "%s", lang);
        st->flags |= FLOW_SF_LANG;
    }
    return dropped;
}
