/*
 * gw_int.h -- private to gateway/: the request and server structs, the
 * route table, the handlers and the start/stop hooks of the parts of the
 * daemon that live in other gateway files.  Nothing outside gateway/
 * includes this.
 */
#ifndef GW_INT_H
#define GW_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "gateway/gw.h"
#include "gateway/gw_assert.h"

struct evhttp;
struct evhttp_connection;
struct bufferevent;
struct evhttp_request;
struct evhttp_bound_socket;
struct event;
struct sess;
struct gw_records;
struct gw_ussd;
struct gw_sendsms;

/* Memory handed out by gw_req_alloc(), freed with the request.  Chunks of
 * more than 2 KiB, up to 128 KiB, have a power-of-two size (cls: its log2,
 * GW_SPARE_MIN_CLS..GW_SPARE_MAX_CLS) and go back to their worker's spares
 * (struct gw_server) when the request ends, so a step's large buffers do not
 * make the heap grow and shrink (sbrk, page faults) on every request. */
struct gw_req_chunk {
    struct gw_req_chunk *next;
    unsigned cls; /* 0: plain malloc() */
    max_align_t data[];
};

/* Under AddressSanitizer chunks are freed, never kept: a use after the
 * end of a request is then still reported. */
#ifdef __SANITIZE_ADDRESS__
#define GW_RECYCLE 0
#else
#define GW_RECYCLE 1
#endif

#define GW_SPARE_MIN_CLS 12         /* 4 KiB */
#define GW_SPARE_MAX_CLS 17         /* 128 KiB */
#define GW_SPARE_BYTES   (2u << 20) /* kept for reuse per worker, at most */

#define GW_REQ_MAGIC 0x6a7e0b51u

struct gw_req {
    unsigned magic;
    struct gw_server *srv;        /* borrowed */
    struct evhttp_request *ev;    /* NULL once the client is answered */
    const struct gw_route *route; /* NULL until routed */
    unsigned method;              /* GW_METHOD_* */
    char id[32];
    char peer[64];
    char *path;  /* raw, NUL-terminated */
    char *query; /* raw, "" when none */
    size_t query_len;
    char *body; /* NUL-terminated copy */
    size_t body_len;
    struct gw_params params; /* for the *_or_4xx helpers */
    int have_params;
    struct timespec t0; /* CLOCK_MONOTONIC at arrival */
    struct event *deadline;
    gw_deadline_cb *on_deadline;
    void *on_deadline_arg;
    int status;         /* sent, once answered */
    unsigned hold;      /* frames inside r (gw_req_enter()) */
    unsigned ended : 1; /* the handler's one reply came: free at hold 0 */
    unsigned answered : 1;
    unsigned in_deadline : 1;
    unsigned timed_out : 1;
    unsigned streaming : 1; /* gw_reply_start() came, gw_reply_end() not */
    struct gw_req_chunk *chunks;
    TAILQ_ENTRY(gw_req) list; /* srv->reqs */
};

TAILQ_HEAD(gw_req_list, gw_req);

#define GW_PROBES_MAX 8
#define GW_HOOKS_MAX  8
#define GW_ROUTES_MAX 64

struct gw_probe {
    char name[32];
    gw_health_probe_cb *probe;
    void *arg;
};

/* A probe's answer to give once its check comes back: gw_probe_wait_new()
 * (NULL, after done(-1, done_arg), when out of memory), then
 * gw_probe_wait_end() once, which answers (up when ok) and frees it. */
struct gw_probe_wait {
    gw_health_done_cb *done;
    void *arg;
};
struct gw_probe_wait *gw_probe_wait_new(gw_health_done_cb *done,
                                        void *done_arg);
void gw_probe_wait_end(struct gw_probe_wait *w, int ok);

struct gw_reload_hook {
    gw_reload_cb *cb;
    void *arg;
};

struct gw_stop_hook {
    gw_stop_cb *cb;
    void *arg;
};

struct gw_drain_hook {
    gw_drain_cb *cb;
    void *arg;
};

/* One client connection, from accept() to close (gw_conn.c).  It is
 * created when evhttp asks for its bufferevent, right after accept(), and
 * adopted (its evhttp connection found) once evhttp has set it up.  While
 * no request of it is in a handler it waits for a request: its deadline
 * (listen.header_timeout_ms) runs, bytes do not extend it, and it may be
 * closed to make room for a new connection, oldest first.  A connection
 * that has carried a request waits listen.keepalive_ms for the first byte
 * of the next (next fires on it), then header_timeout_ms for the rest. */
struct gw_conn {
    unsigned magic;
    struct gw_server *srv;
    struct bufferevent *bev;         /* a reference until adopted */
    struct evhttp_connection *evcon; /* NULL until adopted */
    struct event *deadline;
    struct event *next; /* the next request's first byte, while kept alive */
    int busy;           /* a request of it is in the dispatcher's hands */
    int linger;         /* closed with unread input: read it off first */
    unsigned long nreq; /* requests it brought */
    TAILQ_ENTRY(gw_conn) list; /* srv->fresh or srv->waiting, or none */
};

TAILQ_HEAD(gw_conn_list, gw_conn);

#define GW_CONN_MAGIC 0x3c0aa7e5u

/* Open addressing map of adopted connections, by evhttp connection. */
struct gw_connset {
    struct gw_conn **slot;
    size_t cap, n;
};

#define GW_SERVER_MAGIC 0x5e7e2c11u

struct gw_server {
    unsigned magic;
    const struct gw_config *cfg; /* borrowed */
    int worker;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound; /* NULL once stopped accepting */
    int listen_fd;
    struct event *sig_term, *sig_int, *sig_hup;
    struct event *drain_timer;
    int accepting;   /* the listener is on */
    int backoff;     /* accept() failed: off until backoff_timer */
    long backoff_ms; /* the last pause (100..500 ms), 0: none */
    struct event *backoff_timer;
    struct event *adopt; /* adopts srv->fresh, from the loop */
    size_t max_conns;    /* max_connections, or less to fit the fd limit */
    size_t nconns;       /* connections open (fresh and adopted) */
    struct gw_conn_list fresh;   /* accepted, not adopted yet */
    struct gw_conn_list waiting; /* waiting for a request, oldest first */
    struct gw_log_limit accept_log, conn_log, refused_log;
    size_t nlinger; /* closed connections still read off (gw_linger) */
    TAILQ_HEAD(gw_linger_list, gw_linger) lingers;
    int stopping;            /* SIGTERM seen: draining */
    struct timespec stop_t0; /* when */
    size_t pending;          /* the drain hooks' last count */
    int finished;            /* stop hooks ran, loop exiting */
    uint64_t seq;            /* request ids */
    pid_t pid;               /* the worker's, for request ids */
    /* request chunks kept for reuse, by size class (gw_req_alloc()) */
    struct gw_req_chunk *spare[GW_SPARE_MAX_CLS + 1];
    size_t spare_bytes;
    size_t in_flight;
    struct gw_req_list reqs;
    struct gw_connset conns;
    size_t nprobes;
    struct gw_probe probes[GW_PROBES_MAX];
    size_t nreload, nstop, ndrain;
    struct gw_reload_hook reload[GW_HOOKS_MAX];
    struct gw_stop_hook stop[GW_HOOKS_MAX];
    struct gw_drain_hook drain[GW_HOOKS_MAX];
    size_t nroutes;
    struct gw_route routes[GW_ROUTES_MAX]; /* gw_server_route() */
    struct gw_ussd *ussd;       /* the dialogue endpoints (gw_ussd.c) */
    struct sess *sess;          /* the session store (gw_ussd.c owns it) */
    struct gw_records *records; /* the records (gw_store.c owns it) */
    struct gw_sendsms *sendsms; /* SMS out (gw_sendsms.c owns it) */
};

/* Run one worker on the listening socket fd until it is told to stop
 * (gw_http.c).  Takes ownership of fd.  Returns the exit status. */
int gw_worker_run(const struct gw_config *cfg, int fd, int worker);

/* The same, and once the built-in parts have started, start(srv, arg)
 * too (tests plug probes and hooks in here); non-zero stops the worker. */
typedef int gw_start_cb(struct gw_server *srv, void *arg);
int gw_worker_run_with(const struct gw_config *cfg, int fd, int worker,
                       gw_start_cb *start, void *arg);

/* ------------------------------------------------------------------------
 * Parts of the daemon that plug into each worker.  Each has a start hook
 * (called once the worker's event base and server exist, before the first
 * request; non-zero stops the worker) that may register health probes,
 * reload and stop hooks.
 */

/* gw_ussd.c: the dialogue endpoints.  Its start hook loads the flows and
 * creates srv->sess, and runs before gw_records_start(). */
int gw_ussd_start(struct gw_server *srv);
/* After the stop hooks ran: free what gw_ussd_start() made (also after a
 * start that failed halfway). */
void gw_ussd_fini(struct gw_server *srv);
void gw_kannel_mo_handle(struct gw_req *r);
void gw_ussd_at_handle(struct gw_req *r);

/* gw_store.c: what a finished flow's action does with its record
 * (PostgreSQL through store/, and a durable Redis queue through srv->sess
 * while PostgreSQL is away).  Its start hook creates srv->records. */
int gw_records_start(struct gw_server *srv);
void gw_records_fini(struct gw_server *srv);
struct store;

/* The store whose key seals what Redis keeps of dialogues and records
 * (store_sess_seal(), store_record_seal()), or NULL when crypto.key_file
 * is not set.  Borrowed; valid once gw_records_start() has run. */
const struct store *gw_records_keys(const struct gw_server *srv);

enum gw_act_status {
    GW_ACT_DONE = 0,       /* stored (or looked up) */
    GW_ACT_QUEUED,         /* PostgreSQL away: kept in the Redis queue */
    GW_ACT_NOT_REGISTERED, /* the number has no registration */
    GW_ACT_FAILED          /* neither stored nor queued: say "busy" */
};

struct gw_act_result {
    enum gw_act_status status;
    char ref[32];     /* the reference to show ("" if none) */
    char outcome[32]; /* status_lookup: pending|verified|rejected; "" */
    char reason[128]; /* status_lookup, rejected: the officer's reason */
    char lang[12];    /* status_lookup: the record's language; "" */
};

typedef void gw_act_cb(const struct gw_act_result *res, void *arg);

/* Run the action named by a finished flow ("submit_registration",
 * "update_skills", "status_lookup") on its record (flow_record_json()
 * output, NUL-terminated).  Returns 0 and calls cb exactly once, later, or
 * returns -1 (unknown action, bad record) and never calls back.  cb runs
 * before the request's deadline: a slow database means GW_ACT_QUEUED (for
 * writes) or GW_ACT_FAILED (for lookups). */
int gw_action_run(struct gw_server *srv, const char *action, const char *record,
                  size_t len, gw_act_cb *cb, void *arg);

/* gw_sendsms.c: SMS out through Kannel's sendsms; delivery reports in. */
int gw_sendsms_start(struct gw_server *srv);
void gw_sendsms_fini(struct gw_server *srv);
/* The sms_out pool gw_sendsms_start() made (borrowed), or NULL: no
 * database, or not started. */
struct store_sms *gw_sendsms_db(struct gw_server *srv);
/* gw_dlr.c: register GET /kannel/dlr (from gw_sendsms_start()).  0/-1. */
int gw_dlr_start(struct gw_server *srv);
/* Send a message whose sms_out row is already there under id (not written
 * again), with no callback: 0 or -1 as gw_sms_send(). */
int gw_sms_send_row(struct gw_server *srv, const char *id, const char *msisdn,
                    const char *text, int ucs2, const char *kind);
/* How many more messages gw_sms_send() would take now (0: none). */
size_t gw_sms_room(struct gw_server *srv);
/* gw_held.c: worker 0's look for held SMS that are due (from
 * gw_sendsms_start(), with a database); fini from gw_sendsms_fini(). */
int gw_held_start(struct gw_server *srv);
void gw_held_fini(struct gw_server *srv);
/* 0 Kannel took it; -1 it did not (after retries). */
typedef void gw_sent_cb(int status, void *arg);
/* Send text (UTF-8, borrowed, copied) to msisdn (E.164 digits) as UCS-2
 * when ucs2, else GSM 7-bit; kind ("reply", "confirmation", "notice",
 * "reminder") goes
 * to the log and the sms_out row, which is written before Kannel gets the
 * message.  Returns 0 and calls cb (may be NULL: fire and forget) exactly
 * once, later, never from inside the call -- also at shutdown, with -1 --
 * or returns -1 (not started, kannel.sendsms_url empty, bad arguments, too
 * many in flight) and never calls back. */
int gw_sms_send(struct gw_server *srv, const char *msisdn, const char *text,
                int ucs2, const char *kind, gw_sent_cb *cb, void *arg);
/* Record msisdn's STOP (out = 1) or START (out = 0) for programme
 * notices.  0 and cb once later (0 recorded, -1 not), or -1 now (no
 * database) and no callback. */
int gw_sms_optout(struct gw_server *srv, const char *msisdn, int out,
                  gw_sent_cb *cb, void *arg);
/* A reply of interest (a reply code or "1", borrowed) from msisdn: cb
 * once later with status 0 and outcome 0 (answers no notice), 1
 * (recorded), 2 (recorded before) or 3 ("1" with several open notices);
 * status -1 when it could not be recorded.  -1 now (no database) and no
 * callback. */
typedef void gw_interest_cb(int status, int outcome, void *arg);
int gw_sms_interest(struct gw_server *srv, const char *msisdn, const char *word,
                    gw_interest_cb *cb, void *arg);
void gw_kannel_dlr_handle(struct gw_req *r);

#endif
