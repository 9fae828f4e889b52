/*
 * gw_req.c -- the request object: what a handler reads of a request, the
 * memory it owns (gw_req_alloc()), its deadline, the hold count that keeps
 * it alive while a handler or callback is on the stack, and the *_or_4xx
 * helpers.
 *
 * A struct gw_req owns every byte of a request (path, query, body, the
 * handler's gw_req_alloc() memory) and is freed in one place,
 * gw_req_free(), which runs when the handler calls its one reply function
 * (gw_reply.c) and no frame holds it.  The deadline timer answers the
 * client when the handler is late, but leaves the request alive: the
 * handler may be waiting for Redis with r as its callback argument, and
 * its late reply then only frees r.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gateway/gw_http_int.h"

static void gw_req_deadline_cb(evutil_socket_t fd, short what, void *arg);

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
void
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

void
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

struct gw_req *
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
