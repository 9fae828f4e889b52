/*
 * flow_engine.c -- (flows, state, input, time) -> (state', screen, done):
 * the answers of a state, the choices of a node and the walk.
 *
 * The engine is pure: no clock, no I/O, no allocation.  Everything a step
 * needs is in its arguments, so the same call gives the same screen in the
 * daemon, in `remigate sim`, in the transcript tests and under the fuzzer.
 * Its parts: this file; flow_pager.c (screens cut into pages);
 * flow_render.c (a node's screen); flow_step.c (an input moves the state);
 * flow_parts.c (a registration in parts); flow_record.c (the record).
 *
 * Which answers count is decided by walking the flow from its start over the
 * stored answers (flow_walk): the read-back, the record and the return from
 * an edit all follow that one path, so an answer left behind on a branch the
 * caller no longer takes (an NID after switching to passport, a district of
 * the old division) is neither shown nor submitted.
 */
#include <stdio.h>
#include <string.h>

#include "flows/flow_int.h"
#include "flows/flow_model.h"

/* ------------------------------------------------------------------------
 * Answers
 */

const char *
flow_state_get(const struct flow_state *st, const char *field)
{
    if (strcmp(field, "lang") == 0)
        return (st->flags & FLOW_SF_LANG) && st->lang[0] ? st->lang : NULL;
    for (unsigned i = 0; i < st->nanswers && i < FLOW_ANSWERS_MAX; i++)
        if (strcmp(st->answers[i].field, field) == 0)
            return st->answers[i].value;
    return NULL;
}

/* ------------------------------------------------------------------------
 * Choices, next nodes, the walk
 */

size_t
flow_choices(const struct flow_node *node, const struct flow_state *st, int li,
             struct flow_choice *out)
{
    size_t n = 0;
    if (node->list == NULL) {
        for (size_t i = 0; i < node->nopts && n < FLOW_CHOICES_MAX; i++) {
            const struct flow_option *o = &node->opts[i];
            out[n].value = o->value;
            out[n].label = flow_text_get(&o->label, li);
            out[n].next = o->next;
            out[n].flow = o->flow;
            n++;
        }
        return n;
    }
    const char *parent = node->filter ? flow_state_get(st, node->filter) : NULL;
    for (size_t i = 0; i < node->list->n && n < FLOW_CHOICES_MAX; i++) {
        const struct flow_item *it = &node->list->items[i];
        if (node->filter && (parent == NULL || strcmp(it->parent, parent)))
            continue;
        out[n].value = it->code;
        out[n].label = flow_text_get(&it->label, li);
        out[n].next = NULL;
        out[n].flow = NULL;
        n++;
    }
    return n;
}

const char *
flow_next_of(const struct flow_node *node, const struct flow_state *st,
             const char *value, const char **flow_to)
{
    *flow_to = NULL;
    if (value != NULL && node->kind == FLOW_K_MENU && node->list == NULL) {
        for (size_t i = 0; i < node->nopts; i++) {
            const struct flow_option *o = &node->opts[i];
            if (strcmp(o->value, value) != 0) continue;
            if (o->flow) {
                *flow_to = o->flow;
                return NULL;
            }
            if (o->next) return o->next;
        }
    }
    for (size_t i = 0; i < node->nbr; i++) {
        const struct flow_branch *b = &node->br[i];
        if (b->field == NULL) return b->next;
        const char *v = flow_state_get(st, b->field);
        if (v != NULL && strcmp(v, b->equals) == 0) return b->next;
    }
    return node->next;
}

/* Is value a current choice of node (every code, for multi)? */
static int
flow_value_ok(const struct flow_node *node, const struct flow_state *st,
              const char *value)
{
    if (node->kind == FLOW_K_INPUT) return 1;
    struct flow_choice ch[FLOW_CHOICES_MAX];
    size_t n = flow_choices(node, st, 0, ch);
    const char *p = value;
    do {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            found =
                strlen(ch[i].value) == len && memcmp(ch[i].value, p, len) == 0;
        if (!found) return 0;
        p = e ? e + 1 : NULL;
    } while (p != NULL && node->kind == FLOW_K_MULTI);
    return p == NULL;
}

const struct flow_node *
flow_walk(const struct flow_set *set, const struct flow_def *f,
          const struct flow_state *st, flow_visit_cb *visit, void *arg)
{
    (void)set;
    const struct flow_node *nd = flow_node_find(f, f->start);
    for (size_t guard = 0; nd != NULL && guard <= f->n; guard++) {
        if (nd->kind == FLOW_K_CONFIRM || nd->kind == FLOW_K_END) return nd;
        const char *v = flow_state_get(st, nd->field);
        if (v == NULL || !flow_value_ok(nd, st, v)) return nd;
        if (visit != NULL && !(nd->skip_if_set && !nd->has_label))
            visit(nd, v, arg);
        const char *to;
        const char *next = flow_next_of(nd, st, v, &to);
        if (to != NULL) return NULL;
        nd = flow_node_find(f, next);
    }
    return NULL;
}

/* The answer of node as the caller sees it, in language li. */
void
flow_display(const struct flow_node *node, const struct flow_state *st,
             const char *value, int li, char *buf, size_t cap)
{
    if (node->kind == FLOW_K_MENU && node->parent_field != NULL) {
        /* any item of the list: the answer was found by search, maybe
         * outside the filter's parent of the moment */
        for (size_t i = 0; node->list && i < node->list->n; i++)
            if (strcmp(node->list->items[i].code, value) == 0) {
                snprintf(buf, cap, "%s",
                         flow_text_get(&node->list->items[i].label, li));
                return;
            }
    }
    if (node->kind == FLOW_K_INPUT) {
        snprintf(buf, cap, "%s", value);
        return;
    }
    struct flow_choice ch[FLOW_CHOICES_MAX];
    size_t n = flow_choices(node, st, li, ch);
    size_t len = 0;
    buf[0] = '\0';
    const char *p = value;
    while (p != NULL && *p) {
        const char *e = strchr(p, ',');
        size_t vl = e ? (size_t)(e - p) : strlen(p);
        for (size_t i = 0; i < n; i++)
            if (strlen(ch[i].value) == vl && !memcmp(ch[i].value, p, vl)) {
                int w = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "",
                                 ch[i].label);
                if (w > 0 && (size_t)w < cap - len) len += (size_t)w;
            }
        p = e ? e + 1 : NULL;
    }
}
