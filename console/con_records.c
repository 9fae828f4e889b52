/*
 * con_records.c -- one record (GET /api/records/{ref}) and /reveal of its
 * ID number; and the request state and helpers the record files share
 * (con_records_int.h).  The queue is con_queue.c, officers' decisions
 * con_decisions.c.
 *
 * Every query runs on the console's pool as remigate_console with the
 * officer's scope set (con_tx_init): what an officer may not see is not
 * there for the C code either (005_review.sql).  So "outside your
 * districts" and "no such record" are the same answer, 404, and both are
 * audited (con_deny).
 *
 * ID numbers leave the database encrypted; they are opened here only to
 * mask them (last 3 characters) or for /reveal, which is audited with its
 * reason before the number is answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "console/con_records_int.h"
#include "flows/flow.h"

#define REC_MAGIC 0x52454343u

/* ------------------------------------------------------------------------
 * What the record files share (con_records_int.h)
 */

int
con_rec_in(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0) return 1;
    return 0;
}

struct con_rec_ctx *
con_rec_ctx_new(struct con_call *call)
{
    struct con_rec_ctx *x = gw_req_alloc(call->req, sizeof(*x));
    if (x == NULL) {
        con_reply_error(call, 500, "internal", "out of memory");
        return NULL;
    }
    x->magic = REC_MAGIC;
    snprintf(x->ref, sizeof(x->ref), "%s",
             call->nparams > 0 ? call->params[0] : "");
    call->data = x;
    return x;
}

struct con_rec_ctx *
con_rec_ctx_of(struct con_call *call)
{
    struct con_rec_ctx *x = call->data;
    CON_AN(x != NULL && x->magic == REC_MAGIC);
    return x;
}

/* Answer with x->out (taken) at x->status. */
void
con_rec_reply_out(struct con_call *call, struct con_rec_ctx *x)
{
    json_t *o = x->out;
    x->out = NULL;
    con_reply_json(call, x->status, o);
}

void
con_rec_fail(struct con_call *call, struct con_rec_ctx *x, int status,
             const struct store_tx_result *res)
{
    json_decref(x->out);
    x->out = NULL;
    con_reply_store_error(call, status, res);
}

void
con_rec_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void
con_rec_audit_stmt(const struct con_call *call, const struct con_rec_ctx *x,
                   struct store_tx *tx, const char *sql)
{
    tx->stmt[tx->n++] =
        (struct store_tx_stmt){sql,
                               5,
                               {x->ref, call->who.id_text, call->who.username,
                                call->who.role, call->source}};
}

json_t *
con_rec_int_or_null(const char *v)
{
    return v ? json_integer(strtoll(v, NULL, 10)) : json_null();
}

static void
rec_audited(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct con_rec_ctx *x = con_rec_ctx_of(call);
    if (status != 0) {
        con_rec_fail(call, x, status, res);
        return;
    }
    con_rec_reply_out(call, x);
}

/* Write the audit row x->audit describes (action, outcome given), then
 * answer x->out. */
void
con_rec_audit_then_reply(struct con_call *call, struct con_rec_ctx *x,
                         const char *action, const char *outcome)
{
    struct store_tx tx;
    con_tx_init(call, &tx);
    CON_AZ(con_audit_add(call, &tx, NULL, action, x->ref, outcome,
                         x->audit[0] ? x->audit : NULL));
    if (con_tx_or_503(call, &tx, rec_audited) != 0) {
        json_decref(x->out);
        x->out = NULL;
    }
}

/* ------------------------------------------------------------------------
 * ID numbers: opened to mask them or for /reveal
 */

static int
rec_unhex(const char *hex, unsigned char *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 0;
}

/* An encrypted column (hex) opened for msisdn into out; -1 if it does not
 * open.  Never log out. */
static int
rec_open(struct con_call *call, const char *hex, const char *msisdn, char *out,
         size_t cap)
{
    unsigned char enc[512];
    size_t n;
    out[0] = '\0';
    if (hex == NULL || hex[0] == '\0' || call->con->crypto == NULL) return -1;
    if (rec_unhex(hex, enc, sizeof(enc), &n) != 0) return -1;
    return store_id_decrypt(call->con->crypto, enc, n, msisdn, out, cap) == 0
               ? 0
               : -1;
}

/* "*******890": all but the last 3 characters hidden. */
static void
rec_mask(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s), i;
    for (i = 0; i < n && i + 1 < cap; i++)
        out[i] = i + 3 < n ? '*' : s[i];
    out[i] = '\0';
}

/* ------------------------------------------------------------------------
 * Labels: {"code":..,"en":..,"bn":..} from the flow the answers came from
 */

static json_t *
rec_label(const struct flow_set *set, const char *field, const char *code)
{
    const char *en = NULL, *bn = NULL;
    if (code == NULL) return json_null();
    if (set != NULL) {
        en = flow_answer_label(set, REC_FLOW, field, code, "en");
        bn = flow_answer_label(set, REC_FLOW, field, code, "bn");
    }
    return json_pack("{s:s,s:s?,s:s?}", "code", code, "en", en, "bn", bn);
}

/* A reason code by its short label in both languages. */
static json_t *
rec_reason_label(const struct flow_set *set, const char *code)
{
    char id[64];
    const char *en = NULL, *bn = NULL;
    if (code == NULL) return json_null();
    snprintf(id, sizeof(id), "reason_%s", code);
    if (set != NULL && strcmp(flow_message(set, "en", id), id) != 0) {
        en = flow_message(set, "en", id);
        bn = flow_message(set, "bn", id);
    }
    return json_pack("{s:s,s:s?,s:s?}", "code", code, "en", en, "bn", bn);
}

/* ------------------------------------------------------------------------
 * GET /api/records/{ref} -- one record
 */

static const char rec_detail_sql[] =
    "SELECT r.ref, r.status, r.version, r.district, r.division, r.sex,"
    " r.birth_year, r.country, r.years_abroad, r.return_year, r.reason,"
    " r.education, array_to_string(r.skills, ' '), r.need, r.lang,"
    " r.channel,"
    " to_char(r.created_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " to_char(r.status_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " r.info_reason, r.reject_reason, r.reject_note,"
    " array_to_string(r.changed_since_verified, ' '), r.msisdn,"
    " encode(r.nid_enc, 'hex'), encode(r.passport_enc, 'hex'),"
    " encode(r.personal_enc, 'hex'), r.name, " CON_AGE_BAND_SQL ","
    /* the latest decision while it can still be undone */
    " (SELECT to_char(d.undo_until AT TIME ZONE 'UTC',"
    "   'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM decisions d"
    "  LEFT JOIN sms_out s ON s.id = d.sms_id"
    "  WHERE d.returnee_id = r.id AND d.undone_at IS NULL"
    "  AND d.version = r.version AND d.undo_until > now()"
    "  AND (d.sms_id IS NULL OR s.hold_state = 'held')"
    "  ORDER BY d.id DESC LIMIT 1),"
    " array_to_string(r.parts_done, ' ')"
    " FROM returnees r WHERE r.ref = $1";

static const char rec_history_sql[] =
    "SELECT s.kind, s.channel, s.lang,"
    " to_char(s.created_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " s.answers::text, s.ref"
    " FROM submissions s JOIN returnees r ON r.id = s.returnee_id"
    " WHERE r.ref = $1 ORDER BY s.created_at, s.id";

/* Decisions with their SMS and its delivery state, oldest first. */
static const char rec_activity_sql[] =
    "SELECT d.id, d.action, d.reason, d.note, d.from_status, d.to_status,"
    " coalesce(o.username, d.officer_id::text),"
    " to_char(d.created_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " to_char(d.undone_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " CASE WHEN s.id IS NULL THEN NULL"
    "  WHEN s.hold_state = 'cancelled' THEN 'cancelled'"
    "  WHEN s.hold_state = 'held' THEN 'held'"
    "  WHEN s.dlr_state & 1 <> 0 THEN 'delivered'"
    "  WHEN s.dlr_state & 2 <> 0 OR s.failed_at IS NOT NULL THEN 'failed'"
    "  WHEN s.accepted_at IS NOT NULL OR s.dlr_state IS NOT NULL THEN 'sent'"
    "  ELSE 'pending' END,"
    " to_char(s.send_after AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " s.text"
    " FROM decisions d JOIN returnees r ON r.id = d.returnee_id"
    " LEFT JOIN officers o ON o.id = d.officer_id"
    " LEFT JOIN sms_out s ON s.id = d.sms_id"
    " WHERE r.ref = $1 ORDER BY d.id";

static const char rec_corrections_sql[] =
    "SELECT c.decision_id, c.field, c.old_value::text, c.new_value::text,"
    " to_char(c.created_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM corrections c JOIN returnees r ON r.id = c.returnee_id"
    " WHERE r.ref = $1 ORDER BY c.id";

/* The duplicate panel, only for a record whose stored flag (migration
 * 023's possible_duplicate) says it has a twin: the flag's one-time
 * filter comes first, so remigate_duplicates() and its self-join run for
 * the few records flagged, not for every record opened.  The flag and
 * the function agree (023's triggers keep it; test_dupflag compares
 * them), so the panel is the same. */
static const char rec_dups_sql[] =
    "SELECT d.ref, d.district, d.status FROM remigate_duplicates($1) d"
    " WHERE EXISTS (SELECT 1 FROM returnees r WHERE r.ref = $1"
    " AND r.possible_duplicate)";

/* The record.open audit row, in the transaction that reads the record and
 * only when the caller may see it: one commit per record opened.  A record
 * out of scope is audited as denied by con_deny() instead. */
static const char rec_open_audit_sql[] = REC_AUDIT_COLS
    "SELECT $3, $2::bigint, $4, $5, 'record.open', $1, 'ok', '{}'::jsonb"
    " WHERE EXISTS (SELECT 1 FROM returnees r WHERE r.ref = $1)";

static json_t *
rec_json_or_null(const char *text)
{
    json_error_t e;
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, &e) : NULL;
    return v ? v : json_null();
}

/* The answers of rec_detail_sql: field, column, kind ('c' a code, 'm'
 * several codes, 'n' a number), the list its codes come from, whether
 * /correct takes it. */
static const struct rec_answer_col {
    const char *field;
    int col;
    char kind;
    const char *list;
    int editable;
} rec_answer_cols[] = {
    {"sex", 5, 'c', NULL, 1},
    {"birth_year", 6, 'n', NULL, 1},
    {"division", 4, 'c', "divisions", 1},
    {"district", 3, 'c', "districts", 1},
    {"country", 7, 'c', "countries", 1},
    {"years_abroad", 8, 'n', NULL, 1},
    {"return_year", 9, 'n', NULL, 1},
    {"reason", 10, 'c', "reasons", 1},
    {"education", 11, 'c', "education", 1},
    {"skills", 12, 'm', "skills", 1},
    {"need", 13, 'c', "needs", 1},
};

static json_t *
rec_detail_json(struct con_call *call, const struct store_tx_result *res)
{
    const struct flow_set *set = gw_server_flows(call->con->srv);
    const char *msisdn = store_tx_value(res, 0, 0, 22);
    const char *status = store_tx_value(res, 0, 0, 1);
    char id[64], masked[64], personal[1024];
    json_t *o, *answers, *hist, *act, *dups, *flags;
    const char *v;

    /* the answers, in the register flow's order: code, labels, the list
     * they come from (GET /api/lists), and whether /correct takes them */
    answers = json_array();
    for (size_t i = 0; i < sizeof(rec_answer_cols) / sizeof(rec_answer_cols[0]);
         i++) {
        const struct rec_answer_col *c = &rec_answer_cols[i];
        const char *val = store_tx_value(res, 0, 0, c->col);
        json_t *a =
            json_pack("{s:s,s:b}", "field", c->field, "editable", c->editable);
        if (c->list) json_object_set_new(a, "list", json_string(c->list));
        if (c->kind == 'n') {
            json_object_set_new(a, "value", con_rec_int_or_null(val));
        } else if (c->kind == 'm') {
            json_t *codes = json_array(), *values = json_array();
            if (val && val[0]) {
                char buf[512], *save = NULL, *w;
                snprintf(buf, sizeof(buf), "%s", val);
                for (w = strtok_r(buf, " ", &save); w;
                     w = strtok_r(NULL, " ", &save)) {
                    json_array_append_new(codes, json_string(w));
                    json_array_append_new(values, rec_label(set, c->field, w));
                }
            }
            json_object_set_new(a, "codes", codes);
            json_object_set_new(a, "values", values);
        } else {
            json_object_set_new(a, "code",
                                val ? json_string(val) : json_null());
            json_object_set_new(a, "value", rec_label(set, c->field, val));
        }
        json_array_append_new(answers, a);
    }

    /* the name: sealed (personal_enc) or, in rows older than that, clear */
    v = store_tx_value(res, 0, 0, 26);
    {
        json_t *nm = json_null();
        if (rec_open(call, store_tx_value(res, 0, 0, 25), msisdn, personal,
                     sizeof(personal)) == 0) {
            json_t *p = rec_json_or_null(personal);
            const char *n = json_string_value(json_object_get(p, "name"));
            if (n) nm = json_string(n);
            json_decref(p);
            sodium_memzero(personal, sizeof(personal));
        } else if (v != NULL) {
            nm = json_string(v);
        }
        json_array_insert_new(answers, 0,
                              json_pack("{s:s,s:o,s:b}", "field", "name",
                                        "value", nm, "editable", 0));
    }

    o = json_pack(
        "{s:s,s:s,s:I,s:s?,s:s?,s:s?,s:s?,s:s?,s:s,s:o}", "ref",
        store_tx_value(res, 0, 0, 0), "status", status, "version",
        (json_int_t)strtoll(store_tx_value(res, 0, 0, 2), NULL, 10), "district",
        store_tx_value(res, 0, 0, 3), "lang", store_tx_value(res, 0, 0, 14),
        "channel", store_tx_value(res, 0, 0, 15), "registered_at",
        store_tx_value(res, 0, 0, 16), "status_at",
        store_tx_value(res, 0, 0, 17), "phone", msisdn, "answers", answers);
    json_object_set_new(o, "age_band",
                        store_tx_value(res, 0, 0, 27)
                            ? json_string(store_tx_value(res, 0, 0, 27))
                            : json_null());
    v = store_tx_value(res, 0, 0, 28);
    json_object_set_new(o, "undo_until", v ? json_string(v) : json_null());
    json_object_set_new(o, "can_undo", json_boolean(v != NULL));
    /* which parts of the registration the returnee has saved (issue 12:
     * part 1 makes the record; parts 2 and 3 may come in later dials) */
    {
        json_t *parts = json_array();
        char buf[256], *save = NULL, *w;
        v = store_tx_value(res, 0, 0, 29);
        snprintf(buf, sizeof(buf), "%s", v ? v : "");
        for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
            json_array_append_new(parts, json_string(w));
        json_object_set_new(o, "parts_done", parts);
    }
    json_object_set_new(
        o, "reason",
        rec_reason_label(set, strcmp(status, "needs_info") == 0
                                  ? store_tx_value(res, 0, 0, 18)
                                  : store_tx_value(res, 0, 0, 19)));
    v = store_tx_value(res, 0, 0, 20);
    json_object_set_new(o, "note", v ? json_string(v) : json_null());
    flags = json_array();
    v = store_tx_value(res, 0, 0, 21);
    json_object_set_new(o, "changed_since_verified",
                        v ? json_string(v) : json_null());

    /* ID numbers: masked */
    json_object_set_new(o, "id_type", json_null());
    json_object_set_new(o, "id_masked", json_null());
    if (rec_open(call, store_tx_value(res, 0, 0, 23), msisdn, id, sizeof(id)) ==
        0) {
        rec_mask(id, masked, sizeof(masked));
        json_object_set_new(o, "id_type", json_string("nid"));
        json_object_set_new(o, "id_masked", json_string(masked));
    } else if (rec_open(call, store_tx_value(res, 0, 0, 24), msisdn, id,
                        sizeof(id)) == 0) {
        rec_mask(id, masked, sizeof(masked));
        json_object_set_new(o, "id_type", json_string("passport"));
        json_object_set_new(o, "id_masked", json_string(masked));
    }
    sodium_memzero(id, sizeof(id));

    hist = json_array();
    for (int i = 0; i < store_tx_ntuples(res, 1); i++)
        json_array_append_new(
            hist, json_pack("{s:s,s:s?,s:s?,s:s,s:o,s:s}", "kind",
                            store_tx_value(res, 1, i, 0), "channel",
                            store_tx_value(res, 1, i, 1), "lang",
                            store_tx_value(res, 1, i, 2), "at",
                            store_tx_value(res, 1, i, 3), "answers",
                            rec_json_or_null(store_tx_value(res, 1, i, 4)),
                            "ref", store_tx_value(res, 1, i, 5)));
    json_object_set_new(o, "history", hist);

    act = json_array();
    for (int i = 0; i < store_tx_ntuples(res, 2); i++) {
        json_t *sms = json_null();
        if (store_tx_value(res, 2, i, 9) != NULL)
            sms = json_pack("{s:s,s:s?,s:s?}", "state",
                            store_tx_value(res, 2, i, 9), "at",
                            store_tx_value(res, 2, i, 10), "text",
                            store_tx_value(res, 2, i, 11));
        json_array_append_new(
            act,
            json_pack(
                "{s:s,s:I,s:s,s:s?,s:o,s:s?,s:s,s:s,s:s,s:s,s:s,s:s?,s:o}",
                "type", "decision", "id",
                (json_int_t)strtoll(store_tx_value(res, 2, i, 0), NULL, 10),
                "action", store_tx_value(res, 2, i, 1), "reason",
                store_tx_value(res, 2, i, 2), "reason_label",
                rec_reason_label(set, store_tx_value(res, 2, i, 2)), "note",
                store_tx_value(res, 2, i, 3), "from",
                store_tx_value(res, 2, i, 4), "status",
                store_tx_value(res, 2, i, 5), "to",
                store_tx_value(res, 2, i, 5), "actor",
                store_tx_value(res, 2, i, 6), "at",
                store_tx_value(res, 2, i, 7), "undone_at",
                store_tx_value(res, 2, i, 8), "sms", sms));
    }
    for (int i = 0; i < store_tx_ntuples(res, 3); i++)
        json_array_append_new(
            act,
            json_pack(
                "{s:s,s:I,s:s,s:o,s:o,s:s}", "type", "correction", "decision",
                (json_int_t)strtoll(store_tx_value(res, 3, i, 0), NULL, 10),
                "field", store_tx_value(res, 3, i, 1), "old",
                rec_json_or_null(store_tx_value(res, 3, i, 2)), "new",
                rec_json_or_null(store_tx_value(res, 3, i, 3)), "at",
                store_tx_value(res, 3, i, 4)));
    json_object_set_new(o, "activity", act);

    dups = json_array();
    for (int i = 0; i < store_tx_ntuples(res, 4); i++)
        json_array_append_new(
            dups,
            json_pack("{s:s?,s:s?,s:s}", "ref", store_tx_value(res, 4, i, 0),
                      "district", store_tx_value(res, 4, i, 1), "status",
                      store_tx_value(res, 4, i, 2)));
    if (json_array_size(dups) > 0)
        json_array_append_new(flags, json_string("possible_duplicate"));
    if (store_tx_value(res, 0, 0, 21) != NULL)
        json_array_append_new(flags, json_string("changed_since_verified"));
    json_object_set_new(o, "duplicates", dups);
    json_object_set_new(o, "flags", flags);
    return o;
}

static void
rec_detail_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct con_rec_ctx *x = con_rec_ctx_of(call);

    if (status != 0) {
        con_rec_fail(call, x, status, res);
        return;
    }
    if (store_tx_ntuples(res, 0) != 1) {
        con_deny(call, 404, "no_record", "no such record in your districts",
                 "scope");
        return;
    }
    x->out = rec_detail_json(call, res);
    if (x->out == NULL) {
        con_reply_error(call, 500, "internal", "out of memory");
        return;
    }
    x->status = 200;
    con_rec_reply_out(call, x);
}

static void
con_records_get(struct con_call *call)
{
    struct con_rec_ctx *x = con_rec_ctx_new(call);
    struct store_tx tx;
    if (x == NULL) return;
    con_tx_init(call, &tx);
    /* all six by name: each plan is an index lookup by the reference,
     * whatever its value (store_pool.c) */
    tx.prepare = 0x3fu;
    tx.stmt[tx.n++] = (struct store_tx_stmt){rec_detail_sql, 1, {x->ref}};
    tx.stmt[tx.n++] = (struct store_tx_stmt){rec_history_sql, 1, {x->ref}};
    tx.stmt[tx.n++] = (struct store_tx_stmt){rec_activity_sql, 1, {x->ref}};
    tx.stmt[tx.n++] = (struct store_tx_stmt){rec_corrections_sql, 1, {x->ref}};
    tx.stmt[tx.n++] = (struct store_tx_stmt){rec_dups_sql, 1, {x->ref}};
    con_rec_audit_stmt(call, x, &tx, rec_open_audit_sql);
    con_tx_or_503(call, &tx, rec_detail_done);
}

/* ------------------------------------------------------------------------
 * POST /api/records/{ref}/reveal {"reason"} -- the ID number, audited
 */

static const char rec_reveal_sql[] =
    "SELECT r.msisdn, encode(r.nid_enc, 'hex'), encode(r.passport_enc, 'hex')"
    " FROM returnees r WHERE r.ref = $1";

static void
rec_reveal_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct con_rec_ctx *x = con_rec_ctx_of(call);
    char nid[64], pp[64];

    if (status != 0) {
        con_rec_fail(call, x, status, res);
        return;
    }
    if (store_tx_ntuples(res, 0) != 1) {
        con_deny(call, 404, "no_record", "no such record in your districts",
                 "scope");
        return;
    }
    const char *msisdn = store_tx_value(res, 0, 0, 0);
    int has_nid = rec_open(call, store_tx_value(res, 0, 0, 1), msisdn, nid,
                           sizeof(nid)) == 0;
    int has_pp = rec_open(call, store_tx_value(res, 0, 0, 2), msisdn, pp,
                          sizeof(pp)) == 0;
    x->out = json_pack("{s:s?,s:s?}", "nid", has_nid ? nid : NULL, "passport",
                       has_pp ? pp : NULL);
    sodium_memzero(nid, sizeof(nid));
    sodium_memzero(pp, sizeof(pp));
    if (x->out == NULL) {
        con_reply_error(call, 500, "internal", "out of memory");
        return;
    }
    /* x->audit already holds {"reason":...}: the number goes out only
     * once its row is committed */
    x->status = 200;
    con_rec_audit_then_reply(call, x, "record.reveal", "ok");
}

static void
con_records_reveal(struct con_call *call)
{
    struct con_rec_ctx *x = con_rec_ctx_new(call);
    struct store_tx tx;
    json_t *body, *detail;
    const char *reason;
    char *dump;

    if (x == NULL) return;
    if ((body = con_body_or_400(call)) == NULL) return;
    reason = json_string_value(json_object_get(body, "reason"));
    if (reason == NULL || strlen(reason) < 3 ||
        strlen(reason) > REC_REASON_MAX) {
        json_decref(body);
        con_reply_error(call, 422, "reason_required",
                        "say why the number is needed (3 to 200 characters)");
        return;
    }
    detail = json_pack("{s:s}", "reason", reason);
    dump = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_decref(detail);
    json_decref(body);
    if (dump == NULL || strlen(dump) >= sizeof(x->audit)) {
        free(dump);
        con_reply_error(call, 422, "reason_required", "the reason is too long");
        return;
    }
    snprintf(x->audit, sizeof(x->audit), "%s", dump);
    free(dump);
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){rec_reveal_sql, 1, {x->ref}};
    con_tx_or_503(call, &tx, rec_reveal_done);
}

const struct con_route con_records_routes[] = {
    {GW_METHOD_GET, "/api/records/{}", CON_ROLE_ADMIN | CON_ROLE_OFFICER, 0,
     con_records_get},
    {GW_METHOD_POST, "/api/records/{}/reveal",
     CON_ROLE_ADMIN | CON_ROLE_OFFICER, 1, con_records_reveal},
    {0, NULL, 0, 0, NULL},
};
