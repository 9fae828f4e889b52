/*
 * con_audit.c -- GET /api/audit (admins): the audit log, newest first.
 *
 * Filters (each optional, exact): actor (a username, or "cli",
 * "anonymous"), target ("officer:rahima", a record's reference, a path),
 * action ("login", "access.denied", ...), outcome (ok|failed|denied),
 * from and to (ISO 8601 date or time; from inclusive, to exclusive).
 * Keyset pagination: each page has at most limit rows (default 50, at
 * most 200) and "next", the cursor for the following page (rows with a
 * smaller id), or null on the last page.  An unknown parameter, or a bad
 * date or cursor, is 400.  One query, parameterised; a filter left out
 * is a NULL parameter, so the plan does not depend on which were given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/con_int.h"

#define AUDIT_LIMIT_MAX 200

static const char audit_sql[] =
    "SELECT id, to_char(at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), actor, actor_id, role,"
    " source, action, target, outcome, detail::text"
    " FROM audit_log"
    " WHERE ($1::text IS NULL OR actor = $1)"
    " AND ($2::text IS NULL OR target = $2)"
    " AND ($3::text IS NULL OR action = $3)"
    " AND ($4::text IS NULL OR outcome = $4)"
    " AND ($5::timestamptz IS NULL OR at >= $5::timestamptz)"
    " AND ($6::timestamptz IS NULL OR at < $6::timestamptz)"
    " AND ($7::bigint IS NULL OR id < $7::bigint)"
    " ORDER BY id DESC LIMIT $8::int";

struct audit_q {
    int limit;
    char limit_text[16];
};

static void
audit_on_rows(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct audit_q *q = call->data;
    json_t *items, *next = json_null();
    int n;

    if (status == STORE_EREFUSED) {
        /* a date PostgreSQL cannot read (class 22) */
        con_reply_error(call, 400, "bad_request",
                        "from and to are ISO 8601 dates or times");
        return;
    }
    if (status != 0) {
        con_reply_store_error(call, status, res);
        return;
    }
    n = store_tx_ntuples(res, 0);
    items = json_array();
    for (int i = 0; items && i < n && i < q->limit; i++) {
        const char *aid = store_tx_value(res, 0, i, 3);
        const char *detail = store_tx_value(res, 0, i, 9);
        json_t *d = detail ? json_loads(detail, 0, NULL) : NULL;
#define AUDIT_S(col)                                                           \
    (store_tx_value(res, 0, i, col)                                            \
         ? json_string(store_tx_value(res, 0, i, col))                         \
         : json_null())
        json_array_append_new(
            items, json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id",
                             (json_int_t)atoll(store_tx_value(res, 0, i, 0)),
                             "at", AUDIT_S(1), "actor", AUDIT_S(2), "actor_id",
                             aid ? json_integer(atoll(aid)) : json_null(),
                             "role", AUDIT_S(4), "source", AUDIT_S(5), "action",
                             AUDIT_S(6), "target", AUDIT_S(7), "outcome",
                             AUDIT_S(8), "detail", d ? d : json_object()));
#undef AUDIT_S
    }
    if (n > q->limit) {
        json_decref(next);
        next = json_string(store_tx_value(res, 0, q->limit - 1, 0));
    }
    con_reply_json(call, 200,
                   json_pack("{s:o,s:o}", "items", items, "next", next));
}

static void
con_audit_list(struct con_call *call)
{
    static const char *const known[] = {"actor", "target", "action", "outcome",
                                        "from",  "to",     "cursor", "limit"};
    const struct gw_params *ps;
    struct audit_q *q = gw_req_alloc(call->req, sizeof(*q));
    const char *v[8], *cursor, *limit;
    struct store_tx tx;
    int bad = 0;

    if (q == NULL) {
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    if (gw_req_query_or_400(call->req, &ps) < 0) return;
    for (size_t i = 0; i < ps->n; i++) {
        size_t k = 0;
        while (k < 8 && strcmp(ps->p[i].key, known[k]) != 0)
            k++;
        if (k == 8) {
            con_reply_error(call, 400, "bad_request",
                            "filters: actor, target, action, outcome, from, "
                            "to, cursor, limit");
            return;
        }
    }
    for (int i = 0; i < 6; i++)
        v[i] = con_param(ps, known[i], 200, &bad);
    cursor = con_param(ps, "cursor", 19, &bad);
    limit = con_param(ps, "limit", 3, &bad);
    if (cursor && strspn(cursor, "0123456789") != strlen(cursor)) bad = 1;
    if (limit && (strspn(limit, "0123456789") != strlen(limit) ||
                  atoi(limit) < 1 || atoi(limit) > AUDIT_LIMIT_MAX))
        bad = 1;
    if (v[3] && strcmp(v[3], "ok") != 0 && strcmp(v[3], "failed") != 0 &&
        strcmp(v[3], "denied") != 0)
        bad = 1;
    if (bad) {
        con_reply_error(call, 400, "bad_request",
                        "a filter is malformed (limit 1..200, cursor from "
                        "next, outcome ok|failed|denied)");
        return;
    }
    q->limit = limit ? atoi(limit) : 50;
    snprintf(q->limit_text, sizeof(q->limit_text), "%d", q->limit + 1);
    call->data = q;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        audit_sql,
        8,
        {v[0], v[1], v[2], v[3], v[4], v[5], cursor, q->limit_text}};
    con_tx_or_503(call, &tx, audit_on_rows);
}

const struct con_route con_audit_routes[] = {
    {GW_METHOD_GET, "/api/audit", CON_ROLE_ADMIN, 0, con_audit_list},
    {0, NULL, 0, 0, NULL},
};
