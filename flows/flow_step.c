/*
 * flow_step.c -- an input moves the state: start, dial (resume, the next
 * part), navigation, a menu's or multi's pick, an input's validation, a
 * search's letters, the confirm node's accept and edit.
 *
 * Every path ends in one render of the state it leaves (flow_render.c), so
 * the screen a caller sees is always the one the state says.  Pure: the
 * time and the nonce come in a flow_ctx.
 */
#include <stdio.h>
#include <string.h>

#include "flows/flow_int.h"
#include "flows/flow_model.h"

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
