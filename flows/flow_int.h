/*
 * flow_int.h -- private to flows/: helpers one file of the module provides
 * and another uses.  Not part of the public interface in flow.h.  Each file
 * keeps its declarations in its own block below.
 */
#ifndef FLOW_INT_H
#define FLOW_INT_H

#include <stddef.h>
#include <stdint.h>

#include "flows/flow.h"
#include "flows/flow_model.h"

/* ------------------------------------------------------------------------
 * flow_set.c: the set's memory (flow_model.h has struct flow_set)
 */

/* n bytes, zeroed and aligned for any type, from set's arena; they go with
 * flow_set_free().  NULL when out of memory. */
void *flow_arena_alloc(struct flow_set *set, size_t n);

/* A copy of s in set's arena, or NULL when out of memory. */
const char *flow_arena_strdup(struct flow_set *set, const char *s);

/* ---- end of flow_set.c ---- */

/* ------------------------------------------------------------------------
 * flow_text.c: UTF-8 and the GSM 03.38 alphabet
 */

/* Decode one code point of s[0..len) at *i into *cp and advance *i past it.
 * Strict: overlong forms, surrogates (U+D800..U+DFFF), values above
 * U+10FFFF, stray continuation bytes and sequences cut short by len are
 * invalid.  Returns 0, or -1 (and leaves *i and *cp alone) when the bytes at
 * *i are not a valid sequence or *i >= len. */
int flow_utf8_next(const char *s, size_t len, size_t *i, uint32_t *cp);

/* Units s[0..len) takes when sent in enc.  FLOW_ENC_GSM7: septets, two for a
 * character of the extension table, one for anything outside GSM 03.38
 * (decide the encoding with flow_text_measure() first).  FLOW_ENC_UCS2:
 * UTF-16 code units, two for a character above U+FFFF.  Each byte of
 * invalid UTF-8 counts one. */
unsigned flow_text_units(const char *s, size_t len, enum flow_enc enc);

/* One pass over s[0..len) (s may be NULL when len is 0): its size in
 * septets and in UTF-16 code units, counted as flow_text_units() does, and
 * 1 if every character is in GSM 03.38 (what flow_text_measure() decides
 * the encoding by), else 0. */
int flow_text_scan(const char *s, size_t len, unsigned *septets,
                   unsigned *ucs2);

/* Where cp is in GSM 03.38: 1 in the default alphabet, 2 in the extension
 * table (sent as escape + character), 0 not at all. */
int flow_gsm7_char(uint32_t cp);

/* Show the ASCII digits of in[0..len) in another script: digits is the
 * message "digits" of a language, its ten digits 0..9 in order (UTF-8).
 * A run of digits that touches an ASCII letter, '*' or '#' stays as it is
 * (a passport number like A01234567, a reference, a code to dial like
 * *247#).  Writes a NUL-terminated result into out and returns its
 * length; when digits is NULL or not ten characters, or out is too small,
 * in is copied unchanged (cut to cap).  in and out must not overlap. */
size_t flow_digits_apply(const char *digits, const char *in, size_t len,
                         char *out, size_t cap);

/* A text written into a caller's buffer of cap bytes (cap > 0), always
 * NUL-terminated: what does not fit is dropped and overflow set.  The
 * state's encoding (flow_state.c) and the record's JSON (flow_record.c). */
struct flow_buf {
    char *buf; /* borrowed */
    size_t cap, len;
    int overflow;
};

/* Append s[0..n), or set b->overflow (and append nothing) if it does not
 * fit with its NUL. */
void flow_buf_put(struct flow_buf *b, const char *s, size_t n);

/* ---- end of flow_text.c ---- */

/* ------------------------------------------------------------------------
 * flow_pager.c: screens cut into pages (flow_model.h has struct flow_screen)
 */

#define FLOW_POOL_MAX  16384
#define FLOW_LINES_MAX (FLOW_CHOICES_MAX + 2 * FLOW_ANSWERS_MAX)

/* The lines of one screen before it is cut into pages; every string is
 * borrowed (most from pool, the rest from the set). */
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

/* The size of one line, measured once per cut (a page's size is the sum
 * of its lines' and one newline between each two). */
struct flow_meas {
    unsigned septets, ucs2;
    size_t bytes;
    int gsm, present;
};

struct flow_sum {
    unsigned septets, ucs2, lines;
    size_t bytes;
    int gsm;
};

/* Copy sc into out with its size, encoding and the page limit of ch. */
void flow_out_set(const struct flow_set *set, enum flow_channel ch,
                  const struct flow_screen *sc, struct flow_out *out);

/* a, b and c joined in pg's pool (in pg->digits when set); "" when the
 * pool is full.  The result lives as long as pg. */
const char *flow_pager_str(struct flow_pager *pg, const char *a, const char *b,
                           const char *c);

/* Add the borrowed line s as the next item (dropped past FLOW_LINES_MAX). */
void flow_pager_item(struct flow_pager *pg, const char *s);

/* Measure s (NULL or "" is absent) into m. */
void flow_meas_of(const char *s, struct flow_meas *m);

/* Add line m to the sum t (a newline before it unless it is the first). */
void flow_sum_add(struct flow_sum *t, const struct flow_meas *m);

/* Would the lines added up in t fit on one page (and in a screen's
 * buffer)? */
int flow_sum_fits(const struct flow_set *set, enum flow_channel ch,
                  const struct flow_sum *t);

/* Cut pg into pages and build page (clamped to the last) into out (may be
 * NULL).  *fits (may be NULL) is cleared when some page could not fit even
 * one item; starts_out (may be NULL; FLOW_LINES_MAX + 1) gets where each
 * page starts.  Returns the page count (>= 1). */
unsigned flow_pager_render(const struct flow_set *set, enum flow_channel ch,
                           const struct flow_pager *pg, unsigned page,
                           struct flow_out *out, int *fits, size_t *starts_out);

/* ---- end of flow_pager.c ---- */

/* ------------------------------------------------------------------------
 * flow_engine.c: answers, choices, the walk
 */

/* The answer of node as the caller sees it, in language li (labels of the
 * picked choices, or the typed text), into buf (cap bytes, NUL-terminated). */
void flow_display(const struct flow_node *node, const struct flow_state *st,
                  const char *value, int li, char *buf, size_t cap);

/* ---- end of flow_engine.c ---- */

/* ------------------------------------------------------------------------
 * flow_render.c: the screen of a node
 */

/* What a node's screen is rendered from; every pointer borrowed. */
struct flow_view {
    const struct flow_set *set;
    const struct flow_state *st;
    const struct flow_def *f;
    const struct flow_node *nd;
    int li;
    enum flow_channel ch;
    size_t *starts; /* NULL, or where the pages start (flow_render_pages) */
};

/* The read-back of a confirm node, collected by flow_walk(): the answered
 * nodes it shows and, when lines is set, their lines added to pg. */
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

/* Fill v for st's current node.  Returns 0, or FLOW_ENOFLOW when st's flow
 * or node is not in set (v->ch and v->li are set even then). */
int flow_view_init(const struct flow_set *set, const struct flow_state *st,
                   struct flow_view *v);

/* Build page (clamped) of v's screen into out (may be NULL); *fits as
 * flow_pager_render().  Returns the page count. */
unsigned flow_render_node(const struct flow_view *v, unsigned page,
                          struct flow_out *out, int *fits);

/* A flow_visit_cb with arg a struct flow_rb: collects a read-back line. */
void flow_rb_visit(const struct flow_node *nd, const char *value, void *arg);

/* ---- end of flow_render.c ---- */

#endif
