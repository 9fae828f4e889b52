/*
 * gw_reply.c -- answering a request: a whole reply (gw_reply() and its
 * text and error forms) or a streamed one (gw_reply_start(), _chunk(),
 * _end()), each counted in the metrics and the log.
 *
 * Exactly one answer per request.  libevent 2.1.12 detaches a request
 * whose client has left instead of freeing it, and only
 * evhttp_send_reply() (or evhttp_send_reply_end() for a stream) frees a
 * detached request -- so every path, the late and the lost ones
 * included, ends in one of them, and r never touches the evhttp request
 * after that.  r itself is freed once its one reply came and no frame
 * holds it (gw_req_enter()).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gateway/gw_http_int.h"

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
