/*
 * con_notices.c -- the console's programme notices, /api/notices: the
 * reads (the list, one notice, the preview of its audience and SMS, the
 * call list of those who replied) and what the writes share with them
 * (con_notices_int.h: a call's state, loading a notice, rendering its
 * texts).  Drafting and the notice's transitions are con_notices_write.c.
 *
 * The rules live in two places on purpose: notices/ (the pure core:
 * templates, parts, the state machine) and 008_notices.sql (who is in the
 * audience, the freeze).  A handler here checks the caller's input with
 * the first, asks PostgreSQL with the second, and answers.  Every call
 * runs as the console role with the officer set, so row-level security
 * keeps an officer to notices of their own districts (another district's
 * notice is a 404).
 *
 * Replies are built by PostgreSQL as JSON text where that is simpler than
 * packing them here (the notice and its counts), parsed once and passed
 * on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "console/con_notices_int.h"

#define NTC_API_MAGIC 0x4e544150u

/* ------------------------------------------------------------------------
 * A call's state and replies (con_notices_int.h)
 */

struct con_ntc_api *
con_ntc_api_new(struct con_call *call)
{
    struct con_ntc_api *x = gw_req_alloc(call->req, sizeof(*x));
    if (x == NULL) {
        con_reply_error(call, 500, "internal", "out of memory");
        return NULL;
    }
    memset(x, 0, sizeof(*x));
    x->magic = NTC_API_MAGIC;
    call->data = x;
    const struct gw_config *cfg = call->con->cfg;
    snprintf(x->caps[0], sizeof(x->caps[0]), "%ld", cfg->notices_cap);
    snprintf(x->caps[1], sizeof(x->caps[1]), "%ld", cfg->notices_cap_days);
    snprintf(x->caps[2], sizeof(x->caps[2]), "%ld", cfg->notices_cap_per_day);
    return x;
}

struct con_ntc_api *
con_ntc_api_of(struct con_call *call)
{
    struct con_ntc_api *x = call->data;
    CON_AN(x != NULL && x->magic == NTC_API_MAGIC);
    return x;
}

/* Copy s into request memory (NULL stays NULL). */
char *
con_ntc_dup(struct con_call *call, const char *s)
{
    if (s == NULL) return NULL;
    size_t n = strlen(s) + 1;
    char *p = gw_req_alloc(call->req, n);
    if (p != NULL) memcpy(p, s, n);
    return p;
}

/* The {} of the path as a notice id, or a 404 and -1. */
int
con_ntc_id_or_404(struct con_call *call, struct con_ntc_api *x)
{
    const char *p = call->params[0];
    size_t n = strlen(p);
    if (n == 0 || n > 15 || strspn(p, "0123456789") != n) {
        con_reply_error(call, 404, "no_notice", "no such notice");
        return -1;
    }
    memcpy(x->id, p, n + 1); /* n <= 15 < sizeof(x->id) */
    return 0;
}

/* A database refusal as the caller's error: a CHECK or a cast (class 22,
 * 23) is 422, row-level security 403, anything else 503. */
void
con_ntc_fail(struct con_call *call, int status,
             const struct store_tx_result *res)
{
    const char *st = store_tx_sqlstate(res);
    if (status == STORE_EREFUSED ||
        (st && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0))) {
        GW_RLOG(GW_LEVEL_INFO, call->req, 0, "notice refused: %s",
                store_tx_errstr(res));
        con_reply_error(call, 422, "invalid_notice",
                        "the notice breaks a rule (a field's value or "
                        "type, the reply code already used, four eyes)");
        return;
    }
    if (st && strcmp(st, "42501") == 0) {
        con_deny(call, 403, "out_of_scope",
                 "the notice reaches outside your districts", "scope");
        return;
    }
    con_reply_store_error(call, status, res);
}

/* The transaction ran and its first statement returned one row: 0.  Else
 * the caller's answer is sent (the store's error, or status with err and
 * msg when the row is missing) and -1 returned. */
int
con_ntc_row_or_4xx(struct con_call *call, int status,
                   const struct store_tx_result *res, int code, const char *err,
                   const char *msg)
{
    if (status != STORE_OK) {
        con_ntc_fail(call, status, res);
        return -1;
    }
    if (store_tx_ntuples(res, 0) != 1) {
        con_reply_error(call, code, err, msg);
        return -1;
    }
    return 0;
}

/* Reply with the JSON text a statement returned in row 0, column 0. */
static void
ntc_api_reply_text(struct con_call *call, int status, const char *text)
{
    json_error_t jerr;
    json_t *o = text ? json_loads(text, 0, &jerr) : NULL;
    if (o == NULL) {
        con_reply_error(call, 500, "internal", "bad reply from the database");
        return;
    }
    con_reply_json(call, status, o);
}

/* ------------------------------------------------------------------------
 * Loading a notice with its programme, then acting on it
 */

const char con_ntc_load_sql[] =
    "SELECT n.state, coalesce(n.author_id::text, ''), n.text_bn,"
    " n.text_en, p.reply_code, coalesce(to_char(p.deadline, 'DD-MM-YYYY'),"
    " ''), coalesce(p.phone, ''), coalesce(n.vetting_ref, '')"
    " FROM notices n JOIN programmes p ON p.id = n.programme_id"
    " WHERE n.id = $1::bigint";


static int
ntc_loaded_of(const struct store_tx_result *res, int stmt,
              struct con_ntc_loaded *l)
{
    if (store_tx_ntuples(res, stmt) != 1) return -1;
    l->state = notices_state_parse(store_tx_value(res, stmt, 0, 0));
    l->author = store_tx_value(res, stmt, 0, 1);
    l->text_bn = store_tx_value(res, stmt, 0, 2);
    l->text_en = store_tx_value(res, stmt, 0, 3);
    l->vars.code = store_tx_value(res, stmt, 0, 4);
    l->vars.deadline = store_tx_value(res, stmt, 0, 5);
    l->vars.phone = store_tx_value(res, stmt, 0, 6);
    return l->state == NOTICES_STATE_INVALID ? -1 : 0;
}

/* ntc_loaded_of() statement 0 of a transaction that ran: 0.  Else the
 * caller's answer is sent (the store's error, or 404) and -1 returned. */
int
con_ntc_loaded_or_4xx(struct con_call *call, int status,
                      const struct store_tx_result *res,
                      struct con_ntc_loaded *l)
{
    if (status != STORE_OK) {
        con_ntc_fail(call, status, res);
        return -1;
    }
    if (ntc_loaded_of(res, 0, l) < 0) {
        con_reply_error(call, 404, "no_notice", "no such notice");
        return -1;
    }
    return 0;
}

/* Render both texts into x (request memory): 0, or -1 with why. */
int
con_ntc_render(struct con_call *call, struct con_ntc_api *x,
               const struct con_ntc_loaded *l, const char **why)
{
    char out[NOTICES_TEXT_MAX + 1];
    struct notices_parts p;
    int n;

    n = notices_render(l->text_bn, strlen(l->text_bn), &l->vars, 1, out,
                       sizeof(out), why);
    if (n < 0) return -1;
    notices_parts_count(out, (size_t)n, &p);
    if (p.parts > NOTICES_PARTS_MAX) {
        *why = "the Bangla text is longer than 8 SMS parts";
        return -1;
    }
    x->sms_bn = con_ntc_dup(call, out);
    snprintf(x->parts_bn, sizeof(x->parts_bn), "%u", p.parts);
    if (l->text_en != NULL && l->text_en[0]) {
        n = notices_render(l->text_en, strlen(l->text_en), &l->vars, 0, out,
                           sizeof(out), why);
        if (n < 0) return -1;
        notices_parts_count(out, (size_t)n, &p);
        if (p.parts > NOTICES_PARTS_MAX) {
            *why = "the English text is longer than 8 SMS parts";
            return -1;
        }
        x->sms_en = con_ntc_dup(call, out);
        snprintf(x->parts_en, sizeof(x->parts_en), "%u", p.parts);
        snprintf(x->ucs2_en, sizeof(x->ucs2_en), "%s", p.ucs2 ? "t" : "f");
    }
    if (x->sms_bn == NULL || (l->text_en && l->text_en[0] && !x->sms_en)) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * GET /api/notices, GET /api/notices/{id}
 */

#define NTC_COUNTS_SQL                                                         \
    "(SELECT coalesce(jsonb_object_agg(state, c), '{}') FROM"                  \
    " (SELECT state, count(*) c FROM notice_outbox WHERE notice_id = n.id"     \
    "  GROUP BY state) s)"

static const char ntc_list_sql[] =
    "SELECT coalesce(jsonb_agg(jsonb_build_object('id', n.id, 'state',"
    " n.state, 'paused_why', n.paused_why, 'programme', p.title_bn,"
    " 'programme_en', p.title_en, 'kind', p.kind, 'reply_code', p.reply_code,"
    " 'districts', n.districts, 'audience_size', n.audience, 'author_id',"
    " n.author_id, 'author', (SELECT username FROM officers WHERE id ="
    " n.author_id), 'created_at', n.created_at, 'counts', " NTC_COUNTS_SQL
    ") ORDER BY n.id DESC), '[]')::text"
    " FROM (SELECT * FROM notices WHERE ($1 = '' OR state = $1)"
    "       ORDER BY id DESC LIMIT 200) n"
    " JOIN programmes p ON p.id = n.programme_id";

static const char ntc_get_sql[] =
    "SELECT jsonb_build_object('id', n.id, 'state', n.state, 'paused_why',"
    " n.paused_why, 'programme', to_jsonb(p) - 'created_by',"
    " 'text_bn', n.text_bn, 'text_en', n.text_en, 'sms_bn', n.sms_bn,"
    " 'sms_en', n.sms_en, 'parts_bn', n.parts_bn, 'parts_en', n.parts_en,"
    " 'audience', jsonb_build_object('districts', n.districts, 'sexes',"
    "  n.sexes, 'age_min', n.age_min, 'age_max', n.age_max, 'countries',"
    "  n.countries, 'skills', n.skills, 'education_min', n.education_min,"
    "  'return_year_min', n.return_year_min, 'return_year_max',"
    "  n.return_year_max, 'needs', n.needs, 'langs', n.langs, 'statuses',"
    "  n.statuses, 'recent_days', n.recent_days),"
    " 'hourly_cap', n.hourly_cap, 'send_after', n.send_after,"
    " 'vetting_ref', n.vetting_ref, 'author_id', n.author_id,"
    " 'approver_id', n.approver_id, 'author', (SELECT username FROM officers"
    "  WHERE id = n.author_id), 'approver', (SELECT username FROM officers"
    "  WHERE id = n.approver_id), 'created_at', n.created_at,"
    " 'submitted_at', n.submitted_at, 'approved_at', n.approved_at,"
    " 'started_at', n.started_at, 'finished_at', n.finished_at,"
    " 'audience_size', n.audience, 'version', n.version,"
    " 'counts', " NTC_COUNTS_SQL ","
    " 'reasons', (SELECT coalesce(jsonb_object_agg(k, c), '{}') FROM"
    "  (SELECT state || ':' || reason k, count(*) c FROM notice_outbox"
    "   WHERE notice_id = n.id AND reason IS NOT NULL GROUP BY 1) s),"
    " 'delivery_rate', (SELECT round(count(*) FILTER (WHERE state ="
    "  'delivered')::numeric / nullif(count(*) FILTER (WHERE state IN"
    "  ('accepted', 'submitted', 'buffered', 'delivered', 'expired',"
    "  'undelivered', 'rejected')), 0), 3) FROM notice_outbox"
    "  WHERE notice_id = n.id),"
    " 'optouts_72h', (SELECT count(*) FROM notice_outbox o JOIN sms_optout s"
    "  ON s.msisdn = o.msisdn WHERE o.notice_id = n.id AND s.opted_out"
    "  AND o.claimed_at IS NOT NULL AND s.changed_at BETWEEN o.claimed_at"
    "  AND o.claimed_at + interval '72 hours'),"
    " 'interested', (SELECT count(*) FROM notice_interest i"
    "  WHERE i.notice_id = n.id))::text"
    " FROM notices n JOIN programmes p ON p.id = n.programme_id"
    " WHERE n.id = $1::bigint";

static void
ntc_api_text_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    if (con_ntc_row_or_4xx(call, status, res, 404, "no_notice",
                           "no such notice") < 0)
        return;
    const char *text = store_tx_value(res, 0, 0, 0);
    if (call->data == NULL) {
        /* the list (no call state): {"items": [...]} */
        json_error_t jerr;
        json_t *items = text ? json_loads(text, 0, &jerr) : NULL;
        if (items == NULL) {
            con_reply_error(call, 500, "internal", "bad reply");
            return;
        }
        con_reply_json(call, 200, json_pack("{s:o}", "items", items));
        return;
    }
    ntc_api_reply_text(call, 200, text);
}

static void
con_notices_list(struct con_call *call)
{
    struct store_tx tx;
    const struct gw_params *ps;
    const struct gw_param *st;

    if (gw_req_query_or_400(call->req, &ps) < 0) return;
    st = gw_params_get(ps, "state");
    const char *state = st ? st->val : "";
    if (state[0] && notices_state_parse(state) == NOTICES_STATE_INVALID) {
        con_reply_error(call, 400, "bad_state", "no such notice state");
        return;
    }
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){ntc_list_sql, 1, {state}};
    con_tx_or_503(call, &tx, ntc_api_text_done);
}

static void
con_notices_get(struct con_call *call)
{
    struct con_ntc_api *x = con_ntc_api_new(call);
    struct store_tx tx;
    if (x == NULL || con_ntc_id_or_404(call, x) < 0) return;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){ntc_get_sql, 1, {x->id}};
    con_tx_or_503(call, &tx, ntc_api_text_done);
}

/* ------------------------------------------------------------------------
 * GET /api/notices/{id}/preview
 */

/* notice_preview() (migration 014): eligible, bn, en, skipped by reason,
 * by_district with counts under 5 as "<5", in one pass over returnees. */
static const char ntc_preview_sql[] =
    "SELECT notice_preview($1::bigint, now(), $2::int, $3::int, $4::int)"
    "::text";

static void
ntc_preview_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct con_ntc_api *x = con_ntc_api_of(call);
    struct con_ntc_loaded l;
    const char *why = NULL;
    json_error_t jerr;

    if (con_ntc_loaded_or_4xx(call, status, res, &l) < 0) return;
    json_t *o = json_loads(store_tx_value(res, 1, 0, 0), 0, &jerr);
    if (o == NULL) {
        con_reply_error(call, 500, "internal", "bad reply from the database");
        return;
    }
    if (con_ntc_render(call, x, &l, &why) < 0) {
        json_object_set_new(o, "render_error", json_string(why));
    } else {
        long long nbn = json_integer_value(json_object_get(o, "bn"));
        long long nen = json_integer_value(json_object_get(o, "en"));
        long long pbn = atoll(x->parts_bn);
        long long pen = x->sms_en ? atoll(x->parts_en) : pbn;
        long long parts = nbn * pbn + nen * pen;
        json_object_set_new(o, "sms_bn", json_string(x->sms_bn));
        json_object_set_new(o, "parts_bn", json_integer(pbn));
        if (x->sms_en) {
            json_object_set_new(o, "sms_en", json_string(x->sms_en));
            json_object_set_new(o, "parts_en", json_integer(pen));
            json_object_set_new(
                o, "coding_en",
                json_string(x->ucs2_en[0] == 't' ? "ucs2" : "gsm7"));
        }
        json_object_set_new(o, "parts_total", json_integer(parts));
        json_object_set_new(
            o, "cost_paisa",
            json_integer(notices_cost_paisa(
                (unsigned)parts, call->con->cfg->notices_price_paisa)));
    }
    con_reply_json(call, 200, o);
}

static void
con_notices_preview(struct con_call *call)
{
    struct con_ntc_api *x = con_ntc_api_new(call);
    struct store_tx tx;
    if (x == NULL || con_ntc_id_or_404(call, x) < 0) return;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){con_ntc_load_sql, 1, {x->id}};
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        ntc_preview_sql, 4, {x->id, x->caps[0], x->caps[1], x->caps[2]}};
    con_tx_or_503(call, &tx, ntc_preview_done);
}

/* ------------------------------------------------------------------------
 * GET /api/notices/{id}/interested.csv -- the call list, audited
 */

/* RFC 4180: every field quoted, quotes doubled; CRLF; a UTF-8 BOM so
 * spreadsheets read Bangla. */
#define NTC_CSV(x)                                                             \
    "'\"' || replace(coalesce((" x ")::text, ''), '\"', '\"\"') || '\"'"

#define NTC_F_NOTICE   NTC_CSV("i.notice_id")
#define NTC_F_REF      NTC_CSV("r.ref")
#define NTC_F_MSISDN   NTC_CSV("i.msisdn")
#define NTC_F_DISTRICT NTC_CSV("r.district")
#define NTC_F_LANG     NTC_CSV("r.lang")
#define NTC_F_SAID     NTC_CSV("i.said")
#define NTC_F_AT                                                               \
    NTC_CSV("to_char(i.created_at AT TIME ZONE 'UTC',"                         \
            " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")

static const char ntc_interested_sql[] =
    "SELECT E'\\uFEFF' || 'notice,ref,msisdn,district,lang,said,at' ||"
    " E'\\r\\n' || coalesce(string_agg(concat_ws(',', " NTC_F_NOTICE ","
    " " NTC_F_REF ", " NTC_F_MSISDN ", " NTC_F_DISTRICT ", " NTC_F_LANG ","
    " " NTC_F_SAID ", " NTC_F_AT ") || E'\\r\\n', '' ORDER BY i.id), ''),"
    " count(i.id)"
    " FROM notices n LEFT JOIN notice_interest i ON i.notice_id = n.id"
    " LEFT JOIN returnees r ON r.id = i.returnee_id"
    " WHERE n.id = $1::bigint GROUP BY n.id";

/* Written only when the notice is the caller's to see. */
static const char ntc_interested_audit_sql[] =
    "INSERT INTO audit_log (actor, actor_id, role, source, action, target,"
    " outcome, detail)"
    " SELECT $1, $2::bigint, $3, $4, 'notice.interested_export', n.id::text,"
    " 'ok', jsonb_build_object('rows', (SELECT count(*) FROM notice_interest"
    "  WHERE notice_id = n.id))"
    " FROM notices n WHERE n.id = $5::bigint";

static void
ntc_interested_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    if (con_ntc_row_or_4xx(call, status, res, 404, "no_notice",
                           "no such notice") < 0)
        return;
    const char *csv = store_tx_value(res, 0, 0, 0);
    gw_req_header_add(call->req, "Cache-Control", "no-store");
    gw_req_header_add(call->req, "Content-Disposition",
                      "attachment; filename=\"interested.csv\"");
    gw_reply(call->req, 200, "text/csv; charset=utf-8", csv, strlen(csv));
}

static void
con_notices_interested(struct con_call *call)
{
    struct con_ntc_api *x = con_ntc_api_new(call);
    struct store_tx tx;
    if (x == NULL || con_ntc_id_or_404(call, x) < 0) return;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){ntc_interested_sql, 1, {x->id}};
    tx.stmt[tx.n++] =
        (struct store_tx_stmt){ntc_interested_audit_sql,
                               5,
                               {call->who.username, call->who.id_text,
                                call->who.role, call->source, x->id}};
    con_tx_or_503(call, &tx, ntc_interested_done);
}

#define NTC_STAFF (CON_ROLE_ADMIN | CON_ROLE_OFFICER)

const struct con_route con_notices_routes[] = {
    {GW_METHOD_GET, "/api/notices", NTC_STAFF, 0, con_notices_list},
    {GW_METHOD_GET, "/api/notices/{}", NTC_STAFF, 0, con_notices_get},
    {GW_METHOD_GET, "/api/notices/{}/preview", NTC_STAFF, 0,
     con_notices_preview},
    {GW_METHOD_GET, "/api/notices/{}/interested.csv", NTC_STAFF, 0,
     con_notices_interested},
    {0, NULL, 0, 0, NULL},
};
