/*
 * con_notices.c -- the console's programme notices: /api/notices.
 *
 * The rules live in two places on purpose: notices/ (the pure core:
 * templates, parts, the state machine) and 008_notices.sql (who is in the
 * audience, the freeze).  A handler here checks the caller's input with
 * the first, asks PostgreSQL with the second, and answers.  Every call
 * runs as the console role with the officer set, so row-level security
 * keeps an officer to notices of their own districts (another district's
 * notice is a 404).  Every write is one transaction with its audit_log
 * row.  Approval is by an admin who is not the author (four eyes: here
 * and as a CHECK in the table) and freezes the audience in the same
 * transaction, so the count the approver was shown in the preview is what
 * is queued.
 *
 * Replies are built by PostgreSQL as JSON text where that is simpler than
 * packing them here (the notice and its counts), parsed once and passed
 * on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "console/con_int.h"
#include "notices/notices.h"

#define NTC_API_MAGIC 0x4e544150u

/* A call's own state (gw_req_alloc). */
struct ntc_api {
    unsigned magic;
    enum notices_action action; /* the write, for the POST actions */
    char id[24];                /* the notice id, digits */
    char caps[3][16];           /* notices.cap, cap_days, cap_per_day */
    char allowed[128];          /* {state,...} the action may start from */
    char to_state[16];
    char vetting[128];
    char audit[512]; /* detail JSON */
    char *body;      /* the POST body as JSON text (create) */
    char *sms_bn, *sms_en;
    char parts_bn[8], parts_en[8], ucs2_en[8];
};

static struct ntc_api *
ntc_api_new(struct con_call *call)
{
    struct ntc_api *x = gw_req_alloc(call->req, sizeof(*x));
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

static struct ntc_api *
ntc_api_of(struct con_call *call)
{
    struct ntc_api *x = call->data;
    CON_AN(x != NULL && x->magic == NTC_API_MAGIC);
    return x;
}

/* Copy s into request memory (NULL stays NULL). */
static char *
ntc_api_dup(struct con_call *call, const char *s)
{
    if (s == NULL) return NULL;
    size_t n = strlen(s) + 1;
    char *p = gw_req_alloc(call->req, n);
    if (p != NULL) memcpy(p, s, n);
    return p;
}

/* The {} of the path as a notice id, or a 404 and -1. */
static int
ntc_api_id_or_404(struct con_call *call, struct ntc_api *x)
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
static void
ntc_api_fail(struct con_call *call, int status,
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
static int
ntc_row_or_4xx(struct con_call *call, int status,
               const struct store_tx_result *res, int code, const char *err,
               const char *msg)
{
    if (status != STORE_OK) {
        ntc_api_fail(call, status, res);
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
    if (ntc_row_or_4xx(call, status, res, 404, "no_notice", "no such notice") <
        0)
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
    struct ntc_api *x = ntc_api_new(call);
    struct store_tx tx;
    if (x == NULL || ntc_api_id_or_404(call, x) < 0) return;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){ntc_get_sql, 1, {x->id}};
    con_tx_or_503(call, &tx, ntc_api_text_done);
}

/* ------------------------------------------------------------------------
 * POST /api/notices
 */

static const char ntc_create_sql[] =
    "WITH b AS (SELECT $1::jsonb AS b),"
    " p AS (INSERT INTO programmes (kind, title_bn, title_en, provider, place,"
    "  capacity, deadline, phone, reply_code, created_by)"
    "  SELECT b->'programme'->>'kind', b->'programme'->>'title_bn',"
    "   nullif(b->'programme'->>'title_en', ''), b->'programme'->>'provider',"
    "   b->'programme'->>'place', (b->'programme'->>'capacity')::int,"
    "   (b->'programme'->>'deadline')::date, b->'programme'->>'phone',"
    "   upper(b->'programme'->>'reply_code'), $2::bigint"
    "  FROM b WHERE b ? 'programme' RETURNING id)"
    " INSERT INTO notices (programme_id, text_bn, text_en, districts, sexes,"
    "  age_min, age_max, countries, skills, education_min, return_year_min,"
    "  return_year_max, needs, langs, statuses, recent_days, hourly_cap,"
    "  send_after, author_id)"
    " SELECT coalesce((SELECT id FROM p), (b->>'programme_id')::bigint),"
    "  b->>'text_bn', nullif(b->>'text_en', ''),"
    "  ARRAY(SELECT jsonb_array_elements_text(coalesce(b->'audience'->"
    "   'districts', '[]'))),"
    "  ARRAY(SELECT jsonb_array_elements_text(coalesce(b->'audience'->"
    "   'sexes', '[]'))),"
    "  (b->'audience'->>'age_min')::int, (b->'audience'->>'age_max')::int,"
    "  ARRAY(SELECT jsonb_array_elements_text(coalesce(b->'audience'->"
    "   'countries', '[]'))),"
    "  ARRAY(SELECT jsonb_array_elements_text(coalesce(b->'audience'->"
    "   'skills', '[]'))),"
    "  b->'audience'->>'education_min',"
    "  (b->'audience'->>'return_year_min')::int,"
    "  (b->'audience'->>'return_year_max')::int,"
    "  ARRAY(SELECT jsonb_array_elements_text(coalesce(b->'audience'->"
    "   'needs', '[]'))),"
    "  ARRAY(SELECT jsonb_array_elements_text(coalesce(b->'audience'->"
    "   'langs', '[]'))),"
    "  CASE WHEN b->'audience' ? 'statuses' THEN ARRAY(SELECT"
    "   jsonb_array_elements_text(b->'audience'->'statuses'))"
    "   ELSE '{verified}' END,"
    "  coalesce((b->>'recent_days')::int, 30), (b->>'hourly_cap')::int,"
    "  (b->>'send_after')::timestamptz, $2::bigint"
    " FROM b RETURNING id::text";

/* The audit row of the notice this transaction created. */
static const char ntc_create_audit_sql[] =
    "INSERT INTO audit_log (actor, actor_id, role, source, action, target,"
    " outcome, detail)"
    " SELECT $1, $2::bigint, $3, $4, 'notice.create', n.id::text, 'ok',"
    " jsonb_build_object('programme', n.programme_id, 'districts',"
    "  n.districts)"
    " FROM notices n WHERE n.id = currval('notices_id_seq')";

static void
ntc_api_created(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    if (status != STORE_OK) {
        ntc_api_fail(call, status, res);
        return;
    }
    const char *id = store_tx_value(res, 0, 0, 0);
    con_reply_json(call, 201,
                   json_pack("{s:I,s:s}", "id",
                             (json_int_t)strtoll(id ? id : "0", NULL, 10),
                             "state", "draft"));
}

/* An optional string member: NULL (absent or null), or its value; a
 * member of another type sets *bad. */
static const char *
ntc_json_str(json_t *o, const char *key, int *bad)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v)) return NULL;
    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

/* Check a compose body (POST, or PUT when update): 0, or -1 after a
 * 422/403 reply.  The body stays the caller's. */
static int
ntc_body_or_4xx(struct con_call *call, json_t *body, int update)
{
    json_t *aud, *prog, *sts, *dis;
    const char *why = NULL, *bn, *en;
    int bad = 0;

    bn = ntc_json_str(body, "text_bn", &bad);
    en = ntc_json_str(body, "text_en", &bad);
    prog = json_object_get(body, "programme");
    aud = json_object_get(body, "audience");
    if (bad || bn == NULL)
        why = "text_bn (the Bangla text) is required";
    else if ((why = notices_template_check(bn, strlen(bn))) == NULL && en &&
             en[0])
        why = notices_template_check(en, strlen(en));
    if (why == NULL && !update &&
        (prog == NULL) == (json_object_get(body, "programme_id") == NULL))
        why = "give either programme (a new one) or programme_id";
    if (why == NULL && update && json_object_get(body, "programme_id"))
        why = "a draft keeps its programme: change programme instead";
    if (why == NULL && prog != NULL && !json_is_object(prog))
        why = "programme must be an object";
    if (why == NULL && aud != NULL && !json_is_object(aud))
        why = "audience must be an object";
    if (why != NULL) {
        con_reply_error(call, 422, "invalid_notice", why);
        return -1;
    }
    /* only an admin may reach past verified records */
    sts = aud ? json_object_get(aud, "statuses") : NULL;
    if (sts != NULL && call->who.role_bit != CON_ROLE_ADMIN) {
        size_t i;
        json_t *v;
        json_array_foreach(sts, i, v)
        {
            if (!json_is_string(v) ||
                strcmp(json_string_value(v), "verified") != 0) {
                con_deny(call, 403, "admin_only",
                         "only an admin may send to records not verified",
                         "role");
                return -1;
            }
        }
    }
    /* an officer writes for their own districts: none means everyone */
    dis = aud ? json_object_get(aud, "districts") : NULL;
    if (call->who.role_bit != CON_ROLE_ADMIN &&
        (dis == NULL || json_array_size(dis) == 0)) {
        con_reply_error(call, 422, "districts_required",
                        "name the districts the notice is for");
        return -1;
    }
    return 0;
}

static void
con_notices_create(struct con_call *call)
{
    struct ntc_api *x = ntc_api_new(call);
    struct store_tx tx;
    json_t *body;

    if (x == NULL || (body = con_body_or_400(call)) == NULL) return;
    if (ntc_body_or_4xx(call, body, 0) < 0) {
        json_decref(body);
        return;
    }
    char *dump = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    x->body = ntc_api_dup(call, dump);
    free(dump);
    if (x->body == NULL) {
        con_reply_error(call, 500, "internal", "out of memory");
        return;
    }
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] =
        (struct store_tx_stmt){ntc_create_sql, 2, {x->body, call->who.id_text}};
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        ntc_create_audit_sql,
        4,
        {call->who.username, call->who.id_text, call->who.role, call->source}};
    con_tx_or_503(call, &tx, ntc_api_created);
}

/* ------------------------------------------------------------------------
 * Loading a notice with its programme, then acting on it
 */

static const char ntc_load_sql[] =
    "SELECT n.state, coalesce(n.author_id::text, ''), n.text_bn,"
    " n.text_en, p.reply_code, coalesce(to_char(p.deadline, 'DD-MM-YYYY'),"
    " ''), coalesce(p.phone, ''), coalesce(n.vetting_ref, '')"
    " FROM notices n JOIN programmes p ON p.id = n.programme_id"
    " WHERE n.id = $1::bigint";

/* What a loaded notice says; values borrowed from the result. */
struct ntc_loaded {
    enum notices_state state;
    const char *author, *text_bn, *text_en;
    struct notices_vars vars;
};

static int
ntc_loaded_of(const struct store_tx_result *res, int stmt, struct ntc_loaded *l)
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
static int
ntc_loaded_or_4xx(struct con_call *call, int status,
                  const struct store_tx_result *res, struct ntc_loaded *l)
{
    if (status != STORE_OK) {
        ntc_api_fail(call, status, res);
        return -1;
    }
    if (ntc_loaded_of(res, 0, l) < 0) {
        con_reply_error(call, 404, "no_notice", "no such notice");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * PUT /api/notices/{id} -- change a draft while it is composed
 */

/* $1 the body, $2 the notice, $3 the caller (its author).  The programme
 * changes too when the body has one and no other notice uses it. */
static const char ntc_update_sql[] =
    "WITH b AS (SELECT $1::jsonb AS b),"
    " u AS (UPDATE notices n SET text_bn = b->>'text_bn',"
    "  text_en = nullif(b->>'text_en', ''),"
    "  districts = ARRAY(SELECT"
    " jsonb_array_elements_text(coalesce(b->'audience'->'districts', '[]'))),"
    "  sexes = ARRAY(SELECT"
    " jsonb_array_elements_text(coalesce(b->'audience'->'sexes', '[]'))),"
    "  age_min = (b->'audience'->>'age_min')::int,"
    "  age_max = (b->'audience'->>'age_max')::int,"
    "  countries = ARRAY(SELECT"
    " jsonb_array_elements_text(coalesce(b->'audience'->'countries', '[]'))),"
    "  skills = ARRAY(SELECT"
    " jsonb_array_elements_text(coalesce(b->'audience'->'skills', '[]'))),"
    "  education_min = b->'audience'->>'education_min',"
    "  return_year_min = (b->'audience'->>'return_year_min')::int,"
    "  return_year_max = (b->'audience'->>'return_year_max')::int,"
    "  needs = ARRAY(SELECT"
    " jsonb_array_elements_text(coalesce(b->'audience'->'needs', '[]'))),"
    "  langs = ARRAY(SELECT"
    " jsonb_array_elements_text(coalesce(b->'audience'->'langs', '[]'))),"
    "  statuses = CASE WHEN b->'audience' ? 'statuses' THEN ARRAY(SELECT"
    "   jsonb_array_elements_text(b->'audience'->'statuses'))"
    "   ELSE '{verified}' END,"
    "  recent_days = coalesce((b->>'recent_days')::int, 30),"
    "  hourly_cap = (b->>'hourly_cap')::int,"
    "  send_after = (b->>'send_after')::timestamptz,"
    "  updated_at = now(), version = n.version + 1"
    "  FROM b WHERE n.id = $2::bigint AND n.state = 'draft'"
    "  AND n.author_id = $3::bigint"
    "  AND (NOT b ? 'programme' OR notice_programme_alone(n.id))"
    "  RETURNING n.id, n.programme_id, n.version),"
    " p AS (UPDATE programmes p SET kind = b->'programme'->>'kind',"
    "  title_bn = b->'programme'->>'title_bn',"
    "  title_en = nullif(b->'programme'->>'title_en', ''),"
    "  provider = b->'programme'->>'provider',"
    "  place = b->'programme'->>'place',"
    "  capacity = (b->'programme'->>'capacity')::int,"
    "  deadline = (b->'programme'->>'deadline')::date,"
    "  phone = b->'programme'->>'phone',"
    "  reply_code = upper(b->'programme'->>'reply_code')"
    "  FROM b, u WHERE p.id = u.programme_id AND b ? 'programme'"
    "  RETURNING p.id)"
    " SELECT u.version::text, (SELECT count(*) FROM p)::text FROM u";

/* Written only when this transaction changed the draft. */
static const char ntc_update_audit_sql[] =
    "INSERT INTO audit_log (actor, actor_id, role, source, action, target,"
    " outcome, detail)"
    " SELECT $1, $2::bigint, $3, $4, 'notice.update', n.id::text, 'ok',"
    " jsonb_build_object('version', n.version, 'programme', n.programme_id,"
    "  'districts', n.districts)"
    " FROM notices n WHERE n.id = $5::bigint AND n.updated_at = now()"
    " AND n.state = 'draft'";

static void
ntc_updated(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct ntc_api *x = ntc_api_of(call);
    /* no row: submitted meanwhile, or its programme came to be shared */
    if (ntc_row_or_4xx(call, status, res, 409, "wrong_state",
                       "the notice is no longer a draft, or its programme "
                       "is used by another notice; load it again") < 0)
        return;
    con_reply_json(call, 200,
                   json_pack("{s:I,s:s,s:I}", "id",
                             (json_int_t)strtoll(x->id, NULL, 10), "state",
                             "draft", "version",
                             (json_int_t)atoll(store_tx_value(res, 0, 0, 0))));
}

static void
ntc_loaded_update(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct ntc_api *x = ntc_api_of(call);
    struct ntc_loaded l;
    struct store_tx tx;

    if (ntc_loaded_or_4xx(call, status, res, &l) < 0) return;
    if (l.state != NOTICES_DRAFT) {
        con_reply_error(call, 409, "wrong_state",
                        "only a draft can be changed");
        return;
    }
    if (strcmp(l.author, call->who.id_text) != 0) {
        con_deny(call, 403, "not_author",
                 "only the author of a draft can change it", "not_author");
        return;
    }
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        ntc_update_sql, 3, {x->body, x->id, call->who.id_text}};
    tx.stmt[tx.n++] =
        (struct store_tx_stmt){ntc_update_audit_sql,
                               5,
                               {call->who.username, call->who.id_text,
                                call->who.role, call->source, x->id}};
    con_tx_or_503(call, &tx, ntc_updated);
}

/* PUT /api/notices/{id}: the body as for POST /api/notices, without
 * programme_id; programme optional (absent: the programme stays). */
static void
con_notices_update(struct con_call *call)
{
    struct ntc_api *x = ntc_api_new(call);
    struct store_tx tx;
    json_t *body;

    if (x == NULL || ntc_api_id_or_404(call, x) < 0) return;
    if ((body = con_body_or_400(call)) == NULL) return;
    if (ntc_body_or_4xx(call, body, 1) < 0) {
        json_decref(body);
        return;
    }
    char *dump = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    x->body = ntc_api_dup(call, dump);
    free(dump);
    if (x->body == NULL) {
        con_reply_error(call, 500, "internal", "out of memory");
        return;
    }
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){ntc_load_sql, 1, {x->id}};
    con_tx_or_503(call, &tx, ntc_loaded_update);
}

/* Render both texts into x (request memory): 0, or -1 with why. */
static int
ntc_api_render(struct con_call *call, struct ntc_api *x,
               const struct ntc_loaded *l, const char **why)
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
    x->sms_bn = ntc_api_dup(call, out);
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
        x->sms_en = ntc_api_dup(call, out);
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
    struct ntc_api *x = ntc_api_of(call);
    struct ntc_loaded l;
    const char *why = NULL;
    json_error_t jerr;

    if (ntc_loaded_or_4xx(call, status, res, &l) < 0) return;
    json_t *o = json_loads(store_tx_value(res, 1, 0, 0), 0, &jerr);
    if (o == NULL) {
        con_reply_error(call, 500, "internal", "bad reply from the database");
        return;
    }
    if (ntc_api_render(call, x, &l, &why) < 0) {
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
    struct ntc_api *x = ntc_api_new(call);
    struct store_tx tx;
    if (x == NULL || ntc_api_id_or_404(call, x) < 0) return;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){ntc_load_sql, 1, {x->id}};
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        ntc_preview_sql, 4, {x->id, x->caps[0], x->caps[1], x->caps[2]}};
    con_tx_or_503(call, &tx, ntc_preview_done);
}

/* ------------------------------------------------------------------------
 * POST /api/notices/{id}/submit|approve|pause|resume|cancel
 */

static const char ntc_submit_sql[] =
    "UPDATE notices SET state = 'submitted', sms_bn = $2, sms_en = $3,"
    " parts_bn = $4::int, parts_en = $5::int, ucs2_en = $6::boolean,"
    " submitted_at = now(), updated_at = now(), version = version + 1"
    " WHERE id = $1::bigint AND state = 'draft' RETURNING state";

static const char ntc_approve_sql[] =
    "UPDATE notices SET state = 'approved', approver_id = $2::bigint,"
    " vetting_ref = nullif($3, ''), approved_at = now(), updated_at = now(),"
    " version = version + 1"
    " WHERE id = $1::bigint AND state = 'submitted'"
    " AND author_id IS DISTINCT FROM $2::bigint RETURNING state";

static const char ntc_freeze_sql[] =
    "SELECT notice_freeze(id, now(), $2::int, $3::int, $4::int) FROM notices"
    " WHERE id = $1::bigint AND state = 'approved' AND approved_at = now()";

static const char ntc_move_sql[] =
    "UPDATE notices SET state = $2,"
    " paused_why = CASE WHEN $2 = 'paused' THEN 'officer' END,"
    " finished_at = CASE WHEN $2 = 'cancelled' THEN now() END,"
    " updated_at = now(), version = version + 1"
    " WHERE id = $1::bigint AND state = ANY ($3::text[]) RETURNING state";

static const char ntc_cancel_rows_sql[] =
    "UPDATE notice_outbox SET state = 'cancelled', final_at = now()"
    " WHERE notice_id = $1::bigint AND state = 'queued'"
    " AND EXISTS (SELECT 1 FROM notices WHERE id = $1::bigint"
    "             AND state = 'cancelled')";

static void
ntc_acted(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct ntc_api *x = ntc_api_of(call);
    /* no row: it moved since it was loaded */
    if (ntc_row_or_4xx(call, status, res, 409, "wrong_state",
                       "the notice changed meanwhile; load it again") < 0)
        return;
    json_t *o =
        json_pack("{s:I,s:s}", "id", (json_int_t)strtoll(x->id, NULL, 10),
                  "state", store_tx_value(res, 0, 0, 0));
    if (x->action == NOTICES_ACT_APPROVE && o != NULL)
        json_object_set_new(
            o, "queued",
            json_integer(atoll(store_tx_value(res, 1, 0, 0)
                                   ? store_tx_value(res, 1, 0, 0)
                                   : "0")));
    con_reply_json(call, 200, o);
}

/* The states action may start from, as a SQL array text. */
static void
ntc_allowed(enum notices_action a, char *out, size_t cap)
{
    size_t o = 0;
    out[o++] = '{';
    for (int s = 0; s < NOTICES_STATE_INVALID; s++) {
        if (notices_transition((enum notices_state)s, a) ==
            NOTICES_STATE_INVALID)
            continue;
        o += (size_t)snprintf(out + o, cap - o, "%s%s", o > 1 ? "," : "",
                              notices_state_name((enum notices_state)s));
    }
    snprintf(out + o, cap - o, "}");
}

static void
ntc_loaded_act(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct ntc_api *x = ntc_api_of(call);
    const struct gw_config *cfg = call->con->cfg;
    struct ntc_loaded l;
    struct store_tx tx;
    const char *why = NULL;
    char action[32];

    if (ntc_loaded_or_4xx(call, status, res, &l) < 0) return;
    enum notices_state to = notices_transition(l.state, x->action);
    if (to == NOTICES_STATE_INVALID) {
        con_reply_error(call, 409, "wrong_state",
                        "the notice is not in a state this allows");
        return;
    }
    snprintf(x->to_state, sizeof(x->to_state), "%s", notices_state_name(to));
    snprintf(action, sizeof(action), "notice.%s",
             notices_action_name(x->action));
    con_tx_init(call, &tx);
    switch (x->action) {
    case NOTICES_ACT_SUBMIT:
        if (ntc_api_render(call, x, &l, &why) < 0) {
            con_reply_error(call, 422, "invalid_notice", why);
            return;
        }
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            ntc_submit_sql,
            6,
            {x->id, x->sms_bn, x->sms_en, x->parts_bn,
             x->sms_en ? x->parts_en : NULL, x->sms_en ? x->ucs2_en : NULL}};
        break;
    case NOTICES_ACT_APPROVE:
        if (strcmp(l.author, call->who.id_text) == 0) {
            con_deny(call, 403, "four_eyes",
                     "the author of a notice cannot approve it", "four_eyes");
            return;
        }
        if (strcmp(cfg->notices_vetting, "required") == 0 &&
            strlen(x->vetting) < 3) {
            con_reply_error(call, 422, "vetting_required",
                            "enter the regulator's vetting reference");
            return;
        }
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            ntc_approve_sql, 3, {x->id, call->who.id_text, x->vetting}};
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            ntc_freeze_sql, 4, {x->id, x->caps[0], x->caps[1], x->caps[2]}};
        /* the freeze writes a row per recipient: tens of seconds at a
         * million, far past the console's usual deadline */
        tx.timeout_ms = (int)cfg->notices_approve_timeout_ms;
        gw_req_deadline_in(call->req, cfg->notices_approve_timeout_ms + 1000);
        break;
    case NOTICES_ACT_PAUSE:
    case NOTICES_ACT_RESUME:
    case NOTICES_ACT_CANCEL:
        ntc_allowed(x->action, x->allowed, sizeof(x->allowed));
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            ntc_move_sql, 3, {x->id, x->to_state, x->allowed}};
        if (x->action == NOTICES_ACT_CANCEL)
            tx.stmt[tx.n++] =
                (struct store_tx_stmt){ntc_cancel_rows_sql, 1, {x->id}};
        break;
    default:
        CON_WRONG("notice action");
    }
    snprintf(x->audit, sizeof(x->audit), "{\"from\":\"%s\",\"to\":\"%s\"}",
             notices_state_name(l.state), x->to_state);
    char *act = ntc_api_dup(call, action);
    if (act == NULL ||
        con_audit_add(call, &tx, NULL, act, x->id, "ok", x->audit) != 0) {
        con_reply_error(call, 500, "internal", "out of memory");
        return;
    }
    con_tx_or_503(call, &tx, ntc_acted);
}

static void
ntc_act(struct con_call *call, enum notices_action a)
{
    struct ntc_api *x = ntc_api_new(call);
    struct store_tx tx;
    if (x == NULL || ntc_api_id_or_404(call, x) < 0) return;
    x->action = a;
    if (a == NOTICES_ACT_APPROVE) {
        /* an optional body: {"vetting_ref": "..."} */
        size_t len;
        gw_req_body(call->req, &len);
        if (len > 0) {
            json_t *body = con_body_or_400(call);
            if (body == NULL) return;
            int bad = 0;
            const char *v = ntc_json_str(body, "vetting_ref", &bad);
            if (bad || (v && strlen(v) >= sizeof(x->vetting))) {
                json_decref(body);
                con_reply_error(call, 422, "invalid_notice",
                                "vetting_ref must be a short text");
                return;
            }
            snprintf(x->vetting, sizeof(x->vetting), "%s", v ? v : "");
            json_decref(body);
        }
    }
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){ntc_load_sql, 1, {x->id}};
    con_tx_or_503(call, &tx, ntc_loaded_act);
}

static void
con_notices_submit(struct con_call *call)
{
    ntc_act(call, NOTICES_ACT_SUBMIT);
}

static void
con_notices_approve(struct con_call *call)
{
    ntc_act(call, NOTICES_ACT_APPROVE);
}

static void
con_notices_pause(struct con_call *call)
{
    ntc_act(call, NOTICES_ACT_PAUSE);
}

static void
con_notices_resume(struct con_call *call)
{
    ntc_act(call, NOTICES_ACT_RESUME);
}

static void
con_notices_cancel(struct con_call *call)
{
    ntc_act(call, NOTICES_ACT_CANCEL);
}

/* ------------------------------------------------------------------------
 * GET /api/notices/{id}/interested.csv -- the call list, audited
 */

/* RFC 4180: every field quoted, quotes doubled; CRLF; a UTF-8 BOM so
 * spreadsheets read Bangla. */
#define NTC_CSV(x)                                                             \
    "'\"' || replace(coalesce((" x ")::text, ''), '\"', '\"\"') || '\"'"

static const char ntc_interested_sql[] =
    "SELECT E'\\uFEFF' || 'notice,ref,msisdn,district,lang,said,at' ||"
    " E'\\r\\n' || coalesce(string_agg(concat_ws(','," NTC_CSV("i.notice_id") ", " NTC_CSV("r.ref") ", " NTC_CSV("i.msisdn") ", " NTC_CSV("r.district") ", " NTC_CSV(
        "r.lang") ", " NTC_CSV("i.said") ", " NTC_CSV("to_char(i.created_at AT "
                                                      "TIME ZONE 'UTC', "
                                                      "'YYYY-MM-DD\"T\"HH24:MI:"
                                                      "SS\"Z\"')") ") || "
                                                                   "E'\\r\\n', "
                                                                   "''"
                                                                   " ORDER BY "
                                                                   "i.id), "
                                                                   "''), "
                                                                   "count(i.id)"
                                                                   " FROM "
                                                                   "notices n "
                                                                   "LEFT JOIN "
                                                                   "notice_"
                                                                   "interest i "
                                                                   "ON "
                                                                   "i.notice_"
                                                                   "id = n.id"
                                                                   " LEFT JOIN "
                                                                   "returnees "
                                                                   "r ON r.id "
                                                                   "= "
                                                                   "i.returnee_"
                                                                   "id"
                                                                   " WHERE "
                                                                   "n.id = "
                                                                   "$1::bigint "
                                                                   "GROUP BY "
                                                                   "n.id";

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
    if (ntc_row_or_4xx(call, status, res, 404, "no_notice", "no such notice") <
        0)
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
    struct ntc_api *x = ntc_api_new(call);
    struct store_tx tx;
    if (x == NULL || ntc_api_id_or_404(call, x) < 0) return;
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
    {GW_METHOD_POST, "/api/notices", NTC_STAFF, 1, con_notices_create},
    {GW_METHOD_GET, "/api/notices/{}", NTC_STAFF, 0, con_notices_get},
    {GW_METHOD_PUT, "/api/notices/{}", NTC_STAFF, 1, con_notices_update},
    {GW_METHOD_GET, "/api/notices/{}/preview", NTC_STAFF, 0,
     con_notices_preview},
    {GW_METHOD_GET, "/api/notices/{}/interested.csv", NTC_STAFF, 0,
     con_notices_interested},
    {GW_METHOD_POST, "/api/notices/{}/submit", NTC_STAFF, 1,
     con_notices_submit},
    {GW_METHOD_POST, "/api/notices/{}/approve", CON_ROLE_ADMIN, 1,
     con_notices_approve},
    {GW_METHOD_POST, "/api/notices/{}/pause", NTC_STAFF, 1, con_notices_pause},
    {GW_METHOD_POST, "/api/notices/{}/resume", NTC_STAFF, 1,
     con_notices_resume},
    {GW_METHOD_POST, "/api/notices/{}/cancel", NTC_STAFF, 1,
     con_notices_cancel},
    {0, NULL, 0, 0, NULL},
};
