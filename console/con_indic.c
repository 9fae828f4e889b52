/*
 * con_indic.c -- the labour-market indicators as SDMX-CSV and JSON:
 *
 *   GET /api/indicators/destination_reason_year.csv|.json -- verified
 *       returnees by destination (last country of work) x reason for
 *       return x year of return, dataflow BD_REMIGATE:DF_RETURN_REASONS(1.0);
 *   GET /api/indicators/skills_supply.json -- the JSON of the skills
 *       supply indicator (its CSV and its table are con_stats.c's).
 *
 * A three-way table with every margin cannot be protected by con_supp.c,
 * which works on two-way tables.  So each year of return is published as
 * its own two-way table, destination x reason, with its margins (_T), and
 * no total over the years is published: each year's table is suppressed
 * alone (k = stats.k, always, whoever asks: an export), and nothing in the
 * file ties two years together.  A year whose table cannot be protected
 * (con_supp_apply() returns 1) is published with every non-zero count
 * confidential.  A missing value is SDMX's _U (unknown).
 *
 * The JSON holds the same observations as the CSV, plus the code lists of
 * each dimension with their Bangla and English labels.  Each download is
 * audited like an aggregate CSV (filter, rows, k, SHA-256), on the
 * primary, before the file is sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "console/con_int.h"

#define IND_CSV  1
#define IND_JSON 2

static const char *const ind_tu[] = {"_T", "_U", NULL};
static const char *const ind_u[] = {"_U", NULL};
static const char *const ind_bd[] = {"BD", NULL};
static const char *const ind_t_none[] = {"_T", "none", NULL};

static const struct con_indic ind_returns = {
    "BD_REMIGATE:DF_RETURN_REASONS(1.0)",
    3,
    {"DESTINATION", "RETURN_REASON", "TIME_PERIOD"},
    {"country", "reason", NULL},
    {ind_tu, ind_tu, ind_u},
};

static const struct con_indic ind_skills = {
    "BD_REMIGATE:DF_SKILLS_SUPPLY(1.0)", 2,
    {"REF_AREA", "SKILL", NULL},         {"district", "skill", NULL},
    {ind_bd, ind_t_none, NULL},
};

const struct con_indic *const con_indic_skills = &ind_skills;

/* The labels of an SDMX special code, or NULL. */
static int
ind_special(const char *code, const char **en, const char **bn)
{
    static const char *const s[][3] = {
        {"_T", "Total", "মোট"},
        {"_U", "Unknown", "অজানা"},
        {"BD", "Bangladesh", "বাংলাদেশ"},
    };
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        if (strcmp(code, s[i][0]) == 0) {
            *en = s[i][1];
            *bn = s[i][2];
            return 1;
        }
    return 0;
}

int
con_indic_csv(struct con_buf *b, const struct con_indic *ind,
              const struct con_obs *o, int n)
{
    int rc = con_buf_add(b, "STRUCTURE,STRUCTURE_ID,ACTION", 29);
    char num[32];

    for (int d = 0; d < ind->ndims; d++) {
        rc |= con_buf_add(b, ",", 1);
        rc |= con_buf_add(b, ind->dim[d], strlen(ind->dim[d]));
    }
    rc |= con_buf_add(b, ",OBS_VALUE,OBS_STATUS\r\n", 23);
    for (int i = 0; i < n; i++) {
        rc |= con_buf_add(b, "dataflow,", 9);
        rc |= con_buf_add(b, ind->flow, strlen(ind->flow));
        rc |= con_buf_add(b, ",I", 2);
        for (int d = 0; d < ind->ndims; d++) {
            rc |= con_buf_add(b, ",", 1);
            rc |= con_csv_field(b, o[i].v[d]);
        }
        if (o[i].conf)
            snprintf(num, sizeof(num), ",,C\r\n");
        else
            snprintf(num, sizeof(num), ",%lld,A\r\n", o[i].n);
        rc |= con_buf_add(b, num, strlen(num));
    }
    return rc;
}

int
con_indic_json(struct con_buf *b, const struct con_indic *ind,
               const struct con_obs *o, int n, const json_t *lists, int k)
{
    json_t *root, *dims, *obs;
    char *s;
    int rc;

    root = json_pack("{s:s,s:i,s:[],s:[]}", "dataflow", ind->flow, "k", k,
                     "dimensions", "observations");
    if (root == NULL) return -1;
    dims = json_object_get(root, "dimensions");
    obs = json_object_get(root, "observations");
    for (int d = 0; d < ind->ndims; d++) {
        json_t *codes = json_array(), *seen = json_object();
        const char *en, *bn;
        /* the special codes (_T, _U, BD, none) */
        for (const char *const *sp = ind->special[d]; sp && *sp; sp++) {
            if (!ind_special(*sp, &en, &bn))
                con_stats_label(lists, ind->list[d] ? ind->list[d] : "", *sp,
                                &en, &bn);
            json_object_set_new(seen, *sp, json_true());
            json_array_append_new(codes, json_pack("{s:s,s:s,s:s}", "id", *sp,
                                                   "en", en, "bn", bn));
        }
        /* a list's every code, as the lists name them */
        if (ind->list[d] != NULL) {
            const char *file =
                strcmp(ind->list[d], "country") == 0    ? "countries"
                : strcmp(ind->list[d], "reason") == 0   ? "reasons"
                : strcmp(ind->list[d], "district") == 0 ? "districts"
                                                        : "skills";
            const json_t *arr = lists ? json_object_get(lists, file) : NULL;
            size_t i;
            json_t *it;
            json_array_foreach(arr, i, it)
            {
                const char *c = json_string_value(json_object_get(it, "code"));
                json_array_append_new(codes,
                                      json_pack("{s:s,s:O,s:O}", "id", c, "en",
                                                json_object_get(it, "en"), "bn",
                                                json_object_get(it, "bn")));
            }
        } else {
            /* no list (years): the values used, in file order */
            for (int i = 0; i < n; i++) {
                const char *v = o[i].v[d];
                if (json_object_get(seen, v)) continue;
                json_object_set_new(seen, v, json_true());
                json_array_append_new(codes, json_pack("{s:s,s:s,s:s}", "id", v,
                                                       "en", v, "bn", v));
            }
        }
        json_decref(seen);
        json_array_append_new(
            dims, json_pack("{s:s,s:o}", "id", ind->dim[d], "codes", codes));
    }
    for (int i = 0; i < n; i++) {
        json_t *x = json_object();
        for (int d = 0; d < ind->ndims; d++)
            json_object_set_new(x, ind->dim[d], json_string(o[i].v[d]));
        json_object_set_new(x, "OBS_VALUE",
                            o[i].conf ? json_null() : json_integer(o[i].n));
        json_object_set_new(x, "OBS_STATUS",
                            json_string(o[i].conf ? "C" : "A"));
        json_array_append_new(obs, x);
    }
    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (s == NULL) return -1;
    rc = con_buf_add(b, s, strlen(s));
    free(s);
    return rc;
}

/* ------------------------------------------------------------------------
 * destination x reason x year
 */

struct ind_q {
    int format, k;
    char k_text[8];
    const char *district, *sex, *from, *to;
    struct con_buf out;
    char *detail;
};

static const char ind_sql[] =
    "SELECT coalesce(country, '_U'), coalesce(reason, '_U'),"
    " coalesce(return_year, '_U'), n FROM remigate_indicator_returns($1, $2,"
    " $3::date, $4::date, $5::int)";

static int
ind_index(const char **vals, int *n, const char *v)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(vals[i], v) == 0) return i;
    vals[*n] = v;
    return (*n)++;
}

/* The observations of one year: rows [a, b) of the result (sorted by
 * year).  Appends to o (room for them: cells + margins); 0 or -1. */
static int
ind_year(const struct store_tx_result *res, int a, int bnd, int k,
         struct con_obs *o, int *no)
{
    int m = bnd - a, nr = 0, nc = 0, w, rc = -1;
    const char **rv = calloc((size_t)m, sizeof(*rv));
    const char **cv = calloc((size_t)m, sizeof(*cv));
    long long *n = NULL;
    unsigned char *mark = NULL;
    const char *year = store_tx_value(res, CON_READ_ROWS, a, 2);

    if (rv == NULL || cv == NULL) goto done;
    for (int i = a; i < bnd; i++) {
        ind_index(rv, &nr, store_tx_value(res, CON_READ_ROWS, i, 0));
        ind_index(cv, &nc, store_tx_value(res, CON_READ_ROWS, i, 1));
    }
    w = nc + 1;
    n = calloc((size_t)(nr + 1) * (size_t)w, sizeof(*n));
    mark = calloc((size_t)(nr + 1) * (size_t)w, 1);
    if (n == NULL || mark == NULL) goto done;
    for (int i = a; i < bnd; i++) {
        int r = ind_index(rv, &nr, store_tx_value(res, CON_READ_ROWS, i, 0));
        int c = ind_index(cv, &nc, store_tx_value(res, CON_READ_ROWS, i, 1));
        long long v =
            strtoll(store_tx_value(res, CON_READ_ROWS, i, 3), NULL, 10);
        n[r * w + c] += v;
        n[r * w + nc] += v;
        n[nr * w + c] += v;
        n[nr * w + nc] += v;
    }
    switch (con_supp_apply(nr, nc, n, k, mark)) {
    case 0:
        break;
    case 1: /* cannot be protected: every non-zero count confidential */
        for (int e = 0; e < (nr + 1) * w; e++)
            mark[e] = n[e] ? CON_SUPP_COMPL : CON_SUPP_SHOWN;
        break;
    default:
        goto done;
    }
    for (int r = 0; r <= nr; r++)
        for (int c = 0; c <= nc; c++) {
            int e = r * w + c;
            if (n[e] == 0 && r < nr && c < nc) continue;
            o[*no].v[0] = r < nr ? rv[r] : "_T";
            o[*no].v[1] = c < nc ? cv[c] : "_T";
            o[*no].v[2] = year;
            o[*no].n = n[e];
            o[*no].conf = mark[e] != CON_SUPP_SHOWN;
            (*no)++;
        }
    rc = 0;
done:
    free(rv);
    free(cv);
    free(n);
    free(mark);
    return rc;
}

static void
ind_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct ind_q *q = call->data;
    char disp[128], *body;
    int json = q->format == IND_JSON;

    free(q->detail);
    if (status != 0) {
        free(q->out.p);
        con_reply_store_error(call, status, res);
        return;
    }
    snprintf(disp, sizeof(disp),
             "attachment; filename=\"remigate_%s_destination_reason_year.%s\"",
             json ? "json" : "sdmx", json ? "json" : "csv");
    gw_req_header_add(call->req, "Content-Disposition", disp);
    gw_req_header_add(call->req, "Cache-Control", "no-store");
    body = q->out.p;
    gw_reply(call->req, 200,
             json ? "application/json" : "text/csv; charset=utf-8", body,
             q->out.len);
    free(body);
}

/* Hash and audit out (q->out), then send it (ind_done). kind: the audit's
 * detail.kind. */
static void
ind_audit_send(struct con_call *call, struct ind_q *q, const char *kind,
               int rows)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char sha[65];
    json_t *d;
    struct store_tx tx;

    crypto_hash_sha256(h, (const unsigned char *)q->out.p, q->out.len);
    for (int i = 0; i < (int)sizeof(h); i++)
        snprintf(sha + 2 * i, 3, "%02x", h[i]);
    d = json_pack("{s:s,s:{s:s?,s:s?,s:s?,s:s?},s:i,s:i,s:s}", "kind", kind,
                  "filter", "district", q->district, "sex", q->sex, "from",
                  q->from, "to", q->to, "rows", rows, "k", q->k, "sha256", sha);
    q->detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (q->detail == NULL) {
        free(q->out.p);
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    con_tx_init(call, &tx);
    CON_AZ(
        con_audit_add(call, &tx, NULL, "export", "aggregate", "ok", q->detail));
    if (con_tx_or_503(call, &tx, ind_done) < 0) {
        free(q->out.p);
        free(q->detail);
    }
}

static void
ind_on_rows(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct ind_q *q = call->data;
    int nt, no = 0, rc = 0;
    struct con_obs *o;

    if (con_stats_rows_or_4xx(call, status, res) < 0) return;
    nt = store_tx_ntuples(res, CON_READ_ROWS);
    /* at most: each cell, and per year its margins (at most a row and a
     * column per cell, and the grand total) */
    o = calloc((size_t)nt * 3 + 1, sizeof(*o));
    if (o == NULL) {
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    for (int a = 0; a < nt && rc == 0;) {
        int b = a;
        while (b < nt && strcmp(store_tx_value(res, CON_READ_ROWS, b, 2),
                                store_tx_value(res, CON_READ_ROWS, a, 2)) == 0)
            b++;
        rc = ind_year(res, a, b, q->k, o, &no);
        a = b;
    }
    if (rc == 0 && q->format == IND_JSON)
        rc = con_indic_json(&q->out, &ind_returns, o, no,
                            con_lists(gw_req_server(call->req)), q->k);
    else if (rc == 0)
        rc = con_indic_csv(&q->out, &ind_returns, o, no);
    free(o);
    if (rc != 0) {
        free(q->out.p);
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    ind_audit_send(call, q,
                   q->format == IND_JSON ? "json_destination_reason_year"
                                         : "sdmx_destination_reason_year",
                   no);
}

static void
ind_returns_run(struct con_call *call, int format)
{
    struct ind_q *q = gw_req_alloc(call->req, sizeof(*q));
    const struct gw_params *ps;
    struct store_tx tx;
    int bad = 0;

    if (q == NULL) {
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    if (gw_req_query_or_400(call->req, &ps) < 0) return;
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].key, "district") != 0 &&
            strcmp(ps->p[i].key, "sex") != 0 &&
            strcmp(ps->p[i].key, "from") != 0 &&
            strcmp(ps->p[i].key, "to") != 0)
            bad = 1;
    q->district = con_param(ps, "district", 16, &bad);
    q->sex = con_param(ps, "sex", 1, &bad);
    q->from = con_param(ps, "from", 10, &bad);
    q->to = con_param(ps, "to", 10, &bad);
    if (q->district && !con_codes_has(call->con->districts, q->district))
        bad = 1;
    if (q->sex && strcmp(q->sex, "m") != 0 && strcmp(q->sex, "f") != 0 &&
        strcmp(q->sex, "x") != 0)
        bad = 1;
    if ((q->from && !con_date_ok(q->from)) || (q->to && !con_date_ok(q->to)))
        bad = 1;
    if (bad) {
        con_reply_error(call, 400, "bad_request",
                        "parameters: district (a code), sex m|f|x, from, to "
                        "(YYYY-MM-DD)");
        return;
    }
    q->format = format;
    q->k = (int)call->con->cfg->stats_k;
    snprintf(q->k_text, sizeof(q->k_text), "%d", q->k);
    call->data = q;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        ind_sql, 5, {q->district, q->sex, q->from, q->to, q->k_text}};
    con_read_tx_or_503(call, &tx, ind_on_rows);
}

static void
con_indic_returns_csv(struct con_call *call)
{
    ind_returns_run(call, IND_CSV);
}

static void
con_indic_returns_json(struct con_call *call)
{
    ind_returns_run(call, IND_JSON);
}

const struct con_route con_indic_routes[] = {
    {GW_METHOD_GET, "/api/indicators/destination_reason_year.csv", CON_ROLE_ANY,
     0, con_indic_returns_csv},
    {GW_METHOD_GET, "/api/indicators/destination_reason_year.json",
     CON_ROLE_ANY, 0, con_indic_returns_json},
    {0, NULL, 0, 0, NULL},
};
