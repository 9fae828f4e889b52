/*
 * gw_ussd_int.h -- private to the dialogue's files (gw_ussd.c, gw_step.c,
 * gw_step_save.c, gw_step_sms.c, gw_env.c) and gw_remind.c: a worker's
 * USSD state, the flow set it shares, the caller's envelope and one step.
 */
#ifndef GW_USSD_INT_H
#define GW_USSD_INT_H

#include <stdint.h>
#include <event2/util.h>
#include <sys/queue.h>

#include "gateway/gw_int.h"
#include "sessions/sess.h"
#include "store/store.h"

struct gw_step;
struct gw_remind;

/* A flow set shared by the steps in flight; SIGHUP swaps in a new one and
 * the old one goes when its last step ends. */
struct gw_flows {
    struct flow_set *set;
    unsigned refs;
};

/* A worker's cache of the USSD envelopes it saved last, so that the
 * next step of a dialogue it served is one compare-and-set instead of a
 * read and a compare-and-set.  The compare-and-set still decides: an
 * entry another worker (or daemon) has moved past fails it, and the step
 * then starts again from a fresh read, as if there had been no entry.
 *
 * An entry is the encoded envelope, the version saved and the Redis
 * connection's epoch.  It is used only under the same epoch (a Redis
 * restarted or failed over may have lost or rolled back the key, and its
 * versions could come round to the same number with other contents) and
 * for half the key's TTL at most (the key cannot have expired and come
 * back meanwhile).  A step takes the entry out while it runs, so a second
 * step of the same session in this worker reads Redis as before; a step
 * that would finish a flow (an action: a database write) never trusts an
 * entry and reads first.  Least recently saved entries go first when the
 * entries' bytes pass sessions.cache_kb; 0 turns the cache off.  SMS
 * sessions are not cached. */
struct gw_cached {
    struct gw_cached *hnext; /* hash chain */
    TAILQ_ENTRY(gw_cached) lru;
    uint64_t version;
    unsigned epoch;
    int64_t until; /* unix time; not used after it */
    size_t len;
    char key[64];
    char value[]; /* the encoded envelope, len bytes and a NUL */
};

TAILQ_HEAD(gw_cached_list, gw_cached);

#define GW_CACHE_BUCKETS 4096 /* a power of two */

struct gw_cache {
    size_t cap, bytes;         /* of the entries, at most and now */
    struct gw_cached_list lru; /* least recently saved first */
    struct gw_cached *bucket[GW_CACHE_BUCKETS];
};

#define GW_NONCE_POOL 1024
#define GW_ENV_MAX    SESS_VALUE_MAX

struct gw_ussd {
    struct gw_server *srv;
    const struct gw_config *cfg;
    struct gw_flows *flows;
    /* random bytes for the engine's nonces, drawn from the kernel a pool
     * at a time instead of one getrandom() per step; each byte is handed
     * out once.  Filled in the worker, so workers never share one. */
    unsigned char pool[GW_NONCE_POOL];
    size_t pool_used;
    /* the envelope being saved: sess_cas() copies it before returning */
    char envbuf[GW_ENV_MAX];
    /* the envelope's secret part, in clear and sealed, while it is
     * encoded or decoded (within one call) */
    char secret[GW_ENV_MAX];
    char sealed[GW_ENV_MAX];
    struct gw_cache cache;
    struct gw_remind *remind;
    /* steps waiting for Redis to come back (redis.wait_ms), oldest
     * first, and the event that sends them on once it has */
    TAILQ_HEAD(, gw_step) parked;
    size_t nparked;
    struct event *unpark;
    int stopping;
};


/* What is kept per caller and channel, besides the flow state. */
struct gw_env {
    char dlg[160];               /* dialogue id ("" none) */
    unsigned seq;                /* its_session_info sequence of the last MO */
    char mo[64];                 /* Kannel id of the last MO */
    char at[GW_AT_TEXT_MAX + 1]; /* the AT text of the last step */
    char in[FLOW_INPUT_MAX + 1]; /* the last input */
    int64_t t;                   /* unix time of the last step */
    int end;                     /* the last screen ended the dialogue */
    int enc;                     /* its enum flow_enc */
    char out[FLOW_TEXT_MAX];     /* the last screen */
    char st[FLOW_STATE_MAX + 1]; /* flow_state_encode() */
};

/* Drop a reference to fl (NULL: nothing); the last frees it. */
void gw_flows_unref(struct gw_flows *fl);

/* Decode the envelope of the session skey (see gw_env_encode() in
 * gw_ussd.c): 0, or -1 when it is unreadable or not sealed as the
 * configuration wants. */
int gw_env_decode(struct gw_ussd *u, const struct store *keys, const char *skey,
                  const char *buf, size_t len, struct gw_env *e);

/* The parts of a registration a number saved, on any channel (the design
 * note in gw_ussd.c): the key "parts:MSISDN" into key (cap bytes, at
 * least GW_PARTS_KEY_MAX).  gw_parts_parse() reads its value, "BITS" or
 * "BITS LANG": 0 with *bits and lang (FLOW_LANG_MAX bytes) set, or -1
 * when unreadable (then 0 and "").  gw_parts_merge() merges them into st:
 * a part under way in st whose bit is new (saved on the other channel
 * since st last merged) loses its answers, the language kept -- its
 * number is returned, else 0; st takes lang when it has none. */
#define GW_PARTS_KEY_MAX (GW_MSISDN_MAX + 8)
void gw_parts_key(const char *msisdn, char *key, size_t cap);
int gw_parts_parse(const char *value, size_t len, unsigned *bits, char *lang);
unsigned gw_parts_merge(const struct flow_set *set, struct flow_state *st,
                        unsigned bits, const char *lang);

/* Reminders (gw_remind.c).  gw_remind_start() looks at the queue every
 * sessions.remind_tick_ms (nothing when sessions.remind_after is 0);
 * gw_remind_stop() stops looking; gw_remind_free() frees what start made.
 * gw_remind_push() queues msisdn's reminder, due at unix time due: 0, or
 * -1 when it could not be asked of Redis (a failure later is logged). */
int gw_remind_start(struct gw_ussd *u);
void gw_remind_stop(struct gw_ussd *u);
void gw_remind_free(struct gw_ussd *u);
int gw_remind_push(struct gw_ussd *u, const char *msisdn, int64_t due);

/* ------------------------------------------------------------------------
 * One step of a dialogue: gw_step.c, gw_step_save.c, gw_step_sms.c
 */

enum gw_via { GW_VIA_KANNEL, GW_VIA_AT, GW_VIA_SMS };

/* Where a step is: what it waits for, and so which callback may come
 * next.  Each callback checks its state in one switch; a step leaves DONE
 * only with its request.  The names go to the debug log. */
#define GW_STEP_STATES(X)                                                      \
    X(NEW, "new")           /* parsed; nothing asked yet */                    \
    X(READ, "read")         /* the envelope asked from Redis (or the cache) */ \
    X(PARTS, "parts")       /* a dial or SMS: the parts saved asked */         \
    X(LOOKUP, "lookup")     /* SMS: the record's language asked */             \
    X(OPTOUT, "optout")     /* SMS: STOP or START being recorded */            \
    X(INTEREST, "interest") /* SMS: a reply code being recorded */             \
    X(ACT, "act")           /* the finished flow's action running */           \
    X(SAVE, "save")         /* the new envelope's compare-and-set sent */      \
    X(RACE, "race") /* that save lost: reading what the winner saved */        \
    X(DONE, "done") /* replied; the request ends with the last frame */

enum gw_step_state {
#define GW_STEP_ENUM(id, name) GW_STEP_##id,
    GW_STEP_STATES(GW_STEP_ENUM)
#undef GW_STEP_ENUM
};

/* One step of a dialogue (gw_step.c): request memory, freed with its
 * request.  Every pointer borrowed unless it says otherwise. */
struct gw_step {
    struct gw_req *r;
    struct gw_ussd *u;
    enum gw_step_state state;
    struct gw_flows *flows; /* a reference */
    enum gw_via via;
    enum flow_channel ch;
    char key[64];
    char msisdn[GW_MSISDN_MAX];
    int dial;       /* a new dialogue */
    int parts_read; /* "parts:<msisdn>" merged into st */
    char dlg[160];
    unsigned seq; /* Kannel: sequence of this MO */
    int has_seq;
    unsigned char sess[2]; /* Kannel: its_session_info to echo */
    int has_sess;
    char mo[64];
    const char *at; /* AT text (request memory) */
    size_t at_len;
    const char *input; /* what was typed (request memory), or NULL */
    size_t input_len;
    int64_t now;
    uint64_t version; /* of the envelope read */
    struct gw_env env;
    struct flow_state st;
    struct flow_out out;
    int completed;               /* this step ends a flow */
    int kept;                    /* its record is stored or queued */
    int optout;                  /* SMS STOP (1) or START (0) */
    char confirm[FLOW_TEXT_MAX]; /* the SMS to send once saved, or "" */
    int confirm_ucs2;
    char *record; /* GW_RECORD_MAX bytes of request memory, once needed */
    /* the cache: the entry this step runs on (taken out of the cache, the
     * step's), the entry its save will become, and what the request
     * brought, to start again from a fresh read */
    struct gw_cached *hit, *save;
    int dial0;
    const char *input0;
    size_t input_len0;
    /* sessions metrics of this step, counted once its save has won */
    int ev_abandoned;
    const char *ev_dial; /* "started", "resumed" or NULL */
    /* waiting for Redis (gw_step_park()): on u->parked, with its timer */
    TAILQ_ENTRY(gw_step) park_link;
    struct event *park_ev;
    /* 0: it has not waited; else when its wait ends (CLOCK_MONOTONIC,
     * ms): a step waits redis.wait_ms at most in all, however often Redis
     * goes in that time (a cluster failing over flaps) */
    long long park_until;
};

/* The names of enum gw_step_state, for the logs. */
extern const char *const gw_step_state_names[];

/* gw_ussd.c: n bytes (at most GW_NONCE_POOL) for the engine's nonces from
 * u's pool, each byte handed out once. */
void gw_ussd_nonce(struct gw_ussd *u, unsigned char *out, size_t n);

/* gw_env.c: the envelope and the worker's cache of envelopes. */
/* Encode e for the session skey into buf (cap bytes); with keys (not NULL)
 * the secrets go sealed as "x" (u's scratch buffers).  Its length, or -1. */
int gw_env_encode(struct gw_ussd *u, const struct store *keys, const char *skey,
                  const struct gw_env *e, char *buf, size_t cap);
/* The entry for key, taken out of the cache (the caller's from here), if
 * it may still be used at unix time now under Redis epoch epoch; NULL
 * otherwise (a stale one is dropped). */
struct gw_cached *gw_cache_take(struct gw_cache *ca, const char *key,
                                int64_t now, unsigned epoch);
/* Keep c (the cache owns it from here), unless an entry of a later version
 * of its key is there already; then drop the least recently saved entries
 * while there are more bytes than the cap. */
void gw_cache_put(struct gw_cache *ca, struct gw_cached *c);
/* Free every entry. */
void gw_cache_fini(struct gw_cache *ca);

/* gw_step.c: the step's machinery. */
/* Start s, filled in by an endpoint (request, worker, channel, caller,
 * input): it reads the envelope (or takes it from the cache) and ends in
 * exactly one reply to s->r. */
void gw_step_begin(struct gw_step *s);
/* Move s to state next (logged at debug); never out of DONE. */
void gw_step_to(struct gw_step *s, enum gw_step_state next);
/* Send a read of key for the step (cb answers it).  Redis not connected:
 * the step waits for it, once (gw_step_park()); any other refusal, or a
 * second wait, answers "busy". */
void gw_step_get(struct gw_step *s, const char *key, sess_get_cb *cb);
/* The answer to a read of the step's session (arg: the step), first or
 * after a lost race (states READ, RACE): a sess_get_cb. */
void gw_step_get_cb(int status, const char *value, size_t len, uint64_t version,
                    void *arg);
/* Run the step again from what Redis holds: the cached envelope it ran on
 * was stale, or is not trusted for what the step would do. */
void gw_step_reread(struct gw_step *s);
/* Ask the caller's parts; the step runs again with them merged.  Without
 * a parts window there is nothing to ask. */
void gw_step_parts_read(struct gw_step *s);
/* Wait for Redis, up to redis.wait_ms from the step's first wait: 0, or
 * -1 (not configured, stopping, too many waiting, that time over): then
 * the caller hears "busy" now. */
int gw_step_park(struct gw_step *s);
/* Send text as a screen (enc: its enum flow_enc); end: the dialogue ends
 * with it.  Ends the request and the step. */
void gw_step_reply(struct gw_step *s, const char *text, int enc, int end);
/* A system message id as a last screen, in the caller's language. */
void gw_step_message(struct gw_step *s, const char *id);
/* "Busy" (why is logged) -- unless the step has finished its flow
 * (s->completed): then the caller hears the step's own last screen. */
void gw_step_busy(struct gw_step *s, const char *why);
/* Redis is back (the event u->unpark): every step waiting runs again from
 * a fresh read now. */
void gw_ussd_unpark_cb(evutil_socket_t fd, short what, void *arg);
/* Stopping: every step waiting hears "busy" now. */
void gw_ussd_unpark_all_busy(struct gw_ussd *u);

/* gw_step_save.c: the engine has run on s -- the finished flow's action,
 * if any (on what Redis holds: a cached envelope is read again first),
 * then the envelope's compare-and-set and the reply. */
void gw_step_finish(struct gw_step *s);

/* gw_step_sms.c: an SMS's envelope is read -- a repeat of one already
 * answered is dropped; the parts are merged; without a language in the
 * caller's SMS session, the record's is looked up first (when there is a
 * database); then the engine runs. */
void gw_sms_run(struct gw_step *s);

#endif
