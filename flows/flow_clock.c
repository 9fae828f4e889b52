/*
 * flow_clock.c -- how long a flow keeps a caller on the line.
 *
 * An operator ends a USSD session after a fixed time (90 s is what the
 * regulator's pricing counts, 180 s what aggregators cut at), so a flow is
 * only as good as the part of it that fits one session.  This file walks
 * each flow's typical path (see struct flow_part_time in flow.h) with the
 * engine's own pager, counts the screens a caller answers by kind, prices
 * them with the clock from remigate.conf and cuts the path into parts at
 * each read-back.  `remigate check-flows` prints every part and warns (or,
 * with --strict, fails) when one is over the session budget.
 *
 * The model is deliberately coarse and deterministic: one right answer
 * per question, no "more" pages read past the one that holds the answer,
 * the same typical answers in every run.  It measures a flow against the
 * budget; it does not predict a person.
 */
#include <stdio.h>
#include <string.h>

#include "flows/flow_int.h"
#include "flows/flow_model.h"

#define FLOW_CLOCK_PARTS_MAX 16

/* A typical answer to an input, by validator, in language li of set. */
static const char *
flow_clock_typical(const struct flow_set *set, const struct flow_node *nd,
                   int li, char *buf, size_t cap)
{
    const char *v = nd->validator ? nd->validator : "";
    int bn = li >= 0 && strcmp(set->langs[li], "bn") == 0;
    if (strcmp(v, "name") == 0) return bn ? "রহিমা বেগম" : "Rahima Begum";
    if (strcmp(v, "year") == 0) {
        /* this year (2026 in the model) plus the middle of the range */
        long lo = nd->vp.have_min ? nd->vp.min : -50;
        long hi = nd->vp.have_max ? nd->vp.max : 0;
        snprintf(buf, cap, "%ld", 2026 + (lo + hi) / 2);
        return buf;
    }
    if (strcmp(v, "number") == 0 || strcmp(v, "age") == 0) {
        long lo = nd->vp.have_min ? nd->vp.min : 1;
        long hi = nd->vp.have_max ? nd->vp.max : lo;
        snprintf(buf, cap, "%ld", lo + (hi - lo) / 10);
        return buf;
    }
    if (strcmp(v, "nid") == 0 || strcmp(v, "id") == 0) return "1987654321";
    if (strcmp(v, "passport") == 0) return "A01234567";
    if (strcmp(v, "phone") == 0) return "01712345678";
    return "x";
}

/* Is this input typed as digits (a number screen) rather than text? */
static int
flow_clock_numeric(const struct flow_node *nd)
{
    static const char *const num[] = {"year",     "number", "age",   "nid",
                                      "passport", "id",     "phone", NULL};
    for (size_t i = 0; nd->validator && num[i]; i++)
        if (strcmp(nd->validator, num[i]) == 0) return 1;
    return 0;
}

static void
flow_clock_put(struct flow_state *st, const char *field, const char *value)
{
    for (unsigned i = 0; i < st->nanswers; i++)
        if (strcmp(st->answers[i].field, field) == 0) {
            flow_copy(st->answers[i].value, FLOW_VALUE_MAX, value);
            return;
        }
    if (st->nanswers == FLOW_ANSWERS_MAX) return;
    struct flow_answer *a = &st->answers[st->nanswers++];
    flow_copy(a->field, sizeof(a->field), field);
    flow_copy(a->value, sizeof(a->value), value);
}

struct flow_clock_walk {
    const struct flow_set *set;
    const struct flow_clock *ck;
    struct flow_part_time parts[FLOW_CLOCK_PARTS_MAX];
    unsigned n;
    struct flow_part_time cur;
};

static void
flow_clock_screens(struct flow_clock_walk *w, unsigned *kind, unsigned count,
                   unsigned ms_each)
{
    *kind += count;
    w->cur.screens += count;
    w->cur.ms += count * (ms_each + w->ck->round_trip_ms);
}

static void
flow_clock_close(struct flow_clock_walk *w, int line)
{
    if (w->cur.screens > 0 && w->n < FLOW_CLOCK_PARTS_MAX) {
        w->cur.line = line;
        w->parts[w->n++] = w->cur;
    }
    unsigned part = w->cur.part;
    memset(&w->cur.screens, 0,
           sizeof(w->cur) - offsetof(struct flow_part_time, screens));
    w->cur.part = part + 1;
}

/* Walk f's typical path in language li; fills w->parts. */
static void
flow_clock_walk(struct flow_clock_walk *w, const struct flow_def *f, int li)
{
    const struct flow_set *set = w->set;
    const struct flow_clock *ck = w->ck;
    struct flow_state st;
    struct flow_choice ch[FLOW_CHOICES_MAX];
    char buf[FLOW_VALUE_MAX];

    memset(&st, 0, sizeof(st));
    flow_copy(st.flow, sizeof(st.flow), f->id);
    flow_copy(st.home, sizeof(st.home), f->id);
    flow_copy(st.lang, sizeof(st.lang), set->langs[li]);
    st.flags = FLOW_SF_LANG;
    st.channel = FLOW_CH_USSD;
    memset(st.key, 'f', FLOW_KEY_MAX - 1);

    w->n = 0;
    memset(&w->cur, 0, sizeof(w->cur));
    w->cur.flow = f->id;
    w->cur.file = f->file;
    w->cur.lang = set->langs[li];
    w->cur.part = 1;

    const struct flow_node *nd = flow_node_find(f, f->start);
    int line = f->line;
    for (size_t guard = 0; nd != NULL && guard <= 2 * f->n; guard++) {
        const char *value = NULL, *to = NULL;
        size_t n, pick;
        unsigned page = 0, np;
        line = nd->line;
        flow_copy(st.node, sizeof(st.node), nd->id);
        st.page = 0;
        if (nd->kind == FLOW_K_END) break;
        if (nd->skip_if_set && nd->field &&
            (strcmp(nd->field, "lang") == 0 ||
             flow_state_get(&st, nd->field) != NULL)) {
            value = flow_state_get(&st, nd->field);
            nd = flow_node_find(f, flow_next_of(nd, &st, value, &to));
            if (to != NULL) break;
            continue;
        }
        switch (nd->kind) {
        case FLOW_K_MENU:
            if (nd->has_search && nd->list != NULL && nd->list->n > 0) {
                /* the first three letters of the middle item's name; then
                 * the pick from the matches, unless it is the only one
                 * (the engine takes that at once) */
                const struct flow_item *it = &nd->list->items[nd->list->n / 2];
                const char *name = flow_text_get(&it->label, li);
                size_t len = strlen(name), at = 0;
                uint32_t cp;
                for (int k = 0; k < 3 && at < len; k++)
                    if (flow_utf8_next(name, len, &at, &cp) != 0) break;
                snprintf(buf, sizeof(buf), "%.*s", (int)at, name);
                flow_clock_screens(w, &w->cur.searches, 1, ck->search_ms);
                if (flow_search(set, nd, buf, li, ch) != 1)
                    flow_clock_screens(w, &w->cur.menus, 1, ck->menu_ms);
                if (nd->parent_field && it->parent[0])
                    flow_clock_put(&st, nd->parent_field, it->parent);
                value = it->code;
                break;
            }
            n = flow_choices(nd, &st, li, ch);
            if (n == 0) return; /* a filtered list with no parent */
            pick = nd->list ? n / 2 : 0;
            np = flow_render_pages(set, &st, pick, &page);
            (void)np;
            flow_clock_screens(w, &w->cur.menus, page + 1, ck->menu_ms);
            value = ch[pick].value;
            break;
        case FLOW_K_MULTI: {
            n = flow_choices(nd, &st, li, ch);
            if (n == 0) return;
            np = flow_render_pages(set, &st, 0, NULL);
            flow_clock_screens(w, &w->cur.menus, np, ck->menu_ms);
            size_t len = 0;
            buf[0] = '\0';
            for (long k = 0; k < (nd->min > 0 ? nd->min : 1) && (size_t)k < n;
                 k++) {
                int wr = snprintf(buf + len, sizeof(buf) - len, "%s%s",
                                  k ? "," : "", ch[k].value);
                if (wr > 0 && (size_t)wr < sizeof(buf) - len) len += (size_t)wr;
            }
            value = buf;
            break;
        }
        case FLOW_K_INPUT:
            if (flow_clock_numeric(nd))
                flow_clock_screens(w, &w->cur.numbers, 1, ck->number_ms);
            else
                flow_clock_screens(w, &w->cur.texts, 1, ck->text_ms);
            value = flow_clock_typical(set, nd, li, buf, sizeof(buf));
            break;
        case FLOW_K_CONFIRM:
            np = flow_render_pages(set, &st, 0, NULL);
            flow_clock_screens(w, &w->cur.readbacks, np, ck->readback_ms);
            flow_clock_close(w, nd->line);
            nd = flow_node_find(f, nd->next);
            continue;
        default:
            FLOW_WRONG("node kind");
        }
        flow_clock_put(&st, nd->field, value);
        const char *next = flow_next_of(nd, &st, value, &to);
        if (to != NULL) break;
        nd = flow_node_find(f, next);
    }
    flow_clock_close(w, line);
}

unsigned
flow_clock_parts(const struct flow_set *set, flow_part_cb *cb, void *arg)
{
    struct flow_clock_walk w = {.set = set, .ck = &set->s.clock};
    unsigned over = 0;
    for (size_t fi = 0; fi < set->nflows; fi++) {
        const struct flow_def *f = &set->flows[fi];
        if (!(f->channels & (1u << FLOW_CH_USSD))) continue;
        for (size_t li = 0; li < set->nlangs; li++) {
            if (!(f->langs & (1u << li))) continue;
            flow_clock_walk(&w, f, (int)li);
            for (unsigned i = 0; i < w.n; i++) {
                w.parts[i].nparts = w.n;
                over += w.parts[i].ms > set->s.clock.budget_ms;
                if (cb != NULL) cb(&w.parts[i], arg);
            }
        }
    }
    return over;
}
