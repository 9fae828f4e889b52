/*
 * sess_conn.c -- the session store's connection to Redis: the handshake,
 * our hiredis glue on libevent, the reconnects with backoff, and
 * sess_new/start/stop/free.  The commands are sess_redis.c, finding and
 * following the primary through Sentinel sess_sentinel.c.
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
 * Whatever must drop the connection from inside a hiredis callback (a
 * failover message, -READONLY) does it from a zero timer instead
 * (s->kick, sess_kick()).
 */
#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "sessions/sess_int.h"

static void sess_connect(struct sess *s);

/* Drop the connection now (not from inside a hiredis callback): every
 * command hiredis holds is answered NULL, so finished and freed. */
void
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
void
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
void
sess_say(struct sess *s, int error, const char *why)
{
    if (s->on_state == NULL || error == s->said_error) return;
    s->said_error = error;
    snprintf(s->said_why, sizeof(s->said_why), "%s", why ? why : "");
    s->on_state(error, error ? s->said_why : NULL, s->state_arg);
}

/* ------------------------------------------------------------------------
 * hiredis on libevent
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

int
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
    else if (strncmp(str, "LOADING", 7) == 0)
        snprintf(why, sizeof(why),
                 "redis is still loading its data; trying again (%.100s)", str);
    else
        snprintf(why, sizeof(why), "redis refused the handshake (%.100s)", str);
    sess_say(s, auth ? SESS_EAUTH : SESS_EPROTO, why);
    struct timeval now = {0, 0};
    evtimer_add(s->conn_timeout, &now);
}

/* AUTH's and PING's answers: only a refusal matters (TIME, sent after
 * them, decides when the connection is up).  PING is refused -LOADING
 * while Redis reads its data back after a restart -- TIME is not, and
 * every session command would be -- so the connection is dropped and
 * tried again until Redis is ready. */
static void
sess_on_hello_step(redisAsyncContext *ac, void *reply, void *privdata)
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
        rc = redisAsyncCommand(s->ac, sess_on_hello_step, s, "AUTH %s",
                               s->password);
    if (rc == REDIS_OK && s->nsen > 0)
        rc = redisAsyncCommand(s->ac, sess_on_role, s, "ROLE");
    if (rc == REDIS_OK)
        rc = redisAsyncCommand(s->ac, sess_on_hello_step, s, "PING");
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
 * The store
 */

/* Drop the primary's connection from a zero timer (a failover message
 * or a -READONLY answer arrives inside a hiredis callback); then connect
 * to host:port at once (now: the sentinels just named it), or find the
 * primary again after the backoff. */
void
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
    else if (cfg->cluster != NULL &&
             (why = sess_cluster_check(cfg->cluster)) != NULL)
        ;
    else if (cfg->cluster != NULL && cfg->cluster[0] != '\0' &&
             cfg->sentinels != NULL && cfg->sentinels[0] != '\0')
        why = "redis.cluster and redis.sentinels exclude each other: a "
              "cluster follows its own failovers";
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
        s->kick == NULL ||
        (cfg->cluster != NULL && cfg->cluster[0] != '\0' &&
         sess_cl_new(s, cfg->cluster) != 0)) {
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
    if (s->cl != NULL) {
        sess_cl_start(s);
        return 0;
    }
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
    if (s->cl != NULL) sess_cl_stop(s);
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
    sess_cl_free(s);
    while (!TAILQ_EMPTY(&s->cmds))
        sess_cmd_free(TAILQ_FIRST(&s->cmds));
    if (s->retry) event_free(s->retry);
    if (s->conn_timeout) event_free(s->conn_timeout);
    if (s->sen_timer) event_free(s->sen_timer);
    if (s->kick) event_free(s->kick);
    sodium_memzero(s->password, sizeof(s->password));
    free(s);
}
