/*
 * gw_env.c -- the caller's envelope (gw_ussd.c's design note): its
 * encoding, with the personal part sealed, and the worker's cache of the
 * envelopes it saved last (struct gw_cache in gw_ussd_int.h).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "gateway/gw_int.h"
#include "gateway/gw_ussd_int.h"
#include "sessions/sess.h"
#include "store/store.h"

/* ------------------------------------------------------------------------
 * The envelope cache
 */

static size_t
gw_cache_slot(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (GW_CACHE_BUCKETS - 1);
}

static size_t
gw_cached_size(const struct gw_cached *c)
{
    return sizeof(*c) + c->len + 1;
}

/* Unlink c from its chain and the LRU list; the caller owns it then. */
static void
gw_cache_unlink(struct gw_cache *ca, struct gw_cached *c)
{
    struct gw_cached **pp = &ca->bucket[gw_cache_slot(c->key)];
    while (*pp != c) {
        AN(*pp);
        pp = &(*pp)->hnext;
    }
    *pp = c->hnext;
    TAILQ_REMOVE(&ca->lru, c, lru);
    ca->bytes -= gw_cached_size(c);
}

static struct gw_cached *
gw_cache_find(const struct gw_cache *ca, const char *key)
{
    struct gw_cached *c = ca->bucket[gw_cache_slot(key)];
    while (c != NULL && strcmp(c->key, key) != 0)
        c = c->hnext;
    return c;
}

/* The entry for key, taken out of the cache, if it may still be used;
 * NULL otherwise (a stale one is dropped). */
struct gw_cached *
gw_cache_take(struct gw_cache *ca, const char *key, int64_t now, unsigned epoch)
{
    struct gw_cached *c;
    if (ca->cap == 0 || (c = gw_cache_find(ca, key)) == NULL) return NULL;
    gw_cache_unlink(ca, c);
    if (c->epoch != epoch || now > c->until) {
        free(c);
        return NULL;
    }
    return c;
}

/* Keep c (the cache owns it from here), unless an entry of a later version
 * of its key is there already; then drop the least recently saved entries
 * while there are more bytes than the cap. */
void
gw_cache_put(struct gw_cache *ca, struct gw_cached *c)
{
    struct gw_cached *old = gw_cache_find(ca, c->key);
    if (old != NULL) {
        if (old->epoch == c->epoch && old->version >= c->version) {
            free(c);
            return;
        }
        gw_cache_unlink(ca, old);
        free(old);
    }
    if (gw_cached_size(c) > ca->cap) {
        free(c);
        return;
    }
    size_t slot = gw_cache_slot(c->key);
    c->hnext = ca->bucket[slot];
    ca->bucket[slot] = c;
    TAILQ_INSERT_TAIL(&ca->lru, c, lru);
    ca->bytes += gw_cached_size(c);
    while (ca->bytes > ca->cap) {
        struct gw_cached *first = TAILQ_FIRST(&ca->lru);
        gw_cache_unlink(ca, first);
        free(first);
    }
}

void
gw_cache_fini(struct gw_cache *ca)
{
    struct gw_cached *c;
    while ((c = TAILQ_FIRST(&ca->lru)) != NULL) {
        gw_cache_unlink(ca, c);
        free(c);
    }
}

/* ------------------------------------------------------------------------
 * The envelope: "name=value\n" lines; '\\' and newlines in values escaped
 * as "\\\\" and "\\n".  Unknown names are refused: an envelope written by
 * a newer daemon is not half-read.
 */

static int
gw_env_put(char *buf, size_t cap, size_t *len, const char *name, const char *v,
           size_t vlen)
{
    size_t n = *len;
    size_t nl = strlen(name);
    if (n + nl + 1 >= cap) return -1;
    memcpy(buf + n, name, nl);
    n += nl;
    buf[n++] = '=';
    for (size_t i = 0; i < vlen; i++) {
        char c = v[i];
        if (n + 3 >= cap) return -1;
        if (c == '\\' || c == '\n') {
            buf[n++] = '\\';
            c = c == '\n' ? 'n' : '\\';
        }
        buf[n++] = c;
    }
    buf[n++] = '\n';
    *len = n;
    return 0;
}

static int
gw_env_puts(char *buf, size_t cap, size_t *len, const char *name, const char *v)
{
    return gw_env_put(buf, cap, len, name, v, strlen(v));
}

static int
gw_env_putn(char *buf, size_t cap, size_t *len, const char *name, int64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", (long long)v);
    return gw_env_put(buf, cap, len, name, num, (size_t)n);
}

/* The fields that can hold personal answers. */
static int
gw_env_put_secrets(const struct gw_env *e, char *buf, size_t cap, size_t *n)
{
    return gw_env_puts(buf, cap, n, "at", e->at) < 0 ||
                   gw_env_puts(buf, cap, n, "in", e->in) < 0 ||
                   gw_env_puts(buf, cap, n, "out", e->out) < 0 ||
                   gw_env_puts(buf, cap, n, "st", e->st) < 0
               ? -1
               : 0;
}

/* Encode e for the session skey into buf; with keys (not NULL) the
 * secrets go sealed as "x" (u's scratch buffers).  Its length, or -1. */
int
gw_env_encode(struct gw_ussd *u, const struct store *keys, const char *skey,
              const struct gw_env *e, char *buf, size_t cap)
{
    size_t n = 0;
    if (gw_env_puts(buf, cap, &n, "e", "1") < 0 ||
        gw_env_puts(buf, cap, &n, "dlg", e->dlg) < 0 ||
        gw_env_putn(buf, cap, &n, "seq", e->seq) < 0 ||
        gw_env_puts(buf, cap, &n, "mo", e->mo) < 0 ||
        gw_env_putn(buf, cap, &n, "t", e->t) < 0 ||
        gw_env_putn(buf, cap, &n, "end", e->end) < 0 ||
        gw_env_putn(buf, cap, &n, "enc", e->enc) < 0)
        return -1;
    if (keys == NULL)
        return gw_env_put_secrets(e, buf, cap, &n) < 0 ? -1 : (int)n;
    size_t m = 0;
    int rc = -1;
    if (gw_env_put_secrets(e, u->secret, sizeof(u->secret), &m) == 0) {
        int sl = store_sess_seal(keys, skey, u->secret, m, u->sealed,
                                 sizeof(u->sealed));
        rc =
            sl >= 0 && gw_env_put(buf, cap, &n, "x", u->sealed, (size_t)sl) == 0
                ? (int)n
                : -1;
    }
    sodium_memzero(u->secret, m);
    return rc;
}

/* Unescape v[0..n) into out (cap bytes, NUL-terminated). */
static int
gw_env_unesc(const char *v, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\0') return -1;
        if (c == '\\') {
            if (++i == n) return -1;
            if (v[i] == 'n')
                c = '\n';
            else if (v[i] == '\\')
                c = '\\';
            else
                return -1;
        }
        if (o + 1 >= cap) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int
gw_env_num(const char *v, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    char num[24];
    if (n == 0 || n >= sizeof(num)) return -1;
    memcpy(num, v, n);
    num[n] = '\0';
    char *end;
    long long x = strtoll(num, &end, 10);
    if (*end != '\0' || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

/* Lines of buf into e.  secret: the sealed part, which has only the
 * secret fields; else the envelope, whose secrets must come sealed ("x",
 * opened with keys for the session skey) when keys is not NULL.  Sets
 * *version when "e=1" was read. */
static int
gw_env_lines(struct gw_ussd *u, const struct store *keys, const char *skey,
             const char *buf, size_t len, struct gw_env *e, int secret,
             int *version)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (nl == NULL) return -1;
        const char *line = buf + i;
        size_t ll = (size_t)(nl - line);
        const char *eq = memchr(line, '=', ll);
        if (eq == NULL) return -1;
        size_t kl = (size_t)(eq - line);
        const char *v = eq + 1;
        size_t vl = ll - kl - 1;
        int64_t x;
        int rc = 0;
        /* the secret fields come sealed when there is a key */
        int clear_ok = secret || keys == NULL;
#define GW_ENV_IS(s) (kl == sizeof(s) - 1 && memcmp(line, s, kl) == 0)
        if (GW_ENV_IS("at")) {
            rc = clear_ok ? gw_env_unesc(v, vl, e->at, sizeof(e->at)) : -1;
        } else if (GW_ENV_IS("in")) {
            rc = clear_ok ? gw_env_unesc(v, vl, e->in, sizeof(e->in)) : -1;
        } else if (GW_ENV_IS("out")) {
            rc = clear_ok ? gw_env_unesc(v, vl, e->out, sizeof(e->out)) : -1;
        } else if (GW_ENV_IS("st")) {
            rc = clear_ok ? gw_env_unesc(v, vl, e->st, sizeof(e->st)) : -1;
        } else if (secret) {
            rc = -1;
        } else if (GW_ENV_IS("x")) {
            int n = keys != NULL ? store_sess_open(keys, skey, v, vl, u->secret,
                                                   sizeof(u->secret))
                                 : -1;
            rc = n >= 0 ? gw_env_lines(u, keys, skey, u->secret, (size_t)n, e,
                                       1, version)
                        : -1;
            sodium_memzero(u->secret, sizeof(u->secret));
        } else if (GW_ENV_IS("e")) {
            rc = vl == 1 && v[0] == '1' ? 0 : -1;
            *version = 1;
        } else if (GW_ENV_IS("dlg")) {
            rc = gw_env_unesc(v, vl, e->dlg, sizeof(e->dlg));
        } else if (GW_ENV_IS("seq")) {
            rc = gw_env_num(v, vl, 0, 255, &x);
            e->seq = (unsigned)x;
        } else if (GW_ENV_IS("mo")) {
            rc = gw_env_unesc(v, vl, e->mo, sizeof(e->mo));
        } else if (GW_ENV_IS("t")) {
            rc = gw_env_num(v, vl, 0, INT64_MAX, &e->t);
        } else if (GW_ENV_IS("end")) {
            rc = gw_env_num(v, vl, 0, 1, &x);
            e->end = (int)x;
        } else if (GW_ENV_IS("enc")) {
            rc = gw_env_num(v, vl, 0, 1, &x);
            e->enc = (int)x;
        } else {
            rc = -1;
        }
#undef GW_ENV_IS
        if (rc < 0) return -1;
        i += ll + 1;
    }
    return 0;
}

/* Contract in gw_ussd_int.h. */
int
gw_env_decode(struct gw_ussd *u, const struct store *keys, const char *skey,
              const char *buf, size_t len, struct gw_env *e)
{
    int version = 0;
    memset(e, 0, sizeof(*e));
    if (gw_env_lines(u, keys, skey, buf, len, e, 0, &version) < 0) return -1;
    return version == 1 ? 0 : -1;
}
