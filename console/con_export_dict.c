/*
 * con_export_dict.c -- GET /api/export/dictionary.csv?kind=records|
 * aggregate&dims=...|skills_supply|destination_reason_year: the data
 * dictionary of every CSV the console writes -- what each column of that
 * CSV holds, then the codes of each coded column with their labels.
 * Columns column,type,meaning,code,label_bn,label_en: a column's own line
 * has no code; each of its codes is a line with the column and the code
 * only.  The records export's columns come from its own table
 * (con_exp_col()), so the two cannot disagree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "console/con_export_int.h"
#include "flows/flow.h"

static const char *const dict_sex[] = {"m", "f", "x", NULL};
static const char *const dict_status[] = {"pending", "needs_info", "verified",
                                          "rejected", NULL};
static const char *const dict_channel[] = {"ussd", "sms", NULL};
static const char *const dict_age[] = {"<18",   "18-24", "25-29", "30-34",
                                       "35-39", "40-44", "45-49", "50-54",
                                       "55-59", "60+",   NULL};
#define CON_X_STR(c) #c,
static const char *const dict_decisions[] = {
    CON_REJECT_REASONS(CON_X_STR) CON_INFO_REASONS(CON_X_STR) NULL};
#undef CON_X_STR

struct dict {
    struct con_buf b;
    const json_t *lists;
    const struct flow_set *set;
    int rc;
};

static void
dict_line(struct dict *d, const char *column, const char *type,
          const char *meaning, const char *code, const char *bn, const char *en)
{
    const char *f[6] = {column, type, meaning, code, bn, en};

    for (int i = 0; i < 6; i++) {
        if (i) d->rc |= con_buf_add(&d->b, ",", 1);
        d->rc |= con_csv_field(&d->b, f[i]);
    }
    d->rc |= con_buf_add(&d->b, "\r\n", 2);
}

/* The codes of dim (a statistics dimension or "decision") under column;
 * extra: more codes first (NULL-terminated, may be NULL). */
static void
dict_codes(struct dict *d, const char *column, const char *dim,
           const char *const *extra)
{
    const char *const *fixed = NULL;
    const char *list = con_stats_list_of(dim), *en, *bn;
    const json_t *arr =
        list && d->lists ? json_object_get(d->lists, list) : NULL;
    size_t i;
    json_t *it;

    for (; extra && *extra; extra++) {
        con_stats_label(d->lists, dim, *extra, &en, &bn);
        dict_line(d, column, NULL, NULL, *extra, bn, en);
    }
    if (strcmp(dim, "sex") == 0) fixed = dict_sex;
    if (strcmp(dim, "status") == 0) fixed = dict_status;
    if (strcmp(dim, "channel") == 0) fixed = dict_channel;
    if (strcmp(dim, "age_band") == 0) fixed = dict_age;
    if (strcmp(dim, "decision") == 0) fixed = dict_decisions;
    for (; fixed && *fixed; fixed++) {
        con_exp_label(d->lists, d->set, dim, *fixed, &en, &bn);
        dict_line(d, column, NULL, NULL, *fixed, bn, en);
    }
    json_array_foreach(arr, i, it)
    {
        dict_line(d, column, NULL, NULL,
                  json_string_value(json_object_get(it, "code")),
                  json_string_value(json_object_get(it, "bn")),
                  json_string_value(json_object_get(it, "en")));
    }
}

static void
dict_records(struct dict *d)
{
    char col[64], meaning[160];

    const struct con_exp_col *c;

    for (size_t i = 0; (c = con_exp_col(i, 1)) != NULL; i++) {
        if (c->kind == CON_EXP_PLAIN) {
            dict_line(d, c->name, c->type, c->meaning, NULL, NULL, NULL);
            continue;
        }
        snprintf(col, sizeof(col), c->kind == CON_EXP_SKILLS ? "%s" : "%s_code",
                 c->name);
        dict_line(d, col, c->type, c->meaning, NULL, NULL, NULL);
        snprintf(col, sizeof(col), "%s_label_bn", c->name);
        snprintf(meaning, sizeof(meaning), "%s: the Bangla label", c->name);
        dict_line(d, col, "text", meaning, NULL, NULL, NULL);
        snprintf(col, sizeof(col), "%s_label_en", c->name);
        snprintf(meaning, sizeof(meaning), "%s: the English label", c->name);
        dict_line(d, col, "text", meaning, NULL, NULL, NULL);
    }
    for (size_t i = 0; (c = con_exp_col(i, 0)) != NULL; i++) {
        if (c->kind == CON_EXP_PLAIN) continue;
        snprintf(col, sizeof(col), c->kind == CON_EXP_SKILLS ? "%s" : "%s_code",
                 c->name);
        dict_codes(d, col, c->dim, NULL);
    }
}

static void
dict_aggregate(struct dict *d, const char *const dims[2])
{
    static const char *const extra[] = {"total", "unknown", NULL};
    static const char *const extra_skill[] = {"total", "none", NULL};
    char col[64], meaning[160];

    for (int k = 0; k < 2 && dims[k]; k++) {
        snprintf(col, sizeof(col), "%s_code", dims[k]);
        snprintf(meaning, sizeof(meaning),
                 "the %s counted ('total': every value; 'unknown': not "
                 "answered)",
                 dims[k]);
        dict_line(d, col, "code", meaning, NULL, NULL, NULL);
        snprintf(col, sizeof(col), "%s_label_bn", dims[k]);
        dict_line(d, col, "text", "its Bangla label", NULL, NULL, NULL);
        snprintf(col, sizeof(col), "%s_label_en", dims[k]);
        dict_line(d, col, "text", "its English label", NULL, NULL, NULL);
    }
    dict_line(d, "n", "integer or <k or x",
              "returnees counted (with skill: mentions); a count 1..k-1 is "
              "'<k', and 'x' hides a count of k or more so that no '<k' "
              "can be worked out from the totals",
              NULL, NULL, NULL);
    for (int k = 0; k < 2 && dims[k]; k++) {
        snprintf(col, sizeof(col), "%s_code", dims[k]);
        dict_codes(d, col, dims[k],
                   strcmp(dims[k], "skill") == 0 ? extra_skill : extra);
    }
}

/* The SDMX-CSV files: their fixed columns, then the dimensions'. */
static void
dict_sdmx_head(struct dict *d, const char *flow)
{
    dict_line(d, "STRUCTURE", "text", "always 'dataflow'", NULL, NULL, NULL);
    dict_line(d, "STRUCTURE_ID", "text", flow, NULL, NULL, NULL);
    dict_line(d, "ACTION", "text", "'I': information (replace or add)", NULL,
              NULL, NULL);
}

static void
dict_sdmx_tail(struct dict *d)
{
    dict_line(d, "OBS_VALUE", "integer",
              "verified returnees (empty when confidential)", NULL, NULL, NULL);
    dict_line(d, "OBS_STATUS", "code", "the observation's status", NULL, NULL,
              NULL);
    dict_line(d, "OBS_STATUS", NULL, NULL, "A", "স্বাভাবিক", "Normal value");
    dict_line(d, "OBS_STATUS", NULL, NULL, "C", "গোপনীয়",
              "Confidential: a small count, or hidden so that none can be "
              "worked out");
}

static void
con_export_dictionary(struct con_call *call)
{
    struct gw_server *srv = gw_req_server(call->req);
    struct dict d = {{NULL, 0, 0}, con_lists(srv), gw_server_flows(srv), 0};
    const struct gw_params *ps;
    const char *kind, *dims_p, *dims[2] = {NULL, NULL};
    char dim1[16] = "", dim2[16] = "", disp[128];
    int bad = 0;
    static const char *const bd[] = {"BD", NULL};
    static const char *const all[] = {"_T", NULL};
    static const char *const all_u[] = {"_T", "_U", NULL};

    if (gw_req_query_or_400(call->req, &ps) < 0) return;
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].key, "kind") != 0 &&
            strcmp(ps->p[i].key, "dims") != 0)
            bad = 1;
    kind = con_param(ps, "kind", 32, &bad);
    dims_p = con_param(ps, "dims", 31, &bad);
    if (kind == NULL) bad = 1;
    if (!bad && strcmp(kind, "aggregate") == 0) {
        const char *comma = dims_p ? strchr(dims_p, ',') : NULL;
        if (dims_p == NULL || (comma && (size_t)(comma - dims_p) >= 16))
            bad = 1;
        else if (comma) {
            memcpy(dim1, dims_p, (size_t)(comma - dims_p));
            snprintf(dim2, sizeof(dim2), "%s", comma + 1);
        } else
            snprintf(dim1, sizeof(dim1), "%s", dims_p);
        dims[0] = dim1;
        dims[1] = dim2[0] ? dim2 : NULL;
        if (!bad &&
            (!con_stats_dim_ok(dim1) ||
             (dims[1] && (!con_stats_dim_ok(dim2) || strcmp(dim1, dim2) == 0))))
            bad = 1;
    } else if (!bad && dims_p)
        bad = 1;
    if (!bad && strcmp(kind, "records") != 0 &&
        strcmp(kind, "aggregate") != 0 && strcmp(kind, "skills_supply") != 0 &&
        strcmp(kind, "destination_reason_year") != 0)
        bad = 1;
    if (bad) {
        con_reply_error(call, 400, "bad_request",
                        "kind is records, aggregate (with dims), "
                        "skills_supply or destination_reason_year");
        return;
    }
    d.rc |= con_buf_add(&d.b, "\xEF\xBB\xBF", 3);
    dict_line(&d, "column", "type", "meaning", "code", "label_bn", "label_en");
    if (strcmp(kind, "records") == 0)
        dict_records(&d);
    else if (strcmp(kind, "aggregate") == 0)
        dict_aggregate(&d, dims);
    else if (strcmp(kind, "skills_supply") == 0) {
        dict_sdmx_head(&d, "BD_REMIGATE:DF_SKILLS_SUPPLY(1.0)");
        dict_line(&d, "REF_AREA", "code",
                  "district (ISO 3166-2:BD); BD: the country", NULL, NULL,
                  NULL);
        dict_line(&d, "SKILL", "code", "skill; _T: every skill", NULL, NULL,
                  NULL);
        dict_sdmx_tail(&d);
        dict_codes(&d, "REF_AREA", "district", bd);
        dict_codes(&d, "SKILL", "skill", all);
    } else {
        dict_sdmx_head(&d, "BD_REMIGATE:DF_RETURN_REASONS(1.0)");
        dict_line(&d, "DESTINATION", "code",
                  "last country of work (ISO 3166-1 alpha-2); _T: every "
                  "country",
                  NULL, NULL, NULL);
        dict_line(&d, "RETURN_REASON", "code",
                  "why they came back; _T: every reason; _U: not answered",
                  NULL, NULL, NULL);
        dict_line(&d, "TIME_PERIOD", "year",
                  "year of return; _U: not answered (each year is its own "
                  "table: no total over years)",
                  NULL, NULL, NULL);
        dict_sdmx_tail(&d);
        dict_codes(&d, "DESTINATION", "country", all_u);
        dict_codes(&d, "RETURN_REASON", "reason", all_u);
    }
    if (d.rc != 0) {
        free(d.b.p);
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    snprintf(disp, sizeof(disp),
             "attachment; filename=\"remigate_dictionary_%s%s%s.csv\"", kind,
             dim1[0] ? "_" : "", dims_p ? dims_p : "");
    for (char *p = disp; *p; p++)
        if (*p == ',') *p = '-';
    gw_req_header_add(call->req, "Content-Disposition", disp);
    gw_req_header_add(call->req, "Cache-Control", "no-store");
    /* the reply frees the request: d lives on this frame */
    gw_reply(call->req, 200, "text/csv; charset=utf-8", d.b.p, d.b.len);
    free(d.b.p);
}

const struct con_route con_export_dict_routes[] = {
    {GW_METHOD_GET, "/api/export/dictionary.csv", CON_ROLE_ANY, 0,
     con_export_dictionary},
    {0, NULL, 0, 0, NULL},
};
