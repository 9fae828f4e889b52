/*
 * gw.h -- the gateway module: the daemon (HTTP server, workers, signals),
 * its configuration and log, the pure parsers of what Kannel and USSD
 * aggregators send, the metrics and health interfaces, and the flow
 * author's tools (sim, check-flows).
 *
 * The HTTP part in one paragraph: every request becomes a struct gw_req
 * that owns all its memory.  A handler ends every request by calling
 * exactly one gw_reply*() function (or an *_or_4xx helper that failed),
 * now or later from a callback; that call answers the client and ends the
 * request.  An ended request is freed once no handler or callback frame
 * that holds it is on the stack any more (gw_req_enter()/gw_req_leave(),
 * as hiredis frees a context only after its callback has returned): the
 * code after a reply may still read the request's memory, up to its own
 * return.  A deadline timer answers the client itself (503, or what the
 * handler set with gw_req_on_deadline()) when the handler is late; the
 * request then stays alive until the handler's own reply, which is
 * dropped.  So a handler never has to ask whether its request is still
 * there, and every client gets exactly one answer.
 */
#ifndef GW_H
#define GW_H

#include <stddef.h>
#include <stdint.h>

#include "flows/flow.h"

#define GW_VERSION "0.1.0"
#define GW_STR_MAX 256

struct event_base;

/* Gateway error codes: 0 or one of these (negative). */
enum gw_err {
    GW_OK = 0,
    GW_ENOMEM = -1,   /* out of memory */
    GW_EINVAL = -2,   /* malformed input */
    GW_ETOOLONG = -3, /* input, a value or the output over its limit */
    GW_ETOOMANY = -4, /* too many parameters or items */
    GW_EMISSING = -5, /* a required field is absent */
    GW_ESYS = -6,     /* a system call failed (see errno) */
};

const char *gw_strerror(int err);

/* ------------------------------------------------------------------------
 * Log (gw_log.c)
 *
 * One line per event on stderr, written with one write(2) so lines of
 * several worker processes never interleave:
 *
 *   2026-11-22T10:32:47.123Z info pid=4711 listening address=... port=8080
 *
 * The message is free text followed by key=value fields; request lines
 * carry req=ID.  The macros test the level before evaluating anything.
 * err is an errno value or 0; when non-zero, err="strerror text" ends the
 * line.  Never log national ID or passport numbers, nor message text at
 * info level.
 */
enum gw_log_level {
    GW_LEVEL_ERROR = 0,
    GW_LEVEL_WARN = 1,
    GW_LEVEL_INFO = 2,
    GW_LEVEL_DEBUG = 3,
};

extern int gw_log_level; /* read by the macros; set with gw_log_set_level() */

void gw_log_set_level(int level);
/* "debug"|"info"|"warn"|"error" -> level, or -1. */
int gw_log_level_parse(const char *name);
const char *gw_log_level_name(int level);

void gw_log_emit(int level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Route libevent's own messages (and its fatal errors) into this log. */
void gw_log_libevent(void);

/* Write s[0..len) into buf as a double-quoted string fit for one log
 * field: quote, backslash and every byte outside printable ASCII are
 * escaped, and a long string is cut with "...".  Always NUL-terminates
 * (cap >= 8).  Returns buf, so it can sit in an argument list. */
const char *gw_log_quote(char *buf, size_t cap, const char *s, size_t len);

#define GW_LOG(level, err, ...)                                                \
    do {                                                                       \
        if ((level) <= gw_log_level) gw_log_emit((level), (err), __VA_ARGS__); \
    } while (0)
#define GW_LOG_ERROR(err, ...) GW_LOG(GW_LEVEL_ERROR, (err), __VA_ARGS__)
#define GW_LOG_WARN(err, ...)  GW_LOG(GW_LEVEL_WARN, (err), __VA_ARGS__)
#define GW_LOG_INFO(err, ...)  GW_LOG(GW_LEVEL_INFO, (err), __VA_ARGS__)
#define GW_LOG_DEBUG(err, ...) GW_LOG(GW_LEVEL_DEBUG, (err), __VA_ARGS__)

/* At most per_sec lines a second for one kind of event (a worker's
 * refused requests, its failing accept()s): gw_log_limit_take() says
 * whether this line may be written, and counts it when not; *held is then
 * how many were held back since the last line written, for that line to
 * say ("suppressed=K").  Zero-initialise with per_sec set. */
struct gw_log_limit {
    unsigned per_sec;
    long sec;           /* CLOCK_MONOTONIC second of the count */
    unsigned n;         /* lines written in it */
    unsigned long held; /* lines not written since the last one */
};
int gw_log_limit_take(struct gw_log_limit *l, unsigned long *held);

/* A phone number as a log line may show it: whole when the log level is
 * debug, else with all but its first five and last two characters starred
 * ("8801712345678" -> "88017******78"; a short one is starred but for its
 * last two, or all of it).  Writes into buf (cap >= 8; a longer number is
 * cut), returns buf so it can sit in an argument list. */
const char *gw_log_msisdn(char *buf, size_t cap, const char *msisdn);
/* The same whatever the level (the masking itself, for tests). */
const char *gw_msisdn_mask(char *buf, size_t cap, const char *msisdn);

/* A line about a request: "req=ID " comes first.  fmt must be a literal. */
#define GW_RLOG(level, r, err, fmt, ...)                                       \
    GW_LOG((level), (err), "req=%s " fmt, gw_req_id(r), ##__VA_ARGS__)

/* ------------------------------------------------------------------------
 * Configuration (gw_config.c)
 */

#define GW_ALLOW_MAX 32

/* An address or a network ("10.0.0.0/8", "::1"); IPv4 is held as
 * IPv4-mapped IPv6 so one comparison serves both. */
struct gw_cidr {
    unsigned char addr[16];
    unsigned bits; /* prefix length, 0..128 */
};

/* Everything in remigate.conf.  Filled by gw_config_load() from a table of
 * (path, type, range, default, offset); strings live inside the struct.
 * docs/config.md describes every key. */
struct gw_config {
    char path[GW_STR_MAX]; /* the file itself */
    char dir[GW_STR_MAX];  /* its directory: base of relative paths */
    char log_level[16];    /* debug|info|warn|error */
    char listen_address[64];
    long listen_port, workers;
    char port_file[GW_STR_MAX];
    long header_timeout_ms, keepalive_ms;
    long header_bytes, body_bytes, request_timeout_ms, max_connections;
    char redis_host[128];
    long redis_port;
    char redis_prefix[64];
    long redis_timeout_ms, redis_max_pending;
    long redis_wait_ms;       /* a step waits this long for a reconnect */
    char redis_password[256]; /* "" none; or read from the file: */
    char redis_password_file[GW_STR_MAX];
    char redis_sentinels[2 * GW_STR_MAX]; /* "host:port,..." or "" */
    char redis_master_name[128];
    char redis_cluster[2 * GW_STR_MAX]; /* seed "host:port,..." or "" */
    long ussd_idle, resume_window, sms_ttl, dedup_window;
    long offer_window;   /* sessions.offer_window: an unfinished flow's
                            answers are offered back this long */
    long parts_window;   /* sessions.parts_window: a registration's parts
                            still to do are offered this long */
    long remind_after;   /* sessions.remind_after: the reminder SMS */
    long remind_tick_ms; /* sessions.remind_tick_ms: how often it looks */
    long remind_quiet_start, remind_quiet_end; /* hours: none sent then */
    long cache_kb;       /* sessions.cache_kb: a worker's envelope cache */
    long kannel_enabled; /* 0: /kannel/mo and /kannel/dlr refuse all */
    char kannel_secret[128], sendsms_url[GW_STR_MAX];
    char kannel_username[64], kannel_password[128];
    char ussd_smsc[32], sms_smsc[32], short_code[32], dlr_url[GW_STR_MAX];
    char at_key[128];
    struct gw_cidr at_allow[GW_ALLOW_MAX];
    long at_allow_n;
    char pg_dsn[GW_STR_MAX];
    long pg_pool, pg_timeout_ms, pg_batch;
    /* the officer console (console/) */
    char pg_console_dsn[GW_STR_MAX];
    char pg_read_dsn[GW_STR_MAX];
    long pg_console_pool, pg_sms_pool, pg_sms_linger_ms;
    long pg_wait_ms; /* SMS, held SMS, notices: wait this long for the pool */
    long con_idle, con_admin_idle, con_absolute; /* seconds */
    char con_cookie_secure[8];                   /* yes|no */
    char con_admin_totp[16];                     /* required|optional */
    char con_totp_issuer[64];
    long con_hash_threads, con_hash_nice, con_pwhash_kib, con_pwhash_passes;
    long con_hash_slice_us, loop_slice_us;
    char con_hash_policy[8]; /* nice|idle */
    long con_hash_max_wait_ms;
    char con_common_passwords[GW_STR_MAX];
    long con_throttle_user_free, con_throttle_addr_free;
    long con_throttle_max_delay, con_throttle_window; /* seconds */
    long con_db_wait_ms;     /* an /api/ query waits this long for the pool */
    long con_stats_cache_ms; /* a dashboard answer is reused this long */
    long con_stats_cache_kb; /* a worker's cached answers, at most */
    long stats_k; /* small-cell threshold of dashboards and exports */
    char key_file[GW_STR_MAX];
    char flows_dir[GW_STR_MAX], lists_dir[GW_STR_MAX];
    char messages_file[GW_STR_MAX];
    char entry_ussd[32], entry_sms[32];
    char key_back[8], key_home[8], key_more[8];
    long max_tries, utc_offset;
    long ussd_gsm7, ussd_ucs2, sms_parts;
    /* flows.session_budget and flows.clock.*: the linter's model */
    long session_budget, clock_menu, clock_number, clock_text, clock_search;
    long clock_readback, clock_round_trip_ms;
    /* review.*: officers' decisions -- the office number a returnee is
     * told to call, how long a decision's SMS is held (undo), how often
     * held SMS whose time has come are looked for */
    char office_phone[32];
    long undo_window_s, held_poll_ms;
    char web_dir[GW_STR_MAX]; /* console.web_dir: the console's files */
    /* notices.*: programme notices (notices/, docs/notices.md) */
    char notices_dispatch[8]; /* on|off: worker 0 dispatches */
    char notices_window[16];  /* HH:MM-HH:MM, Asia/Dhaka */
    long notices_rate, notices_burst, notices_batch, notices_poll_ms;
    long notices_cap, notices_cap_days, notices_cap_per_day;
    long notices_lost_after_s, notices_price_paisa;
    long notices_approve_timeout_ms; /* the approval's deadline */
    char notices_vetting[16];        /* required|optional */
};

/* Load path into c: defaults first, then the file.  Unknown keys, wrong
 * types, values out of range and strings too long are errors: returns -1
 * with "file:line: message" in err (c is then unusable).  A file that
 * other users may write (group or world) is refused unread.  Relative
 * paths in the file become relative to the file's directory. */
int gw_config_load(const char *path, struct gw_config *c, char *err,
                   size_t errlen);

/* Set one key from text, as the command line does ("listen.port", "0").
 * Same checks as the file; a relative path stays relative to the current
 * directory.  Returns 0, or -1 with a message in err. */
int gw_config_set(struct gw_config *c, const char *key, const char *value,
                  char *err, size_t errlen);

void gw_config_fini(struct gw_config *c);

/* What the daemon refuses or warns about before it starts (gw_harden.c),
 * after the command line has been applied: an empty kannel.secret with
 * kannel.enabled, a key or password file other users may write (refused)
 * or read (warned), both redis.password and redis.password_file; warns
 * when /ussd/at is guarded by its allowlist alone.  Reads
 * redis.password_file into c->redis_password.  Returns 0, or -1 with one
 * line in err that names the key and the fix; warnings are logged. */
int gw_config_harden(struct gw_config *c, char *err, size_t errlen);

/* Check a file that holds a secret (what names it, e.g. "crypto.key_file"):
 * -1 with a message in err when other users may write it, or it is not a
 * regular file; 1 when they may read it (a warning, in err); else 0. */
int gw_secret_file_check(const char *what, const char *path, char *err,
                         size_t errlen);

/* No core dumps from this process or its children: RLIMIT_CORE 0 and
 * PR_SET_DUMPABLE 0 (which also keeps other users' debuggers and
 * /proc/PID/mem out).  0, or -1 with errno. */
int gw_harden_process(void);

/* The calling thread's scheduling: SCHED_IDLE when idle, else SCHED_OTHER;
 * nice -20..19; and its slice in microseconds (Linux >= 6.12; 0 is the
 * kernel's default, older kernels ignore it).  0, or -1 with errno. */
int gw_sched_thread(int idle, int nice, long slice_us);

/* The flow settings of c; fs borrows c's strings. */
void gw_config_flow_settings(const struct gw_config *c,
                             struct flow_settings *fs);

/* ------------------------------------------------------------------------
 * Pure parsers (gw_parse.c, gw_kannel.c, gw_at.c): no I/O, no libevent,
 * each fuzzed.
 */

/* Percent-decode in[0..len) into out (cap bytes; the result is also
 * NUL-terminated, so cap must exceed it).  %XX may encode any byte, NUL
 * included; every other byte stands for itself, and '+' is a space when
 * plus is non-zero (query strings and form bodies).  Returns 0 with
 * *outlen set, GW_EINVAL for a '%' not followed by two hex digits, or
 * GW_ETOOLONG. */
int gw_pct_decode(const char *in, size_t len, int plus, char *out, size_t cap,
                  size_t *outlen);

/* Percent-encode every byte of in that is not an unreserved character
 * (A-Z a-z 0-9 - . _ ~) as %XX.  Returns the length written (NUL
 * terminated), or -1 if it does not fit in cap. */
int gw_pct_encode(const unsigned char *in, size_t len, char *out, size_t cap);

#define GW_PARAMS_MAX      100   /* pairs in one query or form body */
#define GW_PARAM_KEY_MAX   64    /* bytes of a decoded name */
#define GW_PARAM_VALUE_MAX 8192  /* bytes of a decoded value */
#define GW_PARAMS_IN_MAX   65536 /* bytes of the whole encoded input */

/* One decoded pair.  key and val are NUL-terminated, but val may hold
 * NULs of its own: use vlen. */
struct gw_param {
    const char *key, *val;
    size_t klen, vlen;
};

/* The pairs of a query string or form body, in order.  Owns its storage:
 * gw_params_init() before, gw_params_fini() after. */
struct gw_params {
    size_t n;
    struct gw_param p[GW_PARAMS_MAX];
    char *buf;
};

void gw_params_init(struct gw_params *ps);
void gw_params_fini(struct gw_params *ps); /* keeps ps reusable */

/* Split "a=1&b=x+y&c" on '&' and '=', decoding both sides with '+' as
 * space.  Empty pieces ("&&", a trailing '&') are skipped; a pair with no
 * '=' has an empty value.  Returns 0, or a gw_err with *why set to a short
 * message (bad escape, empty name, too many pairs, name or value too
 * long, input too long). */
int gw_params_parse(struct gw_params *ps, const char *in, size_t len,
                    const char **why);

/* The first pair named key, or NULL.  Borrowed from ps. */
const struct gw_param *gw_params_get(const struct gw_params *ps,
                                     const char *key);
/* How many pairs are named key. */
size_t gw_params_count(const struct gw_params *ps, const char *key);

/* Kannel meta-data: "?group?key=value&key=value&?group2?..." with group,
 * key and value each URL-encoded ('+' is a space).  Values are raw bytes
 * (TLV octets), NUL included. */
#define GW_META_MAX       16
#define GW_META_NAME_MAX  48
#define GW_META_VALUE_MAX 255

struct gw_meta_item {
    char group[GW_META_NAME_MAX];
    char key[GW_META_NAME_MAX];
    unsigned char val[GW_META_VALUE_MAX];
    size_t vlen;
};

struct gw_meta {
    size_t n;
    struct gw_meta_item item[GW_META_MAX];
};

/* Parse meta-data already taken out of its query parameter (one decoding
 * layer done).  A trailing '&' is optional; groups with no pairs are fine.
 * Errors (0 or gw_err, *why set): a pair before any group, an unterminated
 * group, a pair without '=', a bad escape, an empty or non-printable name,
 * a duplicate (group, key), too many items, a value over
 * GW_META_VALUE_MAX. */
int gw_meta_parse(const char *s, size_t len, struct gw_meta *m,
                  const char **why);

/* The value of (group, key) and its length, or NULL.  Borrowed from m. */
const unsigned char *gw_meta_get(const struct gw_meta *m, const char *group,
                                 const char *key, size_t *len);

/* A Bangladesh mobile number in E.164 digits: "8801" [3-9] + 8 digits. */
#define GW_MSISDN_MAX 16

/* Normalise "+8801712345678", "8801712345678", "008801712345678" or
 * "01712345678" to "8801712345678" in out (cap >= GW_MSISDN_MAX).
 * Returns NULL, or why it is not a Bangladesh mobile number. */
const char *gw_msisdn_normalise(const char *in, size_t len, char *out,
                                size_t cap);

/* Compare a secret in time that depends only on the lengths: 1 equal. */
int gw_secret_equal(const char *a, size_t alen, const char *b, size_t blen);

/* What Kannel's sms-service get-url sends (DESIGN.md, Endpoints). */
#define GW_MO_TEXT_MAX 1024 /* bytes of text, after conversion to UTF-8 */

struct gw_kannel_mo {
    char msisdn[GW_MSISDN_MAX];    /* from, normalised */
    char to[32];                   /* short or USSD code, as sent */
    char text[GW_MO_TEXT_MAX + 1]; /* UTF-8, no NUL inside */
    size_t text_len;
    char smsc[32];    /* smsc-id the MO came in on ("" if absent) */
    char id[64];      /* Kannel's message UUID ("" if absent) */
    int coding;       /* 0 7-bit, 1 8-bit, 2 UCS-2, 3 DCS 0x0F; -1 absent */
    char charset[32]; /* as sent ("" if absent) */
    char key[128];    /* the shared secret as sent */
    int has_key;
    int has_meta;
    struct gw_meta meta;
    int has_ussd;          /* ussd_service_op was given */
    unsigned char ussd_op; /* 1 PSSR ind., 18 USSR conf., ... */
    int has_sess;          /* its_session_info was given */
    unsigned char sess[2]; /* session number, sequence|end bit */
};

/* Parse the raw query string of GET /kannel/mo.  Required: from (a
 * Bangladesh mobile) and text (may be empty).  ussd_service_op (1 byte)
 * and its_session_info (2 bytes) come from meta, else from the op and sess
 * parameters.  The text is converted to UTF-8 from its charset (UTF-8,
 * ASCII, UTF-16BE, ISO-8859-1; coding 3, DCS 0x0F, is read as ASCII/GSM
 * text) and must then be valid UTF-8 without NUL and at most
 * GW_MO_TEXT_MAX bytes.  A field this parser uses may not appear twice;
 * others are ignored.  Returns 0, or a gw_err with *why set (mo is then
 * unspecified).  The key is not checked here: compare it with
 * gw_secret_equal(). */
int gw_kannel_mo_parse(const char *query, size_t len, struct gw_kannel_mo *mo,
                       const char **why);

/* The X-Kannel-Meta-Data of a USSD reply:
 *   continue: ?smpp?ussd_service_op=2&its_session_info=%12%00
 *   end:      ?smpp?ussd_service_op=17&its_session_info=%12%01
 * ussd_service_op goes as decimal text (smpp-tlv type integer); the two
 * its_session_info octets are echoed as %XX with bit 0 of the second (end
 * of session) set on end and cleared otherwise; without has_sess the TLV
 * is left out.  Returns the length (buf NUL-terminated), or -1 if it does
 * not fit. */
int gw_kannel_meta_reply(int end, const unsigned char sess[2], int has_sess,
                         char *buf, size_t cap);

/* An aggregator USSD callback (POST /ussd/at, form-encoded). */
#define GW_AT_TEXT_MAX 2048

struct gw_at_req {
    char session_id[128];
    char service_code[32];
    char msisdn[GW_MSISDN_MAX]; /* phoneNumber, normalised */
    char network_code[16];
    char text[GW_AT_TEXT_MAX + 1]; /* every input so far, joined by '*' */
    size_t text_len;
};

/* Parse the form body.  Required: sessionId (printable ASCII), phoneNumber
 * (a Bangladesh mobile); text may be absent (the dial) and must be UTF-8
 * without NUL.  Returns 0 or a gw_err with *why set. */
int gw_at_parse(const char *body, size_t len, struct gw_at_req *at,
                const char **why);

enum gw_at_step {
    GW_AT_DIAL = 0,      /* first request, nothing typed yet */
    GW_AT_INPUT = 1,     /* *input, *len: what the caller typed last */
    GW_AT_REPEAT = 2,    /* text is the one seen before: a replay */
    GW_AT_UNRELATED = 3, /* text does not extend prev: replay or restart */
};

/* What the caller typed on this step.  prev_text is the text of the
 * previous step (NULL on the first one).  The new input is what follows
 * "prev*", so a '*' typed inside a free-text answer is kept; after the
 * dial (prev "") it is the whole text.  On the first step a non-empty text
 * is the first input.  *input points into text. */
enum gw_at_step gw_at_new_input(const char *prev_text, const char *text,
                                const char **input, size_t *len);

/* Parse "127.0.0.1", "::1", "10.0.0.0/8" or "fd00::/8".  NULL or why
 * not. */
const char *gw_cidr_parse(const char *s, struct gw_cidr *out);

/* Is the textual address addr inside one of list[0..n)?  1 or 0. */
int gw_cidr_match(const struct gw_cidr *list, size_t n, const char *addr);

/* One request header as received (both NUL-terminated, borrowed). */
struct gw_header {
    const char *name, *value;
};

/* Is the body of a request with headers h[0..n) delimited one way only
 * (RFC 9112 section 6)?  So that no front end and evhttp can disagree on
 * where the body ends and read a second request out of the first one's
 * body: Content-Length may come more than once, or as a list, only with
 * one value (decimal digits); Transfer-Encoding must be one header saying
 * "chunked" (the one coding evhttp decodes) and never comes with
 * Content-Length.  Headers of other names are ignored.  NULL, or why the
 * request gets 400 and its connection is closed. */
const char *gw_framing_check(const struct gw_header *h, size_t n);

/* ------------------------------------------------------------------------
 * Metrics (gw_metrics.c, names in gw_metrics.def)
 *
 * Counters, gauges and histograms with closed label sets, in memory shared
 * by every worker process, so any worker answers /metrics for all of them.
 * Label values are passed as strings from the label's set (see the .def);
 * a value outside the set counts as "other" when the set has it, and is a
 * programming error otherwise.
 */
enum gw_metric {
#define GW_METRIC(id, type, name, l1, l2, help) GW_M_##id,
#include "gateway/gw_metrics.def"
    GW_M__COUNT
};

/* Allocate the metrics, shared across fork() when shared is non-zero.
 * Called once by the daemon before it forks; without it the first update
 * allocates private memory.  Returns 0 or GW_ENOMEM. */
int gw_metrics_init(int shared);

/* Add 1 (counters), add v (counters: v >= 0; gauges: any v). */
void gw_metric_inc(enum gw_metric m, const char *l1, const char *l2);
void gw_metric_add(enum gw_metric m, const char *l1, const char *l2, int64_t v);
/* Record one observation (seconds, for the *_seconds histograms). */
void gw_metric_observe(enum gw_metric m, const char *l1, double v);
/* The value of a counter or gauge series (tests). */
int64_t gw_metric_get(enum gw_metric m, const char *l1, const char *l2);

/* The Prometheus text exposition of every metric.  Returns a
 * NUL-terminated string the caller frees, or NULL. */
char *gw_metrics_render(size_t *len);

/* ------------------------------------------------------------------------
 * HTTP requests and replies (gw_req.c, gw_reply.c)
 */

struct gw_req;    /* one request; see gw_int.h */
struct gw_server; /* one worker's server */

/* The request id used in logs and the X-Request-Id reply header. */
const char *gw_req_id(const struct gw_req *r);

/* The raw query string ("" when none) and the body (NUL-terminated; may
 * hold NULs), copied when the request arrived: valid until the reply. */
const char *gw_req_query(const struct gw_req *r, size_t *len);
const char *gw_req_body(const struct gw_req *r, size_t *len);
/* The client's address as text ("127.0.0.1"). */
const char *gw_req_peer(const struct gw_req *r);
/* A request header, or NULL; only until the client is answered (NULL
 * after).  Copy what you keep. */
const char *gw_req_header(const struct gw_req *r, const char *name);
/* Has the client been answered already (by the deadline)?  A handler may
 * skip work then, but must still call a reply function. */
int gw_req_answered(const struct gw_req *r);

/* Zeroed memory that lives as long as the request, or NULL. */
void *gw_req_alloc(struct gw_req *r, size_t n);

/* Add a reply header before replying.  Values with CR, LF or NUL are
 * refused (-1, logged); after the client was answered it does nothing. */
int gw_req_header_add(struct gw_req *r, const char *name, const char *value);

/* What the deadline does instead of "503 timed out": cb is called once,
 * if the handler has not replied by request_timeout_ms, and must reply
 * with gw_reply*().  That reply answers the client but does not free r:
 * the handler still owns r and ends it with its own reply later. */
typedef void gw_deadline_cb(struct gw_req *r, void *arg);
void gw_req_on_deadline(struct gw_req *r, gw_deadline_cb *cb, void *arg);
/* Move r's deadline to ms from now (ms > 0), for the rare request that is
 * known to take longer than request_timeout_ms (approving a notice freezes
 * its audience).  Only before the handler has replied. */
void gw_req_deadline_in(struct gw_req *r, long ms);

/* Answer and end the request: status, Content-Type (NULL: none), body
 * (copied).  If the client was answered already, only ends r.  r is freed
 * by the call, or, inside a handler or a callback that entered it, when
 * that frame leaves it (and a deadline callback's reply does not end r,
 * see above).  Ending r twice is a programming error. */
void gw_reply(struct gw_req *r, int status, const char *ctype, const char *body,
              size_t len);
/* The same with a NUL-terminated body. */
void gw_reply_text(struct gw_req *r, int status, const char *ctype,
                   const char *body);
/* An error: body "why\n" as text/plain, and one log line (info for 4xx,
 * warn for 5xx) with the status, why and the client's address -- at most
 * 20 such lines a second per worker (the next one written says how many
 * were held back: suppressed=K). */
void gw_reply_error(struct gw_req *r, int status, const char *why);

/* A streamed reply (a large export): the status line and headers now,
 * the body in parts as it is made (HTTP/1.1 chunked), then the end.
 * gw_reply_start() answers the client as far as the status goes: the
 * request's deadline stops (the caller keeps its own timers for each
 * part), and from then on only gw_reply_chunk() and gw_reply_end() may
 * be called -- gw_reply*() is a programming error.  It returns 0, or -1
 * when the client was answered already (the deadline): the caller then
 * ends r with gw_reply*() as usual.  gw_reply_chunk() queues len bytes
 * (copied): 0, or -1 when the client has gone away (nothing queued).
 * gw_reply_pending() is the number of bytes queued and not yet taken by
 * the client's socket, or -1 when the client has gone away: a writer
 * waits for it to fall before making the next part, so a slow client
 * never makes the daemon hold the whole file.  While a reply streams, a
 * client that takes no byte for GW_STREAM_IDLE_MS is cut off (the
 * connection's timeout from then on; request_timeout_ms before). gw_reply_end()
 * ends the body and the request (as gw_reply() does), whether or not the client
 * is still there. */
#define GW_STREAM_IDLE_MS 60000
int gw_reply_start(struct gw_req *r, int status, const char *ctype);
int gw_reply_chunk(struct gw_req *r, const char *buf, size_t len);
long gw_reply_pending(const struct gw_req *r);
void gw_reply_end(struct gw_req *r);
/* Before gw_reply_end() when the body stopped short: the connection is
 * shut down first, so the client sees it end without the last chunk (an
 * error), never a truncated body that looks whole. */
void gw_reply_cut(struct gw_req *r);

/* A frame that reaches r from outside the request's own handler (a
 * Redis, PostgreSQL or timer callback whose argument lives in r's memory)
 * enters r first and leaves it last: a reply in between ends r, and the
 * outermost gw_req_leave() frees it.  The dispatcher does the same around
 * the route's handler.  Frames nest. */
void gw_req_enter(struct gw_req *r);
void gw_req_leave(struct gw_req *r);

/* The *_or_4xx helpers: on success return 0; on failure they answer the
 * client with gw_reply_error() (so r is gone) and return -1.  Usage:
 *     if (gw_req_query_or_400(r, &ps) < 0) return;                       */

/* The query string's pairs; ps is owned by r (do not fini it). */
int gw_req_query_or_400(struct gw_req *r, const struct gw_params **ps);
/* An application/x-www-form-urlencoded body's pairs (415 for another
 * type, 400 when malformed); ps is owned by r. */
int gw_req_form_or_4xx(struct gw_req *r, const struct gw_params **ps);
/* The secret given matches want (constant time), or 403.  An empty want
 * accepts anything. */
int gw_req_key_or_403(struct gw_req *r, const char *want, const char *given,
                      size_t len);
/* Kannel's callbacks are on (kannel.enabled, and a kannel.secret to check
 * them by), or 404: never open for want of a secret. */
int gw_req_kannel_or_404(struct gw_req *r);
/* The client's address is in list[0..n) (n == 0 allows all), or 403. */
int gw_req_peer_or_403(struct gw_req *r, const struct gw_cidr *list, size_t n);

/* ------------------------------------------------------------------------
 * The server of one worker: hooks for the rest of the daemon
 */

/* Request methods a route accepts (HEAD goes where GET goes when the
 * route lists it).  A method no route of the path accepts gets 405 with
 * an Allow header naming those it does. */
#define GW_METHOD_GET    0x01u
#define GW_METHOD_POST   0x02u
#define GW_METHOD_HEAD   0x04u
#define GW_METHOD_PUT    0x08u
#define GW_METHOD_DELETE 0x10u
#define GW_METHOD_PATCH  0x20u

/* A route handler.  It owns r and must end it with exactly one gw_reply*()
 * call (directly or through an *_or_4xx helper), now or later. */
typedef void gw_handler_cb(struct gw_req *r);

/* One route, registered by the module that serves it (the server knows no
 * endpoint by name).  path is exact, or a prefix when prefix is set ("/api/"
 * takes "/api/records/R1"); an exact path wins over a prefix, a longer
 * prefix over a shorter one.  endpoint is the metrics label and must be in
 * gw_metrics.def's endpoint set.  arg is the module's own, for
 * gw_req_route_arg(). */
struct gw_route {
    const char *path; /* borrowed: must outlive the server (a literal) */
    int prefix;
    unsigned methods;     /* GW_METHOD_* */
    const char *endpoint; /* borrowed, as path */
    gw_handler_cb *handler;
    void *arg;
};

/* Add rt (copied; its strings borrowed) to srv's routes, normally from a
 * module's start hook.  Returns 0, or -1 (logged) when the table is full,
 * the path is already taken with the same prefix flag, or rt is malformed
 * (path not starting with '/', no handler, no method). */
int gw_server_route(struct gw_server *srv, const struct gw_route *rt);

/* The server a request came to, and the arg of the route that took it
 * (NULL before routing). */
struct gw_server *gw_req_server(const struct gw_req *r);
void *gw_req_route_arg(const struct gw_req *r);
/* The request's path, raw (not percent-decoded), without the query. */
const char *gw_req_path(const struct gw_req *r);
/* The request's method, one GW_METHOD_* (0 for one outside that set). */
unsigned gw_req_method(const struct gw_req *r);

struct event_base *gw_server_base(struct gw_server *srv);
const struct gw_config *gw_server_config(const struct gw_server *srv);
/* 0..workers-1 */
int gw_server_worker(const struct gw_server *srv);
/* The flows, lists and messages in use now (NULL before the dialogue
 * endpoints started).  Borrowed: valid until the caller returns to the
 * loop (SIGHUP may swap in another set). */
const struct flow_set *gw_server_flows(const struct gw_server *srv);

/* Health probes answer GET /healthz.  A probe checks one dependency and
 * calls done exactly once, now or later, with 0 (up) or a negative value
 * (down).  /healthz answers 200 when every probe said up and 503
 * otherwise, with {"name":"up"|"down"|"timeout",...}; a probe that has not
 * answered by the request deadline is "timeout". */
typedef void gw_health_done_cb(int status, void *arg);
typedef void gw_health_probe_cb(void *probe_arg, gw_health_done_cb *done,
                                void *done_arg);
/* name is copied (at most 31 bytes, [a-z0-9_]).  Returns 0 or -1. */
int gw_health_register(struct gw_server *srv, const char *name,
                       gw_health_probe_cb *probe, void *probe_arg);

/* SIGHUP: every reload hook runs in order of registration; each returns 0
 * or -1 (and then keeps what it had).  Logged and counted. */
typedef int gw_reload_cb(struct gw_server *srv, void *arg);
int gw_server_on_reload(struct gw_server *srv, gw_reload_cb *cb, void *arg);

/* Shutdown: every stop hook runs once, after the in-flight requests
 * finished or at the drain deadline, before the event loop ends.  A stop
 * hook makes every pending callback of its module run (with an error), so
 * the handlers waiting on them reply. */
typedef void gw_stop_cb(struct gw_server *srv, void *arg);
int gw_server_on_stop(struct gw_server *srv, gw_stop_cb *cb, void *arg);

/* Draining: work a module started on its own (an SMS at Kannel, an answer
 * waiting to be written) is finished before the stop hooks run.  When a
 * stop begins, every drain hook runs with first = 1 (take nothing new of
 * your own, finish what is under way), then with first = 0 whenever the
 * server looks again (a request ended, or every GW_DRAIN_POLL_MS); it
 * returns how many things of its module are still under way.  The stop
 * hooks run once no request is in flight and every drain hook returned 0,
 * or at the drain deadline (limits.request_timeout_ms + 1 s after the
 * stop began). */
#define GW_DRAIN_POLL_MS 20
typedef size_t gw_drain_cb(struct gw_server *srv, void *arg, int first);
int gw_server_on_drain(struct gw_server *srv, gw_drain_cb *cb, void *arg);

/* ------------------------------------------------------------------------
 * SMS out for programme notices (gw_sendsms.c): one try, at most once
 */

/* What became of one try.  Only NOT_SENT is safe to try again. */
enum gw_sms_outcome {
    GW_SMS_ACCEPTED, /* 2xx: Kannel took it */
    GW_SMS_NOT_SENT, /* nothing reached Kannel's queue: the connection was
                        refused, the request never made, or 503 (queue full,
                        throttled); also at shutdown before it went out */
    GW_SMS_REFUSED,  /* 4xx: Kannel will never take it */
    GW_SMS_MAYBE     /* it may be queued: a timeout or a connection lost
                        after the request went out, another 5xx, or shutdown
                        while it was on its way */
};

struct gw_sms_once {
    const char *id;     /* the sms_out row's id (UUID text), written and
                           committed by the caller: no row is written here,
                           Kannel's answer is recorded on it */
    const char *msisdn; /* E.164 digits */
    const char *text;   /* UTF-8 */
    int ucs2;           /* X-Kannel-Coding 2, else 0 */
    int validity_min;   /* > 0: X-Kannel-Validity (minutes); 0: none */
};

/* http_status 0 when no answer came; answer is Kannel's body (printable,
 * borrowed until the callback returns). */
typedef void gw_sms_outcome_cb(enum gw_sms_outcome o, int http_status,
                               const char *answer, void *arg);

/* POST rq (borrowed, copied) to Kannel's sendsms once -- never a second
 * try, so a message is handed over at most once.  Returns 0 and calls cb
 * exactly once, later, never from inside the call (at shutdown too); or
 * -1 (not started, no sendsms_url, bad arguments, too many on their way)
 * and never calls back. */
int gw_sms_send_once(struct gw_server *srv, const struct gw_sms_once *rq,
                     gw_sms_outcome_cb *cb, void *arg);

/* ------------------------------------------------------------------------
 * Programs
 */

/* Run the daemon with c (gw_daemon.c): bind, fork the workers, serve until
 * SIGTERM or SIGINT.  Returns the exit status. */
int gw_daemon_run(const struct gw_config *c);

/* Subcommands (gw_sim.c). */
int gw_check_flows_main(int argc, char **argv);
int gw_sim_main(int argc, char **argv);
/* `remigate seal` and `remigate open` (gw_seal.c): argv[0] says which. */
int gw_seal_main(int argc, char **argv);

#endif
