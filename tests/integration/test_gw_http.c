/*
 * test_gw_http.c -- the request lifecycle of a real worker, from a real
 * client: the paths a shell script cannot reach.  Each test forks a worker
 * (gw_worker_run_with()) on a loopback socket, plugs in health probes that
 * answer at once, late or never, and a stop hook that fails whatever is
 * still pending, then talks HTTP/1.1 to it over plain sockets:
 *
 *   - /healthz with up, down and late probes; the deadline answers 503
 *     "timeout" and the late probe still finds its request alive;
 *   - a client that leaves before the deadline (libevent detaches the
 *     request; the deadline must still answer it, freeing it);
 *   - SIGTERM with a request in flight: it is answered, the stop hooks run,
 *     the worker exits 0 in time -- also when only a stop hook can end it;
 *   - max_connections counts connections from accept(): a newcomer takes
 *     the place of the longest idle one, or gets 503 when all are busy;
 *   - a request dripped a byte at a time is cut at header_timeout_ms;
 *   - accept() out of descriptors pauses instead of spinning;
 *   - a handler, and a callback that entered its request, may read the
 *     request's memory after replying: the request is freed when they
 *     return (a use after free otherwise: the worker dies).
 *
 * Under SAN=1 a worker that leaks or touches freed memory exits non-zero,
 * which every test checks.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <event2/event.h>

#include "gateway/gw_int.h"
#include "tests/lib/itest.h"

/* ------------------------------------------------------------------------
 * The worker side (runs in the child)
 */

enum probe_kind { PROBE_UP, PROBE_DOWN, PROBE_LATE };

static struct {
    enum probe_kind kinds[4];
    size_t n;
    long late_ms;    /* PROBE_LATE answers after this */
    int spare_fds;   /* > 0: the worker may open this many more fds */
    const char *log; /* the worker's log goes here (warn level) */
} plan;

struct late {
    struct late *next;
    struct event *ev;
    gw_health_done_cb *done;
    void *arg;
};

static struct event_base *child_base;
static struct late *pending;
static int stop_ran;

static void
late_fire(struct late *l, int status)
{
    struct late **pp;
    for (pp = &pending; *pp != l; pp = &(*pp)->next)
        ;
    *pp = l->next;
    event_free(l->ev);
    l->done(status, l->arg);
    free(l);
}

static void
late_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    late_fire(arg, 0);
}

static void
probe_cb(void *probe_arg, gw_health_done_cb *done, void *done_arg)
{
    enum probe_kind k = (enum probe_kind)(intptr_t)probe_arg;
    struct late *l;
    struct timeval tv;

    if (k != PROBE_LATE) {
        done(k == PROBE_UP ? 0 : -1, done_arg);
        return;
    }
    l = calloc(1, sizeof(*l));
    AN(l);
    l->ev = evtimer_new(child_base, late_cb, l);
    AN(l->ev);
    l->done = done;
    l->arg = done_arg;
    l->next = pending;
    pending = l;
    tv.tv_sec = plan.late_ms / 1000;
    tv.tv_usec = (plan.late_ms % 1000) * 1000;
    evtimer_add(l->ev, &tv);
}

/* Shutdown: every pending callback runs, with an error. */
static void
stop_cb(struct gw_server *srv, void *arg)
{
    (void)srv;
    (void)arg;
    stop_ran++;
    while (pending != NULL)
        late_fire(pending, -1);
}

/* Reply, then read what the request owns: its path, and a buffer of its
 * memory.  The reply's status says whether the buffer still held what was
 * written (200) or not (500, never seen: the worker would have died). */
static const char pattern[] = "still here after the reply";

static void
read_after_reply(struct gw_req *r)
{
    char *buf = gw_req_alloc(r, 8192);
    AN(buf);
    memcpy(buf, pattern, sizeof(pattern));
    gw_reply_text(r, 200, "text/plain", "replied\n");
    /* r has ended, but this frame still holds it */
    AN(gw_req_answered(r));
    AZ(strcmp(gw_req_path(r), "/t/now"));
    AZ(strcmp(buf, pattern));
    memset(buf, 'x', 8192);
}

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_req *r = arg;
    char *buf;
    (void)fd;
    (void)what;
    gw_req_enter(r);
    buf = gw_req_alloc(r, 8192);
    AN(buf);
    memcpy(buf, pattern, sizeof(pattern));
    gw_reply_text(r, 200, "text/plain", "replied later\n");
    AZ(strcmp(gw_req_path(r), "/t/later"));
    AZ(strcmp(buf, pattern));
    gw_req_leave(r); /* r is freed here */
}

static void
read_after_later_reply(struct gw_req *r)
{
    struct timeval tv = {0, 20 * 1000};
    AZ(event_base_once(child_base, -1, EV_TIMEOUT, later_cb, r, &tv));
}

static const struct gw_route test_routes[] = {
    {"/t/now", 0, GW_METHOD_GET, "other", read_after_reply, NULL},
    {"/t/later", 0, GW_METHOD_GET, "other", read_after_later_reply, NULL},
};

static int
start_cb(struct gw_server *srv, void *arg)
{
    static const char *const names[] = {"alpha", "beta", "gamma", "delta"};
    (void)arg;
    for (size_t i = 0; i < sizeof(test_routes) / sizeof(test_routes[0]); i++)
        if (gw_server_route(srv, &test_routes[i]) != 0) return -1;
    if (plan.spare_fds > 0) {
        /* fewer descriptors than the worker planned its limit for: only
         * accept() failing can stop it */
        struct rlimit rl;
        int top = 0;
        for (int fd = 0; fd < 1024; fd++)
            if (fcntl(fd, F_GETFD) >= 0) top = fd;
        /* fill the holes below the highest one */
        for (;;) {
            int fd = open("/dev/null", O_RDONLY);
            AN(fd >= 0);
            if (fd > top) {
                close(fd);
                break;
            }
        }
        AZ(getrlimit(RLIMIT_NOFILE, &rl));
        rl.rlim_cur = (rlim_t)(top + 1 + plan.spare_fds);
        AZ(setrlimit(RLIMIT_NOFILE, &rl));
    }
    child_base = gw_server_base(srv);
    for (size_t i = 0; i < plan.n; i++)
        if (gw_health_register(srv, names[i], probe_cb,
                               (void *)(intptr_t)plan.kinds[i]) != 0)
            return -1;
    if (gw_health_register(srv, "Bad-Name", probe_cb, NULL) == 0) return -1;
    return gw_server_on_stop(srv, stop_cb, NULL);
}

/* ------------------------------------------------------------------------
 * The test side
 */

static struct gw_config cfg;
static pid_t worker = -1;
static int port;

static void
fork_worker(void)
{
    int fd = itest_listen(&port, 1);

    assert_true(fd >= 0);
    fflush(NULL);
    worker = fork();
    assert_true(worker >= 0);
    if (worker == 0) {
        int rc;
        gw_log_set_level(GW_LEVEL_ERROR);
        if (plan.log != NULL) {
            AN(freopen(plan.log, "w", stderr));
            gw_log_set_level(GW_LEVEL_WARN);
        }
        rc = gw_worker_run_with(&cfg, fd, 0, start_cb, NULL);
        exit(rc != 0 ? rc : stop_ran == 1 ? 0 : 7);
    }
    close(fd);
}

/* Send sig (0: none) and wait for the worker: its exit status, or -1 if
 * it took over limit_ms. */
static int
wait_worker(int sig, long limit_ms, long *took)
{
    long t0 = itest_now_ms();
    int rc = itest_child_wait(&worker, sig, limit_ms);
    if (rc >= 0 && took != NULL) *took = itest_now_ms() - t0;
    return rc;
}

static int
conn_open(void)
{
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void
conn_send(int fd, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\n\r\n",
                     path);
    assert_int_equal(write(fd, req, (size_t)n), n);
}

struct resp {
    int status;
    char head[2048];
    char body[8192];
};

/* Read one response (headers, then Content-Length bytes).  0 or -1. */
static int
conn_read(int fd, struct resp *r)
{
    char buf[16384];
    size_t got = 0;
    char *end = NULL;
    long clen = -1;

    memset(r, 0, sizeof(*r));
    for (;;) {
        ssize_t n;
        if (end != NULL && clen >= 0 &&
            got >= (size_t)(end + 4 - buf) + (size_t)clen)
            break;
        n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0) return -1;
        got += (size_t)n;
        buf[got] = '\0';
        if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            const char *cl = strstr(buf, "Content-Length: ");
            clen = cl != NULL && cl < end ? atol(cl + 16) : 0;
        }
    }
    if (sscanf(buf, "HTTP/1.1 %d", &r->status) != 1) return -1;
    snprintf(r->head, sizeof(r->head), "%.*s", (int)(end - buf), buf);
    snprintf(r->body, sizeof(r->body), "%.*s", (int)clen, end + 4);
    return 0;
}

static int
get(const char *path, struct resp *r)
{
    int fd = conn_open(), rc;
    conn_send(fd, path);
    rc = conn_read(fd, r);
    close(fd);
    return rc;
}

/* Fork a worker and wait until it answers: its signal handlers are set
 * by then (slow under the sanitizers). */
static void
start_worker(void)
{
    struct resp r;
    fork_worker();
    assert_int_equal(get("/metrics", &r), 0);
    assert_int_equal(r.status, 200);
}

static int
setup(void **state)
{
    char err[256];
    (void)state;
    /* the shipped config: the worker loads the flows and connects to the
     * Redis tests/run started (its "redis" probe comes first) */
    if (gw_config_load("config/remigate.conf", &cfg, err, sizeof(err)) != 0)
        return -1;
    const char *rp = getenv("REDIS_PORT");
    if (rp != NULL) cfg.redis_port = atol(rp);
    cfg.request_timeout_ms = 500;
    memset(&plan, 0, sizeof(plan));
    stop_ran = 0;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    if (worker > 0) {
        kill(worker, SIGKILL);
        waitpid(worker, NULL, 0);
        worker = -1;
    }
    return 0;
}

/* GET /healthz until the worker's Redis connection is up (3 s at most). */
static void
wait_redis(struct resp *r)
{
    for (int i = 0; i < 60; i++) {
        assert_int_equal(get("/healthz", r), 0);
        if (strstr(r->body, "\"redis\":\"up\"") != NULL) return;
        usleep(50 * 1000);
    }
    fail_msg("the worker did not connect to Redis: %s", r->body);
}

static void
t_health(void **state)
{
    struct resp r;
    (void)state;

    plan.kinds[0] = PROBE_UP;
    plan.kinds[1] = PROBE_UP;
    plan.n = 2;
    start_worker();
    wait_redis(&r);
    assert_int_equal(r.status, 200);
    assert_string_equal(
        r.body, "{\"redis\":\"up\",\"alpha\":\"up\",\"beta\":\"up\"}\n");
    assert_non_null(strstr(r.head, "Content-Type: application/json"));
    assert_int_equal(wait_worker(SIGTERM, 3000, NULL), 0);

    plan.kinds[1] = PROBE_DOWN;
    start_worker();
    wait_redis(&r);
    assert_int_equal(r.status, 503);
    assert_string_equal(
        r.body, "{\"redis\":\"up\",\"alpha\":\"up\",\"beta\":\"down\"}\n");
    assert_int_equal(wait_worker(SIGTERM, 3000, NULL), 0);
}

static void
t_health_deadline(void **state)
{
    struct resp r;
    long t0, took;
    (void)state;

    plan.kinds[0] = PROBE_UP;
    plan.kinds[1] = PROBE_LATE;
    plan.n = 2;
    plan.late_ms = 1200;
    start_worker();
    t0 = itest_now_ms();
    assert_int_equal(get("/healthz", &r), 0);
    took = itest_now_ms() - t0;
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"alpha\":\"up\",\"beta\":\"timeout\"}\n"));
    if (took < 400 || took > 1100)
        fail_msg("answered after %ld ms, want about 500", took);

    /* The late probe comes back to a request still alive, and the
     * worker goes on; the first request is done after it. */
    usleep(1000 * 1000);
    assert_int_equal(get("/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(
        strstr(r.body, "remigate_request_timeouts_total{endpoint=\"healthz\"} "
                       "1\n"));
    assert_non_null(strstr(r.body, "remigate_requests_in_flight 1\n"));
    assert_non_null(strstr(
        r.body,
        "remigate_requests_total{endpoint=\"healthz\",status=\"503\"} 1\n"));
    assert_int_equal(wait_worker(SIGTERM, 3000, NULL), 0);
}

static void
t_client_leaves(void **state)
{
    struct resp r;
    (void)state;

    plan.kinds[0] = PROBE_LATE;
    plan.n = 1;
    plan.late_ms = 900;
    start_worker();
    /* Ask, then go: the request is detached before the deadline. */
    int fd = conn_open();
    conn_send(fd, "/healthz");
    usleep(100 * 1000);
    close(fd);
    /* Several more that leave at once. */
    for (int i = 0; i < 5; i++) {
        fd = conn_open();
        conn_send(fd, "/healthz");
        close(fd);
    }
    usleep(1300 * 1000); /* past the deadline and the probe */
    assert_int_equal(get("/metrics", &r), 0);
    assert_non_null(strstr(r.body, "remigate_requests_in_flight 1\n"));
    assert_non_null(strstr(r.body, "remigate_http_connections 1\n"));
    assert_int_equal(wait_worker(SIGTERM, 3000, NULL), 0);
}

static void
t_drain(void **state)
{
    struct resp r;
    long took;
    (void)state;

    /* In flight at SIGTERM, answered normally, then exit 0. */
    plan.kinds[0] = PROBE_LATE;
    plan.n = 1;
    plan.late_ms = 300;
    start_worker();
    wait_redis(&r); /* (each of these also waits for the late probe) */
    int fd = conn_open();
    conn_send(fd, "/healthz");
    usleep(50 * 1000);
    kill(worker, SIGTERM);
    assert_int_equal(conn_read(fd, &r), 0);
    close(fd);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_int_equal(wait_worker(SIGTERM, 3000, &took), 0);

    /* A probe that would take 10 s: the deadline answers at 500 ms, the
     * drain ends at 500 + 1000 ms with the stop hook, which fails the
     * probe so its request is freed, and the worker exits 0. */
    plan.late_ms = 10000;
    start_worker();
    fd = conn_open();
    conn_send(fd, "/healthz");
    usleep(50 * 1000);
    long t0 = itest_now_ms();
    kill(worker, SIGTERM);
    assert_int_equal(conn_read(fd, &r), 0);
    close(fd);
    assert_int_equal(r.status, 503);
    assert_int_equal(wait_worker(0, 4000, &took), 0);
    took = itest_now_ms() - t0;
    if (took < 1200 || took > 2500)
        fail_msg("stopped after %ld ms, want about 1500", took);

    /* In flight at SIGTERM: a second SIGTERM right after it (Ctrl-C seen
     * by the worker and forwarded by the supervisor) changes nothing; one
     * a second later stops at once, dropping the request still in flight,
     * and the stop hook still runs (exit 0) and frees it.  With a 3 s
     * deadline the drain would end at 4 s: out within 2 s of the late
     * SIGTERM (room for a sanitizer's exit on a busy machine) is well
     * before that. */
    cfg.request_timeout_ms = 3000;
    start_worker();
    fd = conn_open();
    conn_send(fd, "/healthz");
    usleep(50 * 1000);
    kill(worker, SIGTERM);
    kill(worker, SIGINT);
    usleep(1100 * 1000);
    assert_int_equal(waitpid(worker, NULL, WNOHANG), 0);
    assert_int_equal(wait_worker(SIGTERM, 2000, &took), 0);
    assert_int_equal(conn_read(fd, &r), -1); /* closed, not answered */
    close(fd);
    cfg.request_timeout_ms = 500;

    /* Nothing in flight: out at once. */
    start_worker();
    assert_int_equal(get("/metrics", &r), 0);
    assert_int_equal(wait_worker(SIGTERM, 1000, &took), 0);
}

/* max_connections counts every connection from accept() on.  At the
 * limit a newcomer takes the place of the connection that has waited
 * longest for a request; when every connection has a request in a
 * handler, the newcomer gets 503 and the listener pauses until an answer
 * goes out. */
static void
t_max_connections(void **state)
{
    struct resp r;
    int fds[17], fd;
    char c;
    (void)state;

    cfg.max_connections = 16;
    cfg.request_timeout_ms = 3000;
    plan.kinds[0] = PROBE_LATE;
    plan.n = 1;
    plan.late_ms = 1000;
    start_worker();
    for (int i = 0; i < 16; i++) {
        fds[i] = conn_open();
        conn_send(fds[i], "/metrics");
        assert_int_equal(conn_read(fds[i], &r), 0);
        assert_int_equal(r.status, 200);
        usleep(5 * 1000);
    }
    /* a 17th: the first one, idle longest, is closed without a word */
    fds[16] = conn_open();
    conn_send(fds[16], "/metrics");
    assert_int_equal(conn_read(fds[16], &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(read(fds[0], &c, 1), 0);
    close(fds[0]);
    /* the others are still served (keep-alive) */
    conn_send(fds[3], "/metrics");
    assert_int_equal(conn_read(fds[3], &r), 0);
    assert_int_equal(r.status, 200);

    /* all 16 with a request in a handler: a newcomer gets 503 at once */
    for (int i = 1; i < 17; i++)
        conn_send(fds[i], "/healthz");
    usleep(300 * 1000);
    long t0 = itest_now_ms();
    fd = conn_open();
    assert_int_equal(conn_read(fd, &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "too many connections\n");
    assert_non_null(strstr(r.head, "Connection: close"));
    assert_true(itest_now_ms() - t0 < 700);
    close(fd);
    for (int i = 1; i < 17; i++) {
        assert_int_equal(conn_read(fds[i], &r), 0);
        assert_int_equal(r.status, 200);
    }
    /* answers went out: a new connection is served (and the longest
     * idle of the 16 makes room for it) */
    fd = conn_open();
    conn_send(fd, "/metrics");
    assert_int_equal(conn_read(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "remigate_connections_refused_total 1\n"));
    assert_non_null(strstr(
        r.body, "remigate_connections_closed_total{reason=\"limit\"} 3\n"));
    assert_non_null(strstr(r.body, "remigate_http_connections 16\n"));
    close(fd);
    for (int i = 1; i < 17; i++)
        close(fds[i]);
    assert_int_equal(wait_worker(SIGTERM, 3000, NULL), 0);
}

/* Milliseconds until the worker closes fd, dripping one byte of req every
 * gap_ms meanwhile; -1 if all of req went out first. */
static long
drip_until_closed(int fd, const char *req, long gap_ms)
{
    long t0 = itest_now_ms();
    for (size_t i = 0; req[i] != '\0'; i++) {
        char c;
        ssize_t n;
        if (write(fd, &req[i], 1) != 1) return itest_now_ms() - t0;
        /* wait gap_ms for the close (EOF or reset) */
        struct timeval tv = {0, gap_ms * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        n = read(fd, &c, 1);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return itest_now_ms() - t0;
    }
    return -1;
}

/* A request must arrive within listen.header_timeout_ms of the connection
 * (or of the previous answer on it); bytes do not extend it.  evhttp's own
 * timeout (request_timeout_ms) restarts with every byte and never fires
 * for a client that drips. */
static void
t_header_deadline(void **state)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: test\r\n"
                              "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    struct resp r;
    long ms;
    (void)state;

    cfg.header_timeout_ms = 1000;
    cfg.request_timeout_ms = 2000;
    start_worker();
    int fd = conn_open();
    ms = drip_until_closed(fd, req, 300);
    close(fd);
    assert_true(ms >= 900 && ms <= 1700);

    /* after an answer on a kept-alive connection, the next request has
     * its own header_timeout_ms */
    fd = conn_open();
    conn_send(fd, "/metrics");
    assert_int_equal(conn_read(fd, &r), 0);
    assert_int_equal(r.status, 200);
    ms = drip_until_closed(fd, req, 300);
    close(fd);
    assert_true(ms >= 900 && ms <= 1700);

    assert_int_equal(get("/metrics", &r), 0);
    assert_non_null(strstr(
        r.body, "remigate_connections_closed_total{reason=\"deadline\"} 2\n"));
    assert_int_equal(wait_worker(SIGTERM, 3000, NULL), 0);
}

/* The worker's CPU seconds so far (utime + stime). */
static double
worker_cpu(void)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)worker);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    p = strrchr(buf, ')');
    assert_non_null(p);
    /* fields 14 and 15 after "pid (comm)": state is field 3 */
    assert_int_equal(sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                            "%*u %lu %lu",
                            &ut, &st),
                     2);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* accept() failing for want of descriptors pauses the listener (no spin,
 * one log line a second at most), gives the descriptor of the longest
 * waiting connection back, and a real request is still answered. */
static void
t_accept_backoff(void **state)
{
    char log[] = "/tmp/remigate-test-log.XXXXXX";
    int fds[40], fd, lines = 0;
    struct resp r;
    char line[512];
    FILE *f;
    (void)state;

    fd = mkstemp(log);
    assert_true(fd >= 0);
    close(fd);
    plan.log = log;
    plan.spare_fds = 6;
    cfg.max_connections = 1000;
    cfg.header_timeout_ms = 2000;
    start_worker();
    double cpu0 = worker_cpu();
    long t0 = itest_now_ms();
    for (int i = 0; i < 40; i++)
        fds[i] = conn_open(); /* they never send a byte */
    usleep(200 * 1000);
    /* behind 40 silent connections, with no descriptor to spare */
    fd = conn_open();
    conn_send(fd, "/metrics");
    assert_int_equal(conn_read(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(itest_now_ms() - t0 < 8000);
    assert_non_null(strstr(r.body, "remigate_accept_errors_total "));
    assert_null(strstr(r.body, "remigate_accept_errors_total 0\n"));
    close(fd);
    usleep(1500 * 1000);
    double wall = (double)(itest_now_ms() - t0) / 1000.0;
    double cpu = worker_cpu() - cpu0;
    for (int i = 0; i < 40; i++)
        close(fds[i]);
    assert_int_equal(wait_worker(SIGTERM, 3000, NULL), 0);
    f = fopen(log, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, "accept failed") != NULL) lines++;
    fclose(f);
    unlink(log);
    print_message("# %.1f s: %.2f s CPU, %d accept lines\n", wall, cpu, lines);
    assert_true(cpu < 0.3 * wall);
    assert_true(lines >= 1 && lines <= (int)wall + 2);
}

/* A reply inside the handler, and one inside a callback that entered the
 * request, leave the request's memory readable until the frame returns;
 * the worker serves on and exits cleanly (SAN=1: no use after free). */
static void
t_reply_then_read(void **state)
{
    struct resp r;
    (void)state;

    start_worker();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(get("/t/now", &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "replied\n");
        assert_int_equal(get("/t/later", &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "replied later\n");
    }
    assert_int_equal(get("/metrics", &r), 0);
    assert_non_null(strstr(r.body, "remigate_requests_in_flight 1\n"));
    assert_int_equal(wait_worker(SIGTERM, 3000, NULL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_health, setup, teardown),
        cmocka_unit_test_setup_teardown(t_health_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(t_client_leaves, setup, teardown),
        cmocka_unit_test_setup_teardown(t_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(t_max_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(t_reply_then_read, setup, teardown),
        cmocka_unit_test_setup_teardown(t_header_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(t_accept_backoff, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("gw_http", tests, NULL, NULL);
}
