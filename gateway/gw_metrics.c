/*
 * gw_metrics.c -- counters, gauges and histograms for GET /metrics.
 *
 * The metric and label tables come from gw_metrics.def (X-macros), so a
 * metric is added in one line and its name can be checked by grep.  Every
 * label has a closed set of values, which makes the number of series fixed:
 * all values live in one array of 64-bit slots laid out once at start-up.
 * The daemon maps that array shared before it forks its workers and every
 * update is a relaxed atomic add, so counts from all workers add up in
 * place and whichever worker answers /metrics sees them all, with no locks
 * and no messages between processes.
 *
 * A histogram keeps one slot per bucket (not cumulative; the exposition
 * adds them up), a count and the sum in microseconds.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gateway/gw.h"
#include "gateway/gw_assert.h"

enum gw_label_id {
#define GW_LABEL(id, name, values) GW_L_##id,
#include "gateway/gw_metrics.def"
    GW_L__COUNT
};

enum gw_mtype { GW_MT_COUNTER, GW_MT_GAUGE, GW_MT_HISTOGRAM };

static const struct {
    const char *name;
    const char *values;
} gw_label_defs[] = {
#define GW_LABEL(id, name, values) {name, values},
#include "gateway/gw_metrics.def"
};

static const struct {
    const char *name;
    const char *help;
    enum gw_mtype type;
    enum gw_label_id l1, l2;
} gw_metric_defs[] = {
#define GW_METRIC(id, type, name, l1, l2, help)                                \
    {name, help, GW_MT_##type, GW_L_##l1, GW_L_##l2},
#include "gateway/gw_metrics.def"
};

/* Upper bounds of the histogram buckets, in seconds (+Inf is implied). */
static const double gw_buckets[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define GW_NBUCKETS (sizeof(gw_buckets) / sizeof(gw_buckets[0]))
#define GW_HSLOTS   (GW_NBUCKETS + 2) /* buckets, +Inf, then sum in us */

#define GW_LABEL_VALUES_MAX 32

struct gw_label_values {
    size_t n;
    const char *v[GW_LABEL_VALUES_MAX];
    size_t len[GW_LABEL_VALUES_MAX];
    int other; /* index of "other", or -1 */
};

static struct gw_label_values gw_lv[GW_L__COUNT];
static size_t gw_offset[GW_M__COUNT];
static size_t gw_nslots;
static _Atomic int64_t *gw_slots;

/* Split the label sets and lay out the slots. */
static void
gw_metrics_layout(void)
{
    for (size_t l = 0; l < GW_L__COUNT; l++) {
        struct gw_label_values *lv = &gw_lv[l];
        const char *s = gw_label_defs[l].values;
        lv->n = 0;
        lv->other = -1;
        if (l == GW_L_NONE) {
            lv->n = 1;
            lv->v[0] = "";
            lv->len[0] = 0;
            continue;
        }
        while (*s) {
            const char *bar = strchr(s, '|');
            size_t n = bar ? (size_t)(bar - s) : strlen(s);
            AN(lv->n < GW_LABEL_VALUES_MAX);
            if (n == 5 && memcmp(s, "other", 5) == 0) lv->other = (int)lv->n;
            lv->v[lv->n] = s;
            lv->len[lv->n] = n;
            lv->n++;
            s += n + (bar != NULL);
        }
        AN(lv->n > 0);
    }
    gw_nslots = 0;
    for (size_t m = 0; m < GW_M__COUNT; m++) {
        size_t series =
            gw_lv[gw_metric_defs[m].l1].n * gw_lv[gw_metric_defs[m].l2].n;
        if (gw_metric_defs[m].type == GW_MT_HISTOGRAM)
            AN(gw_metric_defs[m].l2 == GW_L_NONE);
        gw_offset[m] = gw_nslots;
        gw_nslots +=
            series *
            (gw_metric_defs[m].type == GW_MT_HISTOGRAM ? GW_HSLOTS : 1);
    }
}

int
gw_metrics_init(int shared)
{
    size_t size;
    void *p;

    if (gw_slots != NULL) return GW_OK;
    gw_metrics_layout();
    size = gw_nslots * sizeof(*gw_slots);
    if (shared) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
        if (p == MAP_FAILED) return GW_ENOMEM;
    } else {
        p = calloc(gw_nslots, sizeof(*gw_slots));
        if (p == NULL) return GW_ENOMEM;
    }
    gw_slots = p;
    for (size_t i = 0; i < gw_nslots; i++)
        atomic_init(&gw_slots[i], 0);
    return GW_OK;
}

static int
gw_metrics_ready(void)
{
    return gw_slots != NULL || gw_metrics_init(0) == GW_OK;
}

/* Index of value v in label l.  Values outside the set are "other", or a
 * programming error when the set has no "other". */
static size_t
gw_label_index(enum gw_label_id l, const char *v)
{
    const struct gw_label_values *lv = &gw_lv[l];
    size_t n;

    if (l == GW_L_NONE) return 0;
    AN(v);
    n = strlen(v);
    for (size_t i = 0; i < lv->n; i++)
        if (lv->len[i] == n && memcmp(lv->v[i], v, n) == 0) return i;
    if (lv->other < 0) WRONG("metric label value outside its set");
    return (size_t)lv->other;
}

static size_t
gw_series(enum gw_metric m, const char *l1, const char *l2)
{
    size_t i1, i2;
    AN((unsigned)m < GW_M__COUNT);
    i1 = gw_label_index(gw_metric_defs[m].l1, l1);
    i2 = gw_label_index(gw_metric_defs[m].l2, l2);
    return i1 * gw_lv[gw_metric_defs[m].l2].n + i2;
}

void
gw_metric_add(enum gw_metric m, const char *l1, const char *l2, int64_t v)
{
    size_t s;
    if (!gw_metrics_ready()) return;
    AN(gw_metric_defs[m].type != GW_MT_HISTOGRAM);
    s = gw_series(m, l1, l2);
    atomic_fetch_add_explicit(&gw_slots[gw_offset[m] + s], v,
                              memory_order_relaxed);
}

void
gw_metric_inc(enum gw_metric m, const char *l1, const char *l2)
{
    gw_metric_add(m, l1, l2, 1);
}

void
gw_metric_observe(enum gw_metric m, const char *l1, double v)
{
    _Atomic int64_t *h;
    size_t b;

    if (!gw_metrics_ready()) return;
    AN(gw_metric_defs[m].type == GW_MT_HISTOGRAM);
    h = &gw_slots[gw_offset[m] + gw_series(m, l1, NULL) * GW_HSLOTS];
    if (!(v >= 0)) /* negative or NaN */
        v = 0;
    for (b = 0; b < GW_NBUCKETS && v > gw_buckets[b]; b++)
        ;
    atomic_fetch_add_explicit(&h[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h[GW_NBUCKETS + 1], (int64_t)(v * 1e6 + 0.5),
                              memory_order_relaxed);
}

int64_t
gw_metric_get(enum gw_metric m, const char *l1, const char *l2)
{
    if (!gw_metrics_ready()) return 0;
    AN(gw_metric_defs[m].type != GW_MT_HISTOGRAM);
    return atomic_load_explicit(&gw_slots[gw_offset[m] + gw_series(m, l1, l2)],
                                memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * Exposition
 */

struct gw_sbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void __attribute__((format(printf, 2, 3)))
gw_sbuf_printf(struct gw_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed) return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

/* "{a="x",b="y"" without the closing brace (empty when no labels). */
static void
gw_labels_fmt(char *out, size_t cap, enum gw_metric m, size_t series)
{
    enum gw_label_id l1 = gw_metric_defs[m].l1, l2 = gw_metric_defs[m].l2;
    size_t n2 = gw_lv[l2].n, i1 = series / n2, i2 = series % n2;
    int o = 0;

    out[0] = '\0';
    if (l1 == GW_L_NONE) return;
    o = snprintf(out, cap, "{%s=\"%.*s\"", gw_label_defs[l1].name,
                 (int)gw_lv[l1].len[i1], gw_lv[l1].v[i1]);
    if (l2 != GW_L_NONE && o > 0 && (size_t)o < cap)
        snprintf(out + o, cap - (size_t)o, ",%s=\"%.*s\"",
                 gw_label_defs[l2].name, (int)gw_lv[l2].len[i2],
                 gw_lv[l2].v[i2]);
}

static void
gw_render_one(struct gw_sbuf *b, enum gw_metric m)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    enum gw_mtype type = gw_metric_defs[m].type;
    const char *name = gw_metric_defs[m].name;
    size_t nseries =
        gw_lv[gw_metric_defs[m].l1].n * gw_lv[gw_metric_defs[m].l2].n;
    /* Small closed sets are shown whole; products and labelled
     * histograms only where something happened. */
    int sparse = gw_metric_defs[m].l2 != GW_L_NONE ||
                 (type == GW_MT_HISTOGRAM && gw_metric_defs[m].l1 != GW_L_NONE);
    char lab[160];

    gw_sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name,
                   gw_metric_defs[m].help, name, types[type]);
    for (size_t s = 0; s < nseries; s++) {
        gw_labels_fmt(lab, sizeof(lab), m, s);
        if (type != GW_MT_HISTOGRAM) {
            int64_t v = atomic_load_explicit(&gw_slots[gw_offset[m] + s],
                                             memory_order_relaxed);
            int is_other = gw_metric_defs[m].l1 != GW_L_NONE &&
                           (int)(s / gw_lv[gw_metric_defs[m].l2].n) ==
                               gw_lv[gw_metric_defs[m].l1].other;
            if (v == 0 && (sparse || is_other)) continue;
            gw_sbuf_printf(b, "%s%s%s %lld\n", name, lab, lab[0] ? "}" : "",
                           (long long)v);
            continue;
        }
        _Atomic int64_t *h = &gw_slots[gw_offset[m] + s * GW_HSLOTS];
        int64_t cum = 0, count = 0, sum;
        for (size_t k = 0; k <= GW_NBUCKETS; k++)
            count += atomic_load_explicit(&h[k], memory_order_relaxed);
        if (count == 0 && sparse) continue;
        for (size_t k = 0; k < GW_NBUCKETS; k++) {
            cum += atomic_load_explicit(&h[k], memory_order_relaxed);
            gw_sbuf_printf(b, "%s_bucket%s%sle=\"%g\"} %lld\n", name,
                           lab[0] ? lab : "{", lab[0] ? "," : "", gw_buckets[k],
                           (long long)cum);
        }
        gw_sbuf_printf(b, "%s_bucket%s%sle=\"+Inf\"} %lld\n", name,
                       lab[0] ? lab : "{", lab[0] ? "," : "", (long long)count);
        sum = atomic_load_explicit(&h[GW_NBUCKETS + 1], memory_order_relaxed);
        gw_sbuf_printf(b, "%s_sum%s%s %lld.%06lld\n", name, lab,
                       lab[0] ? "}" : "", (long long)(sum / 1000000),
                       (long long)(sum % 1000000));
        gw_sbuf_printf(b, "%s_count%s%s %lld\n", name, lab, lab[0] ? "}" : "",
                       (long long)count);
    }
}

char *
gw_metrics_render(size_t *len)
{
    struct gw_sbuf b = {NULL, 0, 0, 0};

    if (!gw_metrics_ready()) return NULL;
    b.cap = 8192;
    b.p = malloc(b.cap);
    if (b.p == NULL) return NULL;
    b.p[0] = '\0';
    for (size_t m = 0; m < GW_M__COUNT; m++)
        gw_render_one(&b, (enum gw_metric)m);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    if (len != NULL) *len = b.len;
    return b.p;
}
