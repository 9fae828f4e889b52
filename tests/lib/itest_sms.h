/*
 * itest_sms.h -- what the C integration tests of SMS out and delivery
 * reports share (test_sendsms.c, test_dlr.c; cmocka tests): a forked
 * worker on the database tests/run started (PG_DSN), with a stand-in for
 * Kannel's sendsms on the worker's own event base.
 *
 * The stand-in's listening socket is made before the fork, so that the
 * worker's config can name it.  It writes every request it gets to a log
 * file -- headers, the body as hex -- and answers as the message's number
 * says:
 *
 *   ITEST_SMS_N_BN     Bangla confirmation  202 "0: Accepted for delivery"
 *   ITEST_SMS_N_EN     English reply        503 first, then 202 "3: Queued..."
 *   ITEST_SMS_N_EARLY  a report first       calls the dlr-url itself (type 8)
 *                                           and answers 202 only after that
 *   ITEST_SMS_N_DENY   refused              403 (final: not tried again)
 *
 * The worker's start hook sends the four through gw_sms_send() and logs
 * each callback's status ("SENT to=NUMBER status=N"), the early report's
 * answer ("DLRFIRST code=N"), and "STARTED db=0|1".  The tests read the
 * log and the sms_out rows, and play Kannel's delivery reports with the
 * dlr-url the worker generated.  This is not the real Kannel: tests/e2e
 * drives that.
 */
#ifndef ITEST_SMS_H
#define ITEST_SMS_H

#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "gateway/gw_int.h"

#define ITEST_SMS_TXT_BN  "আপনার নিবন্ধন সম্পন্ন হয়েছে। রেফারেন্স: RA10000000"
#define ITEST_SMS_TXT_EN  "Your reference is RA20000000. Reply HELP for help."
#define ITEST_SMS_N_BN    "8801711000001"
#define ITEST_SMS_N_EN    "8801711000002"
#define ITEST_SMS_N_EARLY "8801711000003"
#define ITEST_SMS_N_DENY  "8801711000004"
#define ITEST_SMS_SECRET  "s3cret-key_1" /* kannel.secret: the reports' key */

struct itest_sms_env {
    struct gw_config cfg; /* the worker's */
    char tmp[64], log[96], key[96];
    char dsn[GW_STR_MAX]; /* PG_DSN */
    int kannel_fd;        /* the stand-in's listening socket */
    int port;             /* the worker's */
    pid_t worker;         /* -1: none running (itest_child_wait) */
    PGconn *db;           /* blocking, for checking rows */
};

extern struct itest_sms_env itest_sms;

/* cmocka group setup: the temp dir, a key, the database migrated and
 * connected to, config/remigate.conf with the stand-in's credentials,
 * and a worker with the database started, once each of the four
 * messages has its verdict in the log.  0, or -1 with a line on
 * stderr. */
int itest_sms_setup(void **state);

/* cmocka group teardown: a worker still running gets SIGTERM and must
 * exit 0 within 8 s (under SAN=1, without a leak); the database
 * connection closed, the temp dir removed (kept with
 * REMIGATE_TEST_KEEP).  0, or -1 when the worker did not stop so. */
int itest_sms_teardown(void **state);

/* Fork a worker with itest_sms.cfg, with the database or without (no
 * pg_dsn), the log emptied first.  0 or -1. */
int itest_sms_worker_start(int with_db);

/* The whole log, NUL-terminated, in a static buffer the next call
 * reuses. */
const char *itest_sms_log_text(void);

/* How many lines of the log contain n1 and n2 (n2 NULL: n1 alone). */
int itest_sms_log_count(const char *n1, const char *n2);

/* Wait (5 s at most) until a line has n1 and n2: 1, or 0 when none
 * came. */
int itest_sms_log_wait(const char *n1, const char *n2);

/* The value of field name= in the first line with n1 and n2, in out (cap
 * bytes); "" when there is none. */
void itest_sms_log_field(const char *n1, const char *n2, const char *name,
                         char *out, size_t cap);

/* The bytes of s as lower-case hex, in out (2 * strlen(s) + 1 bytes). */
void itest_sms_hex(const char *s, char *out);

/* GET path from the worker: the status, or -1. */
int itest_sms_get(const char *path);

/* GET each of paths[0..n) (n <= 64) at once, each on a connection of its
 * own (every request written before any answer is read): the statuses in
 * status[] (-1: none). */
void itest_sms_get_all(const char *const *paths, int n, int *status);
/* GET path: the status, and the whole answer (head and body, cut to cap -
 * 1 bytes) in answer. */
int itest_sms_fetch(const char *path, char *answer, size_t cap);

/* The dlr-url the worker gave for number, filled as Kannel would for a
 * report (type, answer and ts as they go in the URL), as a path on the
 * worker ("/kannel/dlr?...") in out (cap bytes); the test fails when
 * there is none. */
void itest_sms_dlr_path(const char *number, const char *type,
                        const char *answer, const char *ts, char *out,
                        size_t cap);

/* The id in the dlr-url the worker gave for number; the test fails when
 * there is none or it is not a UUID. */
void itest_sms_msg_id(const char *number, char id[40]);

/* One value (expr) of the sms_out row of number's message, "" for NULL,
 * in out (cap bytes); the test fails unless there is exactly one row. */
void itest_sms_row(const char *number, const char *expr, char *out, size_t cap);

/* Fail the test unless expr of number's row is want within 5 s (the row
 * gets Kannel's answer after the caller's callback). */
void itest_sms_assert_row(const char *number, const char *expr,
                          const char *want);

#endif
