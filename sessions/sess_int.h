/*
 * sess_int.h -- private to sessions/: the session store's structs and
 * what its two files share.  sess_redis.c holds the commands and their
 * scripts, sess_conn.c the connection (its handshake, hiredis on
 * libevent) and the store's lifecycle, sess_sentinel.c the Sentinel
 * following, sess_cluster.c the Redis Cluster map and routing.
 */
#ifndef SESS_INT_H
#define SESS_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/async.h>

#include "sessions/sess.h"

#define SESS_BACKOFF_MIN_MS 100

enum sess_kind { K_GET, K_PEEK, K_CAS, K_DONE, K_UNTIL };

struct sess_hp {
    char host[256];
    int port;
};

struct sess_cmd {
    struct sess *s;
    enum sess_kind kind;
    union {
        sess_get_cb *get;
        sess_cas_cb *cas;
        sess_done_cb *done;
    } cb;
    void *arg;
    struct event *timer;
    int done;    /* the caller was called back */
    int overdue; /* timed out; waiting one more timeout for hiredis */
    unsigned gen;
    /* a cluster node's command: the command as sent (malloc'd by
     * hiredis's formatter), to send again on -MOVED or -ASK; once */
    char *fmt;
    int fmt_len;
    int redirected;
    TAILQ_ENTRY(sess_cmd) link;
};

TAILQ_HEAD(sess_cmds, sess_cmd);

struct sess {
    struct event_base *base;
    char host[256];
    int port;
    char prefix[64];
    size_t prefix_len;
    int timeout_ms, connect_timeout_ms;
    size_t max_pending;
    char password[256]; /* "" none */
    sess_state_cb *on_state;
    void *state_arg;
    int said_error; /* the last state said: 0 up, a SESS_E* code, or 1
                       before the first */
    char said_why[256];

    redisAsyncContext *ac; /* NULL when there is none */
    unsigned gen;          /* bumped for every new connection */
    int connected;         /* the handshake was answered */
    int started;
    int backoff_ms;
    struct event *retry;        /* reconnect */
    struct event *conn_timeout; /* connect deadline */
    size_t pending;             /* callbacks owed */
    struct sess_cmds cmds;      /* every command hiredis holds */
    int flushing;               /* in sess_io_flush_cb() */
    /* the CAS script's SHA1 as this connection's SCRIPT LOAD gave it, or
     * "" (then EVAL, which sends the whole script) */
    char cas_sha[41];
    unsigned cas_sha_gen;
    int64_t hello_ms;        /* our wall clock when TIME was sent */
    int hello_refused;       /* this connection's handshake failed */
    int64_t clock_offset_ms; /* Redis's clock minus ours, from TIME */

    /* Sentinel (nsen > 0); host and port above are then the primary the
     * sentinels named last */
    struct sess_hp sen[SESS_SENTINELS_MAX];
    int nsen;
    char master_name[128];
    int sen_idx;               /* the sentinel asked now, or next */
    int sen_tried;             /* sentinels that failed in this round */
    redisAsyncContext *sen_ac; /* asking, then watching; NULL: none */
    struct event *sen_timer;   /* its deadline; at once: it failed */
    char sen_why[200];         /* why the last sentinel failed */
    struct event *kick;        /* drop the primary, outside callbacks */
    int kick_now;              /* ... and connect at once to host:port */
    char kick_why[200];

    /* Redis Cluster: the cluster's store has cl (its primaries' stores
     * hang from it), each primary's store parent; both NULL otherwise */
    struct sess_cl *cl;
    struct sess *parent;
};

#define SESS_CL_NODES_MAX 64
#define SESS_CL_NONE      0xff /* a slot no primary serves */

struct sess_cl {
    struct sess_hp seed[SESS_SENTINELS_MAX];
    int nseed;
    struct sess *node[SESS_CL_NODES_MAX]; /* one store per primary */
    int nnode;
    uint8_t slot[SESS_SLOTS]; /* index into node[], or SESS_CL_NONE */
    int holes;                /* slots with no primary */
    int mapped;               /* a map was applied */
    /* asking for CLUSTER SLOTS: the nodes known, then the seeds, in turn */
    redisAsyncContext *ac; /* NULL: not asking */
    char ask_host[256];
    int ask_port;
    int ask_idx;          /* the address asked now: nodes, then seeds */
    int ask_tried;        /* addresses that failed in this round */
    struct event *timer;  /* its deadline; at once: answered or failed */
    struct event *again;  /* ask again (after the backoff) */
    struct event *update; /* look at the primaries' states, at once */
    int decided;          /* the address asked answered or failed */
    int auth_refused;     /* an AUTH refused in this round */
    int backoff_ms;
    int again_soon; /* a refresh is wanted once this one ends */
    /* the answer, applied from the timer outside hiredis's callbacks */
    int got;
    struct sess_hp got_hp[SESS_CL_NODES_MAX];
    int got_n;
    uint8_t got_slot[SESS_SLOTS];
    int got_holes;
    int got_state; /* CLUSTER INFO's cluster_state: 1 ok, 0 fail, -1 unsaid */
    /* the node asked last said cluster_state:ok (or said nothing); a
     * -CLUSTERDOWN answer clears it until a node says ok again */
    int state_ok;
    int down_during; /* a -CLUSTERDOWN came while the map was asked for */
    int answered;    /* the last round got a map: poll, no backoff */
    int polls;       /* quick asks in this outage (SESS_CL_POLL_MAX at most) */
    char why[256];
};

/* The wall clock in ms (what Redis's TIME is compared with). */
static inline int64_t
sess_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void
sess_ms_tv(int ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* ------------------------------------------------------------------------
 * sess_redis.c
 */

/* Free c (hiredis is done with it): off s->cmds, its timer freed. */
void sess_cmd_free(struct sess_cmd *c);
/* Call the caller back, once (a no-op after the first). */
void sess_cmd_finish(struct sess_cmd *c, int status, const char *v, size_t len,
                     uint64_t version);
/* SCRIPT LOAD the CAS script on the connection, if there is one. */
void sess_script_load(struct sess *s);

/* ------------------------------------------------------------------------
 * sess_conn.c
 */

/* Drop the connection now (not from inside a hiredis callback). */
void sess_drop(struct sess *s);
/* The next attempt after the jittered backoff, which then doubles. */
void sess_schedule(struct sess *s);
/* Drop the primary's connection from a zero timer (safe inside a hiredis
 * callback), then connect at once (now) or after the backoff. */
void sess_kick(struct sess *s, int now, const char *why);
/* Say a change of state through cfg.on_state, once per kind. */
void sess_say(struct sess *s, int error, const char *why);
/* Our hiredis event glue on s->base for ac.  0, or -1 out of memory. */
int sess_io_attach(struct sess *s, redisAsyncContext *ac);

/* ------------------------------------------------------------------------
 * sess_sentinel.c
 */

/* Parse the comma-separated list into out[] (NULL: check only), *n
 * entries.  NULL, or why not. */
const char *sess_hp_list(const char *list, struct sess_hp *out, int *n);
/* Drop the sentinel connection (never from inside its callbacks). */
void sess_sen_drop(struct sess *s);
/* Ask sen[sen_idx] on a new connection: the primary's address, then the
 * watch. */
void sess_sen_connect(struct sess *s);
/* s->sen_timer's callback: the sentinel asked failed or is late. */
void sess_sen_on_timer(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------------------
 * sess_cluster.c
 */

struct redisReply;
/* Parse a CLUSTER SLOTS answer: the primaries in hp[] (*n of them, at most
 * SESS_CL_NODES_MAX), slot[i] the index of slot i's primary or
 * SESS_CL_NONE, *holes the slots without one.  A primary given with an
 * empty host is at asked.  NULL, or why not (a static message). */
const char *sess_cl_slots_parse(const struct redisReply *r, const char *asked,
                                struct sess_hp *hp, int *n, uint8_t *slot,
                                int *holes);
/* Parse an error answer "MOVED SLOT HOST:PORT" (1) or "ASK SLOT HOST:PORT"
 * (2), len bytes at msg; 0 if it is neither, or malformed.  An empty HOST
 * is left "" in hp (the node that answered). */
int sess_cl_redirect_parse(const char *msg, size_t len, int *slot,
                           struct sess_hp *hp);
/* The cluster_state field of a CLUSTER INFO answer (len bytes at txt):
 * 1 "ok", 0 "fail" (or any other word), -1 when there is none. */
int sess_cl_info_state(const char *txt, size_t len);
/* A node's command was answered -CLUSTERDOWN (msg, NUL-terminated): the
 * cluster is down until a node says cluster_state:ok again; the map is
 * asked for now.  Call before finishing the command (SESS_EDOWN: it was
 * refused, not run), so that its caller sees the cluster down. */
void sess_cl_down(struct sess *node, const char *msg);
/* Set up s->cl from the seed list (checked); 0 or -1 out of memory. */
int sess_cl_new(struct sess *s, const char *seeds);
void sess_cl_start(struct sess *s);
void sess_cl_stop(struct sess *s);
void sess_cl_free(struct sess *s);
/* The store of the primary of key k (prefixed, NUL-terminated), or NULL
 * with *rc set (SESS_EDOWN: no primary known for its slot). */
struct sess *sess_cl_route(struct sess *s, const char *k, int *rc);
/* A node's command c was answered -MOVED or -ASK (msg): hand it to the
 * node named.  0: handed over (c is done, without calling back), else
 * the status to finish c with. */
int sess_cl_redirect(struct sess_cmd *c, const char *msg, size_t len);

/* (sess_redis.c) Send c's bytes again on the store to (after ASKING when
 * asking), as a new command that calls c's callback; c is then done
 * without calling back.  0, or the status to finish c with. */
int sess_cmd_resend(struct sess *to, struct sess_cmd *c, int asking);

#endif
