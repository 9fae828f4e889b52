/*
 * flow_lint.c -- everything about a flow set that can be wrong although
 * every file parsed: references to nodes, flows, lists and fields that do
 * not exist, nodes nobody can reach, dead ends, missing translations, and
 * screens that could be too long for a page.
 *
 * Screens are checked by rendering them with the engine's own renderer, in
 * every language of the flow and on every channel it runs on, in their worst
 * case: a wrong-answer reason above the question, the back line shown, every
 * filtered list (each division's districts), and end texts with each
 * placeholder at its widest value (a 60-letter Bangla name, a 10-character
 * reference, a 30-letter reason, a 16-digit office phone number).  What the
 * linter passes, the engine can always show.
 */
#include <string.h>
#include <strings.h>

#include "flows/flow_model.h"

/* Messages the engine and the gateway show. */
static const char *const flow_required_msgs[] = {"back",
                                                 "more",
                                                 "confirm_ok",
                                                 "confirm_edit",
                                                 "edit_which",
                                                 "invalid_choice",
                                                 "invalid_name",
                                                 "invalid_year",
                                                 "invalid_age",
                                                 "invalid_number",
                                                 "invalid_nid",
                                                 "invalid_passport",
                                                 "invalid_id",
                                                 "invalid_phone",
                                                 "invalid_format",
                                                 "invalid_input",
                                                 "too_long",
                                                 "too_many_choices",
                                                 "too_few_choices",
                                                 "too_many_tries",
                                                 "resume_prompt",
                                                 "resume_continue",
                                                 "resume_restart",
                                                 "busy",
                                                 "state_lost",
                                                 "saved_queued",
                                                 "saving",
                                                 "try_later",
                                                 "not_registered",
                                                 "ended",
                                                 "search_list",
                                                 "search_none",
                                                 "search_more",
                                                 "search_letters",
                                                 "part_offer",
                                                 "part_continue",
                                                 "part_later",
                                                 "sms_remind",
                                                 NULL};

/* Messages shown as a whole screen on their own. */
static const char *const flow_screen_msgs[] = {"too_many_tries",
                                               "busy",
                                               "state_lost",
                                               "saved_queued",
                                               "saving",
                                               "try_later",
                                               "not_registered",
                                               "ended",
                                               "sms_registered",
                                               "sms_stopped",
                                               "sms_started",
                                               "sms_remind",
                                               NULL};

struct flow_linter {
    const struct flow_set *set;
    struct flow_diag *diag;
};

static void
flow_lint_text(struct flow_linter *l, const char *file, int line,
               unsigned langs, const struct flow_text *t, const char *what)
{
    for (size_t i = 0; i < l->set->nlangs; i++)
        if ((langs & (1u << i)) && t->s[i] == NULL)
            flow_diag_add(l->diag, file, line, "%s has no '%s' text", what,
                          l->set->langs[i]);
}

static int
flow_lint_field_known(const struct flow_def *f, const char *field)
{
    if (strcmp(field, "lang") == 0) return 1;
    for (size_t i = 0; i < f->n; i++)
        if (f->nodes[i].field && strcmp(f->nodes[i].field, field) == 0)
            return 1;
    return 0;
}

static int
flow_lint_in(const char *const *set, const char *s)
{
    for (; *set; set++)
        if (strcmp(*set, s) == 0) return 1;
    return 0;
}

/* ------------------------------------------------------------------------
 * Structure
 */

static void
flow_lint_ref(struct flow_linter *l, const struct flow_def *f, int line,
              const char *next, const char *what)
{
    if (next != NULL && flow_node_find(f, next) == NULL)
        flow_diag_add(l->diag, f->file, line,
                      "%s '%s' is not a node of "
                      "flow '%s'",
                      what, next, f->id);
}

static void
flow_lint_reach(const struct flow_def *f, const char *id, unsigned char *seen)
{
    const struct flow_node *nd = flow_node_find(f, id);
    if (nd == NULL) return;
    size_t i = (size_t)(nd - f->nodes);
    if (seen[i]) return;
    seen[i] = 1;
    flow_lint_reach(f, nd->next, seen);
    flow_lint_reach(f, nd->list_via, seen);
    for (size_t k = 0; k < nd->nopts; k++)
        flow_lint_reach(f, nd->opts[k].next, seen);
    for (size_t k = 0; k < nd->nbr; k++)
        flow_lint_reach(f, nd->br[k].next, seen);
}

/* Placeholders in an end text: known variables or fields. */
static void
flow_lint_placeholders(struct flow_linter *l, const struct flow_def *f,
                       int line, const struct flow_text *t)
{
    for (size_t i = 0; i < l->set->nlangs; i++) {
        const char *p = t->s[i];
        while (p != NULL && (p = strchr(p, '{')) != NULL) {
            const char *e = strchr(p, '}');
            if (e == NULL) break;
            char name[FLOW_ID_MAX];
            size_t n = (size_t)(e - p - 1);
            if (n > 0 && n < sizeof(name)) {
                memcpy(name, p + 1, n);
                name[n] = '\0';
                const struct flow_node *fn = NULL;
                for (size_t k = 0; k < f->n && fn == NULL; k++)
                    if (f->nodes[k].field &&
                        strcmp(f->nodes[k].field, name) == 0)
                        fn = &f->nodes[k];
                if (strcmp(name, "ref") && strcmp(name, "reason") &&
                    strcmp(name, "phone") && !flow_lint_field_known(f, name))
                    flow_diag_add(l->diag, f->file, line,
                                  "unknown placeholder {%s}", name);
                else if (fn != NULL && fn->personal)
                    flow_diag_add(l->diag, f->file, line,
                                  "placeholder {%s} would show a personal "
                                  "answer on a screen or in an SMS",
                                  name);
            }
            p = e + 1;
        }
    }
}

static void
flow_lint_node(struct flow_linter *l, const struct flow_def *f,
               const struct flow_node *nd)
{
    const struct flow_set *set = l->set;
    char what[96];

    snprintf(what, sizeof(what), "node '%s'", nd->id);
    flow_lint_text(l, f->file, nd->line, f->langs, &nd->text, what);
    if (nd->has_label) {
        snprintf(what, sizeof(what), "label of node '%s'", nd->id);
        flow_lint_text(l, f->file, nd->line, f->langs, &nd->label, what);
    }
    for (size_t i = 0; i < nd->nopts; i++) {
        const struct flow_option *o = &nd->opts[i];
        snprintf(what, sizeof(what), "option '%s' of node '%s'", o->value,
                 nd->id);
        flow_lint_text(l, f->file, o->line, f->langs, &o->label, what);
        flow_lint_ref(l, f, o->next_line, o->next, "next");
        if (o->flow && flow_def_find(set, o->flow) == NULL)
            flow_diag_add(l->diag, f->file, o->line, "unknown flow '%s'",
                          o->flow);
        if (o->flow && nd->skip_if_set)
            flow_diag_add(l->diag, f->file, o->line,
                          "an option of a "
                          "skip_if_set node cannot start a flow");
        if (o->flow && nd->kind == FLOW_K_MULTI)
            flow_diag_add(l->diag, f->file, o->line,
                          "an option of a multi "
                          "node cannot start a flow");
        for (size_t k = 0; k < i; k++)
            if (strcmp(nd->opts[k].value, o->value) == 0)
                flow_diag_add(l->diag, f->file, o->line,
                              "duplicate option value '%s'", o->value);
        if (nd->field && strcmp(nd->field, "lang") == 0 &&
            flow_lang_index(set, o->value) < 0)
            flow_diag_add(l->diag, f->file, o->line,
                          "option value '%s' is not a language", o->value);
    }
    if (nd->list != NULL) {
        for (size_t i = 0; i < nd->list->n; i++) {
            const struct flow_item *it = &nd->list->items[i];
            snprintf(what, sizeof(what),
                     "item '%s' of list '%s' (used by "
                     "node '%s' of %s)",
                     it->code, nd->list->id, nd->id, f->file);
            flow_lint_text(l, nd->list->file, it->line, f->langs, &it->label,
                           what);
        }
    }
    flow_lint_ref(l, f, nd->next_line, nd->next, "next");
    flow_lint_ref(l, f, nd->line, nd->list_via, "list_via");
    if (nd->has_search) {
        snprintf(what, sizeof(what), "search text of node '%s'", nd->id);
        flow_lint_text(l, f->file, nd->line, f->langs, &nd->search, what);
    }
    if (nd->parent_field && !flow_lint_field_known(f, nd->parent_field))
        flow_diag_add(l->diag, f->file, nd->line,
                      "parent_field '%s' is not a field of the flow",
                      nd->parent_field);
    for (size_t i = 0; i < nd->nbr; i++) {
        flow_lint_ref(l, f, nd->br[i].line, nd->br[i].next, "next");
        if (nd->br[i].field && !flow_lint_field_known(f, nd->br[i].field))
            flow_diag_add(l->diag, f->file, nd->br[i].line,
                          "branch on unknown field '%s'", nd->br[i].field);
    }
    if (nd->filter && !flow_lint_field_known(f, nd->filter))
        flow_diag_add(l->diag, f->file, nd->line,
                      "filter on unknown field "
                      "'%s'",
                      nd->filter);
    for (size_t i = 0; i < nd->nfields; i++)
        if (!flow_lint_field_known(f, nd->fields[i]))
            flow_diag_add(l->diag, f->file, nd->line,
                          "confirm lists unknown "
                          "field '%s'",
                          nd->fields[i]);

    /* Where can the caller go from here? */
    int out = nd->next != NULL;
    for (size_t i = 0; i < nd->nbr; i++)
        out |= nd->br[i].field == NULL;
    if (!out && nd->kind == FLOW_K_MENU && nd->nopts > 0) {
        out = 1;
        for (size_t i = 0; i < nd->nopts; i++)
            out &= nd->opts[i].next != NULL || nd->opts[i].flow != NULL;
    }
    if (nd->kind != FLOW_K_END && !out)
        flow_diag_add(l->diag, f->file, nd->line,
                      "node '%s' is a dead end: "
                      "give it a 'next'",
                      nd->id);
    if (nd->kind == FLOW_K_END) {
        if (nd->action && !flow_action_known(nd->action))
            flow_diag_add(l->diag, f->file, nd->line,
                          "unknown action '%s' "
                          "(submit_registration, submit_part, update_skills, "
                          "status_lookup)",
                          nd->action);
        flow_lint_placeholders(l, f, nd->line, &nd->text);
        for (size_t i = 0; i < nd->nouts; i++) {
            snprintf(what, sizeof(what), "outcome '%s' of node '%s'",
                     nd->outs[i].id, nd->id);
            flow_lint_text(l, f->file, nd->outs[i].line, f->langs,
                           &nd->outs[i].text, what);
            flow_lint_placeholders(l, f, nd->outs[i].line, &nd->outs[i].text);
        }
    }
    if (nd->kind == FLOW_K_MULTI) {
        struct flow_state st;
        struct flow_choice ch[FLOW_CHOICES_MAX];
        memset(&st, 0, sizeof(st));
        size_t n = nd->list && !nd->filter ? nd->list->n
                                           : flow_choices(nd, &st, 0, ch);
        if (!nd->filter && (size_t)nd->max > n)
            flow_diag_add(l->diag, f->file, nd->line,
                          "multi node '%s' "
                          "allows %ld picks of %zu choices",
                          nd->id, nd->max, n);
    }
    if (nd->kind == FLOW_K_INPUT && nd->validator &&
        flow_validator_known(nd->validator)) {
        const char *keys[] = {set->s.key_back, set->s.key_home, NULL};
        char out_v[FLOW_VALUE_MAX];
        for (int i = 0; keys[i]; i++)
            if (flow_validate(nd->validator, &nd->vp, keys[i], 2026, out_v,
                              sizeof(out_v)) == NULL)
                flow_diag_add(l->diag, f->file, nd->line,
                              "input '%s' accepts "
                              "the navigation key '%s' as an answer: raise "
                              "'min' or change the key",
                              nd->id, keys[i]);
    }
}

/* ------------------------------------------------------------------------
 * The record contract: personal marks and the action's fields
 */

enum flow_ftype
flow_node_ftype(const struct flow_node *nd)
{
    switch (nd->kind) {
    case FLOW_K_MENU:
        return FLOW_FT_CODE;
    case FLOW_K_MULTI:
        return FLOW_FT_CODES;
    case FLOW_K_INPUT:
        if (nd->validator == NULL) return FLOW_FT_TEXT;
        if (!strcmp(nd->validator, "year") || !strcmp(nd->validator, "age") ||
            !strcmp(nd->validator, "number"))
            return FLOW_FT_INT;
        if (!strcmp(nd->validator, "nid")) return FLOW_FT_NID;
        if (!strcmp(nd->validator, "passport")) return FLOW_FT_PASSPORT;
        if (!strcmp(nd->validator, "id")) return FLOW_FT_ID;
        return FLOW_FT_TEXT;
    case FLOW_K_CONFIRM:
    case FLOW_K_END:
    default:
        FLOW_WRONG("node kind without an answer");
    }
}

/* The fields action takes, for a message: "a, b, c". */
static void
flow_lint_afields(const char *action, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (const struct flow_afield *a = flow_afields; a->action != NULL; a++) {
        if (strcmp(a->action, action) != 0) continue;
        int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", a->field);
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
    if (n == 0) snprintf(buf, cap, "none");
}

/* Every personal answer is marked; a flow that ends in an action holds
 * only fields the action takes, of the type and personal mark it
 * declares, and every field it requires. */
static void
flow_lint_record(struct flow_linter *l, const struct flow_def *f)
{
    const char *actions[8];
    size_t nact = 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct flow_node *nd = &f->nodes[i];
        if (nd->kind == FLOW_K_INPUT && nd->validator && !nd->personal &&
            (!strcmp(nd->validator, "nid") ||
             !strcmp(nd->validator, "passport") ||
             !strcmp(nd->validator, "id") || !strcmp(nd->validator, "name")))
            flow_diag_add(l->diag, f->file, nd->line,
                          "input '%s' (validator '%s') holds personal data: "
                          "mark it personal = true",
                          nd->id, nd->validator);
        if (nd->field && strcmp(nd->field, "lang") == 0 &&
            (nd->personal || nd->store_as))
            flow_diag_add(l->diag, f->file, nd->line,
                          "the 'lang' field is no answer of an action: no "
                          "personal or store_as");
        if (nd->kind != FLOW_K_END || nd->action == NULL ||
            !flow_action_known(nd->action))
            continue;
        size_t k = 0;
        while (k < nact && strcmp(actions[k], nd->action) != 0)
            k++;
        if (k == nact && nact < sizeof(actions) / sizeof(actions[0]))
            actions[nact++] = nd->action;
    }
    if (nact == 0) {
        for (size_t i = 0; i < f->n; i++)
            if (f->nodes[i].store_as != NULL)
                flow_diag_add(l->diag, f->file, f->nodes[i].store_as_line,
                              "store_as in a flow that ends in no action");
        return;
    }
    for (size_t ai = 0; ai < nact; ai++) {
        const char *action = actions[ai];
        char known[512];
        flow_lint_afields(action, known, sizeof(known));
        for (size_t i = 0; i < f->n; i++) {
            const struct flow_node *nd = &f->nodes[i];
            if (nd->field == NULL || strcmp(nd->field, "lang") == 0) continue;
            const char *name = flow_node_rec_name(nd);
            int line = nd->store_as ? nd->store_as_line : nd->line;
            const struct flow_afield *a = flow_afield_find(action, name);
            if (a == NULL) {
                flow_diag_add(l->diag, f->file, line,
                              "action '%s' takes no field '%s' (store_as "
                              "one of: %s)",
                              action, name, known);
                continue;
            }
            enum flow_ftype t = flow_node_ftype(nd);
            if (t != a->type)
                flow_diag_add(l->diag, f->file, line,
                              "field '%s' of node '%s' is %s, but action "
                              "'%s' takes '%s' as %s",
                              name, nd->id, flow_ftype_name(t), action,
                              a->field, flow_ftype_name(a->type));
            if (a->personal && !nd->personal)
                flow_diag_add(l->diag, f->file, nd->line,
                              "node '%s' feeds '%s', which action '%s' "
                              "keeps as personal: mark it personal = true",
                              nd->id, a->field, action);
            else if (!a->personal && nd->personal)
                flow_diag_add(l->diag, f->file, nd->line,
                              "node '%s' is marked personal, but action "
                              "'%s' keeps '%s' in clear",
                              nd->id, action, a->field);
        }
        for (const struct flow_afield *a = flow_afields; a->action != NULL;
             a++) {
            if (!a->required || strcmp(a->action, action) != 0) continue;
            int have = 0;
            for (size_t i = 0; i < f->n && !have; i++)
                have = f->nodes[i].field != NULL &&
                       strcmp(flow_node_rec_name(&f->nodes[i]), a->field) == 0;
            if (!have)
                for (size_t i = 0; i < f->n; i++)
                    if (f->nodes[i].kind == FLOW_K_END && f->nodes[i].action &&
                        strcmp(f->nodes[i].action, action) == 0)
                        flow_diag_add(l->diag, f->file, f->nodes[i].line,
                                      "action '%s' needs the field '%s': no "
                                      "node of flow '%s' holds it",
                                      action, a->field, f->id);
        }
    }
}

/* ------------------------------------------------------------------------
 * Screens
 */

struct flow_wide {
    struct flow_state st;
    const struct flow_def *f;
    const struct flow_set *set;
    int li;
};

/* Widest answer for each field: longest label, 60-letter Bangla name,
 * longest digits. */
static void
flow_lint_widest(struct flow_wide *w)
{
    const struct flow_def *f = w->f;
    struct flow_choice ch[FLOW_CHOICES_MAX];
    for (size_t i = 0; i < f->n; i++) {
        const struct flow_node *nd = &f->nodes[i];
        if (nd->field == NULL || strcmp(nd->field, "lang") == 0 ||
            flow_state_get(&w->st, nd->field) != NULL ||
            w->st.nanswers == FLOW_ANSWERS_MAX)
            continue;
        struct flow_answer *a = &w->st.answers[w->st.nanswers++];
        snprintf(a->field, sizeof(a->field), "%s", nd->field);
        if (nd->kind == FLOW_K_INPUT) {
            const char *v = nd->validator;
            if (strcmp(v, "name") == 0 || strcmp(v, "regex") == 0) {
                size_t o = 0;
                for (int k = 0; k < 60 && o + 4 < sizeof(a->value); k++) {
                    memcpy(a->value + o, "\xe0\xa6\x95", 3); /* ka */
                    o += 3;
                }
                a->value[o] = '\0';
            } else {
                int len = !strcmp(v, "nid") || !strcmp(v, "id") ? 17
                          : !strcmp(v, "passport")              ? 9
                          : !strcmp(v, "phone")                 ? 13
                          : !strcmp(v, "year")                  ? 4
                                                                : 9;
                memset(a->value, '8', (size_t)len);
                a->value[len] = '\0';
            }
            continue;
        }
        size_t n = flow_choices(nd, &w->st, w->li, ch);
        long picks = nd->kind == FLOW_K_MULTI ? nd->max : 1;
        size_t len = 0;
        a->value[0] = '\0';
        char used[FLOW_CHOICES_MAX] = {0};
        for (long p = 0; p < picks; p++) {
            size_t best = n;
            for (size_t k = 0; k < n; k++)
                if (!used[k] &&
                    (best == n || strlen(ch[k].label) > strlen(ch[best].label)))
                    best = k;
            if (best == n) break;
            used[best] = 1;
            int wr = snprintf(a->value + len, sizeof(a->value) - len, "%s%s",
                              len ? "," : "", ch[best].value);
            if (wr > 0 && (size_t)wr < sizeof(a->value) - len)
                len += (size_t)wr;
        }
        if (len == 0) w->st.nanswers--; /* filtered list with no parent yet */
    }
}

/* Report a screen that does not fit; returns -1 if it was reported, so
 * the caller can stop at the first (and least loaded) case. */
static int
flow_lint_screen(struct flow_linter *l, const struct flow_def *f,
                 const struct flow_node *nd, struct flow_state *st,
                 const char *what)
{
    struct flow_out out;
    if (flow_render_check(l->set, st, &out) == 0) return 0;
    flow_diag_add(l->diag, f->file, nd->line,
                  "%s of node '%s' does not "
                  "fit one %s page in '%s' (%u/%u %s)",
                  what, nd->id, flow_channel_name(st->channel), st->lang,
                  out.used, out.limit, flow_enc_name(out.enc));
    return -1;
}

static void
flow_lint_pages(struct flow_linter *l, const struct flow_def *f)
{
    const struct flow_set *set = l->set;
    static const char *const menu_why[] = {"", "invalid_choice",
                                           "invalid_input", "too_long", NULL};
    static const char *const multi_why[] = {
        "",         "invalid_choice",   "invalid_input",
        "too_long", "too_many_choices", "too_few_choices",
        NULL};
    for (size_t li = 0; li < set->nlangs; li++) {
        if (!(f->langs & (1u << li))) continue;
        for (unsigned ch = 0; ch < 2; ch++) {
            if (!(f->channels & (1u << ch))) continue;
            struct flow_wide w = {.f = f, .set = set, .li = (int)li};
            memset(&w.st, 0, sizeof(w.st));
            snprintf(w.st.flow, sizeof(w.st.flow), "%s", f->id);
            snprintf(w.st.home, sizeof(w.st.home), "%s", f->id);
            snprintf(w.st.lang, sizeof(w.st.lang), "%s", set->langs[li]);
            memset(w.st.key, 'f', FLOW_KEY_MAX - 1);
            w.st.channel = ch;
            w.st.nhist = 1;
            snprintf(w.st.hist[0], FLOW_ID_MAX, "%s", f->start);
            flow_lint_widest(&w);
            flow_lint_widest(&w); /* second pass fills filtered lists */

            for (size_t i = 0; i < f->n; i++) {
                const struct flow_node *nd = &f->nodes[i];
                struct flow_state st = w.st;
                snprintf(st.node, sizeof(st.node), "%s", nd->id);
                const char *const *whys = menu_why;
                char vwhy[FLOW_ID_MAX];
                const char *iw[] = {"", "invalid_input", "too_long", vwhy,
                                    NULL};
                switch (nd->kind) {
                case FLOW_K_MENU:
                    if (nd->has_search) {
                        static const char *const sw[] = {
                            "", "search_none", "search_more", "search_letters",
                            NULL};
                        int bad = 0;
                        st.flags = FLOW_SF_SEARCH;
                        for (size_t k = 0; sw[k] && !bad; k++) {
                            snprintf(st.why, sizeof(st.why), "%s", sw[k]);
                            bad = flow_lint_screen(l, f, nd, &st,
                                                   "the search screen");
                        }
                        st.flags = 0;
                        st.why[0] = '\0';
                    }
                    break;
                case FLOW_K_MULTI:
                    whys = multi_why;
                    break;
                case FLOW_K_INPUT:
                    snprintf(vwhy, sizeof(vwhy), "invalid_%s",
                             strcmp(nd->validator, "regex") == 0
                                 ? "format"
                                 : nd->validator);
                    whys = iw;
                    break;
                case FLOW_K_CONFIRM:
                    if (flow_lint_screen(l, f, nd, &st, "the read-back"))
                        continue;
                    snprintf(st.why, sizeof(st.why), "invalid_choice");
                    if (flow_lint_screen(l, f, nd, &st,
                                         "the read-back after a wrong key"))
                        continue;
                    st.why[0] = '\0';
                    st.flags = FLOW_SF_EDITPICK;
                    whys = menu_why;
                    break;
                case FLOW_K_END: {
                    /* {phone}: an office number, at most 16 digits */
                    const char *vars[] = {"reason=", NULL,
                                          "phone=0123456789012345", NULL};
                    char reason[128];
                    const char *fill =
                        set->langs[li][0] == 'e' ? "W" : "\xe0\xa6\x95";
                    reason[0] = '\0';
                    for (int k = 0; k < 30; k++)
                        strcat(reason, fill);
                    char rv[160];
                    snprintf(rv, sizeof(rv), "reason=%s", reason);
                    vars[0] = rv;
                    struct flow_out out;
                    st.flags = FLOW_SF_DONE;
                    for (size_t k = 0; k <= nd->nouts; k++) {
                        char oc[FLOW_ID_MAX + 16];
                        snprintf(oc, sizeof(oc), "outcome=%s",
                                 k < nd->nouts ? nd->outs[k].id : "");
                        vars[1] = oc;
                        flow_render_end(set, &st, vars, &out);
                        if (out.used > out.limit)
                            flow_diag_add(l->diag, f->file, nd->line,
                                          "end text%s%s of node '%s' can be "
                                          "too long for one %s page in '%s' "
                                          "(%u/%u %s)",
                                          k < nd->nouts ? " " : "",
                                          k < nd->nouts ? nd->outs[k].id : "",
                                          nd->id, flow_channel_name(ch),
                                          set->langs[li], out.used, out.limit,
                                          flow_enc_name(out.enc));
                    }
                    continue;
                }
                default:
                    FLOW_WRONG("node kind");
                }
                /* Filtered lists: every parent value. */
                const char *parents[FLOW_CHOICES_MAX + 1];
                size_t np = 0;
                if (nd->filter && nd->list) {
                    for (size_t k = 0; k < nd->list->n && np < FLOW_CHOICES_MAX;
                         k++) {
                        int dup = 0;
                        for (size_t m = 0; m < np; m++)
                            dup |=
                                !strcmp(parents[m], nd->list->items[k].parent);
                        if (!dup) parents[np++] = nd->list->items[k].parent;
                    }
                }
                for (size_t pi = 0; pi < (np ? np : 1); pi++) {
                    if (np) {
                        struct flow_answer *a = NULL;
                        for (unsigned k = 0; k < st.nanswers; k++)
                            if (!strcmp(st.answers[k].field, nd->filter))
                                a = &st.answers[k];
                        if (a == NULL && st.nanswers < FLOW_ANSWERS_MAX) {
                            a = &st.answers[st.nanswers++];
                            snprintf(a->field, sizeof(a->field), "%s",
                                     nd->filter);
                        }
                        if (a != NULL)
                            snprintf(a->value, sizeof(a->value), "%s",
                                     parents[pi]);
                    }
                    int bad = 0;
                    for (size_t k = 0; whys[k] && !bad; k++) {
                        snprintf(st.why, sizeof(st.why), "%s", whys[k]);
                        bad = flow_lint_screen(l, f, nd, &st, "the screen");
                    }
                    if (bad) break;
                }
            }
        }
    }
}

static void
flow_lint_messages(struct flow_linter *l)
{
    const struct flow_set *set = l->set;
    const char *file = set->msg_file ? set->msg_file : "messages.conf";
    for (size_t i = 0; flow_required_msgs[i]; i++)
        if (flow_msg_find(set, flow_required_msgs[i]) == NULL)
            flow_diag_add(l->diag, file, 0, "missing message '%s'",
                          flow_required_msgs[i]);
    const struct flow_msg *dg = flow_msg_find(set, "digits");
    for (size_t li = 0; dg != NULL && li < set->nlangs; li++) {
        /* what flow_text_normalise() reads back: ASCII or Bangla, in order */
        static const char *const ok[] = {"0123456789", "০১২৩৪৫৬৭৮৯", NULL};
        const char *d = dg->text.s[li];
        if (d != NULL && !flow_lint_in(ok, d))
            flow_diag_add(l->diag, file, dg->line,
                          "message 'digits' in '%s' must be 0123456789 or "
                          "০১২৩৪৫৬৭৮৯ (digits callers can type back)",
                          set->langs[li]);
    }
    for (size_t i = 0; i < set->nmsgs; i++) {
        char what[96];
        snprintf(what, sizeof(what), "message '%s'", set->msgs[i].id);
        flow_lint_text(l, file, set->msgs[i].line, set->msg_langs,
                       &set->msgs[i].text, what);
    }
    for (size_t li = 0; li < set->nlangs; li++) {
        if (!(set->msg_langs & (1u << li))) continue;
        for (unsigned ch = 0; ch < 2; ch++) {
            struct flow_out out;
            for (size_t i = 0; flow_screen_msgs[i]; i++) {
                const struct flow_msg *m =
                    flow_msg_find(set, flow_screen_msgs[i]);
                if (m == NULL) continue;
                /* a reference is 10 characters */
                static const char *const vars[] = {"ref=WWWWWWWWWW", NULL};
                flow_render_message_vars(set, set->langs[li], ch, m->id, vars,
                                         &out);
                if (out.used > out.limit)
                    flow_diag_add(l->diag, file, m->line,
                                  "message '%s' is "
                                  "too long for one %s page in '%s' (%u/%u "
                                  "%s)",
                                  m->id, flow_channel_name(ch), set->langs[li],
                                  out.used, out.limit, flow_enc_name(out.enc));
            }
        }
    }
}

/* The parts of a registration: flows that exist, each with a title, and
 * the offer of each part after the first fits a page. */
static void
flow_lint_parts(struct flow_linter *l, const struct flow_def *f)
{
    const struct flow_set *set = l->set;
    for (size_t i = 0; i < f->nparts; i++) {
        const struct flow_def *g = flow_def_find(set, f->parts[i]);
        char what[96];
        if (g == NULL) {
            flow_diag_add(l->diag, f->file, 1, "part '%s' is not a flow",
                          f->parts[i]);
            continue;
        }
        if (!g->has_title) {
            flow_diag_add(l->diag, g->file, 1,
                          "flow '%s' is part %zu of '%s': give it a 'title'",
                          g->id, i + 1, f->id);
            continue;
        }
        snprintf(what, sizeof(what), "title of flow '%s'", g->id);
        flow_lint_text(l, g->file, 1, g->langs, &g->title, what);
        for (size_t li = 0; i > 0 && li < set->nlangs; li++) {
            if (!(g->langs & (1u << li))) continue;
            struct flow_state st;
            struct flow_out out;
            memset(&st, 0, sizeof(st));
            snprintf(st.flow, sizeof(st.flow), "%s", g->id);
            snprintf(st.node, sizeof(st.node), "%s", g->start ? g->start : "");
            snprintf(st.lang, sizeof(st.lang), "%s", set->langs[li]);
            st.parts = (1u << i) - 1;
            st.flags = FLOW_SF_NEXTPART | FLOW_SF_LANG;
            if (flow_render_check(set, &st, &out) != 0)
                flow_diag_add(l->diag, g->file, 1,
                              "the offer of part %zu ('%s') does not fit one "
                              "ussd page in '%s' (%u/%u %s)",
                              i + 1, g->id, set->langs[li], out.used, out.limit,
                              flow_enc_name(out.enc));
        }
    }
}

void
flow_lint(const struct flow_set *set, struct flow_diag *diag)
{
    struct flow_linter l = {.set = set, .diag = diag};

    flow_lint_messages(&l);
    if (set->s.entry_ussd && set->s.entry_ussd[0] &&
        !flow_def_find(set, set->s.entry_ussd))
        flow_diag_add(diag, "remigate.conf", 0, "entry_ussd: no flow '%s'",
                      set->s.entry_ussd);
    if (set->s.entry_sms && set->s.entry_sms[0] &&
        !flow_def_find(set, set->s.entry_sms))
        flow_diag_add(diag, "remigate.conf", 0, "entry_sms: no flow '%s'",
                      set->s.entry_sms);

    for (size_t fi = 0; fi < set->nflows; fi++) {
        const struct flow_def *f = &set->flows[fi];
        size_t nerr = diag->n, nfields = 0;
        for (size_t i = 0; i < set->nlangs; i++)
            if ((f->langs & (1u << i)) && !(set->msg_langs & (1u << i)))
                flow_diag_add(diag, f->file, 1,
                              "language '%s' has no "
                              "messages in messages.conf",
                              set->langs[i]);
        if (flow_node_find(f, f->start) == NULL) {
            flow_diag_add(diag, f->file, 1, "start '%s' is not a node",
                          f->start ? f->start : "?");
            continue;
        }
        for (size_t i = 0; i < f->n; i++) {
            flow_lint_node(&l, f, &f->nodes[i]);
            nfields += f->nodes[i].field != NULL;
        }
        if (nfields > FLOW_ANSWERS_MAX)
            flow_diag_add(diag, f->file, 1, "%zu answer fields; at most %d",
                          nfields, FLOW_ANSWERS_MAX);
        unsigned char seen[1024] = {0};
        if (f->n > sizeof(seen)) {
            flow_diag_add(diag, f->file, 1, "too many nodes");
            continue;
        }
        flow_lint_reach(f, f->start, seen);
        for (size_t i = 0; i < f->n; i++)
            if (!seen[i])
                flow_diag_add(diag, f->file, f->nodes[i].line,
                              "node '%s' cannot be reached from '%s'",
                              f->nodes[i].id, f->start);
        for (size_t k = 0; k < f->nkeywords; k++)
            for (size_t gi = 0; gi < fi; gi++)
                for (size_t m = 0; m < set->flows[gi].nkeywords; m++)
                    if (!strcasecmp(f->keywords[k], set->flows[gi].keywords[m]))
                        flow_diag_add(diag, f->file, 1,
                                      "keyword '%s' is "
                                      "also used by flow '%s'",
                                      f->keywords[k], set->flows[gi].id);
        for (size_t gi = 0; f->nparts > 0 && gi < fi; gi++)
            if (set->flows[gi].nparts > 0)
                flow_diag_add(diag, f->file, 1,
                              "flow '%s' also names parts: one "
                              "registration has parts",
                              set->flows[gi].id);
        /* Screens only once the structure is sound. */
        if (diag->n == nerr) flow_lint_pages(&l, f);
        flow_lint_record(&l, f);
        if (diag->n == nerr) flow_lint_parts(&l, f);
    }
}
