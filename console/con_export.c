/*
 * con_export.c -- GET /api/export.csv?kind=records: the returnees'
 * records as a spreadsheet opens them, streamed.  Its columns are shared
 * with the data dictionary (con_export_dict.c) through con_export_int.h.
 *
 * Who: admins (every district) and officers (their own districts: the
 * rows come through the same row-level security as the review queue, so
 * the database itself never hands an officer another district's row);
 * analysts never read a row (403, audited).  Never an NID or passport
 * number, nor its hash; the phone number only for an admin who asks for
 * it (contact=1) and gives a reason (reason=...), which the audit keeps.
 *
 * Streaming: the first transaction counts the rows, reads the first page
 * and writes the "started" audit row -- no row leaves before that row is
 * committed.  Then the reply starts (chunked, X-Total-Rows: the count)
 * and each page of EXP_PAGE rows (keyset on id: a record changed during
 * the export is read once at most) goes out as one chunk; the next page
 * is read only when the client's socket has taken all but EXP_HIGH bytes
 * (gw_reply_pending()), so the daemon holds one page, never the file.
 * The SHA-256 is computed over the bytes as they go; the last transaction
 * writes the "complete" audit row with the row count and the hash, and
 * only then does the body end.  A client that goes away, or a database
 * that fails mid-way, gets an audit row "failed" with the rows sent so
 * far, and the connection is cut without the last chunk, so no client
 * takes a truncated file for a whole one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sodium.h>

#include "console/con_export_int.h"

#define EXP_PAGE    500          /* rows per page, per chunk */
#define EXP_HIGH    (256 * 1024) /* bytes queued before the next page */
#define EXP_POLL_MS 10           /* while waiting for the client */
#define EXP_STALL_MS                                                           \
    90000              /* no byte taken: give up (GW_STREAM_IDLE_MS first) */
#define EXP_REASON 200 /* bytes of an admin's contact reason */

/* The columns of a record, in the order of the file (con_export_int.h);
 * col is the column of exp_page_sql. */
static const struct con_exp_col exp_cols[] = {
    {"ref", CON_EXP_PLAIN, NULL, 1, "text",
     "the registration's reference, as the returnee was told it"},
    {"status", CON_EXP_CODED, "status", 2, "code", "where the review stands"},
    {"status_at", CON_EXP_PLAIN, NULL, 3, "ISO 8601 +06:00",
     "when the status last changed"},
    {"registered_at", CON_EXP_PLAIN, NULL, 4, "ISO 8601 +06:00",
     "when the registration was received"},
    {"channel", CON_EXP_CODED, "channel", 5, "code",
     "how the returnee registered"},
    {"division", CON_EXP_CODED, "division", 6, "code", "home division"},
    {"district", CON_EXP_CODED, "district", 7, "code",
     "home district (ISO 3166-2:BD)"},
    {"sex", CON_EXP_CODED, "sex", 8, "code", "sex as the returnee gave it"},
    {"birth_year", CON_EXP_PLAIN, NULL, 9, "integer", "year of birth"},
    {"age_band", CON_EXP_PLAIN, NULL, 10, "text",
     "age this year in five-year bands (<18, 18-24, 25-29, ..., 60+)"},
    {"education", CON_EXP_CODED, "education", 11, "code", "highest education"},
    {"country", CON_EXP_CODED, "country", 12, "code",
     "last country of work (ISO 3166-1 alpha-2)"},
    {"years_abroad", CON_EXP_PLAIN, NULL, 13, "integer", "years worked abroad"},
    {"return_year", CON_EXP_PLAIN, NULL, 14, "integer", "year of return"},
    {"return_reason", CON_EXP_CODED, "reason", 15, "code",
     "why they came back"},
    {"skills", CON_EXP_SKILLS, "skill", 16, "codes separated by spaces",
     "skills (several possible); the label columns join them with '; '"},
    {"need", CON_EXP_CODED, "need", 17, "code", "main need now"},
    {"verified_by", CON_EXP_PLAIN, NULL, 18, "integer",
     "the officer (id) who verified the record"},
    {"verified_at", CON_EXP_PLAIN, NULL, 19, "ISO 8601 +06:00",
     "when it was verified"},
    {"info_reason", CON_EXP_CODED, "decision", 20, "code",
     "what the officer asked for (needs_info)"},
    {"reject_reason", CON_EXP_CODED, "decision", 21, "code",
     "why the record was rejected"},
    {"reject_note", CON_EXP_PLAIN, NULL, 22, "text",
     "the officer's note on a rejection"},
};
#define EXP_NCOLS      (sizeof(exp_cols) / sizeof(exp_cols[0]))
#define EXP_MSISDN_COL 23
static const struct con_exp_col exp_msisdn = {
    "msisdn",
    CON_EXP_PLAIN,
    NULL,
    EXP_MSISDN_COL,
    "digits",
    "the returnee's phone number (admins only, with a reason: contact=1)"};

const struct con_exp_col *
con_exp_col(size_t i, int contact)
{
    if (i < EXP_NCOLS) return &exp_cols[i];
    return i == EXP_NCOLS && contact ? &exp_msisdn : NULL;
}

#define EXP_TS(c)                                                              \
    "to_char(" c " AT TIME ZONE 'Asia/Dhaka', "                                \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"+06:00\"')"

/* The filters of both statements: $1 status, $2 district, $3 sex, $4
 * from, $5 to (Dhaka days, inclusive); row-level security adds the
 * caller's scope. */
#define EXP_WHERE                                                              \
    " WHERE ($1::text IS NULL OR r.status = $1)"                               \
    " AND ($2::text IS NULL OR r.district = $2)"                               \
    " AND ($3::text IS NULL OR r.sex = $3)"                                    \
    " AND ($4::date IS NULL OR r.created_at >="                                \
    "      ($4::date::timestamp AT TIME ZONE 'Asia/Dhaka'))"                   \
    " AND ($5::date IS NULL OR r.created_at <"                                 \
    "      (($5::date + 1)::timestamp AT TIME ZONE 'Asia/Dhaka'))"

static const char exp_count_sql[] =
    "SELECT count(*) FROM returnees r" EXP_WHERE;

#define EXP_STATUS_AT   EXP_TS("r.status_at")
#define EXP_CREATED_AT  EXP_TS("r.created_at")
#define EXP_VERIFIED_AT EXP_TS("r.verified_at")
/* $6 the last id sent, $7 the page size, $8 'contact' for the msisdn */
static const char exp_page_sql[] =
    "SELECT r.id, r.ref, r.status, " EXP_STATUS_AT ", " EXP_CREATED_AT ","
    " r.channel, r.division, r.district, r.sex, r.birth_year, " CON_AGE_BAND_SQL
    ", r.education, r.country, r.years_abroad,"
    " r.return_year, r.reason, array_to_string(r.skills, ' '), r.need,"
    " r.verified_by, " EXP_VERIFIED_AT ", r.info_reason, r.reject_reason,"
    " r.reject_note, CASE WHEN $8::text = 'contact' THEN r.msisdn END"
    " FROM returnees r" EXP_WHERE " AND r.id > $6::bigint ORDER BY r.id"
    " LIMIT $7::int";

enum exp_state {
    EXP_FIRST,   /* count, first page, "started" audit row */
    EXP_READING, /* a page after the first */
    EXP_DRAIN,   /* waiting for the client to take what was sent */
    EXP_CLOSING, /* the "complete" or "failed" audit row */
};

#define EXP_MAGIC 0x45585052u

struct exp {
    unsigned magic;
    struct con_call *call;
    enum exp_state state;
    const char *status, *district, *sex, *from, *to; /* the request's */
    int contact;
    char reason[EXP_REASON + 1];
    char last_id[24], page_text[8];
    long long rows, total;
    int done;        /* the last page was read */
    const char *why; /* why the export stopped short (a literal), or NULL */
    crypto_hash_sha256_state sha;
    struct con_buf buf;
    struct event *timer;
    long pending;    /* bytes queued at the last look */
    long long stall; /* ms without progress */
    char *detail;    /* the audit row's detail */
};

static void exp_next(struct exp *x);

/* Is code one of the comma-separated codes of list? */
static int
exp_list_has(const char *list, const char *code)
{
    size_t n = strlen(code);

    for (const char *p = list; *p;) {
        size_t m = strcspn(p, ",");
        if (m == n && strncmp(p, code, n) == 0) return 1;
        p += m;
        if (*p == ',') p++;
    }
    return 0;
}

/* The labels of a decision reason (messages.conf "reason_CODE"). */
static void
exp_decision_label(const struct flow_set *set, const char *code,
                   const char **en, const char **bn)
{
    char id[64];

    *en = *bn = code;
    snprintf(id, sizeof(id), "reason_%s", code);
    if (set != NULL && strcmp(flow_message(set, "en", id), id) != 0) {
        *en = flow_message(set, "en", id);
        *bn = flow_message(set, "bn", id);
    }
}

void
con_exp_label(const json_t *lists, const struct flow_set *set, const char *dim,
              const char *code, const char **en, const char **bn)
{
    if (strcmp(dim, "decision") == 0)
        exp_decision_label(set, code, en, bn);
    else
        con_stats_label(lists, dim, code, en, bn);
}

static int
exp_header(struct con_buf *b, int contact)
{
    int rc = con_buf_add(b, "\xEF\xBB\xBF", 3);

    const struct con_exp_col *c;

    for (size_t i = 0; (c = con_exp_col(i, contact)) != NULL; i++) {
        char h[128];
        if (c->kind == CON_EXP_PLAIN)
            snprintf(h, sizeof(h), "%s%s", i ? "," : "", c->name);
        else if (c->kind == CON_EXP_SKILLS)
            snprintf(h, sizeof(h), "%s%s,%s_label_bn,%s_label_en", i ? "," : "",
                     c->name, c->name, c->name);
        else
            snprintf(h, sizeof(h), "%s%s_code,%s_label_bn,%s_label_en",
                     i ? "," : "", c->name, c->name, c->name);
        rc |= con_buf_add(b, h, strlen(h));
    }
    return rc | con_buf_add(b, "\r\n", 2);
}

/* The labels of a space-separated list of skill codes, joined by "; ". */
static int
exp_skills(struct con_buf *b, const json_t *lists, const char *codes, int bn)
{
    struct con_buf l = {NULL, 0, 0};
    char code[64];
    const char *p = codes;
    int rc = con_buf_add(&l, "", 0);

    while (*p) {
        size_t n = strcspn(p, " ");
        const char *en, *lb;
        if (n > 0 && n < sizeof(code)) {
            memcpy(code, p, n);
            code[n] = '\0';
            con_stats_label(lists, "skill", code, &en, &lb);
            if (l.len) rc |= con_buf_add(&l, "; ", 2);
            rc |= con_buf_add(&l, bn ? lb : en, strlen(bn ? lb : en));
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    rc |= con_csv_field(b, l.p);
    free(l.p);
    return rc;
}

/* One record (row i of statement stmt) as a CSV line. */
static int
exp_line(struct con_buf *b, const struct store_tx_result *res, int stmt, int i,
         const json_t *lists, const struct flow_set *set, int contact)
{
    int rc = 0;

    const struct con_exp_col *c;

    for (size_t k = 0; (c = con_exp_col(k, contact)) != NULL; k++) {
        const char *v, *en = NULL, *bn = NULL;
        v = store_tx_value(res, stmt, i, c->col);
        if (k) rc |= con_buf_add(b, ",", 1);
        rc |= con_csv_field(b, v);
        if (c->kind == CON_EXP_PLAIN) continue;
        if (v != NULL && c->kind == CON_EXP_CODED)
            con_exp_label(lists, set, c->dim, v, &en, &bn);
        rc |= con_buf_add(b, ",", 1);
        if (c->kind == CON_EXP_SKILLS)
            rc |= exp_skills(b, lists, v ? v : "", 1);
        else
            rc |= con_csv_field(b, bn);
        rc |= con_buf_add(b, ",", 1);
        if (c->kind == CON_EXP_SKILLS)
            rc |= exp_skills(b, lists, v ? v : "", 0);
        else
            rc |= con_csv_field(b, en);
    }
    return rc | con_buf_add(b, "\r\n", 2);
}

/* The audit row's detail: the filter, the contact reason, and once done
 * the rows, the total and the SHA-256 of every byte sent. */
static char *
exp_detail(struct exp *x, const char *state)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char sha[65];
    json_t *d;
    char *s;

    d = json_pack("{s:s,s:{s:s?,s:s?,s:s?,s:s?,s:s?},s:b,s:s?,s:s}", "kind",
                  "records", "filter", "status", x->status, "district",
                  x->district, "sex", x->sex, "from", x->from, "to", x->to,
                  "contact", x->contact, "reason",
                  x->contact ? x->reason : NULL, "state", state);
    if (d == NULL) return NULL;
    if (strcmp(state, "started") != 0) {
        crypto_hash_sha256_final(&x->sha, h);
        for (int k = 0; k < (int)sizeof(h); k++)
            snprintf(sha + 2 * k, 3, "%02x", h[k]);
        json_object_set_new(d, "rows", json_integer(x->rows));
        json_object_set_new(d, "total", json_integer(x->total));
        json_object_set_new(d, "sha256", json_string(sha));
    }
    s = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    return s;
}

/* The statements of a page read into tx. */
static void
exp_page_stmt(struct exp *x, struct store_tx *tx)
{
    tx->stmt[tx->n++] = (struct store_tx_stmt){
        exp_page_sql,
        8,
        {x->status, x->district, x->sex, x->from, x->to, x->last_id,
         x->page_text, x->contact ? "contact" : "none"}};
}

/* The request is over: free what is ours, end the body (cut when it
 * stopped short) and the request. */
static void
exp_end(struct exp *x)
{
    struct gw_req *r = x->call->req;

    if (x->timer != NULL) event_free(x->timer);
    x->timer = NULL;
    free(x->buf.p);
    x->buf.p = NULL;
    free(x->detail);
    x->detail = NULL;
    x->magic = 0;
    if (x->why != NULL) gw_reply_cut(r);
    gw_reply_end(r);
}

static void
exp_on_closed(int status, const struct store_tx_result *res, void *arg)
{
    struct exp *x = arg;

    CON_AN(x->magic == EXP_MAGIC);
    if (status != 0)
        GW_RLOG(GW_LEVEL_ERROR, x->call->req, 0,
                "export audit row not written rows=%lld status=%s err=%s",
                x->rows, store_strerror(status), store_tx_errstr(res));
    GW_RLOG(GW_LEVEL_INFO, x->call->req, 0,
            "export records rows=%lld total=%lld why=%s", x->rows, x->total,
            x->why ? x->why : "complete");
    exp_end(x);
}

/* Write the closing audit row ("complete", or "failed" with x->why). */
static void
exp_close(struct exp *x)
{
    struct store_tx tx;

    x->state = EXP_CLOSING;
    x->detail = exp_detail(x, x->why ? x->why : "complete");
    if (x->detail == NULL) {
        if (x->why == NULL) x->why = "out_of_memory";
        exp_on_closed(STORE_ENOMEM, NULL, x);
        return;
    }
    con_tx_init(x->call, &tx);
    CON_AZ(con_audit_add(x->call, &tx, NULL, "export", "records",
                         x->why ? "failed" : "ok", x->detail));
    if (store_pool_tx(x->call->con->pool, &tx, exp_on_closed, x) != 0) {
        if (x->why == NULL) x->why = "database_down";
        exp_on_closed(STORE_EDOWN, NULL, x);
    }
}

/* Send the rows of statement stmt; 0, or -1 (x->why set). */
static int
exp_send(struct exp *x, const struct store_tx_result *res, int stmt)
{
    struct gw_server *srv = gw_req_server(x->call->req);
    const json_t *lists = con_lists(srv);
    const struct flow_set *set = gw_server_flows(srv);
    int n = store_tx_ntuples(res, stmt), rc = 0;

    for (int i = 0; i < n; i++)
        rc |= exp_line(&x->buf, res, stmt, i, lists, set, x->contact);
    if (rc != 0) {
        x->why = "out_of_memory";
        return -1;
    }
    if (n > 0)
        snprintf(x->last_id, sizeof(x->last_id), "%s",
                 store_tx_value(res, stmt, n - 1, 0));
    x->rows += n;
    x->done = n < EXP_PAGE;
    crypto_hash_sha256_update(&x->sha, (const unsigned char *)x->buf.p,
                              x->buf.len);
    if (gw_reply_chunk(x->call->req, x->buf.p, x->buf.len) != 0) {
        x->why = "client_gone";
        return -1;
    }
    x->buf.len = 0;
    return 0;
}

static void
exp_on_page(int status, const struct store_tx_result *res, void *arg)
{
    struct exp *x = arg;

    CON_AN(x->magic == EXP_MAGIC);
    CON_AN(x->state == EXP_READING);
    if (status != 0) {
        GW_RLOG(GW_LEVEL_WARN, x->call->req, 0,
                "export page failed rows=%lld status=%s err=%s", x->rows,
                store_strerror(status), store_tx_errstr(res));
        x->why = "database_failed";
        exp_close(x);
        return;
    }
    if (exp_send(x, res, 0) != 0) {
        exp_close(x);
        return;
    }
    exp_next(x);
}

static void
exp_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct exp *x = arg;
    struct gw_req *r = x->call->req;

    (void)fd;
    (void)what;
    CON_AN(x->magic == EXP_MAGIC);
    CON_AN(x->state == EXP_DRAIN);
    gw_req_enter(r);
    exp_next(x);
    gw_req_leave(r);
}

/* After a page went out: wait for the client, read the next page, or
 * close. */
static void
exp_next(struct exp *x)
{
    long pending = gw_reply_pending(x->call->req);
    struct timeval tv = {0, EXP_POLL_MS * 1000};
    struct store_tx tx;

    if (pending < 0) {
        x->why = "client_gone";
        exp_close(x);
        return;
    }
    if (pending > EXP_HIGH) {
        if (x->state == EXP_DRAIN && pending >= x->pending)
            x->stall += EXP_POLL_MS;
        else
            x->stall = 0;
        x->pending = pending;
        if (x->stall >= EXP_STALL_MS) {
            x->why = "client_stalled";
            exp_close(x);
            return;
        }
        x->state = EXP_DRAIN;
        CON_AZ(evtimer_add(x->timer, &tv));
        return;
    }
    x->stall = 0;
    if (x->done) {
        exp_close(x);
        return;
    }
    x->state = EXP_READING;
    con_tx_init(x->call, &tx);
    exp_page_stmt(x, &tx);
    if (store_pool_tx(x->call->con->pool, &tx, exp_on_page, x) != 0) {
        x->why = "database_down";
        exp_close(x);
    }
}

static void
exp_on_first(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct exp *x = call->data;
    char total[24], disp[200], stamp[32];
    time_t now = time(NULL);
    struct tm tm;

    CON_AN(x->magic == EXP_MAGIC);
    free(x->detail);
    x->detail = NULL;
    if (status != 0) {
        x->magic = 0;
        con_reply_store_error(call, status, res);
        return;
    }
    x->total = strtoll(store_tx_value(res, 0, 0, 0), NULL, 10);
    if ((x->timer = evtimer_new(gw_server_base(gw_req_server(call->req)),
                                exp_on_timer, x)) == NULL) {
        x->magic = 0;
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    /* the file's name: scope, filter and time (Dhaka) */
    now += 6 * 3600;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M", &tm);
    snprintf(disp, sizeof(disp),
             "attachment; filename=\"remigate_records_%s_%s%s%s_%s.csv\"",
             x->district                            ? x->district
             : call->who.role_bit == CON_ROLE_ADMIN ? "BD"
                                                    : "mydistricts",
             x->status ? x->status : "all", x->sex ? "_" : "",
             x->sex ? x->sex : "", stamp);
    snprintf(total, sizeof(total), "%lld", x->total);
    gw_req_header_add(call->req, "Content-Disposition", disp);
    gw_req_header_add(call->req, "Cache-Control", "no-store");
    gw_req_header_add(call->req, "X-Total-Rows", total);
    gw_req_header_add(call->req, "Access-Control-Expose-Headers",
                      "X-Total-Rows");
    if (gw_reply_start(call->req, 200, "text/csv; charset=utf-8") != 0) {
        /* the deadline answered already */
        event_free(x->timer);
        x->magic = 0;
        con_reply_error(call, 503, "unavailable", "timed out");
        return;
    }
    crypto_hash_sha256_init(&x->sha);
    if (exp_header(&x->buf, x->contact) != 0) {
        x->why = "out_of_memory";
        exp_close(x);
        return;
    }
    x->state = EXP_READING;
    if (exp_send(x, res, 1) != 0) {
        exp_close(x);
        return;
    }
    exp_next(x);
}

/* GET /api/export.csv?kind=records&status=&district=&sex=&from=&to=
 * [&contact=1&reason=...] */
void
con_export_records(struct con_call *call, const struct gw_params *ps)
{
    static const char *const known[] = {"kind", "status", "district", "sex",
                                        "from", "to",     "contact",  "reason"};
    struct exp *x = gw_req_alloc(call->req, sizeof(*x));
    const char *contact, *reason;
    struct store_tx tx;
    int bad = 0;

    if (x == NULL) {
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    if (call->who.role_bit == CON_ROLE_ANALYST) {
        con_deny(call, 403, "forbidden",
                 "analysts download aggregates (kind=aggregate), not records",
                 "role");
        return;
    }
    for (size_t i = 0; i < ps->n; i++) {
        size_t k = 0;
        while (k < sizeof(known) / sizeof(known[0]) &&
               strcmp(ps->p[i].key, known[k]) != 0)
            k++;
        if (k == sizeof(known) / sizeof(known[0])) bad = 1;
    }
    x->status = con_param(ps, "status", 16, &bad);
    x->district = con_param(ps, "district", 16, &bad);
    x->sex = con_param(ps, "sex", 1, &bad);
    x->from = con_param(ps, "from", 10, &bad);
    x->to = con_param(ps, "to", 10, &bad);
    contact = con_param(ps, "contact", 1, &bad);
    reason = con_param(ps, "reason", EXP_REASON, &bad);
    if (x->status && strcmp(x->status, "all") == 0) x->status = NULL;
    if (x->status && strcmp(x->status, "pending") != 0 &&
        strcmp(x->status, "needs_info") != 0 &&
        strcmp(x->status, "verified") != 0 &&
        strcmp(x->status, "rejected") != 0)
        bad = 1;
    if (x->district && !con_codes_has(call->con->districts, x->district))
        bad = 1;
    if (x->sex && strcmp(x->sex, "m") != 0 && strcmp(x->sex, "f") != 0 &&
        strcmp(x->sex, "x") != 0)
        bad = 1;
    if ((x->from && !con_date_ok(x->from)) || (x->to && !con_date_ok(x->to)))
        bad = 1;
    if (contact && strcmp(contact, "0") != 0 && strcmp(contact, "1") != 0)
        bad = 1;
    if (bad) {
        con_reply_error(call, 400, "bad_request",
                        "parameters: kind=records, status "
                        "all|pending|needs_info|verified|rejected, district "
                        "a code, sex m|f|x, from/to YYYY-MM-DD, contact 0|1 "
                        "with reason");
        return;
    }
    x->contact = contact && contact[0] == '1';
    if (x->contact && call->who.role_bit != CON_ROLE_ADMIN) {
        con_deny(call, 403, "forbidden",
                 "only an admin may export phone numbers", "contact");
        return;
    }
    if (reason != NULL) { /* the audit's JSON holds it: UTF-8 only */
        json_t *js = json_string(reason);
        if (js == NULL) reason = "";
        json_decref(js);
    }
    if (x->contact && (reason == NULL || strlen(reason) < 5)) {
        con_reply_error(call, 422, "reason_required",
                        "say why the phone numbers are needed (5 to 200 "
                        "characters)");
        return;
    }
    if (reason && !x->contact) {
        con_reply_error(call, 400, "bad_request",
                        "a reason goes with contact=1 only");
        return;
    }
    if (x->district && call->who.role_bit == CON_ROLE_OFFICER &&
        !exp_list_has(call->who.districts, x->district)) {
        con_deny(call, 403, "forbidden", "that district is not yours", "scope");
        return;
    }
    x->magic = EXP_MAGIC;
    x->call = call;
    x->state = EXP_FIRST;
    snprintf(x->reason, sizeof(x->reason), "%s", reason ? reason : "");
    snprintf(x->last_id, sizeof(x->last_id), "0");
    snprintf(x->page_text, sizeof(x->page_text), "%d", EXP_PAGE);
    if ((x->detail = exp_detail(x, "started")) == NULL) {
        x->magic = 0;
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    call->data = x;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        exp_count_sql, 5, {x->status, x->district, x->sex, x->from, x->to}};
    exp_page_stmt(x, &tx);
    CON_AZ(
        con_audit_add(call, &tx, NULL, "export", "records", "ok", x->detail));
    if (con_tx_or_503(call, &tx, exp_on_first) < 0) {
        free(x->detail);
        x->magic = 0;
    }
}
