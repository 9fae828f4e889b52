/*
 * store.h -- the record store: PostgreSQL through libpq's non-blocking API
 * on the daemon's libevent base, the schema migrations, and the encryption
 * of national ID and passport numbers (libsodium).
 *
 * Calling convention (hiredis style):
 * - An async call either fails now (returns a negative STORE_E* and never
 *   calls back) or returns 0 and calls its callback exactly once, later,
 *   from the event loop -- never from inside the call itself.
 * - store_stop() (and store_free() on a running store) calls every pending
 *   callback with STORE_EDOWN before it returns.
 * - The struct store_result given to a callback is borrowed: it and its
 *   strings are valid only until the callback returns.  It is never NULL.
 * - A callback may call store_submit(), store_status(), store_ping() and
 *   store_stop(); it must not call store_free().
 * - Every request carries its own deadline (the store's timeout_ms, or the
 *   one given to store_submit_with()): on expiry the callback gets
 *   STORE_ETIMEDOUT and the connection that ran it is closed and opened
 *   again, so a transaction whose COMMIT was not yet sent never commits.
 *   STORE_ETIMEDOUT and STORE_EDOWN after a query was sent mean "outcome
 *   unknown" only when res->unknown is set (the COMMIT was on its way);
 *   either way a retry with the same record is safe (the idempotency key).
 * - STORE_EDB is a server error that may pass (a deadlock, a cancelled
 *   query, a permission or schema problem); STORE_EREFUSED is one about
 *   the record itself (SQLSTATE class 22 data exception, 23 integrity
 *   constraint, 54 program limit): sending it again will fail again.
 * - libpq resolves a host name inside PQconnectStart(), which blocks: give
 *   the DSN an address (host=127.0.0.1 or hostaddr=...) for the daemon.
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>

struct event_base;
struct store;

#define STORE_STR_MAX    256
#define STORE_KEY_BYTES  32 /* master key in the key file */
#define STORE_HASH_BYTES 32 /* keyed BLAKE2b of an ID number */

/* Default folder of the migration files, relative to the working
 * directory. */
#define STORE_MIGRATIONS_DIR "store/migrations"

#define STORE_ERRORS(X)                                                        \
    X(STORE_OK, 0, "ok")                                                       \
    X(STORE_EINVAL, -1, "invalid argument or record")                          \
    X(STORE_ENOMEM, -2, "out of memory")                                       \
    X(STORE_EBUSY, -3, "too many requests waiting")                            \
    X(STORE_EDOWN, -4, "database not connected or store stopped")              \
    X(STORE_ETIMEDOUT, -5, "query deadline passed")                            \
    X(STORE_EDB, -6, "database error")                                         \
    X(STORE_ENOTREGISTERED, -7, "no record for this number")                   \
    X(STORE_ENOTFOUND, -8, "not found")                                        \
    X(STORE_ECRYPTO, -9, "key file or encryption error")                       \
    X(STORE_ESCHEMA, -10, "database schema older than this program")           \
    X(STORE_EREFUSED, -11, "the database refused the record for good")

enum store_err {
#define STORE_X_ENUM(name, val, text) name = (val),
    STORE_ERRORS(STORE_X_ENUM)
#undef STORE_X_ENUM
};

/* Text of a STORE_E* value ("unknown error" for others). */
const char *store_strerror(int err);

/* The review status of a returnee's record. */
enum store_rec_status {
    STORE_REC_NONE = 0, /* unknown (e.g. a duplicate whose record is gone) */
    STORE_REC_PENDING,
    STORE_REC_VERIFIED,
    STORE_REC_REJECTED,
    STORE_REC_NEEDS_INFO /* an officer asked the returnee for more */
};

/* "pending", "verified", "rejected", "needs_info" or "none". */
const char *store_rec_status_name(enum store_rec_status st);

struct store_config {
    const char *dsn;      /* libpq conninfo or URI; borrowed, copied */
    const char *key_file; /* 32 raw bytes or 64 hex chars; borrowed */
    int pool;             /* connections, 1..64 (0: 4) */
    int timeout_ms;       /* per-query deadline (0: 2000) */
    int max_waiting;      /* requests queued while all are busy (0: 1024) */
    int batch;            /* registrations that may share one transaction, 1..64
                             (0: 1, each alone): those waiting for a connection go
                             together, one COMMIT for all; when one fails, the batch
                             rolls back and each runs again alone */
};

/* What a completed request produced.  Borrowed by the callback. */
struct store_result {
    const char *ref;              /* the returnee's reference ("" if none) */
    int duplicate;                /* submit: already stored under this key */
    enum store_rec_status status; /* submit, status: the record's status */
    const char *reject_reason;    /* status: the officer's reason code when
                                     rejected or needs_info, else "" */
    const char *lang;             /* status: the record's language, or "" */
    int id_shared;                /* submit: other records with the same NID or
                                     passport (duplicate check, by keyed hash) */
    const char *errstr;           /* on failure: a short text without personal
                                     data, for the log; else "" */
    int unknown; /* STORE_ETIMEDOUT or STORE_EDOWN with the COMMIT sent and
                    not answered: it may have committed */
};

typedef void store_submit_cb(int status, const struct store_result *res,
                             void *arg);
typedef void store_status_cb(int status, const struct store_result *res,
                             void *arg);

/* A store for base with the settings in cfg (copied; cfg may go after the
 * call).  Reads the key file now.  Returns NULL with a message in err on a
 * bad config or key file.  Nothing connects before store_start(). */
struct store *store_new(const struct store_config *cfg, struct event_base *base,
                        char *err, size_t errlen);

/* Open the pool: each connection connects in the background and reconnects
 * with backoff whenever it drops.  Returns 0 or STORE_EINVAL if started. */
int store_start(struct store *s);

/* Close every connection; every pending callback gets STORE_EDOWN before
 * this returns.  A stopped store may be started again. */
void store_stop(struct store *s);

/* Stop (if running) and free.  NULL is a no-op.  Not from a callback. */
void store_free(struct store *s);

/* Number of connections that are up and ready (0: PostgreSQL is down as far
 * as we know).  For /healthz and for deciding to queue elsewhere. */
int store_connected(const struct store *s);

/* The last connection or server error seen (no personal data), "" if none;
 * borrowed until the next call into s.  For logs and /healthz. */
const char *store_errstr(const struct store *s);

/* Store one completed flow: record_json is flow_record_json()'s output
 * (borrowed, copied before return; len bytes, need not be NUL-terminated).
 * action "submit_registration" inserts or replaces the returnee's profile
 * (status back to pending; answers it lacks that another part of the
 * registration saved are kept); action "submit_part" adds part 2 or 3 of
 * a registration to an existing record, and action "update_skills"
 * changes the skills of one (both: STORE_ENOTREGISTERED, and nothing
 * stored, if there is none).  An answer "id_number" is stored as the
 * "nid" or "passport" it is.  One transaction: the submission row (idempotency
 * key unique, the NID/passport number never in it) and the profile.  A record
 * already stored under its key changes nothing and gives duplicate = 1. Fails
 * now with STORE_EINVAL (malformed record), STORE_EDOWN (stopped or no
 * connection up), STORE_EBUSY (queue full), STORE_ENOMEM, STORE_ECRYPTO. */
int store_submit(struct store *s, const char *record_json, size_t len,
                 store_submit_cb *cb, void *arg);

/* How one submission differs from store_submit()'s. */
struct store_submit_opts {
    int timeout_ms;        /* this request's deadline (<= 0: the store's) */
    int keep_unregistered; /* update_skills for a number with no record:
                              keep the submission row (no profile to link
                              it to) and commit; the callback still gets
                              STORE_ENOTREGISTERED */
};

/* store_submit() with opts (borrowed; NULL: the defaults). */
int store_submit_with(struct store *s, const char *record_json, size_t len,
                      const struct store_submit_opts *opts, store_submit_cb *cb,
                      void *arg);

/* The record of msisdn (E.164 digits, borrowed): res->status, ->ref,
 * ->reject_reason and ->lang, or STORE_ENOTFOUND.  Fails now like
 * store_submit(). */
int store_status(struct store *s, const char *msisdn, store_status_cb *cb,
                 void *arg);

/* A round trip to the server that lasts at least sleep_ms there (0 for a
 * plain health check; > 0 lets tests hit the deadline).  Calls back 0. */
int store_ping(struct store *s, int sleep_ms, store_status_cb *cb, void *arg);

/* ------------------------------------------------------------------------
 * ID numbers (store_crypto.c)
 */

/* The keyed hash stored beside an encrypted ID number: BLAKE2b keyed with a
 * subkey of the master key, over the type ("nid" or "passport") and the
 * normalised number (NID: digits only; passport: letters upper-cased, no
 * spaces).  Returns 0, or STORE_EINVAL for an empty number or unknown
 * type. */
int store_id_hash(const struct store *s, const char *type, const char *number,
                  unsigned char out[STORE_HASH_BYTES]);

/* Decrypt an ID number column value (nonce || ciphertext) stored for
 * msisdn into out (NUL-terminated); returnees.personal_enc (a JSON object
 * of the record's other personal answers, e.g. {"name":"..."}) opens the
 * same way.  Returns 0, STORE_ECRYPTO when it does
 * not authenticate, or STORE_EINVAL when out is too small.  For officer
 * views; never log the result. */
int store_id_decrypt(const struct store *s, const unsigned char *enc,
                     size_t enclen, const char *msisdn, char *out,
                     size_t outlen);

/* Seal a record (flow_record_json() output) for the durable queue in
 * Redis: "rq1:" then base64 of a nonce and XChaCha20-Poly1305 of the
 * record under a subkey of the master key.  out gets a NUL-terminated
 * text; returns its length, or STORE_EINVAL when cap is too small (it
 * needs about 4/3 of len + 64). */
int store_record_seal(const struct store *s, const char *rec, size_t len,
                      char *out, size_t cap);

/* Open what store_record_seal() made into out (NUL-terminated): returns
 * the record's length, STORE_EINVAL if sealed is not a sealed record, or
 * STORE_ECRYPTO if it does not authenticate (another key, or altered). */
int store_record_open(const struct store *s, const char *sealed, size_t len,
                      char *out, size_t cap);

/* Seal what a Redis session keeps of a dialogue that may hold personal
 * answers (in[0..len)), bound to ad (the session's key, NUL-terminated,
 * borrowed): "ss1:" then base64 of a nonce and XChaCha20-Poly1305 under a
 * subkey of the master key of its own.  out gets a NUL-terminated text;
 * returns its length, or STORE_EINVAL when cap is too small (about 4/3 of
 * len + 64), STORE_ENOMEM. */
int store_sess_seal(const struct store *s, const char *ad, const char *in,
                    size_t len, char *out, size_t cap);

/* Open what store_sess_seal() made for ad into out (NUL-terminated):
 * returns its length, STORE_EINVAL if sealed is not "ss1:...",
 * STORE_ECRYPTO if it does not open (another key, another session's key,
 * altered, or out too small). */
int store_sess_open(const struct store *s, const char *ad, const char *sealed,
                    size_t len, char *out, size_t cap);

/* Seal a short secret of the console (a TOTP key: in[0..len)) bound to
 * ad (e.g. "totp:7", NUL-terminated): "sc1:" then base64 of a nonce and
 * XChaCha20-Poly1305 under the ID-number subkey, with "remigate secret "
 * before ad as associated data (so no ID-number column opens as one).
 * Returns the text's length, or STORE_EINVAL (cap too small). */
int store_secret_seal(const struct store *s, const char *ad, const char *in,
                      size_t len, char *out, size_t cap);

/* Open it into out (NUL-terminated; cap > the secret's length): returns
 * the length, STORE_EINVAL (not sealed so) or STORE_ECRYPTO (another key,
 * another ad, or altered). */
int store_secret_open(const struct store *s, const char *ad, const char *sealed,
                      size_t len, char *out, size_t cap);

/* Create a key file at path (mode 0600, 64 hex characters, fails if it
 * exists).  Returns 0 or -1 with a message in err. */
int store_keygen(const char *path, char *err, size_t errlen);

/* ------------------------------------------------------------------------
 * Migrations (store_migrate.c; blocking libpq -- CLI and start-up only,
 * never on the event loop)
 */

/* Apply the files dir/NNN_name.sql (dir NULL: STORE_MIGRATIONS_DIR) not yet
 * applied, in order, each in its own transaction, under an advisory lock,
 * recording (version, name, checksum) in schema_migrations.  A file whose
 * checksum differs from the one recorded when it was applied is an error.
 * Returns 0 or -1 with a message in err. */
int store_migrate(const char *dsn, const char *dir, char *err, size_t errlen);

/* `remigate migrate`: store_migrate() with a line per file applied on
 * stdout and errors on stderr.  Returns the process exit status. */
int store_migrate_main(const char *dsn, const char *dir);

/* Does the database hold every migration in dir (and none changed)?  0 if
 * so; STORE_ESCHEMA with a message naming `remigate migrate -c FILE` if it
 * is behind; STORE_EDOWN when it cannot connect; STORE_EINVAL on bad
 * files.  For the daemon's start-up. */
int store_migrate_check(const char *dsn, const char *dir, char *err,
                        size_t errlen);

/* ------------------------------------------------------------------------
 * SMS out (store_sms.c): the sms_out table of migration 002, one row per
 * message sent through Kannel's sendsms, with Kannel's answer and the
 * latest delivery report.
 *
 * A generic pool of its own (store_pool below: a few connections, each
 * request one statement in a transaction of its own): fails now or calls
 * back exactly once, later; every query has its own deadline (a late one
 * closes its connection); store_sms_stop() calls every pending callback
 * with STORE_EDOWN.  Unlike the record store, a request made while a
 * connection is still on its first attempt (just after start) waits for
 * it; with wait_ms, one made while every connection's last attempt failed
 * (PostgreSQL restarting or failing over) waits for the pool to connect
 * again (store_pool_config.wait_ms); STORE_EDOWN comes at once only when
 * stopped, or with wait_ms 0 when every connection's last attempt failed.
 */

struct store_sms;

struct store_sms_config {
    const char *dsn; /* borrowed, copied */
    int pool;        /* connections, 1..16 (0: 2) */
    int timeout_ms;  /* per-query deadline (0: 2000) */
    int max_waiting; /* requests queued while all are busy (0: 1024) */
    int wait_ms;     /* a request that finds no connection up waits this
                        long for one, never past its deadline (0: none).
                        An insert (no HTTP request waits for it: the
                        message goes out after it) has timeout_ms plus
                        wait_ms as its deadline, so it can wait all of
                        wait_ms and still have its whole query time */
    int linger_ms;   /* a report or an answer that finds no transaction of
                        them out waits this long for others to share one
                        (0..1000; 0: it leaves at once) */
};

/* What a completed request produced.  Borrowed by the callback. */
struct store_sms_result {
    int dlr_state;      /* dlr: the state recorded after it (0: none yet) */
    int changed;        /* dlr: this report moved the state forward */
    int interest;       /* interest: 0 no notice it answers, 1 recorded,
                           2 recorded before, 3 "1" with several open */
    const char *errstr; /* on failure: short, no message text; else "" */
};

typedef void store_sms_cb(int status, const struct store_sms_result *res,
                          void *arg);

/* A pool for base; nothing connects before store_sms_start().  NULL with
 * a message in err on a bad config. */
struct store_sms *store_sms_new(const struct store_sms_config *cfg,
                                struct event_base *base, char *err,
                                size_t errlen);
/* Connect in the background (and reconnect with backoff).  0 or
 * STORE_EINVAL if started. */
int store_sms_start(struct store_sms *q);
/* A stop is coming: from now on no call waits for company (linger_ms);
 * those waiting leave at once.  From the loop, not from a callback of q
 * (a batch that cannot start calls its calls back before this returns). */
void store_sms_drain(struct store_sms *q);
/* Close the pool; pending callbacks -- calls still waiting for company
 * (linger_ms) among them -- get STORE_EDOWN before it returns. */
void store_sms_stop(struct store_sms *q);
/* Stop and free; NULL is a no-op.  Not from a callback. */
void store_sms_free(struct store_sms *q);
/* Connections up and ready. */
int store_sms_connected(const struct store_sms *q);

/* Is id a UUID in text form (36 characters, lower or upper hex)?  1/0. */
int store_sms_id_valid(const char *id);

/* Record a message before it is handed to Kannel: id (a UUID, ours),
 * msisdn (E.164 digits), kind ("reply", "confirmation", "notice",
 * "reminder"), text
 * (UTF-8) and coding (0 GSM 7-bit, 2 UCS-2), all borrowed and copied.  A
 * row already there under id is left alone (a retry is harmless).  Fails
 * now with STORE_EINVAL, STORE_EDOWN, STORE_EBUSY or STORE_ENOMEM. */
int store_sms_insert(struct store_sms *q, const char *id, const char *msisdn,
                     const char *kind, const char *text, int coding,
                     store_sms_cb *cb, void *arg);

/* What came of handing id to Kannel: tries (requests made), the HTTP
 * status and body of the last answer (0 and "" when none came), and
 * whether Kannel accepted it (accepted_at) or it was given up
 * (failed_at).  STORE_ENOTFOUND when there is no such row. */
int store_sms_sent(struct store_sms *q, const char *id, int tries,
                   int http_status, const char *answer, int accepted,
                   store_sms_cb *cb, void *arg);

/* A delivery report for id: Kannel's DLR type (1, 2, 4, 8, 16, or 2 with
 * 0x20/0x40), the SMSC's receipt text (answer, may be "") and Kannel's
 * time of it (smsc_time, Unix seconds; < 0: none).  The state only moves
 * forward (see 002_sms.sql): res->changed says whether this one did, and
 * res->dlr_state is the state now recorded.  STORE_ENOTFOUND for an
 * unknown id. */
int store_sms_dlr(struct store_sms *q, const char *id, int type,
                  const char *answer, long long smsc_time, store_sms_cb *cb,
                  void *arg);

/* Record that msisdn opted out of programme notices (out = 1, STOP) or back
 * in (out = 0, START); the latest word wins. */
int store_sms_optout(struct store_sms *q, const char *msisdn, int out,
                     store_sms_cb *cb, void *arg);

/* A reply of interest: word (a programme's reply code, or "1"; borrowed)
 * from msisdn, recorded by notice_interest_record() (009); res->interest
 * says what came of it. */
int store_sms_interest(struct store_sms *q, const char *msisdn,
                       const char *word, store_sms_cb *cb, void *arg);

/* ------------------------------------------------------------------------
 * The generic pool (store_pool.c): transactions of parameterised
 * statements, each sent in one round trip (libpq pipeline mode, one
 * implicit transaction up to the Sync: all statements commit or none).
 *
 * The same conventions as the record store: an async call fails now or
 * calls back exactly once, later, from the loop; every transaction has its
 * own deadline (a late one closes the connection that ran it, so it never
 * commits after its caller was told it failed); store_pool_stop() calls
 * every pending callback with STORE_EDOWN.  A transaction given while a
 * connection is on its first attempt waits for it.
 *
 * Each transaction first runs set_config() for the console's context:
 * 'role' (the pool's role, when configured: the console's connections
 * then act as a role that does not own the tables, so row-level security
 * applies; an admin's transaction acts as the pool's admin_role when one
 * is configured, migration 013), 'remigate.officer', 'remigate.role' and
 * 'remigate.districts' (all local to the transaction; migration 004 reads them
 * back with remigate_officer_id(), remigate_officer_role() and
 * remigate_officer_districts()).
 */

struct store_pool;
struct store_tx_result;

#define STORE_TX_STMTS  16 /* statements in one transaction */
#define STORE_TX_PARAMS 16 /* parameters of one statement */

struct store_pool_config {
    const char *dsn;        /* borrowed, copied */
    const char *role;       /* role every transaction acts as ("" or NULL: the
                               DSN's user); borrowed, copied */
    const char *admin_role; /* role a transaction whose store_tx.role is
                               "admin" acts as instead ("" or NULL: as
                               the others); borrowed, copied */
    int pool;               /* connections, 1..64 (0: 2) */
    int timeout_ms;         /* per-transaction deadline (0: 2000) */
    int max_waiting; /* transactions queued while all are busy (0: 1024) */
    int wait_ms;     /* 0: a transaction given while no connection is up
                        (and none on its first attempt again) fails now
                        with STORE_EDOWN.  Else it waits up to this long
                        from its start, never past its deadline, for one
                        to come back -- the pool then tries every
                        100 ms instead of its backoff -- and only then
                        fails with STORE_EDOWN ("waited N ms") */
};

/* One statement: sql and params borrowed (copied by store_pool_tx()); a
 * NULL param is SQL NULL; parameters are text. */
struct store_tx_stmt {
    const char *sql;
    int nparams;
    const char *params[STORE_TX_PARAMS];
};

/* A transaction as the caller describes it (usually on its stack). */
struct store_tx {
    const char *officer;   /* remigate.officer: the officer's id ("" none) */
    const char *role;      /* remigate.role: admin|officer|analyst ("" none) */
    const char *districts; /* remigate.districts: codes joined by ',' */
    int timeout_ms;        /* <= 0: the pool's */
    int n;                 /* statements, 1..STORE_TX_STMTS */
    unsigned prepare;      /* bit i: statement i is prepared once per
                              connection and run by name after (no parse,
                              and a generic plan once PostgreSQL finds it
                              no worse): for statements whose plan does not
                              hang on their parameters' values */
    struct store_tx_stmt stmt[STORE_TX_STMTS];
};

/* status: 0 when every statement ran and the transaction committed;
 * STORE_EDB / STORE_EREFUSED when the server refused a statement (nothing
 * committed; store_tx_failed() and store_tx_sqlstate() say which and why);
 * STORE_ETIMEDOUT, STORE_EDOWN (see store_tx_unknown()).  res is borrowed
 * and never NULL. */
typedef void store_tx_cb(int status, const struct store_tx_result *res,
                         void *arg);

/* A pool for base; nothing connects before store_pool_start().  NULL with
 * a message in err on a bad config. */
struct store_pool *store_pool_new(const struct store_pool_config *cfg,
                                  struct event_base *base, char *err,
                                  size_t errlen);
/* Connect in the background (and reconnect with backoff).  0 or
 * STORE_EINVAL if started. */
int store_pool_start(struct store_pool *p);
/* Close the pool; pending callbacks get STORE_EDOWN before it returns.  A
 * stopped pool may be started again. */
void store_pool_stop(struct store_pool *p);
/* Stop and free; NULL is a no-op.  Not from a callback. */
void store_pool_free(struct store_pool *p);
/* Connections up and ready. */
int store_pool_connected(const struct store_pool *p);

/* Run tx (borrowed, copied before return).  Fails now with STORE_EINVAL
 * (no statement, too many, a NULL sql), STORE_EDOWN, STORE_EBUSY or
 * STORE_ENOMEM. */
int store_pool_tx(struct store_pool *p, const struct store_tx *tx,
                  store_tx_cb *cb, void *arg);

/* What a transaction's statements returned (statement i of tx->stmt; the
 * context statement is not counted).  Out of range: 0 / NULL.  Values are
 * borrowed until the callback returns; NULL is SQL NULL. */
int store_tx_ntuples(const struct store_tx_result *res, int stmt);
int store_tx_nfields(const struct store_tx_result *res, int stmt);
const char *store_tx_value(const struct store_tx_result *res, int stmt, int row,
                           int col);
/* Rows an INSERT/UPDATE/DELETE touched, or -1. */
long long store_tx_affected(const struct store_tx_result *res, int stmt);
/* The statement that failed (-1: none, or the failure was not one
 * statement's, e.g. the COMMIT or the connection). */
int store_tx_failed(const struct store_tx_result *res);
/* Its SQLSTATE ("" if none): e.g. "23505" unique violation, or a code a
 * statement raised on purpose. */
const char *store_tx_sqlstate(const struct store_tx_result *res);
/* A short text for the log: SQLSTATE and primary message, no values
 * ("" on success). */
const char *store_tx_errstr(const struct store_tx_result *res);
/* STORE_ETIMEDOUT / STORE_EDOWN after the transaction was sent: it may
 * have committed.  1/0. */
int store_tx_unknown(const struct store_tx_result *res);

#endif
