/*
 * flow_render.c -- the screen of a node: its head, its numbered choices,
 * the read-back of a confirm node, an end node's text with its
 * placeholders, and the messages said outside a node.
 *
 * Each screen is built into a pager (flow_pager.c) and cut into pages
 * there; flow_render_node() is the one place a node's lines are chosen, so
 * the step (flow_step.c) counts the pages it navigates by the same lines
 * the caller sees.  Pure: no clock, no I/O, no allocation.
 */
#include <stdio.h>
#include <string.h>

#include "flows/flow_int.h"
#include "flows/flow_model.h"

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

void
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

unsigned
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

int
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
