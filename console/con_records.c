/*
 * con_records.c -- the review queue, one record, and officers' decisions
 * on it (verify, correct, needs info, reject, undo; reopen and revoke for
 * admins), with the SMS back to the returnee.
 *
 * Every query runs on the console's pool as remigate_console with the
 * officer's scope set (con_tx_init): what an officer may not see is not
 * there for the C code either (005_review.sql).  So "outside your
 * districts" and "no such record" are the same answer, 404, and both are
 * audited (con_deny).
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
 * ID numbers leave the database encrypted; they are opened here only to
 * mask them (last 3 characters) or for /reveal, which is audited with its
 * reason before the number is answered.  Searching by an ID number goes
 * through its keyed hash, never a substring.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "console/con_int.h"
#include "flows/flow.h"

#define REC_MAGIC        0x52454343u
#define REC_PAGE_DEFAULT 50
#define REC_PAGE_MAX     100
#define REC_NOTE_MAX     500  /* bytes of a decision's note */
#define REC_REASON_MAX   200  /* bytes of a free-text reason (reveal, reopen) */
#define REC_SMS_MAX      1024 /* bytes of one rendered SMS */
#define REC_FLOW         "register" /* the flow whose answers a record holds */

#define CON_X_STR(c) #c,
static const char *const rec_reject_reasons[] = {CON_REJECT_REASONS(CON_X_STR)
                                                     NULL};
static const char *const rec_info_reasons[] = {CON_INFO_REASONS(CON_X_STR)
                                                   NULL};
#undef CON_X_STR

/* The decisions remigate_decide() makes: its action name, the SMS
 * (messages.conf id, NULL: none) and the reasons it takes (NULL with
 * free_reason: a free text; NULL without: none). */
struct rec_action {
    const char *action;
    const char *audit; /* the audit row's action */
    const char *sms;
    const char *const *reasons;
    int free_reason;
};

static const struct rec_action rec_verify = {"verify", "record.verify",
                                             "sms_verified", NULL, 0};
static const struct rec_action rec_needs_info = {
    "needs_info", "record.needs_info", "sms_needs_info", rec_info_reasons, 0};
static const struct rec_action rec_reject = {
    "reject", "record.reject", "sms_rejected", rec_reject_reasons, 0};
static const struct rec_action rec_revoke = {
    "revoke", "record.revoke", "sms_rejected", rec_reject_reasons, 0};
static const struct rec_action rec_reopen = {"reopen", "record.reopen", NULL,
                                             NULL, 1};

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

/* A request's own state, in its memory (gw_req_alloc). */
struct rec_ctx {
    unsigned magic;
    const struct rec_action *act;
    const char *audit_action; /* of a decision that failed */
    char ref[CON_PARAM_MAX];
    json_t *out;     /* the answer being built (owned) */
    char audit[512]; /* detail of the audit row still to write */
    int status;      /* HTTP status to answer after the audit row */
    char reveal_nid[64], reveal_passport[64];
};

static int
rec_in(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0) return 1;
    return 0;
}

static struct rec_ctx *
rec_ctx_new(struct con_call *call)
{
    struct rec_ctx *x = gw_req_alloc(call->req, sizeof(*x));
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

static struct rec_ctx *
rec_ctx_of(struct con_call *call)
{
    struct rec_ctx *x = call->data;
    CON_AN(x != NULL && x->magic == REC_MAGIC);
    return x;
}

/* Answer with x->out (taken) at x->status. */
static void
rec_reply_out(struct con_call *call, struct rec_ctx *x)
{
    json_t *o = x->out;
    x->out = NULL;
    con_reply_json(call, x->status, o);
}

static void
rec_fail(struct con_call *call, struct rec_ctx *x, int status,
         const struct store_tx_result *res)
{
    json_decref(x->out);
    x->out = NULL;
    con_reply_store_error(call, status, res);
}

/* Audit row columns as con_audit_add() writes them. */
#define REC_AUDIT_COLS                                                         \
    "INSERT INTO audit_log (actor, actor_id, role, source, action, target,"    \
    " outcome, detail) "

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

int
con_date_ok(const char *s)
{
    int y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return 0;
    y = atoi(s);
    m = atoi(s + 5);
    d = atoi(s + 8);
    return y >= 1900 && y <= 2999 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/* Is s made only of chars from set, 1..max bytes long? */
static int
rec_word_ok(const char *s, const char *set, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n <= max && strspn(s, set) == n;
}

#define REC_LOWER  "abcdefghijklmnopqrstuvwxyz0123456789_"
#define REC_UPPER  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define REC_DIGITS "0123456789"

int
con_cursor_parse(const char *s, char *at, size_t atcap, char *id, size_t idcap)
{
    const char *dot = strchr(s, '.');
    size_t a = dot ? (size_t)(dot - s) : 0;
    if (dot == NULL || a == 0 || a >= atcap || a > 18 ||
        strspn(s, REC_DIGITS) != a || !rec_word_ok(dot + 1, REC_DIGITS, 18) ||
        strlen(dot + 1) >= idcap)
        return -1;
    memcpy(at, s, a);
    at[a] = '\0';
    snprintf(id, idcap, "%s", dot + 1);
    return 0;
}

static void
rec_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

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
 * GET /api/records -- the queue
 */

/* One row; the columns of REC_LIST_PAGE. */
static json_t *
rec_list_row(const struct store_tx_result *res, int i)
{
    const char *skills = store_tx_value(res, 0, i, 8);
    const char *changed = store_tx_value(res, 0, i, 12);
    json_t *sk = json_array(), *flags = json_array();
    char buf[512], *save = NULL, *w;

    if (skills && skills[0]) {
        snprintf(buf, sizeof(buf), "%s", skills);
        for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
            json_array_append_new(sk, json_string(w));
    }
    if (strcmp(store_tx_value(res, 0, i, 11), "t") == 0)
        json_array_append_new(flags, json_string("possible_duplicate"));
    if (changed != NULL)
        json_array_append_new(flags, json_string("changed_since_verified"));
    return json_pack(
        "{s:s,s:s,s:s?,s:s,s:s?,s:s?,s:s?,s:s?,s:o,s:s?,s:I,s:o}", "ref",
        store_tx_value(res, 0, i, 0), "status", store_tx_value(res, 0, i, 1),
        "district", store_tx_value(res, 0, i, 2), "registered_at",
        store_tx_value(res, 0, i, 3), "channel", store_tx_value(res, 0, i, 4),
        "sex", store_tx_value(res, 0, i, 5), "age_band",
        store_tx_value(res, 0, i, 6), "destination",
        store_tx_value(res, 0, i, 7), "skills", sk, "need",
        store_tx_value(res, 0, i, 9), "days_waiting",
        (json_int_t)strtoll(store_tx_value(res, 0, i, 10), NULL, 10), "flags",
        flags);
}

/* The age band of a birth year, in SQL (bands of the dashboards). */
#define REC_AGE_BAND_SQL                                                       \
    "CASE WHEN r.birth_year IS NULL THEN NULL ELSE (SELECT CASE"               \
    "  WHEN a < 18 THEN '<18' WHEN a < 25 THEN '18-24'"                        \
    "  WHEN a >= 60 THEN '60+'"                                                \
    "  ELSE (a / 5 * 5)::text || '-' || (a / 5 * 5 + 4)::text END"             \
    " FROM (SELECT extract(year FROM now())::int - r.birth_year AS a) x) END"

/* A page of the queue, in two steps: the rows (each filter a condition
 * that the custom plan of an unnamed statement folds away when its
 * parameter is NULL), then the duplicate flag of the whole page in one
 * remigate_duplicate_ids() call (migration 013) rather than one
 * remigate_duplicates() per row.  Columns: ref, status, district,
 * registered at, channel, sex, age band, destination, skills, need, days
 * waiting, possible duplicate, changed since verified, then the keyset
 * (created_at in microseconds, id). */
#define REC_LIST_COLS                                                          \
    "SELECT r.ref, r.status, r.district,"                                      \
    " to_char(r.created_at AT TIME ZONE 'UTC', "                               \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS registered,"                         \
    " r.channel, r.sex, " REC_AGE_BAND_SQL " AS age_band, r.country,"          \
    " array_to_string(r.skills, ' ') AS skills, r.need,"                       \
    " extract(day FROM now() - r.created_at)::int AS days,"                    \
    " array_to_string(r.changed_since_verified, ' ') AS changed,"              \
    " (extract(epoch FROM r.created_at) * 1000000)::bigint AS at_us, r.id"     \
    " FROM returnees r"

#define REC_LIST_WHERE                                                         \
    " ($1::text = 'all' OR r.status = $1)"                                     \
    " AND ($2::text IS NULL OR r.district = $2)"                               \
    " AND ($3::date IS NULL OR r.created_at >= $3::date)"                      \
    " AND ($4::date IS NULL OR r.created_at < $4::date + 1)"                   \
    " AND ($5::text IS NULL OR r.channel = $5)"                                \
    " AND ($6::text IS NULL OR r.country = $6)"                                \
    " AND ($7::text IS NULL OR $7 = ANY (r.skills))"                           \
    " AND ($8::text IS NULL OR r.need = $8)"                                   \
    " AND ($9::text IS NULL"                                                   \
    "  OR ($9 = 'changed_since_verified'"                                      \
    "   AND r.changed_since_verified IS NOT NULL)"                             \
    "  OR ($9 = 'possible_duplicate'"                                          \
    "   AND EXISTS (SELECT 1 FROM remigate_duplicates(r.ref))))"               \
    " AND (($10::text IS NULL AND $11::text IS NULL AND $12::text IS NULL"     \
    "  AND $13::text IS NULL) OR r.ref = $10 OR r.msisdn = $11"                \
    "  OR r.nid_hash = decode($12, 'hex')"                                     \
    "  OR r.passport_hash = decode($13, 'hex'))"                               \
    " AND ($14::text IS NULL OR (r.created_at, r.id) >"                        \
    "  (to_timestamp(0) + split_part($14, '.', 1)::bigint"                     \
    "   * interval '1 microsecond', split_part($14, '.', 2)::bigint))"         \
    " ORDER BY r.created_at, r.id LIMIT $15::int"

#define REC_LIST_PAGE                                                          \
    " SELECT p.ref, p.status, p.district, p.registered, p.channel, p.sex,"     \
    " p.age_band, p.country, p.skills, p.need, p.days, p.id = ANY (d.ids),"    \
    " p.changed, p.at_us, p.id"                                                \
    " FROM page p,"                                                            \
    " (SELECT remigate_duplicate_ids(array_agg(id)) AS ids FROM page) d"       \
    " ORDER BY p.at_us, p.id"

/* An admin's page: every district's rows, oldest first, straight from
 * (status, created_at, id), or (district, status, created_at, id) with a
 * district filter. */
static const char rec_list_all_sql[] =
    "WITH page AS (" REC_LIST_COLS " WHERE" REC_LIST_WHERE ")" REC_LIST_PAGE;

/* An officer's page: the first rows of each of their districts from
 * (district, status, created_at, id), then the oldest of those.  The
 * districts are the transaction's own (remigate_scope_districts(), what
 * the row-level security policy allows), so this reads no more than a
 * page per district whatever the table's size. */
static const char rec_list_scoped_sql[] =
    "WITH page AS (SELECT q.* FROM unnest(remigate_scope_districts()) s(code)"
    " CROSS JOIN LATERAL (" REC_LIST_COLS " WHERE r.district = s.code"
    " AND" REC_LIST_WHERE
    ") q ORDER BY q.at_us, q.id LIMIT $15::int)" REC_LIST_PAGE;

struct rec_query {
    char status[16], district[20], from[12], to[12], channel[8], dest[4];
    char skill[40], need[40], flag[32];
    char ref[CON_REF_MAX + 1], phone[GW_MSISDN_MAX];
    int nothing; /* a search that can match no row */
    char nid[2 * STORE_HASH_BYTES + 1];
    char passport[2 * STORE_HASH_BYTES + 1];
    char cursor[48], limit[8];
};

int
con_search_parse(const char *q, struct con_search *out)
{
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    for (const char *p = q; *p && n + 1 < sizeof(out->norm); p++)
        if (*p != ' ' && *p != '-') out->norm[n++] = *p;
    out->norm[n] = '\0';
    if (n == 0) return -1;
    if (strspn(out->norm, REC_DIGITS "+") == n) {
        if (gw_msisdn_normalise(out->norm, n, out->phone, sizeof(out->phone)) !=
            NULL)
            out->phone[0] = '\0';
        out->nid = strspn(out->norm, REC_DIGITS) == n &&
                   (n == 10 || n == 13 || n == 17);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (out->norm[i] >= 'a' && out->norm[i] <= 'z')
            out->norm[i] = (char)(out->norm[i] - 32);
    if (strspn(out->norm, REC_UPPER REC_DIGITS) != n) return -1;
    out->ref = n <= CON_REF_MAX;
    out->passport = 1;
    return 0;
}

/* A search word as the query's exact conditions: a reference, a phone
 * number, an NID or a passport number (ID numbers by their keyed hash). */
static void
rec_search(struct con_call *call, const char *q, struct rec_query *rq)
{
    unsigned char h[STORE_HASH_BYTES];
    struct con_search cs;

    /* a search that can be nothing (or that nothing below fills) is sent
     * as the reference "", which no record has: it matches no row */
    if (con_search_parse(q, &cs) != 0) {
        rq->nothing = 1;
        return;
    }
    if (cs.phone[0]) snprintf(rq->phone, sizeof(rq->phone), "%s", cs.phone);
    if (cs.ref) memcpy(rq->ref, cs.norm, strlen(cs.norm) + 1);
    if (cs.nid && call->con->crypto &&
        store_id_hash(call->con->crypto, "nid", cs.norm, h) == 0)
        rec_hex(h, sizeof(h), rq->nid);
    if (cs.passport && call->con->crypto &&
        store_id_hash(call->con->crypto, "passport", cs.norm, h) == 0)
        rec_hex(h, sizeof(h), rq->passport);
    rq->nothing =
        !rq->ref[0] && !rq->phone[0] && !rq->nid[0] && !rq->passport[0];
}

/* Copy query value key into out when it passes check; 422 otherwise. */
static int
rec_q_or_422(struct con_call *call, const struct gw_params *ps, const char *key,
             char *out, size_t cap, int (*check)(const char *v))
{
    const struct gw_param *p = gw_params_get(ps, key);
    out[0] = '\0';
    if (p == NULL || p->vlen == 0) return 0;
    if (p->vlen >= cap || strlen(p->val) != p->vlen || !check(p->val)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the filter %s is not valid", key);
        con_reply_error(call, 422, "bad_filter", msg);
        return -1;
    }
    memcpy(out, p->val, p->vlen + 1);
    return 0;
}

static int
rec_status_ok(const char *v)
{
    static const char *const st[] = {"pending",  "needs_info", "verified",
                                     "rejected", "all",        NULL};
    return rec_in(st, v);
}
static int
rec_district_ok(const char *v)
{
    return rec_word_ok(v, REC_UPPER REC_DIGITS "-", 16);
}
static int
rec_channel_ok(const char *v)
{
    return strcmp(v, "ussd") == 0 || strcmp(v, "sms") == 0;
}
static int
rec_country_ok(const char *v)
{
    return strlen(v) == 2 && rec_word_ok(v, REC_UPPER, 2);
}
static int
rec_code_ok(const char *v)
{
    return rec_word_ok(v, REC_LOWER, 32);
}
static int
rec_flag_ok(const char *v)
{
    return strcmp(v, "possible_duplicate") == 0 ||
           strcmp(v, "changed_since_verified") == 0;
}
static int
rec_search_ok(const char *v)
{
    return strlen(v) <= 40;
}
static int
rec_limit_ok(const char *v)
{
    long n = rec_word_ok(v, REC_DIGITS, 3) ? strtol(v, NULL, 10) : 0;
    return n >= 1 && n <= REC_PAGE_MAX;
}
static int
rec_cursor_ok(const char *v)
{
    char a[24], b[24];
    return con_cursor_parse(v, a, sizeof(a), b, sizeof(b)) == 0;
}

static void
rec_list_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct rec_ctx *x = rec_ctx_of(call);
    int n, limit;
    json_t *items;
    char next[48];

    if (status != 0) {
        rec_fail(call, x, status, res);
        return;
    }
    limit = (int)strtol(x->audit, NULL, 10); /* the page size asked */
    n = store_tx_ntuples(res, 0);
    items = json_array();
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(items, rec_list_row(res, i));
    if (n > limit)
        snprintf(next, sizeof(next), "%s.%s",
                 store_tx_value(res, 0, limit - 1, 13),
                 store_tx_value(res, 0, limit - 1, 14));
    x->out = json_pack("{s:o,s:s?}", "items", items, "next",
                       n > limit ? next : NULL);
    x->status = 200;
    rec_reply_out(call, x);
}

static void
con_records_list(struct con_call *call)
{
    struct rec_ctx *x = rec_ctx_new(call);
    struct gw_params ps;
    struct rec_query q;
    const char *why = NULL, *qs;
    size_t qlen;
    char search[48], plus1[24];
    struct store_tx tx;
    int bad;

    if (x == NULL) return;
    memset(&q, 0, sizeof(q));
    gw_params_init(&ps);
    qs = gw_req_query(call->req, &qlen);
    if (gw_params_parse(&ps, qs, qlen, &why) != 0) {
        gw_params_fini(&ps);
        con_reply_error(call, 400, "bad_query", why ? why : "bad query");
        return;
    }
    bad =
        rec_q_or_422(call, &ps, "status", q.status, sizeof(q.status),
                     rec_status_ok) ||
        rec_q_or_422(call, &ps, "district", q.district, sizeof(q.district),
                     rec_district_ok) ||
        rec_q_or_422(call, &ps, "from", q.from, sizeof(q.from), con_date_ok) ||
        rec_q_or_422(call, &ps, "to", q.to, sizeof(q.to), con_date_ok) ||
        rec_q_or_422(call, &ps, "channel", q.channel, sizeof(q.channel),
                     rec_channel_ok) ||
        rec_q_or_422(call, &ps, "destination", q.dest, sizeof(q.dest),
                     rec_country_ok) ||
        rec_q_or_422(call, &ps, "skill", q.skill, sizeof(q.skill),
                     rec_code_ok) ||
        rec_q_or_422(call, &ps, "need", q.need, sizeof(q.need), rec_code_ok) ||
        rec_q_or_422(call, &ps, "flag", q.flag, sizeof(q.flag), rec_flag_ok) ||
        rec_q_or_422(call, &ps, "q", search, sizeof(search), rec_search_ok) ||
        rec_q_or_422(call, &ps, "limit", q.limit, sizeof(q.limit),
                     rec_limit_ok) ||
        rec_q_or_422(call, &ps, "cursor", q.cursor, sizeof(q.cursor),
                     rec_cursor_ok);
    gw_params_fini(&ps);
    if (bad) return;
    if (q.status[0] == '\0') snprintf(q.status, sizeof(q.status), "pending");
    if (q.limit[0] == '\0')
        snprintf(q.limit, sizeof(q.limit), "%d", REC_PAGE_DEFAULT);
    if (search[0]) rec_search(call, search, &q);
    snprintf(x->audit, sizeof(x->audit), "%s", q.limit);
    snprintf(plus1, sizeof(plus1), "%d", (int)strtol(q.limit, NULL, 10) + 1);

#define REC_P(s) ((s)[0] ? (s) : NULL)
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        call->who.role_bit == CON_ROLE_ADMIN ? rec_list_all_sql
                                             : rec_list_scoped_sql,
        15,
        {q.status, REC_P(q.district), REC_P(q.from), REC_P(q.to),
         REC_P(q.channel), REC_P(q.dest), REC_P(q.skill), REC_P(q.need),
         REC_P(q.flag), q.nothing ? "" : REC_P(q.ref), REC_P(q.phone),
         REC_P(q.nid), REC_P(q.passport), REC_P(q.cursor), plus1}};
#undef REC_P
    con_tx_or_503(call, &tx, rec_list_done);
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
    " encode(r.personal_enc, 'hex'), r.name, " REC_AGE_BAND_SQL ","
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

static const char rec_dups_sql[] =
    "SELECT ref, district, status FROM remigate_duplicates($1)";

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

static json_t *
rec_int_or_null(const char *v)
{
    return v ? json_integer(strtoll(v, NULL, 10)) : json_null();
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
            json_object_set_new(a, "value", rec_int_or_null(val));
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
rec_audited(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct rec_ctx *x = rec_ctx_of(call);
    if (status != 0) {
        rec_fail(call, x, status, res);
        return;
    }
    rec_reply_out(call, x);
}

/* Write the audit row x->audit describes (action, outcome given), then
 * answer x->out. */
static void
rec_audit_then_reply(struct con_call *call, struct rec_ctx *x,
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

static void
rec_detail_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct rec_ctx *x = rec_ctx_of(call);

    if (status != 0) {
        rec_fail(call, x, status, res);
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
    rec_reply_out(call, x);
}

static void
con_records_get(struct con_call *call)
{
    struct rec_ctx *x = rec_ctx_new(call);
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
    tx.stmt[tx.n++] =
        (struct store_tx_stmt){rec_open_audit_sql,
                               5,
                               {x->ref, call->who.id_text, call->who.username,
                                call->who.role, call->source}};
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
    struct rec_ctx *x = rec_ctx_of(call);
    char nid[64], pp[64];

    if (status != 0) {
        rec_fail(call, x, status, res);
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
    rec_audit_then_reply(call, x, "record.reveal", "ok");
}

static void
con_records_reveal(struct con_call *call)
{
    struct rec_ctx *x = rec_ctx_new(call);
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
    rec_hex(u, sizeof(u), hx);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hx, hx + 8, hx + 12, hx + 16,
             hx + 20);
}

/* What remigate_decide/_correct/_undo said, as the answer. */
static void
rec_decided(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct rec_ctx *x = rec_ctx_of(call);
    const char *outcome;

    if (status != 0) {
        /* a correction moving the record out of the officer's districts */
        if (strcmp(store_tx_sqlstate(res), "42501") == 0) {
            con_deny(call, 403, "out_of_scope",
                     "that would move the record out of your districts",
                     "scope");
            return;
        }
        rec_fail(call, x, status, res);
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
                  "version", rec_int_or_null(store_tx_value(res, 0, 0, 2)));
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
        rec_reply_out(call, x);
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
    rec_audit_then_reply(call, x, x->audit_action, "failed");
}

/* The common start of a decision: the version (If-Match) and the body. */
static int
rec_decision_start(struct con_call *call, struct rec_ctx *x, char *version,
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
rec_decide(struct con_call *call, const struct rec_action *act)
{
    struct rec_ctx *x = rec_ctx_new(call);
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
    if (act->reasons != NULL && (r == NULL || !rec_in(act->reasons, r))) {
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
    tx.stmt[tx.n++] =
        (struct store_tx_stmt){rec_decision_audit_sql,
                               5,
                               {x->ref, call->who.id_text, call->who.username,
                                call->who.role, call->source}};
    con_tx_or_503(call, &tx, rec_decided);
}

static void
con_records_verify(struct con_call *call)
{
    rec_decide(call, &rec_verify);
}
static void
con_records_needs_info(struct con_call *call)
{
    rec_decide(call, &rec_needs_info);
}
static void
con_records_reject(struct con_call *call)
{
    rec_decide(call, &rec_reject);
}
static void
con_records_revoke(struct con_call *call)
{
    rec_decide(call, &rec_revoke);
}
static void
con_records_reopen(struct con_call *call)
{
    rec_decide(call, &rec_reopen);
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
        if (c == NULL || !(rec_code_ok(c) || rec_district_ok(c)) ||
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
            if (c == NULL || !rec_code_ok(c) ||
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
    struct rec_ctx *x = rec_ctx_new(call);
    const struct flow_set *set = gw_server_flows(call->con->srv);
    const struct gw_config *cfg = call->con->cfg;
    char version[24], uuid[37], hold[16], cbn[4], cen[4], msg[128];
    char *sms_bn, *sms_en, *fields_text;
    json_t *body = NULL, *in, *fields, *v;
    const char *k;
    struct store_tx tx;
    int coding_bn = 0, coding_en = 0;

    if (x == NULL) return;
    x->act = &rec_verify;
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
    tx.stmt[tx.n++] =
        (struct store_tx_stmt){rec_decision_audit_sql,
                               5,
                               {x->ref, call->who.id_text, call->who.username,
                                call->who.role, call->source}};
    con_tx_or_503(call, &tx, rec_decided);
}

static void
con_records_undo(struct con_call *call)
{
    struct rec_ctx *x = rec_ctx_new(call);
    struct store_tx tx;
    if (x == NULL) return;
    x->audit_action = "record.undo";
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){rec_undo_sql, 1, {x->ref}};
    tx.stmt[tx.n++] =
        (struct store_tx_stmt){rec_undo_audit_sql,
                               5,
                               {x->ref, call->who.id_text, call->who.username,
                                call->who.role, call->source}};
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

const struct con_route con_records_routes[] = {
    {GW_METHOD_GET, "/api/records", CON_ROLE_ADMIN | CON_ROLE_OFFICER, 0,
     con_records_list},
    {GW_METHOD_GET, "/api/records/{}", CON_ROLE_ADMIN | CON_ROLE_OFFICER, 0,
     con_records_get},
    {GW_METHOD_POST, "/api/records/{}/verify",
     CON_ROLE_ADMIN | CON_ROLE_OFFICER, 1, con_records_verify},
    {GW_METHOD_POST, "/api/records/{}/correct",
     CON_ROLE_ADMIN | CON_ROLE_OFFICER, 1, con_records_correct},
    {GW_METHOD_POST, "/api/records/{}/needs-info",
     CON_ROLE_ADMIN | CON_ROLE_OFFICER, 1, con_records_needs_info},
    {GW_METHOD_POST, "/api/records/{}/reject",
     CON_ROLE_ADMIN | CON_ROLE_OFFICER, 1, con_records_reject},
    {GW_METHOD_POST, "/api/records/{}/undo", CON_ROLE_ADMIN | CON_ROLE_OFFICER,
     1, con_records_undo},
    {GW_METHOD_POST, "/api/records/{}/reveal",
     CON_ROLE_ADMIN | CON_ROLE_OFFICER, 1, con_records_reveal},
    {GW_METHOD_POST, "/api/records/{}/reopen", CON_ROLE_ADMIN, 1,
     con_records_reopen},
    {GW_METHOD_POST, "/api/records/{}/revoke", CON_ROLE_ADMIN, 1,
     con_records_revoke},
    {0, NULL, 0, 0, NULL},
};
