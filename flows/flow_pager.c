/*
 * flow_pager.c -- screens, and the pager that cuts a node's lines into
 * pages that fit the channel.
 *
 * Screens are assembled from lines and cut into pages by one pager: a head
 * (reason and question, page 0 only), numbered items, a foot for the last
 * page (confirm's "1. Confirm / 2. Change") and the navigation lines.  Pages
 * are recomputed from the node, the language and the answers on every call;
 * only the page number is kept in the state.  A cut adds up the lines'
 * measures (flow_meas, flow_sum) instead of building and measuring each
 * candidate page.  Pure: no clock, no I/O, no allocation.
 */
#include <stdio.h>
#include <string.h>

#include "flows/flow_int.h"
#include "flows/flow_model.h"

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

void
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

const char *
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

void
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

void
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

void
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
int
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
unsigned
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
