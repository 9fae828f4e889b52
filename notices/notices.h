/*
 * notices.h -- programme notices: who gets an SMS about a training, job or
 * loan programme, when, how fast, and what became of it.
 *
 * This header has two halves.  The pure core (ntc_core.c) reads no clock
 * and does no I/O -- every "now" is an argument -- so each rule is unit-
 * tested and fuzzed alone: the send window in Asia/Dhaka, the validity
 * clipped to it, the token bucket per SMSC, the per-person cap, SMS part
 * counting and cost, template rendering with the STOP footer, the
 * delivery-receipt parser and the state machines.  The daemon part
 * (ntc_dispatch.c) claims outbox rows from PostgreSQL and hands them to
 * Kannel's sendsms; see notices_start().
 *
 * Times are Unix seconds (long long) or milliseconds where named _ms.
 * Bangladesh keeps UTC+6 all year (no daylight saving since 2009), so
 * local time is UTC + NOTICES_TZ_OFFSET_S, no tz database needed.
 */
#ifndef NOTICES_H
#define NOTICES_H

#include <stddef.h>

#define NOTICES_TZ_OFFSET_S (6 * 3600)

/* ------------------------------------------------------------------------
 * The send window (quiet hours)
 */

/* Hard limits, whatever the config says: nothing leaves before 06:00 or
 * after 22:00 Dhaka time (BTRC: no promotional SMS from midnight to
 * dawn; the evening bound is ours). */
#define NOTICES_WINDOW_EARLIEST (6 * 60)
#define NOTICES_WINDOW_LATEST   (22 * 60)
/* Default window 09:00-20:00. */
#define NOTICES_WINDOW_OPEN_DEF  (9 * 60)
#define NOTICES_WINDOW_CLOSE_DEF (20 * 60)
/* Less than this left before the window closes: wait for the next one
 * (an SMS with a few minutes' validity mostly expires). */
#define NOTICES_WINDOW_MIN_LEFT 30
/* Kannel validity never above a day. */
#define NOTICES_VALIDITY_MAX (24 * 60)

struct notices_window {
    int open_min;  /* minutes after Dhaka midnight, inclusive */
    int close_min; /* exclusive; open_min < close_min */
};

/* Parse "HH:MM-HH:MM" into w.  Returns NULL, or a message (w unchanged)
 * when the text is malformed, empty (open >= close) or reaches outside
 * 06:00-22:00. */
const char *notices_window_parse(const char *s, struct notices_window *w);

/* Where now falls for window w. */
struct notices_slot {
    int open;            /* a message may leave now */
    int validity_min;    /* open: Kannel validity, minutes, so that the
                            SMSC gives up before the window closes */
    long long closes_at; /* open: when the window closes */
    long long next_open; /* closed: when it opens next (> now) */
    int minute_of_day;   /* now, Dhaka time, 0..1439 */
};

/* The window at now.  It counts as closed when fewer than
 * NOTICES_WINDOW_MIN_LEFT minutes are left.  A w reaching outside
 * 06:00-22:00 (not made by notices_window_parse()) is clipped to it. */
void notices_window_at(const struct notices_window *w, long long now,
                       struct notices_slot *out);

/* ------------------------------------------------------------------------
 * Pace: a token bucket per SMSC, in SMS parts
 */

struct notices_bucket {
    double rate;          /* parts per second, > 0 */
    double burst;         /* bucket size, >= 1 */
    double tokens;        /* may go below 0 after a large message */
    long long last_ms;    /* refilled up to here */
    long long hold_until; /* ms: nothing before this (Kannel said slow down) */
};

/* A full bucket of rate parts/s (burst: its size; <= 0 means one second's
 * worth, at least 1). */
void notices_bucket_init(struct notices_bucket *b, double rate, double burst,
                         long long now_ms);

/* Take parts tokens at now_ms: returns 0 (taken), or how many ms to wait
 * before asking again (nothing taken).  A message larger than the bucket
 * goes once the bucket is full, and the debt is paid by waiting. */
long long notices_bucket_take(struct notices_bucket *b, unsigned parts,
                              long long now_ms);

/* How many ms from now_ms until parts tokens (at most the bucket's size)
 * are there, 0 when they are; nothing taken, b unchanged.  The
 * dispatcher waits with it for several messages' worth at once. */
long long notices_bucket_wait(const struct notices_bucket *b, unsigned parts,
                              long long now_ms);

/* Kannel answered 503 or "queue full": nothing leaves for hold_ms, and
 * the bucket starts empty after it. */
void notices_bucket_hold(struct notices_bucket *b, long long now_ms,
                         long long hold_ms);

/* ------------------------------------------------------------------------
 * The per-person cap across notices
 */

#define NOTICES_CAP_PER_DAY_MAX 3 /* BTRC: never more than 3 a day */

struct notices_cap {
    int max_n;   /* at most max_n notice SMS ... (default 2) */
    int days;    /* ... in any days * 24 h (default 7) */
    int per_day; /* and at most per_day in any 24 h (default and limit 3) */
};

/* Check a cap from the config: NULL or a message. */
const char *notices_cap_check(const struct notices_cap *c);

/* May one more notice go to a number that got notices at sent[0..n-1]
 * (Unix seconds, any order) when it is now?  1 yes, 0 no.  per_day above
 * NOTICES_CAP_PER_DAY_MAX counts as that limit. */
int notices_cap_allows(const struct notices_cap *c, const long long *sent,
                       size_t n, long long now);

/* ------------------------------------------------------------------------
 * Text: parts, cost, templates
 */

/* Characters of one part: alone / in a concatenated message. */
#define NOTICES_GSM7_SINGLE 160
#define NOTICES_GSM7_MULTI  153
#define NOTICES_UCS2_SINGLE 70
#define NOTICES_UCS2_MULTI  67
/* Longest text a notice may render to (bytes of UTF-8). */
#define NOTICES_TEXT_MAX 1600
/* Most parts a notice may have (Kannel's max-messages default is 10;
 * operators often allow fewer). */
#define NOTICES_PARTS_MAX 8

#define NOTICES_FOOTER_BN "বন্ধ করতে বন্ধ লিখুন"
#define NOTICES_FOOTER_EN "Reply STOP to stop"

struct notices_parts {
    int ucs2;       /* 1: needs UCS-2 (any Bangla does), 0: GSM 7-bit */
    unsigned units; /* septets (GSM extension characters count 2) or UTF-16
                       code units */
    unsigned parts; /* SMS parts it is sent as (0 for an empty text) */
};

/* Count the parts of UTF-8 text. */
void notices_parts_count(const char *text, size_t len, struct notices_parts *p);

/* What parts cost at price_paisa per part (1 taka = 100 paisa). */
long long notices_cost_paisa(unsigned parts, long long price_paisa);

/* What fills a template's placeholders; borrowed, UTF-8, NULL = "". */
struct notices_vars {
    const char *code;     /* {code}: the programme's reply code */
    const char *deadline; /* {deadline} */
    const char *phone;    /* {phone}: the programme's contact number */
};

/* Is tpl (len bytes) a valid template: UTF-8 without NUL or control
 * characters other than newline, with no '{' or '}' outside the
 * placeholders {code}, {deadline}, {phone}?  NULL, or a message. */
const char *notices_template_check(const char *tpl, size_t len);

/* Render tpl with v, then a newline and the STOP footer of the language
 * (bangla: NOTICES_FOOTER_BN, else NOTICES_FOOTER_EN), into out (NUL-
 * terminated).  Returns the length, or -1 with *why set (an invalid
 * template, a value with a brace or control character, or the result
 * longer than cap - 1 or NOTICES_TEXT_MAX). */
int notices_render(const char *tpl, size_t len, const struct notices_vars *v,
                   int bangla, char *out, size_t cap, const char **why);

/* ------------------------------------------------------------------------
 * Delivery reports
 */

/* The stat: values of an SMPP receipt (SMPP 3.4 appendix B). */
#define NOTICES_STATS(X)                                                       \
    X(NOTICES_STAT_NONE, "")                                                   \
    X(NOTICES_STAT_DELIVRD, "DELIVRD")                                         \
    X(NOTICES_STAT_EXPIRED, "EXPIRED")                                         \
    X(NOTICES_STAT_DELETED, "DELETED")                                         \
    X(NOTICES_STAT_UNDELIV, "UNDELIV")                                         \
    X(NOTICES_STAT_ACCEPTD, "ACCEPTD")                                         \
    X(NOTICES_STAT_UNKNOWN, "UNKNOWN")                                         \
    X(NOTICES_STAT_REJECTD, "REJECTD")                                         \
    X(NOTICES_STAT_ENROUTE, "ENROUTE")                                         \
    X(NOTICES_STAT_BUFFRED, "BUFFRED")                                         \
    X(NOTICES_STAT_ACKED, "ACKED")                                             \
    X(NOTICES_STAT_OTHER, "OTHER")

enum notices_stat {
#define NOTICES_X_ENUM(name, text) name,
    NOTICES_STATS(NOTICES_X_ENUM)
#undef NOTICES_X_ENUM
};

/* "DELIVRD", ..., "" for NONE, "OTHER" for one we do not know. */
const char *notices_stat_name(enum notices_stat s);

#define NOTICES_RECEIPT_ID_MAX 64

struct notices_receipt {
    char id[NOTICES_RECEIPT_ID_MAX + 1]; /* the SMSC's message id, or "" */
    enum notices_stat stat;              /* NONE when there is no stat: */
    int err;                             /* err: (decimal or hex), or -1 */
};

/* Parse a receipt text as Kannel passes it in %A ("id:123 sub:001
 * dlvrd:001 submit date:2611221032 done date:2611221033 stat:DELIVRD
 * err:000 text:..."; keys in any case and order, the free text after
 * "text:" ignored).  Returns 0 when a stat: was found, -1 when not (r is
 * still filled with what was found: a bare "ACK/" has no stat). */
int notices_receipt_parse(const char *s, size_t len, struct notices_receipt *r);

/* ------------------------------------------------------------------------
 * States
 */

/* A notice's life. */
#define NOTICES_STATES(X)                                                      \
    X(NOTICES_DRAFT, "draft")                                                  \
    X(NOTICES_SUBMITTED, "submitted")                                          \
    X(NOTICES_APPROVED, "approved")                                            \
    X(NOTICES_SENDING, "sending")                                              \
    X(NOTICES_PAUSED, "paused")                                                \
    X(NOTICES_COMPLETED, "completed")                                          \
    X(NOTICES_CANCELLED, "cancelled")

enum notices_state {
#define NOTICES_X_ENUM(name, text) name,
    NOTICES_STATES(NOTICES_X_ENUM)
#undef NOTICES_X_ENUM
        NOTICES_STATE_INVALID
};

/* What people and the dispatcher do to a notice. */
#define NOTICES_ACTIONS(X)                                                     \
    X(NOTICES_ACT_SUBMIT, "submit")     /* author: draft -> submitted */       \
    X(NOTICES_ACT_REJECT, "reject")     /* admin: submitted -> draft */        \
    X(NOTICES_ACT_APPROVE, "approve")   /* admin: submitted -> approved */     \
    X(NOTICES_ACT_START, "start")       /* dispatcher: approved -> sending */  \
    X(NOTICES_ACT_PAUSE, "pause")       /* approved|sending -> paused */       \
    X(NOTICES_ACT_RESUME, "resume")     /* paused -> sending */                \
    X(NOTICES_ACT_COMPLETE, "complete") /* dispatcher: sending -> completed */ \
    X(NOTICES_ACT_CANCEL, "cancel")     /* any but completed -> cancelled */

enum notices_action {
#define NOTICES_X_ENUM(name, text) name,
    NOTICES_ACTIONS(NOTICES_X_ENUM)
#undef NOTICES_X_ENUM
        NOTICES_ACTION_INVALID
};

const char *notices_state_name(enum notices_state s);
enum notices_state notices_state_parse(const char *s); /* _INVALID if none */
const char *notices_action_name(enum notices_action a);
enum notices_action notices_action_parse(const char *s);

/* The state action leads to from st, or NOTICES_STATE_INVALID when it is
 * not allowed there. */
enum notices_state notices_transition(enum notices_state st,
                                      enum notices_action a);

/* One recipient's row in the outbox.  "final" states are never left. */
#define NOTICES_RSTATES(X)                                                     \
    X(NOTICES_R_SKIPPED, "skipped", 1)     /* at freeze or claim, with why */  \
    X(NOTICES_R_QUEUED, "queued", 0)       /* waiting for its turn */          \
    X(NOTICES_R_CLAIMED, "claimed", 0)     /* committed, sendsms under way */  \
    X(NOTICES_R_ACCEPTED, "accepted", 0)   /* Kannel took it */                \
    X(NOTICES_R_UNKNOWN, "unknown", 1)     /* may have left: never again */    \
    X(NOTICES_R_FAILED, "failed", 1)       /* Kannel refused it (4xx) */       \
    X(NOTICES_R_SUBMITTED, "submitted", 0) /* DLR 8: the SMSC took it */       \
    X(NOTICES_R_REJECTED, "rejected", 1)   /* DLR 16: the SMSC refused it */   \
    X(NOTICES_R_BUFFERED, "buffered", 0)   /* DLR 4: the phone was away */     \
    X(NOTICES_R_DELIVERED, "delivered", 1) /* DLR 1 */                         \
    X(NOTICES_R_EXPIRED, "expired", 1)     /* DLR 2 EXPIRED, or no report */   \
    X(NOTICES_R_UNDELIVERED, "undelivered", 1) /* DLR 2, other stat */         \
    X(NOTICES_R_CANCELLED, "cancelled", 1)     /* the notice was cancelled */

enum notices_rstate {
#define NOTICES_X_ENUM(name, text, final) name,
    NOTICES_RSTATES(NOTICES_X_ENUM)
#undef NOTICES_X_ENUM
        NOTICES_RSTATE_INVALID
};

const char *notices_rstate_name(enum notices_rstate s);
enum notices_rstate notices_rstate_parse(const char *s);
int notices_rstate_final(enum notices_rstate s);

/* The recipient state a delivery report of Kannel type (1, 2, 4, 8, 16,
 * possibly with 0x20/0x40 flags) and receipt r (NULL: none) leads to, or
 * NOTICES_RSTATE_INVALID for a type that means nothing.  Type 2 is split
 * by stat: EXPIRED -> expired, anything else -> undelivered. */
enum notices_rstate notices_dlr_rstate(int type,
                                       const struct notices_receipt *r);

/* ------------------------------------------------------------------------
 * The dispatcher (ntc_dispatch.c), in the daemon
 */

struct gw_server;

/* Start the outbox dispatcher on srv's event loop when this worker
 * dispatches (notices.dispatch "on", worker 0, a database and a sendsms
 * URL configured; otherwise nothing happens and 0 is returned).  Called
 * after the sendsms client started.  Returns 0, or -1 (logged: a bad
 * notices.* setting, no memory) and the worker stops. */
int notices_start(struct gw_server *srv);

/* After the stop hooks ran: free what notices_start() made (also after a
 * start that failed halfway). */
void notices_fini(struct gw_server *srv);

#endif
