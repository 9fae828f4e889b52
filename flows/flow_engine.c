/*
 * flow_engine.c -- (flows, state, input, time) -> (state', screen, done).
 *
 * Pure: no clock, no I/O, no allocation.  Everything a step needs is in its
 * arguments, so the same call gives the same screen in the daemon, in
 * `remigate sim`, in the transcript tests and under the fuzzer.
 *
 * Screens are assembled from lines and cut into pages by one pager: a head
 * (reason and question, page 0 only), numbered items, a foot for the last
 * page (confirm's "1. Confirm / 2. Change") and the navigation lines.  Pages
 * are recomputed from the node, the language and the answers on every call;
 * only the page number is kept in the state.
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

#define FLOW_POOL_MAX  16384
#define FLOW_LINES_MAX (FLOW_CHOICES_MAX + 2 * FLOW_ANSWERS_MAX)

/* ------------------------------------------------------------------------
 * Screens
 */

void
flow_screen_reset(struct flow_screen *sc)
{
    sc->len = 0;
    sc->buf[0] = '\0';
    sc->overflow = 0;
}

void
flow_screen_add(struct flow_screen *sc, const char *s)
{
    size_t n = strlen(s);
    if (sc->len + n >= sizeof(sc->buf)) {
        sc->overflow = 1;
        return;
    }
    memcpy(sc->buf + sc->len, s, n + 1);
    sc->len += n;
}

void
flow_screen_line(struct flow_screen *sc, const char *s)
{
    if (s == NULL || s[0] == '\0') return;
    if (sc->len > 0) flow_screen_add(sc, "\n");
    flow_screen_add(sc, s);
}

unsigned
flow_screen_units(const struct flow_screen *sc, enum flow_enc *enc)
{
    unsigned units;
    flow_text_measure(sc->buf, sc->len, enc, &units);
    return units;
}

unsigned
flow_page_limit(const struct flow_set *set, enum flow_channel ch,
                enum flow_enc enc)
{
    const struct flow_page *p = &set->s.page[ch == FLOW_CH_SMS];
    return enc == FLOW_ENC_GSM7 ? p->gsm7 : p->ucs2;
}

static void
flow_out_set(const struct flow_set *set, enum flow_channel ch,
             const struct flow_screen *sc, struct flow_out *out)
{
    memcpy(out->text, sc->buf, sc->len + 1);
    out->len = sc->len;
    out->used = flow_screen_units(sc, &out->enc);
    out->limit = flow_page_limit(set, ch, out->enc);
}

/* ------------------------------------------------------------------------
 * The pager
 */

struct flow_pager {
    const char *head; /* page 0 only, may be "" */
    const char *items[FLOW_LINES_MAX];
    size_t n;
    const char *foot_last; /* last page only, may be NULL */
    const char *more;      /* "98. More" */
    const char *back;      /* "0. Back" */
    int back_first;        /* is back possible on page 0? */
    const char *digits;    /* the language's digits, or NULL: ASCII */
    /* a pool for the item strings */
    char pool[FLOW_POOL_MAX];
    size_t used;
};

static const char *
flow_pager_str(struct flow_pager *pg, const char *a, const char *b,
               const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    if (pg->used + la + lb + lc + 1 > sizeof(pg->pool)) return "";
    char *p = pg->pool + pg->used;
    memcpy(p, a, la);
    memcpy(p + la, b, lb);
    memcpy(p + la + lb, c, lc);
    p[la + lb + lc] = '\0';
    pg->used += la + lb + lc + 1;
    if (pg->digits == NULL) return p;
    /* the same text in the language's digits, after it in the pool; a
     * line is measured and built as the caller will see it */
    size_t room = sizeof(pg->pool) - pg->used;
    if (room < la + lb + lc + 1) return p;
    char *q = pg->pool + pg->used;
    pg->used += flow_digits_apply(pg->digits, p, la + lb + lc, q, room) + 1;
    return q;
}

static void
flow_pager_item(struct flow_pager *pg, const char *s)
{
    if (pg->n < FLOW_LINES_MAX) pg->items[pg->n++] = s;
}

static void
flow_pager_build(const struct flow_pager *pg, struct flow_screen *sc,
                 unsigned page, size_t from, size_t to)
{
    int last = to >= pg->n;
    flow_screen_reset(sc);
    if (page == 0) flow_screen_line(sc, pg->head);
    for (size_t i = from; i < to && i < pg->n; i++)
        flow_screen_line(sc, pg->items[i]);
    if (last && pg->foot_last) flow_screen_line(sc, pg->foot_last);
    if (!last) flow_screen_line(sc, pg->more);
    if (page > 0 || pg->back_first) flow_screen_line(sc, pg->back);
}

/* The size of one line, measured once per cut (a page's size is the sum
 * of its lines' and one newline between each two). */
struct flow_meas {
    unsigned septets, ucs2;
    size_t bytes;
    int gsm, present;
};

static void
flow_meas_of(const char *s, struct flow_meas *m)
{
    m->present = s != NULL && s[0] != '\0';
    if (!m->present) return;
    m->bytes = strlen(s);
    m->gsm = flow_text_scan(s, m->bytes, &m->septets, &m->ucs2);
}

struct flow_pager_meas {
    struct flow_meas head, more, back, foot;
    struct flow_meas items[FLOW_LINES_MAX];
};

struct flow_sum {
    unsigned septets, ucs2, lines;
    size_t bytes;
    int gsm;
};

static void
flow_sum_add(struct flow_sum *t, const struct flow_meas *m)
{
    if (!m->present) return;
    if (t->lines++ > 0) {
        t->septets++;
        t->ucs2++;
        t->bytes++;
    }
    t->septets += m->septets;
    t->ucs2 += m->ucs2;
    t->bytes += m->bytes;
    t->gsm &= m->gsm;
}

/* Would the lines added up in t fit on one page (and in a screen's
 * buffer)? */
static int
flow_sum_fits(const struct flow_set *set, enum flow_channel ch,
              const struct flow_sum *t)
{
    unsigned units = t->gsm ? t->septets : t->ucs2;
    return t->bytes < FLOW_TEXT_MAX &&
           units <=
               flow_page_limit(set, ch, t->gsm ? FLOW_ENC_GSM7 : FLOW_ENC_UCS2);
}

/* Would flow_pager_build(pg, page, from, to) fit?  The same lines, added
 * up instead of built and measured. */
static int
flow_pager_fits(const struct flow_set *set, enum flow_channel ch,
                const struct flow_pager *pg, const struct flow_pager_meas *pm,
                unsigned page, size_t from, size_t to)
{
    struct flow_sum t = {.gsm = 1};
    int last = to >= pg->n;
    if (page == 0) flow_sum_add(&t, &pm->head);
    for (size_t i = from; i < to && i < pg->n; i++)
        flow_sum_add(&t, &pm->items[i]);
    if (last && pg->foot_last) flow_sum_add(&t, &pm->foot);
    if (!last) flow_sum_add(&t, &pm->more);
    if (page > 0 || pg->back_first) flow_sum_add(&t, &pm->back);
    return flow_sum_fits(set, ch, &t);
}

/* Cut the items into pages: each page takes as many items as fit.  Fills
 * starts[] (FLOW_LINES_MAX + 1) and returns the number of pages (>= 1).
 * *fits is cleared if some page could not fit even one item. */
static unsigned
flow_pager_cut(const struct flow_set *set, enum flow_channel ch,
               const struct flow_pager *pg, size_t *starts, int *fits)
{
    struct flow_pager_meas pm;
    unsigned np = 0;
    size_t from = 0;
    flow_meas_of(pg->head, &pm.head);
    flow_meas_of(pg->more, &pm.more);
    flow_meas_of(pg->back, &pm.back);
    flow_meas_of(pg->foot_last, &pm.foot);
    for (size_t i = 0; i < pg->n; i++)
        flow_meas_of(pg->items[i], &pm.items[i]);
    *fits = 1;
    do {
        /* A page that is not the last only grows with each item, so the
         * first item that does not fit ends the search; the last page
         * (its footer instead of "more") is tried once on its own. */
        size_t best = 0, to;
        for (to = from + 1; to < pg->n; to++) {
            if (!flow_pager_fits(set, ch, pg, &pm, np, from, to)) break;
            best = to;
        }
        if (pg->n > from && flow_pager_fits(set, ch, pg, &pm, np, from, pg->n))
            best = pg->n;
        if (pg->n == 0) {
            if (!flow_pager_fits(set, ch, pg, &pm, np, 0, 0)) *fits = 0;
            best = 0;
        } else if (best == 0 && np == 0) {
            /* the head (a reason line and a question) leaves no room for
             * the first item: page 0 shows the head and "more" alone */
            if (!flow_pager_fits(set, ch, pg, &pm, 0, 0, 0)) {
                *fits = 0;
                best = 1;
            }
        } else if (best == 0) {
            *fits = 0;
            best = from + 1;
        }
        starts[np++] = from;
        from = best;
    } while (from < pg->n && np < FLOW_LINES_MAX);
    starts[np] = pg->n;
    return np;
}

/* Render page *page (clamped) into out.  Returns the page count. */
static unsigned
flow_pager_render(const struct flow_set *set, enum flow_channel ch,
                  const struct flow_pager *pg, unsigned page,
                  struct flow_out *out, int *fits, size_t *starts_out)
{
    size_t starts[FLOW_LINES_MAX + 1];
    int ok;
    unsigned np = flow_pager_cut(set, ch, pg, starts, &ok);
    if (starts_out != NULL)
        memcpy(starts_out, starts, sizeof(starts[0]) * (np + 1));
    if (page >= np) page = np - 1;
    struct flow_screen sc;
    flow_pager_build(pg, &sc, page, starts[page], starts[page + 1]);
    if (out != NULL) flow_out_set(set, ch, &sc, out);
    if (fits != NULL) *fits = ok;
    return np;
}

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

static void
flow_state_put(const struct flow_set *set, struct flow_state *st,
               const char *field, const char *value)
{
    if (strcmp(field, "lang") == 0) {
        if (flow_lang_index(set, value) >= 0) {
            flow_copy(st->lang, sizeof(st->lang), value);
            st->flags |= FLOW_SF_LANG;
        }
        return;
    }
    for (unsigned i = 0; i < st->nanswers; i++)
        if (strcmp(st->answers[i].field, field) == 0) {
            snprintf(st->answers[i].value, FLOW_VALUE_MAX, "%s", value);
            return;
        }
    if (st->nanswers == FLOW_ANSWERS_MAX)
        return; /* the linter keeps flows under this */
    struct flow_answer *a = &st->answers[st->nanswers++];
    snprintf(a->field, sizeof(a->field), "%s", field);
    snprintf(a->value, sizeof(a->value), "%s", value);
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
static void
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

/* ------------------------------------------------------------------------
 * Placeholders
 */

static const struct flow_node *
flow_field_node(const struct flow_def *f, const char *field)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->nodes[i].field && strcmp(f->nodes[i].field, field) == 0)
            return &f->nodes[i];
    return NULL;
}

/* Expand {name} in tmpl: vars first, then {ref}, then answers (st and f
 * may be NULL: vars only). */
static void
flow_expand(const struct flow_def *f, const struct flow_state *st, int li,
            const char *tmpl, const char *const *vars, char *buf, size_t cap)
{
    size_t len = 0;
    const char *p = tmpl;
    buf[0] = '\0';
    while (*p && len + 1 < cap) {
        const char *e = p[0] == '{' ? strchr(p, '}') : NULL;
        if (e == NULL || e - p - 1 <= 0 || e - p - 1 >= FLOW_ID_MAX) {
            buf[len++] = *p++;
            buf[len] = '\0';
            continue;
        }
        char name[FLOW_ID_MAX], val[FLOW_VALUE_MAX * 2];
        memcpy(name, p + 1, (size_t)(e - p - 1));
        name[e - p - 1] = '\0';
        const char *v = NULL;
        for (size_t i = 0; vars && vars[i]; i++) {
            size_t nl = strlen(name);
            if (strncmp(vars[i], name, nl) == 0 && vars[i][nl] == '=')
                v = vars[i] + nl + 1;
        }
        if (v == NULL && st != NULL && strcmp(name, "ref") == 0) {
            flow_ref_from_key(st->key, val);
            v = val;
        }
        if (v == NULL && st != NULL) {
            const char *a = flow_state_get(st, name);
            const struct flow_node *nd = f ? flow_field_node(f, name) : NULL;
            if (a != NULL && nd != NULL) {
                flow_display(nd, st, a, li, val, sizeof(val));
                v = val;
            } else if (a != NULL) {
                v = a;
            }
        }
        if (v == NULL) v = "";
        int w = snprintf(buf + len, cap - len, "%s", v);
        if (w < 0 || (size_t)w >= cap - len) break;
        len += (size_t)w;
        p = e + 1;
    }
}

/* ------------------------------------------------------------------------
 * Rendering one node
 */

struct flow_view {
    const struct flow_set *set;
    const struct flow_state *st;
    const struct flow_def *f;
    const struct flow_node *nd;
    int li;
    enum flow_channel ch;
    size_t *starts; /* NULL, or where the pages start (flow_render_pages) */
};

/* The digits numbers are shown in, in lang: its "digits" message (ten
 * characters, 0 to 9), or NULL for the ASCII digits.  Never another
 * language's: a message missing in lang does not fall back here. */
static const char *
flow_digits_of(const struct flow_set *set, const char *lang)
{
    const struct flow_msg *m = flow_msg_find(set, "digits");
    int li = flow_lang_index(set, lang);
    if (m == NULL || li < 0 || m->text.s[li] == NULL) return NULL;
    return strcmp(m->text.s[li], "0123456789") ? m->text.s[li] : NULL;
}

static void
flow_nav_init(const struct flow_view *v, struct flow_pager *pg, int back_first)
{
    const struct flow_settings *s = &v->set->s;
    const char *lang = v->st->lang;
    pg->head = "";
    pg->n = 0;
    pg->used = 0;
    /* the language menu keeps the keypad's digits: a caller who cannot
     * read this language picks another by them */
    pg->digits = v->nd->field && strcmp(v->nd->field, "lang") == 0 &&
                         !(v->st->flags & (FLOW_SF_NEXTPART | FLOW_SF_RESUME))
                     ? NULL
                     : flow_digits_of(v->set, lang);
    pg->foot_last = NULL;
    pg->more = flow_pager_str(pg, s->key_more, ". ",
                              flow_message(v->set, lang, "more"));
    pg->back = flow_pager_str(pg, s->key_back, ". ",
                              flow_message(v->set, lang, "back"));
    pg->back_first = back_first;
}

static void flow_display(const struct flow_node *node,
                         const struct flow_state *st, const char *value, int li,
                         char *buf, size_t cap);

/* Reason (if any) and question as the page-0 head; after a search's only
 * match was taken, that answer above them ("District: Chattogram"). */
static const char *
flow_head(const struct flow_view *v, struct flow_pager *pg, const char *q)
{
    const char *head = q;
    if (v->st->why[0] != '\0')
        head = flow_pager_str(pg, flow_message(v->set, v->st->lang, v->st->why),
                              "\n", q);
    const struct flow_node *t =
        (v->st->flags & FLOW_SF_TOOK) && v->st->nhist > 0
            ? flow_node_find(v->f, v->st->hist[v->st->nhist - 1])
            : NULL;
    const char *a = t && t->field ? flow_state_get(v->st, t->field) : NULL;
    if (a == NULL) return flow_pager_str(pg, head, "", "");
    char disp[FLOW_VALUE_MAX * 2], line[FLOW_VALUE_MAX * 3];
    flow_display(t, v->st, a, v->li, disp, sizeof(disp));
    snprintf(line, sizeof(line), "%s: %s\n", flow_text_get(&t->label, v->li),
             disp);
    return flow_pager_str(pg, line, head, "");
}

static void
flow_numbered(struct flow_pager *pg, const struct flow_choice *ch, size_t n)
{
    char num[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(num, sizeof(num), "%u. ", (unsigned)(i + 1));
        flow_pager_item(pg, flow_pager_str(pg, num, ch[i].label, ""));
    }
}

struct flow_rb {
    const struct flow_view *v;
    struct flow_pager *pg;
    const struct flow_node *nodes[FLOW_ANSWERS_MAX];
    size_t n;
    int lines; /* add read-back lines to the pager */
    /* the pager's fixed lines, measured at the first read-back line */
    int measured;
    struct flow_meas head, more, back, foot;
};

static int
flow_rb_wanted(const struct flow_node *confirm, const struct flow_node *nd)
{
    if (!nd->has_label) return 0;
    if (confirm->nfields == 0) return 1;
    for (size_t i = 0; i < confirm->nfields; i++)
        if (strcmp(confirm->fields[i], nd->field) == 0) return 1;
    return 0;
}

/* Split a read-back line that is too long for a page by itself (the first
 * one shares page 0 with the head). */
static void
flow_rb_add(struct flow_rb *rb, const char *line)
{
    const struct flow_view *v = rb->v;
    struct flow_pager *pg = rb->pg;
    const char *p = line;
    char part[FLOW_VALUE_MAX * 2];
    if (!rb->measured) {
        flow_meas_of(pg->head, &rb->head);
        flow_meas_of(pg->more, &rb->more);
        flow_meas_of(pg->back, &rb->back);
        flow_meas_of(pg->foot_last, &rb->foot);
        rb->measured = 1;
    }
    for (int guard = 0; *p && guard < 16; guard++) {
        size_t len = strlen(p), cut = len;
        for (;;) {
            struct flow_meas pm;
            snprintf(part, sizeof(part), "%.*s", (int)cut, p);
            flow_meas_of(part, &pm);
            /* it must fit on a last page (with the foot) and on any other
             * page (with "more"); the lines are added up as the pager
             * does, not built and measured */
            int fits = 1;
            for (int last = 0; last < 2; last++) {
                struct flow_sum t = {.gsm = 1};
                if (pg->n == 0) flow_sum_add(&t, &rb->head);
                flow_sum_add(&t, &pm);
                flow_sum_add(&t, last ? &rb->foot : &rb->more);
                flow_sum_add(&t, &rb->back);
                fits &= flow_sum_fits(v->set, v->ch, &t);
            }
            if (fits || cut <= 1) break;
            /* back off to the start of the previous code point */
            cut--;
            while (cut > 0 && ((unsigned char)p[cut] & 0xC0) == 0x80)
                cut--;
        }
        /* cut between two answers (", "), else at a space: never inside
         * a word */
        if (cut < len) {
            size_t sp = cut, at = 0;
            for (; sp > 1 && at == 0; sp--)
                if (p[sp - 1] == ' ' && p[sp - 2] == ',') at = sp;
            for (sp = cut; sp > 1 && at == 0; sp--)
                if (p[sp - 1] == ' ') at = sp;
            if (at > 1) {
                cut = at;
                snprintf(part, sizeof(part), "%.*s", (int)(cut - 1), p);
            }
        }
        flow_pager_item(pg, flow_pager_str(pg, part, "", ""));
        p += cut;
    }
}

static void
flow_rb_visit(const struct flow_node *nd, const char *value, void *arg)
{
    struct flow_rb *rb = arg;
    const struct flow_view *v = rb->v;
    if (!flow_rb_wanted(v->nd, nd) || rb->n == FLOW_ANSWERS_MAX) return;
    rb->nodes[rb->n++] = nd;
    if (!rb->lines) return;
    char disp[FLOW_VALUE_MAX * 2], line[FLOW_VALUE_MAX * 3];
    if (nd->personal &&
        (v->ch == FLOW_CH_SMS || (v->st->flags & FLOW_SF_RESUMED)))
        /* an SMS is kept (sms_out) and read on a shared phone; a resumed
         * dialogue may be someone else holding the phone */
        flow_mask(flow_node_ftype(nd), value, disp, sizeof(disp));
    else
        flow_display(nd, v->st, value, v->li, disp, sizeof(disp));
    snprintf(line, sizeof(line), "%s: %s", flow_text_get(&nd->label, v->li),
             disp);
    flow_rb_add(rb, line);
}

static unsigned
flow_render_node(const struct flow_view *v, unsigned page, struct flow_out *out,
                 int *fits)
{
    struct flow_pager pg;
    struct flow_choice ch[FLOW_CHOICES_MAX];
    const struct flow_state *st = v->st;
    const char *lang = st->lang;
    int back = st->nhist > 0;
    size_t n;

    if (st->flags & FLOW_SF_NEXTPART) {
        char tot[16], num[16], title[FLOW_VALUE_MAX], head[FLOW_TEXT_MAX];
        unsigned k = 0, total = 0;
        const char *next = flow_part_next(v->set, st, &k, &total);
        const struct flow_def *g = next ? flow_def_find(v->set, next) : NULL;
        snprintf(num, sizeof(num), "n=%u", k);
        snprintf(tot, sizeof(tot), "total=%u", total);
        snprintf(title, sizeof(title), "title=%s",
                 g ? flow_text_get(&g->title, v->li) : "");
        const char *vars[] = {num, tot, title, NULL};
        flow_expand(NULL, NULL, 0, flow_message(v->set, lang, "part_offer"),
                    vars, head, sizeof(head));
        flow_nav_init(v, &pg, 0);
        pg.head = flow_pager_str(&pg, head, "", "");
        flow_pager_item(
            &pg,
            flow_pager_str(&pg, "1. ",
                           flow_message(v->set, lang, "part_continue"), ""));
        flow_pager_item(
            &pg, flow_pager_str(&pg, "2. ",
                                flow_message(v->set, lang, "part_later"), ""));
        return flow_pager_render(v->set, v->ch, &pg, 0, out, fits, v->starts);
    }
    if (st->flags & FLOW_SF_RESUME) {
        flow_nav_init(v, &pg, 0);
        pg.head = flow_pager_str(
            &pg, flow_message(v->set, lang, "resume_prompt"), "", "");
        flow_pager_item(
            &pg,
            flow_pager_str(&pg, "1. ",
                           flow_message(v->set, lang, "resume_continue"), ""));
        flow_pager_item(
            &pg,
            flow_pager_str(&pg, "2. ",
                           flow_message(v->set, lang, "resume_restart"), ""));
        return flow_pager_render(v->set, v->ch, &pg, 0, out, fits, v->starts);
    }

    flow_nav_init(v, &pg, back);
    const char *q = flow_text_get(&v->nd->text, v->li);
    switch (v->nd->kind) {
    case FLOW_K_MENU:
        if (st->flags & FLOW_SF_SEARCH) {
            /* first letters, or the back key for the list */
            pg.head = flow_head(v, &pg, flow_text_get(&v->nd->search, v->li));
            pg.back = flow_pager_str(&pg, v->set->s.key_back, ". ",
                                     flow_message(v->set, lang, "search_list"));
            pg.back_first = 1;
            break;
        }
        if (st->flags & FLOW_SF_FOUND) {
            pg.head = flow_head(v, &pg, q);
            n = flow_search(v->set, v->nd, st->query, v->li, ch);
            flow_numbered(&pg, ch, n);
            pg.back_first = 1;
            break;
        }
        /* fall through */
    case FLOW_K_MULTI:
        pg.head = flow_head(v, &pg, q);
        n = flow_choices(v->nd, st, v->li, ch);
        flow_numbered(&pg, ch, n);
        break;
    case FLOW_K_INPUT:
        pg.head = flow_head(v, &pg, q);
        break;
    case FLOW_K_CONFIRM: {
        struct flow_rb rb = {.v = v, .pg = &pg, .lines = 0};
        if (st->flags & FLOW_SF_EDITPICK) {
            pg.back_first = 1;
            flow_walk(v->set, v->f, st, flow_rb_visit, &rb);
            pg.head =
                flow_head(v, &pg, flow_message(v->set, lang, "edit_which"));
            for (size_t i = 0; i < rb.n; i++)
                ch[i].label = flow_text_get(&rb.nodes[i]->label, v->li);
            flow_numbered(&pg, ch, rb.n);
            break;
        }
        pg.head = flow_head(v, &pg, q);
        pg.foot_last = flow_pager_str(
            &pg, "1. ", flow_message(v->set, lang, "confirm_ok"), "\n");
        pg.foot_last =
            flow_pager_str(&pg, pg.foot_last, "2. ",
                           flow_message(v->set, lang, "confirm_edit"));
        rb.lines = 1;
        flow_walk(v->set, v->f, st, flow_rb_visit, &rb);
        break;
    }
    case FLOW_K_END: {
        char text[FLOW_TEXT_MAX], tmpl[FLOW_TEXT_MAX];
        /* the author's digits, not the reference's */
        flow_digits_apply(pg.digits, q, strlen(q), tmpl, sizeof(tmpl));
        flow_expand(v->f, st, v->li, tmpl, NULL, text, sizeof(text));
        pg.back_first = 0;
        pg.digits = NULL;
        pg.head = flow_pager_str(&pg, text, "", "");
        break;
    }
    default:
        FLOW_WRONG("node kind");
    }
    return flow_pager_render(v->set, v->ch, &pg, page, out, fits, v->starts);
}

static int
flow_view_init(const struct flow_set *set, const struct flow_state *st,
               struct flow_view *v)
{
    v->set = set;
    v->st = st;
    v->f = flow_def_find(set, st->flow);
    v->nd = flow_node_find(v->f, st->node);
    v->li = flow_lang_index(set, st->lang);
    v->ch = st->channel == FLOW_CH_SMS ? FLOW_CH_SMS : FLOW_CH_USSD;
    v->starts = NULL;
    return v->nd != NULL ? 0 : FLOW_ENOFLOW;
}

void
flow_render_message(const struct flow_set *set, const char *lang,
                    enum flow_channel channel, const char *id,
                    struct flow_out *out)
{
    flow_render_message_vars(set, lang, channel, id, NULL, out);
}

void
flow_render_message_vars(const struct flow_set *set, const char *lang,
                         enum flow_channel channel, const char *id,
                         const char *const *vars, struct flow_out *out)
{
    struct flow_screen sc;
    char text[FLOW_TEXT_MAX], tmpl[FLOW_TEXT_MAX];
    const char *m = flow_message(set, lang, id);
    flow_digits_apply(flow_digits_of(set, lang), m, strlen(m), tmpl,
                      sizeof(tmpl));
    flow_expand(NULL, NULL, 0, tmpl, vars, text, sizeof(text));
    flow_screen_reset(&sc);
    flow_screen_line(&sc, text);
    memset(out, 0, sizeof(*out));
    flow_out_set(set, channel, &sc, out);
    out->done = 1;
}

int
flow_render(const struct flow_set *set, const struct flow_state *st,
            struct flow_out *out)
{
    struct flow_view v;
    memset(out, 0, sizeof(*out));
    if (flow_view_init(set, st, &v) != 0) {
        flow_render_message(set, st->lang, v.ch, "state_lost", out);
        return FLOW_ENOFLOW;
    }
    flow_render_node(&v, st->page, out, NULL);
    out->done = (st->flags & FLOW_SF_DONE) != 0;
    if (out->done && v.nd->kind == FLOW_K_END) out->action = v.nd->action;
    return 0;
}

int
flow_render_check(const struct flow_set *set, const struct flow_state *st,
                  struct flow_out *out)
{
    struct flow_view v;
    int fits;
    memset(out, 0, sizeof(*out));
    if (flow_view_init(set, st, &v) != 0) return 0;
    unsigned np = flow_render_node(&v, 0, out, &fits);
    int ok = fits && out->used <= out->limit;
    for (unsigned p = 1; p < np && ok; p++) {
        flow_render_node(&v, p, out, NULL);
        ok = out->used <= out->limit;
    }
    return ok ? 0 : -1;
}

unsigned
flow_render_pages(const struct flow_set *set, const struct flow_state *st,
                  size_t item, unsigned *page_of)
{
    struct flow_view v;
    size_t starts[FLOW_LINES_MAX + 1];
    if (page_of != NULL) *page_of = 0;
    if (flow_view_init(set, st, &v) != 0) return 0;
    v.starts = starts;
    unsigned np = flow_render_node(&v, 0, NULL, NULL);
    for (unsigned p = 0; page_of != NULL && p < np; p++)
        if (item >= starts[p] && item < starts[p + 1]) *page_of = p;
    return np;
}

int
flow_render_end(const struct flow_set *set, const struct flow_state *st,
                const char *const *vars, struct flow_out *out)
{
    struct flow_view v;
    memset(out, 0, sizeof(*out));
    if (flow_view_init(set, st, &v) != 0 || v.nd->kind != FLOW_K_END)
        return flow_render(set, st, out);
    const char *tmpl = flow_text_get(&v.nd->text, v.li);
    for (size_t i = 0; vars && vars[i]; i++) {
        if (strncmp(vars[i], "outcome=", 8) != 0) continue;
        const char *oc = vars[i] + 8;
        const struct flow_msg *m = flow_msg_find(set, oc);
        if (m != NULL) tmpl = flow_text_get(&m->text, v.li);
        for (size_t k = 0; k < v.nd->nouts; k++)
            if (strcmp(v.nd->outs[k].id, oc) == 0)
                tmpl = flow_text_get(&v.nd->outs[k].text, v.li);
    }
    char text[FLOW_TEXT_MAX], own[FLOW_TEXT_MAX];
    flow_digits_apply(flow_digits_of(set, st->lang), tmpl, strlen(tmpl), own,
                      sizeof(own));
    flow_expand(v.f, st, v.li, own, vars, text, sizeof(text));
    struct flow_screen sc;
    flow_screen_reset(&sc);
    flow_screen_line(&sc, text);
    flow_out_set(set, v.ch, &sc, out);
    out->done = 1;
    out->action = v.nd->action;
    return 0;
}

/* ------------------------------------------------------------------------
 * Moving through the flow
 */

static void
flow_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A node is about to be shown from its start: a search menu asks for
 * first letters, unless the caller comes from its list_via node (the
 * list it leads to is what they asked for). */
static void
flow_node_shown(struct flow_state *st, const struct flow_node *nd)
{
    st->flags &= ~(FLOW_SF_SEARCH | FLOW_SF_FOUND);
    st->query[0] = '\0';
    if (nd->has_search && !(nd->list_via && st->nhist > 0 &&
                            strcmp(st->hist[st->nhist - 1], nd->list_via) == 0))
        st->flags |= FLOW_SF_SEARCH;
}

/* Finish: the screen of node nd (or a message) ends the dialogue. */
static void
flow_end_with(const struct flow_set *set, struct flow_state *st,
              const char *msg, struct flow_out *out)
{
    st->flags |= FLOW_SF_DONE;
    st->flags &= ~(FLOW_SF_EDIT | FLOW_SF_EDITPICK | FLOW_SF_RESUME |
                   FLOW_SF_SEARCH | FLOW_SF_FOUND | FLOW_SF_NEXTPART);
    flow_render_message(set, st->lang, st->channel, msg, out);
}

static int flow_enter(const struct flow_set *set, struct flow_state *st,
                      const struct flow_def *f, const char *node_id,
                      struct flow_out *out);

/* Begin flow f (keeping the language and the home flow). */
static int
flow_begin(const struct flow_set *set, struct flow_state *st,
           const struct flow_def *f, const struct flow_ctx *ctx,
           struct flow_out *out)
{
    snprintf(st->flow, sizeof(st->flow), "%s", f->id);
    flow_hex(ctx->nonce, 16, st->key);
    st->started = ctx->now;
    st->nhist = 0;
    st->nanswers = 0;
    st->flags &= FLOW_SF_LANG;
    memset(st->answers, 0, sizeof(st->answers));
    if (flow_lang_index(set, st->lang) < 0 ||
        !(f->langs & (1u << flow_lang_index(set, st->lang)))) {
        /* the flow's first language */
        for (size_t i = 0; i < set->nlangs; i++)
            if (f->langs & (1u << i)) {
                snprintf(st->lang, sizeof(st->lang), "%s", set->langs[i]);
                break;
            }
    }
    return flow_enter(set, st, f, f->start, out);
}

/* Show node_id of f, skipping nodes whose answer is already known. */
static int
flow_enter(const struct flow_set *set, struct flow_state *st,
           const struct flow_def *f, const char *node_id, struct flow_out *out)
{
    const struct flow_node *nd = flow_node_find(f, node_id);
    for (size_t guard = 0; nd != NULL && guard <= f->n; guard++) {
        const char *v = nd->field ? flow_state_get(st, nd->field) : NULL;
        if (!nd->skip_if_set || v == NULL) break;
        const char *to;
        const char *next = flow_next_of(nd, st, v, &to);
        if (to != NULL)
            return FLOW_ENOFLOW; /* the linter refuses skip-to-flow */
        nd = flow_node_find(f, next);
    }
    if (nd == NULL) {
        flow_end_with(set, st, "state_lost", out);
        return FLOW_ENOFLOW;
    }
    snprintf(st->node, sizeof(st->node), "%s", nd->id);
    st->page = 0;
    st->tries = 0;
    st->why[0] = '\0';
    flow_node_shown(st, nd);
    if (nd->kind == FLOW_K_END) st->flags |= FLOW_SF_DONE;
    return flow_render(set, st, out);
}

int
flow_start(const struct flow_set *set, struct flow_state *st,
           const char *flow_id, const char *lang, enum flow_channel channel,
           const struct flow_ctx *ctx, struct flow_out *out)
{
    const struct flow_def *f = flow_def_find(set, flow_id);
    memset(st, 0, sizeof(*st));
    memset(out, 0, sizeof(*out));
    st->channel = channel;
    if (lang != NULL && flow_lang_index(set, lang) >= 0) {
        flow_copy(st->lang, sizeof(st->lang), lang);
        st->flags |= FLOW_SF_LANG;
    }
    if (f == NULL) {
        flow_end_with(set, st, "state_lost", out);
        return FLOW_ENOFLOW;
    }
    snprintf(st->home, sizeof(st->home), "%s", f->id);
    st->updated = ctx->now;
    st->step = 1;
    return flow_begin(set, st, f, ctx, out);
}

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

int
flow_dial(const struct flow_set *set, struct flow_state *st,
          const char *flow_id, enum flow_channel channel,
          const struct flow_ctx *ctx, struct flow_out *out)
{
    const struct flow_def *f = flow_def_find(set, st->flow);
    if (f != NULL && flow_node_find(f, st->node) != NULL &&
        !(st->flags & FLOW_SF_DONE) && st->nanswers > 0 &&
        st->channel == (unsigned)channel) {
        if (ctx->resume_window > 0 && ctx->now >= st->updated &&
            ctx->now - st->updated <= (int64_t)ctx->resume_window) {
            /* cut off a moment ago: the question that was not answered,
             * with nothing answered asked again (a redial: read-backs
             * mask, as after the resume question) */
            st->flags &= ~(FLOW_SF_RESUME | FLOW_SF_NEXTPART);
            st->flags |= FLOW_SF_RESUMED;
            st->page = 0;
            st->why[0] = '\0';
        } else {
            st->flags |= FLOW_SF_RESUME;
        }
        st->step++;
        st->updated = ctx->now;
        return flow_render(set, st, out);
    }
    char lang[FLOW_LANG_MAX] = "";
    unsigned parts = st->parts, k, total;
    if (st->flags & FLOW_SF_LANG) flow_copy(lang, sizeof(lang), st->lang);
    const char *next = flow_id ? NULL : flow_part_next(set, st, &k, &total);
    if (flow_id == NULL)
        flow_id = channel == FLOW_CH_SMS ? set->s.entry_sms : set->s.entry_ussd;
    int rc = flow_start(set, st, flow_id, lang, channel, ctx, out);
    st->parts = parts;
    const struct flow_def *g = next ? flow_def_find(set, next) : NULL;
    if (rc != 0 || g == NULL || st->flags & FLOW_SF_DONE) return rc;
    /* "part 2 of 3: your time abroad" -- 1 goes on, 2 the main menu */
    snprintf(st->flow, sizeof(st->flow), "%s", g->id);
    snprintf(st->node, sizeof(st->node), "%s", g->start);
    st->flags = (st->flags & FLOW_SF_LANG) | FLOW_SF_NEXTPART;
    st->nhist = 0;
    st->nanswers = 0;
    st->page = 0;
    return flow_render(set, st, out);
}

/* A wrong answer: re-ask with a reason, or end after max_tries. */
static int
flow_wrong(const struct flow_set *set, struct flow_state *st, const char *why,
           struct flow_out *out)
{
    st->tries++;
    if (st->tries >= set->s.max_tries) {
        flow_end_with(set, st, "too_many_tries", out);
        return 0;
    }
    snprintf(st->why, sizeof(st->why), "%s", why);
    st->page = 0;
    return flow_render(set, st, out);
}

/* Parse a whole number 1..n; 0 if the input is not one. */
static size_t
flow_pick(const char *in, size_t n)
{
    size_t v = 0;
    if (in[0] == '\0' || in[0] == '0') return 0;
    for (const char *p = in; *p; p++) {
        if (*p < '0' || *p > '9' || v > 1000) return 0;
        v = v * 10 + (size_t)(*p - '0');
    }
    return v <= n ? v : 0;
}

/* "2 5,7" -> codes "a,b,c"; NULL on success, else the reason. */
static const char *
flow_pick_many(const struct flow_node *nd, const struct flow_choice *ch,
               size_t n, const char *in, char *out, size_t cap)
{
    size_t picked[FLOW_CHOICES_MAX], np = 0;
    char tok[16];
    const char *p = in;
    while (*p) {
        while (*p && strchr(" ,.+*-;/", *p))
            p++;
        size_t len = 0;
        while (*p && !strchr(" ,.+*-;/", *p)) {
            if (len + 1 < sizeof(tok)) tok[len] = *p;
            len++;
            p++;
        }
        if (len == 0) break;
        if (len >= sizeof(tok)) return "invalid_choice";
        tok[len] = '\0';
        size_t k = flow_pick(tok, n);
        if (k == 0) return "invalid_choice";
        int dup = 0;
        for (size_t i = 0; i < np; i++)
            dup |= picked[i] == k;
        if (!dup) {
            if (np == FLOW_CHOICES_MAX) return "too_many_choices";
            picked[np++] = k;
        }
    }
    if (np < (size_t)nd->min)
        return np == 0 ? "invalid_choice" : "too_few_choices";
    if (np > (size_t)nd->max) return "too_many_choices";
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < np; i++) {
        int w = snprintf(out + len, cap - len, "%s%s", i ? "," : "",
                         ch[picked[i] - 1].value);
        if (w < 0 || (size_t)w >= cap - len) return "too_many_choices";
        len += (size_t)w;
    }
    return NULL;
}

static void
flow_hist_push(struct flow_state *st, const char *node)
{
    if (st->nhist == FLOW_HIST_MAX) {
        memmove(st->hist[0], st->hist[1],
                sizeof(st->hist[0]) * (FLOW_HIST_MAX - 1));
        st->nhist--;
    }
    snprintf(st->hist[st->nhist++], FLOW_ID_MAX, "%s", node);
}

/* After an answer to nd: go where the flow says, or back towards the
 * read-back while editing. */
static int
flow_advance(const struct flow_set *set, struct flow_state *st,
             const struct flow_def *f, const struct flow_node *nd,
             const char *value, const struct flow_ctx *ctx,
             struct flow_out *out)
{
    const char *to;
    const char *next = flow_next_of(nd, st, value, &to);
    flow_hist_push(st, nd->id);
    if (to != NULL) {
        const struct flow_def *g = flow_def_find(set, to);
        if (g == NULL) {
            flow_end_with(set, st, "state_lost", out);
            return FLOW_ENOFLOW;
        }
        return flow_begin(set, st, g, ctx, out);
    }
    if (st->flags & FLOW_SF_EDIT) {
        const struct flow_node *w = flow_walk(set, f, st, NULL, NULL);
        if (w == NULL || w->kind == FLOW_K_CONFIRM || w->kind == FLOW_K_END)
            st->flags &= ~FLOW_SF_EDIT;
        if (w != NULL) next = w->id;
    }
    return flow_enter(set, st, f, next, out);
}

/* Store a menu's answer, and the item's parent where the node says so (a
 * district found by search gives its division). */
static void
flow_menu_put(const struct flow_set *set, struct flow_state *st,
              const struct flow_node *nd, const char *value)
{
    flow_state_put(set, st, nd->field, value);
    if (nd->parent_field == NULL || nd->list == NULL) return;
    for (size_t i = 0; i < nd->list->n; i++)
        if (strcmp(nd->list->items[i].code, value) == 0 &&
            nd->list->items[i].parent[0] != '\0')
            flow_state_put(set, st, nd->parent_field,
                           nd->list->items[i].parent);
}

static int
flow_all_digits(const char *s)
{
    if (*s == '\0') return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* Letters typed at a search menu: one page of matches, or the prompt
 * again with why.  A search that finds nothing, or too much, is not a
 * wrong answer: it does not count towards max_tries. */
static int
flow_search_run(const struct flow_set *set, struct flow_state *st,
                const struct flow_view *v, const char *in,
                const struct flow_ctx *ctx, struct flow_out *out)
{
    struct flow_choice ch[FLOW_CHOICES_MAX];
    const char *why = NULL;
    st->page = 0;
    if (flow_all_digits(in))
        why = "search_letters";
    else if (strlen(in) >= FLOW_QUERY_MAX ||
             flow_search(set, v->nd, in, v->li, ch) == 0)
        why = "search_none";
    if (why == NULL && flow_search(set, v->nd, in, v->li, ch) == 1 &&
        !(st->flags & FLOW_SF_EDIT)) {
        /* one match: taken, and said on the next screen; the read-back
         * can still change it */
        st->flags &= ~(FLOW_SF_SEARCH | FLOW_SF_FOUND);
        st->query[0] = '\0';
        flow_menu_put(set, st, v->nd, ch[0].value);
        int rc = flow_advance(set, st, v->f, v->nd, ch[0].value, ctx, out);
        if (rc == 0 && !(st->flags & FLOW_SF_DONE)) {
            st->flags |= FLOW_SF_TOOK;
            flow_render(set, st, out);
        }
        return rc;
    }
    if (why == NULL) {
        flow_copy(st->query, sizeof(st->query), in);
        st->flags &= ~FLOW_SF_SEARCH;
        st->flags |= FLOW_SF_FOUND;
        st->why[0] = '\0';
        if (flow_render_pages(set, st, 0, NULL) == 1)
            return flow_render(set, st, out);
        why = "search_more";
    }
    st->query[0] = '\0';
    st->flags &= ~FLOW_SF_FOUND;
    st->flags |= FLOW_SF_SEARCH;
    flow_copy(st->why, sizeof(st->why), why);
    return flow_render(set, st, out);
}

/* One input at a search menu (FLOW_SF_SEARCH or FLOW_SF_FOUND).  Returns
 * 1 when the input is not the search's to handle (the home key), else
 * sets *rc. */
static int
flow_search_step(const struct flow_set *set, struct flow_state *st,
                 const struct flow_view *v, const char *in,
                 const struct flow_ctx *ctx, struct flow_out *out, int *rc)
{
    const struct flow_settings *s = &set->s;
    struct flow_choice ch[FLOW_CHOICES_MAX];
    if (strcmp(in, s->key_home) == 0) return 1;
    if (strcmp(in, s->key_back) == 0) {
        st->why[0] = '\0';
        st->page = 0;
        if (st->flags & FLOW_SF_FOUND) {
            /* from the matches back to the letters */
            st->flags = (st->flags & ~FLOW_SF_FOUND) | FLOW_SF_SEARCH;
            st->query[0] = '\0';
        } else if (v->nd->list_via != NULL) {
            flow_hist_push(st, v->nd->id);
            *rc = flow_enter(set, st, v->f, v->nd->list_via, out);
            return 0;
        } else {
            st->flags &= ~FLOW_SF_SEARCH; /* the whole list */
        }
        *rc = flow_render(set, st, out);
        return 0;
    }
    if (strcmp(in, s->key_more) == 0) {
        unsigned np = flow_render_pages(set, st, 0, NULL);
        if (st->page + 1 < np) st->page++;
        *rc = flow_render(set, st, out);
        return 0;
    }
    if ((st->flags & FLOW_SF_FOUND) && flow_all_digits(in)) {
        size_t n = flow_search(set, v->nd, st->query, v->li, ch);
        size_t k = flow_pick(in, n);
        if (k == 0) {
            *rc = flow_wrong(set, st, "invalid_choice", out);
            return 0;
        }
        st->flags &= ~FLOW_SF_FOUND;
        st->query[0] = '\0';
        flow_menu_put(set, st, v->nd, ch[k - 1].value);
        *rc = flow_advance(set, st, v->f, v->nd, ch[k - 1].value, ctx, out);
        return 0;
    }
    *rc = flow_search_run(set, st, v, in, ctx, out);
    return 0;
}

int
flow_step(const struct flow_set *set, struct flow_state *st, const char *input,
          size_t len, const struct flow_ctx *ctx, struct flow_out *out)
{
    char in[FLOW_INPUT_MAX + 1];
    struct flow_view v;
    struct flow_choice ch[FLOW_CHOICES_MAX];
    const struct flow_settings *s = &set->s;

    memset(out, 0, sizeof(*out));
    st->step++;
    st->updated = ctx->now;
    st->flags &= ~FLOW_SF_TOOK;
    if (st->flags & FLOW_SF_DONE) {
        flow_render_message(set, st->lang, st->channel, "ended", out);
        return FLOW_EDONE;
    }
    if (flow_view_init(set, st, &v) != 0) {
        flow_end_with(set, st, "state_lost", out);
        return FLOW_ENOFLOW;
    }
    if (len > FLOW_INPUT_MAX) return flow_wrong(set, st, "too_long", out);
    if (flow_text_normalise(input, len, 1, in, sizeof(in)) < 0)
        return flow_wrong(set, st, "invalid_input", out);

    if (st->flags & FLOW_SF_NEXTPART) {
        const struct flow_def *h = flow_def_find(set, st->home);
        if (strcmp(in, "1") == 0) return flow_begin(set, st, v.f, ctx, out);
        if (strcmp(in, "2") == 0 || strcmp(in, s->key_home) == 0)
            return flow_begin(set, st, h ? h : v.f, ctx, out);
        return flow_render(set, st, out);
    }
    if (st->flags & FLOW_SF_RESUME) {
        if (strcmp(in, "1") == 0) {
            st->flags &= ~FLOW_SF_RESUME;
            st->flags |= FLOW_SF_RESUMED;
            st->page = 0;
            st->why[0] = '\0';
            return flow_render(set, st, out);
        }
        if (strcmp(in, "2") == 0) {
            const struct flow_def *h = flow_def_find(set, st->home);
            return flow_begin(set, st, h ? h : v.f, ctx, out);
        }
        return flow_render(set, st, out);
    }

    if (v.nd->kind == FLOW_K_MENU &&
        (st->flags & (FLOW_SF_SEARCH | FLOW_SF_FOUND))) {
        int rc;
        if (flow_search_step(set, st, &v, in, ctx, out, &rc) == 0) return rc;
    }

    /* Navigation. */
    unsigned np = flow_render_node(&v, st->page, NULL, NULL);
    if (strcmp(in, s->key_home) == 0) {
        const struct flow_def *h = flow_def_find(set, st->home);
        return flow_begin(set, st, h ? h : v.f, ctx, out);
    }
    if (strcmp(in, s->key_back) == 0) {
        st->why[0] = '\0';
        if (st->page == 0 && v.nd->has_search && v.nd->list_via == NULL &&
            !(st->flags & FLOW_SF_EDITPICK)) {
            /* the list of a search menu: back to its letters */
            st->flags |= FLOW_SF_SEARCH;
        } else if (st->page == 0 && st->nhist == 0 &&
                   !(st->flags & FLOW_SF_EDITPICK)) {
            /* nowhere to go back to: the same screen */
        } else if (st->page > 0) {
            st->page--;
        } else if (st->flags & FLOW_SF_EDITPICK) {
            st->flags &= ~FLOW_SF_EDITPICK;
        } else {
            const char *prev = st->hist[--st->nhist];
            const struct flow_node *p = flow_node_find(v.f, prev);
            if (p == NULL) return flow_render(set, st, out);
            snprintf(st->node, sizeof(st->node), "%s", p->id);
            st->tries = 0;
            st->flags &= ~FLOW_SF_DONE;
            flow_node_shown(st, p);
        }
        return flow_render(set, st, out);
    }
    if (strcmp(in, s->key_more) == 0 && st->page + 1 < np) {
        st->page++;
        st->why[0] = '\0';
        return flow_render(set, st, out);
    }

    char value[FLOW_VALUE_MAX];
    const char *why = NULL;
    size_t n, k;
    switch (v.nd->kind) {
    case FLOW_K_MENU:
        n = flow_choices(v.nd, st, v.li, ch);
        k = flow_pick(in, n);
        if (k == 0) return flow_wrong(set, st, "invalid_choice", out);
        flow_menu_put(set, st, v.nd, ch[k - 1].value);
        return flow_advance(set, st, v.f, v.nd, ch[k - 1].value, ctx, out);
    case FLOW_K_MULTI:
        n = flow_choices(v.nd, st, v.li, ch);
        why = flow_pick_many(v.nd, ch, n, in, value, sizeof(value));
        if (why != NULL) return flow_wrong(set, st, why, out);
        flow_state_put(set, st, v.nd->field, value);
        return flow_advance(set, st, v.f, v.nd, value, ctx, out);
    case FLOW_K_INPUT: {
        int year = 1970;
        int64_t days = (ctx->now + s->utc_offset) / 86400;
        /* civil-from-days, for the year only */
        int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        year = (int)(yoe + era * 400 + (mp >= 10));
        why = flow_validate(v.nd->validator, &v.nd->vp, in, year, value,
                            sizeof(value));
        if (why != NULL) return flow_wrong(set, st, why, out);
        flow_state_put(set, st, v.nd->field, value);
        return flow_advance(set, st, v.f, v.nd, value, ctx, out);
    }
    case FLOW_K_CONFIRM:
        if (st->flags & FLOW_SF_EDITPICK) {
            struct flow_pager pg;
            struct flow_rb rb = {.v = &v, .pg = &pg, .lines = 0};
            flow_walk(set, v.f, st, flow_rb_visit, &rb);
            k = flow_pick(in, rb.n);
            if (k == 0) return flow_wrong(set, st, "invalid_choice", out);
            st->flags &= ~FLOW_SF_EDITPICK;
            st->flags |= FLOW_SF_EDIT;
            flow_hist_push(st, v.nd->id);
            snprintf(st->node, sizeof(st->node), "%s", rb.nodes[k - 1]->id);
            flow_node_shown(st, rb.nodes[k - 1]);
            st->page = 0;
            st->tries = 0;
            st->why[0] = '\0';
            return flow_render(set, st, out);
        }
        if (st->page + 1 < np)
            /* the read-back must be seen to its end before it is accepted */
            return flow_wrong(set, st, "invalid_choice", out);
        if (strcmp(in, "1") == 0) {
            flow_hist_push(st, v.nd->id);
            return flow_enter(set, st, v.f, v.nd->next, out);
        }
        if (strcmp(in, "2") == 0) {
            st->flags |= FLOW_SF_EDITPICK;
            st->page = 0;
            st->tries = 0;
            st->why[0] = '\0';
            return flow_render(set, st, out);
        }
        return flow_wrong(set, st, "invalid_choice", out);
    case FLOW_K_END:
        flow_render_message(set, st->lang, st->channel, "ended", out);
        return FLOW_EDONE;
    default:
        FLOW_WRONG("node kind");
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The record
 */

struct flow_json {
    char *buf;
    size_t cap, len;
    int overflow;
};

static void
flow_json_raw(struct flow_json *j, const char *s, size_t n)
{
    if (j->len + n + 1 > j->cap) {
        j->overflow = 1;
        return;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void
flow_json_str(struct flow_json *j, const char *s, size_t n)
{
    flow_json_raw(j, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            flow_json_raw(j, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            flow_json_raw(j, esc, 6);
        } else {
            flow_json_raw(j, (const char *)&s[i], 1);
        }
    }
    flow_json_raw(j, "\"", 1);
}

static void
flow_json_kv(struct flow_json *j, const char *k, const char *v)
{
    flow_json_raw(j, ",", 1);
    flow_json_str(j, k, strlen(k));
    flow_json_raw(j, ":", 1);
    if (v == NULL)
        flow_json_raw(j, "null", 4);
    else
        flow_json_str(j, v, strlen(v));
}

struct flow_rec {
    struct flow_json *j;
    const struct flow_state *st;
    int first;
};

static void
flow_rec_visit(const struct flow_node *nd, const char *value, void *arg)
{
    struct flow_rec *r = arg;
    struct flow_json *j = r->j;
    const char *name = flow_node_rec_name(nd);
    if (strcmp(nd->field, "lang") == 0) return;
    if (nd->parent_field != NULL && flow_state_get(r->st, nd->parent_field)) {
        /* the parent an item found by search brought (its division) */
        const char *pv = flow_state_get(r->st, nd->parent_field);
        if (!r->first) flow_json_raw(j, ",", 1);
        r->first = 0;
        flow_json_str(j, nd->parent_field, strlen(nd->parent_field));
        flow_json_raw(j, ":", 1);
        flow_json_str(j, pv, strlen(pv));
    }
    if (!r->first) flow_json_raw(j, ",", 1);
    r->first = 0;
    flow_json_str(j, name, strlen(name));
    flow_json_raw(j, ":", 1);
    if (nd->kind == FLOW_K_MULTI) {
        flow_json_raw(j, "[", 1);
        const char *p = value;
        for (int i = 0; p != NULL && *p; i++) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (i) flow_json_raw(j, ",", 1);
            flow_json_str(j, p, len);
            p = e ? e + 1 : NULL;
        }
        flow_json_raw(j, "]", 1);
    } else if (nd->kind == FLOW_K_INPUT && (!strcmp(nd->validator, "year") ||
                                            !strcmp(nd->validator, "age") ||
                                            !strcmp(nd->validator, "number"))) {
        flow_json_raw(j, value, strlen(value)); /* validated digits */
    } else {
        flow_json_str(j, value, strlen(value));
    }
}

int
flow_record_json(const struct flow_set *set, const struct flow_state *st,
                 const char *msisdn, char *buf, size_t cap)
{
    struct flow_json j = {.buf = buf, .cap = cap};
    const struct flow_def *f = flow_def_find(set, st->flow);
    const struct flow_node *nd = f ? flow_node_find(f, st->node) : NULL;
    char ref[FLOW_REF_MAX], num[32];
    if (cap == 0) return -1;
    buf[0] = '\0';
    flow_ref_from_key(st->key, ref);
    flow_json_raw(&j, "{\"flow\":", 8);
    flow_json_str(&j, st->flow, strlen(st->flow));
    flow_json_kv(&j, "action",
                 nd && nd->kind == FLOW_K_END ? nd->action : NULL);
    flow_json_kv(&j, "key", st->key);
    flow_json_kv(&j, "ref", ref);
    flow_json_kv(&j, "lang", st->lang);
    flow_json_kv(&j, "channel", flow_channel_name(st->channel));
    flow_json_kv(&j, "msisdn", msisdn);
    snprintf(num, sizeof(num), ",\"started\":%lld", (long long)st->started);
    flow_json_raw(&j, num, strlen(num));
    flow_json_raw(&j, ",\"answers\":{", 12);
    if (f != NULL) {
        struct flow_rec r = {.j = &j, .st = st, .first = 1};
        flow_walk(set, f, st, flow_rec_visit, &r);
    }
    flow_json_raw(&j, "}}", 2);
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
