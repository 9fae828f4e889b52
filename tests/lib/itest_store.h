/*
 * itest_store.h -- what the C integration tests of gw_store.c share
 * (test_gw_store.c, test_gw_cli.c; cmocka tests): a worker forked on the
 * PostgreSQL and Redis tests/run started (PG_DSN, REDIS_PORT) that plays a
 * plan of actions and writes what each got back to shared memory.
 *
 * itest_store_run() forks a worker (gw_worker_run_with()) with
 * itest_store.cfg whose start hook plays itest_store.plan: wait until
 * Redis (and, if asked, the "postgres" health probe) is up, then run its
 * steps one by one -- optionally some SQL first, as an officer would, or a
 * table lock held while the action runs so that PostgreSQL is slow, or
 * Redis stopped (SIGSTOP) for a while -- and write what each
 * gw_action_run() call returned and what its callback got (status, ref,
 * outcome, reason, time taken, and whether it came from inside the call)
 * to itest_store.shm.  At the end it may wait until the worker's drainer
 * has emptied the queue, then sends itself SIGTERM.  The test side checks
 * those results, the rows (itest_store.pg: a database of the test's own,
 * migrated, and a crypto key), and the Redis list with a plain hiredis
 * connection.
 *
 * Failures inside a test are cmocka's (fail_msg, assert_*); the group
 * setup's are a line on stderr and -1, as cmocka wants them.  Under SAN=1
 * a worker that leaks exits non-zero, which itest_store_check_ran()
 * catches.
 */
#ifndef ITEST_STORE_H
#define ITEST_STORE_H

#include <stddef.h>
#include <sys/types.h>

#include "gateway/gw_int.h"
#include "tests/lib/itest_pg.h"

#define ITEST_STORE_STEPS    16
#define ITEST_STORE_REQ_MS   1000 /* limits.request_timeout_ms by default */
#define ITEST_STORE_REDIS_MS 300  /* redis.timeout_ms */

/* One action of a plan. */
struct itest_store_step {
    const char *action; /* NULL: the end */
    const char *record;
    const char *sql;     /* run before the action, or NULL (not with lock) */
    const char *lock;    /* held (in a transaction) while the action runs; a
                            LOCK ... NOWAIT, tried on every tick until taken */
    long unlock_ms;      /* 0: until the callback; else this long */
    long pause_redis_ms; /* Redis stopped (SIGSTOP) from the action's
                            start for this long (needs REDIS_PID) */
};

/* What the worker saw of one step. */
struct itest_store_got {
    int rc;     /* gw_action_run() */
    int calls;  /* callbacks */
    int inside; /* a callback came from inside gw_action_run() */
    int sql_ok; /* the step's SQL and lock went through */
    struct gw_act_result res;
    long ms; /* call to callback */
};

/* What the worker saw, in memory shared with the test. */
struct itest_store_shared {
    int started;  /* the start hook ran */
    int ready;    /* the waits before the first step ended well */
    int probe;    /* the "postgres" probe: 0 up, -1 down, 2 none */
    int steps;    /* steps finished */
    int drained;  /* the queue was seen empty at the end */
    int finished; /* the plan ran to its end */
    struct itest_store_got got[ITEST_STORE_STEPS];
};

struct itest_store_env {
    struct itest_env pg;   /* the database (dbname gwstore_PID), tmp, key */
    struct gw_config base; /* config/remigate.conf */
    struct gw_config cfg;  /* the next worker's: see itest_store_setup */
    struct {
        struct itest_store_step steps[ITEST_STORE_STEPS];
        int wait_pg;      /* wait until the "postgres" probe says up */
        int wait_redis;   /* wait until the session store is connected */
        int wait_drained; /* at the end, wait until the queue is empty */
    } plan;
    struct itest_store_shared *shm; /* the last worker's results */
    char log[160];                  /* the worker's stderr */
    int redis_port;                 /* REDIS_PORT */
    pid_t redis_pid;                /* REDIS_PID, or 0 */
    pid_t worker;                   /* -1: none running */
};

extern struct itest_store_env itest_store;

/* cmocka group setup: the shared memory, config/remigate.conf, the
 * database, the temp dir and the key (itest_env_new).  0, or -1 with a
 * line on stderr. */
int itest_store_group_setup(void **state);

/* cmocka group teardown: the database dropped, the temp dir removed
 * (kept with REMIGATE_TEST_KEEP).  0 or -1. */
int itest_store_group_teardown(void **state);

/* cmocka setup: itest_store.cfg is the shipped config on the test's
 * database with its key, Redis on REDIS_PORT, a request deadline of
 * ITEST_STORE_REQ_MS, redis.timeout_ms ITEST_STORE_REDIS_MS,
 * postgres.timeout_ms 5 s and a Redis prefix of the test's own; the plan
 * is empty and waits for Redis only.  0. */
int itest_store_setup(void **state);

/* cmocka teardown: a worker still running is killed.  0. */
int itest_store_teardown(void **state);

/* Registration (submit_registration), update_skills and status_lookup
 * records in flow_record_json()'s shape, in buffer slot (0 ..
 * ITEST_STORE_STEPS - 1), which the next call with that slot reuses.  The
 * registration's name is "Rahima Begum" and its national ID number
 * "1234567890". */
const char *itest_store_rec_reg(int slot, const char *key, const char *ref,
                                const char *msisdn);
const char *itest_store_rec_skills(int slot, const char *key, const char *ref,
                                   const char *msisdn);
const char *itest_store_rec_lookup(int slot, const char *msisdn);

/* *st set to run action on record, after sql or holding lock (either may
 * be NULL); no unlock time, no Redis pause. */
void itest_store_step(struct itest_store_step *st, const char *action,
                      const char *record, const char *sql, const char *lock);

/* Run the plan in a worker with itest_store.cfg, its log emptied first
 * and the shared memory zeroed: its exit status (-1 if it took over
 * 30 s). */
int itest_store_run(void);

/* The worker's log as a string (static buffer). */
const char *itest_store_log(void);

/* Fail the test unless the worker exited 0 (rc) having run the plan to
 * its end. */
void itest_store_check_ran(int rc);

/* Fail the test unless step i's call returned 0 and its callback came
 * once, later, with status and ref, and its SQL and lock went through. */
void itest_store_check_got(int i, int status, const char *ref);

/* Fail the test unless steps from .. to - 1 each had their callback after
 * lo ms or more and less than hi ms. */
void itest_store_check_ms(int from, int to, long lo, long hi);

/* The queue under itest_store.cfg's Redis prefix: its length, and its
 * first item in first (NUL-terminated, cap bytes) when first is not NULL
 * and there is one. */
long long itest_store_queue(char *first, size_t cap);

/* Fail the test unless item is record sealed with the test's key: no
 * name or ID number in clear, and it opens to the record. */
void itest_store_check_sealed(const char *item, const char *record);

#endif
