/*
 * sess_redis.c -- the session store's commands and their Lua scripts, on
 * hiredis 0.14's async API (see sess.h for the contract; the connection
 * is sess_conn.c).
 *
 * Every accepted call becomes a struct sess_cmd: hiredis's privdata points
 * at it, and it sits on s->cmds until hiredis is done with it (a reply, or
 * a NULL reply when the connection goes).  The caller's callback runs at
 * most once, marked by cmd->done: from the reply, from the command's timer
 * (SESS_ETIMEDOUT), or from sess_stop() (SESS_EDOWN).  A command that timed
 * out stays with hiredis until its late reply arrives; if none comes within
 * a second timeout_ms, Redis is taken for hung and the connection is
 * dropped, so a stopped server cannot make commands pile up.
 */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "sessions/sess_int.h"

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

/* ------------------------------------------------------------------------
 * Commands
 */

void
sess_cmd_free(struct sess_cmd *c)
{
    TAILQ_REMOVE(&c->s->cmds, c, link);
    if (c->timer) event_free(c->timer);
    free(c->fmt);
    free(c);
}

/* Call the caller back, once. */
void
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
    if (r->type == REDIS_REPLY_ERROR && c->s->parent != NULL &&
        (strncmp(r->str, "MOVED ", 6) == 0 ||
         strncmp(r->str, "ASK ", 4) == 0)) {
        /* a cluster node: the key's slot is served elsewhere */
        st = sess_cl_redirect(c, r->str, r->len);
        if (st != SESS_OK) sess_cmd_finish(c, st, NULL, 0, 0);
        sess_cmd_free(c);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR && c->s->parent != NULL &&
        strncmp(r->str, "CLUSTERDOWN", 11) == 0) {
        /* the cluster is failing over (a primary failed, its replica not
         * promoted yet) or lost a slot: the command was refused, not run.
         * SESS_EDOWN, as for a drop: its caller waits for the cluster to
         * be whole again (a fresh read then tells what is there) instead
         * of taking this for a final error */
        sess_cl_down(c->s, r->str);
        sess_cmd_finish(c, SESS_EDOWN, NULL, 0, 0);
        sess_cmd_free(c);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR && (strncmp(r->str, "LOADING", 7) == 0 ||
                                         strncmp(r->str, "READONLY", 8) == 0)) {
        /* LOADING: Redis is reading its data back (a restart, a replica's
         * full sync); READONLY: a replica now (demoted by a failover, or
         * we were sent to one).  Refused, nothing written: as for a drop,
         * the caller waits for the connection, made again (to the
         * primary, once it answers PING) */
        struct sess *s = c->s;
        int ours = c->gen == s->gen;
        int loading = r->str[0] == 'L';
        sess_cmd_finish(c, SESS_EDOWN, NULL, 0, 0);
        sess_cmd_free(c);
        if (ours)
            sess_kick(s, 0,
                      loading ? "redis answered LOADING: it is loading its data"
                              : "redis answered READONLY: it is a replica now");
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

void
sess_script_load(struct sess *s)
{
    if (s->ac != NULL)
        (void)redisAsyncCommand(s->ac, sess_on_script, s, "SCRIPT LOAD %s",
                                sess_lua_cas);
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
        free(c->fmt);
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

/* Format and send c's command on s, the answer to sess_on_reply();
 * sess_cmd_sent()'s result.  A cluster node's command keeps its bytes,
 * to send again on -MOVED or -ASK. */
static int
sess_send(struct sess *s, struct sess_cmd *c, const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        event_free(c->timer);
        free(c);
        return SESS_ENOMEM;
    }
    int ok =
        redisAsyncFormattedCommand(s->ac, sess_on_reply, c, cmd, (size_t)len);
    if (s->parent != NULL) {
        c->fmt = cmd;
        c->fmt_len = len;
    } else {
        free(cmd);
    }
    return sess_cmd_sent(s, c, ok);
}

int
sess_cmd_resend(struct sess *to, struct sess_cmd *c, int asking)
{
    int rc;
    struct sess_cmd *nc = sess_cmd_new(to, c->kind, NULL, c->arg, &rc);
    if (nc == NULL) return rc;
    nc->cb = c->cb;
    nc->redirected = 1;
    if (asking && redisAsyncCommand(to->ac, NULL, NULL, "ASKING") != REDIS_OK) {
        event_free(nc->timer);
        free(nc);
        return SESS_EDOWN;
    }
    nc->fmt = c->fmt;
    nc->fmt_len = c->fmt_len;
    c->fmt = NULL;
    rc =
        sess_cmd_sent(to, nc,
                      redisAsyncFormattedCommand(to->ac, sess_on_reply, nc,
                                                 nc->fmt, (size_t)nc->fmt_len));
    if (rc != SESS_OK) return rc;
    /* the new command calls back; this one is done without a word */
    c->done = 1;
    c->s->pending--;
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

/* A command for the formatted key k on the store that holds it: s itself,
 * or for a cluster its key's primary (*s is set to that node's store).
 * NULL with *rc set when that store cannot take it now. */
static struct sess_cmd *
sess_cmd_for_key(struct sess **s, const char *k, enum sess_kind kind, void *cb,
                 void *arg, int *rc)
{
    if ((*s)->cl != NULL && (*s = sess_cl_route(*s, k, rc)) == NULL)
        return NULL;
    return sess_cmd_new(*s, kind, cb, arg, rc);
}

int
sess_get(struct sess *s, const char *key, sess_get_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0) return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_for_key(&s, k, K_GET, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_send(s, c, "HMGET %s v d", k);
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
    struct sess_cmd *c = sess_cmd_for_key(&s, k, K_CAS, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    char ex[24], ttl[16];
    snprintf(ex, sizeof(ex), "%llu", (unsigned long long)expect);
    snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    if (s->cas_sha[0] != '\0' && s->cas_sha_gen == s->gen)
        return sess_send(s, c, "EVALSHA %s 1 %s %s %b %s", s->cas_sha, k, ex,
                         value, len, ttl);
    return sess_send(s, c, "EVAL %s 1 %s %s %b %s", sess_lua_cas, k, ex, value,
                     len, ttl);
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
    struct sess_cmd *c = sess_cmd_for_key(&s, k, K_CAS, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    char b[16], ttl[16];
    snprintf(b, sizeof(b), "%u", (unsigned)bits);
    snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    return sess_send(s, c, "EVAL %s 1 %s %s %s %s", sess_lua_or, k, b, ttl,
                     label);
}

int
sess_del(struct sess *s, const char *key, sess_done_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0) return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_for_key(&s, k, K_DONE, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_send(s, c, "DEL %s", k);
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
    struct sess_cmd *c = sess_cmd_for_key(&s, k, K_DONE, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_send(s, c, "RPUSH %s %b", k, value, len);
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
    struct sess_cmd *c = sess_cmd_for_key(&s, k, K_UNTIL, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    char until[24];
    snprintf(until, sizeof(until), "%lld",
             (long long)(sess_wall_ms() + s->clock_offset_ms + within_ms));
    return sess_send(s, c, "EVAL %s 1 %s %b %s", sess_lua_push_until, k, value,
                     len, until);
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
    struct sess_cmd *c = sess_cmd_for_key(&s, k, K_DONE, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_send(s, c, "EVAL %s 1 %s %b %b", sess_lua_push_once, k, value,
                     len, value, head);
}

int
sess_peek(struct sess *s, const char *key, sess_get_cb *cb, void *arg)
{
    char k[SESS_KEY_MAX + 1];
    int rc;
    if (cb == NULL || sess_key(s, key, k) < 0) return SESS_EINVAL;
    struct sess_cmd *c = sess_cmd_for_key(&s, k, K_PEEK, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_send(s, c, "LINDEX %s 0", k);
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
    struct sess_cmd *c = sess_cmd_for_key(&s, k, K_DONE, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_send(s, c, "EVAL %s 1 %s %b", sess_lua_shift, k, value, len);
}

int
sess_ping(struct sess *s, sess_done_cb *cb, void *arg)
{
    int rc;
    if (cb == NULL) return SESS_EINVAL;
    if (s->cl != NULL) {
        /* no key: the primary of slot 0, while the whole cluster is up */
        if (!s->connected) return SESS_EDOWN;
        s = s->cl->node[s->cl->slot[0]];
    }
    struct sess_cmd *c = sess_cmd_new(s, K_DONE, (void *)cb, arg, &rc);
    if (c == NULL) return rc;
    return sess_send(s, c, "PING");
}

size_t
sess_pending(const struct sess *s)
{
    size_t n = s->pending;
    if (s->cl != NULL)
        for (int i = 0; i < s->cl->nnode; i++)
            n += s->cl->node[i]->pending;
    return n;
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
