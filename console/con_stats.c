/*
 * con_stats.c -- GET /api/stats: counts of returnees by one or two
 * dimensions, with small cells hidden where the caller may not see them.
 *
 * The counts come from remigate_stats() (migration 011), which runs as
 * the tables' owner and returns grouped counts only, with every margin.
 * Analysts always get the table suppressed (con_supp.c: counts 1..k-1 as
 * "<k", complementary cells as "x" -- a count of k or more hidden so that
 * no "<k" can be worked out from the totals); officers (their districts)
 * and admins see the true counts on screen, and ask for the suppressed
 * table with suppress=1 (every download does).  A suppressed table whose
 * filter matches 1..k-1 people is refused (422 too_few), as is one whose
 * cells could not be protected.
 *
 * Parameters: dims (one or two of CON_STATS_DIMS, comma-separated),
 * status (all | pending | needs_info | verified | rejected), district (a
 * code of the lists), sex (m | f | x), from and to (YYYY-MM-DD, Dhaka
 * days, both inclusive), suppress (0 | 1).  Anything else is 400.
 *
 * These reads go to the standby of postgres.read_dsn when there is one
 * (con_read_tx_or_503), and every reply says how far behind it is
 * ("lag_s"; null when read from the primary).  An export's audit row
 * is written on the primary, after the rows were read.
 *
 * The on-screen answers (not the exports) go through the worker's cache
 * (con_cache.c, console.stats_cache_ms): the checked parameters, k and
 * the suppression make the key with the caller's scope; a hit's "lag_s"
 * grows with its age.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "console/con_int.h"

#define CON_STATS_DIMS                                                         \
    "district", "division", "sex", "age_band", "education", "country",         \
        "skill", "reason", "need", "return_year", "channel", "status", "week"

static const char *const stats_dims[] = {CON_STATS_DIMS};
#define STATS_NDIMS      (sizeof(stats_dims) / sizeof(stats_dims[0]))
#define STATS_VALUE_MAX  64
#define STATS_LINE_MAX   400 /* values of one dimension */
#define STATS_CSV        1
#define STATS_SDMX       2    /* GET /api/indicators/skills_supply.csv */
#define STATS_SDMX_JSON  3    /* GET /api/indicators/skills_supply.json */
#define STATS_SUPP_CELLS 4000 /* cells of a table suppressed at most */

static const char stats_sql[] =
    "SELECT g, v1, v2, n, persons FROM remigate_stats($1, $2, $3, $4, $5,"
    " $6::date, $7::date, $8::int)";

struct stats_q {
    char dim1[16], dim2[16];
    int suppress, k;
    char k_text[8];
    int export; /* STATS_CSV: /api/export.csv?kind=aggregate, STATS_SDMX */
    const char *status, *district, *sex, *from, *to;
    struct con_buf csv;
    char *detail;    /* the audit row's detail */
    char *cache_key; /* con_cache.c: the on-screen answers only */
};

/* The values of one dimension, in the order the query gave them. */
struct stats_axis {
    int n;
    char (*v)[STATS_VALUE_MAX];
};

static int
stats_axis_index(struct stats_axis *a, const char *v, int add)
{
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->v[i], v) == 0) return i;
    if (!add || a->n >= STATS_LINE_MAX) return -1;
    snprintf(a->v[a->n], STATS_VALUE_MAX, "%s", v);
    return a->n++;
}

/* A count as JSON: the number, or "<k" / "x" when hidden. */
static json_t *
stats_n(const struct stats_q *q, long long n, unsigned char mark)
{
    char lt[16];

    if (mark == CON_SUPP_PRIMARY) {
        snprintf(lt, sizeof(lt), "<%d", q->k);
        return json_string(lt);
    }
    if (mark == CON_SUPP_COMPL) return json_string("x");
    return json_integer(n);
}

/* Build the reply from the query's rows: the table, suppressed when
 * asked.  NULL with *why set (a literal) when it cannot be published. */
static json_t *
stats_table(const struct stats_q *q, const struct store_tx_result *res,
            const char **why)
{
    struct stats_axis rows = {0, NULL}, cols = {0, NULL};
    long long *n = NULL, persons = 0;
    unsigned char *mark = NULL;
    json_t *out = NULL, *cells, *totals;
    int nt = store_tx_ntuples(res, CON_READ_ROWS), two = q->dim2[0] != '\0', w,
        nr, nc;

    *why = "out_of_memory";
    rows.v = calloc(STATS_LINE_MAX, sizeof(*rows.v));
    cols.v = calloc(STATS_LINE_MAX, sizeof(*cols.v));
    if (rows.v == NULL || cols.v == NULL) goto done;
    /* the axes: every value with a total (g 1: a row's, g 2: a column's) */
    for (int i = 0; i < nt; i++) {
        int g = atoi(store_tx_value(res, CON_READ_ROWS, i, 0));
        if ((g == 1 &&
             stats_axis_index(&rows, store_tx_value(res, CON_READ_ROWS, i, 1),
                              1) < 0) ||
            (g == 2 && two &&
             stats_axis_index(&cols, store_tx_value(res, CON_READ_ROWS, i, 2),
                              1) < 0)) {
            *why = "too_many_values";
            goto done;
        }
        if (g == 3)
            persons =
                strtoll(store_tx_value(res, CON_READ_ROWS, i, 4), NULL, 10);
    }
    /* one-way: one row whose columns are the values */
    if (!two) {
        free(cols.v);
        cols = rows;
        rows = (struct stats_axis){0, NULL};
        rows.v = calloc(1, sizeof(*rows.v));
        if (rows.v == NULL) goto done;
        rows.n = 1;
    }
    nr = rows.n;
    nc = cols.n;
    if (nc == 0) { /* nobody matches */
        out = json_pack("{s:[],s:i}", "cells", "total", 0);
        goto done;
    }
    w = nc + 1;
    n = calloc((size_t)(nr + 1) * (size_t)w, sizeof(*n));
    mark = calloc((size_t)(nr + 1) * (size_t)w, 1);
    if (n == NULL || mark == NULL) goto done;
    for (int i = 0; i < nt; i++) {
        int g = atoi(store_tx_value(res, CON_READ_ROWS, i, 0)), r = nr, c = nc;
        const char *a = store_tx_value(res, CON_READ_ROWS, i, 1);
        const char *b = store_tx_value(res, CON_READ_ROWS, i, 2);
        long long v =
            strtoll(store_tx_value(res, CON_READ_ROWS, i, 3), NULL, 10);
        if (two) {
            if (g == 0 || g == 1) r = stats_axis_index(&rows, a, 0);
            if (g == 0 || g == 2) c = stats_axis_index(&cols, b, 0);
        } else {
            if (g == 2) continue; /* the constant second "dimension" */
            r = 0;
            if (g == 0 || g == 1) c = stats_axis_index(&cols, a, 0);
            if (g == 3) c = nc;
        }
        CON_AN(r >= 0 && c >= 0);
        n[r * w + c] = v;
        if (!two) n[nr * w + c] = v; /* the column totals repeat the cells */
    }
    if (q->suppress) {
        /* suppression runs on the event loop: about 20 ms at 64 x 60,
         * 220 ms at 200 x 60 (see con_supp.c); larger tables are refused */
        if (nr * nc > STATS_SUPP_CELLS) {
            *why = "too_large";
            goto done;
        }
        if (persons >= 1 && persons < q->k) {
            *why = "too_few";
            goto done;
        }
        switch (con_supp_apply(nr, nc, n, q->k, mark)) {
        case 0:
            break;
        case 1:
            *why = "unprotectable";
            goto done;
        default:
            goto done;
        }
    }
    cells = json_array();
    totals = json_array();
    for (int r = 0; r <= nr; r++)
        for (int c = 0; c <= nc; c++) {
            json_t *o;
            int e = r * w + c;
            if (!two && r == nr) continue;
            if (r == nr && c == nc) continue;
            if (n[e] == 0 && (r < nr && c < nc)) continue;
            o = json_object();
            if (two) {
                if (r < nr)
                    json_object_set_new(o, q->dim1, json_string(rows.v[r]));
                if (c < nc)
                    json_object_set_new(o, q->dim2, json_string(cols.v[c]));
            } else if (c < nc) {
                json_object_set_new(o, q->dim1, json_string(cols.v[c]));
            } else {
                json_decref(o);
                continue; /* the one row's total is the grand total */
            }
            json_object_set_new(o, "n", stats_n(q, n[e], mark[e]));
            json_array_append_new(r < nr && c < nc ? cells : totals, o);
        }
    out = json_pack("{s:o,s:o,s:o}", "cells", cells, "totals", totals, "total",
                    stats_n(q, n[nr * w + nc], mark[nr * w + nc]));
done:
    free(rows.v);
    free(cols.v);
    free(n);
    free(mark);
    return out;
}

/* ------------------------------------------------------------------------
 * The aggregate CSV: the suppressed table, one line per cell then per
 * total, each dimension as its code and its Bangla and English labels.
 */

static int
stats_csv_line(struct con_buf *b, const struct stats_q *q, const json_t *lists,
               const json_t *o)
{
    const char *dims[2] = {q->dim1, q->dim2[0] ? q->dim2 : NULL};
    const json_t *n = json_object_get(o, "n");
    char num[24];
    int rc = 0;

    for (int d = 0; d < 2 && dims[d]; d++) {
        const json_t *v = json_object_get(o, dims[d]);
        const char *code = v ? json_string_value(v) : "total", *en, *bn;
        con_stats_label(lists, dims[d], code, &en, &bn);
        rc |= con_csv_field(b, code) | con_buf_add(b, ",", 1);
        rc |= con_csv_field(b, bn) | con_buf_add(b, ",", 1);
        rc |= con_csv_field(b, en) | con_buf_add(b, ",", 1);
    }
    if (json_is_string(n))
        rc |= con_csv_field(b, json_string_value(n));
    else {
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(n));
        rc |= con_csv_field(b, num);
    }
    return rc | con_buf_add(b, "\r\n", 2);
}

static void
stats_export_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct stats_q *q = call->data;
    char disp[160], *csv;

    if (status != 0) {
        free(q->csv.p);
        free(q->detail);
        con_reply_store_error(call, status, res);
        return;
    }
    if (q->export == STATS_SDMX)
        snprintf(disp, sizeof(disp),
                 "attachment; filename=\"remigate_sdmx_skills_supply.csv\"");
    else if (q->export == STATS_SDMX_JSON)
        snprintf(disp, sizeof(disp),
                 "attachment; filename=\"remigate_json_skills_supply.json\"");
    else
        snprintf(disp, sizeof(disp),
                 "attachment; filename=\"remigate_aggregate_%s%s%s_%s.csv\"",
                 q->dim1, q->dim2[0] ? "-" : "", q->dim2,
                 q->status ? q->status : "all");
    gw_req_header_add(call->req, "Content-Disposition", disp);
    gw_req_header_add(call->req, "Cache-Control", "no-store");
    /* the reply frees the request and q with it: keep what q holds */
    csv = q->csv.p;
    free(q->detail);
    gw_reply(call->req, 200,
             q->export == STATS_SDMX_JSON ? "application/json"
                                          : "text/csv; charset=utf-8",
             csv, q->csv.len);
    free(csv);
}

/* The table as SDMX-CSV 2.0 (the exchange format of statistical offices,
 * e.g. ILOSTAT): one observation per line of the dataflow
 * BD_REMIGATE:DF_SKILLS_SUPPLY(1.0), dimensions REF_AREA (ISO 3166-2:BD
 * district, "BD" for the country) and SKILL (the skills list's code, "_T"
 * for all), OBS_VALUE the number of verified returnees (mentions), and
 * OBS_STATUS "A" (normal) or "C" (confidential: value left empty). */
static int
stats_sdmx(struct con_buf *b, const json_t *t, int *rows)
{
    static const char head[] = "STRUCTURE,STRUCTURE_ID,ACTION,REF_AREA,SKILL,"
                               "OBS_VALUE,OBS_STATUS\r\n";
    static const char flow[] = "dataflow,BD_REMIGATE:DF_SKILLS_SUPPLY(1.0),I,";
    const json_t *lists[3] = {json_object_get(t, "cells"),
                              json_object_get(t, "totals"), NULL};
    json_t *grand = json_pack("[{s:O}]", "n", json_object_get(t, "total"));
    int rc = con_buf_add(b, head, sizeof(head) - 1);
    size_t i;
    json_t *o;

    lists[2] = grand;
    for (int l = 0; l < 3; l++)
        json_array_foreach(lists[l], i, o)
        {
            const json_t *d = json_object_get(o, "district");
            const json_t *k = json_object_get(o, "skill");
            const json_t *n = json_object_get(o, "n");
            char num[24] = "";
            rc |= con_buf_add(b, flow, sizeof(flow) - 1);
            rc |= con_csv_field(b, d ? json_string_value(d) : "BD");
            rc |= con_buf_add(b, ",", 1);
            rc |= con_csv_field(b, k ? json_string_value(k) : "_T");
            if (json_is_integer(n))
                snprintf(num, sizeof(num), ",%lld,A\r\n",
                         (long long)json_integer_value(n));
            else
                snprintf(num, sizeof(num), ",,C\r\n");
            rc |= con_buf_add(b, num, strlen(num));
            (*rows)++;
        }
    json_decref(grand);
    return rc;
}

/* The same observations as stats_sdmx() writes, as con_indic_json(). */
static int
stats_sdmx_json(struct con_buf *b, const json_t *t, const json_t *lists, int k,
                int *rows)
{
    const json_t *parts[2] = {json_object_get(t, "cells"),
                              json_object_get(t, "totals")};
    size_t n = json_array_size(parts[0]) + json_array_size(parts[1]) + 1, i;
    struct con_obs *o = calloc(n, sizeof(*o));
    const json_t *grand = json_object_get(t, "total"), *x;
    int no = 0, rc;

    if (o == NULL) return -1;
    for (int l = 0; l < 2; l++)
        json_array_foreach(parts[l], i, x)
        {
            const json_t *d = json_object_get(x, "district");
            const json_t *s = json_object_get(x, "skill");
            const json_t *v = json_object_get(x, "n");
            o[no].v[0] = d ? json_string_value(d) : "BD";
            o[no].v[1] = s ? json_string_value(s) : "_T";
            o[no].conf = !json_is_integer(v);
            o[no].n = json_is_integer(v) ? json_integer_value(v) : 0;
            no++;
        }
    o[no].v[0] = "BD";
    o[no].v[1] = "_T";
    o[no].conf = !json_is_integer(grand);
    o[no].n = json_is_integer(grand) ? json_integer_value(grand) : 0;
    no++;
    rc = con_indic_json(b, con_indic_skills, o, no, lists, k);
    free(o);
    *rows = no;
    return rc;
}

/* Write the CSV of t (taken), audit it with its filter, row count and
 * SHA-256, and answer once the audit row is committed. */
static void
stats_export(struct con_call *call, struct stats_q *q, json_t *t)
{
    const json_t *lists = con_lists(gw_req_server(call->req));
    struct con_buf *b = &q->csv;
    unsigned char h[crypto_hash_sha256_BYTES];
    char sha[65];
    json_t *o, *detail;
    size_t i;
    int rc = 0, rows = 0;
    struct store_tx tx;

    if (q->export == STATS_SDMX) {
        rc |= stats_sdmx(b, t, &rows);
        goto hash;
    }
    if (q->export == STATS_SDMX_JSON) {
        rc |= stats_sdmx_json(b, t, lists, q->k, &rows);
        goto hash;
    }
    /* the BOM: spreadsheets read the file as UTF-8 */
    rc |= con_buf_add(b, "\xEF\xBB\xBF", 3);
    for (int d = 0; d < (q->dim2[0] ? 2 : 1); d++) {
        const char *dim = d ? q->dim2 : q->dim1;
        char col[48];
        snprintf(col, sizeof(col), "%s_code,", dim);
        rc |= con_buf_add(b, col, strlen(col));
        snprintf(col, sizeof(col), "%s_label_bn,", dim);
        rc |= con_buf_add(b, col, strlen(col));
        snprintf(col, sizeof(col), "%s_label_en,", dim);
        rc |= con_buf_add(b, col, strlen(col));
    }
    rc |= con_buf_add(b, "n\r\n", 3);
    json_array_foreach(json_object_get(t, "cells"), i, o)
    {
        rc |= stats_csv_line(b, q, lists, o);
        rows++;
    }
    json_array_foreach(json_object_get(t, "totals"), i, o)
    {
        rc |= stats_csv_line(b, q, lists, o);
        rows++;
    }
    o = json_pack("{s:O}", "n", json_object_get(t, "total"));
    rc |= stats_csv_line(b, q, lists, o);
    json_decref(o);
    rows++;
hash:
    json_decref(t);
    if (rc != 0) {
        free(b->p);
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    crypto_hash_sha256(h, (const unsigned char *)b->p, b->len);
    for (int k = 0; k < (int)sizeof(h); k++)
        snprintf(sha + 2 * k, 3, "%02x", h[k]);
    detail = json_pack("{s:s,s:{s:s?,s:s?,s:s?,s:s?,s:s?},s:i,s:i,s:s}", "kind",
                       "aggregate", "filter", "status", q->status, "district",
                       q->district, "sex", q->sex, "from", q->from, "to", q->to,
                       "rows", rows, "k", q->k, "sha256", sha);
    if (detail && q->export == STATS_SDMX)
        json_object_set_new(detail, "kind", json_string("sdmx_skills_supply"));
    if (detail && q->export == STATS_SDMX_JSON)
        json_object_set_new(detail, "kind", json_string("json_skills_supply"));
    if (detail)
        json_object_set_new(detail, "dims",
                            q->dim2[0] ? json_pack("[s,s]", q->dim1, q->dim2)
                                       : json_pack("[s]", q->dim1));
    q->detail = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_decref(detail);
    if (q->detail == NULL) {
        free(b->p);
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    con_tx_init(call, &tx);
    CON_AZ(
        con_audit_add(call, &tx, NULL, "export", "aggregate", "ok", q->detail));
    if (con_tx_or_503(call, &tx, stats_export_done) < 0) {
        free(b->p);
        free(q->detail);
    }
}

int
con_stats_rows_or_4xx(struct con_call *call, int status,
                      const struct store_tx_result *res)
{
    if (status == 0) return 0;
    if (strcmp(store_tx_sqlstate(res), "22023") == 0)
        /* remigate_stats refused: fewer than k people for an analyst */
        con_reply_error(call, 422, "too_few",
                        "fewer people match this filter than can be shown");
    else
        con_reply_store_error(call, status, res);
    return -1;
}

static void
stats_on_rows(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct stats_q *q = call->data;
    const char *why;
    json_t *t, *dims;

    if (con_stats_rows_or_4xx(call, status, res) < 0) return;
    t = stats_table(q, res, &why);
    if (t == NULL) {
        if (strcmp(why, "too_few") == 0)
            con_reply_error(call, 422, "too_few",
                            "fewer people match this filter than can be shown");
        else if (strcmp(why, "out_of_memory") == 0)
            con_reply_error(call, 503, "unavailable", "out of memory");
        else if (strcmp(why, "too_large") == 0)
            con_reply_error(call, 422, why,
                            "this table has too many cells to protect; "
                            "narrow it (a district, a period)");
        else
            con_reply_error(call, 422, why,
                            "this table cannot be shown without exposing "
                            "small counts; narrow it");
        return;
    }
    if (q->export) {
        stats_export(call, q, t);
        return;
    }
    dims = json_pack("[s]", q->dim1);
    if (q->dim2[0]) json_array_append_new(dims, json_string(q->dim2));
    json_object_set_new(t, "dims", dims);
    json_object_set_new(t, "k", json_integer(q->k));
    json_object_set_new(t, "suppressed", json_boolean(q->suppress));
    con_cache_reply_miss(call, q->cache_key, t, res, CON_READ_LAG);
}

int
con_stats_dim_ok(const char *d)
{
    for (size_t i = 0; i < STATS_NDIMS; i++)
        if (strcmp(d, stats_dims[i]) == 0) return 1;
    return 0;
}

const char *
con_param(const struct gw_params *ps, const char *key, size_t max, int *bad)
{
    const struct gw_param *p = gw_params_get(ps, key);

    if (p == NULL || p->vlen == 0) return NULL;
    if (p->vlen > max || strlen(p->val) != p->vlen ||
        gw_params_count(ps, key) > 1) {
        *bad = 1;
        return NULL;
    }
    return p->val;
}

static void
stats_run(struct con_call *call, int export)
{
    static const char *const known[] = {"dims", "status", "district", "sex",
                                        "from", "to",     "suppress", "kind"};
    const size_t nknown = sizeof(known) / sizeof(known[0]);
    struct stats_q *q = gw_req_alloc(call->req, sizeof(*q));
    const struct gw_params *ps;
    const char *dims, *status, *district, *sex, *from, *to, *supp, *comma;
    struct store_tx tx;
    int bad = 0;

    if (q == NULL) {
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    memset(q, 0, sizeof(*q));
    if (gw_req_query_or_400(call->req, &ps) < 0) return;
    for (size_t i = 0; i < ps->n; i++) {
        size_t k = 0;
        while (k < nknown && strcmp(ps->p[i].key, known[k]) != 0)
            k++;
        if (k == nknown) {
            con_reply_error(call, 400, "bad_request",
                            "parameters: dims, status, district, sex, from, "
                            "to, suppress (and kind=aggregate or records "
                            "for a CSV)");
            return;
        }
    }
    dims = con_param(ps, "dims", 31, &bad);
    status = con_param(ps, "status", 16, &bad);
    district = con_param(ps, "district", 16, &bad);
    sex = con_param(ps, "sex", 1, &bad);
    from = con_param(ps, "from", 10, &bad);
    to = con_param(ps, "to", 10, &bad);
    supp = con_param(ps, "suppress", 1, &bad);
    if (export == STATS_SDMX || export == STATS_SDMX_JSON) {
        /* the indicator's cut is fixed: verified returnees by skill x
         * district */
        if (dims || status || gw_params_get(ps, "kind")) bad = 1;
        dims = "district,skill";
        status = "verified";
    } else if (export) {
        const char *kind = con_param(ps, "kind", 16, &bad);
        if (kind == NULL || strcmp(kind, "aggregate") != 0) bad = 1;
    } else if (gw_params_get(ps, "kind"))
        bad = 1;
    if (dims == NULL)
        bad = 1;
    else {
        comma = strchr(dims, ',');
        if (comma == NULL)
            snprintf(q->dim1, sizeof(q->dim1), "%s", dims);
        else if ((size_t)(comma - dims) < sizeof(q->dim1)) {
            memcpy(q->dim1, dims, (size_t)(comma - dims));
            snprintf(q->dim2, sizeof(q->dim2), "%s", comma + 1);
            if (!con_stats_dim_ok(q->dim2) || strcmp(q->dim1, q->dim2) == 0)
                bad = 1;
        } else
            bad = 1;
        if (!con_stats_dim_ok(q->dim1)) bad = 1;
    }
    if (status && strcmp(status, "all") == 0) status = NULL;
    if (status && strcmp(status, "pending") != 0 &&
        strcmp(status, "needs_info") != 0 && strcmp(status, "verified") != 0 &&
        strcmp(status, "rejected") != 0)
        bad = 1;
    if (district && !con_codes_has(call->con->districts, district)) bad = 1;
    if (sex && strcmp(sex, "m") != 0 && strcmp(sex, "f") != 0 &&
        strcmp(sex, "x") != 0)
        bad = 1;
    if ((from && !con_date_ok(from)) || (to && !con_date_ok(to))) bad = 1;
    if (supp && strcmp(supp, "0") != 0 && strcmp(supp, "1") != 0) bad = 1;
    if (bad) {
        con_reply_error(call, 400, "bad_request",
                        "dims is one or two of district, division, sex, "
                        "age_band, education, country, skill, reason, need, "
                        "return_year, channel, status, week; status "
                        "all|pending|needs_info|verified|rejected; district a "
                        "code; sex m|f|x; from/to YYYY-MM-DD; suppress 0|1");
        return;
    }
    q->k = (int)call->con->cfg->stats_k;
    /* downloads are always suppressed */
    q->export = export;
    q->suppress = export || call->who.role_bit == CON_ROLE_ANALYST ||
                  (supp && supp[0] == '1');
    q->status = status;
    q->district = district;
    q->sex = sex;
    q->from = from;
    q->to = to;
    snprintf(q->k_text, sizeof(q->k_text), "%d", q->k);
    call->data = q;
    if (!export) {
        /* the parsed values: the query's order does not split the key */
        const char *key[] = {q->dim1,  q->dim2,   status,
                             district, sex,       from,
                             to,       q->k_text, q->suppress ? "1" : "0"};
        q->cache_key = con_cache_key(call, "stats", key, 9);
        if (con_cache_reply_hit(call, q->cache_key)) return;
    }
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] =
        (struct store_tx_stmt){stats_sql,
                               8,
                               {q->dim1, q->dim2[0] ? q->dim2 : NULL, status,
                                district, sex, from, to, q->k_text}};
    con_read_tx_or_503(call, &tx, stats_on_rows);
}

/* GET /api/stats/decision-days?district=&from=&to=&suppress=: per
 * district, the decisions (verified or rejected) and the median days from
 * registration to them.  Suppressed (analysts, suppress=1): a district with
 * fewer than k decisions shows "<k" and no median. */
static const char days_sql[] =
    "SELECT district, decided, median_days FROM remigate_stats_days($1,"
    " $2::date, $3::date)";

static void
days_on_rows(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct stats_q *q = call->data;
    json_t *items;

    if (status != 0) {
        con_reply_store_error(call, status, res);
        return;
    }
    items = json_array();
    for (int i = 0; i < store_tx_ntuples(res, CON_READ_ROWS); i++) {
        long long n =
            strtoll(store_tx_value(res, CON_READ_ROWS, i, 1), NULL, 10);
        int hide = q->suppress && n < q->k;
        json_array_append_new(
            items,
            json_pack(
                "{s:s,s:o,s:o}", "district",
                store_tx_value(res, CON_READ_ROWS, i, 0), "decided",
                stats_n(q, n, hide ? CON_SUPP_PRIMARY : CON_SUPP_SHOWN),
                "median_days",
                hide ? json_null()
                     : json_real(strtod(
                           store_tx_value(res, CON_READ_ROWS, i, 2), NULL))));
    }
    {
        json_t *o = json_pack("{s:o,s:i,s:b}", "districts", items, "k", q->k,
                              "suppressed", q->suppress);
        con_cache_reply_miss(call, q->cache_key, o, res, CON_READ_LAG);
    }
}

static void
con_stats_days(struct con_call *call)
{
    struct stats_q *q = gw_req_alloc(call->req, sizeof(*q));
    const struct gw_params *ps;
    const char *district, *from, *to, *supp;
    struct store_tx tx;
    int bad = 0;

    if (q == NULL) {
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    memset(q, 0, sizeof(*q));
    if (gw_req_query_or_400(call->req, &ps) < 0) return;
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].key, "district") != 0 &&
            strcmp(ps->p[i].key, "from") != 0 &&
            strcmp(ps->p[i].key, "to") != 0 &&
            strcmp(ps->p[i].key, "suppress") != 0)
            bad = 1;
    district = con_param(ps, "district", 16, &bad);
    from = con_param(ps, "from", 10, &bad);
    to = con_param(ps, "to", 10, &bad);
    supp = con_param(ps, "suppress", 1, &bad);
    if (district && !con_codes_has(call->con->districts, district)) bad = 1;
    if ((from && !con_date_ok(from)) || (to && !con_date_ok(to))) bad = 1;
    if (supp && strcmp(supp, "0") != 0 && strcmp(supp, "1") != 0) bad = 1;
    if (bad) {
        con_reply_error(call, 400, "bad_request",
                        "parameters: district (a code), from, to "
                        "(YYYY-MM-DD), suppress (0|1)");
        return;
    }
    q->k = (int)call->con->cfg->stats_k;
    q->suppress =
        call->who.role_bit == CON_ROLE_ANALYST || (supp && supp[0] == '1');
    snprintf(q->k_text, sizeof(q->k_text), "%d", q->k);
    call->data = q;
    {
        const char *key[] = {district, from, to, q->k_text,
                             q->suppress ? "1" : "0"};
        q->cache_key = con_cache_key(call, "decision-days", key, 5);
        if (con_cache_reply_hit(call, q->cache_key)) return;
    }
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){days_sql, 3, {district, from, to}};
    con_read_tx_or_503(call, &tx, days_on_rows);
}

static void
con_stats_get(struct con_call *call)
{
    stats_run(call, 0);
}

static void
con_export_csv(struct con_call *call)
{
    const struct gw_params *ps;
    const struct gw_param *kind;

    if (gw_req_query_or_400(call->req, &ps) < 0) return;
    kind = gw_params_get(ps, "kind");
    if (kind != NULL && gw_params_count(ps, "kind") == 1 &&
        strcmp(kind->val, "records") == 0)
        con_export_records(call, ps);
    else
        stats_run(call, STATS_CSV);
}

static void
con_indicator_skills(struct con_call *call)
{
    stats_run(call, STATS_SDMX);
}

static void
con_indicator_skills_json(struct con_call *call)
{
    stats_run(call, STATS_SDMX_JSON);
}

const struct con_route con_stats_routes[] = {
    {GW_METHOD_GET, "/api/stats", CON_ROLE_ANY, 0, con_stats_get},
    {GW_METHOD_GET, "/api/export.csv", CON_ROLE_ANY, 0, con_export_csv},
    {GW_METHOD_GET, "/api/indicators/skills_supply.csv", CON_ROLE_ANY, 0,
     con_indicator_skills},
    {GW_METHOD_GET, "/api/indicators/skills_supply.json", CON_ROLE_ANY, 0,
     con_indicator_skills_json},
    {GW_METHOD_GET, "/api/stats/decision-days", CON_ROLE_ANY, 0,
     con_stats_days},
    {0, NULL, 0, 0, NULL},
};
