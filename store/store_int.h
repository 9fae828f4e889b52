/*
 * store_int.h -- private to store/: the key material and the ID-number
 * helpers shared by store_crypto.c and the records store (store_pg.c,
 * store_pg_rec.c), and the libpq connection on the loop shared by
 * store_pg_conn.c and store_pool_conn.c.  What the records store's own
 * files share is in store_pg_int.h; what the generic pool's share, in
 * store_pool_int.h.
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <stddef.h>

#include <event2/event.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "store/store.h"

/* Invariants, never compiled out: abort with the place. */
#define STORE_AN(x)                                                            \
    do {                                                                       \
        if (!(x)) store_assert_fail(__func__, __FILE__, __LINE__, #x);         \
    } while (0)
#define STORE_WRONG(what) store_assert_fail(__func__, __FILE__, __LINE__, what)

_Noreturn void store_assert_fail(const char *func, const char *file, int line,
                                 const char *cond);

#define STORE_ID_MAX 32 /* longest normalised ID number, with its NUL */
/* nonce || ciphertext || tag of an ID number */
#define STORE_ENC_MAX                                                          \
    (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + STORE_ID_MAX +             \
     crypto_aead_xchacha20poly1305_ietf_ABYTES)

/* What encryption adds to a text: the nonce in front, the tag behind. */
#define STORE_ENC_OVERHEAD                                                     \
    (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +                            \
     crypto_aead_xchacha20poly1305_ietf_ABYTES)

/* Subkeys derived from the master key (crypto_kdf, context "remigate"). */
struct store_keys {
    unsigned char aead[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    unsigned char hash[crypto_generichash_KEYBYTES];
    unsigned char queue[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    unsigned char sess[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
};

/* Read a key file (32 raw bytes, or 64 hex characters and optional white
 * space) and derive the subkeys.  Returns 0 or -1 with a message in err. */
int store_keys_load(const char *path, struct store_keys *k, char *err,
                    size_t errlen);

/* Wipe k. */
void store_keys_wipe(struct store_keys *k);

/* The keys of a store (store_pg.c). */
const struct store_keys *store_keys_of(const struct store *s);

/* Normalise an ID number of type "nid" or "passport" into out (cap
 * bytes).  Returns its length, or -1 when empty, too long or of an unknown
 * type. */
int store_id_normalise(const char *type, const char *number, char *out,
                       size_t cap);

/* The keyed hash of a normalised number. */
void store_id_hash_keys(const struct store_keys *k, const char *type,
                        const char *norm, unsigned char out[STORE_HASH_BYTES]);

/* Encrypt a normalised number bound to msisdn: writes a random nonce then
 * the ciphertext into out (STORE_ENC_MAX bytes); returns its length or -1. */
int store_id_encrypt(const struct store_keys *k, const char *norm,
                     const char *msisdn, unsigned char *out);

/* Encrypt text[0..len) bound to msisdn, as store_id_encrypt() does a
 * number: out (len + STORE_ENC_OVERHEAD bytes) gets nonce || ciphertext;
 * returns its length or -1.  store_id_decrypt() opens it. */
int store_personal_encrypt(const struct store_keys *k, const char *text,
                           size_t len, const char *msisdn, unsigned char *out);

/* ------------------------------------------------------------------------
 * A libpq connection on the loop (store_link.c).  pg is NULL while down;
 * ev watches its socket; timer is the connect deadline or, while down,
 * the next attempt (both call back with arg); backoff_ms is the next
 * retry's delay (0: at once).
 */
struct store_link {
    PGconn *pg;
    struct event_base *base;
    struct event *ev;
    int ev_fd;
    short ev_what;
    struct event *timer;
    int backoff_ms;
    event_callback_fn on_io;
    void *arg;
};

/* Set l up on base, down, with its timer.  0, or -1 out of memory. */
int store_link_init(struct store_link *l, struct event_base *base,
                    event_callback_fn on_io, event_callback_fn on_timer,
                    void *arg);
/* Close l and free its timer. */
void store_link_fini(struct store_link *l);
/* Watch the socket for what (EV_READ and/or EV_WRITE).  0 or -1. */
int store_link_watch(struct store_link *l, short what);
/* After a PQsend*: push the query out, then wait for the answer.  0/-1. */
int store_link_flush(struct store_link *l);
/* Fire the timer in ms. */
void store_link_schedule(struct store_link *l, int ms);
/* Close the connection (if any), drop its event, stop the timer. */
void store_link_close(struct store_link *l);
/* Schedule the next attempt after the backoff (jittered), and double the
 * backoff from min_ms up to max_ms. */
void store_link_retry(struct store_link *l, int min_ms, int max_ms);
/* Start connecting to dsn, watched, the timer at deadline_ms.  0, or -1
 * (pg NULL: out of memory; else PQerrorMessage(pg) says why; the caller
 * closes). */
int store_link_connect(struct store_link *l, const char *dsn, int deadline_ms);
/* The socket is ready while connecting: poll once.  0 still connecting
 * (watched again), 1 up (non-blocking, timer stopped, nothing watched; the
 * owner resets backoff_ms once the connection is of use), -1 failed. */
int store_link_poll(struct store_link *l);

#endif
