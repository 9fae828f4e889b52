/*
 * test_sendsms.c -- SMS out through a stand-in for Kannel's sendsms, and
 * delivery reports back, against the real PostgreSQL tests/run started.
 *
 * The stand-in is an evhttp server on the worker's own event base (its
 * listening socket is made here, before the fork, so the worker's config
 * can name it): it writes every request it gets to a log file -- headers,
 * the body as hex -- and answers as the message's number says:
 *
 *   8801711000001  Bangla confirmation    202 "0: Accepted for delivery"
 *   8801711000002  English reply          503 first, then 202 "3: Queued..."
 *   8801711000003  a report first         calls the dlr-url itself (type 8)
 *                                         and answers 202 only after that
 *   8801711000004  refused                403 (final: not tried again)
 *
 * The worker's start hook sends the four through gw_sms_send() and logs
 * each callback's status.  The tests then read the log and the sms_out
 * rows, and play Kannel's delivery reports with the dlr-url the worker
 * generated: update, repeat, delivered-then-buffered, malformed, wrong
 * key, unknown id.  Last, SIGTERM (the worker must exit 0: under SAN=1 a
 * leak fails it), and a worker without a database.  This is not the real
 * Kannel: tests/e2e drives that.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <libpq-fe.h>

#include "gateway/gw_int.h"
#include "store/store.h"
#include "tests/lib/itest.h"

#define TXT_BN  "আপনার নিবন্ধন সম্পন্ন হয়েছে। রেফারেন্স: RA10000000"
#define TXT_EN  "Your reference is RA20000000. Reply HELP for help."
#define N_BN    "8801711000001"
#define N_EN    "8801711000002"
#define N_EARLY "8801711000003"
#define N_DENY  "8801711000004"
#define SECRET  "s3cret-key_1"

static struct {
    struct gw_config cfg;
    char tmp[64], log[96], key[96];
    char dsn[GW_STR_MAX];
    int kannel_fd; /* the stand-in's listening socket */
    int port;      /* the worker's */
    pid_t worker;
    PGconn *db;
} T = {.kannel_fd = -1, .worker = -1};

/* ------------------------------------------------------------------------
 * The worker side (child): the stand-in for Kannel and the sends
 */

static int logfd = -1;
static struct event_base *cbase;
static int plan_with_db;

static void
clog_line(const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof(buf) - 2) n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    if (write(logfd, buf, (size_t)n) != n) abort();
}

static const char *
hdr(struct evhttp_request *req, const char *name)
{
    const char *v =
        evhttp_find_header(evhttp_request_get_input_headers(req), name);
    return v ? v : "-";
}

static int tries_en;

/* The DLR the stand-in sends before answering N_EARLY. */
struct early {
    struct evhttp_request *sendsms; /* answered once the DLR is in */
    struct evhttp_connection *conn;
};

static void
early_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct early *e = arg;
    (void)fd;
    (void)what;
    evhttp_connection_free(e->conn);
    free(e);
}

static void
early_done(struct evhttp_request *req, void *arg)
{
    struct early *e = arg;
    struct evbuffer *b = evbuffer_new();
    clog_line("DLRFIRST code=%d",
              req ? evhttp_request_get_response_code(req) : 0);
    evbuffer_add_printf(b, "0: Accepted for delivery");
    evhttp_send_reply(e->sendsms, 202, "Accepted", b);
    evbuffer_free(b);
    event_base_once(cbase, -1, EV_TIMEOUT, early_free_cb, e, NULL);
}

/* Fill Kannel's escapes in a dlr-url as it would for a report. */
static void
dlr_fill(const char *url, const char *type, const char *answer, const char *ts,
         char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = url; *p && o + 64 < cap; p++) {
        if (p[0] == '%' && p[1] != '\0') {
            const char *v = p[1] == 'd'   ? type
                            : p[1] == 'A' ? answer
                            : p[1] == 'T' ? ts
                            : p[1] == '%' ? "%"
                                          : NULL;
            if (v != NULL) {
                o += (size_t)snprintf(out + o, cap - o, "%s", v);
                p++;
                continue;
            }
        }
        out[o++] = *p;
    }
    out[o] = '\0';
}

static void
kannel_cb(struct evhttp_request *req, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    unsigned char body[2048];
    char hex[4200], *h = hex;
    const char *to = hdr(req, "X-Kannel-To");
    struct evbuffer *b = evbuffer_new();
    (void)arg;

    if (len > sizeof(body)) len = sizeof(body);
    evbuffer_copyout(in, body, len);
    for (size_t i = 0; i < len; i++)
        h += sprintf(h, "%02x", body[i]);
    *h = '\0';
    clog_line("REQ method=%d uri=%s to=%s from=%s smsc=%s coding=%s "
              "user=%s pass=%s mask=%s ctype=%s body=%s dlr=%s",
              (int)evhttp_request_get_command(req), evhttp_request_get_uri(req),
              to, hdr(req, "X-Kannel-From"), hdr(req, "X-Kannel-SMSC"),
              hdr(req, "X-Kannel-Coding"), hdr(req, "X-Kannel-Username"),
              hdr(req, "X-Kannel-Password"), hdr(req, "X-Kannel-DLR-Mask"),
              hdr(req, "Content-Type"), hex, hdr(req, "X-Kannel-DLR-Url"));
    if (strcmp(to, "+" N_EN) == 0 && tries_en++ == 0) {
        evbuffer_add_printf(b, "Temporal failure, try again later.");
        evhttp_send_reply(req, 503, "Service Unavailable", b);
    } else if (strcmp(to, "+" N_EN) == 0) {
        evbuffer_add_printf(b, "3: Queued for later delivery");
        evhttp_send_reply(req, 202, "Accepted", b);
    } else if (strcmp(to, "+" N_DENY) == 0) {
        evbuffer_add_printf(b, "Authorization failed for sendsms");
        evhttp_send_reply(req, 403, "Forbidden", b);
    } else if (strcmp(to, "+" N_EARLY) == 0) {
        /* Kannel can send the report before it answers sendsms */
        char url[1024];
        struct evhttp_uri *u;
        struct early *e = calloc(1, sizeof(*e));
        struct evhttp_request *d;
        AN(e);
        dlr_fill(hdr(req, "X-Kannel-DLR-Url"), "8", "ACK%2F", "1795343567", url,
                 sizeof(url));
        u = evhttp_uri_parse(url);
        AN(u);
        e->sendsms = req;
        e->conn =
            evhttp_connection_base_new(cbase, NULL, evhttp_uri_get_host(u),
                                       (unsigned short)evhttp_uri_get_port(u));
        d = evhttp_request_new(early_done, e);
        evhttp_add_header(evhttp_request_get_output_headers(d), "Host", "w");
        char pq[1024];
        snprintf(pq, sizeof(pq), "%s?%s", evhttp_uri_get_path(u),
                 evhttp_uri_get_query(u));
        AZ(evhttp_make_request(e->conn, d, EVHTTP_REQ_GET, pq));
        evhttp_uri_free(u);
    } else {
        evbuffer_add_printf(b, "0: Accepted for delivery");
        evhttp_send_reply(req, 202, "Accepted", b);
    }
    evbuffer_free(b);
}

static void
sent_cb(int status, void *arg)
{
    clog_line("SENT to=%s status=%d", (const char *)arg, status);
}

static struct evhttp *kannel_http;

static void
kannel_stop(struct gw_server *srv, void *arg)
{
    (void)srv;
    (void)arg;
    if (kannel_http) evhttp_free(kannel_http);
    kannel_http = NULL;
}

static int
start_cb(struct gw_server *srv, void *arg)
{
    (void)arg;
    cbase = gw_server_base(srv);
    kannel_http = evhttp_new(cbase);
    if (kannel_http == NULL ||
        evhttp_accept_socket_with_handle(kannel_http, T.kannel_fd) == NULL)
        return -1;
    evhttp_set_gencb(kannel_http, kannel_cb, NULL);
    if (gw_server_on_stop(srv, kannel_stop, NULL) != 0) return -1;
    /* arguments refused at once, never called back */
    if (gw_sms_send(srv, "12ab", "x", 0, "reply", sent_cb, NULL) != -1 ||
        gw_sms_send(srv, N_BN, "x", 0, "spam", sent_cb, NULL) != -1 ||
        gw_sms_send(srv, N_BN, "", 0, "reply", sent_cb, NULL) != -1)
        return -1;
    if (gw_sms_send(srv, N_BN, TXT_BN, 1, "confirmation", sent_cb,
                    (void *)(uintptr_t)N_BN) ||
        gw_sms_send(srv, N_EN, TXT_EN, 0, "reply", sent_cb,
                    (void *)(uintptr_t)N_EN) ||
        gw_sms_send(srv, N_EARLY, "early", 0, "notice", sent_cb,
                    (void *)(uintptr_t)N_EARLY) ||
        gw_sms_send(srv, N_DENY, "denied", 0, "reply", sent_cb,
                    (void *)(uintptr_t)N_DENY))
        return -1;
    clog_line("STARTED db=%d", plan_with_db);
    return 0;
}

/* ------------------------------------------------------------------------
 * The test side
 */

/* Fork a worker with the current config (T.cfg).  0 or -1. */
static int
worker_start(int with_db)
{
    int kport, fd;

    T.kannel_fd = itest_listen(&kport, 1);
    fd = itest_listen(&T.port, 1);
    if (T.kannel_fd < 0 || fd < 0) return -1;
    snprintf(T.cfg.sendsms_url, sizeof(T.cfg.sendsms_url),
             "http://127.0.0.1:%d/cgi-bin/sendsms", kport);
    snprintf(T.cfg.dlr_url, sizeof(T.cfg.dlr_url), "http://127.0.0.1:%d/",
             T.port);
    snprintf(T.cfg.pg_dsn, sizeof(T.cfg.pg_dsn), "%s", with_db ? T.dsn : "");
    if (truncate(T.log, 0) != 0) return -1;
    fflush(NULL);
    T.worker = fork();
    if (T.worker < 0) return -1;
    if (T.worker == 0) {
        int rc;
        logfd = open(T.log, O_WRONLY | O_APPEND);
        if (logfd < 0) _exit(9);
        plan_with_db = with_db;
        gw_log_set_level(getenv("TEST_VERBOSE") ? GW_LEVEL_DEBUG
                                                : GW_LEVEL_ERROR);
        rc = gw_worker_run_with(&T.cfg, fd, 0, start_cb, NULL);
        exit(rc);
    }
    close(fd);
    close(T.kannel_fd);
    T.kannel_fd = -1;
    return 0;
}

/* Send sig and wait for the worker: its exit status, or -1 if it took
 * over limit_ms. */
static int
worker_wait(int sig, long limit_ms)
{
    long t0 = itest_now_ms();
    int st;
    if (T.worker <= 0) return -1;
    if (sig != 0) kill(T.worker, sig);
    for (;;) {
        pid_t p = waitpid(T.worker, &st, WNOHANG);
        if (p == T.worker) break;
        if (itest_now_ms() - t0 > limit_ms) {
            kill(T.worker, SIGKILL);
            waitpid(T.worker, &st, 0);
            T.worker = -1;
            return -1;
        }
        usleep(10000);
    }
    T.worker = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The whole log, NUL-terminated (static buffer). */
static const char *
log_text(void)
{
    static char buf[1 << 17];
    FILE *f = fopen(T.log, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    return buf;
}

/* How many lines of the log contain every one of the needles (NULL
 * terminated). */
static int
log_count(const char *n1, const char *n2)
{
    const char *p = log_text();
    int c = 0;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[8192];
        snprintf(line, sizeof(line), "%.*s", (int)len, p);
        if (strstr(line, n1) && (n2 == NULL || strstr(line, n2))) c++;
        p += len + (e ? 1 : 0);
    }
    return c;
}

/* Wait (5 s at most) until some line has both needles. */
static int
log_wait(const char *n1, const char *n2)
{
    long t0 = itest_now_ms();
    while (itest_now_ms() - t0 < 5000) {
        if (log_count(n1, n2) > 0) return 1;
        usleep(20 * 1000);
    }
    return 0;
}

/* The value of field name= in the first line with both needles. */
static void
log_field(const char *n1, const char *n2, const char *name, char *out,
          size_t cap)
{
    const char *p = log_text();
    char key[64];
    out[0] = '\0';
    snprintf(key, sizeof(key), " %s=", name);
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[8192];
        snprintf(line, sizeof(line), "%.*s", (int)len, p);
        if (strstr(line, n1) && (n2 == NULL || strstr(line, n2))) {
            const char *v = strstr(line, key);
            if (v != NULL) {
                v += strlen(key);
                snprintf(out, cap, "%.*s", (int)strcspn(v, " "), v);
            }
            return;
        }
        p += len + (e ? 1 : 0);
    }
}

static void
hex_of(const char *s, char *out)
{
    for (; *s; s++)
        out += sprintf(out, "%02x", (unsigned char)*s);
    *out = '\0';
}

/* GET path from the worker: the status, or -1. */
static int
http_get(const char *path)
{
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    char req[2048], buf[4096];
    int fd = socket(AF_INET, SOCK_STREAM, 0), n, status = -1;
    size_t got = 0;

    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)T.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) goto done;
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                 path);
    if (write(fd, req, (size_t)n) != n) goto done;
    while (got < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) status = -1;
done:
    close(fd);
    return status;
}

/* The dlr-url the worker gave for number, filled as Kannel would, as a
 * path on the worker ("/kannel/dlr?..."). */
static void
dlr_path(const char *number, const char *type, const char *answer,
         const char *ts, char *out, size_t cap)
{
    char url[1024], full[1536], to[32];
    snprintf(to, sizeof(to), "to=+%s", number);
    log_field("REQ ", to, "dlr", url, sizeof(url));
    assert_true(url[0] != '\0');
    dlr_fill(url, type, answer, ts, full, sizeof(full));
    const char *p = strstr(full, "/kannel/dlr?");
    assert_non_null(p);
    snprintf(out, cap, "%s", p);
}

/* GET each of paths[0..n) at once, each on a connection of its own
 * (every request written before any answer is read): the statuses in
 * status[] (-1: none). */
static void
http_get_all(const char *const *paths, int n, int *status)
{
    int fd[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        struct sockaddr_in sa;
        struct timeval tv = {5, 0};
        char req[2048];
        int len;
        status[i] = -1;
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fd[i] < 0) continue;
        setsockopt(fd[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)T.port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close"
                       "\r\n\r\n",
                       paths[i]);
        if (connect(fd[i], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            write(fd[i], req, (size_t)len) != len) {
            close(fd[i]);
            fd[i] = -1;
        }
    }
    for (int i = 0; i < n; i++) {
        char buf[1024];
        size_t got = 0;
        if (fd[i] < 0) continue;
        while (got < sizeof(buf) - 1) {
            ssize_t r = read(fd[i], buf + got, sizeof(buf) - 1 - got);
            if (r <= 0) break;
            got += (size_t)r;
        }
        buf[got] = '\0';
        if (sscanf(buf, "HTTP/1.1 %d", &status[i]) != 1) status[i] = -1;
        close(fd[i]);
    }
}

/* The id in the dlr-url the worker gave for number. */
static void
msg_id(const char *number, char id[40])
{
    char url[1024], to[32];
    snprintf(to, sizeof(to), "to=+%s", number);
    log_field("REQ ", to, "dlr", url, sizeof(url));
    const char *p = strstr(url, "?id=");
    assert_non_null(p);
    snprintf(id, 40, "%.36s", p + 4);
    assert_true(store_sms_id_valid(id));
}

/* One value of the row of number's message, "" for NULL. */
static void
row(const char *number, const char *expr, char *out, size_t cap)
{
    char q[512];
    const char *params[1] = {number};
    snprintf(q, sizeof(q), "SELECT (%s)::text FROM sms_out WHERE msisdn = $1",
             expr);
    PGresult *r = PQexecParams(T.db, q, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s (%d rows)", q, PQresultErrorMessage(r), PQntuples(r));
    snprintf(out, cap, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
}

static void
assert_row(const char *number, const char *expr, const char *want)
{
    char got[1024];
    long t0 = itest_now_ms();
    /* the row gets Kannel's answer after the caller's callback: wait for
     * it (5 s at most) */
    row(number, expr, got, sizeof(got));
    while (strcmp(got, want) != 0 && itest_now_ms() - t0 < 5000) {
        usleep(20 * 1000);
        row(number, expr, got, sizeof(got));
    }
    if (strcmp(got, want) != 0)
        fail_msg("%s of %s: got \"%s\", want \"%s\"", expr, number, got, want);
}

static int
group_setup(void **state)
{
    const char *dsn = getenv("PG_DSN"), *rp = getenv("REDIS_PORT");
    char err[512];
    int fd;

    (void)state;
    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr, "test_sendsms: PG_DSN is not set (tests/run sets "
                        "it)\n");
        return -1;
    }
    snprintf(T.dsn, sizeof(T.dsn), "%s", dsn);
    snprintf(T.tmp, sizeof(T.tmp), "/tmp/remigate-sendsms.XXXXXX");
    if (mkdtemp(T.tmp) == NULL) return -1;
    snprintf(T.log, sizeof(T.log), "%s/log", T.tmp);
    snprintf(T.key, sizeof(T.key), "%s/key", T.tmp);
    fd = open(T.log, O_CREAT | O_WRONLY, 0600);
    if (fd < 0) return -1;
    close(fd);
    if (store_keygen(T.key, err, sizeof(err)) != 0 ||
        store_migrate(T.dsn, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "test_sendsms: %s\n", err);
        return -1;
    }
    T.db = PQconnectdb(T.dsn);
    if (PQstatus(T.db) != CONNECTION_OK) return -1;
    if (gw_config_load("config/remigate.conf", &T.cfg, err, sizeof(err)) != 0)
        return -1;
    if (rp != NULL) T.cfg.redis_port = atol(rp);
    snprintf(T.cfg.key_file, sizeof(T.cfg.key_file), "%s", T.key);
    snprintf(T.cfg.kannel_username, sizeof(T.cfg.kannel_username), "remi");
    snprintf(T.cfg.kannel_password, sizeof(T.cfg.kannel_password), "pw 1&2");
    snprintf(T.cfg.kannel_secret, sizeof(T.cfg.kannel_secret), SECRET);
    T.cfg.request_timeout_ms = 2000;
    if (worker_start(1) != 0) return -1;
    /* every message has its verdict */
    if (!log_wait("SENT to=" N_BN, NULL) || !log_wait("SENT to=" N_EN, NULL) ||
        !log_wait("SENT to=" N_EARLY, NULL) ||
        !log_wait("SENT to=" N_DENY, NULL)) {
        fprintf(stderr, "test_sendsms: not every message was answered:\n%s",
                log_text());
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    char cmd[160];
    (void)state;
    if (T.worker > 0) worker_wait(SIGKILL, 2000);
    if (T.db) PQfinish(T.db);
    if (T.tmp[0] && !getenv("REMIGATE_TEST_KEEP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.tmp);
        if (system(cmd) != 0) return -1;
    }
    return 0;
}

/* Bangla: coding 2, the UTF-8 bytes as they are, accepted and recorded. */
static void
t_bangla(void **state)
{
    char body[512], want[512];
    (void)state;
    log_field("REQ ", "to=+" N_BN, "body", body, sizeof(body));
    hex_of(TXT_BN, want);
    assert_string_equal(body, want);
    assert_int_equal(log_count("REQ ", "to=+" N_BN), 1);
    assert_true(log_count("REQ ", "to=+" N_BN " ") == 1);
    assert_int_equal(log_count("to=+" N_BN " ", "coding=2 "), 1);
    assert_int_equal(log_count("SENT to=" N_BN, "status=0"), 1);
    assert_row(N_BN, "text", TXT_BN);
    assert_row(N_BN, "coding", "2");
    assert_row(N_BN, "kind", "confirmation");
    assert_row(N_BN, "tries", "1");
    assert_row(N_BN, "kannel_status", "202");
    assert_row(N_BN, "kannel_answer", "0: Accepted for delivery");
    assert_row(N_BN, "accepted_at IS NOT NULL AND failed_at IS NULL", "true");
    assert_row(N_BN, "created_at <= accepted_at", "true");
}

/* English: coding 0. */
static void
t_english(void **state)
{
    char body[512], want[512];
    (void)state;
    log_field("REQ ", "to=+" N_EN, "body", body, sizeof(body));
    hex_of(TXT_EN, want);
    assert_string_equal(body, want);
    assert_int_equal(log_count("to=+" N_EN " ", "coding=0 "), 2);
    assert_row(N_EN, "coding", "0");
    assert_row(N_EN, "kind", "reply");
}

/* POST to the sendsms path; credentials, sender, smsc, DLR in headers. */
static void
t_headers(void **state)
{
    char v[1024], id[40], want[512];
    (void)state;
    log_field("REQ ", "to=+" N_BN, "method", v, sizeof(v));
    assert_int_equal(atoi(v), EVHTTP_REQ_POST);
    log_field("REQ ", "to=+" N_BN, "uri", v, sizeof(v));
    assert_string_equal(v, "/cgi-bin/sendsms"); /* nothing in the query */
    log_field("REQ ", "to=+" N_BN, "user", v, sizeof(v));
    assert_string_equal(v, "remi");
    assert_int_equal(log_count("to=+" N_BN " ", "pass=pw 1&2 "), 1);
    log_field("REQ ", "to=+" N_BN, "from", v, sizeof(v));
    assert_string_equal(v, T.cfg.short_code);
    log_field("REQ ", "to=+" N_BN, "smsc", v, sizeof(v));
    assert_string_equal(v, T.cfg.sms_smsc);
    log_field("REQ ", "to=+" N_BN, "mask", v, sizeof(v));
    assert_string_equal(v, "31");
    assert_int_equal(
        log_count("to=+" N_BN " ", "ctype=text/plain; charset=UTF-8 "), 1);
    msg_id(N_BN, id);
    snprintf(want, sizeof(want),
             "http://127.0.0.1:%d/kannel/dlr?id=%s&status=%%d&answer=%%A"
             "&ts=%%T&key=" SECRET,
             T.port, id);
    log_field("REQ ", "to=+" N_BN, "dlr", v, sizeof(v));
    assert_string_equal(v, want);
    assert_row(N_BN, "id::text", id);
}

/* 503 then 202: tried again once, recorded with both tries. */
static void
t_retry(void **state)
{
    (void)state;
    assert_int_equal(log_count("REQ ", "to=+" N_EN " "), 2);
    assert_int_equal(log_count("SENT to=" N_EN, "status=0"), 1);
    assert_row(N_EN, "tries", "2");
    assert_row(N_EN, "kannel_status", "202");
    assert_row(N_EN, "kannel_answer", "3: Queued for later delivery");
    assert_row(N_EN, "accepted_at IS NOT NULL", "true");
}

/* 403 is final: one try, the caller hears -1, the row says failed. */
static void
t_refused(void **state)
{
    (void)state;
    assert_int_equal(log_count("REQ ", "to=+" N_DENY " "), 1);
    assert_int_equal(log_count("SENT to=" N_DENY, "status=-1"), 1);
    assert_row(N_DENY, "tries", "1");
    assert_row(N_DENY, "kannel_status", "403");
    assert_row(N_DENY, "failed_at IS NOT NULL AND accepted_at IS NULL", "true");
    /* refused arguments were never called back */
    assert_int_equal(log_count("SENT to=", NULL), 4);
}

/* A report before sendsms's answer: the row was there, it took it. */
static void
t_dlr_before_answer(void **state)
{
    (void)state;
    assert_int_equal(log_count("DLRFIRST code=200", NULL), 1);
    assert_row(N_EARLY, "dlr_state", "8");
    assert_row(N_EARLY, "dlr_answer", "ACK/");
    assert_row(N_EARLY, "extract(epoch from dlr_smsc_at)::bigint",
               "1795343567");
    assert_row(N_EARLY, "accepted_at IS NOT NULL", "true");
    assert_row(N_EARLY, "dlr_at <= accepted_at", "true");
}

/* Forty reports for one message at once (they leave in batches, several
 * to a transaction: store_sms.c): each answered 200, each counted once in
 * dlr_reports, and the state the first final one set. */
static void
t_dlr_burst(void **state)
{
    static const char *const types[] = {"8", "4", "1", "2"};
    static const char *const answers[] = {"ACK%2F", "stat%3AENROUTE",
                                          "stat%3ADELIVRD", "stat%3AEXPIRED"};
    char paths[40][2048], before[32], want[32];
    const char *pp[40];
    int status[40];
    (void)state;
    row(N_EN, "dlr_reports", before, sizeof(before));
    for (int i = 0; i < 40; i++) {
        dlr_path(N_EN, types[i % 4], answers[i % 4], "1795343700", paths[i],
                 sizeof(paths[i]));
        pp[i] = paths[i];
    }
    http_get_all(pp, 40, status);
    for (int i = 0; i < 40; i++)
        if (status[i] != 200)
            fail_msg("report %d (type %s): status %d", i, types[i % 4],
                     status[i]);
    snprintf(want, sizeof(want), "%d", atoi(before) + 40);
    assert_row(N_EN, "dlr_reports", want);
    assert_row(N_EN, "dlr_state IN (1, 2)", "true");
    assert_row(N_EN,
               "(dlr_state = 1) = (dlr_answer = 'stat:DELIVRD') AND "
               "(dlr_state = 2) = (dlr_answer = 'stat:EXPIRED')",
               "true");
}

/* Reports for many messages at once (30 messages, 2 reports each, and 2
 * for messages we do not know): they leave in batches over arrays
 * (store_sms.c), yet each is answered as alone -- 200, or 404 for the
 * unknown -- and each row ends delivered, counted twice, with its own
 * receipt (quotes, backslashes, braces, commas and Bangla taken as they
 * are) and SMSC time. */
static void
t_dlr_many(void **state)
{
    enum { NMSG = 30, NREP = 2 * NMSG + 2 };
    static const char *const receipt[] = {"stat%3ADELIVRD+%22q%22",
                                          "a%5Cb%5C%5C",
                                          "%7B1%2C2%7D+%22%7B%7D%22",
                                          "%E0%A6%86%E0%A6%AA+NULL",
                                          "",
                                          "%2C%2C"};
    static const char *const stored[] = {"stat:DELIVRD \"q\"",
                                         "a\\b\\\\",
                                         "{1,2} \"{}\"",
                                         "\xE0\xA6\x86\xE0\xA6\xAA NULL",
                                         "",
                                         ",,"};
    char ids[NMSG][40], paths[NREP][2048], ts[24], q[512];
    const char *pp[NREP];
    int status[NREP];
    PGresult *r;
    (void)state;
    r = PQexec(T.db, "INSERT INTO sms_out (id, msisdn, kind, text, coding)"
                     " SELECT gen_random_uuid(), '8801711000099', 'reply',"
                     " 'x', 0 FROM generate_series(1, 30)"
                     " RETURNING id::text");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), NMSG);
    for (int i = 0; i < NMSG; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s", PQgetvalue(r, i, 0));
        if (i % 7 == 3) /* an id in capitals is the same message */
            for (char *c = ids[i]; *c; c++)
                if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A');
    }
    PQclear(r);
    for (int i = 0; i < NMSG; i++) {
        snprintf(ts, sizeof(ts), "%d", 1795343000 + i);
        snprintf(paths[2 * i], sizeof(paths[0]),
                 "/kannel/dlr?id=%s&status=8&answer=ACK%%2F&ts=&key=" SECRET,
                 ids[i]);
        snprintf(paths[2 * i + 1], sizeof(paths[0]),
                 "/kannel/dlr?id=%s&status=1&answer=%s&ts=%s&key=" SECRET,
                 ids[i], receipt[i % 6], ts);
    }
    snprintf(paths[NREP - 2], sizeof(paths[0]),
             "/kannel/dlr?id=6f1e2d3c-4b5a-4968-8776-655443322110&status=1"
             "&key=" SECRET);
    snprintf(paths[NREP - 1], sizeof(paths[0]),
             "/kannel/dlr?id=6f1e2d3c-4b5a-4968-8776-655443322111&status=8"
             "&answer=%%22x%%22&key=" SECRET);
    for (int i = 0; i < NREP; i++)
        pp[i] = paths[i];
    http_get_all(pp, NREP, status);
    for (int i = 0; i < NREP; i++)
        if (status[i] != (i < 2 * NMSG ? 200 : 404))
            fail_msg("report %d: status %d", i, status[i]);
    for (int i = 0; i < NMSG; i++) {
        const char *params[1] = {ids[i]};
        snprintf(q, sizeof(q),
                 "SELECT dlr_reports, dlr_state, dlr_answer,"
                 " extract(epoch FROM dlr_smsc_at)::bigint"
                 " FROM sms_out WHERE id = $1::uuid");
        r = PQexecParams(T.db, q, 1, NULL, params, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(r), 1);
        snprintf(ts, sizeof(ts), "%d", 1795343000 + i);
        if (strcmp(PQgetvalue(r, 0, 0), "2") != 0 ||
            strcmp(PQgetvalue(r, 0, 1), "1") != 0 ||
            strcmp(PQgetvalue(r, 0, 2), stored[i % 6]) != 0 ||
            strcmp(PQgetvalue(r, 0, 3), ts) != 0)
            fail_msg("message %d: reports %s, state %s, answer \"%s\" "
                     "(want \"%s\"), smsc time %s",
                     i, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
                     PQgetvalue(r, 0, 2), stored[i % 6], PQgetvalue(r, 0, 3));
        PQclear(r);
    }
}

/* Delivered: 200 and the row says so; the same report again changes
 * nothing; buffered after delivered does not go back. */
static void
t_dlr_update(void **state)
{
    char p[2048], at1[64], at2[64];
    (void)state;
    dlr_path(N_BN, "8", "ACK%2F", "1795343600", p, sizeof(p));
    assert_int_equal(http_get(p), 200);
    assert_row(N_BN, "dlr_state", "8");
    dlr_path(N_BN, "1",
             "id%3A1000008+sub%3A001+dlvrd%3A001+stat%3ADELIVRD+err%3A000+"
             "text%3A%E0%A6%86%E0%A6%AA",
             "1795343660", p, sizeof(p));
    assert_int_equal(http_get(p), 200);
    assert_row(N_BN, "dlr_state", "1");
    assert_row(N_BN, "dlr_answer",
               "id:1000008 sub:001 dlvrd:001 stat:DELIVRD err:000 "
               "text:\xE0\xA6\x86\xE0\xA6\xAA");
    assert_row(N_BN, "extract(epoch from dlr_smsc_at)::bigint", "1795343660");
    row(N_BN, "dlr_at", at1, sizeof(at1));

    /* the same report again */
    assert_int_equal(http_get(p), 200);
    row(N_BN, "dlr_at", at2, sizeof(at2));
    assert_string_equal(at1, at2);
    assert_row(N_BN, "dlr_state", "1");

    /* buffered, then submitted, after delivered */
    dlr_path(N_BN, "4", "", "1795343700", p, sizeof(p));
    assert_int_equal(http_get(p), 200);
    dlr_path(N_BN, "8", "ACK%2F", "1795343700", p, sizeof(p));
    assert_int_equal(http_get(p), 200);
    assert_row(N_BN, "dlr_state", "1");
    row(N_BN, "dlr_at", at2, sizeof(at2));
    assert_string_equal(at1, at2);
    assert_row(N_BN, "extract(epoch from dlr_smsc_at)::bigint", "1795343660");
    assert_row(N_BN, "dlr_reports", "5");

    /* failed after delivered: the first final state stays */
    dlr_path(N_BN, "2", "", "", p, sizeof(p));
    assert_int_equal(http_get(p), 200);
    assert_row(N_BN, "dlr_state", "1");

    /* the one reported early goes on to delivered */
    dlr_path(N_EARLY, "1", "", "", p, sizeof(p));
    assert_int_equal(http_get(p), 200);
    assert_row(N_EARLY, "dlr_state", "1");
    assert_row(N_EARLY, "dlr_smsc_at IS NULL", "true");
}

/* bad with each "@" replaced by id */
static void
subst_id(const char *bad, const char *id, char *out, size_t cap)
{
    size_t o = 0;
    for (; *bad && o + 40 < cap; bad++)
        if (*bad == '@')
            o += (size_t)snprintf(out + o, cap - o, "%s", id);
        else
            out[o++] = *bad;
    out[o] = '\0';
}

/* Malformed reports: 400, and nothing changes. */
static void
t_dlr_bad(void **state)
{
    char id[40], p[512];
    static const char *const bad[] = {
        "status=1&key=" SECRET,                   /* no id */
        "id=12345&status=1&key=" SECRET,          /* not a UUID */
        "id=@&key=" SECRET,                       /* no status */
        "id=@&status=abc&key=" SECRET,            /* not a number */
        "id=@&status=3&key=" SECRET,              /* not a DLR type */
        "id=@&status=-1&key=" SECRET,             /* negative */
        "id=@&status=1&ts=yesterday&key=" SECRET, /* ts not a number */
        "id=@&status=1&status=2&key=" SECRET,     /* twice */
        "id=@&status=1&answer=%zz&key=" SECRET,   /* bad escape */
        "id=@%00&status=1&key=" SECRET,           /* NUL in the id */
    };
    (void)state;
    msg_id(N_EN, id);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char q[256];
        subst_id(bad[i], id, q, sizeof(q));
        snprintf(p, sizeof(p), "/kannel/dlr?%s", q);
        if (http_get(p) != 400) fail_msg("expected 400 for %s", p);
    }
    assert_row(N_EN, "dlr_state IS NULL AND dlr_reports = 0", "true");
}

/* The key: missing or wrong is 403, and nothing changes. */
static void
t_dlr_key(void **state)
{
    char id[40], p[512];
    (void)state;
    msg_id(N_EN, id);
    snprintf(p, sizeof(p), "/kannel/dlr?id=%s&status=1", id);
    assert_int_equal(http_get(p), 403);
    snprintf(p, sizeof(p), "/kannel/dlr?id=%s&status=1&key=wrong", id);
    assert_int_equal(http_get(p), 403);
    snprintf(p, sizeof(p), "/kannel/dlr?id=%s&status=1&key=" SECRET "x", id);
    assert_int_equal(http_get(p), 403);
    assert_row(N_EN, "dlr_state IS NULL AND dlr_reports = 0", "true");
    snprintf(p, sizeof(p), "/kannel/dlr?id=%s&status=16&key=" SECRET, id);
    assert_int_equal(http_get(p), 200);
    assert_row(N_EN, "dlr_state", "16");
}

/* A UUID we never sent: 404. */
static void
t_dlr_unknown(void **state)
{
    (void)state;
    assert_int_equal(http_get("/kannel/dlr?id=0b5bd4f4-2a9e-4c1e-9d7a-"
                              "1f2e3d4c5b6a&status=1&key=" SECRET),
                     404);
}

/* SIGTERM: the worker stops cleanly (exit 0; under SAN=1, no leak). */
static void
t_shutdown(void **state)
{
    (void)state;
    assert_int_equal(worker_wait(SIGTERM, 8000), 0);
}

/* No database: sending works, reports get 200. */
static void
t_no_database(void **state)
{
    char p[2048];
    (void)state;
    assert_int_equal(worker_start(0), 0);
    assert_true(log_wait("SENT to=" N_BN, "status=0"));
    assert_true(log_wait("SENT to=" N_EN, "status=0"));
    assert_true(log_wait("DLRFIRST code=200", NULL));
    dlr_path(N_BN, "1", "", "", p, sizeof(p));
    assert_int_equal(http_get(p), 200);
    assert_int_equal(http_get("/kannel/dlr?id=x&status=1&key=" SECRET), 400);
    assert_int_equal(http_get("/kannel/dlr?id=x&status=1&key=no"), 403);
    assert_int_equal(worker_wait(SIGTERM, 8000), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_bangla),     cmocka_unit_test(t_english),
        cmocka_unit_test(t_headers),    cmocka_unit_test(t_retry),
        cmocka_unit_test(t_refused),    cmocka_unit_test(t_dlr_before_answer),
        cmocka_unit_test(t_dlr_update), cmocka_unit_test(t_dlr_bad),
        cmocka_unit_test(t_dlr_key),    cmocka_unit_test(t_dlr_unknown),
        cmocka_unit_test(t_dlr_burst),  cmocka_unit_test(t_dlr_many),
        cmocka_unit_test(t_shutdown),   cmocka_unit_test(t_no_database),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
