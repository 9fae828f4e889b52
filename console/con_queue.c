/*
 * con_queue.c -- GET /api/records, the review queue: its filters, the
 * search by reference, phone or ID number, and keyset pages.  One record,
 * /reveal and the helpers the record files share are con_records.c; the
 * decisions con_decisions.c.
 *
 * The query runs as remigate_console with the officer's scope set
 * (con_tx_init): an officer's page is read district by district from the
 * transaction's own scope, so the row-level security policy and the page
 * agree.  Searching by an ID number goes through its keyed hash, never a
 * substring.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "console/con_records_int.h"

#define REC_PAGE_DEFAULT 50
#define REC_PAGE_MAX     100

/* ------------------------------------------------------------------------
 * Small parsers (each a buffer in, a status out)
 */

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

void
con_age_band(long long age, char out[CON_AGE_BAND_MAX])
{
    if (age < 18)
        snprintf(out, CON_AGE_BAND_MAX, "<18");
    else if (age < 25)
        snprintf(out, CON_AGE_BAND_MAX, "18-24");
    else if (age >= 60)
        snprintf(out, CON_AGE_BAND_MAX, "60+");
    else
        snprintf(out, CON_AGE_BAND_MAX, "%d-%d", (int)(age / 5 * 5),
                 (int)(age / 5 * 5 + 4));
}

int
con_utc_text(long long us, char out[CON_UTC_TEXT_MAX])
{
    /* PostgreSQL's first and last timestamps (4713-11-24 BC, 294277-01-01)
     * in seconds from 1970 */
    const long long lo = -210866803200LL, hi = 9224318016000LL;
    struct tm tm;
    time_t s;
    long long y;

    out[0] = '\0';
    if (us < lo * 1000000 || us / 1000000 >= hi) return -1;
    s = (time_t)(us / 1000000 - (us % 1000000 < 0)); /* to_char truncates */
    if (gmtime_r(&s, &tm) == NULL) return -1;
    /* YYYY at least 4 digits; a year BC as its number (the year 0 is 1 BC) */
    y = (long long)tm.tm_year + 1900;
    snprintf(out, CON_UTC_TEXT_MAX, "%04lld-%02d-%02dT%02d:%02d:%02dZ",
             y > 0 ? y : 1 - y, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
    return 0;
}

/* ------------------------------------------------------------------------
 * GET /api/records -- the queue
 */

/* Append the string literal s to b. */
#define REC_LIT(b, s) con_buf_add((b), (s), sizeof(s) - 1)

/* The columns of a page (REC_LIST_COLS, then REC_LIST_PAGE's two). */
enum rec_col {
    REC_C_REF,
    REC_C_STATUS,
    REC_C_DISTRICT,
    REC_C_CHANNEL,
    REC_C_SEX,
    REC_C_BIRTH_YEAR,
    REC_C_COUNTRY,
    REC_C_SKILLS,
    REC_C_NEED,
    REC_C_DUP,
    REC_C_CHANGED,
    REC_C_AT_US, /* created_at, microseconds from 1970 (the keyset) */
    REC_C_ID,
    REC_C_NOW_US, /* now(), microseconds from 1970, once per statement */
    REC_C_YEAR,   /* extract(year FROM now()), once per statement */
};

/* Append one row of the page to b as a JSON object, the text json_dumps()
 * wrote for the object json_pack() made of the row before: 0, or -1 when
 * jansson would have refused the row (a required column NULL, text not
 * UTF-8; the page then left it out) or out of memory, b as it was.  The
 * registration time, the age band and the days waiting are what
 * to_char(), CON_AGE_BAND_SQL and extract(day FROM now() - created_at)
 * gave per row, made here from the row's created_at, birth year and the
 * statement's now(). */
static int
rec_list_row(struct con_buf *b, const struct store_tx_result *res, int i)
{
    /* the string fields, in the object's order (col -1: the registration
     * time, -2: the age band); skills, days and flags are written after
     * them */
    static const struct {
        const char *key; /* with its quotes, colon and comma */
        int col, opt;
    } str[] = {
        {"{\"ref\":", REC_C_REF, 0},
        {",\"status\":", REC_C_STATUS, 0},
        {",\"district\":", REC_C_DISTRICT, 1},
        {",\"registered_at\":", -1, 0},
        {",\"channel\":", REC_C_CHANNEL, 1},
        {",\"sex\":", REC_C_SEX, 1},
        {",\"age_band\":", -2, 1},
        {",\"destination\":", REC_C_COUNTRY, 1},
    };
    const char *skills = store_tx_value(res, 0, i, REC_C_SKILLS);
    const char *need = store_tx_value(res, 0, i, REC_C_NEED);
    const char *changed = store_tx_value(res, 0, i, REC_C_CHANGED);
    const char *at_us = store_tx_value(res, 0, i, REC_C_AT_US);
    const char *now_us = store_tx_value(res, 0, i, REC_C_NOW_US);
    const char *birth = store_tx_value(res, 0, i, REC_C_BIRTH_YEAR);
    const char *year = store_tx_value(res, 0, i, REC_C_YEAR);
    size_t at = b->len;
    char buf[512], num[32], when[CON_UTC_TEXT_MAX], band[CON_AGE_BAND_MAX];
    char *save = NULL, *w;
    long long at_v;
    int first = 1;

    /* never NULL in a page: created_at is NOT NULL, now() is now() */
    if (at_us == NULL || now_us == NULL || year == NULL) goto refuse;
    at_v = strtoll(at_us, NULL, 10);
    if (con_utc_text(at_v, when) != 0) goto refuse;
    if (birth != NULL)
        con_age_band(strtoll(year, NULL, 10) - strtoll(birth, NULL, 10), band);
    for (size_t k = 0; k < sizeof(str) / sizeof(str[0]); k++) {
        const char *v = str[k].col == -1 ? when
                        : str[k].col == -2
                            ? (birth ? band : NULL)
                            : store_tx_value(res, 0, i, str[k].col);
        if ((v == NULL && !str[k].opt) ||
            con_buf_add(b, str[k].key, strlen(str[k].key)) < 0 ||
            con_json_str(b, v) < 0)
            goto refuse;
    }
    if (REC_LIT(b, ",\"skills\":[") < 0) goto refuse;
    if (skills && skills[0]) {
        snprintf(buf, sizeof(buf), "%s", skills);
        for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            size_t before = b->len;
            /* a word jansson refused was left out of the array */
            if (!first && REC_LIT(b, ",") < 0) goto refuse;
            if (con_json_str(b, w) < 0) {
                b->len = before;
                b->p[before] = '\0';
                continue;
            }
            first = 0;
        }
    }
    /* extract(day FROM now() - created_at): whole days, towards zero */
    snprintf(num, sizeof(num), "%lld",
             (strtoll(now_us, NULL, 10) - at_v) / 86400000000LL);
    if (REC_LIT(b, "],\"need\":") < 0 || con_json_str(b, need) < 0 ||
        REC_LIT(b, ",\"days_waiting\":") < 0 ||
        con_buf_add(b, num, strlen(num)) < 0 || REC_LIT(b, ",\"flags\":[") < 0)
        goto refuse;
    first = strcmp(store_tx_value(res, 0, i, REC_C_DUP), "t") != 0;
    if (!first && REC_LIT(b, "\"possible_duplicate\"") < 0) goto refuse;
    if (changed != NULL &&
        (first ? REC_LIT(b, "\"changed_since_verified\"")
               : REC_LIT(b, ",\"changed_since_verified\"")) < 0)
        goto refuse;
    if (REC_LIT(b, "]}") < 0) goto refuse;
    return 0;
refuse:
    b->len = at;
    if (b->p) b->p[at] = '\0';
    return -1;
}

/* A page of the queue: the rows, each filter a condition that the custom
 * plan of an unnamed statement folds away when its parameter is NULL.
 * The duplicate flag is the record's own column, kept by migration 023's
 * triggers (it was one remigate_duplicate_ids() call per page, 39 % of
 * PostgreSQL's time under load).  The registration time, the age band
 * and the days waiting are made by rec_list_row() from the row's
 * created_at and birth year and the statement's now(), not by to_char(),
 * the age band's sub-select and extract() per row.  Columns: enum
 * rec_col. */
#define REC_LIST_COLS                                                          \
    "SELECT r.ref, r.status, r.district, r.channel, r.sex, r.birth_year,"      \
    " r.country, array_to_string(r.skills, ' ') AS skills, r.need,"            \
    " r.possible_duplicate AS dup,"                                            \
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
    "  OR ($9 = 'possible_duplicate' AND r.possible_duplicate))"               \
    " AND (($10::text IS NULL AND $11::text IS NULL AND $12::text IS NULL"     \
    "  AND $13::text IS NULL) OR r.ref = $10 OR r.msisdn = $11"                \
    "  OR r.nid_hash = decode($12, 'hex')"                                     \
    "  OR r.passport_hash = decode($13, 'hex'))"                               \
    " AND ($14::text IS NULL OR (r.created_at, r.id) >"                        \
    "  (to_timestamp(0) + split_part($14, '.', 1)::bigint"                     \
    "   * interval '1 microsecond', split_part($14, '.', 2)::bigint))"         \
    " ORDER BY r.created_at, r.id LIMIT $15::int"

/* The page, in the order of the keyset; now() and its year (in the
 * session's time zone, as CON_AGE_BAND_SQL) once, as init plans. */
#define REC_LIST_PAGE                                                          \
    " SELECT p.ref, p.status, p.district, p.channel, p.sex, p.birth_year,"     \
    " p.country, p.skills, p.need, p.dup, p.changed, p.at_us, p.id,"           \
    " (SELECT (extract(epoch FROM now()) * 1000000)::bigint),"                 \
    " (SELECT extract(year FROM now())::int)"                                  \
    " FROM page p ORDER BY p.at_us, p.id"

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

/* The page most asked for -- one status, no filter, no search, the first
 * page or the next after a cursor -- without the NULL-or conditions
 * above: a plan that does not hang on the parameters' values, so it is a
 * prepared statement (store_tx.prepare) whose generic plan PostgreSQL
 * keeps instead of planning each page.  [admin][next]: $1 status, $2 the
 * page size + 1, $3 the cursor. */
#define REC_PLAIN_AFTER                                                        \
    " AND (r.created_at, r.id) > (to_timestamp(0)"                             \
    " + split_part($3, '.', 1)::bigint * interval '1 microsecond',"            \
    " split_part($3, '.', 2)::bigint)"
#define REC_PLAIN_ORDER " ORDER BY r.created_at, r.id LIMIT $2::int"
#define REC_PLAIN_SCOPED(after)                                                \
    "WITH page AS (SELECT q.* FROM unnest(remigate_scope_districts()) s(code)" \
    " CROSS JOIN LATERAL (" REC_LIST_COLS " WHERE r.district = s.code"         \
    " AND r.status = $1" after REC_PLAIN_ORDER                                 \
    ") q ORDER BY q.at_us, q.id LIMIT $2::int)" REC_LIST_PAGE
#define REC_PLAIN_ALL(after)                                                   \
    "WITH page AS (" REC_LIST_COLS                                             \
    " WHERE r.status = $1" after REC_PLAIN_ORDER ")" REC_LIST_PAGE
static const char *const rec_list_plain_sql[2][2] = {
    {REC_PLAIN_SCOPED(""), REC_PLAIN_SCOPED(REC_PLAIN_AFTER)},
    {REC_PLAIN_ALL(""), REC_PLAIN_ALL(REC_PLAIN_AFTER)},
};

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
        con_rec_hex(h, sizeof(h), rq->nid);
    if (cs.passport && call->con->crypto &&
        store_id_hash(call->con->crypto, "passport", cs.norm, h) == 0)
        con_rec_hex(h, sizeof(h), rq->passport);
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
    return con_rec_in(st, v);
}
int
con_rec_district_ok(const char *v)
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
int
con_rec_code_ok(const char *v)
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
    struct con_rec_ctx *x = con_rec_ctx_of(call);
    struct con_buf b = {NULL, 0, 0};
    int n, limit, oom;
    char next[48];

    if (status != 0) {
        con_rec_fail(call, x, status, res);
        return;
    }
    limit = (int)strtol(x->audit, NULL, 10); /* the page size asked */
    n = store_tx_ntuples(res, 0);
    oom = REC_LIT(&b, "{\"items\":[") < 0;
    for (int i = 0; i < n && i < limit && !oom; i++) {
        size_t at = b.len;
        if (b.len > sizeof("{\"items\":[") - 1) oom = REC_LIT(&b, ",") < 0;
        if (!oom && rec_list_row(&b, res, i) < 0) {
            b.len = at; /* a row jansson refused was left out */
            b.p[at] = '\0';
        }
    }
    if (n > limit)
        snprintf(next, sizeof(next), "%s.%s",
                 store_tx_value(res, 0, limit - 1, REC_C_AT_US),
                 store_tx_value(res, 0, limit - 1, REC_C_ID));
    oom = oom || REC_LIT(&b, "],\"next\":") < 0 ||
          con_json_str(&b, n > limit ? next : NULL) < 0 || REC_LIT(&b, "}") < 0;
    con_reply_json_text(call, 200, oom ? NULL : b.p);
    free(b.p);
}

static void
con_records_list(struct con_call *call)
{
    struct con_rec_ctx *x = con_rec_ctx_new(call);
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
                     con_rec_district_ok) ||
        rec_q_or_422(call, &ps, "from", q.from, sizeof(q.from), con_date_ok) ||
        rec_q_or_422(call, &ps, "to", q.to, sizeof(q.to), con_date_ok) ||
        rec_q_or_422(call, &ps, "channel", q.channel, sizeof(q.channel),
                     rec_channel_ok) ||
        rec_q_or_422(call, &ps, "destination", q.dest, sizeof(q.dest),
                     rec_country_ok) ||
        rec_q_or_422(call, &ps, "skill", q.skill, sizeof(q.skill),
                     con_rec_code_ok) ||
        rec_q_or_422(call, &ps, "need", q.need, sizeof(q.need),
                     con_rec_code_ok) ||
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
    if (strcmp(q.status, "all") != 0 && !q.district[0] && !q.from[0] &&
        !q.to[0] && !q.channel[0] && !q.dest[0] && !q.skill[0] && !q.need[0] &&
        !q.flag[0] && !search[0]) {
        int admin = call->who.role_bit == CON_ROLE_ADMIN;
        int next = q.cursor[0] != '\0';
        tx.prepare = 1u;
        tx.stmt[tx.n++] =
            (struct store_tx_stmt){rec_list_plain_sql[admin][next],
                                   next ? 3 : 2,
                                   {q.status, plus1, next ? q.cursor : NULL}};
        con_tx_or_503(call, &tx, rec_list_done);
        return;
    }
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

const struct con_route con_queue_routes[] = {
    {GW_METHOD_GET, "/api/records", CON_ROLE_ADMIN | CON_ROLE_OFFICER, 0,
     con_records_list},
    {0, NULL, 0, 0, NULL},
};
