/*
 * con_cache.c -- a worker's cache of the dashboards' answers, so that many
 * officers and analysts looking at the same views cost PostgreSQL one
 * query per view (and worker) per console.stats_cache_ms, not one each.
 *
 * What is kept: only the 200 JSON answers of GET /api/stats and GET
 * /api/stats/decision-days (the handlers decide; exports never come
 * here: each download is audited).  Authentication, the role check and
 * the parameters' checks run before the cache on every request, so a
 * disabled officer is refused at once and a bad query is a 400 as ever.
 *
 * The key is everything the answer depends on, length-prefixed so no two
 * lists of fields give the same text: the route, the caller's role and
 * districts exactly as the transaction hands them to PostgreSQL (row-level
 * security and the statistics functions read nothing else of the
 * officer), then the handler's canonical fields (parsed values in a fixed
 * order, so the query's order does not split the key; k and whether the
 * table is suppressed among them).  Entries are compared by the whole
 * key, never by its hash alone: an officer never gets another scope's
 * answer.
 *
 * An entry holds the answer's JSON text without "lag_s", the lag the
 * server that answered reported (NaN: the primary) and when it was read.
 * A hit is sent with "lag_s" = that lag + the entry's age (on the
 * primary: the age), so the page says how far behind the numbers are, and
 * an Age header.  Entries older than the TTL are dropped when looked up;
 * the least recently used go first when the entries' bytes pass
 * console.stats_cache_kb.  One cache per worker (each worker reads a
 * view once per TTL); no coalescing of identical requests in flight.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "console/con_int.h"

#define CACHE_BUCKETS 256 /* a power of two */
#define CACHE_MAGIC   0x43414348u

struct cache_entry {
    struct cache_entry *hnext;
    TAILQ_ENTRY(cache_entry) lru;
    int64_t born_ms; /* CLOCK_MONOTONIC */
    double lag;      /* seconds behind the primary; NaN: read from it */
    size_t klen, tlen;
    char data[]; /* the key, NUL, the text, NUL */
};

TAILQ_HEAD(cache_list, cache_entry);

struct con_cache {
    unsigned magic;
    long ttl_ms;
    size_t cap, bytes;
    struct cache_list lru; /* least recently used first */
    struct cache_entry *bucket[CACHE_BUCKETS];
};

static int64_t
cache_now_ms(void)
{
    struct timespec ts;

    CON_AZ(clock_gettime(CLOCK_MONOTONIC, &ts));
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t
cache_slot(const char *key, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    return h & (CACHE_BUCKETS - 1);
}

static size_t
cache_entry_size(const struct cache_entry *e)
{
    return sizeof(*e) + e->klen + e->tlen + 2;
}

/* Unlink e from its chain and the LRU list; the caller owns it then. */
static void
cache_unlink(struct con_cache *c, struct cache_entry *e)
{
    struct cache_entry **pp = &c->bucket[cache_slot(e->data, e->klen)];

    while (*pp != e) {
        CON_AN(*pp != NULL);
        pp = &(*pp)->hnext;
    }
    *pp = e->hnext;
    TAILQ_REMOVE(&c->lru, e, lru);
    c->bytes -= cache_entry_size(e);
}

static struct cache_entry *
cache_find(const struct con_cache *c, const char *key, size_t klen)
{
    struct cache_entry *e = c->bucket[cache_slot(key, klen)];

    while (e != NULL && (e->klen != klen || memcmp(e->data, key, klen) != 0))
        e = e->hnext;
    return e;
}

struct con_cache *
con_cache_new(long ttl_ms, size_t cap)
{
    struct con_cache *c = calloc(1, sizeof(*c));

    if (c == NULL) return NULL;
    c->magic = CACHE_MAGIC;
    c->ttl_ms = ttl_ms;
    c->cap = cap;
    TAILQ_INIT(&c->lru);
    return c;
}

void
con_cache_free(struct con_cache *c)
{
    struct cache_entry *e;

    if (c == NULL) return;
    CON_AN(c->magic == CACHE_MAGIC);
    while ((e = TAILQ_FIRST(&c->lru)) != NULL) {
        cache_unlink(c, e);
        free(e);
    }
    CON_AN(c->bytes == 0);
    c->magic = 0;
    free(c);
}

int
con_cache_on(const struct con_cache *c)
{
    return c != NULL && c->ttl_ms > 0 && c->cap > 0;
}

/* Append one field to b as "LEN:VALUE;" ("-;" for NULL). */
static int
cache_key_field(struct con_buf *b, const char *v)
{
    char n[24];

    if (v == NULL) return con_buf_add(b, "-;", 2);
    snprintf(n, sizeof(n), "%zu:", strlen(v));
    return con_buf_add(b, n, strlen(n)) | con_buf_add(b, v, strlen(v)) |
           con_buf_add(b, ";", 1);
}

char *
con_cache_key(struct con_call *call, const char *route,
              const char *const *fields, int n)
{
    struct con_buf b = {NULL, 0, 0};
    char *key;
    int rc;

    CON_AN(call->has_session);
    if (!con_cache_on(call->con->cache)) return NULL;
    rc = cache_key_field(&b, route) | cache_key_field(&b, call->who.role) |
         cache_key_field(&b, call->who.districts);
    for (int i = 0; i < n; i++)
        rc |= cache_key_field(&b, fields[i]);
    if (rc != 0 || (key = gw_req_alloc(call->req, b.len + 1)) == NULL) {
        free(b.p);
        return NULL;
    }
    memcpy(key, b.p, b.len);
    key[b.len] = '\0';
    free(b.p);
    return key;
}

/* Send text (the answer without "lag_s", ending in '}') with "lag_s":
 * lag (one decimal), or null when lag is NaN. */
static void
cache_send(struct con_call *call, const char *text, size_t tlen, double lag)
{
    char tail[48], *out;
    size_t n;

    CON_AN(tlen >= 2 && text[tlen - 1] == '}');
    if (isnan(lag))
        snprintf(tail, sizeof(tail), "%s\"lag_s\":null}", tlen > 2 ? "," : "");
    else
        snprintf(tail, sizeof(tail), "%s\"lag_s\":%.1f}", tlen > 2 ? "," : "",
                 round(lag * 10) / 10);
    n = strlen(tail);
    out = malloc(tlen - 1 + n + 1);
    if (out != NULL) {
        memcpy(out, text, tlen - 1);
        memcpy(out + tlen - 1, tail, n + 1);
    }
    con_reply_json_text(call, 200, out);
    free(out);
}

int
con_cache_reply_hit(struct con_call *call, const char *key)
{
    struct con_cache *c = call->con->cache;
    struct cache_entry *e;
    size_t klen;
    int64_t age = 0;
    char agehdr[24];

    if (!con_cache_on(c) || key == NULL) return 0;
    CON_AN(c->magic == CACHE_MAGIC);
    klen = strlen(key);
    e = cache_find(c, key, klen);
    if (e != NULL && (age = cache_now_ms() - e->born_ms) >= c->ttl_ms) {
        cache_unlink(c, e);
        free(e);
        e = NULL;
    }
    if (e == NULL) {
        gw_metric_inc(GW_M_STATS_CACHE, "miss", NULL);
        return 0;
    }
    gw_metric_inc(GW_M_STATS_CACHE, "hit", NULL);
    TAILQ_REMOVE(&c->lru, e, lru);
    TAILQ_INSERT_TAIL(&c->lru, e, lru);
    snprintf(agehdr, sizeof(agehdr), "%lld", (long long)(age / 1000));
    gw_req_header_add(call->req, "Age", agehdr);
    cache_send(call, e->data + e->klen + 1, e->tlen,
               (isnan(e->lag) ? 0 : e->lag) + (double)age / 1000.0);
    return 1;
}

/* Keep text under key (copied), replacing an older entry of the key,
 * then drop the least recently used while over the cap. */
static void
cache_put(struct con_cache *c, const char *key, const char *text, size_t tlen,
          double lag)
{
    size_t klen = strlen(key);
    struct cache_entry *e, *old;

    e = malloc(sizeof(*e) + klen + tlen + 2);
    if (e == NULL) return; /* not kept: the next request reads again */
    e->born_ms = cache_now_ms();
    e->lag = lag;
    e->klen = klen;
    e->tlen = tlen;
    memcpy(e->data, key, klen + 1);
    memcpy(e->data + klen + 1, text, tlen + 1);
    if (cache_entry_size(e) > c->cap) {
        free(e);
        return;
    }
    if ((old = cache_find(c, key, klen)) != NULL) {
        cache_unlink(c, old);
        free(old);
    }
    {
        size_t slot = cache_slot(key, klen);
        e->hnext = c->bucket[slot];
        c->bucket[slot] = e;
    }
    TAILQ_INSERT_TAIL(&c->lru, e, lru);
    c->bytes += cache_entry_size(e);
    while (c->bytes > c->cap) {
        struct cache_entry *first = TAILQ_FIRST(&c->lru);
        cache_unlink(c, first);
        free(first);
    }
}

void
con_cache_reply_miss(struct con_call *call, const char *key, json_t *o,
                     const struct store_tx_result *res, int stmt)
{
    struct con_cache *c = call->con->cache;
    const char *v = store_tx_value(res, stmt, 0, 0);
    double lag = v ? strtod(v, NULL) : NAN;
    char *text;

    if (!con_cache_on(c) || key == NULL) {
        con_read_lag(o, res, stmt);
        con_reply_json(call, 200, o);
        return;
    }
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL) {
        con_reply_json_text(call, 200, NULL); /* out of memory: a 500 */
        return;
    }
    cache_put(c, key, text, strlen(text), lag);
    cache_send(call, text, strlen(text), lag);
    free(text);
}
