/*
 * con_int.h -- private to console/: the per-worker console, the API route
 * table and what a handler is given, replies, the password hasher, the
 * officers' rules shared by the API and the command line.
 */
#ifndef CON_INT_H
#define CON_INT_H

#include <stddef.h>

#include <jansson.h>

struct event;

#include "console/console.h"
#include "gateway/gw.h"
#include "store/store.h"

/* Invariants, never compiled out. */
_Noreturn void con_assert_fail(const char *func, const char *file, int line,
                               const char *cond);
#define CON_AN(x)                                                              \
    do {                                                                       \
        if (!(x)) con_assert_fail(__func__, __FILE__, __LINE__, #x);           \
    } while (0)
#define CON_AZ(x)       CON_AN((x) == 0)
#define CON_WRONG(what) con_assert_fail(__func__, __FILE__, __LINE__, what)

#define CON_COOKIE       "remigate_console"
#define CON_SID_BYTES    16 /* 128-bit session id */
#define CON_TOKEN_HEX    (CON_SID_BYTES * 2)
#define CON_USERNAME_MAX 32
#define CON_PW_MIN       8 /* characters */
#define CON_PW_MAX       128
#define CON_PARAMS_MAX   4
#define CON_PARAM_MAX    64
#define CON_DISTRICTS    2048 /* bytes of "BD-13,BD-26,..." */

/* 503's message when PostgreSQL has no connection up (console.db_wait_ms
 * waited for one in vain) */
#define CON_DB_DOWN_MSG                                                        \
    "the database is not reachable (restarting or failing over); try again "   \
    "in a few seconds"

/* Who may call a route: role bits, or CON_PUBLIC (no session at all).
 * CON_PRE_MFA: an admin who still has to enrol TOTP may call it. */
#define CON_ROLES(X)                                                           \
    X(ADMIN, "admin", 0x1u)                                                    \
    X(OFFICER, "officer", 0x2u)                                                \
    X(ANALYST, "analyst", 0x4u)

enum {
#define CON_X_ROLE(id, name, bit) CON_ROLE_##id = (bit),
    CON_ROLES(CON_X_ROLE)
#undef CON_X_ROLE
};
#define CON_ROLE_ANY (CON_ROLE_ADMIN | CON_ROLE_OFFICER | CON_ROLE_ANALYST)
#define CON_PUBLIC   0x100u
#define CON_PRE_MFA  0x200u

/* The bit of "admin"|"officer"|"analyst", 0 for anything else. */
unsigned con_role_bit(const char *name);
/* The name of one role bit, or NULL. */
const char *con_role_name(unsigned bit);

struct con;
struct con_call;

/* A handler owns call->req and ends it with exactly one con_reply_*() (or
 * gw_reply*()), now or later. */
typedef void con_handler_cb(struct con_call *call);

/* One API route.  pattern is a path where "{}" stands for one segment
 * ([A-Za-z0-9._-], at most CON_PARAM_MAX - 1 bytes), e.g.
 * "/api/records/{}/verify".  csrf: X-CSRF-Token must match the session's
 * (every write that needs a session sets it; the table is checked at
 * start). */
struct con_route {
    unsigned method; /* one GW_METHOD_* */
    const char *pattern;
    unsigned access; /* CON_ROLE_* bits, | CON_PRE_MFA, or CON_PUBLIC */
    int csrf;
    con_handler_cb *handler;
};

/* The tables, each ended by a row with pattern NULL.  Each file exports
 * its own; con_routes.c joins them (con_route_tables, with each one's
 * file). */
extern const struct con_route con_auth_routes[];
extern const struct con_route con_web_routes[]; /* con_lists.c */
/* GET /api/lists reads the lists once per process; this registers the
 * SIGHUP hook that drops them (con_lists.c).  0 or -1. */
int con_lists_start(struct gw_server *srv);
/* The lists as GET /api/lists answers them (read on the first call), or
 * NULL when they cannot be read.  Borrowed until the next SIGHUP. */
const json_t *con_lists(struct gw_server *srv);
extern const struct con_route con_totp_routes[];
extern const struct con_route con_officers_routes[];
extern const struct con_route con_audit_routes[];
extern const struct con_route con_queue_routes[];
extern const struct con_route con_records_routes[];
extern const struct con_route con_decisions_routes[];
extern const struct con_route con_notices_routes[];
extern const struct con_route con_notices_write_routes[];
extern const struct con_route con_stats_routes[];
extern const struct con_route con_export_dict_routes[];
extern const struct con_route con_indic_routes[];
extern const struct con_route *const con_route_tables[];

/* The officer behind a call's session. */
struct con_officer {
    long long id;
    char id_text[24];
    char username[CON_USERNAME_MAX + 1];
    char role[16];
    unsigned role_bit;
    int totp_enabled;
    char districts[CON_DISTRICTS]; /* codes joined by ',' ("" none) */
    char csrf[CON_TOKEN_HEX + 1];
};

/* What a handler is given.  Lives as long as the request (gw_req_alloc). */
struct con_call {
    unsigned magic;
    struct gw_req *req;
    struct con *con;
    const struct con_route *route;
    int nparams;
    char params[CON_PARAMS_MAX][CON_PARAM_MAX]; /* the "{}" segments */
    int has_session;
    struct con_officer who;
    char sid_hash[65];    /* hex SHA-256 of the cookie's id ("" none) */
    char primary_lsn[32]; /* the primary's WAL position at the session
                             check ("" none): con_read_tx_or_503() */
    const char *source;   /* the client's address */
    void *data;           /* the handler's own, for its callbacks */
};
#define CON_CALL_MAGIC 0x434f4e43u

/* Replies: JSON (takes the reference to body) or an error
 * {"error":code,"message":message} with one log line.  Both add the
 * no-store cache header; they end the request. */
void con_reply_json(struct con_call *call, int status, json_t *body);
/* The same for JSON already written as text (borrowed; NULL: out of
 * memory, a 500). */
void con_reply_json_text(struct con_call *call, int status, const char *text);
void con_reply_error(struct con_call *call, int status, const char *code,
                     const char *message);
/* 503 for a store status that is not the caller's fault. */
void con_reply_store_error(struct con_call *call, int status,
                           const struct store_tx_result *res);

/* Answer status {"error":code,...} after an audit_log row
 * "access.denied" (outcome denied, detail {"reason":reason, method,
 * route}) is written: for a wrong role, a missing second factor or CSRF
 * token, a record outside the officer's districts.  reason: a literal
 * word. */
void con_deny(struct con_call *call, int status, const char *code,
              const char *message, const char *reason);

/* The request body as a JSON object, or a 400/415 reply and NULL. */
json_t *con_body_or_400(struct con_call *call);

/* The value of the session cookie (CON_TOKEN_HEX lower-case hex) into
 * out: 1, or 0 when there is none that looks right. */
int con_cookie_sid_of(struct gw_req *r, char out[CON_TOKEN_HEX + 1]);
/* The same from a Cookie header's value (NULL: none).  Pure; fuzzed. */
int con_cookie_parse(const char *header, char out[CON_TOKEN_HEX + 1]);

/* Does path match pattern (see struct con_route)?  1 or 0; the "{}"
 * segments go to params (may be NULL) and their count to *nparams.
 * Pure; fuzzed. */
int con_path_match(const char *pattern, const char *path,
                   char params[CON_PARAMS_MAX][CON_PARAM_MAX], int *nparams);

/* The age band of a birth year, in SQL (the bands of the dashboards,
 * 015_stats_summary.sql); the returnee is r.  con_age_band() below is the
 * same in C (the queue's page). */
#define CON_AGE_BAND_SQL                                                       \
    "CASE WHEN r.birth_year IS NULL THEN NULL ELSE (SELECT CASE"               \
    "  WHEN a < 18 THEN '<18' WHEN a < 25 THEN '18-24'"                        \
    "  WHEN a >= 60 THEN '60+'"                                                \
    "  ELSE (a / 5 * 5)::text || '-' || (a / 5 * 5 + 4)::text END"             \
    " FROM (SELECT extract(year FROM now())::int - r.birth_year AS a) x) END"

/* The age band CON_AGE_BAND_SQL gives for age years (now's year minus
 * the birth year), into out (at least CON_AGE_BAND_MAX bytes).  Pure. */
#define CON_AGE_BAND_MAX 8
void con_age_band(long long age, char out[CON_AGE_BAND_MAX]);

/* The text to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
 * gives for the time t that is us microseconds after 1970-01-01 00:00 UTC
 * (before it when negative), into out (at least CON_UTC_TEXT_MAX bytes):
 * 0, or -1 (out "") outside PostgreSQL's timestamps (4713 BC to 294276
 * AD).  Pure. */
#define CON_UTC_TEXT_MAX 64
int con_utc_text(long long us, char out[CON_UTC_TEXT_MAX]);

/* Fill tx's context with the call's officer (id, role, districts). */
void con_tx_init(const struct con_call *call, struct store_tx *tx);

/* Append the audit_log INSERT to tx: the call's officer (or actor_name and
 * no id when there is no session), its source, action, target (may be
 * NULL), outcome ("ok"|"failed"|"denied") and detail (a JSON object text,
 * NULL for {}).  The strings must live until store_pool_tx() copies them.
 * 0, or -1 when tx is full. */
int con_audit_add(const struct con_call *call, struct store_tx *tx,
                  const char *actor_name, const char *action,
                  const char *target, const char *outcome, const char *detail);

/* Run tx on the console's pool; cb gets the call back.  On a refusal now
 * it answers 503 itself and returns -1. */
int con_tx_or_503(struct con_call *call, const struct store_tx *tx,
                  store_tx_cb *cb);
/* The same for a read-only tx of the dashboards: on the standby of
 * postgres.read_dsn when set, else on the console's pool.  Puts one
 * statement FIRST: remigate_read_lag() (017, 029), the seconds the server
 * answering is behind the primary (NULL on the primary), which on a
 * standby first waits a moment for the WAL it has received to be
 * replayed, so that the caller's statements, read after it, are at least
 * as fresh as it says.  In the callback's result the lag is statement
 * CON_READ_LAG and the caller's statements start at CON_READ_ROWS.  -1
 * (and a 503 sent) also when tx is full. */
#define CON_READ_LAG  0
#define CON_READ_ROWS 1
int con_read_tx_or_503(struct con_call *call, struct store_tx *tx,
                       store_tx_cb *cb);
/* Set "lag_s" in o (a reply of con_read_tx_or_503()'s cb; res its
 * result, stmt CON_READ_LAG): seconds (one decimal), or null when read
 * from the primary. */
void con_read_lag(json_t *o, const struct store_tx_result *res, int stmt);

/* ------------------------------------------------------------------------
 * The console of one worker (con_main.c)
 */
struct con {
    unsigned magic;
    struct gw_server *srv;
    const struct gw_config *cfg;
    struct store_pool *pool;
    struct store_pool *read_pool; /* postgres.read_dsn (a standby): the
                                     dashboards' reads; NULL: pool */
    struct store *crypto; /* keys only (crypto.key_file), never connected;
                             NULL without a key file */
    struct con_hasher *hasher;
    struct con_pwlist *common; /* refused passwords */
    struct con_codes *districts;
    struct event *purge;     /* worker 0: old login_throttle rows */
    struct event *kcheck;    /* worker 0: audits a changed stats.k at start */
    struct con_cache *cache; /* the dashboards' answers (con_cache.c) */
    char dummy_hash[128];    /* verified for unknown usernames (same cost) */
    int secure_cookie;
    int admin_totp_required;
};
#define CON_MAGIC 0x434f4e53u

/* The API's entry point (con_api.c): the "/api/" route's handler. */
void con_api_handle(struct gw_req *r);

/* ------------------------------------------------------------------------
 * The queue, records and decisions (con_queue.c, con_records.c,
 * con_decisions.c; what they share is con_records_int.h)
 */

/* Do the decision SMS of messages.conf (sms_verified, sms_needs_info,
 * sms_rejected) each fit one SMS part in every language with every
 * reason's label, a 10-character reference and review.office_phone?  0,
 * or -1 with the first that does not in err. */
int con_records_lint(const struct flow_set *set, const struct gw_config *cfg,
                     char *err, size_t errlen);

/* The parsers of the records API, pure (and fuzzed: fuzz_con_records). */

/* The version of an If-Match header: 12, "12" or W/"12" (at most 18
 * digits).  -1 when h is NULL or anything else.  (con_decisions.c) */
long long con_if_match_parse(const char *h);
/* Is s a date YYYY-MM-DD (1900..2999)?  1/0.  (con_queue.c, as the two
 * parsers below) */
int con_date_ok(const char *s);
/* A queue cursor "MICROS.ID" (1..18 digits each) into its two parts (cap
 * bytes each, NUL-terminated).  0, or -1 when s is not one. */
int con_cursor_parse(const char *s, char *at, size_t atcap, char *id,
                     size_t idcap);

#define CON_REF_MAX 15 /* longest reference searched for */

/* The reason codes an officer picks; each has a short label
 * "reason_CODE" in messages.conf (the SMS and the STATUS answer use it;
 * the records export and its dictionary label them the same way). */
#define CON_REJECT_REASONS(X)                                                  \
    X(duplicate) X(not_returnee) X(invalid_id) X(unreachable) X(test) X(other)
#define CON_INFO_REASONS(X)                                                    \
    X(id_unclear) X(answers_unclear) X(documents) X(other)

/* What a search word of the queue may be, each compared exactly: spaces
 * and '-' dropped; digits (and '+') a phone number when they make a
 * Bangladesh mobile number (phone, E.164) and an NID when 10, 13 or 17
 * digits; letters and digits (upper-cased) a reference when at most
 * CON_REF_MAX, and a passport number. */
struct con_search {
    char norm[64];
    char phone[GW_MSISDN_MAX];
    int nid, ref, passport;
};
/* 0, or -1 when q can be none of them (the search then matches nothing). */
int con_search_parse(const char *q, struct con_search *out);

/* ------------------------------------------------------------------------
 * Password hashing on worker threads (con_hash.c)
 *
 * Jobs go to a small pool of threads; each result comes back on the event
 * loop (a pipe the loop watches), never inside the call that queued it.
 * con_hasher_stop() waits for the threads and calls every job still
 * pending back with CON_HASH_ESTOPPED.
 */
struct con_hasher;

#define CON_HASH_OK       0
#define CON_HASH_MISMATCH 1  /* verify: not this password */
#define CON_HASH_EFAIL    -1 /* out of memory, a bad stored hash */
#define CON_HASH_ESTOPPED -2
#define CON_HASH_ELATE                                                         \
    -3 /* waited longer than the hasher's max wait:                            \
          not hashed (con_hasher_max_wait()) */

/* hash: con_hash_make()'s result (borrowed), else NULL. */
typedef void con_hash_cb(int status, const char *hash, void *arg);

/* threads hash at nice (0..19: the loop's priority plus nice), or as
 * SCHED_IDLE with CON_HASH_SCHED_IDLE, with a slice of slice_us
 * (gw_sched_thread(); 0: the kernel's). */
#define CON_HASH_SCHED_IDLE (-1)
struct con_hasher *con_hasher_new(struct event_base *base, int threads,
                                  int nice, long slice_us,
                                  unsigned long long opslimit, size_t memlimit,
                                  char *err, size_t errlen);
/* A job that waited in the queue longer than ms (0: no limit, the
 * default) is answered CON_HASH_ELATE without being hashed: under more
 * logins than the threads can hash, the CPU goes to those that can still
 * be answered in time, not to ones whose request has given up. */
void con_hasher_max_wait(struct con_hasher *h, int ms);
/* Queue a check of password (copied, wiped after) against stored (a
 * crypto_pwhash_str string, copied).  0, or -1 when stopped or out of
 * memory (no callback then). */
int con_hash_verify(struct con_hasher *h, const char *stored,
                    const char *password, con_hash_cb *cb, void *arg);
/* Queue a new hash of password. */
int con_hash_make(struct con_hasher *h, const char *password, con_hash_cb *cb,
                  void *arg);
/* Jobs waiting or running (for tests and metrics). */
int con_hasher_pending(const struct con_hasher *h);
void con_hasher_stop(struct con_hasher *h);
void con_hasher_free(struct con_hasher *h); /* NULL: no-op */

/* A blocking hash with the same parameters (the command line; start-up). */
int con_pw_hash_now(const char *password, unsigned long long opslimit,
                    size_t memlimit, char out[128]);

/* ------------------------------------------------------------------------
 * libsodium's argon2id in kept memory (con_pwmem.c)
 *
 * The strings are crypto_pwhash_str's; the hashing is libsodium's.  The
 * link wraps libsodium's mmap()/munmap() (Makefile: LIBS), so a hash run
 * through these calls with an arena maps nothing.
 */

/* Memory for argon2 that one thread keeps and lends to each hash it runs:
 * kib KiB, every page touched now.  NULL when out of memory.  Used by one
 * thread at a time. */
struct con_pw_arena;
struct con_pw_arena *con_pw_arena_new(size_t kib);
void con_pw_arena_free(struct con_pw_arena *a); /* NULL: no-op */
/* Hashes that ran in a (for tests and benchmarks). */
unsigned long con_pw_arena_hits(const struct con_pw_arena *a);
/* 1 when a is free and every byte of it zero (for tests), else 0. */
int con_pw_arena_clean(const struct con_pw_arena *a);
/* crypto_pwhash_str_verify() of password (len bytes) against stored, in
 * a's memory (a NULL, or too small for stored's cost: a mapping of its
 * own, as libsodium does).  0 when it matches, else -1 (not this
 * password, a string libsodium cannot read, out of memory).  Blocks for
 * the hash's time. */
int con_pw_verify(struct con_pw_arena *a, const char *stored,
                  const char *password, size_t len);
/* crypto_pwhash_str_alg() (argon2id) of password in a's memory.  0 or
 * -1. */
int con_pw_make(struct con_pw_arena *a, const char *password, size_t len,
                unsigned long long opslimit, size_t memlimit, char out[128]);

/* ------------------------------------------------------------------------
 * TOTP, RFC 6238 (con_totp.c)
 */

/* liboath's start-up, once per process.  0 or -1. */
int con_totp_init(void);

/* Check code (NULL: none given) against the sealed secret enc_hex (hex of
 * totp_enc) of officer id (decimal text) whose last accepted code had step
 * last (-1: none).  NULL when good (*step = its step, to be stored so it
 * is not good twice), else "otp_missing", "bad_otp" or "otp_reused". */
const char *con_totp_check(struct con *con, const char *id, const char *enc_hex,
                           long long last, const char *code, long long *step);

/* ------------------------------------------------------------------------
 * Rules shared by the API and the command line (con_rules.c)
 */

/* A set of strings (a list of codes, a password list). */
struct con_pwlist;
struct con_codes;

/* The common-password list: one per line, '#' comments; compared
 * case-insensitively.  NULL with a message in err. */
struct con_pwlist *con_pwlist_load(const char *path, char *err, size_t errlen);
int con_pwlist_has(const struct con_pwlist *l, const char *pw);
void con_pwlist_free(struct con_pwlist *l);

/* The district codes of lists_dir/districts.conf. */
struct con_codes *con_districts_load(const char *lists_dir, char *err,
                                     size_t errlen);
int con_codes_has(const struct con_codes *c, const char *code);
void con_codes_free(struct con_codes *c);

/* Validators: NULL when fine, else why not (no value quoted). */
const char *con_username_check(const char *u);
const char *con_password_check(const struct con_pwlist *common,
                               const char *username, const char *pw);

/* Hex of n random bytes into out (2n + 1). */
void con_random_hex(char *out, size_t n);
/* Hex SHA-256 of s into out[65]. */
void con_sha256_hex(const char *s, char out[65]);

/* ------------------------------------------------------------------------
 * Static files and strict headers (con_static.c)
 */

/* The Content-Security-Policy of every console page and /api/ reply. */
extern const char con_csp[];

/* Load the web dir (console.web_dir) and register the routes "/console/"
 * (prefix: the files) and "/console" (301 to "/console/") on srv, and a
 * reload hook that reads the files again on SIGHUP (a failed read keeps
 * the old ones).  A missing or unreadable web dir is logged, not fatal:
 * every file is then 404.  Returns 0, or -1 (logged) when the routes could
 * not be registered.  con_static_fini() frees what it made (also after a
 * failed start); it is a no-op for a server without files. */
int con_static_start(struct gw_server *srv);
void con_static_fini(struct gw_server *srv);

/* Add the strict headers (CSP, nosniff, Referrer-Policy, framing, COOP,
 * CORP) to r's reply.  Every console and /api/ reply carries them. */
void con_headers_add(struct gw_req *r);

/* The file name a request path asks for: "/console/" + name ("index.html"
 * for "/console/"), written NUL-terminated into name (cap > 16).  Returns
 * NULL, or why the path is refused: not under /console/, any '%' escape,
 * an empty, "." or ".."-like segment (any segment starting with '.'), a
 * byte outside [A-Za-z0-9_./-], a trailing '/', too long.  Pure. */
const char *con_static_path(const char *path, size_t len, char *name,
                            size_t cap);

/* Does the If-None-Match value inm[0..len) match etag (a quoted strong
 * tag)?  Weak comparison ("W/" ignored); "*" matches.  1 or 0.  Pure. */
int con_etag_match(const char *inm, size_t len, const char *etag);


/* ------------------------------------------------------------------------
 * Small-cell suppression (con_supp.c), pure
 *
 * A table is nr x nc counts with margins, kept as (nr + 1) x (nc + 1)
 * entries, row-major: entry (i, j) at i * (nc + 1) + j, row totals in
 * column nc, column totals in row nr, the grand total at (nr, nc).  A
 * one-way table is nr = 1 (its column totals repeat its cells).
 */
#define CON_SUPP_SHOWN   0
#define CON_SUPP_PRIMARY 1 /* a count 1..k-1, shown as "<k" */
#define CON_SUPP_COMPL   2 /* hidden so that no primary can be worked out */

/* Mark every entry of n (counts >= 0, margins consistent) into mark
 * (same shape): primaries, then complementary entries until no hidden
 * entry is pinned (con_supp_pinned).  0; 1 when something stays pinned
 * even with every non-zero entry hidden (do not publish the table); -1
 * out of memory. */
int con_supp_apply(int nr, int nc, const long long *n, int k,
                   unsigned char *mark);
/* The first hidden entry whose value a reader could work out exactly
 * from the shown entries, the margins' sums and what each mark tells
 * (primary: 1..k-1, complementary: >= k); -1 when none, -2 out of
 * memory. */
int con_supp_pinned(int nr, int nc, const long long *n, int k,
                    const unsigned char *mark);

/* Append s (NULL: empty; a C string, so never a NUL) to b as one CSV
 * field (RFC 4180): a field starting with = + - @ TAB or CR, which a
 * spreadsheet would run as a formula, gets a leading "'"; a field holding
 * , " CR LF or a leading/trailing space is quoted, with " doubled.  Pure
 * (fuzz_con_csv).  0, or -1 out of memory (b keeps what it had). */
struct con_buf {
    char *p;
    size_t len, cap;
};
int con_buf_add(struct con_buf *b, const char *s, size_t n);
int con_csv_field(struct con_buf *b, const char *s);
/* Append s to b as a JSON string ("null" for NULL), the text
 * json_dumps() would write for json_string(s).  0, or -1 when s is not
 * UTF-8 (json_string() refuses it too) or out of memory; b keeps what it
 * had.  Pure (fuzz_con_json). */
int con_json_str(struct con_buf *b, const char *s);

/* ------------------------------------------------------------------------
 * Statistics and exports (con_stats.c, con_stats_label.c, con_export.c,
 * con_export_dict.c, con_indic.c)
 */

/* A query parameter's value (NULL when absent or empty); *bad set when it
 * is repeated, longer than max or holds a NUL. */
const char *con_param(const struct gw_params *ps, const char *key, size_t max,
                      int *bad);
/* The Bangla and English labels of a code of a statistics dimension
 * (district, sex, skill, ...: the lists of GET /api/lists, or the closed
 * sets of sex, status and channel); the code itself when it has none.
 * lists may be NULL; the labels are borrowed like lists. */
void con_stats_label(const json_t *lists, const char *dim, const char *code,
                     const char **en, const char **bn);
/* The list of GET /api/lists that labels a statistics dimension's codes
 * ("districts" for "district", ...), or NULL for one without a list. */
const char *con_stats_list_of(const char *dim);
/* A dashboard query's transaction that ran: 0.  Else the answer is sent
 * -- 422 too_few when remigate_stats() refused (fewer than k people for
 * an analyst, SQLSTATE 22023), the store's error otherwise -- and -1
 * returned. */
int con_stats_rows_or_4xx(struct con_call *call, int status,
                          const struct store_tx_result *res);
/* Is d one of the dimensions of GET /api/stats?  1/0. */
int con_stats_dim_ok(const char *d);
/* An indicator's dataflow (con_indic.c): its SDMX id, its dimensions'
 * SDMX ids and the statistics dimension of each (whose list labels the
 * codes; NULL for one without a list, e.g. a year), and the codes each
 * may hold besides the list's (NULL-terminated: "_T", "_U", ...). */
struct con_indic {
    const char *flow;
    int ndims;
    const char *dim[3];
    const char *list[3];
    const char *const *special[3]; /* codes besides the list's (_T, _U) */
};
/* One observation: a value per dimension (borrowed), the count, and
 * whether it is confidential (then the count is not published). */
struct con_obs {
    const char *v[3];
    long long n;
    int conf;
};
extern const struct con_indic *const con_indic_skills;
/* Append the observations o[0..n) as SDMX-CSV 2.0 (header included) or as
 * JSON {"dataflow","k","dimensions":[{"id","codes":[{"id","en","bn"}]}],
 * "observations":[{DIM: code, ..., "OBS_VALUE": n|null, "OBS_STATUS":
 * "A"|"C"}]}.  0, or -1 out of memory. */
int con_indic_csv(struct con_buf *b, const struct con_indic *ind,
                  const struct con_obs *o, int n);
int con_indic_json(struct con_buf *b, const struct con_indic *ind,
                   const struct con_obs *o, int n, const json_t *lists, int k);
/* ------------------------------------------------------------------------
 * The dashboards' answer cache, one per worker (con_cache.c)
 */
struct con_cache;
/* A cache whose entries live ttl_ms and take at most cap bytes together
 * (either 0: nothing is kept, every call reads PostgreSQL).  NULL when
 * out of memory. */
struct con_cache *con_cache_new(long ttl_ms, size_t cap);
void con_cache_free(struct con_cache *c); /* NULL: no-op */
/* Is c keeping answers?  1/0. */
int con_cache_on(const struct con_cache *c);
/* The key of a dashboard read by call (which has a session): route, the
 * caller's role and districts as the transaction gives them to
 * PostgreSQL, then fields[0..n) (NULL: absent) -- the handler's parsed,
 * checked parameters in a fixed order, and whatever else the answer
 * depends on (k, suppressed).  Lives as long as call->req; NULL when
 * the cache is off or out of memory (the call then goes uncached). */
char *con_cache_key(struct con_call *call, const char *route,
                    const char *const *fields, int n);
/* Answer call from the cache when key (NULL: none) has an entry younger
 * than the TTL: 200 with the stored answer, "lag_s" its lag plus its age,
 * and an Age header; returns 1 (the call is ended).  0: not there, the
 * caller reads PostgreSQL and ends with con_cache_reply_miss(). */
int con_cache_reply_hit(struct con_call *call, const char *key);
/* Answer 200 with o (taken: an object, without "lag_s"), read by
 * con_read_tx_or_503()'s transaction (res, its lag statement stmt), with
 * "lag_s" as con_read_lag() sets it; and keep it under key (NULL: not
 * kept) when the cache is on. */
void con_cache_reply_miss(struct con_call *call, const char *key, json_t *o,
                          const struct store_tx_result *res, int stmt);

/* GET /api/export.csv?kind=records (con_export.c); ps: the query, owned by
 * call->req.  Ends the call like a handler. */
void con_export_records(struct con_call *call, const struct gw_params *ps);

#endif
