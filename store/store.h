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
 * - Every query carries its own deadline (timeout_ms from the submit call):
 *   on expiry the callback gets STORE_ETIMEDOUT and the connection that ran
 *   it is closed and opened again.  STORE_ETIMEDOUT and STORE_EDOWN after a
 *   query was sent mean "outcome unknown": retry with the same record (the
 *   idempotency key makes the retry safe).
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
    X(STORE_ESCHEMA, -10, "database schema older than this program")

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
    STORE_REC_REJECTED
};

/* "pending", "verified", "rejected" or "none". */
const char *store_rec_status_name(enum store_rec_status st);

struct store_config {
    const char *dsn;      /* libpq conninfo or URI; borrowed, copied */
    const char *key_file; /* 32 raw bytes or 64 hex chars; borrowed */
    int pool;             /* connections, 1..64 (0: 4) */
    int timeout_ms;       /* per-query deadline (0: 2000) */
    int max_waiting;      /* requests queued while all are busy (0: 1024) */
};

/* What a completed request produced.  Borrowed by the callback. */
struct store_result {
    const char *ref;              /* the returnee's reference ("" if none) */
    int duplicate;                /* submit: already stored under this key */
    enum store_rec_status status; /* submit, status: the record's status */
    const char *reject_reason;    /* status: when rejected, else "" */
    int id_shared;                /* submit: other records with the same NID or
                                     passport (duplicate check, by keyed hash) */
    const char *errstr;           /* on failure: a short text without personal
                                     data, for the log; else "" */
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
 * (status back to pending); action "update_skills" changes the skills of an
 * existing record (STORE_ENOTREGISTERED, and nothing stored, if there is
 * none).  One transaction: the submission row (idempotency key unique, the
 * NID/passport number never in it) and the profile.  A record already
 * stored under its key changes nothing and gives duplicate = 1.
 * Fails now with STORE_EINVAL (malformed record), STORE_EDOWN (stopped or
 * no connection up), STORE_EBUSY (queue full), STORE_ENOMEM, STORE_ECRYPTO. */
int store_submit(struct store *s, const char *record_json, size_t len,
                 store_submit_cb *cb, void *arg);

/* The record of msisdn (E.164 digits, borrowed): res->status, ->ref and
 * ->reject_reason, or STORE_ENOTFOUND.  Fails now like store_submit(). */
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
 * msisdn into out (NUL-terminated).  Returns 0, STORE_ECRYPTO when it does
 * not authenticate, or STORE_EINVAL when out is too small.  For officer
 * views; never log the result. */
int store_id_decrypt(const struct store *s, const unsigned char *enc,
                     size_t enclen, const char *msisdn, char *out,
                     size_t outlen);

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

#endif
