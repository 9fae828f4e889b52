/*
 * gw_conn.c -- one worker's client connections, from accept() to close:
 * the connection limit, the deadline for a request to arrive, keep-alive
 * between requests, the lingering close, and the listener's pause when
 * accept() fails or every connection is busy.
 *
 * libevent 2.1 has no connection limit and no deadline for a request's
 * arrival (its timeout restarts with every byte), so both are kept here.
 * evhttp asks gw_conn_bev() for each accepted connection's bufferevent:
 * that is where a connection starts to count.  Its evhttp connection
 * exists only once evhttp has set it up, so gw_conn_adopt_cb() runs from
 * the loop right after and finds it (the bufferevent's callback argument,
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
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "gateway/gw_http_int.h"

static void gw_listener_update(struct gw_server *srv);

static size_t
gw_connset_hash(const void *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 29) & (cap - 1);
}

int
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

struct gw_conn *
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
void
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
void
gw_conn_idle(struct gw_server *srv, struct evhttp_connection *evcon)
{
    struct gw_conn *c = gw_connset_find(&srv->conns, evcon);
    if (c == NULL || !c->busy) return;
    gw_conn_wait(c);
    gw_listener_update(srv); /* it can make room now */
}

/* evhttp's bufferevent for a connection just accepted. */
struct bufferevent *
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

void
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

void
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
size_t
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

void
gw_conn_listen(struct gw_server *srv)
{
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    AN(srv->bound);
    gw_server_self = srv;
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(srv->bound),
                                gw_accept_error_cb);
}

void
gw_conn_fini(struct gw_server *srv)
{
    struct gw_conn *conn;

    while ((conn = TAILQ_FIRST(&srv->fresh)) != NULL)
        gw_conn_free(conn);
    while (!TAILQ_EMPTY(&srv->lingers))
        gw_linger_end(TAILQ_FIRST(&srv->lingers));
    if (gw_server_self == srv) gw_server_self = NULL;
}
