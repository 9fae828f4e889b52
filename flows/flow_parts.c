/*
 * flow_parts.c -- a registration in parts: the flow whose "parts" names
 * them, a part's number, the bit a finished part sets in the state, and
 * the next part still to do.  The bits are kept by the caller between
 * dialogues (sessions/, gateway/gw_parts.c); these only read and set them.
 */
#include <string.h>

#include "flows/flow_int.h"
#include "flows/flow_model.h"

/* The flow that names the parts, or NULL. */
static const struct flow_def *
flow_parts_def(const struct flow_set *set)
{
    for (size_t i = 0; i < set->nflows; i++)
        if (set->flows[i].nparts > 0) return &set->flows[i];
    return NULL;
}

unsigned
flow_part_num(const struct flow_set *set, const char *flow_id)
{
    const struct flow_def *p = flow_parts_def(set);
    for (size_t i = 0; p != NULL && i < p->nparts; i++)
        if (strcmp(p->parts[i], flow_id) == 0) return (unsigned)i + 1;
    return 0;
}

unsigned
flow_part_mark(const struct flow_set *set, struct flow_state *st)
{
    unsigned n = flow_part_num(set, st->flow);
    if (n > 0) st->parts |= 1u << (n - 1);
    return n;
}

const char *
flow_part_next(const struct flow_set *set, const struct flow_state *st,
               unsigned *n, unsigned *total)
{
    const struct flow_def *p = flow_parts_def(set);
    *n = *total = 0;
    if (p == NULL || !(st->parts & 1u)) return NULL;
    for (size_t i = 0; i < p->nparts; i++)
        if (!(st->parts & (1u << i)) && flow_def_find(set, p->parts[i])) {
            *n = (unsigned)i + 1;
            *total = (unsigned)p->nparts;
            return p->parts[i];
        }
    return NULL;
}

unsigned
flow_part_todo(const struct flow_set *set, const struct flow_state *st,
               unsigned *total)
{
    const struct flow_def *p = flow_parts_def(set);
    unsigned n = 0;
    *total = 0;
    if (p == NULL) return 0;
    if (!(st->flags & FLOW_SF_DONE) && st->nanswers > 0)
        for (size_t i = 0; i < p->nparts; i++)
            if (strcmp(p->parts[i], st->flow) == 0) {
                *total = (unsigned)p->nparts;
                return (unsigned)i + 1;
            }
    return flow_part_next(set, st, &n, total) != NULL ? n : 0;
}
