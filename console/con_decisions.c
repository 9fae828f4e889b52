/*
 * con_decisions.c -- officers' decisions on a record: verify, correct,
 * needs info, reject, undo (reopen and revoke for admins), with the SMS
 * back to the returnee; and the start-up check that those SMS fit.  The
 * reads (the queue, one record, /reveal) are con_records.c; what the two
 * share is con_records_int.h.
 *
 * A decision is one transaction of two statements: remigate_decide() (or
 * remigate_correct()) does the record, the decisions row and the held
 * sms_out row under the version check; the audit row is inserted from the
 * decisions row that transaction made (created_at = now(), the
 * transaction's start), so it exists exactly when the decision does.  An
 * attempt that changed nothing (stale version, wrong state) is audited as
 * failed in a transaction of its own before the answer.  The SMS texts in
 * both languages are rendered here, from messages.conf, and the function
 * keeps the one in the record's language; they leave after
 * review.undo_window_s (gw_sendsms.c sends held rows).
 *
 * As for the reads, every statement runs as remigate_console with the
 * officer's scope set (con_tx_init): a record outside the officer's
 * districts is "not_found" to remigate_decide() and answered 404.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "console/con_records_int.h"
#include "flows/flow.h"

#define REC_NOTE_MAX 500  /* bytes of a decision's note */
#define REC_SMS_MAX  1024 /* bytes of one rendered SMS */

#define CON_X_STR(c) #c,
static const char *const rec_reject_reasons[] = {CON_REJECT_REASONS(CON_X_STR)
                                                     NULL};
static const char *const rec_info_reasons[] = {CON_INFO_REASONS(CON_X_STR)
                                                   NULL};
#undef CON_X_STR

/* The decisions remigate_decide() makes: the last segment of its route,
 * its action name, the SMS (messages.conf id, NULL: none) and the
 * reasons it takes (NULL with free_reason: a free text; NULL without:
 * none). */
struct con_rec_action {
    const char *path;
    const char *action;
    const char *audit; /* the audit row's action */
    const char *sms;
    const char *const *reasons;
    int free_reason;
};

static const struct con_rec_action rec_actions[] = {
    {"verify", "verify", "record.verify", "sms_verified", NULL, 0},
    {"needs-info", "needs_info", "record.needs_info", "sms_needs_info",
     rec_info_reasons, 0},
    {"reject", "reject", "record.reject", "sms_rejected", rec_reject_reasons,
     0},
    {"revoke", "revoke", "record.revoke", "sms_rejected", rec_reject_reasons,
     0},
    {"reopen", "reopen", "record.reopen", NULL, NULL, 1},
};
#define REC_VERIFY (&rec_actions[0]) /* a correction verifies too */

/* The fields an officer may correct and how each is checked.  The name
 * and the ID numbers are sealed (007_personal.sql) and are corrected by
 * the returnee registering again, not here. */
enum rec_ftype { REC_F_CODE, REC_F_CODES, REC_F_YEAR, REC_F_NUMBER };
static const struct rec_field {
    const char *name;
    enum rec_ftype type;
    int min, max; /* YEAR: relative to this year; NUMBER: absolute */
} rec_fields[] = {
    {"sex", REC_F_CODE, 0, 0},           {"birth_year", REC_F_YEAR, -75, -16},
    {"division", REC_F_CODE, 0, 0},      {"district", REC_F_CODE, 0, 0},
    {"country", REC_F_CODE, 0, 0},       {"years_abroad", REC_F_NUMBER, 1, 50},
    {"return_year", REC_F_YEAR, -30, 0}, {"reason", REC_F_CODE, 0, 0},
    {"education", REC_F_CODE, 0, 0},     {"skills", REC_F_CODES, 1, 10},
    {"need", REC_F_CODE, 0, 0},
};
#define REC_NFIELDS (sizeof(rec_fields) / sizeof(rec_fields[0]))

/* ------------------------------------------------------------------------
 * Small parsers (each a buffer in, a status out)
 */

long long
con_if_match_parse(const char *h)
{
    char buf[32];
    size_t n;
    if (h == NULL) return -1;
    while (*h == ' ')
        h++;
    if (strncmp(h, "W/", 2) == 0) h += 2;
    n = strlen(h);
    while (n > 0 && h[n - 1] == ' ')
        n--;
    if (n >= 2 && h[0] == '"' && h[n - 1] == '"') {
        h++;
        n -= 2;
    }
    if (n == 0 || n > 18) return -1;
    memcpy(buf, h, n);
    buf[n] = '\0';
    if (strspn(buf, "0123456789") != n) return -1;
    return strtoll(buf, NULL, 10);
}

/* ------------------------------------------------------------------------
 * Decisions
 */

/* The audit row of the decision this transaction made on $1 (the ref) as
 * officer $2 -- none when it made none; with its corrections. */
static const char rec_decision_audit_sql[] = REC_AUDIT_COLS
    "SELECT $3, $2::bigint, $4, $5, 'record.' || d.action, $1, 'ok',"
    " jsonb_strip_nulls(jsonb_build_object('decision', d.id,"
    "  'from', d.from_status, 'to', d.to_status, 'reason', d.reason,"
    "  'note', d.note IS NOT NULL, 'version', d.version, 'sms', d.sms_id,"
    "  'undo_until', d.undo_until,"
    "  'fields', (SELECT jsonb_object_agg(c.field, jsonb_build_object("
    "   'old', c.old_value, 'new', c.new_value))"
    "   FROM corrections c WHERE c.decision_id = d.id)))"
    " FROM decisions d JOIN returnees r ON r.id = d.returnee_id"
    " WHERE r.ref = $1 AND d.officer_id = $2::bigint AND d.created_at = now()";

/* The audit row of an undo made by this transaction. */
static const char rec_undo_audit_sql[] = REC_AUDIT_COLS
    "SELECT $3, $2::bigint, $4, $5, 'record.undo', $1, 'ok',"
    " jsonb_build_object('decision', d.id, 'action', d.action,"
    "  'back_to', d.from_status, 'sms', d.sms_id)"
    " FROM decisions d JOIN returnees r ON r.id = d.returnee_id"
    " WHERE r.ref = $1 AND d.undone_by = $2::bigint AND d.undone_at = now()";

static const char rec_decide_sql[] =
    "SELECT outcome, status, version,"
    " to_char(sms_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " decision_id FROM remigate_decide($1, $2::bigint, $3, $4, $5, $6::uuid,"
    " $7, $8::int, $9, $10::int, $11::int)";

static const char rec_correct_sql[] =
    "SELECT outcome, status, version,"
    " to_char(sms_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " decision_id FROM remigate_correct($1, $2::bigint, $3::jsonb, $4::uuid,"
    " $5, $6::int, $7, $8::int, $9::int)";

static const char rec_undo_sql[] =
    "SELECT outcome, status, version, NULL, decision_id"
    " FROM remigate_undo($1)";

/* A decision's SMS in lang into out (REC_SMS_MAX), its coding in *coding
 * (0 GSM 7-bit, 2 UCS-2).  -1 if it does not fit one SMS part. */
static int
rec_sms_render(const struct flow_set *set, const struct gw_config *cfg,
               const char *msg, const char *lang, const char *ref,
               const char *reason, char *out, int *coding)
{
    char vref[64], vreason[128], vphone[48], id[64];
    const char *label = "";
    struct flow_out fo;
    enum flow_enc enc;
    unsigned units;

    if (reason && reason[0]) {
        snprintf(id, sizeof(id), "reason_%s", reason);
        label = flow_message(set, lang, id);
        if (strcmp(label, id) == 0) label = reason;
    }
    snprintf(vref, sizeof(vref), "ref=%s", ref);
    snprintf(vreason, sizeof(vreason), "reason=%s", label);
    snprintf(vphone, sizeof(vphone), "phone=%s", cfg->office_phone);
    const char *vars[] = {vref, vreason, vphone, NULL};
    flow_render_message_vars(set, lang, FLOW_CH_SMS, msg, vars, &fo);
    size_t tl = strnlen(fo.text, REC_SMS_MAX - 1);
    memcpy(out, fo.text, tl);
    out[tl] = '\0';
    flow_text_measure(out, strlen(out), &enc, &units);
    *coding = enc == FLOW_ENC_UCS2 ? 2 : 0;
    return units <= (enc == FLOW_ENC_UCS2 ? 70u : 160u) ? 0 : -1;
}

static void
rec_uuid(char out[37])
{
    unsigned char u[16];
    char hx[33];
    randombytes_buf(u, sizeof(u));
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    con_rec_hex(u, sizeof(u), hx);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hx, hx + 8, hx + 12, hx + 16,
             hx + 20);
}

/* What remigate_decide/_correct/_undo said, as the answer. */
static void
rec_decided(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct con_rec_ctx *x = con_rec_ctx_of(call);
    const char *outcome;

    if (status != 0) {
        /* a correction moving the record out of the officer's districts */
        if (strcmp(store_tx_sqlstate(res), "42501") == 0) {
            con_deny(call, 403, "out_of_scope",
                     "that would move the record out of your districts",
                     "scope");
            return;
        }
        con_rec_fail(call, x, status, res);
        return;
    }
    CON_AN(store_tx_ntuples(res, 0) == 1);
    outcome = store_tx_value(res, 0, 0, 0);
    if (strcmp(outcome, "not_found") == 0) {
        con_deny(call, 404, "no_record", "no such record in your districts",
                 "scope");
        return;
    }
    if (strcmp(outcome, "not_admin") == 0 ||
        strcmp(outcome, "not_yours") == 0) {
        con_deny(call, 403, "forbidden",
                 strcmp(outcome, "not_admin") == 0
                     ? "changing a final decision needs an admin"
                     : "only the officer who decided (or an admin) can undo",
                 outcome);
        return;
    }
    x->out =
        json_pack("{s:s?,s:o}", "status", store_tx_value(res, 0, 0, 1),
                  "version", con_rec_int_or_null(store_tx_value(res, 0, 0, 2)));
    if (x->out == NULL) {
        con_reply_error(call, 500, "internal", "out of memory");
        return;
    }
    if (strcmp(outcome, "ok") == 0) {
        if (x->act != NULL)
            json_object_set_new(x->out, "sms_at",
                                store_tx_value(res, 0, 0, 3)
                                    ? json_string(store_tx_value(res, 0, 0, 3))
                                    : json_null());
        x->status = 200;
        con_rec_reply_out(call, x);
        return;
    }
    /* nothing changed: say why, with the record's state now, and audit the
     * attempt as failed */
    static const struct {
        const char *outcome, *code, *message;
        int status;
    } why[] = {
        {"stale", "stale", "the record changed since you opened it", 409},
        {"bad_state", "bad_state", "not possible in the record's status", 409},
        {"too_late", "too_late", "the undo window has passed", 409},
        {"nothing", "nothing_to_undo", "no decision to undo", 409},
        {"no_reason", "reason_required", "a reason is required", 422},
        {"bad_field", "bad_field", "a field cannot be corrected", 422},
    };
    x->status = 500;
    for (size_t i = 0; i < sizeof(why) / sizeof(why[0]); i++)
        if (strcmp(why[i].outcome, outcome) == 0) {
            x->status = why[i].status;
            json_object_set_new(x->out, "error", json_string(why[i].code));
            json_object_set_new(x->out, "message", json_string(why[i].message));
        }
    if (x->status == 500) {
        GW_RLOG(GW_LEVEL_ERROR, call->req, 0, "api decision outcome=%s",
                outcome);
        json_object_set_new(x->out, "error", json_string("internal"));
        json_object_set_new(x->out, "message", json_string(outcome));
    }
    snprintf(x->audit, sizeof(x->audit), "{\"outcome\":\"%s\"}", outcome);
    con_rec_audit_then_reply(call, x, x->audit_action, "failed");
}

/* The common start of a decision: the version (If-Match) and the body. */
static int
rec_decision_start(struct con_call *call, struct con_rec_ctx *x, char *version,
                   size_t cap, json_t **body)
{
    long long v = con_if_match_parse(gw_req_header(call->req, "If-Match"));
    size_t len;
    (void)x;
    if (v < 0) {
        con_reply_error(call, 428, "version_required",
                        "send the record's version in If-Match");
        return -1;
    }
    snprintf(version, cap, "%lld", v);
    *body = NULL;
    gw_req_body(call->req, &len);
    if (len > 0 && (*body = con_body_or_400(call)) == NULL) return -1;
    return 0;
}

static void
rec_decide(struct con_call *call, const struct con_rec_action *act)
{
    struct con_rec_ctx *x = con_rec_ctx_new(call);
    const struct flow_set *set = gw_server_flows(call->con->srv);
    const struct gw_config *cfg = call->con->cfg;
    char version[24], uuid[37], hold[16];
    char *sms_bn = NULL, *sms_en = NULL, cbn[4], cen[4];
    char reason[REC_REASON_MAX + 1] = "", note[REC_NOTE_MAX + 1] = "";
    json_t *body = NULL;
    const char *r, *n;
    struct store_tx tx;
    int coding_bn = 0, coding_en = 0;

    if (x == NULL) return;
    x->act = act;
    x->audit_action = act->audit;
    if (set == NULL) {
        con_reply_error(call, 503, "unavailable", "flows not loaded");
        return;
    }
    if (rec_decision_start(call, x, version, sizeof(version), &body) != 0)
        return;
    r = json_string_value(json_object_get(body, "reason"));
    n = json_string_value(json_object_get(body, "note"));
    if (act->reasons != NULL && (r == NULL || !con_rec_in(act->reasons, r))) {
        json_decref(body);
        con_reply_error(call, 422, "bad_reason", "pick a reason from the list");
        return;
    }
    if (act->free_reason &&
        (r == NULL || strlen(r) < 3 || strlen(r) > REC_REASON_MAX)) {
        json_decref(body);
        con_reply_error(call, 422, "reason_required",
                        "say why (3 to 200 characters)");
        return;
    }
    if (n != NULL && strlen(n) > REC_NOTE_MAX) {
        json_decref(body);
        con_reply_error(call, 422, "bad_note", "the note is too long");
        return;
    }
    if (r) snprintf(reason, sizeof(reason), "%s", r);
    if (n) snprintf(note, sizeof(note), "%s", n);
    json_decref(body);

    if (act->sms != NULL) {
        sms_bn = gw_req_alloc(call->req, REC_SMS_MAX);
        sms_en = gw_req_alloc(call->req, REC_SMS_MAX);
        if (sms_bn == NULL || sms_en == NULL) {
            con_reply_error(call, 500, "internal", "out of memory");
            return;
        }
        /* lint at start made sure these fit; a longer reason label since
         * then would show here */
        if (rec_sms_render(set, cfg, act->sms, "bn", x->ref, reason, sms_bn,
                           &coding_bn) != 0 ||
            rec_sms_render(set, cfg, act->sms, "en", x->ref, reason, sms_en,
                           &coding_en) != 0)
            GW_RLOG(GW_LEVEL_WARN, call->req, 0,
                    "api decision sms longer than one part msg=%s", act->sms);
    }
    rec_uuid(uuid);
    snprintf(cbn, sizeof(cbn), "%d", coding_bn);
    snprintf(cen, sizeof(cen), "%d", coding_en);
    snprintf(hold, sizeof(hold), "%ld", cfg->undo_window_s);

    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        rec_decide_sql,
        11,
        {x->ref, version, act->action, reason[0] ? reason : NULL,
         note[0] ? note : NULL, act->sms ? uuid : NULL, sms_bn,
         act->sms ? cbn : NULL, sms_en, act->sms ? cen : NULL, hold}};
    con_rec_audit_stmt(call, x, &tx, rec_decision_audit_sql);
    con_tx_or_503(call, &tx, rec_decided);
}

/* POST /api/records/{ref}/ACTION: the decision named by the route's last
 * segment. */
static void
con_records_decide(struct con_call *call)
{
    const char *path = strrchr(call->route->pattern, '/') + 1;

    for (size_t i = 0; i < sizeof(rec_actions) / sizeof(rec_actions[0]); i++)
        if (strcmp(rec_actions[i].path, path) == 0) {
            rec_decide(call, &rec_actions[i]);
            return;
        }
    CON_WRONG("a decision route without its action");
}

/* One corrected value, checked the way the flow checks it, into fields
 * (as the JSON type the column takes).  NULL or why not. */
static const char *
rec_field_check(const struct flow_set *set, const struct rec_field *f,
                json_t *v, json_t *fields)
{
    time_t now = time(NULL);
    struct tm tm;
    int year;

    gmtime_r(&now, &tm);
    year = tm.tm_year + 1900;
    switch (f->type) {
    case REC_F_CODE: {
        /* lower-case codes; districts and countries upper-case */
        const char *c = json_string_value(v);
        if (c == NULL || !(con_rec_code_ok(c) || con_rec_district_ok(c)) ||
            flow_answer_label(set, REC_FLOW, f->name, c, "en") == NULL)
            return "not a code of its list";
        json_object_set_new(fields, f->name, json_string(c));
        return NULL;
    }
    case REC_F_CODES: {
        size_t i;
        json_t *e, *arr;
        if (!json_is_array(v) || json_array_size(v) < (size_t)f->min ||
            json_array_size(v) > (size_t)f->max)
            return "not a list of codes of the right length";
        arr = json_array();
        json_array_foreach(v, i, e)
        {
            const char *c = json_string_value(e);
            if (c == NULL || !con_rec_code_ok(c) ||
                flow_answer_label(set, REC_FLOW, f->name, c, "en") == NULL) {
                json_decref(arr);
                return "not a code of its list";
            }
            json_array_append_new(arr, json_string(c));
        }
        json_object_set_new(fields, f->name, arr);
        return NULL;
    }
    case REC_F_YEAR:
    case REC_F_NUMBER: {
        json_int_t n;
        int lo = f->type == REC_F_YEAR ? year + f->min : f->min;
        int hi = f->type == REC_F_YEAR ? year + f->max : f->max;
        if (!json_is_integer(v)) return "not a whole number";
        n = json_integer_value(v);
        if (n < lo || n > hi) return "out of range";
        json_object_set_new(fields, f->name, json_integer(n));
        return NULL;
    }
    default:
        CON_WRONG("field type");
    }
}

static void
con_records_correct(struct con_call *call)
{
    struct con_rec_ctx *x = con_rec_ctx_new(call);
    const struct flow_set *set = gw_server_flows(call->con->srv);
    const struct gw_config *cfg = call->con->cfg;
    char version[24], uuid[37], hold[16], cbn[4], cen[4], msg[128];
    char *sms_bn, *sms_en, *fields_text;
    json_t *body = NULL, *in, *fields, *v;
    const char *k;
    struct store_tx tx;
    int coding_bn = 0, coding_en = 0;

    if (x == NULL) return;
    x->act = REC_VERIFY;
    x->audit_action = "record.correct";
    if (set == NULL) {
        con_reply_error(call, 503, "unavailable", "flows not loaded");
        return;
    }
    if (rec_decision_start(call, x, version, sizeof(version), &body) != 0)
        return;
    in = json_object_get(body, "fields");
    if (!json_is_object(in) || json_object_size(in) == 0) {
        json_decref(body);
        con_reply_error(call, 422, "bad_field",
                        "fields: an object of field -> new value");
        return;
    }
    fields = json_object();
    json_object_foreach(in, k, v)
    {
        const struct rec_field *f = NULL;
        const char *why;
        for (size_t i = 0; i < REC_NFIELDS; i++)
            if (strcmp(rec_fields[i].name, k) == 0) f = &rec_fields[i];
        why =
            f ? rec_field_check(set, f, v, fields) : "cannot be corrected here";
        if (why != NULL) {
            snprintf(msg, sizeof(msg), "%.40s: %s", k, why);
            json_decref(fields);
            json_decref(body);
            con_reply_error(call, 422, "bad_field", msg);
            return;
        }
    }
    json_decref(body);
    fields_text = json_dumps(fields, JSON_COMPACT);
    json_decref(fields);
    sms_bn = gw_req_alloc(call->req, REC_SMS_MAX);
    sms_en = gw_req_alloc(call->req, REC_SMS_MAX);
    char *fcopy =
        fields_text ? gw_req_alloc(call->req, strlen(fields_text) + 1) : NULL;
    if (fcopy == NULL || sms_bn == NULL || sms_en == NULL) {
        free(fields_text);
        con_reply_error(call, 500, "internal", "out of memory");
        return;
    }
    memcpy(fcopy, fields_text, strlen(fields_text) + 1);
    free(fields_text);
    rec_sms_render(set, cfg, "sms_verified", "bn", x->ref, NULL, sms_bn,
                   &coding_bn);
    rec_sms_render(set, cfg, "sms_verified", "en", x->ref, NULL, sms_en,
                   &coding_en);
    rec_uuid(uuid);
    snprintf(cbn, sizeof(cbn), "%d", coding_bn);
    snprintf(cen, sizeof(cen), "%d", coding_en);
    snprintf(hold, sizeof(hold), "%ld", cfg->undo_window_s);

    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        rec_correct_sql,
        9,
        {x->ref, version, fcopy, uuid, sms_bn, cbn, sms_en, cen, hold}};
    con_rec_audit_stmt(call, x, &tx, rec_decision_audit_sql);
    con_tx_or_503(call, &tx, rec_decided);
}

static void
con_records_undo(struct con_call *call)
{
    struct con_rec_ctx *x = con_rec_ctx_new(call);
    struct store_tx tx;
    if (x == NULL) return;
    x->audit_action = "record.undo";
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){rec_undo_sql, 1, {x->ref}};
    con_rec_audit_stmt(call, x, &tx, rec_undo_audit_sql);
    con_tx_or_503(call, &tx, rec_decided);
}

/* ------------------------------------------------------------------------
 * Start: the decision SMS must each fit one part
 */

int
con_records_lint(const struct flow_set *set, const struct gw_config *cfg,
                 char *err, size_t errlen)
{
    static const char *const msgs[] = {"sms_verified", "sms_needs_info",
                                       "sms_rejected", NULL};
    static const char *const langs[] = {"bn", "en", NULL};
    char out[REC_SMS_MAX], id[64];
    int coding;

    if (set == NULL) return 0; /* no flows: no dialogue and no decision */

    for (const char *const *m = msgs; *m; m++) {
        if (strcmp(flow_message(set, "en", *m), *m) == 0) {
            snprintf(err, errlen, "messages.conf: %s is missing", *m);
            return -1;
        }
        for (const char *const *l = langs; *l; l++) {
            /* every reason, with a reference of 10 characters */
            const char *const *lists[] = {rec_reject_reasons, rec_info_reasons,
                                          NULL};
            for (const char *const *const *rl = lists; *rl; rl++)
                for (const char *const *r = *rl; *r; r++) {
                    snprintf(id, sizeof(id), "reason_%s", *r);
                    if (strcmp(flow_message(set, *l, id), id) == 0) {
                        snprintf(err, errlen,
                                 "messages.conf: %s (a reason code's short "
                                 "label) is missing",
                                 id);
                        return -1;
                    }
                    if (rec_sms_render(set, cfg, *m, *l, "ABCDEFGHJK", *r, out,
                                       &coding) != 0) {
                        snprintf(err, errlen,
                                 "messages.conf: %s in %s with reason %s does "
                                 "not fit one SMS part (%s)",
                                 *m, *l, *r, coding == 2 ? "70 UCS-2" : "160");
                        return -1;
                    }
                }
        }
    }
    return 0;
}

const struct con_route con_decisions_routes[] = {
    {GW_METHOD_POST, "/api/records/{}/verify",
     CON_ROLE_ADMIN | CON_ROLE_OFFICER, 1, con_records_decide},
    {GW_METHOD_POST, "/api/records/{}/correct",
     CON_ROLE_ADMIN | CON_ROLE_OFFICER, 1, con_records_correct},
    {GW_METHOD_POST, "/api/records/{}/needs-info",
     CON_ROLE_ADMIN | CON_ROLE_OFFICER, 1, con_records_decide},
    {GW_METHOD_POST, "/api/records/{}/reject",
     CON_ROLE_ADMIN | CON_ROLE_OFFICER, 1, con_records_decide},
    {GW_METHOD_POST, "/api/records/{}/undo", CON_ROLE_ADMIN | CON_ROLE_OFFICER,
     1, con_records_undo},
    {GW_METHOD_POST, "/api/records/{}/reopen", CON_ROLE_ADMIN, 1,
     con_records_decide},
    {GW_METHOD_POST, "/api/records/{}/revoke", CON_ROLE_ADMIN, 1,
     con_records_decide},
    {0, NULL, 0, 0, NULL},
};
