/*
 * flow_load.c -- read flows, lists and messages with libconfig into a
 * struct flow_set (flow_set.c has the set itself: its arena, diagnostics
 * and lookups).
 *
 * Loading is the only part of flows/ that touches files.  It is strict: every
 * group has a whitelist of settings, every setting a type, and anything else
 * is an error with the file and line libconfig recorded for it.  Loading does
 * not stop at the first error: every file is read and every problem reported,
 * so an author fixes a file in one pass.  Cross-references (next, list,
 * flow) and screen sizes are checked afterwards by flow_lint.c.
 *
 * Strings are copied out of libconfig into the set's arena before the
 * config_t is destroyed.
 */
#include <dirent.h>
#include <errno.h>
#include <libconfig.h>
#include <string.h>

#include "flows/flow_int.h"

/* ------------------------------------------------------------------------
 * Reading libconfig settings
 */

struct flow_loader {
    struct flow_set *set;
    struct flow_diag *diag;
    const char *file; /* in the arena */
};

static int
flow_load_line(const config_setting_t *s)
{
    return s ? (int)config_setting_source_line(s) : 0;
}

#define LOAD_ERR(ld, s, ...)                                                   \
    flow_diag_add((ld)->diag, (ld)->file, flow_load_line(s), __VA_ARGS__)

static int
flow_load_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= FLOW_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* Only these member names may appear in group s. */
static void
flow_load_whitelist(struct flow_loader *ld, const config_setting_t *s,
                    const char *what, const char *const *names)
{
    int n = config_setting_length(s);
    for (int i = 0; i < n; i++) {
        config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_name(m);
        int ok = 0;
        for (const char *const *p = names; *p != NULL; p++)
            if (name != NULL && strcmp(name, *p) == 0) ok = 1;
        if (!ok)
            LOAD_ERR(ld, m, "unknown setting '%s' in %s", name ? name : "?",
                     what);
    }
}

/* A string member; NULL (and an error if required) when absent or of
 * another type.  The result lives in the arena. */
static const char *
flow_load_str(struct flow_loader *ld, const config_setting_t *g,
              const char *name, int required)
{
    config_setting_t *m = config_setting_get_member(g, name);
    if (m == NULL) {
        if (required) LOAD_ERR(ld, g, "missing '%s'", name);
        return NULL;
    }
    if (config_setting_type(m) != CONFIG_TYPE_STRING) {
        LOAD_ERR(ld, m, "'%s' must be a string", name);
        return NULL;
    }
    return flow_arena_strdup(ld->set, config_setting_get_string(m));
}

static const char *
flow_load_id(struct flow_loader *ld, const config_setting_t *g,
             const char *name, int required)
{
    const char *s = flow_load_str(ld, g, name, required);
    if (s != NULL && !flow_load_id_ok(s)) {
        LOAD_ERR(ld, config_setting_get_member(g, name),
                 "'%s' must be 1-%d characters of a-z, 0-9 and _", name,
                 FLOW_ID_MAX - 1);
        return NULL;
    }
    return s;
}

static int
flow_load_int(struct flow_loader *ld, const config_setting_t *g,
              const char *name, long *out)
{
    config_setting_t *m = config_setting_get_member(g, name);
    if (m == NULL) return 0;
    int t = config_setting_type(m);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        LOAD_ERR(ld, m, "'%s' must be a whole number", name);
        return 0;
    }
    *out = (long)config_setting_get_int64(m);
    return 1;
}

static int
flow_load_bool(struct flow_loader *ld, const config_setting_t *g,
               const char *name)
{
    config_setting_t *m = config_setting_get_member(g, name);
    if (m == NULL) return 0;
    if (config_setting_type(m) != CONFIG_TYPE_BOOL) {
        LOAD_ERR(ld, m, "'%s' must be true or false", name);
        return 0;
    }
    return config_setting_get_bool(m);
}

/* Register a language in the set; returns its index or -1. */
static int
flow_load_lang(struct flow_loader *ld, const config_setting_t *s,
               const char *lang)
{
    int li = flow_lang_index(ld->set, lang);
    if (li >= 0) return li;
    size_t n = strlen(lang);
    if (n < 2 || n >= FLOW_LANG_MAX) {
        LOAD_ERR(ld, s, "language '%s' must be a 2-3 letter code", lang);
        return -1;
    }
    if (ld->set->nlangs == FLOW_LANGS_MAX) {
        LOAD_ERR(ld, s, "too many languages (at most %d)", FLOW_LANGS_MAX);
        return -1;
    }
    snprintf(ld->set->langs[ld->set->nlangs], FLOW_LANG_MAX, "%s", lang);
    return (int)ld->set->nlangs++;
}

/* An array of strings; returns a NULL-terminated arena array. */
static const char **
flow_load_strings(struct flow_loader *ld, const config_setting_t *g,
                  const char *name, size_t *count)
{
    *count = 0;
    config_setting_t *m = config_setting_get_member(g, name);
    if (m == NULL) return NULL;
    if (config_setting_type(m) != CONFIG_TYPE_ARRAY &&
        config_setting_type(m) != CONFIG_TYPE_LIST) {
        LOAD_ERR(ld, m, "'%s' must be a list of strings", name);
        return NULL;
    }
    int n = config_setting_length(m);
    const char **v = flow_arena_alloc(ld->set, sizeof(*v) * (size_t)(n + 1));
    if (v == NULL) return NULL;
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            LOAD_ERR(ld, e, "'%s' must be a list of strings", name);
            return NULL;
        }
        v[(*count)++] =
            flow_arena_strdup(ld->set, config_setting_get_string(e));
    }
    return v;
}

/* A text group { en = "..."; bn = "..."; }.  Languages not yet known to
 * the set are added (the linter then reports texts missing them). */
static int
flow_load_text(struct flow_loader *ld, const config_setting_t *g,
               const char *name, struct flow_text *t, int required)
{
    memset(t, 0, sizeof(*t));
    config_setting_t *m = config_setting_get_member(g, name);
    if (m == NULL) {
        if (required) LOAD_ERR(ld, g, "missing '%s'", name);
        return 0;
    }
    if (config_setting_type(m) != CONFIG_TYPE_GROUP) {
        LOAD_ERR(ld, m,
                 "'%s' must be a group of texts, e.g. "
                 "{ en = \"...\"; bn = \"...\"; }",
                 name);
        return 0;
    }
    int n = config_setting_length(m);
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        const char *lang = config_setting_name(e);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            LOAD_ERR(ld, e, "text '%s.%s' must be a string", name, lang);
            continue;
        }
        const char *v = config_setting_get_string(e);
        if (!flow_utf8_valid(v, strlen(v))) {
            LOAD_ERR(ld, e, "text '%s.%s' is not valid UTF-8", name, lang);
            continue;
        }
        if (v[0] == '\0') {
            LOAD_ERR(ld, e, "text '%s.%s' is empty", name, lang);
            continue;
        }
        int li = flow_load_lang(ld, e, lang);
        if (li >= 0) t->s[li] = flow_arena_strdup(ld->set, v);
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * Lists
 */

static void
flow_load_list(struct flow_loader *ld, config_t *cfg, struct flow_list *l)
{
    static const char *const top[] = {"id", "items", NULL};
    config_setting_t *root = config_root_setting(cfg);
    flow_load_whitelist(ld, root, "a list file", top);
    l->file = ld->file;
    l->line = 1;
    l->id = flow_load_id(ld, root, "id", 1);
    config_setting_t *items = config_setting_get_member(root, "items");
    if (items == NULL || config_setting_type(items) != CONFIG_TYPE_LIST) {
        LOAD_ERR(ld, items ? items : root,
                 "'items' must be a list: items = ( { code = ...; }, ... );");
        return;
    }
    int n = config_setting_length(items);
    l->items = flow_arena_alloc(ld->set, sizeof(*l->items) * (size_t)(n + 1));
    if (l->items == NULL) return;
    for (int i = 0; i < n; i++) {
        config_setting_t *it = config_setting_get_elem(items, (unsigned)i);
        if (config_setting_type(it) != CONFIG_TYPE_GROUP) {
            LOAD_ERR(ld, it, "each item must be a group { code = ...; }");
            continue;
        }
        struct flow_item *x = &l->items[l->n];
        x->line = flow_load_line(it);
        x->code = flow_load_str(ld, it, "code", 1);
        x->parent = flow_load_str(ld, it, "parent", 0);
        if (x->parent == NULL) x->parent = "";
        int bad = x->code == NULL;
        if (x->code != NULL &&
            (strlen(x->code) == 0 || strlen(x->code) >= FLOW_ID_MAX ||
             strpbrk(x->code, ",&=% ") != NULL)) {
            LOAD_ERR(ld, it,
                     "item code '%s' must be 1-%d characters "
                     "without , & = %% or space",
                     x->code, FLOW_ID_MAX - 1);
            bad = 1;
        }
        /* Every other member is a label in that language. */
        int m = config_setting_length(it);
        for (int k = 0; k < m; k++) {
            config_setting_t *e = config_setting_get_elem(it, (unsigned)k);
            const char *name = config_setting_name(e);
            if (strcmp(name, "code") == 0 || strcmp(name, "parent") == 0)
                continue;
            if (strcmp(name, "aliases") == 0) {
                x->aliases = flow_load_strings(ld, it, "aliases", &x->naliases);
                for (size_t a = 0; a < x->naliases; a++)
                    if (!flow_utf8_valid(x->aliases[a], strlen(x->aliases[a])))
                        LOAD_ERR(ld, e, "an alias is not UTF-8");
                continue;
            }
            if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                LOAD_ERR(ld, e, "label '%s' must be a string", name);
                continue;
            }
            const char *v = config_setting_get_string(e);
            if (!flow_utf8_valid(v, strlen(v)) || v[0] == '\0') {
                LOAD_ERR(ld, e, "label '%s' is empty or not UTF-8", name);
                continue;
            }
            int li = flow_load_lang(ld, e, name);
            if (li >= 0) x->label.s[li] = flow_arena_strdup(ld->set, v);
        }
        for (size_t k = 0; k < l->n && !bad; k++)
            if (strcmp(l->items[k].code, x->code) == 0) {
                LOAD_ERR(ld, it,
                         "duplicate item code '%s' (first at line "
                         "%d)",
                         x->code, l->items[k].line);
                bad = 1;
            }
        if (!bad) l->n++;
    }
    if (l->n > FLOW_CHOICES_MAX)
        LOAD_ERR(ld, items, "list has %zu items; at most %d", l->n,
                 FLOW_CHOICES_MAX);
}

/* ------------------------------------------------------------------------
 * Messages
 */

static void
flow_load_messages(struct flow_loader *ld, config_t *cfg)
{
    static const char *const top[] = {"languages", "messages", NULL};
    struct flow_set *set = ld->set;
    config_setting_t *root = config_root_setting(cfg);
    flow_load_whitelist(ld, root, "messages.conf", top);
    set->msg_file = ld->file;
    size_t nl;
    const char **langs = flow_load_strings(ld, root, "languages", &nl);
    if (langs == NULL || nl == 0)
        LOAD_ERR(ld, root, "missing 'languages' list");
    for (size_t i = 0; i < nl; i++) {
        int li = flow_load_lang(ld, root, langs[i]);
        if (li >= 0) set->msg_langs |= 1u << li;
    }
    config_setting_t *msgs = config_setting_get_member(root, "messages");
    if (msgs == NULL || config_setting_type(msgs) != CONFIG_TYPE_GROUP) {
        LOAD_ERR(ld, msgs ? msgs : root, "'messages' must be a group");
        return;
    }
    int n = config_setting_length(msgs);
    set->msgs = flow_arena_alloc(set, sizeof(*set->msgs) * (size_t)(n + 1));
    if (set->msgs == NULL) return;
    for (int i = 0; i < n; i++) {
        config_setting_t *m = config_setting_get_elem(msgs, (unsigned)i);
        struct flow_msg *x = &set->msgs[set->nmsgs];
        x->id = flow_arena_strdup(set, config_setting_name(m));
        x->line = flow_load_line(m);
        if (config_setting_type(m) != CONFIG_TYPE_GROUP) {
            LOAD_ERR(ld, m, "message '%s' must be a group of texts", x->id);
            continue;
        }
        flow_load_text(ld, msgs, x->id, &x->text, 1);
        set->nmsgs++;
    }
}

/* ------------------------------------------------------------------------
 * Flows
 */

static const char *const flow_node_keys[FLOW_K__N][20] = {
    [FLOW_K_MENU] = {"id", "kind", "text", "field", "label", "next", "branch",
                     "skip_if_set", "options", "list", "filter", "personal",
                     "store_as", "search", "list_via", "parent_field", NULL},
    [FLOW_K_INPUT] = {"id", "kind", "text", "field", "label", "next", "branch",
                      "skip_if_set", "validator", "min", "max", "pattern",
                      "personal", "store_as", NULL},
    [FLOW_K_MULTI] = {"id", "kind", "text", "field", "label", "next", "branch",
                      "skip_if_set", "options", "list", "filter", "min", "max",
                      "personal", "store_as", NULL},
    [FLOW_K_CONFIRM] = {"id", "kind", "text", "next", "fields", NULL},
    [FLOW_K_END] = {"id", "kind", "text", "action", "outcomes", NULL},
};

static const char *const flow_kind_names[FLOW_K__N] = {
#define X(k, s) [FLOW_K_##k] = s,
    FLOW_KINDS(X)
#undef X
};

static void
flow_load_options(struct flow_loader *ld, config_setting_t *g,
                  struct flow_node *nd)
{
    static const char *const keys[] = {"value", "label", "next", "flow", NULL};
    config_setting_t *m = config_setting_get_member(g, "options");
    if (m == NULL) return;
    if (config_setting_type(m) != CONFIG_TYPE_LIST) {
        LOAD_ERR(ld, m, "'options' must be a list ( { value = ...; }, ... )");
        return;
    }
    int n = config_setting_length(m);
    nd->opts = flow_arena_alloc(ld->set, sizeof(*nd->opts) * (size_t)(n + 1));
    if (nd->opts == NULL) return;
    for (int i = 0; i < n; i++) {
        config_setting_t *o = config_setting_get_elem(m, (unsigned)i);
        if (config_setting_type(o) != CONFIG_TYPE_GROUP) {
            LOAD_ERR(ld, o, "each option must be a group { value = ...; }");
            continue;
        }
        flow_load_whitelist(ld, o, "an option", keys);
        struct flow_option *x = &nd->opts[nd->nopts];
        x->line = flow_load_line(o);
        x->value = flow_load_str(ld, o, "value", 1);
        x->next = flow_load_id(ld, o, "next", 0);
        x->next_line = flow_load_line(config_setting_get_member(o, "next"));
        x->flow = flow_load_id(ld, o, "flow", 0);
        flow_load_text(ld, o, "label", &x->label, 1);
        if (x->value == NULL) continue;
        if (x->value[0] == '\0' || strlen(x->value) >= FLOW_ID_MAX ||
            strpbrk(x->value, ",&=% ") != NULL) {
            LOAD_ERR(ld, o,
                     "option value '%s' must be 1-%d characters "
                     "without , & = %% or space",
                     x->value, FLOW_ID_MAX - 1);
            continue;
        }
        nd->nopts++;
    }
}

static void
flow_load_branch(struct flow_loader *ld, config_setting_t *g,
                 struct flow_node *nd)
{
    static const char *const keys[] = {"field", "equals", "next", NULL};
    config_setting_t *m = config_setting_get_member(g, "branch");
    if (m == NULL) return;
    if (config_setting_type(m) != CONFIG_TYPE_LIST) {
        LOAD_ERR(ld, m,
                 "'branch' must be a list ( { field = ...; "
                 "equals = ...; next = ...; }, ... )");
        return;
    }
    int n = config_setting_length(m);
    nd->br = flow_arena_alloc(ld->set, sizeof(*nd->br) * (size_t)(n + 1));
    if (nd->br == NULL) return;
    for (int i = 0; i < n; i++) {
        config_setting_t *b = config_setting_get_elem(m, (unsigned)i);
        if (config_setting_type(b) != CONFIG_TYPE_GROUP) {
            LOAD_ERR(ld, b, "each branch must be a group");
            continue;
        }
        flow_load_whitelist(ld, b, "a branch", keys);
        struct flow_branch *x = &nd->br[nd->nbr];
        x->line = flow_load_line(b);
        x->field = flow_load_id(ld, b, "field", 0);
        x->equals = flow_load_str(ld, b, "equals", x->field != NULL);
        x->next = flow_load_id(ld, b, "next", 1);
        if (x->next != NULL) nd->nbr++;
    }
}

static void
flow_load_outcomes(struct flow_loader *ld, config_setting_t *g,
                   struct flow_node *nd)
{
    config_setting_t *m = config_setting_get_member(g, "outcomes");
    if (m == NULL) return;
    if (config_setting_type(m) != CONFIG_TYPE_GROUP) {
        LOAD_ERR(ld, m,
                 "'outcomes' must be a group { name = { en = ...; "
                 "}; }");
        return;
    }
    int n = config_setting_length(m);
    nd->outs = flow_arena_alloc(ld->set, sizeof(*nd->outs) * (size_t)(n + 1));
    if (nd->outs == NULL) return;
    for (int i = 0; i < n; i++) {
        config_setting_t *o = config_setting_get_elem(m, (unsigned)i);
        struct flow_outcome *x = &nd->outs[nd->nouts];
        x->id = flow_arena_strdup(ld->set, config_setting_name(o));
        x->line = flow_load_line(o);
        if (flow_load_text(ld, m, x->id, &x->text, 1)) nd->nouts++;
    }
}

static void
flow_load_node(struct flow_loader *ld, config_setting_t *g,
               struct flow_node *nd)
{
    nd->line = flow_load_line(g);
    nd->id = flow_load_id(ld, g, "id", 1);
    const char *kind = flow_load_str(ld, g, "kind", 1);
    nd->kind = FLOW_K__N;
    for (int k = 0; k < FLOW_K__N && kind; k++)
        if (strcmp(kind, flow_kind_names[k]) == 0) nd->kind = (enum flow_kind)k;
    if (kind != NULL && nd->kind == FLOW_K__N) {
        LOAD_ERR(ld, config_setting_get_member(g, "kind"),
                 "unknown kind '%s' (menu, input, multi, confirm, end)", kind);
        return;
    }
    if (nd->kind == FLOW_K__N) return;
    flow_load_whitelist(ld, g, flow_kind_names[nd->kind],
                        flow_node_keys[nd->kind]);
    flow_load_text(ld, g, "text", &nd->text, 1);
    nd->has_label = flow_load_text(ld, g, "label", &nd->label, 0);
    nd->next = flow_load_id(ld, g, "next", 0);
    nd->next_line = flow_load_line(config_setting_get_member(g, "next"));
    nd->skip_if_set = flow_load_bool(ld, g, "skip_if_set");
    switch (nd->kind) {
    case FLOW_K_MENU:
    case FLOW_K_MULTI:
    case FLOW_K_INPUT:
        nd->field = flow_load_id(ld, g, "field", 1);
        nd->personal = flow_load_bool(ld, g, "personal");
        nd->store_as = flow_load_id(ld, g, "store_as", 0);
        nd->store_as_line =
            flow_load_line(config_setting_get_member(g, "store_as"));
        flow_load_branch(ld, g, nd);
        break;
    case FLOW_K_CONFIRM:
    case FLOW_K_END:
        break;
    default:
        FLOW_WRONG("node kind");
    }
    if (nd->kind == FLOW_K_MENU || nd->kind == FLOW_K_MULTI) {
        flow_load_options(ld, g, nd);
        const char *list = flow_load_id(ld, g, "list", 0);
        nd->filter = flow_load_id(ld, g, "filter", 0);
        int has_opts = config_setting_get_member(g, "options") != NULL;
        if (list != NULL) {
            nd->list = flow_list_find(ld->set, list);
            if (nd->list == NULL)
                LOAD_ERR(ld, config_setting_get_member(g, "list"),
                         "unknown list '%s'", list);
        }
        if (has_opts == (list != NULL))
            LOAD_ERR(ld, g, "node '%s' needs either 'options' or 'list'",
                     nd->id ? nd->id : "?");
        if (nd->filter != NULL && list == NULL)
            LOAD_ERR(ld, config_setting_get_member(g, "filter"),
                     "'filter' needs a 'list'");
    }
    if (nd->kind == FLOW_K_MENU) {
        nd->has_search = flow_load_text(ld, g, "search", &nd->search, 0);
        nd->list_via = flow_load_id(ld, g, "list_via", 0);
        nd->parent_field = flow_load_id(ld, g, "parent_field", 0);
        if (nd->has_search && config_setting_get_member(g, "list") == NULL)
            LOAD_ERR(ld, config_setting_get_member(g, "search"),
                     "'search' needs a 'list'");
        if (nd->list_via && !nd->has_search)
            LOAD_ERR(ld, config_setting_get_member(g, "list_via"),
                     "'list_via' needs 'search'");
        if (nd->parent_field && config_setting_get_member(g, "list") == NULL)
            LOAD_ERR(ld, config_setting_get_member(g, "parent_field"),
                     "'parent_field' needs a 'list'");
    }
    if (nd->kind == FLOW_K_MULTI) {
        nd->min = 1;
        nd->max = 1;
        flow_load_int(ld, g, "min", &nd->min);
        if (!flow_load_int(ld, g, "max", &nd->max))
            LOAD_ERR(ld, g, "multi node needs 'max'");
        if (nd->min < 1 || nd->max < nd->min)
            LOAD_ERR(ld, g, "multi node needs 1 <= min <= max");
    }
    if (nd->kind == FLOW_K_INPUT) {
        nd->validator = flow_load_str(ld, g, "validator", 1);
        if (nd->validator != NULL && !flow_validator_known(nd->validator))
            LOAD_ERR(ld, config_setting_get_member(g, "validator"),
                     "unknown validator '%s' (name, year, age, number, nid, "
                     "passport, id, phone, regex)",
                     nd->validator);
        nd->vp.have_min = flow_load_int(ld, g, "min", &nd->vp.min);
        nd->vp.have_max = flow_load_int(ld, g, "max", &nd->vp.max);
        nd->vp.regex = flow_load_str(ld, g, "pattern", 0);
        if (nd->validator && strcmp(nd->validator, "regex") == 0 &&
            nd->vp.regex == NULL)
            LOAD_ERR(ld, g, "validator 'regex' needs a 'pattern'");
    }
    if (nd->kind == FLOW_K_CONFIRM)
        nd->fields = flow_load_strings(ld, g, "fields", &nd->nfields);
    if (nd->kind == FLOW_K_END) {
        nd->action = flow_load_id(ld, g, "action", 0);
        flow_load_outcomes(ld, g, nd);
    }
}

static void
flow_load_flow(struct flow_loader *ld, config_t *cfg, struct flow_def *f)
{
    static const char *const top[] = {"id",       "languages", "start",
                                      "keywords", "channels",  "parts",
                                      "title",    "nodes",     NULL};
    struct flow_set *set = ld->set;
    config_setting_t *root = config_root_setting(cfg);
    flow_load_whitelist(ld, root, "a flow file", top);
    f->file = ld->file;
    f->line = 1;
    f->id = flow_load_id(ld, root, "id", 1);
    f->start = flow_load_id(ld, root, "start", 1);
    size_t nl;
    const char **langs = flow_load_strings(ld, root, "languages", &nl);
    if (langs == NULL || nl == 0)
        LOAD_ERR(ld, root, "missing 'languages' list");
    for (size_t i = 0; i < nl; i++) {
        int li = flow_load_lang(ld, root, langs[i]);
        if (li >= 0) f->langs |= 1u << li;
    }
    f->keywords = flow_load_strings(ld, root, "keywords", &f->nkeywords);
    f->parts = flow_load_strings(ld, root, "parts", &f->nparts);
    f->has_title = flow_load_text(ld, root, "title", &f->title, 0);
    if (f->nparts > FLOW_PARTS_MAX)
        LOAD_ERR(ld, config_setting_get_member(root, "parts"),
                 "at most %d parts", FLOW_PARTS_MAX);
    size_t nch;
    const char **ch = flow_load_strings(ld, root, "channels", &nch);
    if (ch == NULL) f->channels = (1u << FLOW_CH_USSD) | (1u << FLOW_CH_SMS);
    for (size_t i = 0; i < nch; i++) {
        enum flow_channel c;
        if (flow_channel_parse(ch[i], &c) < 0)
            LOAD_ERR(ld, config_setting_get_member(root, "channels"),
                     "unknown channel '%s' (ussd, sms)", ch[i]);
        else
            f->channels |= 1u << c;
    }
    config_setting_t *nodes = config_setting_get_member(root, "nodes");
    if (nodes == NULL || config_setting_type(nodes) != CONFIG_TYPE_LIST) {
        LOAD_ERR(ld, nodes ? nodes : root,
                 "'nodes' must be a list: nodes = ( { id = ...; }, ... );");
        return;
    }
    int n = config_setting_length(nodes);
    f->nodes = flow_arena_alloc(set, sizeof(*f->nodes) * (size_t)(n + 1));
    if (f->nodes == NULL) return;
    for (int i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(nodes, (unsigned)i);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            LOAD_ERR(ld, g, "each node must be a group { id = ...; }");
            continue;
        }
        struct flow_node *nd = &f->nodes[f->n];
        flow_load_node(ld, g, nd);
        if (nd->id == NULL || nd->kind == FLOW_K__N) continue;
        const struct flow_node *dup = flow_node_find(f, nd->id);
        if (dup != NULL) {
            LOAD_ERR(ld, g, "duplicate node id '%s' (first at line %d)", nd->id,
                     dup->line);
            continue;
        }
        f->n++;
    }
}

/* ------------------------------------------------------------------------
 * Files
 */

static int
flow_load_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.conf files of dir, sorted, as a malloc'd array of malloc'd paths.
 * Returns the count or -1 (with a diagnostic). */
static int
flow_load_dir(struct flow_diag *diag, const char *dir, char ***out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (d == NULL) {
        flow_diag_add(diag, dir, 0, "cannot open directory: %s",
                      strerror(errno));
        return -1;
    }
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 ||
            strcmp(e->d_name + len - 5, ".conf") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, sizeof(*v) * (size_t)cap);
            if (nv == NULL) break;
            v = nv;
        }
        size_t plen = strlen(dir) + len + 2;
        v[n] = malloc(plen);
        if (v[n] == NULL) break;
        snprintf(v[n], plen, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 0) qsort(v, (size_t)n, sizeof(*v), flow_load_cmp);
    *out = v;
    return n;
}

static void
flow_load_paths_free(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Read one file; NULL with a diagnostic on a syntax error. */
static config_t *
flow_load_file(struct flow_loader *ld, const char *path, config_t *cfg)
{
    config_init(cfg);
    ld->file = flow_arena_strdup(ld->set, path);
    if (config_read_file(cfg, path) != CONFIG_TRUE) {
        const char *ef = config_error_file(cfg);
        if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
            flow_diag_add(ld->diag, path, 0, "cannot read file");
        else
            flow_diag_add(ld->diag, ef ? ef : path, config_error_line(cfg),
                          "%s", config_error_text(cfg));
        config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

struct flow_set *
flow_set_load(const struct flow_settings *s, struct flow_diag *diag)
{
    size_t nerr0 = diag->n;
    struct flow_set *set = calloc(1, sizeof(*set));
    if (set == NULL) {
        flow_diag_add(diag, "remigate", 0, "out of memory");
        return NULL;
    }
    set->s = *s;
    set->s.flows_dir = set->s.lists_dir = set->s.messages_file = NULL;
    set->s.entry_ussd =
        flow_arena_strdup(set, s->entry_ussd ? s->entry_ussd : "main");
    set->s.entry_sms =
        flow_arena_strdup(set, s->entry_sms ? s->entry_sms : "main");
    struct flow_loader ld = {.set = set, .diag = diag};
    config_t cfg;
    char **paths;
    int n;

    /* Messages first: their 'languages' order is the set's, and the first
     * one is what a caller who has not chosen a language sees. */
    if (s->messages_file == NULL)
        flow_diag_add(diag, "remigate", 0, "no messages file configured");
    else if (flow_load_file(&ld, s->messages_file, &cfg) != NULL) {
        flow_load_messages(&ld, &cfg);
        config_destroy(&cfg);
    }

    /* Lists next: flows refer to them. */
    n = s->lists_dir ? flow_load_dir(diag, s->lists_dir, &paths) : 0;
    if (n > 0) {
        set->lists = flow_arena_alloc(set, sizeof(*set->lists) * (size_t)n);
        for (int i = 0; i < n && set->lists; i++) {
            if (flow_load_file(&ld, paths[i], &cfg) == NULL) continue;
            struct flow_list *l = &set->lists[set->nlists];
            flow_load_list(&ld, &cfg, l);
            config_destroy(&cfg);
            if (l->id == NULL) continue;
            const struct flow_list *dup = flow_list_find(set, l->id);
            if (dup != NULL) {
                flow_diag_add(diag, l->file, 1,
                              "list '%s' is also defined "
                              "in %s",
                              l->id, dup->file);
                continue;
            }
            set->nlists++;
        }
        flow_load_paths_free(paths, n);
    }

    n = s->flows_dir ? flow_load_dir(diag, s->flows_dir, &paths) : -1;
    if (n == 0) flow_diag_add(diag, s->flows_dir, 0, "no *.conf flow files");
    if (n > 0) {
        set->flows = flow_arena_alloc(set, sizeof(*set->flows) * (size_t)n);
        for (int i = 0; i < n && set->flows; i++) {
            if (flow_load_file(&ld, paths[i], &cfg) == NULL) continue;
            struct flow_def *f = &set->flows[set->nflows];
            flow_load_flow(&ld, &cfg, f);
            config_destroy(&cfg);
            if (f->id == NULL) continue;
            const struct flow_def *dup = flow_def_find(set, f->id);
            if (dup != NULL) {
                flow_diag_add(diag, f->file, 1,
                              "flow '%s' is also defined "
                              "in %s",
                              f->id, dup->file);
                continue;
            }
            set->nflows++;
        }
        flow_load_paths_free(paths, n);
    }

    if (diag->n == nerr0) flow_lint(set, diag);
    if (diag->n != nerr0) {
        flow_set_free(set);
        return NULL;
    }
    return set;
}
