/*
 * test_con_supp.c -- small-cell suppression (console/con_supp.c).
 *
 * The property: for random one- and two-way tables, after
 * con_supp_apply() every count 1..k-1 is hidden, what is shown still adds
 * up, and no hidden entry can be solved for.  The solver here does not
 * use con_supp.c's cycle argument: for each hidden entry it searches
 * (bounds propagated along every row and column sum, then depth first)
 * for a whole table consistent with what is shown -- shown entries fixed,
 * a primary 1..k-1, a complementary entry >= k -- in which that entry is
 * one more or one less than its true value.  Such a table is a witness
 * that the entry cannot be worked out; the lines' sums form a network
 * (totally unimodular) system, so the values an entry can take are an
 * interval of integers and a second value exists only if one of these
 * two does.  A search that runs out of its node budget fails the test.
 * Controls: the same solver pins the cell of a table with primary
 * suppression only, and of a table whose primaries sit in two blocks
 * joined by one cell (the case the "two per line" rule misses).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console/con_int.h"

#define MAXR   4
#define MAXC   4
#define MAXE   ((MAXR + 1) * (MAXC + 1))
#define BUDGET 4000000L

struct solver {
    int nr, nc, w, k;
    long long n[MAXE];
    unsigned char mark[MAXE];
    long long lo[MAXE], hi[MAXE];
    int nlines;
    int line[2 * (MAXR + MAXC + 2)][MAXE]; /* coefficient per entry */
    long nodes;
};

static uint64_t rng = 88172645463325252ull;

static unsigned
rnd(unsigned m)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % m);
}

/* The lines: each row i < nr sums to its total, row nr's cells to the
 * grand total, the same for columns. */
static void
solver_lines(struct solver *s)
{
    int w = s->w;

    s->nlines = 0;
    memset(s->line, 0, sizeof(s->line));
    for (int i = 0; i <= s->nr; i++) {
        for (int j = 0; j < s->nc; j++)
            s->line[s->nlines][i * w + j] = 1;
        s->line[s->nlines++][i * w + s->nc] = -1;
    }
    for (int j = 0; j <= s->nc; j++) {
        for (int i = 0; i < s->nr; i++)
            s->line[s->nlines][i * w + j] = 1;
        s->line[s->nlines++][s->nr * w + j] = -1;
    }
}

/* Bounds propagation: each line's sum is zero, so every unknown lies
 * within what the others' bounds leave it; a bound pair that meets sets
 * the value.  0 on a contradiction. */
static int
solver_propagate(struct solver *s, long long *lo, long long *hi)
{
    int changed = 1, ne = (s->nr + 1) * s->w;

    while (changed) {
        changed = 0;
        for (int l = 0; l < s->nlines; l++) {
            long long smin = 0, smax = 0;
            for (int e = 0; e < ne; e++) {
                int c = s->line[l][e];
                if (c > 0) {
                    smin += lo[e];
                    smax += hi[e];
                } else if (c < 0) {
                    smin -= hi[e];
                    smax -= lo[e];
                }
            }
            if (smin > 0 || smax < 0) return 0;
            for (int e = 0; e < ne; e++) {
                int c = s->line[l][e];
                long long rmin, rmax, nlo, nhi;
                if (c == 0 || lo[e] == hi[e]) continue;
                /* the others' sum lies in [rmin, rmax]; c*x = -others */
                rmin = smin - (c > 0 ? lo[e] : -hi[e]);
                rmax = smax - (c > 0 ? hi[e] : -lo[e]);
                nlo = c > 0 ? -rmax : rmin;
                nhi = c > 0 ? -rmin : rmax;
                if (nlo > lo[e] || nhi < hi[e]) {
                    if (nlo > lo[e]) lo[e] = nlo;
                    if (nhi < hi[e]) hi[e] = nhi;
                    if (lo[e] > hi[e]) return 0;
                    changed = 1;
                    break; /* sums changed: recompute this line */
                }
            }
        }
    }
    return 1;
}

/* Is there a table consistent with what is shown within lo..hi?  Depth
 * first, the unknown with the fewest values first, values nearest the
 * true one first. */
static int
solver_dfs(struct solver *s, const long long *lo0, const long long *hi0)
{
    long long lo[MAXE], hi[MAXE];
    int ne = (s->nr + 1) * s->w, pick = -1;

    if (++s->nodes > BUDGET) return 0;
    memcpy(lo, lo0, sizeof(lo));
    memcpy(hi, hi0, sizeof(hi));
    if (!solver_propagate(s, lo, hi)) return 0;
    for (int e = 0; e < ne; e++)
        if (lo[e] < hi[e] && (pick < 0 || hi[e] - lo[e] < hi[pick] - lo[pick]))
            pick = e;
    if (pick < 0) return 1;
    for (long long d = 0;; d++) {
        long long a = s->n[pick] - d, b = s->n[pick] + d;
        long long l = lo[pick], h = hi[pick];
        if (a < l && b > h) break;
        if (a >= l && a <= h) {
            lo[pick] = hi[pick] = a;
            if (solver_dfs(s, lo, hi)) return 1;
        }
        if (d > 0 && b >= l && b <= h) {
            lo[pick] = hi[pick] = b;
            if (solver_dfs(s, lo, hi)) return 1;
        }
        lo[pick] = l;
        hi[pick] = h;
    }
    return 0;
}

/* Solve: 1 when every hidden entry can take another value than its true
 * one in some table consistent with what is shown, 0 when some entry is
 * pinned (to *pinned), -1 when the budget ran out. */
static int
solver_run_at(struct solver *s, int *pinned)
{
    int ne = (s->nr + 1) * s->w;
    long long bound;

    /* No entry exceeds the grand total; when that is hidden, twice the
     * true total is a bound wide enough to see a second value. */
    bound = s->n[s->nr * s->w + s->nc] * 2 + s->k;
    solver_lines(s);
    for (int e = 0; e < ne; e++) {
        if (s->mark[e] == CON_SUPP_SHOWN)
            s->lo[e] = s->hi[e] = s->n[e];
        else {
            s->lo[e] = s->mark[e] == CON_SUPP_PRIMARY ? 1 : s->k;
            s->hi[e] = s->mark[e] == CON_SUPP_PRIMARY ? s->k - 1 : bound;
        }
    }
    s->nodes = 0;
    for (int e = 0; e < ne; e++) {
        int found = 0;
        if (s->mark[e] == CON_SUPP_SHOWN) continue;
        for (int d = -1; d <= 1 && !found; d += 2) {
            long long lo[MAXE], hi[MAXE], v = s->n[e] + d;
            if (v < s->lo[e] || v > s->hi[e]) continue;
            memcpy(lo, s->lo, sizeof(lo));
            memcpy(hi, s->hi, sizeof(hi));
            lo[e] = hi[e] = v;
            found = solver_dfs(s, lo, hi);
        }
        if (s->nodes > BUDGET) return -1;
        if (!found) {
            if (pinned) *pinned = e;
            return 0;
        }
    }
    return 1;
}

static int
solver_run(struct solver *s)
{
    return solver_run_at(s, NULL);
}

static void
table_fill(struct solver *s, int nr, int nc, const long long *cells, int k)
{
    int w = nc + 1;

    memset(s, 0, sizeof(*s));
    s->nr = nr;
    s->nc = nc;
    s->w = w;
    s->k = k;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nc; j++) {
            long long v = cells[i * nc + j];
            s->n[i * w + j] = v;
            s->n[i * w + nc] += v;
            s->n[nr * w + j] += v;
            s->n[nr * w + nc] += v;
        }
}

static void
check_published(const struct solver *s)
{
    int w = s->w;

    /* every count 1..k-1 hidden, as a primary */
    for (int e = 0; e < (s->nr + 1) * w; e++)
        if (s->n[e] >= 1 && s->n[e] < s->k)
            assert_int_equal(s->mark[e], CON_SUPP_PRIMARY);
        else if (s->n[e] == 0)
            assert_int_equal(s->mark[e], CON_SUPP_SHOWN);
    /* a line shown in full adds up to its shown total */
    for (int i = 0; i <= s->nr; i++) {
        long long sum = 0;
        int full = s->mark[i * w + s->nc] == CON_SUPP_SHOWN;
        for (int j = 0; j < s->nc; j++) {
            full = full && s->mark[i * w + j] == CON_SUPP_SHOWN;
            sum += s->n[i * w + j];
        }
        if (full) assert_int_equal(sum, s->n[i * w + s->nc]);
    }
}

static void
test_random_tables(void **state)
{
    struct solver *s = malloc(sizeof(*s));
    int tables = 0, hidden_tables = 0, refused = 0;

    (void)state;
    assert_non_null(s);
    for (int t = 0; t < 20000; t++) {
        int nr = rnd(4) == 0 ? 1 : 1 + (int)rnd(3);
        int nc = 1 + (int)rnd(nr == 1 ? 4 : 3);
        int k = rnd(5) == 0 ? 3 : 5;
        long long cells[MAXR * MAXC];
        int rc, any = 0;

        for (int c = 0; c < nr * nc; c++) {
            unsigned p = rnd(100);
            cells[c] = p < 35   ? 1 + rnd((unsigned)k - 1)
                       : p < 50 ? 0
                       : p < 85 ? k + rnd(15)
                                : k + rnd(200);
        }
        table_fill(s, nr, nc, cells, k);
        rc = con_supp_apply(nr, nc, s->n, k, s->mark);
        assert_true(rc == 0 || rc == 1);
        check_published(s);
        for (int e = 0; e < (nr + 1) * (nc + 1); e++)
            any |= s->mark[e] != CON_SUPP_SHOWN;
        tables++;
        if (!any) continue;
        hidden_tables++;
        if (rc == 1) {
            refused++; /* refused: nothing published */
            continue;
        }
        assert_int_equal(con_supp_pinned(nr, nc, s->n, k, s->mark), -1);
        rc = solver_run(s);
        if (rc != 1) {
            fprintf(stderr, "table %d (%dx%d k=%d) %s:\n", t, nr, nc, k,
                    rc == 0 ? "a hidden entry is pinned" : "budget");
            for (int i = 0; i <= nr; i++) {
                for (int j = 0; j <= nc; j++)
                    fprintf(stderr, " %4lld%c", s->n[i * (nc + 1) + j],
                            " *x"[s->mark[i * (nc + 1) + j]]);
                fprintf(stderr, "\n");
            }
        }
        assert_int_equal(rc, 1);
    }
    fprintf(stderr,
            "suppression: %d tables, %d with hidden entries, %d refused\n",
            tables, hidden_tables, refused);
    assert_true(hidden_tables > 10000);
    assert_true(refused < tables / 100);
    free(s);
}

/* The solver can fail: a row with one primary and a shown total. */
static void
test_solver_pins_primary_only(void **state)
{
    struct solver s;
    long long cells[] = {3, 20, 30, 40, 50, 60};

    (void)state;
    table_fill(&s, 2, 3, cells, 5);
    s.mark[0] = CON_SUPP_PRIMARY;
    assert_int_equal(solver_run(&s), 0);
    assert_int_not_equal(con_supp_pinned(2, 3, s.n, 5, s.mark), -1);
}

/* Two 2x2 blocks of primaries joined by one cell: every line has two
 * hidden cells, yet the joining cell is a bridge; both checks see it, and
 * con_supp_apply() hides more until it is not. */
static void
test_bridge(void **state)
{
    struct solver s;
    long long cells[] = {
        2,  3,  2,  50, 60, /* */
        4,  1,  70, 80, 90, /* */
        40, 50, 60, 2,  3,  /* */
        70, 80, 90, 4,  1,  /* */
    };
    long long c4[4 * 4];
    int w;

    (void)state;
    /* 4 x 5 does not fit MAXC; use the 4 x 4 core of the same shape */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            c4[i * 4 + j] = cells[i * 5 + j + (j >= 2 ? 1 : 0)];
    c4[0 * 4 + 2] = 2; /* the bridge: row 0 to column 2 */
    table_fill(&s, 4, 4, c4, 5);
    w = s.w;
    memset(s.mark, 0, sizeof(s.mark));
    for (int e = 0; e < 5 * w; e++)
        if (s.n[e] >= 1 && s.n[e] < 5) s.mark[e] = CON_SUPP_PRIMARY;
    assert_int_equal(solver_run(&s), 0);
    assert_int_not_equal(con_supp_pinned(4, 4, s.n, 5, s.mark), -1);
    assert_int_equal(con_supp_apply(4, 4, s.n, 5, s.mark), 0);
    assert_int_equal(con_supp_pinned(4, 4, s.n, 5, s.mark), -1);
    assert_int_equal(solver_run(&s), 1);
}

/* One-way: one small cell takes a second with it; the total stays shown
 * when it is k or more. */
static void
test_one_way(void **state)
{
    struct solver s;
    long long cells[] = {12, 3, 40, 7, 0};

    (void)state;
    table_fill(&s, 1, 5, cells, 5);
    assert_int_equal(con_supp_apply(1, 5, s.n, 5, s.mark), 0);
    assert_int_equal(s.mark[1], CON_SUPP_PRIMARY);
    assert_int_equal(s.mark[3], CON_SUPP_COMPL); /* 7: the smallest other */
    assert_int_equal(s.mark[0], CON_SUPP_SHOWN);
    assert_int_equal(s.mark[4], CON_SUPP_SHOWN); /* a zero stays 0 */
    assert_int_equal(s.mark[5], CON_SUPP_SHOWN); /* the total, 62 */
    assert_int_equal(solver_run(&s), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_solver_pins_primary_only),
        cmocka_unit_test(test_bridge),
        cmocka_unit_test(test_one_way),
        cmocka_unit_test(test_random_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
