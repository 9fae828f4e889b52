/*
 * sess_redis.c -- the session store on hiredis 0.14's async API and its
 * libevent adapter (see sess.h for the contract).
 *
 * Every accepted call becomes a struct sess_cmd: hiredis's privdata points
 * at it, and it sits on s->cmds until hiredis is done with it (a reply, or
 * a NULL reply when the connection goes).  The caller's callback runs at
 * most once, marked by cmd->done: from the reply, from the command's timer
 * (SESS_ETIMEDOUT), or from sess_stop() (SESS_EDOWN).  A command that timed
 * out stays with hiredis until its late reply arrives; if none comes within
 * a second timeout_ms, Redis is taken for hung and the connection is
 * dropped, so a stopped server cannot make commands pile up.
 *
 * A new connection is not used until it has answered its handshake, sent
 * first: AUTH when there is a password, then TIME (which also tells
 * Redis's clock, for sess_push_until()).  So a Redis that
 * wants a password we lack (NOAUTH), or refuses ours, is told apart from a
 * working one at once: the connection is dropped and tried again with the
 * backoff, sess_connected() stays false (so /healthz says 503), and the
 * reason is said once through cfg.on_state instead of every command
 * failing with an error reply.
 *
 * With sentinels, a second connection (sen_ac) goes to one sentinel at a
 * time: it asks for the primary's address, then SUBSCRIBEs to
 * +switch-master on the same connection (hiredis answers the regular
 * command before the subscription's messages) and stays as the watch.
 * Every reconnect of the primary (s->retry) asks afresh, on a new
 * sentinel connection, as the sentinel-clients document wants; a sentinel
 * that does not answer within connect_timeout_ms, or does not know the
 * name, is dropped for the next one, and a round with no answer waits the
 * backoff.  Whatever must drop a connection from inside a hiredis
 * callback (a failover message, -READONLY, a sentinel that failed) does it
 * from a zero timer instead: s->kick for the primary, s->sen_timer for
 * the sentinel.
 */
#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "sessions/sess.h"

#define SESS_BACKOFF_MIN_MS 100

/* CAS: v must be ARGV[1] (0: no key); then v+1, d = ARGV[2], TTL ARGV[3]. */
static const char sess_lua_cas[] =
    "local cur = tonumber(redis.call('HGET', KEYS[1], 'v')) or 0\n"
    "if cur ~= tonumber(ARGV[1]) then return {0, cur} end\n"
    "redis.call('HMSET', KEYS[1], 'v', cur + 1, 'd', ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
    "return {1, cur + 1}\n";

/* d is "NUMBER" or "NUMBER LABEL": OR ARGV[1] into the number (none, or
 * not a number: 0), LABEL becomes ARGV[3] (unless that is ""); then v+1
 * and TTL ARGV[2]. */
static const char sess_lua_or[] =
    "local d = redis.call('HGET', KEYS[1], 'd') or ''\n"
    "local cur = tonumber(redis.call('HGET', KEYS[1], 'v')) or 0\n"
    "local n = bit.bor(tonumber(string.match(d, '^%d+') or '0') or 0,\n"
    "                  tonumber(ARGV[1]))\n"
    "local label = ARGV[3]\n"
    "if label == '' then label = string.match(d, '^%d+ (.+)$') or '' end\n"
    "local v = string.format('%d', n)\n"
    "if label ~= '' then v = v .. ' ' .. label end\n"
    "redis.call('HMSET', KEYS[1], 'v', cur + 1, 'd', v)\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "return {1, cur + 1}\n";

/* Take the first item of a list if it is still ARGV[1]. */
static const char sess_lua_shift[] =
    "if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then\n"
    "  redis.call('LPOP', KEYS[1]) return 1 end\n"
    "return 0\n";

/* Append ARGV[1] if Redis's clock (ms) has not passed ARGV[2].  TIME
 * before a write needs effects replication, the default from Redis 5 on
 * (replicate_commands() asks for it on older ones). */
static const char sess_lua_push_until[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "if now > tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('RPUSH', KEYS[1], ARGV[1]) return 1\n";

/* Append ARGV[1] unless an item starts with ARGV[2]. */
static const char sess_lua_push_once[] =
    "local h = ARGV[2]\n"
    "for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do\n"
    "  if string.sub(v, 1, #h) == h then return 0 end\n"
    "end\n"
    "redis.call('RPUSH', KEYS[1], ARGV[1]) return 1\n";

enum sess_kind { K_GET, K_PEEK, K_CAS, K_DONE, K_UNTIL };

struct sess_hp {
    char host[256];
    int port;
};

struct sess_cmd {
    struct sess *s;
    enum sess_kind kind;
    union {
        sess_get_cb *get;
        sess_cas_cb *cas;
        sess_done_cb *done;
    } cb;
    void *arg;
    struct event *timer;
    int done;    /* the caller was called back */
    int overdue; /* timed out; waiting one more timeout for hiredis */
    unsigned gen;
    TAILQ_ENTRY(sess_cmd) link;
};

TAILQ_HEAD(sess_cmds, sess_cmd);

struct sess {
    struct event_base *base;
    char host[256];
    int port;
    char prefix[64];
    size_t prefix_len;
    int timeout_ms, connect_timeout_ms;
    size_t max_pending;
    char password[256]; /* "" none */
    sess_state_cb *on_state;
    void *state_arg;
    int said_error; /* the last state said: 0 up, a SESS_E* code, or 1
                       before the first */
    char said_why[256];

    redisAsyncContext *ac; /* NULL when there is none */
    unsigned gen;          /* bumped for every new connection */
    int connected;         /* the handshake was answered */
    int started;
    int backoff_ms;
    struct event *retry;        /* reconnect */
    struct event *conn_timeout; /* connect deadline */
    size_t pending;             /* callbacks owed */
    struct sess_cmds cmds;      /* every command hiredis holds */
    int flushing;               /* in sess_io_flush_cb() */
    /* the CAS script's SHA1 as this connection's SCRIPT LOAD gave it, or
     * "" (then EVAL, which sends the whole script) */
    char cas_sha[41];
    unsigned cas_sha_gen;
    int64_t hello_ms;        /* our wall clock when TIME was sent */
    int hello_refused;       /* this connection's handshake failed */
    int64_t clock_offset_ms; /* Redis's clock minus ours, from TIME */

    /* Sentinel (nsen > 0); host and port above are then the primary the
     * sentinels named last */
    struct sess_hp sen[SESS_SENTINELS_MAX];
    int nsen;
    char master_name[128];
    int sen_idx;               /* the sentinel asked now, or next */
    int sen_tried;             /* sentinels that failed in this round */
    redisAsyncContext *sen_ac; /* asking, then watching; NULL: none */
    struct event *sen_timer;   /* its deadline; at once: it failed */
    char sen_why[200];         /* why the last sentinel failed */
    struct event *kick;        /* drop the primary, outside callbacks */
    int kick_now;              /* ... and connect at once to host:port */
    char kick_why[200];
};

static void sess_connect(struct sess *s);
static void sess_script_load(struct sess *s);
static void sess_kick(struct sess *s, int now, const char *why);

const char *
sess_strerror(int status)
{
    switch (status) {
    case SESS_OK:
        return "ok";
    case SESS_ENOTFOUND:
        return "no such key";
    case SESS_ECONFLICT:
        return "version conflict";
    case SESS_EDOWN:
        return "redis not connected";
    case SESS_ETIMEDOUT:
        return "redis did not answer in time";
    case SESS_EBUSY:
        return "too many redis commands in flight";
    case SESS_EPROTO:
        return "unexpected redis reply";
    case SESS_ENOMEM:
        return "out of memory";
    case SESS_EINVAL:
        return "invalid key or value";
    case SESS_EAUTH:
        return "redis refused the password (redis.password)";
    case SESS_ELATE:
        return "redis ran the command too late; it did nothing";
    default:
        return "unknown error";
    }
}

/* The wall clock in ms (what Redis's TIME is compared with). */
static int64_t
sess_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sess_ms_tv(int ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* ------------------------------------------------------------------------
 * Commands
 */

static void
sess_cmd_free(struct sess_cmd *c)
{
    TAILQ_REMOVE(&c->s->cmds, c, link);
    if (c->timer) event_free(c->timer);
    free(c);
}

/* Call the caller back, once. */
static void
sess_cmd_finish(struct sess_cmd *c, int status, const char *v, size_t len,
                uint64_t version)
{
    if (c->done) return;
    c->done = 1;
    c->s->pending--;
    switch (c->kind) {
    case K_GET:
    case K_PEEK:
        c->cb.get(status, v, len, version, c->arg);
        break;
    case K_CAS:
        c->cb.cas(status, version, c->arg);
        break;
    case K_DONE:
    case K_UNTIL:
        c->cb.done(status, c->arg);
        break;
    }
}

static int
sess_reply_u64(const redisReply *r, uint64_t *out)
{
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        *out = (uint64_t)r->integer;
        return 0;
    }
    if (r->type == REDIS_REPLY_STRING) {
        char buf[24], *end;
        if (r->len == 0 || r->len >= sizeof(buf)) return -1;
        memcpy(buf, r->str, r->len);
        buf[r->len] = '\0';
        unsigned long long v = strtoull(buf, &end, 10);
        if (*end != '\0') return -1;
        *out = v;
        return 0;
    }
    return -1;
}

static void
sess_on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess_cmd *c = privdata;
    redisReply *r = reply;
    (void)ac;
    if (c->done) {
        sess_cmd_free(c);
        return;
    }
    if (r == NULL) {
        sess_cmd_finish(c, SESS_EDOWN, NULL, 0, 0);
        sess_cmd_free(c);
        return;
    }
    uint64_t v = 0;
    int st = SESS_EPROTO;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0) {
        /* a replica now (demoted by a failover, or we were sent to one):
         * nothing was written; find the primary again */
        struct sess *s = c->s;
        int ours = c->gen == s->gen;
        sess_cmd_finish(c, SESS_EDOWN, NULL, 0, 0);
        sess_cmd_free(c);
        if (ours)
            sess_kick(s, 0, "redis answered READONLY: it is a replica now");
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* the script cache was flushed: this one did not run; the next
         * ones send the script whole until it is loaded again */
        if (c->kind == K_CAS && strncmp(r->str, "NOSCRIPT", 8) == 0 &&
            c->s->cas_sha[0] != '\0') {
            c->s->cas_sha[0] = '\0';
            sess_script_load(c->s);
        }
        sess_cmd_finish(c, SESS_EPROTO, NULL, 0, 0);
        sess_cmd_free(c);
        return;
    }
    switch (c->kind) {
    case K_GET:
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) break;
        if (r->element[0]->type == REDIS_REPLY_NIL) {
            st = SESS_ENOTFOUND;
        } else if (sess_reply_u64(r->element[0], &v) == 0 &&
                   r->element[1]->type == REDIS_REPLY_STRING) {
            sess_cmd_finish(c, SESS_OK, r->element[1]->str, r->element[1]->len,
                            v);
            sess_cmd_free(c);
            return;
        }
        break;
    case K_PEEK:
        if (r->type == REDIS_REPLY_NIL) {
            st = SESS_ENOTFOUND;
        } else if (r->type == REDIS_REPLY_STRING) {
            sess_cmd_finish(c, SESS_OK, r->str, r->len, 0);
            sess_cmd_free(c);
            return;
        }
        break;
    case K_CAS:
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_INTEGER &&
            sess_reply_u64(r->element[1], &v) == 0)
            st = r->element[0]->integer == 1 ? SESS_OK : SESS_ECONFLICT;
        break;
    case K_DONE:
        st = SESS_OK;
        break;
    case K_UNTIL:
        if (r->type == REDIS_REPLY_INTEGER)
            st = r->integer == 1 ? SESS_OK : SESS_ELATE;
        break;
    }
    sess_cmd_finish(c, st, NULL, 0, st == SESS_ENOTFOUND ? 0 : v);
    sess_cmd_free(c);
}

/* SCRIPT LOAD's answer: the CAS script's SHA1, for EVALSHA on this
 * connection.  Nobody waits for it (until it comes, CAS sends EVAL), so it
 * carries no timer; a connection dropped first answers NULL. */
static void
sess_on_script(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    redisReply *r = reply;
    if (r == NULL || ac != s->ac || r->type != REDIS_REPLY_STRING ||
        r->len != 40)
        return;
    memcpy(s->cas_sha, r->str, 40);
    s->cas_sha[40] = '\0';
    s->cas_sha_gen = s->gen;
}

static void
sess_script_load(struct sess *s)
{
    if (s->ac != NULL)
        (void)redisAsyncCommand(s->ac, sess_on_script, s, "SCRIPT LOAD %s",
                                sess_lua_cas);
}

/* Drop the connection now (not from inside a hiredis callback): every
 * command hiredis holds is answered NULL, so finished and freed. */
static void
sess_drop(struct sess *s)
{
    redisAsyncContext *ac = s->ac;
    s->ac = NULL;
    s->connected = 0;
    if (s->conn_timeout) evtimer_del(s->conn_timeout);
    if (ac != NULL) redisAsyncFree(ac);
}

/* The next attempt in backoff_ms, less up to a tenth at random (never
 * more than SESS_BACKOFF_MAX_MS), then double the backoff. */
static void
sess_schedule(struct sess *s)
{
    if (!s->started) return;
    struct timeval tv;
    int ms = s->backoff_ms -
             (int)randombytes_uniform((uint32_t)(s->backoff_ms / 10 + 1));
    sess_ms_tv(ms, &tv);
    evtimer_add(s->retry, &tv);
    s->backoff_ms *= 2;
    if (s->backoff_ms > SESS_BACKOFF_MAX_MS)
        s->backoff_ms = SESS_BACKOFF_MAX_MS;
}

/* Say a change of state through cfg.on_state: up, or a kind of failure
 * other than the one said last (a drop, then refused connects, is one
 * outage: said once, with the first reason). */
static void
sess_say(struct sess *s, int error, const char *why)
{
    if (s->on_state == NULL || error == s->said_error) return;
    s->said_error = error;
    snprintf(s->said_why, sizeof(s->said_why), "%s", why ? why : "");
    s->on_state(error, error ? s->said_why : NULL, s->state_arg);
}

static void
sess_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sess_cmd *c = arg;
    struct sess *s = c->s;
    (void)fd;
    (void)what;
    if (!c->overdue) {
        c->overdue = 1;
        struct timeval tv;
        sess_ms_tv(s->timeout_ms, &tv);
        evtimer_add(c->timer, &tv);
        sess_cmd_finish(c, SESS_ETIMEDOUT, NULL, 0, 0);
        return;
    }
    /* still no answer a whole timeout later: Redis hangs */
    if (c->gen == s->gen && s->ac != NULL) {
        sess_drop(s);
        sess_schedule(s);
    }
}

static struct sess_cmd *
sess_cmd_new(struct sess *s, enum sess_kind kind, void *cb, void *arg, int *rc)
{
    if (!s->connected || s->ac == NULL) {
        *rc = SESS_EDOWN;
        return NULL;
    }
    if (s->pending >= s->max_pending) {
        *rc = SESS_EBUSY;
        return NULL;
    }
    struct sess_cmd *c = calloc(1, sizeof(*c));
    if (c != NULL) c->timer = evtimer_new(s->base, sess_on_timeout, c);
    if (c == NULL || c->timer == NULL) {
        free(c);
        *rc = SESS_ENOMEM;
        return NULL;
    }
    c->s = s;
    c->kind = kind;
    c->arg = arg;
    c->gen = s->gen;
    switch (kind) {
    case K_GET:
    case K_PEEK:
        c->cb.get = (sess_get_cb *)cb;
        break;
    case K_CAS:
        c->cb.cas = (sess_cas_cb *)cb;
        break;
    case K_DONE:
    case K_UNTIL:
        c->cb.done = (sess_done_cb *)cb;
        break;
    }
    return c;
}

/* After redisAsyncCommand: 0 accepted, or the error (c freed). */
static int
sess_cmd_sent(struct sess *s, struct sess_cmd *c, int ok)
{
    if (ok != REDIS_OK) {
        event_free(c->timer);
        free(c);
        return SESS_EDOWN;
    }
    TAILQ_INSERT_TAIL(&s->cmds, c, link);
    s->pending++;
    struct timeval tv;
    sess_ms_tv(s->timeout_ms, &tv);
    evtimer_add(c->timer, &tv);
    return SESS_OK;
}

static int
sess_key(const struct sess *s, const char *key, char *buf)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || s->prefix_len + n > SESS_KEY_MAX) return -1;
    memcpy(buf, s->prefix, s->prefix_len);
    memcpy(buf + s->prefix_len, key, n + 1);
    return 0;
}

int
sess_get(struct sess *s, const char *key, sess_get_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0) return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_new(s, K_GET, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_cmd_sent(
        s, c, redisAsyncCommand(s->ac, sess_on_reply, c, "HMGET %s v d", k));
}

int
sess_cas(struct sess *s, const char *key, uint64_t expect, const char *value,
         size_t len, unsigned ttl_s, sess_cas_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0 || value == NULL ||
        len > SESS_VALUE_MAX || ttl_s == 0)
        return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_new(s, K_CAS, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    char ex[24], ttl[16];
    snprintf(ex, sizeof(ex), "%llu", (unsigned long long)expect);
    snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    if (s->cas_sha[0] != '\0' && s->cas_sha_gen == s->gen)
        return sess_cmd_sent(s, c,
                             redisAsyncCommand(s->ac, sess_on_reply, c,
                                               "EVALSHA %s 1 %s %s %b %s",
                                               s->cas_sha, k, ex, value, len,
                                               ttl));
    return sess_cmd_sent(
        s, c,
        redisAsyncCommand(s->ac, sess_on_reply, c, "EVAL %s 1 %s %s %b %s",
                          sess_lua_cas, k, ex, value, len, ttl));
}

int
sess_bits_or(struct sess *s, const char *key, uint32_t bits, const char *label,
             unsigned ttl_s, sess_cas_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (label == NULL) label = "";
    if (cb == NULL || sess_key(s, key, k) < 0 || ttl_s == 0 ||
        bits > 0x7fffffffu || strlen(label) > SESS_LABEL_MAX)
        return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_new(s, K_CAS, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    char b[16], ttl[16];
    snprintf(b, sizeof(b), "%u", (unsigned)bits);
    snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    return sess_cmd_sent(s, c,
                         redisAsyncCommand(s->ac, sess_on_reply, c,
                                           "EVAL %s 1 %s %s %s %s", sess_lua_or,
                                           k, b, ttl, label));
}

int
sess_del(struct sess *s, const char *key, sess_done_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0) return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_new(s, K_DONE, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_cmd_sent(
        s, c, redisAsyncCommand(s->ac, sess_on_reply, c, "DEL %s", k));
}

int
sess_push(struct sess *s, const char *key, const char *value, size_t len,
          sess_done_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0 || value == NULL ||
        len > SESS_VALUE_MAX)
        return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_new(s, K_DONE, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_cmd_sent(s, c,
                         redisAsyncCommand(s->ac, sess_on_reply, c,
                                           "RPUSH %s %b", k, value, len));
}

int
sess_push_until(struct sess *s, const char *key, const char *value, size_t len,
                int within_ms, sess_done_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0 || value == NULL ||
        len > SESS_VALUE_MAX || within_ms < 0)
        return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_new(s, K_UNTIL, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    char until[24];
    snprintf(until, sizeof(until), "%lld",
             (long long)(sess_wall_ms() + s->clock_offset_ms + within_ms));
    return sess_cmd_sent(
        s, c,
        redisAsyncCommand(s->ac, sess_on_reply, c, "EVAL %s 1 %s %b %s",
                          sess_lua_push_until, k, value, len, until));
}

int
sess_push_once(struct sess *s, const char *key, const char *value, size_t len,
               size_t head, sess_done_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0 || value == NULL ||
        len > SESS_VALUE_MAX || head == 0 || head > len)
        return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_new(s, K_DONE, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_cmd_sent(
        s, c,
        redisAsyncCommand(s->ac, sess_on_reply, c, "EVAL %s 1 %s %b %b",
                          sess_lua_push_once, k, value, len, value, head));
}

int
sess_peek(struct sess *s, const char *key, sess_get_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0) return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_new(s, K_PEEK, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_cmd_sent(
        s, c, redisAsyncCommand(s->ac, sess_on_reply, c, "LINDEX %s 0", k));
}

int
sess_shift(struct sess *s, const char *key, const char *value, size_t len,
           sess_done_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0 || value == NULL ||
        len > SESS_VALUE_MAX)
        return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_new(s, K_DONE, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_cmd_sent(s, c,
                         redisAsyncCommand(s->ac, sess_on_reply, c,
                                           "EVAL %s 1 %s %b", sess_lua_shift, k,
                                           value, len));
}

int
sess_ping(struct sess *s, sess_done_cb *cb, void *arg)
{
    int rc;
    if (cb == NULL) return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_new(s, K_DONE, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_cmd_sent(s, c,
                         redisAsyncCommand(s->ac, sess_on_reply, c, "PING"));
}

size_t
sess_pending(const struct sess *s)
{
    return s->pending;
}

unsigned
sess_epoch(const struct sess *s)
{
    return s->gen;
}

int
sess_connected(const struct sess *s)
{
    return s->connected;
}

/* ------------------------------------------------------------------------
 * hiredis on libevent
 *
 * Our own glue instead of hiredis's libevent adapter, for two syscalls
 * fewer per command.  The adapter writes a command only when a write event
 * says the socket has room (an epoll_ctl to ask, a turn of the loop, an
 * epoll_ctl to stop asking), and re-arms its one-shot read event after
 * every reply (an epoll_ctl that changes nothing).  Here a command makes
 * the connection's flush event active: it runs later in the same turn of
 * the loop, after the other callbacks that turn, so the commands they sent
 * go out in one write, and the write event is asked for only when the
 * socket is full (or while connecting: hiredis learns that the connection
 * is up from the first write event).  The read event is persistent.
 */

struct sess_io {
    struct sess *s;
    redisAsyncContext *ac;
    struct event *rev, *wev, *flush;
    int reading, writing, queued;
};

static void
sess_io_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sess_io *io = arg;
    (void)fd;
    (void)what;
    redisAsyncHandleRead(io->ac); /* io may be gone */
}

static void
sess_io_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sess_io *io = arg;
    (void)fd;
    (void)what;
    redisAsyncHandleWrite(io->ac); /* io may be gone */
}

static void
sess_io_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sess_io *io = arg;
    struct sess *s = io->s; /* outlives io */
    (void)fd;
    (void)what;
    io->queued = 0;
    s->flushing = 1;
    redisAsyncHandleWrite(io->ac); /* io may be gone */
    s->flushing = 0;
}

static void
sess_io_add_read(void *arg)
{
    struct sess_io *io = arg;
    if (io->reading) return;
    if (event_add(io->rev, NULL) == 0) io->reading = 1;
}

static void
sess_io_del_read(void *arg)
{
    struct sess_io *io = arg;
    if (!io->reading) return;
    event_del(io->rev);
    io->reading = 0;
}

static void
sess_io_add_write(void *arg)
{
    struct sess_io *io = arg;
    if (io->writing) return; /* waiting for room already */
    if (!(io->ac->c.flags & REDIS_CONNECTED) || io->s->flushing) {
        /* connecting, or the flush found the socket full: wait for room */
        if (event_add(io->wev, NULL) == 0) io->writing = 1;
        return;
    }
    if (!io->queued) {
        io->queued = 1;
        event_active(io->flush, EV_WRITE, 1);
    }
}

static void
sess_io_del_write(void *arg)
{
    struct sess_io *io = arg;
    if (!io->writing) return;
    event_del(io->wev);
    io->writing = 0;
}

static void
sess_io_cleanup(void *arg)
{
    struct sess_io *io = arg;
    if (io == NULL) return;
    if (io->rev) event_free(io->rev);
    if (io->wev) event_free(io->wev);
    if (io->flush) event_free(io->flush);
    free(io);
}

static int
sess_io_attach(struct sess *s, redisAsyncContext *ac)
{
    struct sess_io *io;
    int fd = ac->c.fd;
    if (ac->ev.data != NULL || (io = calloc(1, sizeof(*io))) == NULL) return -1;
    io->s = s;
    io->ac = ac;
    io->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, sess_io_read_cb, io);
    io->wev =
        event_new(s->base, fd, EV_WRITE | EV_PERSIST, sess_io_write_cb, io);
    io->flush = event_new(s->base, -1, 0, sess_io_flush_cb, io);
    if (io->rev == NULL || io->wev == NULL || io->flush == NULL) {
        sess_io_cleanup(io);
        return -1;
    }
    ac->ev.addRead = sess_io_add_read;
    ac->ev.delRead = sess_io_del_read;
    ac->ev.addWrite = sess_io_add_write;
    ac->ev.delWrite = sess_io_del_write;
    ac->ev.cleanup = sess_io_cleanup;
    ac->ev.data = io;
    return 0;
}

/* ------------------------------------------------------------------------
 * The connection
 */

/* The handshake was refused (Redis's error in msg): say why once, and
 * drop the connection from a zero timer (sess_on_conn_timeout) -- not
 * here, inside a hiredis callback -- to try again with the backoff. */
static void
sess_hello_refused(struct sess *s, const char *msg)
{
    if (s->hello_refused) return;
    s->hello_refused = 1;
    const char *str = msg;
    char why[160];
    int auth = strncmp(str, "NOAUTH", 6) == 0 ||
               strncmp(str, "WRONGPASS", 9) == 0 ||
               strncmp(str, "ERR invalid password", 20) == 0 ||
               strstr(str, "AUTH") != NULL;
    if (strncmp(str, "NOAUTH", 6) == 0)
        snprintf(why, sizeof(why),
                 "redis wants a password: set redis.password or "
                 "redis.password_file (%.80s)",
                 str);
    else if (auth)
        snprintf(why, sizeof(why),
                 "redis refused the password of redis.password or "
                 "redis.password_file (%.80s)",
                 str);
    else
        snprintf(why, sizeof(why), "redis refused the handshake (%.100s)", str);
    sess_say(s, auth ? SESS_EAUTH : SESS_EPROTO, why);
    struct timeval now = {0, 0};
    evtimer_add(s->conn_timeout, &now);
}

/* AUTH's answer: only a refusal matters (TIME, sent right after it,
 * decides when the connection is up). */
static void
sess_on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    redisReply *r = reply;
    if (r == NULL || ac != s->ac) return; /* gone already */
    if (r->type == REDIS_REPLY_ERROR) sess_hello_refused(s, r->str);
}

/* TIME's answer ends the handshake: the connection is used from now on,
 * and Redis's clock is known (for sess_push_until()), or it is dropped. */
static void
sess_on_hello(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    redisReply *r = reply;
    if (r == NULL || ac != s->ac || s->hello_refused) return;
    if (r->type == REDIS_REPLY_ERROR) {
        sess_hello_refused(s, r->str);
        return;
    }
    int64_t now = sess_wall_ms();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        sess_hello_refused(s, "an answer to TIME that is not a time");
        return;
    }
    int64_t redis_ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
                       strtoll(r->element[1]->str, NULL, 10) / 1000;
    /* the answer was made somewhere between sending and now */
    s->clock_offset_ms = redis_ms - (s->hello_ms + now) / 2;
    evtimer_del(s->conn_timeout);
    s->connected = 1;
    s->backoff_ms = SESS_BACKOFF_MIN_MS;
    s->cas_sha[0] = '\0';
    sess_script_load(s);
    sess_say(s, 0, NULL);
}

/* ROLE's answer (with sentinels): the address they named must be a
 * primary; a replica (a failover under way, or a sentinel that has not
 * caught up) is dropped, and the sentinels are asked again. */
static void
sess_on_role(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    redisReply *r = reply;
    if (r == NULL || ac != s->ac || s->hello_refused) return;
    if (r->type == REDIS_REPLY_ERROR) {
        sess_hello_refused(s, r->str);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[0]->str, "master") == 0)
        return;
    char why[200];
    snprintf(why, sizeof(why),
             "%.100s:%d is not the primary (ROLE %.20s); asking the "
             "sentinels again",
             s->host, s->port,
             r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                     r->element[0]->type == REDIS_REPLY_STRING
                 ? r->element[0]->str
                 : "?");
    s->hello_refused = 1;
    sess_say(s, SESS_EPROTO, why);
    struct timeval now = {0, 0};
    evtimer_add(s->conn_timeout, &now);
}

static void
sess_on_connect(const redisAsyncContext *ac, int status)
{
    struct sess *s = ac->data;
    if (ac != s->ac) return; /* one we gave up on */
    if (status != REDIS_OK) {
        evtimer_del(s->conn_timeout);
        sess_say(s, SESS_EDOWN, ac->errstr);
        s->ac = NULL; /* hiredis frees it after this returns */
        s->connected = 0;
        sess_schedule(s);
        return;
    }
    /* the connect deadline runs on until the handshake is answered */
    s->hello_refused = 0;
    s->hello_ms = sess_wall_ms();
    int rc = REDIS_OK;
    if (s->password[0] != '\0')
        rc = redisAsyncCommand(s->ac, sess_on_auth, s, "AUTH %s", s->password);
    if (rc == REDIS_OK && s->nsen > 0)
        rc = redisAsyncCommand(s->ac, sess_on_role, s, "ROLE");
    if (rc == REDIS_OK) rc = redisAsyncCommand(s->ac, sess_on_hello, s, "TIME");
    if (rc != REDIS_OK) {
        struct timeval now = {0, 0};
        evtimer_add(s->conn_timeout, &now);
    }
}

static void
sess_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct sess *s = ac->data;
    if (ac != s->ac) return; /* dropped on purpose: already handled */
    if (s->connected || status != REDIS_OK)
        sess_say(s, SESS_EDOWN,
                 status != REDIS_OK && ac->errstr[0] ? ac->errstr
                                                     : "connection closed");
    s->ac = NULL;
    s->connected = 0;
    sess_schedule(s);
}

static void
sess_on_conn_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sess *s = arg;
    (void)fd;
    (void)what;
    if (s->ac != NULL && !s->connected) {
        /* (after a refused handshake this timer only drops it) */
        if (s->said_error != SESS_EAUTH && s->said_error != SESS_EPROTO)
            sess_say(s, SESS_ETIMEDOUT,
                     "redis did not answer the connect in time");
        sess_drop(s);
        sess_schedule(s);
    }
}

static void
sess_connect(struct sess *s)
{
    redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
    if (ac == NULL || ac->err) {
        sess_say(s, SESS_EDOWN, ac ? ac->errstr : "out of memory");
        if (ac != NULL) redisAsyncFree(ac);
        sess_schedule(s);
        return;
    }
    ac->data = s;
    s->ac = ac;
    s->gen++;
    if (sess_io_attach(s, ac) != 0 ||
        redisAsyncSetConnectCallback(ac, sess_on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ac, sess_on_disconnect) != REDIS_OK) {
        sess_drop(s);
        sess_schedule(s);
        return;
    }
    struct timeval tv;
    sess_ms_tv(s->connect_timeout_ms, &tv);
    evtimer_add(s->conn_timeout, &tv);
}

/* ------------------------------------------------------------------------
 * Sentinel
 */

/* Parse "host:port" or "[v6]:port" (n bytes at a) into hp (NULL: check
 * only).  NULL, or why not. */
static const char *
sess_hp_parse(const char *a, size_t n, struct sess_hp *hp)
{
    const char *h = a, *colon = NULL;
    size_t hl;
    if (n == 0) return "an entry is empty";
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', n);
        if (rb == NULL || rb + 1 >= a + n || rb[1] != ':')
            return "an IPv6 address must be written [address]:port";
        h = a + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        for (size_t i = 0; i < n; i++)
            if (a[i] == ':') colon = a + i;
        if (colon == NULL) return "an entry is not host:port";
        hl = (size_t)(colon - a);
        if (memchr(a, ':', hl) != NULL)
            return "an IPv6 address must be written [address]:port";
    }
    if (hl == 0 || hl >= sizeof(hp->host)) return "a host is empty or too long";
    long port = 0;
    const char *p = colon + 1, *end = a + n;
    if (p == end) return "a port is missing";
    for (; p < end && port <= 65535; p++) {
        if (*p < '0' || *p > '9') return "a port is not a number";
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535) return "a port is not in 1..65535";
    if (hp != NULL) {
        memcpy(hp->host, h, hl);
        hp->host[hl] = '\0';
        hp->port = (int)port;
    }
    return NULL;
}

/* Parse the comma-separated list into out[] (NULL: check only), *n
 * entries.  NULL, or why not. */
static const char *
sess_hp_list(const char *list, struct sess_hp *out, int *n)
{
    *n = 0;
    for (const char *p = list; *p != '\0';) {
        while (*p == ' ')
            p++;
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (*n >= SESS_SENTINELS_MAX) return "more than 16 sentinels";
        const char *why = sess_hp_parse(p, len, out ? &out[*n] : NULL);
        if (why != NULL) return why;
        (*n)++;
        if (comma == NULL) break;
        p = comma + 1;
        if (*p == '\0') return "an entry is empty";
    }
    return NULL;
}

const char *
sess_sentinels_check(const char *list)
{
    int n;
    return list == NULL ? NULL : sess_hp_list(list, NULL, &n);
}

/* Drop the sentinel connection (never from inside its callbacks: those
 * go through sess_sen_failed()). */
static void
sess_sen_drop(struct sess *s)
{
    redisAsyncContext *ac = s->sen_ac;
    s->sen_ac = NULL; /* its callbacks, run NULL by the free, see that */
    evtimer_del(s->sen_timer);
    if (ac != NULL) redisAsyncFree(ac);
}

/* The sentinel asked now failed: remember why, and go on from a zero
 * timer (sess_sen_on_timer), outside hiredis's callbacks. */
static void
sess_sen_failed(struct sess *s, const char *why)
{
    const struct sess_hp *hp = &s->sen[s->sen_idx];
    snprintf(s->sen_why, sizeof(s->sen_why), "sentinel %.100s:%d: %.80s",
             hp->host, hp->port, why);
    struct timeval now = {0, 0};
    evtimer_add(s->sen_timer, &now);
}

/* The sentinels name host:port as the primary: connect there, unless it
 * is the one in use (or being connected to) already. */
static void
sess_sen_follow(struct sess *s, const char *host, int port, const char *why)
{
    if (s->ac != NULL && strcmp(host, s->host) == 0 && port == s->port) return;
    snprintf(s->host, sizeof(s->host), "%s", host);
    s->port = port;
    sess_kick(s, 1, why);
}

/* SENTINEL get-master-addr-by-name's answer: [ip, port], or nil when the
 * sentinel does not monitor that name. */
static void
sess_sen_on_addr(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    redisReply *r = reply;
    char why[160];
    if (r == NULL || ac != s->sen_ac) return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        if (r->type == REDIS_REPLY_ERROR)
            snprintf(why, sizeof(why), "%.100s", r->str);
        else if (r->type == REDIS_REPLY_NIL)
            snprintf(why, sizeof(why), "does not know a primary named '%.60s'",
                     s->master_name);
        else
            snprintf(why, sizeof(why), "an answer that is not an address");
        sess_sen_failed(s, why);
        return;
    }
    char *end;
    long port = strtol(r->element[1]->str, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535 ||
        r->element[0]->len >= sizeof(s->host)) {
        sess_sen_failed(s, "an answer that is not an address");
        return;
    }
    /* this one watches from now on */
    evtimer_del(s->sen_timer);
    s->sen_tried = 0;
    sess_sen_follow(s, r->element[0]->str, (int)port,
                    "the sentinels name another primary");
}

/* +switch-master messages: "name old-ip old-port new-ip new-port". */
static void
sess_sen_on_switch(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    redisReply *r = reply;
    char name[128], oip[256], nip[256], why[200];
    int oport, nport;
    if (r == NULL || ac != s->sen_ac || r->type != REDIS_REPLY_ARRAY ||
        r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    if (sscanf(r->element[2]->str, "%127s %255s %d %255s %d", name, oip, &oport,
               nip, &nport) != 5 ||
        strcmp(name, s->master_name) != 0 || nport < 1 || nport > 65535)
        return;
    snprintf(why, sizeof(why), "failover: the primary is now %.100s:%d", nip,
             nport);
    sess_sen_follow(s, nip, nport, why);
}

static void
sess_sen_on_connect(const redisAsyncContext *ac, int status)
{
    struct sess *s = ac->data;
    if (ac != s->sen_ac || status == REDIS_OK) return;
    s->sen_ac = NULL; /* hiredis frees it after this returns */
    sess_sen_failed(s, ac->errstr);
}

static void
sess_sen_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct sess *s = ac->data;
    if (ac != s->sen_ac) return; /* dropped on purpose */
    s->sen_ac = NULL;
    sess_sen_failed(s, status == REDIS_OK || ac->errstr[0] == '\0'
                           ? "connection closed"
                           : ac->errstr);
}

/* Ask sen[sen_idx] on a new connection (the one before, if any, is
 * dropped): the primary's address, then the watch. */
static void
sess_sen_connect(struct sess *s)
{
    sess_sen_drop(s);
    const struct sess_hp *hp = &s->sen[s->sen_idx];
    redisAsyncContext *ac = redisAsyncConnect(hp->host, hp->port);
    if (ac == NULL || ac->err) {
        sess_sen_failed(s, ac ? ac->errstr : "out of memory");
        if (ac != NULL) redisAsyncFree(ac);
        return;
    }
    ac->data = s;
    s->sen_ac = ac;
    snprintf(s->sen_why, sizeof(s->sen_why),
             "sentinel %.100s:%d: no answer in time", hp->host, hp->port);
    if (sess_io_attach(s, ac) != 0 ||
        redisAsyncSetConnectCallback(ac, sess_sen_on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ac, sess_sen_on_disconnect) !=
            REDIS_OK ||
        redisAsyncCommand(ac, sess_sen_on_addr, s,
                          "SENTINEL get-master-addr-by-name %s",
                          s->master_name) != REDIS_OK ||
        redisAsyncCommand(ac, sess_sen_on_switch, s,
                          "SUBSCRIBE +switch-master") != REDIS_OK) {
        sess_sen_failed(s, "could not send to it");
        return;
    }
    struct timeval tv;
    sess_ms_tv(s->connect_timeout_ms, &tv);
    evtimer_add(s->sen_timer, &tv);
}

/* The sentinel asked did not answer in time, or failed: drop it, ask the
 * next; after a whole round without an answer, wait the backoff. */
static void
sess_sen_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sess *s = arg;
    (void)fd;
    (void)what;
    sess_sen_drop(s);
    if (!s->started) return;
    s->sen_idx = (s->sen_idx + 1) % s->nsen;
    if (++s->sen_tried < s->nsen) {
        sess_sen_connect(s);
        return;
    }
    s->sen_tried = 0;
    if (!s->connected) sess_say(s, SESS_EDOWN, s->sen_why);
    sess_schedule(s);
}

/* Drop the primary's connection from a zero timer (a failover message
 * or a -READONLY answer arrives inside a hiredis callback); then connect
 * to host:port at once (now: the sentinels just named it), or find the
 * primary again after the backoff. */
static void
sess_kick(struct sess *s, int now, const char *why)
{
    s->kick_now = s->kick_now || now;
    snprintf(s->kick_why, sizeof(s->kick_why), "%s", why);
    struct timeval zero = {0, 0};
    evtimer_add(s->kick, &zero);
}

static void
sess_on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct sess *s = arg;
    int now = s->kick_now;
    (void)fd;
    (void)what;
    s->kick_now = 0;
    if (s->ac != NULL) {
        if (s->connected) sess_say(s, SESS_EDOWN, s->kick_why);
        sess_drop(s); /* commands in flight: SESS_EDOWN */
    }
    if (!s->started) return;
    if (now) {
        evtimer_del(s->retry);
        sess_connect(s);
    } else {
        sess_schedule(s);
    }
}

static void
sess_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct sess *s = arg;
    (void)fd;
    (void)what;
    if (!s->started) return;
    if (s->nsen > 0)
        sess_sen_connect(s); /* its answer connects, if need be */
    else if (s->ac == NULL)
        sess_connect(s);
}

const char *
sess_addr(const struct sess *s, int *port)
{
    *port = s->port;
    return s->host;
}

struct sess *
sess_new(const struct sess_cfg *cfg, struct event_base *base, char *err,
         size_t errlen)
{
    const char *why = NULL;
    if (cfg == NULL || base == NULL)
        why = "no configuration or event base";
    else if (cfg->host == NULL || cfg->host[0] == '\0' ||
             strlen(cfg->host) >= 256)
        why = "redis host missing or too long";
    else if (cfg->port <= 0 || cfg->port > 65535)
        why = "redis port out of range";
    else if (cfg->prefix == NULL || strlen(cfg->prefix) >= 64)
        why = "redis key prefix missing or longer than 63 bytes";
    else if (cfg->timeout_ms <= 0 || cfg->max_pending == 0)
        why = "redis timeout and max_pending must be positive";
    else if (cfg->password != NULL && strlen(cfg->password) >= 256)
        why = "redis password longer than 255 bytes";
    else if (cfg->sentinels != NULL &&
             (why = sess_sentinels_check(cfg->sentinels)) != NULL)
        ;
    else if (cfg->sentinels != NULL && cfg->sentinels[0] != '\0' &&
             (cfg->master_name == NULL || cfg->master_name[0] == '\0' ||
              strlen(cfg->master_name) >= 128 ||
              strpbrk(cfg->master_name, " \t\r\n") != NULL))
        why = "with sentinels, a primary's name (1..127 bytes, no spaces) "
              "is needed";
    if (why != NULL) {
        snprintf(err, errlen, "%s", why);
        return NULL;
    }
    struct sess *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base = base;
    snprintf(s->host, sizeof(s->host), "%s", cfg->host);
    s->port = cfg->port;
    snprintf(s->prefix, sizeof(s->prefix), "%s", cfg->prefix);
    s->prefix_len = strlen(s->prefix);
    s->timeout_ms = cfg->timeout_ms;
    s->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : cfg->timeout_ms;
    s->max_pending = cfg->max_pending;
    snprintf(s->password, sizeof(s->password), "%s",
             cfg->password ? cfg->password : "");
    s->on_state = cfg->on_state;
    s->said_error = 1;
    s->state_arg = cfg->state_arg;
    s->backoff_ms = SESS_BACKOFF_MIN_MS;
    TAILQ_INIT(&s->cmds);
    if (cfg->sentinels != NULL && cfg->sentinels[0] != '\0') {
        (void)sess_hp_list(cfg->sentinels, s->sen, &s->nsen); /* checked */
        snprintf(s->master_name, sizeof(s->master_name), "%s",
                 cfg->master_name);
    }
    s->retry = evtimer_new(base, sess_on_retry, s);
    s->conn_timeout = evtimer_new(base, sess_on_conn_timeout, s);
    s->sen_timer = evtimer_new(base, sess_sen_on_timer, s);
    s->kick = evtimer_new(base, sess_on_kick, s);
    if (s->retry == NULL || s->conn_timeout == NULL || s->sen_timer == NULL ||
        s->kick == NULL) {
        snprintf(err, errlen, "out of memory");
        sess_free(s);
        return NULL;
    }
    return s;
}

int
sess_start(struct sess *s)
{
    if (s->started) return 0;
    s->started = 1;
    s->backoff_ms = SESS_BACKOFF_MIN_MS;
    struct timeval tv = {0, 0};
    return evtimer_add(s->retry, &tv) == 0 ? 0 : -1;
}

void
sess_stop(struct sess *s)
{
    s->started = 0;
    s->connected = 0; /* callbacks below get EDOWN for new commands */
    if (s->retry) evtimer_del(s->retry);
    if (s->kick) evtimer_del(s->kick);
    s->kick_now = 0;
    if (s->sen_timer) sess_sen_drop(s);
    /* answer everyone first, so no callback can race the teardown */
    struct sess_cmd *c;
    TAILQ_FOREACH (c, &s->cmds, link) {
        if (c->timer) evtimer_del(c->timer);
        sess_cmd_finish(c, SESS_EDOWN, NULL, 0, 0);
    }
    if (s->ac != NULL) sess_drop(s);
}

void
sess_free(struct sess *s)
{
    if (s == NULL) return;
    sess_stop(s);
    while (!TAILQ_EMPTY(&s->cmds))
        sess_cmd_free(TAILQ_FIRST(&s->cmds));
    if (s->retry) event_free(s->retry);
    if (s->conn_timeout) event_free(s->conn_timeout);
    if (s->sen_timer) event_free(s->sen_timer);
    if (s->kick) event_free(s->kick);
    sodium_memzero(s->password, sizeof(s->password));
    free(s);
}
