/*
 * flow_search.c -- find a list item by the first letters of its name.
 *
 * A district or a country is found faster by typing "chat" or "চট্ট" than
 * by paging through a list of 64 names 4 at a time.  An item matches when
 * the typed letters begin its name, or one word of it, in any language of
 * the list or in one of its aliases (config/lists/: Chittagong for
 * Chattogram, Comilla for Cumilla, other Bangla spellings).
 *
 * Both sides are folded before they are compared, so that what a phone
 * sends matches what the list says: ASCII letters in lower case;
 * apostrophes, full stops and hyphens dropped ("coxs" finds Cox's Bazar);
 * brackets and commas as spaces (a word in brackets is a word: দুবাই);
 * zero-width joiners dropped; and the Bangla letters that have two
 * spellings in Unicode taken apart into the canonical one (ড় as ড + ়,
 * ো as ে + া, ...), which is what keyboards disagree about.
 *
 * Pure: no allocation, no I/O.
 */
#include <string.h>

#include "flows/flow_int.h"
#include "flows/flow_model.h"

#define FLOW_FOLD_MAX (FLOW_VALUE_MAX * 2)

static void
flow_fold_put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    if (*o + n >= cap) return;
    memcpy(out + *o, s, n);
    *o += n;
}

static void
flow_fold_cp(char *out, size_t cap, size_t *o, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    }
    flow_fold_put(out, cap, o, b, n);
}

size_t
flow_search_fold(const char *in, char *out, size_t cap)
{
    size_t len = strlen(in), i = 0, o = 0;
    int space = 1; /* no leading space, no two in a row */
    uint32_t cp;
    if (cap == 0) return 0;
    while (i < len) {
        if (flow_utf8_next(in, len, &i, &cp) != 0) {
            i++; /* a stray byte: skipped */
            continue;
        }
        if (cp == '\'' || cp == '.' || cp == '-' || cp == 0x2019 ||
            cp == 0x200C || cp == 0x200D)
            continue;
        if (cp == ' ' || cp == '(' || cp == ')' || cp == ',' || cp == '/' ||
            cp == '\t') {
            if (!space) flow_fold_put(out, cap, &o, " ", 1);
            space = 1;
            continue;
        }
        space = 0;
        if (cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
        switch (cp) {
        case 0x09DC: /* ড় */
            flow_fold_cp(out, cap, &o, 0x09A1);
            cp = 0x09BC;
            break;
        case 0x09DD: /* ঢ় */
            flow_fold_cp(out, cap, &o, 0x09A2);
            cp = 0x09BC;
            break;
        case 0x09DF: /* য় */
            flow_fold_cp(out, cap, &o, 0x09AF);
            cp = 0x09BC;
            break;
        case 0x09CB: /* ো */
            flow_fold_cp(out, cap, &o, 0x09C7);
            cp = 0x09BE;
            break;
        case 0x09CC: /* ৌ */
            flow_fold_cp(out, cap, &o, 0x09C7);
            cp = 0x09D7;
            break;
        default:
            break;
        }
        flow_fold_cp(out, cap, &o, cp);
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    return o;
}

/* Does the folded query q begin name, or a word of it? */
static int
flow_search_name(const char *q, size_t ql, const char *name)
{
    char f[FLOW_FOLD_MAX];
    size_t n = flow_search_fold(name, f, sizeof(f));
    for (size_t i = 0; i + ql <= n; i++)
        if ((i == 0 || f[i - 1] == ' ') && memcmp(f + i, q, ql) == 0) return 1;
    return 0;
}

size_t
flow_search(const struct flow_set *set, const struct flow_node *nd,
            const char *query, int li, struct flow_choice *out)
{
    char q[FLOW_FOLD_MAX];
    size_t ql = flow_search_fold(query, q, sizeof(q)), n = 0;
    if (nd->list == NULL || ql == 0) return 0;
    for (size_t i = 0; i < nd->list->n && n < FLOW_CHOICES_MAX; i++) {
        const struct flow_item *it = &nd->list->items[i];
        int hit = 0;
        for (size_t k = 0; k < set->nlangs && !hit; k++)
            hit = it->label.s[k] != NULL &&
                  flow_search_name(q, ql, it->label.s[k]);
        for (size_t k = 0; k < it->naliases && !hit; k++)
            hit = flow_search_name(q, ql, it->aliases[k]);
        if (!hit) continue;
        out[n].value = it->code;
        out[n].label = flow_text_get(&it->label, li);
        out[n].next = NULL;
        out[n].flow = NULL;
        n++;
    }
    return n;
}
