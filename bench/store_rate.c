/*
 * store_rate.c -- registrations per second through store/ alone: no HTTP,
 * no Redis, no flows; one process, one event loop, the real PostgreSQL.
 *
 *   build/bench/store_rate DSN KEYFILE N INFLIGHT POOL BATCH [PREFIX]
 *
 * Keeps INFLIGHT store_submit() calls outstanding until N registrations
 * (each with its own idempotency key and number, PREFIX then 6 digits,
 * default 88016) have called back, then prints one line:
 *
 *   STORE n=N ok=.. failed=.. secs=.. per_s=.. pool=.. batch=.. inflight=..
 *
 * bench/store-rate runs it; it is how to tell what PostgreSQL itself can
 * take from what the daemon around it adds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "store/store.h"

static struct {
    struct store *s;
    struct event_base *base;
    const char *prefix;
    long n, sent, done, ok, failed;
} B;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void b_send(void);

static void
b_done(int status, const struct store_result *res, void *arg)
{
    (void)arg;
    B.done++;
    if (status == STORE_OK)
        B.ok++;
    else if (B.failed++ == 0)
        fprintf(stderr, "store_rate: first failure: %s (%s)\n",
                store_strerror(status), res->errstr);
    if (B.done == B.n)
        event_base_loopbreak(B.base);
    else
        b_send();
}

static void
b_send(void)
{
    char rec[1024];
    if (B.sent >= B.n) return;
    long i = B.sent++;
    int len = snprintf(
        rec, sizeof(rec),
        "{\"flow\":\"register\",\"action\":\"submit_registration\","
        "\"key\":\"s%s%030ld\",\"ref\":\"S%s%07ld\",\"lang\":\"en\","
        "\"channel\":\"ussd\",\"msisdn\":\"%s%06ld\",\"started\":1795343567,"
        "\"answers\":{\"consent\":\"yes\",\"name\":\"Returnee %ld\","
        "\"sex\":\"m\",\"birth_year\":1985,\"division\":\"C\","
        "\"district\":\"BD-13\",\"country\":\"SA\",\"years_abroad\":3,"
        "\"return_year\":2025,\"reason\":\"lost_job\",\"education\":\"none\","
        "\"skills\":[\"mason\"],\"need\":\"job_home\",\"id_type\":\"nid\","
        "\"nid\":\"%010ld\"}}",
        B.prefix, i, B.prefix + strlen(B.prefix) - 2, i, B.prefix, i, i,
        2000000000 + i);
    int rc = store_submit(B.s, rec, (size_t)len, b_done, NULL);
    if (rc != STORE_OK) {
        fprintf(stderr, "store_submit: %s\n", store_strerror(rc));
        exit(1);
    }
}

static void
b_wait(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (store_connected(B.s) > 0) event_base_loopbreak(B.base);
}

int
main(int argc, char **argv)
{
    char err[256];
    if (argc < 7) {
        fprintf(stderr, "usage: store_rate DSN KEYFILE N INFLIGHT POOL "
                        "BATCH [PREFIX]\n");
        return 2;
    }
    long inflight = atol(argv[4]);
    struct store_config cfg = {.dsn = argv[1],
                               .key_file = argv[2],
                               .pool = atoi(argv[5]),
                               .batch = atoi(argv[6]),
                               .timeout_ms = 30000,
                               .max_waiting = 4096};
    B.n = atol(argv[3]);
    B.prefix = argc > 7 ? argv[7] : "88016";
    B.base = event_base_new();
    B.s = store_new(&cfg, B.base, err, sizeof(err));
    if (B.s == NULL || store_start(B.s) != 0) {
        fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    struct event *w = event_new(B.base, -1, EV_PERSIST, b_wait, NULL);
    struct timeval tv = {0, 10000};
    event_add(w, &tv);
    event_base_dispatch(B.base);
    event_free(w);
    /* let every connection come up */
    for (double t = now_s();
         store_connected(B.s) < cfg.pool && now_s() - t < 5;)
        event_base_loop(B.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    double t0 = now_s();
    for (long k = 0; k < inflight && k < B.n; k++)
        b_send();
    event_base_dispatch(B.base);
    double secs = now_s() - t0;
    printf("STORE n=%ld ok=%ld failed=%ld secs=%.2f per_s=%.0f pool=%d "
           "batch=%d inflight=%ld\n",
           B.n, B.ok, B.failed, secs, (double)B.done / secs, cfg.pool,
           cfg.batch, inflight);
    store_free(B.s);
    event_base_free(B.base);
    return B.failed ? 1 : 0;
}
