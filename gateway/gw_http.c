/*
 * gw_http.c -- one worker's HTTP server on libevent 2.1.12 evhttp: the
 * route table, the request object, replies, /healthz, /metrics, signals
 * and the drain on shutdown.
 *
 * Exactly one answer per request.  A struct gw_req owns every byte of a
 * request (path, query, body, the handler's gw_req_alloc() memory) and is
 * freed in one place, gw_req_free(), which runs when the handler calls its
 * one reply function.  A deadline timer answers the client when the
 * handler is late, but leaves the request alive: the handler may be
 * waiting for Redis with r as its callback argument, and its late reply
 * then only frees r.  libevent 2.1.12 detaches a request whose client has
 * left instead of freeing it, and only evhttp_send_reply() frees a
 * detached request -- so every path, the late and the lost ones included,
 * ends in evhttp_send_reply(), and r never touches the evhttp request
 * after that.
 *
 * libevent 2.1 has no connection limit and no deadline for a request to
 * arrive: both are kept here, from accept() on (see "Connections").
 *
 * Shutdown (SIGTERM, SIGINT): close the listener, let the requests in
 * flight finish, bounded by the request timeout plus a second, then run
 * the stop hooks (which fail every pending callback of their module, so
 * the handlers waiting on them reply) and leave the loop.  Another stop
 * signal, a second or more after the first, stops at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "console/console.h"
#include "gateway/gw_int.h"
#include "notices/notices.h"

static void gw_health_handle(struct gw_req *r);
static void gw_metrics_handle(struct gw_req *r);

/* The route of path: an exact match first, else the longest prefix. */
static const struct gw_route *
gw_route_find(const struct gw_server *srv, const char *path)
{
    const struct gw_route *best = NULL;
    size_t best_len = 0;

    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct gw_route *rt = &srv->routes[i];
        size_t n = strlen(rt->path);
        if (!rt->prefix) {
            if (strcmp(path, rt->path) == 0) return rt;
        } else if (strncmp(path, rt->path, n) == 0 &&
                   (best == NULL || n > best_len)) {
            best = rt;
            best_len = n;
        }
    }
    return best;
}

int
gw_server_route(struct gw_server *srv, const struct gw_route *rt)
{
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    AN(rt);
    if (rt->path == NULL || rt->path[0] != '/' || rt->handler == NULL ||
        rt->methods == 0 || rt->endpoint == NULL) {
        GW_LOG_ERROR(0, "route refused: malformed path=%s",
                     rt->path ? rt->path : "(null)");
        return -1;
    }
    for (size_t i = 0; i < srv->nroutes; i++) {
        if (srv->routes[i].prefix == rt->prefix &&
            strcmp(srv->routes[i].path, rt->path) == 0) {
            GW_LOG_ERROR(0, "route refused: already taken path=%s", rt->path);
            return -1;
        }
    }
    if (srv->nroutes == GW_ROUTES_MAX) {
        GW_LOG_ERROR(0, "route refused: table full path=%s", rt->path);
        return -1;
    }
    srv->routes[srv->nroutes++] = *rt;
    return 0;
}

struct gw_server *
gw_req_server(const struct gw_req *r)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    return r->srv;
}

void *
gw_req_route_arg(const struct gw_req *r)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    return r->route ? r->route->arg : NULL;
}

const char *
gw_req_path(const struct gw_req *r)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    return r->path;
}

unsigned
gw_req_method(const struct gw_req *r)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    return r->method;
}

/* The server's own routes. */
static const struct gw_route gw_http_routes[] = {
    {"/healthz", 0, GW_METHOD_GET | GW_METHOD_HEAD, "healthz", gw_health_handle,
     NULL},
    {"/metrics", 0, GW_METHOD_GET | GW_METHOD_HEAD, "metrics",
     gw_metrics_handle, NULL},
};

static double
gw_elapsed(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) +
           (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static struct timeval
gw_ms_tv(long ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

/* ------------------------------------------------------------------------
 * Connections
 *
 * libevent 2.1 has no connection limit and no deadline for a request's
 * arrival (its timeout restarts with every byte), so both are kept here.
 * evhttp asks gw_conn_bev() for each accepted connection's bufferevent:
 * that is where a connection starts to count.  Its evhttp connection
 * exists only once evhttp has set it up, so gw_conn_adopt() runs from the
 * loop right after and finds it (the bufferevent's callback argument,
 * checked against evhttp_connection_get_bufferevent()); a bufferevent
 * evhttp has freed meanwhile has no callbacks left, and our reference
 * keeps its memory until then.  The close callback ends the count.
 *
 * Over the limit, the connection that has waited longest for its request
 * is closed (a client dripping its request head is the first to go); when
 * every connection has a request in a handler, the newcomer gets 503 and
 * the listener pauses until one closes.  accept() failing (no descriptors
 * left) pauses the listener for 100 ms, doubling up to 500 ms, and frees
 * the oldest waiting connection, instead of spinning on a socket that
 * stays readable.
 */

static void gw_listener_update(struct gw_server *srv);

static size_t
gw_connset_hash(const void *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 29) & (cap - 1);
}

static int
gw_connset_init(struct gw_connset *s, size_t max)
{
    size_t cap = 16;
    while (cap < 2 * max + 4)
        cap *= 2;
    s->slot = calloc(cap, sizeof(*s->slot));
    s->cap = cap;
    s->n = 0;
    return s->slot == NULL ? -1 : 0;
}

static long
gw_connset_slot(const struct gw_connset *s, const void *evcon)
{
    size_t i = gw_connset_hash(evcon, s->cap);
    while (s->slot[i] != NULL) {
        if (s->slot[i]->evcon == evcon) return (long)i;
        i = (i + 1) & (s->cap - 1);
    }
    return -1;
}

static struct gw_conn *
gw_connset_find(const struct gw_connset *s, const void *evcon)
{
    long i = evcon != NULL ? gw_connset_slot(s, evcon) : -1;
    return i < 0 ? NULL : s->slot[i];
}

static void
gw_connset_add(struct gw_connset *s, struct gw_conn *c)
{
    size_t i = gw_connset_hash(c->evcon, s->cap);
    AN(s->n + 1 < s->cap);
    while (s->slot[i] != NULL)
        i = (i + 1) & (s->cap - 1);
    s->slot[i] = c;
    s->n++;
}

/* Linear probing removal: shift back what would be unreachable. */
static void
gw_connset_del(struct gw_connset *s, const void *evcon)
{
    long f = gw_connset_slot(s, evcon);
    size_t i, j, mask = s->cap - 1;
    if (f < 0) return;
    i = (size_t)f;
    s->slot[i] = NULL;
    s->n--;
    for (j = (i + 1) & mask; s->slot[j] != NULL; j = (j + 1) & mask) {
        size_t k = gw_connset_hash(s->slot[j]->evcon, s->cap);
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        s->slot[i] = s->slot[j];
        s->slot[j] = NULL;
        i = j;
    }
}

/* Forget c (its evhttp connection is closing, or never was ours). */
static void
gw_conn_free(struct gw_conn *c)
{
    struct gw_server *srv = c->srv;
    GW_CHECK_MAGIC(c, GW_CONN_MAGIC);
    if (c->evcon != NULL) {
        gw_connset_del(&srv->conns, c->evcon);
        if (!c->busy) TAILQ_REMOVE(&srv->waiting, c, list);
    } else {
        TAILQ_REMOVE(&srv->fresh, c, list);
    }
    if (c->bev != NULL) bufferevent_decref(c->bev);
    if (c->next != NULL) event_free(c->next);
    event_free(c->deadline);
    AN(srv->nconns > 0);
    srv->nconns--;
    gw_metric_add(GW_M_CONNECTIONS, NULL, NULL, -1);
    c->magic = 0;
    free(c);
}

/* A lingering close (RFC 9112 section 9.6): a connection closed while the
 * client may still be sending (a request refused before its end, the
 * bytes of a second one behind it) would make the kernel answer those
 * bytes with a reset, and a reset can destroy the answer before the
 * client has read it.  So the socket is kept (a dup() of evhttp's
 * descriptor, which evhttp shuts for writing and closes) and read off
 * until the client closes, GW_LINGER_MS pass or GW_LINGER_BYTES came;
 * GW_LINGER_MAX at a time per worker, beyond that a plain close. */
#define GW_LINGER_MS    2000
#define GW_LINGER_BYTES 65536
#define GW_LINGER_MAX   32

struct gw_linger {
    struct gw_server *srv;
    struct event *ev;
    evutil_socket_t fd;
    size_t got;
    struct timespec t0;
    TAILQ_ENTRY(gw_linger) list; /* srv->lingers */
};

static void
gw_linger_end(struct gw_linger *l)
{
    TAILQ_REMOVE(&l->srv->lingers, l, list);
    event_free(l->ev);
    close(l->fd);
    AN(l->srv->nlinger > 0);
    l->srv->nlinger--;
    free(l);
}

static void
gw_linger_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_linger *l = arg;
    char buf[4096];
    ssize_t n = 0;

    if (what & EV_READ) {
        long left = GW_LINGER_MS - (long)(gw_elapsed(&l->t0) * 1000);
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) l->got += (size_t)n;
        if (left > 0 && ((n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                                    errno == EINTR)) ||
                         (n > 0 && l->got < GW_LINGER_BYTES))) {
            /* bytes do not extend it */
            struct timeval tv = gw_ms_tv(left);
            event_add(l->ev, &tv);
            return;
        }
    }
    gw_linger_end(l);
}

static void
gw_linger_start(struct gw_server *srv, struct evhttp_connection *evcon)
{
    evutil_socket_t fd =
        bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    struct timeval tv = gw_ms_tv(GW_LINGER_MS);
    struct gw_linger *l;
    int dup_fd;

    if (fd < 0 || srv->nlinger + 1 > GW_LINGER_MAX || srv->stopping) return;
    if ((dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) return;
    if ((l = calloc(1, sizeof(*l))) == NULL ||
        (l->ev = event_new(srv->base, dup_fd, EV_READ | EV_PERSIST,
                           gw_linger_cb, l)) == NULL ||
        event_add(l->ev, &tv) != 0) {
        if (l != NULL && l->ev != NULL) event_free(l->ev);
        free(l);
        close(dup_fd);
        return;
    }
    l->srv = srv;
    l->fd = dup_fd;
    clock_gettime(CLOCK_MONOTONIC, &l->t0);
    TAILQ_INSERT_TAIL(&srv->lingers, l, list);
    srv->nlinger++;
}

static void
gw_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    struct gw_server *srv = arg;
    struct gw_conn *c;
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    /* evhttp may call this twice (reset, then free) */
    if ((c = gw_connset_find(&srv->conns, evcon)) == NULL) return;
    if (c->linger) gw_linger_start(srv, evcon);
    gw_conn_free(c);
    gw_listener_update(srv);
}

/* The client's address, for a log line. */
static const char *
gw_conn_peer(const struct gw_conn *c)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(c->evcon, &addr, &port);
    return addr != NULL ? addr : "";
}

/* Close c now, as why says (a metrics label).  A client that has not
 * had an answer on it gets a 503 first, as far as its socket takes it
 * without waiting. */
static void
gw_conn_cut(struct gw_conn *c, const char *why)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Connection: close\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 21\r\n\r\n"
                               "too many connections\n";
    struct gw_server *srv = c->srv;
    unsigned long held;

    GW_CHECK_MAGIC(c, GW_CONN_MAGIC);
    AN(c->evcon);
    AZ(c->busy);
    gw_metric_inc(GW_M_CONNECTIONS_CUT, why, NULL);
    if (gw_log_limit_take(&srv->conn_log, &held))
        GW_LOG_INFO(0,
                    "connection closed why=%s peer=%s requests=%lu "
                    "connections=%zu suppressed=%lu",
                    why, gw_conn_peer(c), c->nreq, srv->nconns, held);
    if (c->nreq == 0 && strcmp(why, "deadline") != 0) {
        c->linger = 1;
        evutil_socket_t fd =
            bufferevent_getfd(evhttp_connection_get_bufferevent(c->evcon));
        if (fd >= 0 &&
            send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            GW_LOG_DEBUG(errno, "503 not sent before closing");
    }
    evhttp_connection_free(c->evcon); /* gw_conn_closed() frees c */
}

/* evhttp's read and write timeouts of c: request_timeout_ms, or with
 * read NULL, none for reading (the bufferevent's timeouts stay as set:
 * evhttp sets them only when it sets an accepted connection up). */
static void
gw_conn_timeouts(struct gw_conn *c, int read)
{
    struct timeval tv = gw_ms_tv(c->srv->cfg->request_timeout_ms);
    bufferevent_set_timeouts(evhttp_connection_get_bufferevent(c->evcon),
                             read ? &tv : NULL, &tv);
}

/* The first byte of c's next request came (or the client closed): the
 * rest of it has header_timeout_ms from now, and evhttp's read timeout is
 * back.  It is now the newest to wait. */
static void
gw_conn_next_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    struct timeval tv;
    (void)fd;
    (void)what;
    GW_CHECK_MAGIC(c, GW_CONN_MAGIC);
    AZ(c->busy);
    gw_conn_timeouts(c, 1);
    TAILQ_REMOVE(&c->srv->waiting, c, list);
    TAILQ_INSERT_TAIL(&c->srv->waiting, c, list);
    tv = gw_ms_tv(c->srv->cfg->header_timeout_ms);
    AZ(evtimer_add(c->deadline, &tv));
}

/* Keep c, whose answer is going out, alive while no byte of another
 * request has come: 1 if so (its deadline is then keepalive_ms). */
static int
gw_conn_keep(struct gw_conn *c)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    evutil_socket_t fd = bufferevent_getfd(bev);

    if (fd < 0 || evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        return 0; /* the next request has begun */
    if (c->next == NULL && (c->next = event_new(c->srv->base, fd, EV_READ,
                                                gw_conn_next_cb, c)) == NULL)
        return 0;
    if (event_add(c->next, NULL) != 0) return 0;
    gw_conn_timeouts(c, 0);
    return 1;
}

/* c waits for a request from now on (accepted, or its answer went out).
 * A new connection has header_timeout_ms for its whole request.  One
 * whose answer is going out is kept alive keepalive_ms for the next
 * request to begin, without evhttp's read timeout: that would close it
 * after request_timeout_ms of silence, and a client that keeps
 * connections in a pool (smsbox) takes one just as it is closed and
 * drops its request ("Couldn't fetch"). */
static void
gw_conn_wait(struct gw_conn *c)
{
    const struct gw_config *cfg = c->srv->cfg;
    struct timeval tv = gw_ms_tv(cfg->header_timeout_ms);
    c->busy = 0;
    TAILQ_INSERT_TAIL(&c->srv->waiting, c, list);
    if (c->nreq > 0 && gw_conn_keep(c)) tv = gw_ms_tv(cfg->keepalive_ms);
    AZ(evtimer_add(c->deadline, &tv));
}

static void
gw_conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    (void)fd;
    (void)what;
    GW_CHECK_MAGIC(c, GW_CONN_MAGIC);
    gw_conn_cut(c, "deadline");
}

/* A request of evcon reached the dispatcher: no deadline of ours while it
 * is in a handler (the request's own runs). */
static void
gw_conn_busy(struct gw_server *srv, struct evhttp_connection *evcon)
{
    struct gw_conn *c = gw_connset_find(&srv->conns, evcon);
    if (c == NULL || c->busy) return;
    TAILQ_REMOVE(&srv->waiting, c, list);
    evtimer_del(c->deadline);
    if (c->next != NULL && event_pending(c->next, EV_READ, NULL)) {
        event_del(c->next); /* evhttp read the request before it fired */
        gw_conn_timeouts(c, 1);
    }
    c->busy = 1;
    c->nreq++;
}

/* Its answer is going out: evcon waits for the next request. */
static void
gw_conn_idle(struct gw_server *srv, struct evhttp_connection *evcon)
{
    struct gw_conn *c = gw_connset_find(&srv->conns, evcon);
    if (c == NULL || !c->busy) return;
    gw_conn_wait(c);
    gw_listener_update(srv); /* it can make room now */
}

/* evhttp's bufferevent for a connection just accepted. */
static struct bufferevent *
gw_conn_bev(struct event_base *base, void *arg)
{
    struct gw_server *srv = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    struct gw_conn *c;

    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    if (bev == NULL) return NULL; /* evhttp tries itself; not counted */
    if ((c = calloc(1, sizeof(*c))) == NULL ||
        (c->deadline = evtimer_new(base, gw_conn_deadline_cb, c)) == NULL) {
        free(c);
        return bev;
    }
    c->magic = GW_CONN_MAGIC;
    c->srv = srv;
    c->bev = bev;
    bufferevent_incref(bev);
    TAILQ_INSERT_TAIL(&srv->fresh, c, list);
    srv->nconns++;
    gw_metric_add(GW_M_CONNECTIONS, NULL, NULL, 1);
    srv->backoff_ms = 0;
    event_active(srv->adopt, EV_TIMEOUT, 1);
    /* one over the limit at most: accept no more before the adoption */
    if (srv->nconns > srv->max_conns) gw_listener_update(srv);
    return bev;
}

static void
gw_conn_adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_server *srv = arg;
    struct gw_conn *c;
    (void)fd;
    (void)what;

    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    while ((c = TAILQ_FIRST(&srv->fresh)) != NULL) {
        struct evhttp_connection *evcon = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
        evcon = cbarg;
        if (evcon == NULL ||
            evhttp_connection_get_bufferevent(evcon) != c->bev) {
            gw_conn_free(c); /* evhttp dropped it while setting it up */
            continue;
        }
        TAILQ_REMOVE(&srv->fresh, c, list);
        bufferevent_decref(c->bev); /* evhttp's from here on */
        c->bev = NULL;
        c->evcon = evcon;
        gw_connset_add(&srv->conns, c);
        evhttp_connection_set_closecb(evcon, gw_conn_closed, srv);
        gw_conn_wait(c);
    }
    /* over the limit: the connection that waited longest makes room; if
     * all have requests in handlers, that is the newcomer itself */
    while (srv->nconns > srv->max_conns &&
           (c = TAILQ_FIRST(&srv->waiting)) != NULL) {
        if (c->nreq == 0) gw_metric_inc(GW_M_REFUSED, NULL, NULL);
        gw_conn_cut(c, "limit");
    }
    gw_listener_update(srv);
}

/* The listener is on unless stopping, pausing after an accept() error, or
 * full with nothing that could make room. */
static void
gw_listener_update(struct gw_server *srv)
{
    struct evconnlistener *l;
    int on = !srv->stopping && !srv->backoff &&
             (srv->nconns < srv->max_conns || !TAILQ_EMPTY(&srv->waiting));
    if (srv->bound == NULL || srv->accepting == on) return;
    l = evhttp_bound_socket_get_listener(srv->bound);
    if (on) {
        evconnlistener_enable(l);
    } else {
        evconnlistener_disable(l);
        if (!srv->backoff && !srv->stopping)
            GW_LOG_WARN(0,
                        "max_connections reached, every connection has a "
                        "request in a handler: not accepting "
                        "connections=%zu",
                        srv->nconns);
    }
    srv->accepting = on;
}

static void
gw_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_server *srv = arg;
    (void)fd;
    (void)what;
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    srv->backoff = 0;
    gw_listener_update(srv);
}

/* libevent passes the listener's argument, which is evhttp's: the one
 * server of this process is found here instead. */
static struct gw_server *gw_server_self;

static void
gw_accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct gw_server *srv = gw_server_self;
    int err = EVUTIL_SOCKET_ERROR();
    unsigned long held;
    struct timeval tv;
    struct gw_conn *c;

    (void)l;
    (void)arg;
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    srv->backoff_ms = srv->backoff_ms == 0 ? 100 : srv->backoff_ms * 2;
    if (srv->backoff_ms > 500) srv->backoff_ms = 500;
    gw_metric_inc(GW_M_ACCEPT_ERRORS, NULL, NULL);
    if (gw_log_limit_take(&srv->accept_log, &held))
        GW_LOG_WARN(err,
                    "accept failed, pausing ms=%ld connections=%zu "
                    "suppressed=%lu",
                    srv->backoff_ms, srv->nconns, held);
    srv->backoff = 1;
    gw_listener_update(srv);
    tv = gw_ms_tv(srv->backoff_ms);
    AZ(evtimer_add(srv->backoff_timer, &tv));
    /* out of descriptors: the longest wait gives one back */
    if ((err == EMFILE || err == ENFILE) &&
        (c = TAILQ_FIRST(&srv->waiting)) != NULL)
        gw_conn_cut(c, "descriptors");
}

/* max_connections, lowered so that the connections and the descriptors
 * the worker needs besides (Redis, PostgreSQL, sendsms, logs: reserve)
 * fit in RLIMIT_NOFILE. */
static size_t
gw_conn_limit(const struct gw_config *cfg)
{
    const rlim_t reserve = 64;
    size_t max = (size_t)cfg->max_connections;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= (rlim_t)max + reserve)
        return max;
    max = rl.rlim_cur > 2 * reserve ? (size_t)(rl.rlim_cur - reserve)
                                    : (size_t)(rl.rlim_cur / 2);
    GW_LOG_WARN(0,
                "max_connections lowered to fit the descriptor limit "
                "max_connections=%zu nofile=%llu",
                max, (unsigned long long)rl.rlim_cur);
    return max;
}

/* ------------------------------------------------------------------------
 * Requests
 */

static void gw_req_deadline_cb(evutil_socket_t fd, short what, void *arg);
static void gw_server_drained(struct gw_server *srv);

const char *
gw_req_id(const struct gw_req *r)
{
    return r->id;
}

const char *
gw_req_query(const struct gw_req *r, size_t *len)
{
    if (len != NULL) *len = r->query_len;
    return r->query;
}

const char *
gw_req_body(const struct gw_req *r, size_t *len)
{
    if (len != NULL) *len = r->body_len;
    return r->body;
}

const char *
gw_req_peer(const struct gw_req *r)
{
    return r->peer;
}

const char *
gw_req_header(const struct gw_req *r, const char *name)
{
    if (r->ev == NULL) return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

int
gw_req_answered(const struct gw_req *r)
{
    return r->answered;
}

/* The size class of a chunk for n bytes of data: 0 for small ones, else
 * the log2 of its whole size. */
static unsigned
gw_chunk_cls(size_t n)
{
    unsigned cls = GW_SPARE_MIN_CLS;
    if (n + sizeof(struct gw_req_chunk) <= ((size_t)1 << GW_SPARE_MIN_CLS) / 2)
        return 0;
    while (cls <= GW_SPARE_MAX_CLS &&
           ((size_t)1 << cls) < n + sizeof(struct gw_req_chunk))
        cls++;
    return cls <= GW_SPARE_MAX_CLS ? cls : 0;
}

void *
gw_req_alloc(struct gw_req *r, size_t n)
{
    struct gw_server *srv = r->srv;
    struct gw_req_chunk *c;
    unsigned cls;

    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if (n > SIZE_MAX - sizeof(*c)) return NULL;
    cls = gw_chunk_cls(n);
    if (cls != 0 && (c = srv->spare[cls]) != NULL) {
        srv->spare[cls] = c->next;
        srv->spare_bytes -= (size_t)1 << cls;
        memset(c->data, 0, n);
    } else if (cls != 0) {
        c = malloc((size_t)1 << cls);
        if (c == NULL) return NULL;
        memset(c->data, 0, n);
    } else {
        c = calloc(1, sizeof(*c) + n);
        if (c == NULL) return NULL;
    }
    c->cls = cls;
    c->next = r->chunks;
    r->chunks = c;
    return c->data;
}

/* Keep c for a later request if there is room, else free it. */
static void
gw_chunk_release(struct gw_server *srv, struct gw_req_chunk *c)
{
    size_t size = (size_t)1 << c->cls;
    if (!GW_RECYCLE || c->cls == 0 || srv->stopping ||
        srv->spare_bytes + size > GW_SPARE_BYTES) {
        free(c);
        return;
    }
    c->next = srv->spare[c->cls];
    srv->spare[c->cls] = c;
    srv->spare_bytes += size;
}

void
gw_req_on_deadline(struct gw_req *r, gw_deadline_cb *cb, void *arg)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    r->on_deadline = cb;
    r->on_deadline_arg = arg;
}

void
gw_req_deadline_in(struct gw_req *r, long ms)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    AN(ms > 0);
    AZ(r->answered);
    struct timeval tv = gw_ms_tv(ms);
    AZ(evtimer_del(r->deadline));
    AZ(evtimer_add(r->deadline, &tv));
}

static char *
gw_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Free what r owns; r's evhttp request is not touched. */
static void
gw_req_destroy(struct gw_req *r)
{
    struct gw_server *srv = r->srv;
    struct gw_req_chunk *c, *next;

    if (r->deadline != NULL) event_free(r->deadline);
    gw_params_fini(&r->params);
    free(r->path);
    free(r->query);
    free(r->body);
    for (c = r->chunks; c != NULL; c = next) {
        next = c->next;
        gw_chunk_release(srv, c);
    }
    TAILQ_REMOVE(&srv->reqs, r, list);
    AN(srv->in_flight > 0);
    srv->in_flight--;
    gw_metric_add(GW_M_IN_FLIGHT, NULL, NULL, -1);
    r->magic = 0;
    free(r);
    if (srv->stopping && srv->in_flight == 0) gw_server_drained(srv);
}

static void
gw_req_free(struct gw_req *r)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    AN(r->answered);
    AZ(r->ev);
    gw_req_destroy(r);
}

static unsigned
gw_method_of(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return GW_METHOD_GET;
    case EVHTTP_REQ_POST:
        return GW_METHOD_POST;
    case EVHTTP_REQ_HEAD:
        return GW_METHOD_HEAD;
    case EVHTTP_REQ_PUT:
        return GW_METHOD_PUT;
    case EVHTTP_REQ_DELETE:
        return GW_METHOD_DELETE;
    case EVHTTP_REQ_PATCH:
        return GW_METHOD_PATCH;
    default:
        return 0;
    }
}

static struct gw_req *
gw_req_new(struct gw_server *srv, struct evhttp_request *ev)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    struct evbuffer *in = evhttp_request_get_input_buffer(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    struct gw_req *r;

    r = calloc(1, sizeof(*r));
    if (r == NULL) return NULL;
    r->magic = GW_REQ_MAGIC;
    r->srv = srv;
    r->ev = ev;
    r->method = gw_method_of(evhttp_request_get_command(ev));
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    snprintf(r->id, sizeof(r->id), "%lx-%llu", (long)srv->pid,
             (unsigned long long)++srv->seq);
    gw_params_init(&r->params);
    TAILQ_INSERT_TAIL(&srv->reqs, r, list);
    srv->in_flight++;
    gw_metric_add(GW_M_IN_FLIGHT, NULL, NULL, 1);

    if (evcon != NULL) {
        char *addr = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evcon, &addr, &port);
        snprintf(r->peer, sizeof(r->peer), "%s", addr ? addr : "");
    }
    if (path == NULL || path[0] == '\0') path = "/";
    if (query == NULL) query = "";
    r->path = gw_strndup(path, strlen(path));
    r->query_len = strlen(query);
    r->query = gw_strndup(query, r->query_len);
    r->body_len = in ? evbuffer_get_length(in) : 0;
    r->body = malloc(r->body_len + 1);
    r->deadline = evtimer_new(srv->base, gw_req_deadline_cb, r);
    if (r->path == NULL || r->query == NULL || r->body == NULL ||
        r->deadline == NULL) {
        gw_req_destroy(r);
        return NULL;
    }
    if (r->body_len > 0 &&
        evbuffer_copyout(in, r->body, r->body_len) != (ev_ssize_t)r->body_len) {
        gw_req_destroy(r);
        return NULL;
    }
    r->body[r->body_len] = '\0';
    return r;
}

/* Header names are tokens; values must not break the header block. */
static int
gw_header_ok(const char *name, const char *value)
{
    if (name[0] == '\0') return 0;
    for (const char *p = name; *p; p++)
        if (*p <= 0x20 || *p >= 0x7F || *p == ':') return 0;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n') return 0;
    return 1;
}

int
gw_req_header_add(struct gw_req *r, const char *name, const char *value)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if (r->answered || r->streaming) return 0;
    if (!gw_header_ok(name, value)) {
        GW_RLOG(GW_LEVEL_WARN, r, 0, "reply header refused name=%.64s", name);
        return -1;
    }
    if (evhttp_add_header(evhttp_request_get_output_headers(r->ev), name,
                          value) != 0)
        return -1;
    return 0;
}

/* Answer the client: the one place that calls evhttp_send_reply(). */
static void
gw_req_send(struct gw_req *r, int status, const char *ctype, const char *body,
            size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    const char *endpoint = r->route ? r->route->endpoint : "other";
    struct evbuffer *buf = evbuffer_new();
    char code[8], path[96];
    double secs;

    AN(r->ev);
    if (ctype != NULL) {
        evhttp_remove_header(h, "Content-Type");
        evhttp_add_header(h, "Content-Type", ctype);
    }
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (r->srv->stopping) evhttp_add_header(h, "Connection", "close");
    if (buf != NULL && len > 0 && evbuffer_add(buf, body, len) != 0)
        status = 500;
    gw_conn_idle(r->srv, evhttp_request_get_connection(r->ev));
    /* Drains buf, and frees the request, detached or not. */
    evhttp_send_reply(r->ev, status, NULL, buf);
    if (buf != NULL) evbuffer_free(buf);
    r->ev = NULL;
    r->answered = 1;
    r->status = status;
    if (r->deadline != NULL) evtimer_del(r->deadline);

    secs = gw_elapsed(&r->t0);
    snprintf(code, sizeof(code), "%d", status);
    gw_metric_inc(GW_M_REQUESTS, endpoint, code);
    gw_metric_observe(GW_M_REQUEST_SECONDS, endpoint, secs);
    GW_RLOG(GW_LEVEL_DEBUG, r, 0, "answered status=%d path=%s ms=%.3f", status,
            gw_log_quote(path, sizeof(path), r->path, strlen(r->path)),
            secs * 1e3);
}

void
gw_reply(struct gw_req *r, int status, const char *ctype, const char *body,
         size_t len)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if (r->ended) WRONG("request ended twice");
    if (r->streaming) WRONG("gw_reply() on a streaming request");
    if (!r->answered)
        gw_req_send(r, status, ctype, body, len);
    else
        GW_RLOG(GW_LEVEL_DEBUG, r, 0, "late reply dropped status=%d", status);
    if (r->in_deadline) return;
    r->ended = 1;
    if (r->hold == 0) gw_req_free(r);
}

int
gw_reply_start(struct gw_req *r, int status, const char *ctype)
{
    struct evkeyvalq *h;
    const char *endpoint = r->route ? r->route->endpoint : "other";
    char code[8];

    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if (r->ended || r->streaming) WRONG("stream started twice");
    if (r->answered) return -1;
    h = evhttp_request_get_output_headers(r->ev);
    if (ctype != NULL) {
        evhttp_remove_header(h, "Content-Type");
        evhttp_add_header(h, "Content-Type", ctype);
    }
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (r->srv->stopping) evhttp_add_header(h, "Connection", "close");
    /* the parts come at the writer's pace, each under its own timer; the
     * client may pause longer than a request may take (a slow link, a
     * save dialog): the connection's timeout is GW_STREAM_IDLE_MS */
    if (r->deadline != NULL) evtimer_del(r->deadline);
    {
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
        struct timeval tv = gw_ms_tv(GW_STREAM_IDLE_MS);
        if (evcon != NULL) evhttp_connection_set_timeout_tv(evcon, &tv);
    }
    evhttp_send_reply_start(r->ev, status, NULL);
    r->streaming = 1;
    r->status = status;
    snprintf(code, sizeof(code), "%d", status);
    gw_metric_inc(GW_M_REQUESTS, endpoint, code);
    return 0;
}

/* The connection of a streaming request, NULL once the client has gone
 * (evhttp then keeps the request, detached, until gw_reply_end()). */
static struct evhttp_connection *
gw_stream_conn(const struct gw_req *r)
{
    AN(r->streaming);
    AN(r->ev);
    return evhttp_request_get_connection(r->ev);
}

int
gw_reply_chunk(struct gw_req *r, const char *buf, size_t len)
{
    struct evbuffer *b;
    int rc = 0;

    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if (gw_stream_conn(r) == NULL) return -1;
    if (len == 0) return 0; /* an empty chunk would end the body */
    if ((b = evbuffer_new()) == NULL) return -1;
    if (evbuffer_add(b, buf, len) != 0)
        rc = -1;
    else
        evhttp_send_reply_chunk(r->ev, b);
    evbuffer_free(b);
    return rc;
}

long
gw_reply_pending(const struct gw_req *r)
{
    struct evhttp_connection *evcon;
    struct bufferevent *bev;

    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if ((evcon = gw_stream_conn(r)) == NULL) return -1;
    if ((bev = evhttp_connection_get_bufferevent(evcon)) == NULL) return -1;
    return (long)evbuffer_get_length(bufferevent_get_output(bev));
}

void
gw_reply_cut(struct gw_req *r)
{
    struct evhttp_connection *evcon;
    struct bufferevent *bev;
    evutil_socket_t fd;

    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if ((evcon = gw_stream_conn(r)) == NULL) return;
    if ((bev = evhttp_connection_get_bufferevent(evcon)) == NULL) return;
    if ((fd = bufferevent_getfd(bev)) >= 0 && shutdown(fd, SHUT_RDWR) != 0)
        GW_RLOG(GW_LEVEL_DEBUG, r, errno, "stream cut: shutdown failed");
}

void
gw_reply_end(struct gw_req *r)
{
    struct evhttp_connection *evcon;
    const char *endpoint = r->route ? r->route->endpoint : "other";
    char path[96];
    double secs;

    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    /* the connection keeps GW_STREAM_IDLE_MS: the tail of the body may
     * still be queued for a slow client (the next request on it has the
     * server's own header and request deadlines) */
    if ((evcon = gw_stream_conn(r)) != NULL) gw_conn_idle(r->srv, evcon);
    /* frees the evhttp request, the detached one too */
    evhttp_send_reply_end(r->ev);
    r->ev = NULL;
    r->streaming = 0;
    r->answered = 1;
    secs = gw_elapsed(&r->t0);
    gw_metric_observe(GW_M_REQUEST_SECONDS, endpoint, secs);
    GW_RLOG(GW_LEVEL_DEBUG, r, 0, "streamed status=%d path=%s ms=%.3f gone=%d",
            r->status,
            gw_log_quote(path, sizeof(path), r->path, strlen(r->path)),
            secs * 1e3, evcon == NULL);
    r->ended = 1;
    if (r->hold == 0) gw_req_free(r);
}

void
gw_req_enter(struct gw_req *r)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if (r->ended) WRONG("request entered after its end");
    r->hold++;
}

void
gw_req_leave(struct gw_req *r)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    AN(r->hold);
    if (--r->hold == 0 && r->ended) gw_req_free(r);
}

void
gw_reply_text(struct gw_req *r, int status, const char *ctype, const char *body)
{
    gw_reply(r, status, ctype, body, body ? strlen(body) : 0);
}

void
gw_reply_error(struct gw_req *r, int status, const char *why)
{
    char body[256], path[96];
    unsigned long held;
    int n;

    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    /* a flood of bad requests must not become a flood of lines: at most
     * refused_log.per_sec a second per worker, the next line written
     * says how many were held back */
    if (!r->answered &&
        (status >= 500 ? GW_LEVEL_WARN : GW_LEVEL_INFO) <= gw_log_level &&
        gw_log_limit_take(&r->srv->refused_log, &held))
        GW_RLOG(status >= 500 ? GW_LEVEL_WARN : GW_LEVEL_INFO, r, 0,
                "refused status=%d why=%s path=%s peer=%s suppressed=%lu",
                status, gw_log_quote(body, sizeof(body), why, strlen(why)),
                gw_log_quote(path, sizeof(path), r->path, strlen(r->path)),
                r->peer, held);
    n = snprintf(body, sizeof(body), "%s\n", why);
    if (n < 0 || (size_t)n >= sizeof(body)) n = (int)sizeof(body) - 1;
    gw_reply(r, status, "text/plain; charset=utf-8", body, (size_t)n);
}

static void
gw_req_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_req *r = arg;
    static const char msg[] = "timed out\n";
    char path[96];

    (void)fd;
    (void)what;
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    AZ(r->answered);
    r->timed_out = 1;
    gw_metric_inc(GW_M_TIMEOUTS, r->route ? r->route->endpoint : "other", NULL);
    GW_RLOG(GW_LEVEL_WARN, r, 0, "deadline reached path=%s timeout_ms=%ld",
            gw_log_quote(path, sizeof(path), r->path, strlen(r->path)),
            r->srv->cfg->request_timeout_ms);
    r->in_deadline = 1;
    if (r->on_deadline != NULL) r->on_deadline(r, r->on_deadline_arg);
    if (!r->answered)
        gw_reply(r, 503, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
    r->in_deadline = 0;
}

/* ------------------------------------------------------------------------
 * The *_or_4xx helpers
 */

int
gw_req_query_or_400(struct gw_req *r, const struct gw_params **ps)
{
    const char *why = NULL;
    int rc;

    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if (r->have_params != 1) {
        rc = gw_params_parse(&r->params, r->query, r->query_len, &why);
        if (rc != GW_OK) {
            r->have_params = 0;
            gw_reply_error(r, rc == GW_ENOMEM ? 503 : 400, why);
            return -1;
        }
        r->have_params = 1;
    }
    *ps = &r->params;
    return 0;
}

int
gw_req_form_or_4xx(struct gw_req *r, const struct gw_params **ps)
{
    static const char form[] = "application/x-www-form-urlencoded";
    const char *ct = gw_req_header(r, "Content-Type");
    const char *why = NULL;
    size_t n = sizeof(form) - 1;
    int rc;

    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if (r->have_params == 2) {
        *ps = &r->params;
        return 0;
    }
    if (ct == NULL || strncasecmp(ct, form, n) != 0 ||
        (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' ')) {
        gw_reply_error(r, 415, "expected application/x-www-form-urlencoded");
        return -1;
    }
    rc = gw_params_parse(&r->params, r->body, r->body_len, &why);
    if (rc != GW_OK) {
        r->have_params = 0;
        gw_reply_error(r, rc == GW_ENOMEM ? 503 : 400, why);
        return -1;
    }
    r->have_params = 2;
    *ps = &r->params;
    return 0;
}

int
gw_req_key_or_403(struct gw_req *r, const char *want, const char *given,
                  size_t len)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if (want[0] == '\0') return 0;
    if (given != NULL && gw_secret_equal(want, strlen(want), given, len))
        return 0;
    gw_reply_error(r, 403, given ? "wrong key" : "missing key");
    return -1;
}

int
gw_req_peer_or_403(struct gw_req *r, const struct gw_cidr *list, size_t n)
{
    GW_CHECK_MAGIC(r, GW_REQ_MAGIC);
    if (n == 0 || gw_cidr_match(list, n, r->peer)) return 0;
    gw_reply_error(r, 403, "address not allowed");
    return -1;
}

/* ------------------------------------------------------------------------
 * Dispatch
 */

#define GW_FRAMING_MAX 8 /* Content-Length and Transfer-Encoding headers */

/* NULL when the body of ev was delimited one way only, else why not.
 * evhttp_find_header() sees the first header of a name only: every one is
 * read here. */
static const char *
gw_req_framing(struct evhttp_request *ev)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
    struct gw_header h[GW_FRAMING_MAX];
    struct evkeyval *kv;
    size_t n = 0;

    TAILQ_FOREACH (kv, in, next) {
        if (strcasecmp(kv->key, "Content-Length") != 0 &&
            strcasecmp(kv->key, "Transfer-Encoding") != 0)
            continue;
        if (n == GW_FRAMING_MAX) return "too many framing headers";
        h[n].name = kv->key;
        h[n].value = kv->value;
        n++;
    }
    return gw_framing_check(h, n);
}

static void
gw_http_dispatch(struct evhttp_request *ev, void *arg)
{
    struct gw_server *srv = arg;
    const struct gw_route *rt;
    const char *why;
    struct gw_req *r;
    struct timeval tv;

    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    gw_conn_busy(srv, evhttp_request_get_connection(ev));
    r = gw_req_new(srv, ev);
    if (r == NULL) {
        GW_LOG_ERROR(ENOMEM, "request refused");
        gw_conn_idle(srv, evhttp_request_get_connection(ev));
        evhttp_send_error(ev, 503, NULL);
        return;
    }
    if ((why = gw_req_framing(ev)) != NULL) {
        /* what follows the body as evhttp saw it may be the rest of this
         * one: never read it as a request (but read it off, so that the
         * client gets this answer) */
        struct gw_conn *c =
            gw_connset_find(&srv->conns, evhttp_request_get_connection(ev));
        if (c != NULL) c->linger = 1;
        gw_req_header_add(r, "Connection", "close");
        gw_reply_error(r, 400, why);
        return;
    }
    rt = gw_route_find(srv, r->path);
    if (rt == NULL) {
        gw_reply_error(r, 404, "not found");
        return;
    }
    r->route = rt;
    if ((rt->methods & r->method) == 0) {
        char allow[64];
        static const struct {
            unsigned m;
            const char *name;
        } names[] = {
            {GW_METHOD_GET, "GET"},     {GW_METHOD_HEAD, "HEAD"},
            {GW_METHOD_POST, "POST"},   {GW_METHOD_PUT, "PUT"},
            {GW_METHOD_PATCH, "PATCH"}, {GW_METHOD_DELETE, "DELETE"},
        };
        size_t used = 0;
        allow[0] = '\0';
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if ((rt->methods & names[i].m) == 0) continue;
            used += (size_t)snprintf(allow + used, sizeof(allow) - used, "%s%s",
                                     used ? ", " : "", names[i].name);
        }
        gw_req_header_add(r, "Allow", allow);
        gw_reply_error(r, 405, "method not allowed");
        return;
    }
    tv = gw_ms_tv(srv->cfg->request_timeout_ms);
    AZ(evtimer_add(r->deadline, &tv));
    gw_req_enter(r);
    rt->handler(r);
    gw_req_leave(r); /* r may be gone from here on */
}

/* ------------------------------------------------------------------------
 * /healthz
 */

enum gw_probe_state { GW_PROBE_PENDING = 0, GW_PROBE_UP, GW_PROBE_DOWN };

struct gw_health;

struct gw_health_slot {
    struct gw_health *h;
    enum gw_probe_state state;
};

#define GW_HEALTH_MAGIC 0x4ea17a5bu

struct gw_health {
    unsigned magic;
    struct gw_req *r;
    size_t n, ndone;
    int launching;
    struct gw_health_slot slot[GW_PROBES_MAX];
};

int
gw_health_register(struct gw_server *srv, const char *name,
                   gw_health_probe_cb *probe, void *probe_arg)
{
    struct gw_probe *p;
    size_t n = strlen(name);

    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    AN(probe);
    if (srv->nprobes == GW_PROBES_MAX || n == 0 || n >= sizeof(p->name))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') ||
              (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
            return -1;
    p = &srv->probes[srv->nprobes++];
    memcpy(p->name, name, n + 1);
    p->probe = probe;
    p->arg = probe_arg;
    return 0;
}

/* Answer with what is known (pending probes are "timeout"). */
static void
gw_health_reply(struct gw_health *h)
{
    static const char *const word[] = {"timeout", "up", "down"};
    struct gw_server *srv = h->r->srv;
    char body[GW_PROBES_MAX * 48 + 8];
    size_t o = 0;
    int up = 1;

    body[o++] = '{';
    for (size_t i = 0; i < h->n; i++) {
        int k =
            snprintf(body + o, sizeof(body) - o, "%s\"%s\":\"%s\"",
                     i ? "," : "", srv->probes[i].name, word[h->slot[i].state]);
        AN(k > 0 && (size_t)k < sizeof(body) - o);
        o += (size_t)k;
        up &= h->slot[i].state == GW_PROBE_UP;
    }
    memcpy(body + o, "}\n", 3);
    o += 2;
    if (!up && !h->r->answered)
        GW_RLOG(GW_LEVEL_WARN, h->r, 0, "unhealthy %s", body);
    gw_reply(h->r, up ? 200 : 503, "application/json", body, o);
}

static void
gw_health_done(int status, void *arg)
{
    struct gw_health_slot *s = arg;
    struct gw_health *h = s->h;

    GW_CHECK_MAGIC(h, GW_HEALTH_MAGIC);
    if (s->state != GW_PROBE_PENDING) WRONG("health probe answered twice");
    s->state = status == 0 ? GW_PROBE_UP : GW_PROBE_DOWN;
    h->ndone++;
    if (!h->launching && h->ndone == h->n)
        gw_health_reply(h); /* frees r, and h with it */
}

static void
gw_health_deadline(struct gw_req *r, void *arg)
{
    struct gw_health *h = arg;
    (void)r;
    GW_CHECK_MAGIC(h, GW_HEALTH_MAGIC);
    gw_health_reply(h); /* answers; r lives until the last probe */
}

static void
gw_health_handle(struct gw_req *r)
{
    struct gw_server *srv = r->srv;
    struct gw_health *h = gw_req_alloc(r, sizeof(*h));

    if (h == NULL) {
        gw_reply_error(r, 503, "out of memory");
        return;
    }
    h->magic = GW_HEALTH_MAGIC;
    h->r = r;
    h->n = srv->nprobes;
    h->launching = 1;
    gw_req_on_deadline(r, gw_health_deadline, h);
    for (size_t i = 0; i < h->n; i++) {
        h->slot[i].h = h;
        srv->probes[i].probe(srv->probes[i].arg, gw_health_done, &h->slot[i]);
    }
    h->launching = 0;
    if (h->ndone == h->n) gw_health_reply(h);
}

/* ------------------------------------------------------------------------
 * /metrics
 */

static void
gw_metrics_handle(struct gw_req *r)
{
    size_t len;
    char *text = gw_metrics_render(&len);

    if (text == NULL) {
        gw_reply_error(r, 503, "out of memory");
        return;
    }
    gw_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

/* ------------------------------------------------------------------------
 * The server: hooks, signals, drain
 */

struct event_base *
gw_server_base(struct gw_server *srv)
{
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    return srv->base;
}

const struct gw_config *
gw_server_config(const struct gw_server *srv)
{
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    return srv->cfg;
}

int
gw_server_worker(const struct gw_server *srv)
{
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    return srv->worker;
}

int
gw_server_on_reload(struct gw_server *srv, gw_reload_cb *cb, void *arg)
{
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    AN(cb);
    if (srv->nreload == GW_HOOKS_MAX) return -1;
    srv->reload[srv->nreload].cb = cb;
    srv->reload[srv->nreload].arg = arg;
    srv->nreload++;
    return 0;
}

int
gw_server_on_stop(struct gw_server *srv, gw_stop_cb *cb, void *arg)
{
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    AN(cb);
    if (srv->nstop == GW_HOOKS_MAX) return -1;
    srv->stop[srv->nstop].cb = cb;
    srv->stop[srv->nstop].arg = arg;
    srv->nstop++;
    return 0;
}

static void
gw_server_reload(struct gw_server *srv)
{
    size_t failed = 0;
    /* every hook runs: one that fails keeps its own old state (and logs
     * why), the others take their new one */
    for (size_t i = 0; i < srv->nreload; i++)
        if (srv->reload[i].cb(srv, srv->reload[i].arg) != 0) failed++;
    gw_metric_inc(GW_M_RELOADS, failed == 0 ? "ok" : "failed", NULL);
    if (failed == 0)
        GW_LOG_INFO(0, "reloaded hooks=%zu", srv->nreload);
    else
        GW_LOG_ERROR(0,
                     "reload: %zu of %zu hooks failed and keep what was "
                     "loaded; the others reloaded",
                     failed, srv->nreload);
}

/* Run the stop hooks once and leave the loop. */
static void
gw_server_finish(struct gw_server *srv)
{
    if (srv->finished) return;
    srv->finished = 1;
    if (srv->in_flight > 0)
        GW_LOG_WARN(0, "stopping with requests in flight in_flight=%zu",
                    srv->in_flight);
    for (size_t i = 0; i < srv->nstop; i++)
        srv->stop[i].cb(srv, srv->stop[i].arg);
    event_base_loopexit(srv->base, NULL);
}

static void
gw_server_drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_server *srv = arg;
    (void)fd;
    (void)what;
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    gw_server_finish(srv);
}

/* The last request in flight is gone while stopping.  Finish from the
 * loop, not from inside whatever callback freed that request. */
static void
gw_server_drained(struct gw_server *srv)
{
    struct timeval zero = {0, 0};
    if (srv->finished || srv->drain_timer == NULL) return;
    evtimer_add(srv->drain_timer, &zero);
}

static void
gw_server_stop(struct gw_server *srv)
{
    struct timeval tv;

    if (srv->stopping) {
        /* Ctrl-C reaches the whole process group and the supervisor
         * forwards it as well; only a signal sent later means "now". */
        if (gw_elapsed(&srv->stop_t0) < 1.0) return;
        GW_LOG_WARN(0, "stop signal again, stopping now");
        gw_server_finish(srv);
        return;
    }
    srv->stopping = 1;
    clock_gettime(CLOCK_MONOTONIC, &srv->stop_t0);
    if (srv->bound != NULL) {
        evhttp_del_accept_socket(srv->http, srv->bound); /* closes fd */
        srv->bound = NULL;
    }
    GW_LOG_INFO(0, "stopping worker=%d in_flight=%zu", srv->worker,
                srv->in_flight);
    if (srv->in_flight == 0) {
        gw_server_finish(srv);
        return;
    }
    tv = gw_ms_tv(srv->cfg->request_timeout_ms + 1000);
    evtimer_add(srv->drain_timer, &tv);
}

static void
gw_server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct gw_server *srv = arg;
    (void)what;
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    if (sig == SIGHUP)
        gw_server_reload(srv);
    else
        gw_server_stop(srv);
}

static int
gw_server_signals(struct gw_server *srv)
{
    sigset_t set;

    srv->sig_term = evsignal_new(srv->base, SIGTERM, gw_server_signal_cb, srv);
    srv->sig_int = evsignal_new(srv->base, SIGINT, gw_server_signal_cb, srv);
    srv->sig_hup = evsignal_new(srv->base, SIGHUP, gw_server_signal_cb, srv);
    if (srv->sig_term == NULL || srv->sig_int == NULL || srv->sig_hup == NULL ||
        evsignal_add(srv->sig_term, NULL) != 0 ||
        evsignal_add(srv->sig_int, NULL) != 0 ||
        evsignal_add(srv->sig_hup, NULL) != 0)
        return -1;
    /* A forked worker starts with these blocked (see gw_daemon.c); they
     * are safe to receive now. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    return 0;
}

static void
gw_server_free(struct gw_server *srv)
{
    struct gw_req *r;
    struct gw_conn *conn;

    if (srv == NULL) return;
    /* Handlers that never replied: nothing can answer them now.  Free
     * ours; evhttp_free() frees libevent's side. */
    while ((r = TAILQ_FIRST(&srv->reqs)) != NULL) {
        GW_RLOG(GW_LEVEL_WARN, r, 0, "request dropped at shutdown");
        r->ev = NULL;
        gw_req_destroy(r);
    }
    srv->bound = NULL; /* evhttp_free() frees it first */
    if (srv->http != NULL)
        evhttp_free(srv->http); /* closes connections: close callbacks */
    else if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    while ((conn = TAILQ_FIRST(&srv->fresh)) != NULL)
        gw_conn_free(conn);
    while (!TAILQ_EMPTY(&srv->lingers))
        gw_linger_end(TAILQ_FIRST(&srv->lingers));
    if (srv->adopt != NULL) event_free(srv->adopt);
    if (srv->backoff_timer != NULL) event_free(srv->backoff_timer);
    if (gw_server_self == srv) gw_server_self = NULL;
    if (srv->sig_term != NULL) event_free(srv->sig_term);
    if (srv->sig_int != NULL) event_free(srv->sig_int);
    if (srv->sig_hup != NULL) event_free(srv->sig_hup);
    if (srv->drain_timer != NULL) event_free(srv->drain_timer);
    if (srv->base != NULL) event_base_free(srv->base);
    for (size_t i = 0; i <= GW_SPARE_MAX_CLS; i++) {
        struct gw_req_chunk *c, *next;
        for (c = srv->spare[i]; c != NULL; c = next) {
            next = c->next;
            free(c);
        }
    }
    free(srv->conns.slot);
    srv->magic = 0;
    free(srv);
}

/* The worker's event base.  With epoll, the changelist folds the adds and
 * deletes an fd gets within one loop turn (evhttp enables and disables
 * reading and writing several times per request) into at most one
 * epoll_ctl().  Its one hazard is fds shared through dup(), which the
 * daemon never makes. */
static struct event_base *
gw_base_new(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base;

    if (ec == NULL) return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

int
gw_worker_run(const struct gw_config *cfg, int fd, int worker)
{
    return gw_worker_run_with(cfg, fd, worker, NULL, NULL);
}

int
gw_worker_run_with(const struct gw_config *cfg, int fd, int worker,
                   gw_start_cb *start, void *arg)
{
    struct gw_server *srv;
    struct timeval tv;
    sigset_t set;
    int rc = 1;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        GW_LOG_ERROR(ENOMEM, "worker did not start");
        close(fd);
        return 1;
    }
    srv->magic = GW_SERVER_MAGIC;
    srv->cfg = cfg;
    srv->worker = worker;
    srv->listen_fd = fd;
    srv->pid = getpid();
    TAILQ_INIT(&srv->reqs);
    TAILQ_INIT(&srv->fresh);
    TAILQ_INIT(&srv->waiting);
    TAILQ_INIT(&srv->lingers);
    srv->accept_log.per_sec = 1;
    srv->conn_log.per_sec = 5;
    srv->refused_log.per_sec = 20;
    srv->max_conns = gw_conn_limit(cfg);
    if (gw_connset_init(&srv->conns, srv->max_conns + 1) < 0 ||
        (srv->base = gw_base_new()) == NULL ||
        (srv->drain_timer = evtimer_new(srv->base, gw_server_drain_cb, srv)) ==
            NULL ||
        (srv->adopt = event_new(srv->base, -1, 0, gw_conn_adopt_cb, srv)) ==
            NULL ||
        (srv->backoff_timer = evtimer_new(srv->base, gw_backoff_cb, srv)) ==
            NULL ||
        (srv->http = evhttp_new(srv->base)) == NULL) {
        GW_LOG_ERROR(ENOMEM, "worker did not start");
        goto done;
    }
    evhttp_set_max_headers_size(srv->http, cfg->header_bytes);
    evhttp_set_max_body_size(srv->http, cfg->body_bytes);
    tv = gw_ms_tv(cfg->request_timeout_ms);
    evhttp_set_timeout_tv(srv->http, &tv);
    /* Every method reaches gw_http_dispatch(), which answers 405 with Allow
     * for those the path's route does not take. */
    evhttp_set_allowed_methods(
        srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                       EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                       EVHTTP_REQ_OPTIONS);
    evhttp_set_default_content_type(srv->http, "text/plain; charset=utf-8");
    evhttp_set_gencb(srv->http, gw_http_dispatch, srv);
    evhttp_set_bevcb(srv->http, gw_conn_bev, srv);
    srv->bound = evhttp_accept_socket_with_handle(srv->http, fd);
    if (srv->bound == NULL) {
        GW_LOG_ERROR(errno, "cannot accept on the listening socket");
        goto done;
    }
    srv->listen_fd = -1; /* the listener owns it now */
    srv->accepting = 1;
    gw_server_self = srv;
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(srv->bound),
                                gw_accept_error_cb);
    if (gw_server_signals(srv) < 0) {
        GW_LOG_ERROR(0, "cannot set up signal handling");
        goto done;
    }
    for (size_t i = 0; i < sizeof(gw_http_routes) / sizeof(gw_http_routes[0]);
         i++)
        AZ(gw_server_route(srv, &gw_http_routes[i]));
    if (gw_ussd_start(srv) != 0) {
        GW_LOG_ERROR(0, "worker did not start: ussd");
        goto done;
    }
    if (gw_records_start(srv) != 0) {
        GW_LOG_ERROR(0, "worker did not start: records");
        goto done;
    }
    if (gw_sendsms_start(srv) != 0) {
        GW_LOG_ERROR(0, "worker did not start: sendsms");
        goto done;
    }
    if (console_start(srv) != 0) {
        GW_LOG_ERROR(0, "worker did not start: console");
        goto done;
    }
    if (notices_start(srv) != 0) {
        GW_LOG_ERROR(0, "worker did not start: notices");
        goto done;
    }
    if (start != NULL && start(srv, arg) != 0) {
        GW_LOG_ERROR(0, "worker did not start");
        goto done;
    }
    GW_LOG_INFO(0, "worker ready worker=%d", worker);
    if (event_base_dispatch(srv->base) < 0) {
        GW_LOG_ERROR(0, "event loop failed");
        goto done;
    }
    rc = 0;
    GW_LOG_INFO(0, "worker stopped worker=%d", worker);
done:
    /* From here on a stop signal would only kill us halfway through the
     * teardown (libevent gives the signals their old handlers back). */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (!srv->finished) {
        srv->finished = 1;
        for (size_t i = 0; i < srv->nstop; i++)
            srv->stop[i].cb(srv, srv->stop[i].arg);
    }
    console_fini(srv);
    notices_fini(srv);
    gw_sendsms_fini(srv);
    gw_records_fini(srv);
    gw_ussd_fini(srv);
    gw_server_free(srv);
    return rc;
}
