/*
 * store_pg_int.h -- private to the records store's files: store_pg.c (the
 * public calls and the requests), store_pg_conn.c (the connections, the
 * statements and the batches) and store_pg_rec.c (a record's JSON read
 * into a request).
 */
#ifndef STORE_PG_INT_H
#define STORE_PG_INT_H

#include <sys/queue.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "store/store_int.h"

#define STORE_MAGIC          0x53544f52u
#define STORE_REQ_MAGIC      0x53524551u
#define STORE_CONN_MAGIC     0x53434f4eu
#define STORE_BACKOFF_MIN_MS 100
#define STORE_BACKOFF_MAX_MS 5000
#define STORE_CONNECT_MIN_MS 2000
#define STORE_BATCH_MAX      64

enum store_conn_state {
    STORE_CONN_DOWN,       /* no connection; timer = next attempt */
    STORE_CONN_CONNECTING, /* PQconnectPoll; timer = connect deadline */
    STORE_CONN_SETUP,      /* preparing statements */
    STORE_CONN_IDLE,
    STORE_CONN_BUSY /* running req */
};

enum store_req_kind {
    STORE_REQ_REGISTER,
    STORE_REQ_SKILLS,
    STORE_REQ_PART,
    STORE_REQ_STATUS,
    STORE_REQ_PING
};

/* The step whose result is awaited. */
enum store_step {
    STORE_STEP_START,
    STORE_STEP_BEGIN,
    STORE_STEP_INSERT,
    STORE_STEP_APPLY,
    STORE_STEP_DUP,
    STORE_STEP_COMMIT,
    STORE_STEP_ROLLBACK,
    STORE_STEP_READ /* status or ping: one statement */
};

struct store_conn;

struct store_req {
    unsigned magic;
    struct store *s;
    TAILQ_ENTRY(store_req) link;
    int queued;
    struct store_conn *conn;
    struct event *deadline;
    store_submit_cb *cb;
    void *arg;
    enum store_req_kind kind;
    enum store_step step;
    int status;     /* outcome so far */
    int timeout_ms; /* its deadline */
    int keep;       /* store_submit_opts.keep_unregistered */
    int unknown;    /* failed with the COMMIT on its way */
    int solo;       /* never in a batch (one already failed with it) */

    /* parameters, owned */
    char key[72], flow[32], ref[24], msisdn[20], lang[12], channel[8];
    char started[24], sub_id[24], sleep_ms[16];
    char *answers; /* redacted JSON text */
    unsigned char nid_enc[STORE_ENC_MAX], nid_hash[STORE_HASH_BYTES];
    unsigned char pp_enc[STORE_ENC_MAX], pp_hash[STORE_HASH_BYTES];
    int nid_enc_len, pp_enc_len; /* 0: none */
    unsigned char *pers_enc;     /* the other personal answers, encrypted */
    unsigned char pers_hash[STORE_HASH_BYTES]; /* their keyed hash */
    int pers_enc_len;                          /* 0: none */

    /* result */
    int duplicate, id_shared;
    enum store_rec_status rstatus;
    char ref_out[24], reason[256], lang_out[12], errstr[160];
};

TAILQ_HEAD(store_req_list, store_req);

struct store_conn {
    unsigned magic;
    struct store *s;
    enum store_conn_state state;
    struct store_link l;
    int setup_next;        /* next statement to prepare */
    PGresult *res;         /* result of the command in flight */
    struct store_req *req; /* the request whose step is in flight */
    /* a batch: registrations sharing one transaction, run one after the
     * other (req is batch[bi]); nbatch 0 when req runs alone */
    struct store_req *batch[STORE_BATCH_MAX];
    int nbatch, bi;
    enum store_step req_step; /* set by store_conn_detach() */
};

struct store {
    unsigned magic;
    struct event_base *base;
    char *dsn;
    int pool, timeout_ms, max_waiting, batch;
    int running;
    struct store_keys *keys; /* sodium_malloc: locked, not in core dumps */
    struct store_conn *conns;
    struct store_req_list waiting;
    int nwaiting;
    struct event *kick;
    char errstr[256];
};

/* ------------------------------------------------------------------------
 * store_pg.c
 */

/* Remember a libpq message in s->errstr, on one line. */
void store_set_err(struct store *s, const char *what, const char *msg);
/* The status column's word as an enum (STORE_REC_NONE if unknown). */
enum store_rec_status store_rec_status_parse(const char *s);
/* r is detached from every list and connection: run its callback and
 * free it. */
void store_req_complete(struct store_req *r);
/* Take r off the waiting list if it is on it. */
void store_req_unqueue(struct store_req *r);

/* ------------------------------------------------------------------------
 * store_pg_conn.c
 */

/* A connection's socket and timer callbacks (arg: the struct store_conn). */
void store_conn_on_io(evutil_socket_t fd, short what, void *arg);
void store_conn_on_timer(evutil_socket_t fd, short what, void *arg);
/* Take c's request, or every request of its batch, off c into reqs
 * (STORE_BATCH_MAX), each with conn NULL; c->req_step keeps the step that
 * was in flight.  Returns how many. */
int store_conn_detach(struct store_conn *c, struct store_req **reqs);
/* Close c's connection (if any), settle its state, plan the next attempt
 * when the store runs, then fail its request (or batch) with status. */
void store_conn_drop(struct store_conn *c, int status, const char *why);
/* Hand waiting requests to idle connections. */
void store_dispatch(struct store *s);

/* ------------------------------------------------------------------------
 * store_pg_rec.c
 */

/* Is s made of allowed characters only, min..max of them? */
int store_str_chars(const char *s, const char *allowed, size_t min, size_t max);
/* Read record_json (a finished flow's record) into r: its fields, the
 * redacted answers, the ID numbers' hashes and ciphertexts, the other
 * personal answers encrypted with s's keys.  0 or a STORE_E* code. */
int store_req_parse(struct store *s, struct store_req *r, const char *json,
                    size_t len);

#endif
