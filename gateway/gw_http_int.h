/*
 * gw_http_int.h -- private to the HTTP server's files: gw_http.c (routes,
 * dispatch, the worker), gw_conn.c (client connections), gw_req.c (the
 * request object) and gw_reply.c (replies).  The structs they share are
 * in gw_int.h.
 */
#ifndef GW_HTTP_INT_H
#define GW_HTTP_INT_H

#include <stddef.h>
#include <sys/time.h>
#include <time.h>

#include <event2/util.h>

#include "gateway/gw_int.h"

struct bufferevent;
struct event_base;
struct evhttp_connection;
struct evhttp_request;

/* Seconds since t0 (CLOCK_MONOTONIC). */
static inline double
gw_elapsed(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) +
           (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static inline struct timeval
gw_ms_tv(long ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

/* ------------------------------------------------------------------------
 * gw_http.c
 */

/* The last request in flight is gone while stopping: the worker finishes
 * from the loop (a no-op once finished). */
void gw_server_drained(struct gw_server *srv);

/* ------------------------------------------------------------------------
 * gw_conn.c: every accepted connection is a struct gw_conn in srv->fresh,
 * srv->waiting or busy (a request of it in a handler).
 */

/* max_connections, lowered (and logged) to fit RLIMIT_NOFILE. */
size_t gw_conn_limit(const struct gw_config *cfg);
/* An empty set for up to max connections; -1 out of memory. */
int gw_connset_init(struct gw_connset *s, size_t max);
/* The adopted connection of evcon (NULL: none, or evcon NULL). */
struct gw_conn *gw_connset_find(const struct gw_connset *s, const void *evcon);
/* evhttp's bufferevent callback (evhttp_set_bevcb(), arg: the server). */
struct bufferevent *gw_conn_bev(struct event_base *base, void *arg);
/* srv->adopt's callback: adopts srv->fresh, enforces the limit. */
void gw_conn_adopt_cb(evutil_socket_t fd, short what, void *arg);
/* srv->backoff_timer's callback: the listener may accept again. */
void gw_backoff_cb(evutil_socket_t fd, short what, void *arg);
/* srv->bound is set: pause and back off when accept() fails. */
void gw_conn_listen(struct gw_server *srv);
/* After evhttp_free(): free the connections never adopted and the
 * lingering closes. */
void gw_conn_fini(struct gw_server *srv);
/* A request of evcon reached the dispatcher / its answer is going out. */
void gw_conn_busy(struct gw_server *srv, struct evhttp_connection *evcon);
void gw_conn_idle(struct gw_server *srv, struct evhttp_connection *evcon);

/* ------------------------------------------------------------------------
 * gw_req.c
 */

/* A request for ev (borrowed until answered), counted in flight, its
 * deadline timer made but not started; NULL out of memory. */
struct gw_req *gw_req_new(struct gw_server *srv, struct evhttp_request *ev);
/* Free what r owns; r's evhttp request is not touched. */
void gw_req_destroy(struct gw_req *r);
/* gw_req_destroy() of an answered request. */
void gw_req_free(struct gw_req *r);

#endif
