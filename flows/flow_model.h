/*
 * flow_model.h -- private to flows/: the loaded form of flows, lists and
 * messages.  Built by flow_load.c, read by the engine (flow_engine.c and
 * the files its design note names); never changed once flow_set_load()
 * has returned.  All memory of a set comes from one arena and goes with
 * flow_set_free().
 */
#ifndef FLOW_MODEL_H
#define FLOW_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flow.h"

#define FLOW_LANGS_MAX   4
#define FLOW_CHOICES_MAX 128

/* Invariants: abort with where it broke; never compiled out.  For bugs
 * only: input never reaches these. */
#define FLOW_AN(x)                                                             \
    do {                                                                       \
        if (!(x)) {                                                            \
            fprintf(stderr, "assert %s %s:%d: %s\n", __func__, __FILE__,       \
                    __LINE__, #x);                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)
#define FLOW_WRONG(why)                                                        \
    do {                                                                       \
        fprintf(stderr, "wrong %s %s:%d: %s\n", __func__, __FILE__, __LINE__,  \
                why);                                                          \
        abort();                                                               \
    } while (0)

/* Copy a NUL-terminated string into dst[cap], cutting if needed. */
static inline void
flow_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* X-macro: node kinds, with their names in flow files. */
#define FLOW_KINDS(X)                                                          \
    X(MENU, "menu")                                                            \
    X(INPUT, "input")                                                          \
    X(MULTI, "multi")                                                          \
    X(CONFIRM, "confirm")                                                      \
    X(END, "end")

enum flow_kind {
#define X(k, s) FLOW_K_##k,
    FLOW_KINDS(X)
#undef X
        FLOW_K__N
};

/* One text in every language of the set (indexed like set->langs);
 * NULL where the file gave none. */
struct flow_text {
    const char *s[FLOW_LANGS_MAX];
};

struct flow_item {
    const char *code;
    const char *parent; /* "" when none */
    struct flow_text label;
    const char **aliases; /* other names search finds it by, or NULL */
    size_t naliases;
    int line;
};

struct flow_list {
    const char *id;
    const char *file;
    int line;
    struct flow_item *items;
    size_t n;
};

struct flow_option {
    const char *value;
    struct flow_text label;
    const char *next; /* node id or NULL */
    const char *flow; /* flow id or NULL */
    int line;
    int next_line; /* of the next setting */
};

struct flow_branch {
    const char *field; /* NULL: always */
    const char *equals;
    const char *next;
    int line;
};

struct flow_outcome {
    const char *id;
    struct flow_text text;
    int line;
};

struct flow_node {
    const char *id;
    enum flow_kind kind;
    int line;
    struct flow_text text;
    struct flow_text label;
    int has_label;
    const char *field;    /* NULL for confirm/end */
    const char *store_as; /* the action field it feeds; NULL: field */
    int personal;         /* personal = true: sealed, masked on read-back */
    int store_as_line;
    const char *next; /* NULL when none */
    int next_line;    /* of the next setting, for diagnostics */
    int skip_if_set;
    struct flow_option *opts;
    size_t nopts;
    const struct flow_list *list;
    const char *filter; /* field whose answer filters list items by parent */
    struct flow_text search; /* menu: ask for first letters first */
    int has_search;
    const char *list_via;     /* search menu: node the list key goes to */
    const char *parent_field; /* menu: field that gets the item's parent */
    const char *validator;
    struct flow_vparam vp;
    long min, max; /* multi: how many */
    struct flow_branch *br;
    size_t nbr;
    const char **fields; /* confirm: fields to read back, or NULL = all */
    size_t nfields;
    const char *action;
    struct flow_outcome *outs;
    size_t nouts;
};

struct flow_def {
    const char *id;
    const char *file;
    int line;
    unsigned langs; /* bit i: set->langs[i] declared */
    const char *start;
    const char **keywords;
    size_t nkeywords;
    unsigned channels;  /* bit per enum flow_channel */
    const char **parts; /* the flows that make up this one, in order */
    size_t nparts;
    struct flow_text title; /* what a part is about, for the next-part offer */
    int has_title;
    struct flow_node *nodes;
    size_t n;
};

struct flow_msg {
    const char *id;
    struct flow_text text;
    int line;
};

struct flow_arena;

struct flow_set {
    struct flow_settings s; /* paths NULL, entry ids point into arena */
    struct flow_arena *arena;
    char langs[FLOW_LANGS_MAX][FLOW_LANG_MAX];
    size_t nlangs;
    struct flow_def *flows;
    size_t nflows;
    struct flow_list *lists;
    size_t nlists;
    struct flow_msg *msgs;
    size_t nmsgs;
    unsigned msg_langs; /* languages messages.conf declares */
    const char *msg_file;
};

/* Lookups used by the loader, linter and engine. */
int flow_lang_index(const struct flow_set *set, const char *lang);
const struct flow_def *flow_def_find(const struct flow_set *set,
                                     const char *id);
const struct flow_node *flow_node_find(const struct flow_def *f,
                                       const char *id);
const struct flow_list *flow_list_find(const struct flow_set *set,
                                       const char *id);
const struct flow_msg *flow_msg_find(const struct flow_set *set,
                                     const char *id);
/* Text in language li, or in the first language that has it, or "". */
const char *flow_text_get(const struct flow_text *t, int li);

/* A choice of a menu or multi node as shown now: inline option or list
 * item.  Strings borrowed from the set. */
struct flow_choice {
    const char *value;
    const char *label;
    const char *next;
    const char *flow;
};

/* Choices of node for st (filter applied), in language li.  Returns how
 * many (at most FLOW_CHOICES_MAX). */
size_t flow_choices(const struct flow_node *node, const struct flow_state *st,
                    int li, struct flow_choice *out);

/* The node after node once it holds value (option next, branch, next).
 * Sets *flow_to when the answer starts another flow.  NULL: none. */
const char *flow_next_of(const struct flow_node *node,
                         const struct flow_state *st, const char *value,
                         const char **flow_to);

/* Walk the flow from its start over the answers in st: calls visit for each
 * answered node on the path (may be NULL) and returns the first node that
 * still needs an answer, or the first confirm or end node. */
typedef void flow_visit_cb(const struct flow_node *node, const char *value,
                           void *arg);
const struct flow_node *flow_walk(const struct flow_set *set,
                                  const struct flow_def *f,
                                  const struct flow_state *st,
                                  flow_visit_cb *visit, void *arg);

/* Render every page of st's screen; returns 0 when each fits its page,
 * else -1 with the worst page in out. */
int flow_render_check(const struct flow_set *set, const struct flow_state *st,
                      struct flow_out *out);

/* How many pages st's screen has; *page_of (may be NULL) is set to the
 * page (0-based) that shows line item of it (a menu's choice item, a
 * read-back's line item), or 0. */
unsigned flow_render_pages(const struct flow_set *set,
                           const struct flow_state *st, size_t item,
                           unsigned *page_of);

/* The name the node's answer has in the record: store_as, else field. */
static inline const char *
flow_node_rec_name(const struct flow_node *nd)
{
    return nd->store_as != NULL ? nd->store_as : nd->field;
}

/* The type of the node's answer, from its kind and validator (the
 * linter holds it to the type the action declares for the field). */
enum flow_ftype flow_node_ftype(const struct flow_node *nd);
/* flow_search.c: the items of node's list whose name, or a word of it,
 * in any language or alias, begins with query (folded as below); labels
 * in language li.  Returns how many (at most FLOW_CHOICES_MAX). */
size_t flow_search(const struct flow_set *set, const struct flow_node *nd,
                   const char *query, int li, struct flow_choice *out);

/* Fold a name or a query for comparison (flow_search.c's design note);
 * writes a NUL-terminated result and returns its length. */
size_t flow_search_fold(const char *in, char *out, size_t cap);

/* Lint a loaded set; appends to diag. */
void flow_lint(const struct flow_set *set, struct flow_diag *diag);

/* Render helpers shared by the engine and the linter. */
struct flow_screen {
    char buf[FLOW_TEXT_MAX];
    size_t len;
    int overflow; /* the text did not fit in buf */
};
void flow_screen_reset(struct flow_screen *sc);
void flow_screen_add(struct flow_screen *sc, const char *s);
void flow_screen_line(struct flow_screen *sc, const char *s);
unsigned flow_screen_units(const struct flow_screen *sc, enum flow_enc *enc);

#endif
