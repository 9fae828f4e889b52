/*
 * con_supp.c -- small-cell suppression of one- and two-way count tables,
 * pure (no I/O, no clock): primary suppression of counts 1..k-1 and
 * complementary suppression until no hidden entry can be worked out
 * from what is shown.
 *
 * The model.  An nr x nc table of counts with its margins is kept as an
 * (nr+1) x (nc+1) "extended" table: row i < nr ends with its row total
 * at column nc, row nr holds the column totals and the grand total.  A
 * one-way table is one row (nr = 1); its column totals then repeat its
 * cells and its row total the grand total -- such twins are always shown
 * or hidden together.
 *
 * Turning every margin entry x into y = -x (the grand total keeps its
 * sign) makes every line of the extended table sum to zero, so what the
 * shown entries imply about the hidden ones is a transportation problem:
 * the hidden entries are edges of a bipartite graph (the rows 0..nr
 * against the columns 0..nc), and any other table consistent with what
 * is shown differs from the true one by a sum of +1/-1 moves around
 * cycles of hidden edges (a conformal decomposition: each cycle is a
 * feasible move on its own).  A hidden entry can therefore be pinned to
 * one value exactly when no cycle through it can move it by one while
 * every entry on the cycle stays within what a reader knows of it: a
 * primary cell is 1..k-1 ("<k"), a complementary one is at least k.
 * con_supp_pinned() is that check; con_supp_apply() hides, while some
 * entry is pinned, the smallest shown non-zero entry of its row or
 * column (a cell before a total), and checks again.
 */
#include <stdlib.h>
#include <string.h>

#include "console/con_int.h"

#define SUPP_INF (1LL << 60)

struct supp_g {
    int nr, nc, w; /* w = nc + 1: the extended row's width */
    const long long *n;
    const unsigned char *mark;
    int k;
    int nnodes;
    int *queue, *seen;
    int *start, *adj; /* the hidden entries at each node (CSR) */
};

static int
supp_hidden(const struct supp_g *g, int e)
{
    return g->mark[e] != CON_SUPP_SHOWN;
}

/* The sign of entry e in y-coordinates: -1 for a row or column total. */
static int
supp_sign(const struct supp_g *g, int e)
{
    int i = e / g->w, j = e % g->w;

    return (i == g->nr) != (j == g->nc) ? -1 : 1;
}

/* May entry e's y move by d (+1/-1) and stay within what a reader knows
 * of it? */
static int
supp_can(const struct supp_g *g, int e, int d)
{
    long long x = g->n[e] + (long long)d * supp_sign(g, e);
    long long lo = 1, hi = g->k - 1;

    if (g->mark[e] == CON_SUPP_COMPL) {
        lo = g->k;
        hi = SUPP_INF;
    }
    return x >= lo && x <= hi;
}

/* Node ids: row i -> i, column j -> nr + 1 + j. */
static int
supp_row(const struct supp_g *g, int e)
{
    return e / g->w;
}

static int
supp_col(const struct supp_g *g, int e)
{
    return g->nr + 1 + e % g->w;
}

/* Is there a directed path from node a to node b over the residual arcs
 * of the hidden entries other than skip?  An entry whose y may grow is an
 * arc row -> column, one whose y may shrink an arc column -> row. */
static int
supp_path(struct supp_g *g, int a, int b, int skip)
{
    int head = 0, tail = 0;

    memset(g->seen, 0, sizeof(int) * (size_t)g->nnodes);
    g->queue[tail++] = a;
    g->seen[a] = 1;
    while (head < tail) {
        int u = g->queue[head++];
        if (u == b) return 1;
        for (int t = g->start[u]; t < g->start[u + 1]; t++) {
            int e = g->adj[t], r = supp_row(g, e), v = -1;
            if (e == skip) continue;
            if (u == r && supp_can(g, e, +1))
                v = supp_col(g, e);
            else if (u != r && supp_can(g, e, -1))
                v = r;
            if (v >= 0 && !g->seen[v]) {
                g->seen[v] = 1;
                g->queue[tail++] = v;
            }
        }
    }
    return 0;
}

int
con_supp_pinned(int nr, int nc, const long long *n, int k,
                const unsigned char *mark)
{
    struct supp_g g = {nr,          nc,   nc + 1, n,    mark, k,
                       nr + nc + 2, NULL, NULL,   NULL, NULL};
    int ne = (nr + 1) * (nc + 1), found = -1, h = 0;

    CON_AN(nr >= 1 && nc >= 1 && k >= 2);
    g.queue = calloc((size_t)g.nnodes, sizeof(int));
    g.seen = calloc((size_t)g.nnodes, sizeof(int));
    g.start = calloc((size_t)g.nnodes + 1, sizeof(int));
    g.adj = calloc((size_t)ne * 2 + 1, sizeof(int));
    if (g.queue == NULL || g.seen == NULL || g.start == NULL || g.adj == NULL) {
        found = -2;
        goto done;
    }
    /* each hidden entry is listed at its row and at its column */
    for (int e = 0; e < ne; e++)
        if (supp_hidden(&g, e)) {
            g.start[supp_row(&g, e) + 1]++;
            g.start[supp_col(&g, e) + 1]++;
            h++;
        }
    for (int u = 0; u < g.nnodes; u++)
        g.start[u + 1] += g.start[u];
    memcpy(g.seen, g.start, sizeof(int) * (size_t)g.nnodes);
    for (int e = 0; e < ne; e++)
        if (supp_hidden(&g, e)) {
            g.adj[g.seen[supp_row(&g, e)]++] = e;
            g.adj[g.seen[supp_col(&g, e)]++] = e;
        }
    for (int e = 0; e < ne && found < 0 && h > 0; e++) {
        int r, c;
        if (!supp_hidden(&g, e)) continue;
        r = supp_row(&g, e);
        c = supp_col(&g, e);
        if (supp_can(&g, e, +1) && supp_path(&g, c, r, e)) continue;
        if (supp_can(&g, e, -1) && supp_path(&g, r, c, e)) continue;
        found = e;
    }
done:
    free(g.queue);
    free(g.seen);
    free(g.start);
    free(g.adj);
    return found;
}

/* Hide entry e and its twin (one-way tables: a cell and its column
 * total, the row total and the grand total). */
static void
supp_hide(int nr, int nc, unsigned char *mark, int e, unsigned char how)
{
    int w = nc + 1, i = e / w, j = e % w;
    int ti = nr == 1 ? 1 - i : i, tj = nc == 1 ? 1 - j : j;
    int twins[4] = {e, ti * w + j, i * w + tj, ti * w + tj};

    for (int t = 0; t < 4; t++)
        if (mark[twins[t]] == CON_SUPP_SHOWN) mark[twins[t]] = how;
}

/* The shown non-zero entry of row i (or column j when i < 0) with the
 * smallest count, a cell before a total; -1 if none. */
static int
supp_pick(int nr, int nc, const long long *n, const unsigned char *mark, int i,
          int j)
{
    int w = nc + 1, best = -1, len = i >= 0 ? w : nr + 1;

    for (int pass = 0; pass < 2 && best < 0; pass++) {
        for (int t = 0; t < len; t++) {
            int e = i >= 0 ? i * w + t : t * w + j;
            int margin = i >= 0 ? t == nc : t == nr;
            if (margin != pass || mark[e] != CON_SUPP_SHOWN || n[e] == 0)
                continue;
            if (best < 0 || n[e] < n[best]) best = e;
        }
    }
    return best;
}

int
con_supp_apply(int nr, int nc, const long long *n, int k, unsigned char *mark)
{
    int ne = (nr + 1) * (nc + 1), hidden = 0;

    CON_AN(nr >= 1 && nc >= 1 && k >= 2);
    memset(mark, CON_SUPP_SHOWN, (size_t)ne);
    for (int e = 0; e < ne; e++) {
        CON_AN(n[e] >= 0);
        if (n[e] >= 1 && n[e] < k) {
            supp_hide(nr, nc, mark, e, CON_SUPP_PRIMARY);
            hidden = 1;
        }
    }
    while (hidden) {
        int p = con_supp_pinned(nr, nc, n, k, mark), w = nc + 1, c;
        if (p == -2) return -1;
        if (p < 0) break;
        c = supp_pick(nr, nc, n, mark, p / w, 0);
        if (c < 0) c = supp_pick(nr, nc, n, mark, -1, p % w);
        if (c < 0) {
            /* nothing left beside it: the smallest shown non-zero entry
             * anywhere */
            for (int e = 0; e < ne; e++)
                if (mark[e] == CON_SUPP_SHOWN && n[e] > 0 &&
                    (c < 0 || n[e] < n[c]))
                    c = e;
        }
        if (c < 0) return 1; /* still pinned with all else hidden */
        supp_hide(nr, nc, mark, c, CON_SUPP_COMPL);
    }
    return 0;
}
