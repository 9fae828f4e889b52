/*
 * flow_set.c -- a loaded set of flows, lists and messages: the arena all
 * its memory comes from, the diagnostics a load reports, the settings'
 * defaults, and the lookups the engine and the gateway make in a set.
 *
 * Nothing here reads a file (flow_load.c builds the set); a set is never
 * changed once flow_set_load() has returned, so every lookup is a plain
 * read that any number of callers can make at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "flows/flow_int.h"

/* ------------------------------------------------------------------------
 * Arena: one owner for all of a set's memory.
 */

struct flow_arena {
    struct flow_arena *next;
    size_t used, cap;
    max_align_t data[];
};

void *
flow_arena_alloc(struct flow_set *set, size_t n)
{
    struct flow_arena *a = set->arena;
    size_t al = sizeof(max_align_t);

    n = (n + al - 1) / al * al;
    if (a == NULL || a->cap - a->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        struct flow_arena *b = malloc(sizeof(*b) + cap);
        if (b == NULL) return NULL;
        b->next = a;
        b->used = 0;
        b->cap = cap;
        set->arena = b;
        a = b;
    }
    void *p = (char *)a->data + a->used;
    a->used += n;
    memset(p, 0, n);
    return p;
}

const char *
flow_arena_strdup(struct flow_set *set, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = flow_arena_alloc(set, n);
    if (p != NULL) memcpy(p, s, n);
    return p;
}

void
flow_set_free(struct flow_set *set)
{
    if (set == NULL) return;
    struct flow_arena *a = set->arena;
    while (a != NULL) {
        struct flow_arena *n = a->next;
        free(a);
        a = n;
    }
    free(set);
}

/* ------------------------------------------------------------------------
 * Diagnostics
 */

void
flow_diag_init(struct flow_diag *d)
{
    memset(d, 0, sizeof(*d));
}

void
flow_diag_fini(struct flow_diag *d)
{
    free(d->items);
    memset(d, 0, sizeof(*d));
}

void
flow_diag_add(struct flow_diag *d, const char *file, int line, const char *fmt,
              ...)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct flow_diag_item *it = realloc(d->items, cap * sizeof(*it));
        if (it == NULL)
            return; /* out of memory: the count still says "failed" below */
        d->items = it;
        d->cap = cap;
    }
    struct flow_diag_item *it = &d->items[d->n++];
    snprintf(it->file, sizeof(it->file), "%s", file ? file : "?");
    it->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->msg, sizeof(it->msg), fmt, ap);
    va_end(ap);
}

const char *
flow_strerror(int err)
{
    switch (err) {
    case FLOW_OK:
        return "ok";
    case FLOW_ENOMEM:
        return "out of memory";
    case FLOW_ECONFIG:
        return "flows did not load";
    case FLOW_ESTATE:
        return "corrupt or foreign session state";
    case FLOW_ENOFLOW:
        return "no such flow or node";
    case FLOW_EINPUT:
        return "input too long or not UTF-8";
    case FLOW_EDONE:
        return "dialogue already ended";
    }
    return "unknown error";
}

void
flow_settings_default(struct flow_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->entry_ussd = "main";
    s->entry_sms = "main";
    snprintf(s->key_back, sizeof(s->key_back), "0");
    snprintf(s->key_home, sizeof(s->key_home), "00");
    snprintf(s->key_more, sizeof(s->key_more), "98");
    s->max_tries = 3;
    s->page[FLOW_CH_USSD].gsm7 = 182;
    s->page[FLOW_CH_USSD].ucs2 = 80;
    s->page[FLOW_CH_SMS].gsm7 = 153 * 3;
    s->page[FLOW_CH_SMS].ucs2 = 67 * 3;
    s->utc_offset = 6 * 3600;
    s->clock.menu_ms = 6000;
    s->clock.number_ms = 10000;
    s->clock.text_ms = 30000;
    s->clock.search_ms = 8000;
    s->clock.readback_ms = 6000;
    s->clock.round_trip_ms = 1000;
    s->clock.budget_ms = 90000;
}

/* ------------------------------------------------------------------------
 * Lookups
 */

int
flow_lang_index(const struct flow_set *set, const char *lang)
{
    if (lang == NULL) return -1;
    for (size_t i = 0; i < set->nlangs; i++)
        if (strcmp(set->langs[i], lang) == 0) return (int)i;
    return -1;
}

const struct flow_def *
flow_def_find(const struct flow_set *set, const char *id)
{
    if (id == NULL) return NULL;
    for (size_t i = 0; i < set->nflows; i++)
        if (strcmp(set->flows[i].id, id) == 0) return &set->flows[i];
    return NULL;
}

const struct flow_node *
flow_node_find(const struct flow_def *f, const char *id)
{
    if (f == NULL || id == NULL) return NULL;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->nodes[i].id, id) == 0) return &f->nodes[i];
    return NULL;
}

const struct flow_list *
flow_list_find(const struct flow_set *set, const char *id)
{
    for (size_t i = 0; i < set->nlists; i++)
        if (strcmp(set->lists[i].id, id) == 0) return &set->lists[i];
    return NULL;
}

const struct flow_msg *
flow_msg_find(const struct flow_set *set, const char *id)
{
    for (size_t i = 0; i < set->nmsgs; i++)
        if (strcmp(set->msgs[i].id, id) == 0) return &set->msgs[i];
    return NULL;
}

const char *
flow_text_get(const struct flow_text *t, int li)
{
    if (li >= 0 && li < FLOW_LANGS_MAX && t->s[li] != NULL) return t->s[li];
    for (int i = 0; i < FLOW_LANGS_MAX; i++)
        if (t->s[i] != NULL) return t->s[i];
    return "";
}

int
flow_exists(const struct flow_set *set, const char *flow_id)
{
    return flow_def_find(set, flow_id) != NULL;
}

const struct flow_settings *
flow_set_settings(const struct flow_set *set)
{
    return &set->s;
}

const char *
flow_message(const struct flow_set *set, const char *lang, const char *id)
{
    const struct flow_msg *m = flow_msg_find(set, id);
    if (m == NULL) return id;
    return flow_text_get(&m->text, flow_lang_index(set, lang));
}

/* Case-insensitive for ASCII; other scripts compare exactly (after the
 * caller's normalisation). */
const char *
flow_keyword(const struct flow_set *set, const char *word)
{
    char buf[FLOW_INPUT_MAX + 1];
    if (word == NULL ||
        flow_text_normalise(word, strlen(word), 1, buf, sizeof(buf)) < 0)
        return NULL;
    for (size_t i = 0; i < set->nflows; i++) {
        const struct flow_def *f = &set->flows[i];
        for (size_t k = 0; k < f->nkeywords; k++)
            if (strcasecmp(f->keywords[k], buf) == 0) return f->id;
    }
    return NULL;
}
