/*
 * test_sendsms_keep.c -- the kept-alive connections to Kannel's sendsms
 * (gw_sendsms.c), against a stand-in that closes them the ways a server
 * can, and never a message handed over twice.
 *
 * The stand-in is a forked process with one poll() loop: it numbers the
 * connections it accepts, logs each accept, close and request (the
 * connection, the X-Kannel-To number) and acts by the number's last two
 * digits:
 *
 *   01-05, 07, 09, 11, 13  HTTP/1.1 202, the connection kept
 *   06  202, then it closes the connection (Kannel closing an idle one;
 *       the worker waits 300 ms before the next message)
 *   08  reads the request and closes without an answer
 *   10  HTTP/1.0 202 without keep-alive, closed 50 ms later (libevent 2.1
 *       alone would write the next request into it)
 *   12  HTTP/1.1 202 with "Connection: close", then closes
 *   14  202, kept; the worker then waits 2.5 s (past GW_MT_IDLE_MS)
 *   15  202: must come on a new connection although 14's is still open
 *   20-39  sent all at once; each answered 100 ms after it came
 *
 * The worker (also forked, no database) sends them with
 * gw_sms_send_once() -- the notices' one-try path -- each after the last
 * one's outcome, and logs every outcome.  The tests read both logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <event2/event.h>

#include "gateway/gw_int.h"
#include "tests/lib/itest.h"

#define PREFIX    "88017220000"
#define N_BURST   20 /* numbers 20..39 */
#define MAX_CONNS 64

static struct {
    struct gw_config cfg;
    char tmp[64], slog[96], wlog[96];
    pid_t worker, standin;
} T = {.worker = -1, .standin = -1};

/* ------------------------------------------------------------------------
 * The stand-in for sendsms (child)
 */

struct sconn {
    int fd, id;
    char in[8192];
    size_t n;
    long answer_at; /* > 0: a delayed 202 is due then */
    long close_at;  /* > 0: closed then, nothing read before */
    int open;
};

static const char ok11[] = "HTTP/1.1 202 Accepted\r\nContent-Type: text/plain"
                           "\r\nContent-Length: 24\r\n\r\n0: Accepted for "
                           "delivery";
static const char ok10[] = "HTTP/1.0 202 Accepted\r\nContent-Type: text/plain"
                           "\r\nContent-Length: 24\r\n\r\n0: Accepted for "
                           "delivery";
static const char okclose[] = "HTTP/1.1 202 Accepted\r\nConnection: close\r\n"
                              "Content-Length: 24\r\n\r\n0: Accepted for "
                              "delivery";

static void
s_close(int lfd, struct sconn *c, int *open)
{
    close(c->fd);
    c->open = 0;
    (*open)--;
    itest_log_line(lfd, "CLOSE conn=%d open=%d", c->id, *open);
}

static void
s_send(struct sconn *c, const char *s)
{
    size_t n = strlen(s);
    if (write(c->fd, s, n) != (ssize_t)n) abort();
}

/* A whole request in c->in: log it and act by its number. */
static void
s_request(int lfd, struct sconn *c, int *open)
{
    char *to = strstr(c->in, "X-Kannel-To: +");
    char num[32] = "?";
    int k = -1;
    if (to != NULL) {
        sscanf(to + 14, "%31[0-9]", num);
        k = atoi(num + strlen(num) - 2);
    }
    itest_log_line(lfd, "REQ conn=%d to=%s", c->id, num);
    c->n = 0;
    switch (k) {
    case 6:
        s_send(c, ok11);
        s_close(lfd, c, open);
        break;
    case 8:
        s_close(lfd, c, open);
        break;
    case 10:
        /* as an HTTP/1.0 server does: close a little after the answer,
         * not reading what comes meanwhile */
        s_send(c, ok10);
        c->close_at = itest_now_ms() + 50;
        break;
    case 12:
        s_send(c, okclose);
        s_close(lfd, c, open);
        break;
    default:
        if (k >= 20 && k < 20 + N_BURST)
            c->answer_at = itest_now_ms() + 100;
        else
            s_send(c, ok11);
        break;
    }
}

/* Is a whole request (headers and Content-Length bytes) in c->in? */
static int
s_whole(const struct sconn *c)
{
    const char *e = strstr(c->in, "\r\n\r\n");
    const char *cl;
    long len = 0;
    if (e == NULL) return 0;
    cl = strstr(c->in, "Content-Length: ");
    if (cl != NULL && cl < e) len = atol(cl + 16);
    return (size_t)(e + 4 - c->in) + (size_t)len <= c->n;
}

static void
standin_run(int lsock, int lfd)
{
    static struct sconn cs[MAX_CONNS];
    int ids = 0, open = 0;

    for (;;) {
        struct pollfd p[MAX_CONNS + 1];
        int map[MAX_CONNS + 1], np = 0;
        long now = itest_now_ms(), wait = 50;
        p[np].fd = lsock;
        p[np++].events = POLLIN;
        for (int i = 0; i < MAX_CONNS; i++) {
            if (!cs[i].open) continue;
            if (cs[i].answer_at > 0 && cs[i].answer_at <= now) {
                cs[i].answer_at = 0;
                s_send(&cs[i], ok11);
            }
            if (cs[i].close_at > 0) {
                if (cs[i].close_at <= now) s_close(lfd, &cs[i], &open);
                continue;
            }
            map[np] = i;
            p[np].fd = cs[i].fd;
            p[np++].events = POLLIN;
        }
        if (poll(p, (nfds_t)np, (int)wait) < 0 && errno != EINTR) _exit(3);
        /* closes before accepts: "open=" never counts a gone one */
        for (int j = 1; j < np; j++) {
            struct sconn *c = &cs[map[j]];
            ssize_t r;
            if (!(p[j].revents & (POLLIN | POLLHUP | POLLERR)) || !c->open)
                continue;
            r = read(c->fd, c->in + c->n, sizeof(c->in) - 1 - c->n);
            if (r <= 0) {
                s_close(lfd, c, &open);
                continue;
            }
            c->n += (size_t)r;
            c->in[c->n] = '\0';
            if (s_whole(c)) s_request(lfd, c, &open);
        }
        if (p[0].revents & POLLIN) {
            int fd = accept(lsock, NULL, NULL);
            for (int i = 0; fd >= 0 && i < MAX_CONNS; i++)
                if (!cs[i].open) {
                    memset(&cs[i], 0, sizeof(cs[i]));
                    cs[i].fd = fd;
                    cs[i].id = ++ids;
                    cs[i].open = 1;
                    open++;
                    itest_log_line(lfd, "OPEN conn=%d open=%d", ids, open);
                    fd = -1;
                }
            if (fd >= 0) close(fd);
        }
    }
}

/* ------------------------------------------------------------------------
 * The worker (child): the messages, one after another
 */

static int wlogfd = -1;
static struct gw_server *wsrv;
static int step = 1; /* the number sent last */
static int burst_left;

static void send_next(evutil_socket_t fd, short what, void *arg);

static void
later(long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_once(gw_server_base(wsrv), -1, EV_TIMEOUT, send_next, NULL, &tv);
}

static void
outcome_cb(enum gw_sms_outcome o, int http_status, const char *answer,
           void *arg)
{
    int k = (int)(intptr_t)arg;
    (void)answer;
    itest_log_line(wlogfd, "OUT k=%02d o=%d status=%d", k, (int)o, http_status);
    if (k >= 20) {
        if (--burst_left == 0) itest_log_line(wlogfd, "DONE");
        return;
    }
    step = k + 1;
    if (k == 15) step = 20;
    later(k == 6 ? 300 : k == 14 ? 2500 : 0);
}

static int
send_one(int k)
{
    char to[32], id[40];
    snprintf(to, sizeof(to), PREFIX "%02d", k);
    snprintf(id, sizeof(id), "00000000-0000-4000-8000-0000000000%02d", k);
    struct gw_sms_once rq = {.id = id, .msisdn = to, .text = "keep"};
    return gw_sms_send_once(wsrv, &rq, outcome_cb, (void *)(intptr_t)k);
}

static void
send_next(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (step == 20) {
        burst_left = N_BURST;
        for (int k = 20; k < 20 + N_BURST; k++)
            if (send_one(k) != 0) itest_log_line(wlogfd, "REFUSED k=%02d", k);
        return;
    }
    if (send_one(step) != 0) itest_log_line(wlogfd, "REFUSED k=%02d", step);
}

static int
start_cb(struct gw_server *srv, void *arg)
{
    (void)arg;
    wsrv = srv;
    later(0);
    return 0;
}

/* ------------------------------------------------------------------------
 * The test side
 */

static int
file_count(const char *path, const char *n1, const char *n2)
{
    char line[512];
    int c = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, n1) && (n2 == NULL || strstr(line, n2))) c++;
    fclose(f);
    return c;
}

/* The connection the stand-in got number k's request on (-1: none). */
static int
conn_of(int k)
{
    char want[64], line[512];
    int conn = -1;
    FILE *f = fopen(T.slog, "r");
    snprintf(want, sizeof(want), " to=" PREFIX "%02d", k);
    while (f && fgets(line, sizeof(line), f))
        if (strstr(line, "REQ ") && strstr(line, want))
            sscanf(strstr(line, "conn="), "conn=%d", &conn);
    if (f) fclose(f);
    return conn;
}

static int
group_setup(void **state)
{
    char err[512];
    int sport, wport, lsock, wsock, fd;

    (void)state;
    snprintf(T.tmp, sizeof(T.tmp), "/tmp/remigate-sendsms-keep.XXXXXX");
    if (mkdtemp(T.tmp) == NULL) return -1;
    snprintf(T.slog, sizeof(T.slog), "%s/standin", T.tmp);
    snprintf(T.wlog, sizeof(T.wlog), "%s/worker", T.tmp);
    if (gw_config_load("config/remigate.conf", &T.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "test_sendsms_keep: %s\n", err);
        return -1;
    }
    lsock = itest_listen(&sport, 0);
    wsock = itest_listen(&wport, 0);
    if (lsock < 0 || wsock < 0) return -1;
    snprintf(T.cfg.sendsms_url, sizeof(T.cfg.sendsms_url),
             "http://127.0.0.1:%d/cgi-bin/sendsms", sport);
    T.cfg.pg_dsn[0] = '\0';
    T.cfg.dlr_url[0] = '\0';
    if (getenv("REDIS_PORT")) T.cfg.redis_port = atol(getenv("REDIS_PORT"));
    fflush(NULL);
    T.standin = fork();
    if (T.standin < 0) return -1;
    if (T.standin == 0) {
        fd = open(T.slog, O_CREAT | O_WRONLY | O_APPEND, 0600);
        if (fd < 0) _exit(9);
        close(wsock);
        standin_run(lsock, fd);
        _exit(0);
    }
    close(lsock);
    T.worker = fork();
    if (T.worker < 0) return -1;
    if (T.worker == 0) {
        wlogfd = open(T.wlog, O_CREAT | O_WRONLY | O_APPEND, 0600);
        if (wlogfd < 0) _exit(9);
        gw_log_set_level(getenv("TEST_VERBOSE") ? GW_LEVEL_DEBUG
                                                : GW_LEVEL_ERROR);
        exit(gw_worker_run_with(&T.cfg, wsock, 0, start_cb, NULL));
    }
    close(wsock);
    /* every message has its outcome (about 3 s of planned waits) */
    for (long t0 = itest_now_ms(); file_count(T.wlog, "DONE", NULL) == 0;) {
        if (itest_now_ms() - t0 > 20000) {
            fprintf(stderr, "test_sendsms_keep: the worker did not finish\n");
            return -1;
        }
        usleep(50 * 1000);
    }
    usleep(200 * 1000); /* anything sent twice would be in by now */
    return 0;
}

static int
group_teardown(void **state)
{
    char cmd[160];
    (void)state;
    if (T.worker > 0) itest_child_wait(&T.worker, SIGKILL, 5000);
    if (T.standin > 0) itest_child_wait(&T.standin, SIGKILL, 5000);
    if (T.tmp[0] && !getenv("REMIGATE_TEST_KEEP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.tmp);
        if (system(cmd) != 0) return -1;
    }
    return 0;
}

static void
assert_outcome(int k, enum gw_sms_outcome o)
{
    char want[64];
    snprintf(want, sizeof(want), "OUT k=%02d o=%d ", k, (int)o);
    if (file_count(T.wlog, want, NULL) != 1)
        fail_msg("message %02d: no outcome %d (worker log: %s)", k, (int)o,
                 T.wlog);
}

/* Each number reached the stand-in exactly once: nothing was written
 * again on a new connection, whatever happened to the old one. */
static void
t_each_once(void **state)
{
    (void)state;
    for (int k = 1; k < 20 + N_BURST; k++) {
        char want[64];
        if (k > 15 && k < 20) continue;
        snprintf(want, sizeof(want), " to=" PREFIX "%02d", k);
        if (file_count(T.slog, "REQ ", want) != 1)
            fail_msg("number %02d reached the stand-in %d times", k,
                     file_count(T.slog, "REQ ", want));
    }
    assert_int_equal(file_count(T.wlog, "REFUSED", NULL), 0);
}

/* Answers that keep the connection: the next requests go on it. */
static void
t_reused(void **state)
{
    (void)state;
    for (int k = 1; k <= 5; k++) {
        assert_outcome(k, GW_SMS_ACCEPTED);
        assert_int_equal(conn_of(k), conn_of(1));
    }
    assert_int_equal(conn_of(6), conn_of(1));
}

/* Kannel closing a kept connection after its answer: the next message
 * goes on a new one and is taken. */
static void
t_closed_by_peer(void **state)
{
    (void)state;
    assert_outcome(6, GW_SMS_ACCEPTED);
    assert_outcome(7, GW_SMS_ACCEPTED);
    assert_true(conn_of(7) > conn_of(6));
}

/* A request read and the connection closed without an answer: "maybe",
 * never written again; the next message on a new connection. */
static void
t_dropped_not_resent(void **state)
{
    (void)state;
    assert_outcome(8, GW_SMS_MAYBE);
    assert_outcome(9, GW_SMS_ACCEPTED);
    assert_true(conn_of(9) > conn_of(8));
}

/* HTTP/1.0 without keep-alive, and HTTP/1.1 "Connection: close": the
 * connection is not used again (libevent 2.1 reads only the header). */
static void
t_close_answers(void **state)
{
    (void)state;
    assert_outcome(10, GW_SMS_ACCEPTED);
    assert_outcome(11, GW_SMS_ACCEPTED);
    assert_true(conn_of(11) > conn_of(10));
    assert_outcome(12, GW_SMS_ACCEPTED);
    assert_outcome(13, GW_SMS_ACCEPTED);
    assert_true(conn_of(13) > conn_of(12));
}

/* A connection idle past GW_MT_IDLE_MS is not sent on again, though the
 * stand-in kept it open. */
static void
t_idle_retired(void **state)
{
    (void)state;
    assert_outcome(14, GW_SMS_ACCEPTED);
    assert_outcome(15, GW_SMS_ACCEPTED);
    assert_true(conn_of(15) > conn_of(14));
}

/* Twenty at once: all taken, over several connections but never more
 * than the pool's GW_MT_CONNS (8) open at the stand-in. */
static void
t_burst_bounded(void **state)
{
    char line[512];
    int most = 0, conns[MAX_CONNS + 1] = {0}, used = 0;
    FILE *f;
    (void)state;
    for (int k = 20; k < 20 + N_BURST; k++) {
        assert_outcome(k, GW_SMS_ACCEPTED);
        int c = conn_of(k);
        assert_true(c > 0 && c <= MAX_CONNS);
        if (!conns[c]++) used++;
    }
    f = fopen(T.slog, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        const char *o = strstr(line, "open=");
        if (o != NULL && atoi(o + 5) > most) most = atoi(o + 5);
    }
    fclose(f);
    assert_true(used >= 2);
    assert_true(most <= 8);
}

/* SIGTERM: exit 0 (under SAN=1 a leak of a kept connection fails it). */
static void
t_shutdown(void **state)
{
    (void)state;
    assert_int_equal(itest_child_wait(&T.worker, SIGTERM, 5000), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_each_once),
        cmocka_unit_test(t_reused),
        cmocka_unit_test(t_closed_by_peer),
        cmocka_unit_test(t_dropped_not_resent),
        cmocka_unit_test(t_close_answers),
        cmocka_unit_test(t_idle_retired),
        cmocka_unit_test(t_burst_bounded),
        cmocka_unit_test(t_shutdown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
