/*
 * store_crypto.c -- national ID and passport numbers at rest.
 *
 * One master key (32 bytes in a file named by the config, never in the
 * repository) is split with crypto_kdf (context "remigate") into an
 * encryption subkey (id 1) and a hashing subkey (id 2), so the blind index
 * reveals nothing about the encryption key.  A number is normalised first,
 * then stored twice: XChaCha20-Poly1305 with a random 24-byte nonce in
 * front and the msisdn as associated data (a ciphertext moved to another
 * row does not decrypt), and a keyed BLAKE2b hash over "type:number" for
 * finding duplicates without decrypting.  The other personal answers of a
 * record (its name: whatever flows/flow.h declares personal and not an ID
 * number) go the same way, as one JSON object, without a hash.
 *
 * A record that must wait in the Redis queue (PostgreSQL away) is sealed
 * whole with a third subkey (id 3): "rq1:" and base64 of nonce ||
 * XChaCha20-Poly1305(record), so no ID number sits in Redis in clear.
 * What a dialogue keeps in its Redis session that holds personal answers
 * (the flow state, the typed path, the last input and screen) is sealed
 * the same way with a fourth subkey (id 4), "ss1:", bound to the session's
 * key (a sealed value moved to another caller's session does not open).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

#define STORE_KDF_CTX    "remigate" /* exactly crypto_kdf_CONTEXTBYTES */
#define STORE_KDF_AEAD   1
#define STORE_KDF_HASH   2
#define STORE_KDF_QUEUE  3
#define STORE_KDF_SESS   4
#define STORE_SEAL_TAG   "rq1:"
#define STORE_SEAL_AD    "remigate queued record"
#define STORE_SESS_TAG   "ss1:"
#define STORE_SECRET_TAG "sc1:"
#define STORE_SECRET_AD  "remigate secret "

int
store_keys_load(const char *path, struct store_keys *k, char *err,
                size_t errlen)
{
    unsigned char raw[130], master[STORE_KEY_BYTES];
    size_t n = 0, hexlen;
    int fd, rc = -1;
    ssize_t got;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium did not initialise");
        return -1;
    }
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen,
                 "crypto.key_file is not set (create one with "
                 "`remigate keygen FILE`)");
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* whoever may change the key may read what is sealed under it from
     * then on: checked on what was opened, for every command that reads
     * it */
    struct stat st;
    memset(&st, 0, sizeof(st));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        snprintf(err, errlen,
                 "crypto.key_file: %s has mode %04o: not a regular file, or "
                 "other users may change it; refused (run: chmod 0600 %s)",
                 path, (unsigned)(st.st_mode & 07777), path);
        goto done;
    }
    while (n < sizeof(raw) && (got = read(fd, raw + n, sizeof(raw) - n)) != 0) {
        if (got < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto done;
        }
        n += (size_t)got;
    }
    if (n == STORE_KEY_BYTES) {
        memcpy(master, raw, sizeof(master));
    } else {
        hexlen = n;
        while (hexlen > 0 && isspace(raw[hexlen - 1]))
            hexlen--;
        if (hexlen != 2 * STORE_KEY_BYTES ||
            sodium_hex2bin(master, sizeof(master), (const char *)raw, hexlen,
                           NULL, NULL, NULL) != 0) {
            snprintf(err, errlen,
                     "%s: not a key (want 32 raw bytes or 64 hex digits)",
                     path);
            goto done;
        }
    }
    crypto_kdf_derive_from_key(k->aead, sizeof(k->aead), STORE_KDF_AEAD,
                               STORE_KDF_CTX, master);
    crypto_kdf_derive_from_key(k->hash, sizeof(k->hash), STORE_KDF_HASH,
                               STORE_KDF_CTX, master);
    crypto_kdf_derive_from_key(k->queue, sizeof(k->queue), STORE_KDF_QUEUE,
                               STORE_KDF_CTX, master);
    crypto_kdf_derive_from_key(k->sess, sizeof(k->sess), STORE_KDF_SESS,
                               STORE_KDF_CTX, master);
    rc = 0;
done:
    sodium_memzero(master, sizeof(master));
    sodium_memzero(raw, sizeof(raw));
    close(fd);
    return rc;
}

void
store_keys_wipe(struct store_keys *k)
{
    sodium_memzero(k, sizeof(*k));
}

int
store_id_normalise(const char *type, const char *number, char *out, size_t cap)
{
    int passport;
    size_t n = 0;

    if (strcmp(type, "nid") == 0)
        passport = 0;
    else if (strcmp(type, "passport") == 0)
        passport = 1;
    else
        return -1;
    for (const char *p = number; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == ' ' || c == '-') continue;
        if (passport ? !isalnum(c) : !isdigit(c)) return -1;
        if (n + 1 >= cap) return -1;
        out[n++] = (char)toupper(c);
    }
    if (n == 0) return -1;
    out[n] = '\0';
    return (int)n;
}

void
store_id_hash_keys(const struct store_keys *k, const char *type,
                   const char *norm, unsigned char out[STORE_HASH_BYTES])
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, k->hash, sizeof(k->hash), STORE_HASH_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)type, strlen(type));
    crypto_generichash_update(&st, (const unsigned char *)":", 1);
    crypto_generichash_update(&st, (const unsigned char *)norm, strlen(norm));
    crypto_generichash_final(&st, out, STORE_HASH_BYTES);
}

int
store_id_encrypt(const struct store_keys *k, const char *norm,
                 const char *msisdn, unsigned char *out)
{
    size_t len = strlen(norm);
    unsigned long long clen;

    if (len >= STORE_ID_MAX) return -1;
    randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen,
        (const unsigned char *)norm, len, (const unsigned char *)msisdn,
        strlen(msisdn), NULL, out, k->aead);
    return (int)(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + clen);
}

int
store_personal_encrypt(const struct store_keys *k, const char *text, size_t len,
                       const char *msisdn, unsigned char *out)
{
    unsigned long long clen;

    randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(
            out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen,
            (const unsigned char *)text, len, (const unsigned char *)msisdn,
            strlen(msisdn), NULL, out, k->aead) != 0)
        return -1;
    return (int)(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + clen);
}

int
store_id_hash(const struct store *s, const char *type, const char *number,
              unsigned char out[STORE_HASH_BYTES])
{
    char norm[STORE_ID_MAX];

    if (s == NULL || type == NULL || number == NULL ||
        store_id_normalise(type, number, norm, sizeof(norm)) < 0)
        return STORE_EINVAL;
    store_id_hash_keys(store_keys_of(s), type, norm, out);
    sodium_memzero(norm, sizeof(norm));
    return 0;
}

int
store_id_decrypt(const struct store *s, const unsigned char *enc, size_t enclen,
                 const char *msisdn, char *out, size_t outlen)
{
    const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    const size_t ab = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    unsigned long long mlen;

    if (enclen < nb + ab) return STORE_ECRYPTO;
    if (outlen < enclen - nb - ab + 1) return STORE_EINVAL;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            (unsigned char *)out, &mlen, NULL, enc + nb, enclen - nb,
            (const unsigned char *)msisdn, strlen(msisdn), enc,
            store_keys_of(s)->aead) != 0)
        return STORE_ECRYPTO;
    out[mlen] = '\0';
    return 0;
}

int
store_keygen(const char *path, char *err, size_t errlen)
{
    unsigned char key[STORE_KEY_BYTES];
    char hex[2 * STORE_KEY_BYTES + 2];
    int fd, rc = -1;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium did not initialise");
        return -1;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(hex, sizeof(hex) - 1, key, sizeof(key));
    strcat(hex, "\n");
    if (write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(path);
    } else {
        rc = 0;
    }
    sodium_memzero(key, sizeof(key));
    sodium_memzero(hex, sizeof(hex));
    close(fd);
    return rc;
}

/* tag, then base64 of nonce || XChaCha20-Poly1305(in) under key with
 * associated data ad. */
static int
store_seal_with(const unsigned char *key, const char *tag, const char *ad,
                size_t adlen, const char *in, size_t len, char *out, size_t cap)
{
    const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    const size_t ab = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    const size_t tl = strlen(tag);
    size_t blen = nb + len + ab;
    unsigned long long clen;

    if (in == NULL || cap < tl + sodium_base64_ENCODED_LEN(
                                     blen, sodium_base64_VARIANT_ORIGINAL))
        return STORE_EINVAL;
    unsigned char *box = malloc(blen);
    if (box == NULL) return STORE_ENOMEM;
    randombytes_buf(box, nb);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        box + nb, &clen, (const unsigned char *)in, len,
        (const unsigned char *)ad, adlen, NULL, box, key);
    memcpy(out, tag, tl);
    sodium_bin2base64(out + tl, cap - tl, box, nb + clen,
                      sodium_base64_VARIANT_ORIGINAL);
    free(box);
    return (int)strlen(out);
}

static int
store_open_with(const unsigned char *key, const char *tag, const char *ad,
                size_t adlen, const char *sealed, size_t len, char *out,
                size_t cap)
{
    const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    const size_t ab = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    const size_t tl = strlen(tag);
    size_t blen;
    unsigned long long mlen;

    if (sealed == NULL || len < tl || memcmp(sealed, tag, tl) != 0)
        return STORE_EINVAL;
    unsigned char *box = malloc(len);
    if (box == NULL) return STORE_ENOMEM;
    int rc = STORE_ECRYPTO;
    if (sodium_base642bin(box, len, sealed + tl, len - tl, NULL, &blen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        blen >= nb + ab && cap > blen - nb - ab &&
        crypto_aead_xchacha20poly1305_ietf_decrypt(
            (unsigned char *)out, &mlen, NULL, box + nb, blen - nb,
            (const unsigned char *)ad, adlen, box, key) == 0) {
        out[mlen] = '\0';
        rc = (int)mlen;
    }
    sodium_memzero(box, len);
    free(box);
    return rc;
}

int
store_record_seal(const struct store *s, const char *rec, size_t len, char *out,
                  size_t cap)
{
    if (s == NULL) return STORE_EINVAL;
    return store_seal_with(store_keys_of(s)->queue, STORE_SEAL_TAG,
                           STORE_SEAL_AD, sizeof(STORE_SEAL_AD) - 1, rec, len,
                           out, cap);
}

int
store_record_open(const struct store *s, const char *sealed, size_t len,
                  char *out, size_t cap)
{
    if (s == NULL) return STORE_EINVAL;
    return store_open_with(store_keys_of(s)->queue, STORE_SEAL_TAG,
                           STORE_SEAL_AD, sizeof(STORE_SEAL_AD) - 1, sealed,
                           len, out, cap);
}

int
store_sess_seal(const struct store *s, const char *ad, const char *in,
                size_t len, char *out, size_t cap)
{
    if (s == NULL || ad == NULL) return STORE_EINVAL;
    return store_seal_with(store_keys_of(s)->sess, STORE_SESS_TAG, ad,
                           strlen(ad), in, len, out, cap);
}

int
store_sess_open(const struct store *s, const char *ad, const char *sealed,
                size_t len, char *out, size_t cap)
{
    if (s == NULL || ad == NULL) return STORE_EINVAL;
    return store_open_with(store_keys_of(s)->sess, STORE_SESS_TAG, ad,
                           strlen(ad), sealed, len, out, cap);
}

/* The associated data of a console secret: STORE_SECRET_AD then ad.  0, or
 * -1 when it does not fit. */
static int
store_secret_ad(const char *ad, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s%s", STORE_SECRET_AD, ad ? ad : "");
    return ad == NULL || n < 0 || (size_t)n >= cap ? -1 : n;
}

int
store_secret_seal(const struct store *s, const char *ad, const char *in,
                  size_t len, char *out, size_t cap)
{
    char full[256];
    int n;

    if (s == NULL || (n = store_secret_ad(ad, full, sizeof(full))) < 0)
        return STORE_EINVAL;
    return store_seal_with(store_keys_of(s)->aead, STORE_SECRET_TAG, full,
                           (size_t)n, in, len, out, cap);
}

int
store_secret_open(const struct store *s, const char *ad, const char *sealed,
                  size_t len, char *out, size_t cap)
{
    char full[256];
    int n;

    if (s == NULL || (n = store_secret_ad(ad, full, sizeof(full))) < 0)
        return STORE_EINVAL;
    return store_open_with(store_keys_of(s)->aead, STORE_SECRET_TAG, full,
                           (size_t)n, sealed, len, out, cap);
}
