/*
 * con_records_int.h -- private to the record files of console/: the queue
 * (con_queue.c), one record and /reveal (con_records.c), the decisions
 * (con_decisions.c).  A request's state and the helpers they share.
 */
#ifndef CON_RECORDS_INT_H
#define CON_RECORDS_INT_H

#include <stddef.h>

#include <jansson.h>

#include "console/con_int.h"

#define REC_REASON_MAX 200 /* bytes of a free-text reason (reveal, reopen) */
#define REC_FLOW       "register" /* the flow whose answers a record holds */

/* Audit row columns as con_audit_add() writes them. */
#define REC_AUDIT_COLS                                                         \
    "INSERT INTO audit_log (actor, actor_id, role, source, action, target,"    \
    " outcome, detail) "

struct con_rec_action;

/* A request's own state, in its memory (gw_req_alloc). */
struct con_rec_ctx {
    unsigned magic;
    const struct con_rec_action *act; /* a decision's (con_decisions.c) */
    const char *audit_action;         /* of a decision that failed */
    char ref[CON_PARAM_MAX];
    json_t *out;     /* the answer being built (owned) */
    char audit[512]; /* detail of the audit row still to write */
    int status;      /* HTTP status to answer after the audit row */
};

/* con_records.c */

/* Is s one of the strings of list (NULL-terminated; NULL: none)?  1/0. */
int con_rec_in(const char *const *list, const char *s);
/* The call's state, ref from its first "{}"; NULL (and a 500 answered)
 * out of memory. */
struct con_rec_ctx *con_rec_ctx_new(struct con_call *call);
/* The state con_rec_ctx_new() gave the call (asserted). */
struct con_rec_ctx *con_rec_ctx_of(struct con_call *call);
/* Answer with x->out (taken) at x->status. */
void con_rec_reply_out(struct con_call *call, struct con_rec_ctx *x);
/* Drop x->out and answer a failed transaction (con_reply_store_error). */
void con_rec_fail(struct con_call *call, struct con_rec_ctx *x, int status,
                  const struct store_tx_result *res);
/* Write the audit row x->audit describes (action, outcome given), then
 * answer x->out at x->status. */
void con_rec_audit_then_reply(struct con_call *call, struct con_rec_ctx *x,
                              const char *action, const char *outcome);
/* Append to tx an audit statement of the record files (sql: REC_AUDIT_COLS
 * and a SELECT of $1 the reference, $2 the officer's id, $3 username, $4
 * role, $5 the source address). */
void con_rec_audit_stmt(const struct con_call *call,
                        const struct con_rec_ctx *x, struct store_tx *tx,
                        const char *sql);
/* Lower-case hex of b[0..n) into out (2n + 1 bytes). */
void con_rec_hex(const unsigned char *b, size_t n, char *out);
/* A number's text as a JSON integer; NULL as null. */
json_t *con_rec_int_or_null(const char *v);

/* con_queue.c: the queue's filter checks that a correction reuses. */

/* A lower-case code of a list ([a-z0-9_], at most 32 bytes)?  1/0. */
int con_rec_code_ok(const char *v);
/* A district code ([A-Z0-9-], at most 16 bytes)?  1/0. */
int con_rec_district_ok(const char *v);

#endif
