/*
 * con_notices_write.c -- the console's programme notices, the writes:
 * POST /api/notices (a draft), PUT /api/notices/{id} (the draft changed
 * by its author), and POST /api/notices/{id}/submit|approve|pause|resume|
 * cancel.  The reads and what both share are con_notices.c
 * (con_notices_int.h).
 *
 * Every write is one transaction with its audit_log row.  A transition
 * loads the notice, asks notices_transition() (notices/) whether the
 * action is allowed from its state, and moves it only if it is still in a
 * state the action starts from.  Approval is by an admin who is not the
 * author (four eyes: here and as a CHECK in the table) and freezes the
 * audience in the same transaction, so the count the approver was shown
 * in the preview is what is queued.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "console/con_notices_int.h"

/* ------------------------------------------------------------------------
 * POST /api/notices
 */

/* The audience of a compose body b: a list member as a text[] (none:
 * empty), the statuses ({verified} when not given). */
#define NTC_AUD_LIST(k)                                                        \
    "ARRAY(SELECT jsonb_array_elements_text("                                  \
    "coalesce(b->'audience'->'" k "', '[]')))"
#define NTC_AUD_STATUSES                                                       \
    "CASE WHEN b->'audience' ? 'statuses' THEN ARRAY(SELECT"                   \
    " jsonb_array_elements_text(b->'audience'->'statuses'))"                   \
    " ELSE '{verified}' END"
#define NTC_AUD_DISTRICTS NTC_AUD_LIST("districts")
#define NTC_AUD_SEXES     NTC_AUD_LIST("sexes")
#define NTC_AUD_COUNTRIES NTC_AUD_LIST("countries")
#define NTC_AUD_SKILLS    NTC_AUD_LIST("skills")
#define NTC_AUD_NEEDS     NTC_AUD_LIST("needs")
#define NTC_AUD_LANGS     NTC_AUD_LIST("langs")

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
    "  " NTC_AUD_DISTRICTS ", " NTC_AUD_SEXES ","
    "  (b->'audience'->>'age_min')::int, (b->'audience'->>'age_max')::int,"
    "  " NTC_AUD_COUNTRIES ", " NTC_AUD_SKILLS ","
    "  b->'audience'->>'education_min',"
    "  (b->'audience'->>'return_year_min')::int,"
    "  (b->'audience'->>'return_year_max')::int,"
    "  " NTC_AUD_NEEDS ", " NTC_AUD_LANGS ", " NTC_AUD_STATUSES ","
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
        con_ntc_fail(call, status, res);
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

/* The request's compose body (POST, or PUT when update) checked and kept
 * in x->body as compact JSON text: 0, or -1 after a 400/422/403/500
 * reply. */
static int
ntc_body_take_or_4xx(struct con_call *call, struct con_ntc_api *x, int update)
{
    json_t *body = con_body_or_400(call);
    char *dump;

    if (body == NULL) return -1;
    if (ntc_body_or_4xx(call, body, update) < 0) {
        json_decref(body);
        return -1;
    }
    dump = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    x->body = con_ntc_dup(call, dump);
    free(dump);
    if (x->body == NULL) {
        con_reply_error(call, 500, "internal", "out of memory");
        return -1;
    }
    return 0;
}

static void
con_notices_create(struct con_call *call)
{
    struct con_ntc_api *x = con_ntc_api_new(call);
    struct store_tx tx;

    if (x == NULL || ntc_body_take_or_4xx(call, x, 0) < 0) return;
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
 * PUT /api/notices/{id} -- change a draft while it is composed
 */

/* $1 the body, $2 the notice, $3 the caller (its author).  The programme
 * changes too when the body has one and no other notice uses it. */
static const char ntc_update_sql[] =
    "WITH b AS (SELECT $1::jsonb AS b),"
    " u AS (UPDATE notices n SET text_bn = b->>'text_bn',"
    "  text_en = nullif(b->>'text_en', ''),"
    "  districts = " NTC_AUD_DISTRICTS ", sexes = " NTC_AUD_SEXES ","
    "  age_min = (b->'audience'->>'age_min')::int,"
    "  age_max = (b->'audience'->>'age_max')::int,"
    "  countries = " NTC_AUD_COUNTRIES ", skills = " NTC_AUD_SKILLS ","
    "  education_min = b->'audience'->>'education_min',"
    "  return_year_min = (b->'audience'->>'return_year_min')::int,"
    "  return_year_max = (b->'audience'->>'return_year_max')::int,"
    "  needs = " NTC_AUD_NEEDS ", langs = " NTC_AUD_LANGS ","
    "  statuses = " NTC_AUD_STATUSES ","
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
    struct con_ntc_api *x = con_ntc_api_of(call);
    /* no row: submitted meanwhile, or its programme came to be shared */
    if (con_ntc_row_or_4xx(call, status, res, 409, "wrong_state",
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
    struct con_ntc_api *x = con_ntc_api_of(call);
    struct con_ntc_loaded l;
    struct store_tx tx;

    if (con_ntc_loaded_or_4xx(call, status, res, &l) < 0) return;
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
    struct con_ntc_api *x = con_ntc_api_new(call);
    struct store_tx tx;

    if (x == NULL || con_ntc_id_or_404(call, x) < 0 ||
        ntc_body_take_or_4xx(call, x, 1) < 0)
        return;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){con_ntc_load_sql, 1, {x->id}};
    con_tx_or_503(call, &tx, ntc_loaded_update);
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

/* phase = 0 is state = 'queued' (migration 022): its partial index */
static const char ntc_cancel_rows_sql[] =
    "UPDATE notice_outbox SET state = 'cancelled', final_at = now()"
    " WHERE notice_id = $1::bigint AND state = 'queued' AND phase = 0"
    " AND EXISTS (SELECT 1 FROM notices WHERE id = $1::bigint"
    "             AND state = 'cancelled')";

static void
ntc_acted(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct con_ntc_api *x = con_ntc_api_of(call);
    /* no row: it moved since it was loaded */
    if (con_ntc_row_or_4xx(call, status, res, 409, "wrong_state",
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
    struct con_ntc_api *x = con_ntc_api_of(call);
    const struct gw_config *cfg = call->con->cfg;
    struct con_ntc_loaded l;
    struct store_tx tx;
    const char *why = NULL;
    char action[32];

    if (con_ntc_loaded_or_4xx(call, status, res, &l) < 0) return;
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
        if (con_ntc_render(call, x, &l, &why) < 0) {
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
    char *act = con_ntc_dup(call, action);
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
    struct con_ntc_api *x = con_ntc_api_new(call);
    struct store_tx tx;
    if (x == NULL || con_ntc_id_or_404(call, x) < 0) return;
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
    tx.stmt[tx.n++] = (struct store_tx_stmt){con_ntc_load_sql, 1, {x->id}};
    con_tx_or_503(call, &tx, ntc_loaded_act);
}

/* POST /api/notices/{id}/ACTION: the action is the route's last segment
 * (submit, approve, pause, resume, cancel). */
static void
con_notices_act(struct con_call *call)
{
    enum notices_action a =
        notices_action_parse(strrchr(call->route->pattern, '/') + 1);
    CON_AN(a != NOTICES_ACTION_INVALID);
    ntc_act(call, a);
}

#define NTC_STAFF (CON_ROLE_ADMIN | CON_ROLE_OFFICER)

const struct con_route con_notices_write_routes[] = {
    {GW_METHOD_POST, "/api/notices", NTC_STAFF, 1, con_notices_create},
    {GW_METHOD_PUT, "/api/notices/{}", NTC_STAFF, 1, con_notices_update},
    {GW_METHOD_POST, "/api/notices/{}/submit", NTC_STAFF, 1, con_notices_act},
    {GW_METHOD_POST, "/api/notices/{}/approve", CON_ROLE_ADMIN, 1,
     con_notices_act},
    {GW_METHOD_POST, "/api/notices/{}/pause", NTC_STAFF, 1, con_notices_act},
    {GW_METHOD_POST, "/api/notices/{}/resume", NTC_STAFF, 1, con_notices_act},
    {GW_METHOD_POST, "/api/notices/{}/cancel", NTC_STAFF, 1, con_notices_act},
    {0, NULL, 0, 0, NULL},
};
