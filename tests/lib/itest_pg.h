/*
 * itest_pg.h -- what the C integration tests of store/ share (cmocka
 * tests): a database of the test's own on the server tests/run started
 * (PG_DSN), migrated, with a temp dir, a crypto key and an event base;
 * blocking statements on that database that fail the test when PostgreSQL
 * refuses them; store_pool transactions and store/ calls run to their one
 * callback; a registration record as the flows make it.
 */
#ifndef ITEST_PG_H
#define ITEST_PG_H

#include <stddef.h>

#include <libpq-fe.h>

#include "store/store.h"

struct event_base;

struct itest_env {
    char admin_dsn[1024]; /* PG_DSN as given */
    char dsn[1024];       /* the test's own database */
    char dbname[64];      /* its name: PREFIX_PID */
    const char *mig_dir;  /* STORE_MIGRATIONS, or the tree's */
    PGconn *db;           /* blocking, as the owner, for checking rows */
    char tmp[128];        /* a temp dir of the test's own */
    char key_file[256];   /* tmp/key: a new crypto key */
    struct event_base *base;
};

/* For a group setup: database PREFIX_PID made on PG_DSN's server,
 * migrated and connected to, the temp dir, the key and the base.  0, or
 * -1 with a line on stderr that names prog. */
int itest_env_new(struct itest_env *e, const char *prog, const char *prefix);

/* For a group teardown: the base freed, the database dropped (WITH FORCE),
 * the temp dir removed.  Also after a failed itest_env_new.  0 or -1. */
int itest_env_free(struct itest_env *e);

/* q run on PG_DSN's own database (CREATE, ALTER and DROP DATABASE, roles);
 * the test fails when it is refused. */
void itest_admin(const struct itest_env *e, const char *q);

/* The conninfo string dsn with its dbname replaced by db, each value
 * quoted, in out (cap bytes). */
void itest_dsn_with_db(const char *dsn, const char *db, char *out, size_t cap);

/* q with n text parameters (the const char * after n; with none, q may
 * hold several statements) on the test's database, as the owner: its
 * (last) result, which the caller frees (PQclear); the test fails when it
 * is refused. */
PGresult *itest_sql(const struct itest_env *e, const char *q, int n, ...);

/* The first value of q's one row (n text parameters, as above), in a
 * static buffer the next call reuses; the test fails on an error or on
 * another number of rows. */
const char *itest_sql1(const struct itest_env *e, const char *q, int n, ...);

/* One store_pool transaction's outcome, copied out of the borrowed result
 * by itest_tx_cb (arg: this): the first column of the first four rows of
 * its first four statements. */
struct itest_tx {
    int calls, status, failed, unknown, ntuples[4];
    long long affected[4];
    char sqlstate[8], errstr[256];
    char v[4][4][128]; /* statement, row */
    int isnull[4][4];
};

void itest_tx_cb(int status, const struct store_tx_result *res, void *arg);

/* For itest_run_until: true once the callback came (arg: struct
 * itest_tx). */
int itest_tx_called(void *arg);

/* For itest_run_until: true once p has n connections up (arg: this). */
struct itest_pool_want {
    struct store_pool *p;
    int n;
};
int itest_pool_connected(void *arg);

/* A pool of n connections to the test's database on e's base, its
 * transactions acting as role (NULL: as the login), started and connected
 * (5 s at most); the test fails otherwise.  Caller frees
 * (store_pool_free). */
struct store_pool *itest_pool_up(const struct itest_env *e, int n,
                                 int timeout_ms, int max_waiting,
                                 const char *role);

/* tx run on p and its one callback waited for (5 s at most), which must
 * not come from inside the call: the outcome. */
struct itest_tx itest_tx_wait(const struct itest_env *e, struct store_pool *p,
                              const struct store_tx *tx);

/* One store/ call's outcome (store_submit, store_ping, ...), copied out
 * of the borrowed result by itest_rec_cb (arg: this). */
struct itest_rec {
    int calls, status, duplicate, id_shared;
    enum store_rec_status rstatus;
    char ref[32], reason[128], lang[12];
};

void itest_rec_cb(int status, const struct store_result *res, void *arg);

/* For itest_run_until: true once the callback came (arg: struct
 * itest_rec). */
int itest_rec_called(void *arg);

/* For itest_run_until: true once all n outcomes have come (arg: this). */
struct itest_rec_all {
    struct itest_rec *o;
    int n;
};
int itest_rec_all_called(void *arg);

/* For itest_run_until: true once s has n connections up (arg: this). */
struct itest_store_want {
    struct store *s;
    int n;
};
int itest_store_connected(void *arg);

/* A store of pool connections to the test's database on e's base, with
 * e's key, started and connected (5 s at most); the test fails otherwise.
 * Caller frees (store_free). */
struct store *itest_store_up(const struct itest_env *e, int pool,
                             int timeout_ms, int max_waiting);

/* A registration record as flow_record_json() makes it, in buf (cap
 * bytes): idempotency key key (R and its first nine characters in upper
 * case make the reference), a fixed name and answers, district, and
 * id_type ("nid" or "passport") with the number id.  snprintf's return. */
int itest_record(char *buf, size_t cap, const char *key, const char *msisdn,
                 const char *district, const char *id_type, const char *id);

#endif
