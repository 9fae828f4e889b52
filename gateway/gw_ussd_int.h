/*
 * gw_ussd_int.h -- private to gw_ussd.c and gw_remind.c: a worker's USSD
 * state, the flow set it shares, and the caller's envelope.
 */
#ifndef GW_USSD_INT_H
#define GW_USSD_INT_H

#include <stdint.h>
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

#endif
