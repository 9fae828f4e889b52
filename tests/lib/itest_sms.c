/*
 * itest_sms.c -- the worker and the stand-in for Kannel's sendsms that
 * the SMS tests share (itest_sms.h).  Failures inside a test are cmocka's
 * (fail_msg, assert_*); the group setup's are a line on stderr and -1, as
 * cmocka wants them.
 */
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
#include "tests/lib/itest_sms.h"

struct itest_sms_env itest_sms = {.kannel_fd = -1, .worker = -1};

/* ------------------------------------------------------------------------
 * The worker side (child): the stand-in for Kannel and the sends
 */

static int logfd = -1;
static struct event_base *cbase;
static int plan_with_db;

static const char *
hdr(struct evhttp_request *req, const char *name)
{
    const char *v =
        evhttp_find_header(evhttp_request_get_input_headers(req), name);
    return v ? v : "-";
}

static int tries_en;

/* The DLR the stand-in sends before answering ITEST_SMS_N_EARLY. */
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
    itest_log_line(logfd, "DLRFIRST code=%d",
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

/* The len bytes at p as lower-case hex, NUL-terminated, in out. */
static void
hex_of(const void *p, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        out += sprintf(out, "%02x", ((const unsigned char *)p)[i]);
    *out = '\0';
}

static void
kannel_cb(struct evhttp_request *req, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    unsigned char body[2048];
    char hex[4200];
    const char *to = hdr(req, "X-Kannel-To");
    struct evbuffer *b = evbuffer_new();
    (void)arg;

    if (len > sizeof(body)) len = sizeof(body);
    evbuffer_copyout(in, body, len);
    hex_of(body, len, hex);
    itest_log_line(logfd,
                   "REQ method=%d uri=%s to=%s from=%s smsc=%s coding=%s "
                   "user=%s pass=%s mask=%s ctype=%s body=%s dlr=%s",
                   (int)evhttp_request_get_command(req),
                   evhttp_request_get_uri(req), to, hdr(req, "X-Kannel-From"),
                   hdr(req, "X-Kannel-SMSC"), hdr(req, "X-Kannel-Coding"),
                   hdr(req, "X-Kannel-Username"), hdr(req, "X-Kannel-Password"),
                   hdr(req, "X-Kannel-DLR-Mask"), hdr(req, "Content-Type"), hex,
                   hdr(req, "X-Kannel-DLR-Url"));
    if (strcmp(to, "+" ITEST_SMS_N_EN) == 0 && tries_en++ == 0) {
        evbuffer_add_printf(b, "Temporal failure, try again later.");
        evhttp_send_reply(req, 503, "Service Unavailable", b);
    } else if (strcmp(to, "+" ITEST_SMS_N_EN) == 0) {
        evbuffer_add_printf(b, "3: Queued for later delivery");
        evhttp_send_reply(req, 202, "Accepted", b);
    } else if (strcmp(to, "+" ITEST_SMS_N_DENY) == 0) {
        evbuffer_add_printf(b, "Authorization failed for sendsms");
        evhttp_send_reply(req, 403, "Forbidden", b);
    } else if (strcmp(to, "+" ITEST_SMS_N_EARLY) == 0) {
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
    itest_log_line(logfd, "SENT to=%s status=%d", (const char *)arg, status);
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
    if (kannel_http == NULL || evhttp_accept_socket_with_handle(
                                   kannel_http, itest_sms.kannel_fd) == NULL)
        return -1;
    evhttp_set_gencb(kannel_http, kannel_cb, NULL);
    if (gw_server_on_stop(srv, kannel_stop, NULL) != 0) return -1;
    /* arguments refused at once, never called back */
    if (gw_sms_send(srv, "12ab", "x", 0, "reply", sent_cb, NULL) != -1 ||
        gw_sms_send(srv, ITEST_SMS_N_BN, "x", 0, "spam", sent_cb, NULL) != -1 ||
        gw_sms_send(srv, ITEST_SMS_N_BN, "", 0, "reply", sent_cb, NULL) != -1)
        return -1;
    if (gw_sms_send(srv, ITEST_SMS_N_BN, ITEST_SMS_TXT_BN, 1, "confirmation",
                    sent_cb, (void *)(uintptr_t)ITEST_SMS_N_BN) ||
        gw_sms_send(srv, ITEST_SMS_N_EN, ITEST_SMS_TXT_EN, 0, "reply", sent_cb,
                    (void *)(uintptr_t)ITEST_SMS_N_EN) ||
        gw_sms_send(srv, ITEST_SMS_N_EARLY, "early", 0, "notice", sent_cb,
                    (void *)(uintptr_t)ITEST_SMS_N_EARLY) ||
        gw_sms_send(srv, ITEST_SMS_N_DENY, "denied", 0, "reply", sent_cb,
                    (void *)(uintptr_t)ITEST_SMS_N_DENY))
        return -1;
    itest_log_line(logfd, "STARTED db=%d", plan_with_db);
    return 0;
}

/* ------------------------------------------------------------------------
 * The test side
 */

int
itest_sms_worker_start(int with_db)
{
    int kport, fd;

    itest_sms.kannel_fd = itest_listen(&kport, 1);
    fd = itest_listen(&itest_sms.port, 1);
    if (itest_sms.kannel_fd < 0 || fd < 0) return -1;
    snprintf(itest_sms.cfg.sendsms_url, sizeof(itest_sms.cfg.sendsms_url),
             "http://127.0.0.1:%d/cgi-bin/sendsms", kport);
    snprintf(itest_sms.cfg.dlr_url, sizeof(itest_sms.cfg.dlr_url),
             "http://127.0.0.1:%d/", itest_sms.port);
    snprintf(itest_sms.cfg.pg_dsn, sizeof(itest_sms.cfg.pg_dsn), "%s",
             with_db ? itest_sms.dsn : "");
    if (truncate(itest_sms.log, 0) != 0) return -1;
    fflush(NULL);
    itest_sms.worker = fork();
    if (itest_sms.worker < 0) return -1;
    if (itest_sms.worker == 0) {
        int rc;
        logfd = open(itest_sms.log, O_WRONLY | O_APPEND);
        if (logfd < 0) _exit(9);
        plan_with_db = with_db;
        gw_log_set_level(getenv("TEST_VERBOSE") ? GW_LEVEL_DEBUG
                                                : GW_LEVEL_ERROR);
        rc = gw_worker_run_with(&itest_sms.cfg, fd, 0, start_cb, NULL);
        exit(rc);
    }
    close(fd);
    close(itest_sms.kannel_fd);
    itest_sms.kannel_fd = -1;
    return 0;
}

const char *
itest_sms_log_text(void)
{
    static char buf[1 << 17];
    return itest_file_text(itest_sms.log, buf, sizeof(buf));
}

/* The next line at *p (moved past it) that has n1 and n2 (n2 NULL: n1
 * alone), copied into line (cap bytes): 1, or 0 at the end. */
static int
log_next(const char **p, const char *n1, const char *n2, char *line, size_t cap)
{
    while (**p) {
        const char *e = strchr(*p, '\n');
        size_t len = e ? (size_t)(e - *p) : strlen(*p);
        snprintf(line, cap, "%.*s", (int)len, *p);
        *p += len + (e ? 1 : 0);
        if (strstr(line, n1) && (n2 == NULL || strstr(line, n2))) return 1;
    }
    return 0;
}

int
itest_sms_log_count(const char *n1, const char *n2)
{
    const char *p = itest_sms_log_text();
    char line[8192];
    int c = 0;
    while (log_next(&p, n1, n2, line, sizeof(line)))
        c++;
    return c;
}

int
itest_sms_log_wait(const char *n1, const char *n2)
{
    long t0 = itest_now_ms();
    while (itest_now_ms() - t0 < 5000) {
        if (itest_sms_log_count(n1, n2) > 0) return 1;
        usleep(20 * 1000);
    }
    return 0;
}

void
itest_sms_log_field(const char *n1, const char *n2, const char *name, char *out,
                    size_t cap)
{
    const char *p = itest_sms_log_text(), *v;
    char key[64], line[8192];
    out[0] = '\0';
    snprintf(key, sizeof(key), " %s=", name);
    if (log_next(&p, n1, n2, line, sizeof(line)) &&
        (v = strstr(line, key)) != NULL) {
        v += strlen(key);
        snprintf(out, cap, "%.*s", (int)strcspn(v, " "), v);
    }
}

void
itest_sms_hex(const char *s, char *out)
{
    hex_of(s, strlen(s), out);
}

int
itest_sms_get(const char *path)
{
    int status;
    itest_sms_get_all(&path, 1, &status);
    return status;
}

/* A GET of path on a new connection to the worker: its descriptor, or
 * -1. */
static int
get_open(const char *path)
{
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    char req[2048];
    int len, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)itest_sms.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close"
                   "\r\n\r\n",
                   path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, req, (size_t)len) != len) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The answer on fd (read until the worker closes it, at most cap - 1
 * bytes, into buf) and its status; closes fd. */
static int
get_answer(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    int status;
    while (got < cap - 1) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) status = -1;
    close(fd);
    return status;
}

void
itest_sms_get_all(const char *const *paths, int n, int *status)
{
    int fd[64];
    char buf[1024];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++)
        fd[i] = get_open(paths[i]);
    for (int i = 0; i < n; i++)
        status[i] = fd[i] < 0 ? -1 : get_answer(fd[i], buf, sizeof(buf));
}

int
itest_sms_fetch(const char *path, char *answer, size_t cap)
{
    int fd = get_open(path);
    answer[0] = '\0';
    return fd < 0 ? -1 : get_answer(fd, answer, cap);
}

void
itest_sms_dlr_path(const char *number, const char *type, const char *answer,
                   const char *ts, char *out, size_t cap)
{
    char url[1024], full[1536], to[32];
    const char *p;
    snprintf(to, sizeof(to), "to=+%s", number);
    itest_sms_log_field("REQ ", to, "dlr", url, sizeof(url));
    assert_true(url[0] != '\0');
    dlr_fill(url, type, answer, ts, full, sizeof(full));
    p = strstr(full, "/kannel/dlr?");
    assert_non_null(p);
    snprintf(out, cap, "%s", p);
}

void
itest_sms_msg_id(const char *number, char id[40])
{
    char url[1024], to[32];
    const char *p;
    snprintf(to, sizeof(to), "to=+%s", number);
    itest_sms_log_field("REQ ", to, "dlr", url, sizeof(url));
    p = strstr(url, "?id=");
    assert_non_null(p);
    snprintf(id, 40, "%.36s", p + 4);
    assert_true(store_sms_id_valid(id));
}

void
itest_sms_row(const char *number, const char *expr, char *out, size_t cap)
{
    char q[512];
    const char *params[1] = {number};
    PGresult *r;
    snprintf(q, sizeof(q), "SELECT (%s)::text FROM sms_out WHERE msisdn = $1",
             expr);
    r = PQexecParams(itest_sms.db, q, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s (%d rows)", q, PQresultErrorMessage(r), PQntuples(r));
    snprintf(out, cap, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
}

void
itest_sms_assert_row(const char *number, const char *expr, const char *want)
{
    char got[1024];
    long t0 = itest_now_ms();
    itest_sms_row(number, expr, got, sizeof(got));
    while (strcmp(got, want) != 0 && itest_now_ms() - t0 < 5000) {
        usleep(20 * 1000);
        itest_sms_row(number, expr, got, sizeof(got));
    }
    if (strcmp(got, want) != 0)
        fail_msg("%s of %s: got \"%s\", want \"%s\"", expr, number, got, want);
}

int
itest_sms_setup(void **state)
{
    const char *dsn = getenv("PG_DSN"), *rp = getenv("REDIS_PORT");
    char err[512];
    int fd;

    (void)state;
    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr, "itest_sms: PG_DSN is not set (tests/run sets it)\n");
        return -1;
    }
    snprintf(itest_sms.dsn, sizeof(itest_sms.dsn), "%s", dsn);
    snprintf(itest_sms.tmp, sizeof(itest_sms.tmp),
             "/tmp/remigate-sendsms.XXXXXX");
    if (mkdtemp(itest_sms.tmp) == NULL) return -1;
    snprintf(itest_sms.log, sizeof(itest_sms.log), "%s/log", itest_sms.tmp);
    snprintf(itest_sms.key, sizeof(itest_sms.key), "%s/key", itest_sms.tmp);
    fd = open(itest_sms.log, O_CREAT | O_WRONLY, 0600);
    if (fd < 0) return -1;
    close(fd);
    if (store_keygen(itest_sms.key, err, sizeof(err)) != 0 ||
        store_migrate(itest_sms.dsn, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "itest_sms: %s\n", err);
        return -1;
    }
    itest_sms.db = PQconnectdb(itest_sms.dsn);
    if (PQstatus(itest_sms.db) != CONNECTION_OK) return -1;
    if (gw_config_load("config/remigate.conf", &itest_sms.cfg, err,
                       sizeof(err)) != 0)
        return -1;
    if (rp != NULL) itest_sms.cfg.redis_port = atol(rp);
    snprintf(itest_sms.cfg.key_file, sizeof(itest_sms.cfg.key_file), "%s",
             itest_sms.key);
    snprintf(itest_sms.cfg.kannel_username,
             sizeof(itest_sms.cfg.kannel_username), "remi");
    snprintf(itest_sms.cfg.kannel_password,
             sizeof(itest_sms.cfg.kannel_password), "pw 1&2");
    snprintf(itest_sms.cfg.kannel_secret, sizeof(itest_sms.cfg.kannel_secret),
             ITEST_SMS_SECRET);
    itest_sms.cfg.request_timeout_ms = 2000;
    if (itest_sms_worker_start(1) != 0) return -1;
    /* every message has its verdict */
    if (!itest_sms_log_wait("SENT to=" ITEST_SMS_N_BN, NULL) ||
        !itest_sms_log_wait("SENT to=" ITEST_SMS_N_EN, NULL) ||
        !itest_sms_log_wait("SENT to=" ITEST_SMS_N_EARLY, NULL) ||
        !itest_sms_log_wait("SENT to=" ITEST_SMS_N_DENY, NULL)) {
        fprintf(stderr, "itest_sms: not every message was answered:\n%s",
                itest_sms_log_text());
        return -1;
    }
    return 0;
}

int
itest_sms_teardown(void **state)
{
    char cmd[160];
    int rc = 0, st;
    (void)state;
    if (itest_sms.worker > 0 &&
        (st = itest_child_wait(&itest_sms.worker, SIGTERM, 8000)) != 0) {
        fprintf(stderr,
                "itest_sms: the worker did not stop cleanly on "
                "SIGTERM (%d)\n",
                st);
        rc = -1;
    }
    if (itest_sms.db) PQfinish(itest_sms.db);
    itest_sms.db = NULL;
    if (itest_sms.tmp[0] && !getenv("REMIGATE_TEST_KEEP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", itest_sms.tmp);
        if (system(cmd) != 0) rc = -1;
    }
    return rc;
}
