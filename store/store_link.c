/*
 * store_link.c -- one libpq connection on the loop, for the record store
 * (store_pg_conn.c) and the generic pool (store_pool_conn.c): connecting
 * without blocking (PQconnectStart / PQconnectPoll under a deadline), the
 * socket's event, re-made whenever libpq's socket or the interest changes,
 * and the reconnect backoff.  What a connection does once it is up is its
 * owner's.
 */
#include <libpq-fe.h>

#include "store/store_int.h"

int
store_link_init(struct store_link *l, struct event_base *base,
                event_callback_fn on_io, event_callback_fn on_timer, void *arg)
{
    *l = (struct store_link){.base = base, .on_io = on_io, .arg = arg};
    l->timer = evtimer_new(base, on_timer, arg);
    return l->timer != NULL ? 0 : -1;
}

void
store_link_fini(struct store_link *l)
{
    store_link_close(l);
    if (l->timer != NULL) event_free(l->timer);
    l->timer = NULL;
}

int
store_link_watch(struct store_link *l, short what)
{
    int fd = PQsocket(l->pg);

    if (fd < 0) return -1;
    if (l->ev != NULL && (l->ev_fd != fd || l->ev_what != what)) {
        event_free(l->ev);
        l->ev = NULL;
    }
    if (l->ev == NULL) {
        l->ev = event_new(l->base, fd, what | EV_PERSIST, l->on_io, l->arg);
        if (l->ev == NULL || event_add(l->ev, NULL) != 0) return -1;
        l->ev_fd = fd;
        l->ev_what = what;
    }
    return 0;
}

int
store_link_flush(struct store_link *l)
{
    int f = PQflush(l->pg);

    if (f < 0) return -1;
    return store_link_watch(l, f == 1 ? EV_READ | EV_WRITE : EV_READ);
}

void
store_link_schedule(struct store_link *l, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(l->timer, &tv);
}

static void
store_link_unwatch(struct store_link *l)
{
    if (l->ev != NULL) event_free(l->ev);
    l->ev = NULL;
}

void
store_link_close(struct store_link *l)
{
    store_link_unwatch(l);
    if (l->timer != NULL) evtimer_del(l->timer);
    if (l->pg != NULL) PQfinish(l->pg);
    l->pg = NULL;
}

void
store_link_retry(struct store_link *l, int min_ms, int max_ms)
{
    /* the first retry at once (a timeout or a killed backend is usually
     * alone), then a jittered delay that doubles up to max_ms */
    int delay = l->backoff_ms;

    if (delay > 0)
        delay = delay / 2 + (int)randombytes_uniform((uint32_t)delay / 2 + 1);
    l->backoff_ms = l->backoff_ms == 0           ? min_ms
                    : l->backoff_ms * 2 > max_ms ? max_ms
                                                 : l->backoff_ms * 2;
    store_link_schedule(l, delay);
}

/* Server notices are dropped: they may quote data, and the log is the
 * daemon's to write. */
static void
store_link_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int
store_link_connect(struct store_link *l, const char *dsn, int deadline_ms)
{
    STORE_AN(l->pg == NULL);
    l->pg = PQconnectStart(dsn);
    if (l->pg == NULL) return -1;
    PQsetNoticeProcessor(l->pg, store_link_notice, NULL);
    if (PQstatus(l->pg) == CONNECTION_BAD || store_link_watch(l, EV_WRITE) != 0)
        return -1;
    store_link_schedule(l, deadline_ms);
    return 0;
}

int
store_link_poll(struct store_link *l)
{
    /* libpq may close and open its socket between polls (another host,
     * a refused SSL request): never trust a cached registration. */
    store_link_unwatch(l);
    switch (PQconnectPoll(l->pg)) {
    case PGRES_POLLING_READING:
        return store_link_watch(l, EV_READ) != 0 ? -1 : 0;
    case PGRES_POLLING_WRITING:
        return store_link_watch(l, EV_WRITE) != 0 ? -1 : 0;
    case PGRES_POLLING_OK:
        evtimer_del(l->timer);
        return PQsetnonblocking(l->pg, 1) != 0 ? -1 : 1;
    case PGRES_POLLING_FAILED:
    case PGRES_POLLING_ACTIVE:
    default:
        return -1;
    }
}
