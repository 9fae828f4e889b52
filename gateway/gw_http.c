/*
 * gw_http.c -- one worker's HTTP server on libevent 2.1.12 evhttp: the
 * route table, the dispatcher, /healthz, /metrics, signals and the drain
 * on shutdown.  The request object is gw_req.c, replies gw_reply.c, the
 * client connections (limit, deadlines, keep-alive) gw_conn.c.
 *
 * The dispatcher makes a request (gw_req_new()), checks its framing,
 * finds its route, starts its deadline and calls the handler inside a
 * gw_req_enter()/gw_req_leave() pair: the handler's reply frees r only
 * once the handler has returned.
 *
 * Shutdown (SIGTERM, SIGINT): close the listener, let the requests in
 * flight finish, bounded by the request timeout plus a second, then run
 * the stop hooks (which fail every pending callback of their module, so
 * the handlers waiting on them reply) and leave the loop.  Another stop
 * signal, a second or more after the first, stops at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "console/console.h"
#include "gateway/gw_http_int.h"
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

/* The server's own routes. */
static const struct gw_route gw_http_routes[] = {
    {"/healthz", 0, GW_METHOD_GET | GW_METHOD_HEAD, "healthz", gw_health_handle,
     NULL},
    {"/metrics", 0, GW_METHOD_GET | GW_METHOD_HEAD, "metrics",
     gw_metrics_handle, NULL},
};

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

struct gw_probe_wait *
gw_probe_wait_new(gw_health_done_cb *done, void *done_arg)
{
    struct gw_probe_wait *w = malloc(sizeof(*w));
    if (w == NULL) {
        done(-1, done_arg);
        return NULL;
    }
    w->done = done;
    w->arg = done_arg;
    return w;
}

void
gw_probe_wait_end(struct gw_probe_wait *w, int ok)
{
    gw_health_done_cb *done = w->done;
    void *arg = w->arg;
    free(w);
    done(ok ? 0 : -1, arg);
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

int
gw_server_on_drain(struct gw_server *srv, gw_drain_cb *cb, void *arg)
{
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    AN(cb);
    if (srv->ndrain == GW_HOOKS_MAX) return -1;
    srv->drain[srv->ndrain].cb = cb;
    srv->drain[srv->ndrain].arg = arg;
    srv->ndrain++;
    return 0;
}

/* What the drain hooks still have under way (every hook runs). */
static size_t
gw_server_pending(struct gw_server *srv, int first)
{
    size_t n = 0;
    for (size_t i = 0; i < srv->ndrain; i++)
        n += srv->drain[i].cb(srv, srv->drain[i].arg, first);
    srv->pending = n;
    return n;
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
    if (srv->in_flight > 0 || srv->pending > 0)
        GW_LOG_WARN(0,
                    "stopping with work under way in_flight=%zu "
                    "pending=%zu",
                    srv->in_flight, srv->pending);
    for (size_t i = 0; i < srv->nstop; i++)
        srv->stop[i].cb(srv, srv->stop[i].arg);
    event_base_loopexit(srv->base, NULL);
}

/* While stopping: finish once nothing is under way or at the deadline,
 * else look again in GW_DRAIN_POLL_MS. */
static void
gw_server_drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_server *srv = arg;
    double left;
    struct timeval tv;
    (void)fd;
    (void)what;
    GW_CHECK_MAGIC(srv, GW_SERVER_MAGIC);
    if (srv->finished) return;
    left = (double)(srv->cfg->request_timeout_ms + 1000) / 1000.0 -
           gw_elapsed(&srv->stop_t0);
    if ((srv->in_flight == 0 && gw_server_pending(srv, 0) == 0) || left <= 0) {
        gw_server_finish(srv);
        return;
    }
    tv = gw_ms_tv(left * 1000 < GW_DRAIN_POLL_MS ? (long)(left * 1000) + 1
                                                 : GW_DRAIN_POLL_MS);
    evtimer_add(srv->drain_timer, &tv);
}

/* The last request in flight is gone while stopping.  Finish from the
 * loop, not from inside whatever callback freed that request. */
void
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
    gw_server_pending(srv, 1);
    GW_LOG_INFO(0, "stopping worker=%d in_flight=%zu pending=%zu", srv->worker,
                srv->in_flight, srv->pending);
    if (srv->in_flight == 0 && srv->pending == 0) {
        gw_server_finish(srv);
        return;
    }
    tv = gw_ms_tv(GW_DRAIN_POLL_MS);
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
    gw_conn_fini(srv);
    if (srv->adopt != NULL) event_free(srv->adopt);
    if (srv->backoff_timer != NULL) event_free(srv->backoff_timer);
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
    gw_conn_listen(srv);
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
    /* the loop's own slice, at the nice it was started with, once the
     * threads it starts (which would inherit it) have set theirs */
    if (cfg->loop_slice_us > 0) {
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0);
        if (errno != 0 || gw_sched_thread(0, nice, cfg->loop_slice_us) != 0)
            GW_LOG_WARN(errno, "cannot set the event loop's slice");
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