/*
 * gw_sendsms.c -- SMS out through Kannel's sendsms, delivery reports in.
 *
 * Each worker keeps one keep-alive HTTP connection to smsbox's sendsms
 * (kannel.sendsms_url) and POSTs one message per request: the text as the
 * body (UTF-8), everything else in X-Kannel-* headers, so no credential or
 * message text ever sits in a URL (and so in an access log).  Bangla goes
 * with coding 2.  Kannel answers 202 when it took the message; a refused
 * connection or a 5xx is tried again twice, 250 ms and 500 ms later.  With
 * kannel.dlr_url set, Kannel calls GET /kannel/dlr?id=..&type=%d back with
 * each delivery report, carrying kannel.secret as key=.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "gateway/gw_int.h"

#define GW_MT_TRIES    3
#define GW_MT_INFLIGHT 1024
#define GW_MT_RETRY_MS 250

struct gw_mt;
TAILQ_HEAD(gw_mts, gw_mt);

struct gw_sendsms {
    struct gw_server *srv;
    const struct gw_config *cfg;
    struct evhttp_connection *conn;
    char host[128];
    int port;
    char path[GW_STR_MAX];
    uint64_t seq;
    size_t n;
    struct gw_mts mts;
};

struct gw_mt {
    struct gw_sendsms *ss;
    char id[48];
    char to[GW_MSISDN_MAX + 1];
    char kind[16];
    char *text;
    int ucs2;
    int tries;
    gw_sent_cb *cb;
    void *arg;
    struct event *retry;
    TAILQ_ENTRY(gw_mt) link;
};

static void gw_mt_post(struct gw_mt *m);

static void
gw_mt_free(struct gw_mt *m)
{
    TAILQ_REMOVE(&m->ss->mts, m, link);
    m->ss->n--;
    if (m->retry) event_free(m->retry);
    free(m->text);
    free(m);
}

static void
gw_mt_end(struct gw_mt *m, int status)
{
    if (m->cb) m->cb(status, m->arg);
    gw_mt_free(m);
}

static void
gw_mt_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_mt_post(arg);
}

static void
gw_mt_done(struct evhttp_request *req, void *arg)
{
    struct gw_mt *m = arg;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code == 200 || code == 202) {
        GW_LOG_INFO(0, "sms sent id=%s kind=%s to=%s tries=%d", m->id, m->kind,
                    m->to, m->tries);
        gw_mt_end(m, 0);
        return;
    }
    if ((code == 0 || code >= 500) && m->tries < GW_MT_TRIES) {
        struct timeval tv = {0, GW_MT_RETRY_MS * 1000 * m->tries};
        GW_LOG_WARN(0, "sendsms answered %d id=%s, trying again", code, m->id);
        evtimer_add(m->retry, &tv);
        return;
    }
    GW_LOG_ERROR(0, "sms not sent id=%s kind=%s to=%s sendsms=%d", m->id,
                 m->kind, m->to, code);
    gw_mt_end(m, -1);
}

static void
gw_mt_post(struct gw_mt *m)
{
    struct gw_sendsms *ss = m->ss;
    const struct gw_config *cfg = ss->cfg;
    m->tries++;
    struct evhttp_request *req = evhttp_request_new(gw_mt_done, m);
    if (req == NULL) {
        gw_mt_done(NULL, m);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char hostport[160], dlr[GW_STR_MAX + 512], key[400];
    snprintf(hostport, sizeof(hostport), "%s:%d", ss->host, ss->port);
    evhttp_add_header(h, "Host", hostport);
    evhttp_add_header(h, "Content-Type", "text/plain; charset=UTF-8");
    evhttp_add_header(h, "X-Kannel-Username", cfg->kannel_username);
    evhttp_add_header(h, "X-Kannel-Password", cfg->kannel_password);
    evhttp_add_header(h, "X-Kannel-To", m->to);
    evhttp_add_header(h, "X-Kannel-From", cfg->short_code);
    evhttp_add_header(h, "X-Kannel-SMSC", cfg->sms_smsc);
    evhttp_add_header(h, "X-Kannel-Coding", m->ucs2 ? "2" : "0");
    if (cfg->dlr_url[0]) {
        if (gw_pct_encode((const unsigned char *)cfg->kannel_secret,
                          strlen(cfg->kannel_secret), key, sizeof(key)) < 0)
            key[0] = '\0';
        snprintf(dlr, sizeof(dlr), "%s/kannel/dlr?id=%s&type=%%d&key=%s",
                 cfg->dlr_url, m->id, key);
        evhttp_add_header(h, "X-Kannel-DLR-Mask", "31");
        evhttp_add_header(h, "X-Kannel-DLR-Url", dlr);
    }
    evbuffer_add(evhttp_request_get_output_buffer(req), m->text,
                 strlen(m->text));
    if (evhttp_make_request(ss->conn, req, EVHTTP_REQ_POST, ss->path) != 0)
        GW_LOG_WARN(0, "sendsms request not made id=%s", m->id);
}

int
gw_sms_send(struct gw_server *srv, const char *msisdn, const char *text,
            int ucs2, const char *kind, gw_sent_cb *cb, void *arg)
{
    struct gw_sendsms *ss = srv->sendsms;
    if (ss == NULL || ss->conn == NULL || ss->n >= GW_MT_INFLIGHT) return -1;
    struct gw_mt *m = calloc(1, sizeof(*m));
    if (m == NULL) return -1;
    m->text = strdup(text);
    m->retry = evtimer_new(gw_server_base(srv), gw_mt_retry_cb, m);
    if (m->text == NULL || m->retry == NULL) {
        if (m->retry) event_free(m->retry);
        free(m->text);
        free(m);
        return -1;
    }
    m->ss = ss;
    m->ucs2 = ucs2;
    m->cb = cb;
    m->arg = arg;
    snprintf(m->to, sizeof(m->to), "+%s", msisdn);
    snprintf(m->kind, sizeof(m->kind), "%s", kind ? kind : "reply");
    snprintf(m->id, sizeof(m->id), "%d-%d-%llu", (int)getpid(),
             gw_server_worker(srv), (unsigned long long)++ss->seq);
    TAILQ_INSERT_TAIL(&ss->mts, m, link);
    ss->n++;
    gw_mt_post(m);
    return 0;
}

/* GET /kannel/dlr?id=..&type=..&key=..: logged (no message text), 200. */
void
gw_kannel_dlr_handle(struct gw_req *r)
{
    const struct gw_config *cfg = gw_server_config(r->srv);
    const struct gw_params *ps;
    if (gw_req_query_or_400(r, &ps) < 0) return;
    const struct gw_param *k = gw_params_get(ps, "key");
    if (gw_req_key_or_403(r, cfg->kannel_secret, k ? k->val : "",
                          k ? k->vlen : 0) < 0)
        return;
    const struct gw_param *id = gw_params_get(ps, "id");
    const struct gw_param *type = gw_params_get(ps, "type");
    char *end = NULL;
    long t = type ? strtol(type->val, &end, 10) : -1;
    if (id == NULL || id->vlen == 0 || id->vlen > 47 || type == NULL ||
        *end != '\0' || t < 1 || t > 31) {
        gw_reply_error(r, 400, "dlr needs id and a type of 1..31");
        return;
    }
    for (size_t i = 0; i < id->vlen; i++)
        if (id->val[i] <= ' ' || id->val[i] > '~') {
            gw_reply_error(r, 400, "dlr id must be printable ASCII");
            return;
        }
    GW_RLOG(GW_LEVEL_INFO, r, 0, "dlr id=%s type=%ld", id->val, t);
    gw_reply_text(r, 200, "text/plain", "ok\n");
}

static void
gw_sendsms_stop(struct gw_server *srv, void *arg)
{
    (void)srv;
    struct gw_sendsms *ss = arg;
    /* messages not yet accepted by Kannel are given up (logged) */
    while (!TAILQ_EMPTY(&ss->mts)) {
        struct gw_mt *m = TAILQ_FIRST(&ss->mts);
        GW_LOG_WARN(0, "sms not sent at shutdown id=%s kind=%s", m->id,
                    m->kind);
        gw_mt_end(m, -1);
    }
    if (ss->conn) {
        evhttp_connection_free(ss->conn);
        ss->conn = NULL;
    }
}

int
gw_sendsms_start(struct gw_server *srv)
{
    const struct gw_config *cfg = gw_server_config(srv);
    struct gw_sendsms *ss = calloc(1, sizeof(*ss));
    if (ss == NULL) return -1;
    ss->srv = srv;
    ss->cfg = cfg;
    TAILQ_INIT(&ss->mts);
    srv->sendsms = ss;
    if (cfg->sendsms_url[0] == '\0') {
        if (gw_server_worker(srv) == 0)
            GW_LOG_WARN(0, "kannel.sendsms_url is empty: no SMS goes out");
        return gw_server_on_stop(srv, gw_sendsms_stop, ss);
    }
    struct evhttp_uri *u = evhttp_uri_parse(cfg->sendsms_url);
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
    if (host == NULL || scheme == NULL || strcmp(scheme, "http") != 0) {
        GW_LOG_ERROR(0, "kannel.sendsms_url must be http://host:port/path");
        if (u) evhttp_uri_free(u);
        return -1;
    }
    snprintf(ss->host, sizeof(ss->host), "%s", host);
    ss->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
    const char *path = evhttp_uri_get_path(u);
    snprintf(ss->path, sizeof(ss->path), "%s",
             path && path[0] ? path : "/cgi-bin/sendsms");
    evhttp_uri_free(u);
    ss->conn = evhttp_connection_base_new(gw_server_base(srv), NULL, ss->host,
                                          (unsigned short)ss->port);
    if (ss->conn == NULL) return -1;
    evhttp_connection_set_timeout(ss->conn, 5);
    return gw_server_on_stop(srv, gw_sendsms_stop, ss);
}

void
gw_sendsms_fini(struct gw_server *srv)
{
    struct gw_sendsms *ss = srv->sendsms;
    if (ss == NULL) return;
    gw_sendsms_stop(srv, ss);
    free(ss);
    srv->sendsms = NULL;
}
