/*
 * gw_sendsms.c -- SMS out through Kannel's sendsms, delivery reports in.
 *
 * A message's life: gw_sms_send() gives it our own id (a random UUID),
 * writes its sms_out row (store_sms_insert) and only then POSTs it to
 * smsbox's sendsms (kannel.sendsms_url), so a delivery report that
 * overtakes sendsms's answer finds its row.  The POST carries the text as
 * a UTF-8 body and everything else in X-Kannel-* headers -- credentials
 * included, which Kannel 1.4.5 requires for POST (query credentials get
 * 403) and which keeps them and the text out of access logs.  Bangla goes
 * with X-Kannel-Coding 2 (UCS-2), anything else with 0.  With
 * kannel.dlr_url set, dlr-mask 31 asks for every report to
 *   DLR_URL/kannel/dlr?id=ID&status=%d&answer=%A&ts=%T[&key=SECRET]
 * (Kannel fills %d with the DLR type, %A with the SMSC's receipt, %T with
 * its time).
 *
 * Each try is one HTTP request, with a deadline (evhttp's and our own
 * timer, whichever fires first; ours frees the connection, which drops
 * the request without calling back).  Requests go over GW_MT_CONNS kept
 * connections per worker (HTTP/1.1 keep-alive), one request at a time on
 * each; a message that finds them all busy waits in line for the next
 * free one.  A connection is used again only after a whole answer; one
 * that failed (an error, a timeout, the peer closing it under a request)
 * is freed and the next request opens a new one, and one left idle for
 * GW_MT_IDLE_MS is closed by us before use rather than sent on while
 * Kannel may be closing it.  The request that was on a connection when it
 * failed is never written again by the new one: libevent makes no second
 * attempt (retries 0) and the message's outcome is what the failure says
 * (gw_mt_classify(): a request that went out and got no answer is
 * "maybe", and a gw_sms_send_once() message is never tried twice).
 * Connections are always freed from the loop, never inside libevent.  A
 * refused connection, a timeout or a 5xx is tried again after 250 ms,
 * then 500 ms; 2xx (202 "0: Accepted for delivery", 202 "3: Queued for later
 * delivery") is accepted; a 4xx is final.  The caller's callback runs once
 * with Kannel's verdict, then the row gets it (store_sms_sent).  At most
 * GW_MT_INFLIGHT messages per worker are on their way; more are refused.
 *
 * An empty kannel.sendsms_url sends nothing: gw_sms_send() refuses.
 * With no database (postgres.dsn "") messages still go out, unrecorded,
 * and /kannel/dlr answers 200 and logs at debug.  With a database that is
 * away, a message still goes out (the confirmation matters more than its
 * row) with a warning; its reports then get 404.  The reports themselves
 * (GET /kannel/dlr), STOP/START and interest replies are gw_dlr.c's, on
 * this file's sms_out pool (gw_sendsms_db()).
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "gateway/gw_int.h"
#include "store/store.h"

#define GW_SS_MAGIC      0x53534d53u
#define GW_MT_MAGIC      0x4d544d53u
#define GW_MT_TRIES      3    /* requests per message, at most */
#define GW_MT_INFLIGHT   1024 /* messages on their way, per worker */
#define GW_MT_BACKOFF_MS 250  /* before the 2nd try; doubles */
#define GW_MT_TIMEOUT_MS 5000 /* one sendsms request */
#define GW_MT_TEXT_MAX   4096 /* bytes of text */
#define GW_MT_ANSWER_MAX 256  /* bytes kept of Kannel's answer */
#define GW_MT_CONNS      8    /* kept connections to sendsms, per worker */
#define GW_MT_IDLE_MS    2000 /* a connection idle longer is not reused */

enum gw_mt_phase {
    GW_MT_RECORDING, /* the row is being written */
    GW_MT_WAITING,   /* timer: the next try */
    GW_MT_QUEUED,    /* in line for a free connection (ss->connq) */
    GW_MT_POSTING,   /* a request is out; timer: its deadline */
    GW_MT_ANSWERED,  /* timer (now): free the connection, act on it */
    GW_MT_SAVING     /* the verdict is given; the row is being updated */
};

struct gw_mt;
TAILQ_HEAD(gw_mts, gw_mt);

/* One kept connection to sendsms: NULL evcon until first used (and after
 * it failed); m while a request is on it. */
struct gw_ssconn {
    struct evhttp_connection *evcon;
    struct gw_mt *m;
    long long idle_ms; /* monotonic ms it last became free */
    int broken;        /* the request on it failed: free it, not reuse */
};

struct gw_sendsms {
    unsigned magic;
    struct gw_server *srv;
    const struct gw_config *cfg;
    struct store_sms *db; /* NULL: no database */
    char host[128];
    int port;
    char path[GW_STR_MAX];
    char hostport[160];
    char dlr_base[GW_STR_MAX + 16]; /* "" when no reports are asked */
    char key[400];                  /* kannel.secret, for the dlr-url */
    size_t n;
    int stopping;
    struct gw_mts mts;
    struct gw_mts connq; /* GW_MT_QUEUED messages, oldest first */
    struct gw_ssconn conns[GW_MT_CONNS];
};

struct gw_mt {
    unsigned magic;
    struct gw_sendsms *ss;
    enum gw_mt_phase phase;
    char id[40];
    char to[GW_MSISDN_MAX];
    char kind[16];
    char *text;
    int ucs2;
    int tries;
    int code;                          /* HTTP status of the last answer */
    char answer[GW_MT_ANSWER_MAX + 1]; /* its body, printable */
    gw_sent_cb *cb;                    /* NULL once called */
    gw_sms_outcome_cb *ocb; /* gw_sms_send_once(): NULL once called */
    void *arg;
    int once;         /* gw_sms_send_once(): one try, the outcome told apart */
    int validity_min; /* > 0: X-Kannel-Validity */
    int maybe;        /* the request may have reached Kannel (evhttp's error
                         callback ran: timeout or connection lost after it
                         went out, or our own deadline) */
    struct event *timer;
    struct gw_ssconn *c; /* while POSTING or ANSWERED */
    int db_pending;      /* a store callback is outstanding */
    TAILQ_ENTRY(gw_mt) link;
    TAILQ_ENTRY(gw_mt) qlink; /* in ss->connq while GW_MT_QUEUED */
};

static void gw_mt_post(struct gw_mt *m);

/* ------------------------------------------------------------------------
 * Kept connections
 */

static long long
gw_ss_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* c is free again; a broken one is freed (from the loop only: never
 * inside one of its own libevent callbacks). */
static void
gw_conn_release(struct gw_ssconn *c)
{
    if (c->broken && c->evcon != NULL) {
        evhttp_connection_free(c->evcon); /* drops a request on it */
        c->evcon = NULL;
    }
    c->broken = 0;
    c->m = NULL;
    c->idle_ms = gw_ss_mono_ms();
}

/* A free connection (kept ones first), or NULL when all are busy.  One
 * idle past GW_MT_IDLE_MS is closed here: Kannel may be closing it. */
static struct gw_ssconn *
gw_conn_get(struct gw_sendsms *ss)
{
    struct gw_ssconn *empty = NULL;
    long long now = gw_ss_mono_ms();

    for (int i = 0; i < GW_MT_CONNS; i++) {
        struct gw_ssconn *c = &ss->conns[i];
        if (c->m != NULL) continue;
        if (c->evcon != NULL && now - c->idle_ms > GW_MT_IDLE_MS) {
            evhttp_connection_free(c->evcon);
            c->evcon = NULL;
        }
        if (c->evcon != NULL) return c;
        if (empty == NULL) empty = c;
    }
    return empty;
}

/* Messages in line get the connections that are free. */
static void
gw_conn_kick(struct gw_sendsms *ss)
{
    struct gw_mt *m;
    while (!ss->stopping && (m = TAILQ_FIRST(&ss->connq)) != NULL) {
        struct gw_ssconn *c = gw_conn_get(ss);
        if (c == NULL) return;
        TAILQ_REMOVE(&ss->connq, m, qlink);
        gw_mt_post(m);
    }
}

/* ------------------------------------------------------------------------
 * Messages
 */

static void
gw_mt_free(struct gw_mt *m)
{
    GW_CHECK_MAGIC(m, GW_MT_MAGIC);
    AZ(m->db_pending);
    TAILQ_REMOVE(&m->ss->mts, m, link);
    m->ss->n--;
    if (m->phase == GW_MT_QUEUED) TAILQ_REMOVE(&m->ss->connq, m, qlink);
    if (m->c != NULL) {
        m->c->broken = 1;
        gw_conn_release(m->c);
    }
    if (m->timer) event_free(m->timer);
    free(m->text);
    m->magic = 0;
    free(m);
}

/* What one try of a gw_sms_send_once() message came to.  Only a refused
 * connection, a request never made and a 503 (Kannel's "queue full" or
 * throttled) say for sure that nothing was queued; a timeout or a
 * connection lost after the request went out, and any other 5xx, may
 * have been queued by Kannel. */
static enum gw_sms_outcome
gw_mt_classify(const struct gw_mt *m)
{
    if (m->code >= 200 && m->code < 300) return GW_SMS_ACCEPTED;
    if (m->code == 503) return GW_SMS_NOT_SENT;
    if (m->code >= 400 && m->code < 500) return GW_SMS_REFUSED;
    if (m->code == 0 && !m->maybe) return GW_SMS_NOT_SENT;
    return GW_SMS_MAYBE;
}

static const char *const gw_sms_outcome_names[] = {
    [GW_SMS_ACCEPTED] = "accepted",
    [GW_SMS_NOT_SENT] = "not_sent",
    [GW_SMS_REFUSED] = "refused",
    [GW_SMS_MAYBE] = "maybe",
};

/* Tell the caller (once: every message comes here once) and count it. */
static void
gw_mt_verdict(struct gw_mt *m, int status)
{
    gw_sent_cb *cb = m->cb;
    gw_sms_outcome_cb *ocb = m->ocb;
    enum gw_sms_outcome o = gw_mt_classify(m);
    m->cb = NULL;
    m->ocb = NULL;
    gw_metric_inc(GW_M_SMS_OUT, m->kind, gw_sms_outcome_names[o]);
    if (cb != NULL) cb(status, m->arg);
    if (ocb != NULL) ocb(o, m->code, m->answer, m->arg);
}

static void
gw_mt_saved(int status, const struct store_sms_result *res, void *arg)
{
    struct gw_mt *m = arg;
    GW_CHECK_MAGIC(m, GW_MT_MAGIC);
    m->db_pending = 0;
    if (status != STORE_OK)
        GW_LOG_WARN(0, "sms outcome not recorded id=%s: %s", m->id,
                    res->errstr);
    if (m->ss->stopping) return; /* the stop hook frees it */
    gw_mt_free(m);
}

/* Kannel's verdict is final: tell the caller, then the row. */
static void
gw_mt_finish(struct gw_mt *m, int accepted)
{
    struct gw_sendsms *ss = m->ss;
    int rc;

    char to[GW_MSISDN_MAX];
    /* a notice's SMS is one of thousands, each in its outbox row: a line
     * each only at debug */
    if (accepted)
        GW_LOG(m->once ? GW_LEVEL_DEBUG : GW_LEVEL_INFO, 0,
               "sms accepted id=%s kind=%s to=%s tries=%d status=%d", m->id,
               m->kind, gw_log_msisdn(to, sizeof(to), m->to), m->tries,
               m->code);
    else
        GW_LOG_ERROR(0, "sms not sent id=%s kind=%s to=%s tries=%d status=%d",
                     m->id, m->kind, gw_log_msisdn(to, sizeof(to), m->to),
                     m->tries, m->code);
    m->phase = GW_MT_SAVING;
    gw_mt_verdict(m, accepted ? 0 : -1);
    if (ss->db == NULL || ss->stopping) {
        if (!ss->stopping) gw_mt_free(m);
        return;
    }
    rc = store_sms_sent(ss->db, m->id, m->tries, m->code, m->answer, accepted,
                        gw_mt_saved, m);
    if (rc == STORE_OK) {
        m->db_pending = 1;
        return;
    }
    GW_LOG_WARN(0, "sms outcome not recorded id=%s: %s", m->id,
                store_strerror(rc));
    gw_mt_free(m);
}

/* What to do after a try that got code (0: no answer). */
static void
gw_mt_outcome(struct gw_mt *m)
{
    if (m->code >= 200 && m->code < 300) {
        gw_mt_finish(m, 1);
        return;
    }
    if ((m->code == 0 || m->code >= 500) && m->tries < GW_MT_TRIES &&
        !m->once && !m->ss->stopping) {
        long ms = (long)GW_MT_BACKOFF_MS << (m->tries - 1);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        GW_LOG_WARN(0,
                    "sendsms answered status=%d id=%s try=%d, again in "
                    "%ld ms",
                    m->code, m->id, m->tries, ms);
        m->phase = GW_MT_WAITING;
        evtimer_add(m->timer, &tv);
        return;
    }
    gw_mt_finish(m, 0);
}

/* Keep Kannel's answer for the row: printable ASCII, the rest as '?'. */
static void
gw_mt_keep_answer(struct gw_mt *m, struct evhttp_request *req)
{
    struct evbuffer *in = req ? evhttp_request_get_input_buffer(req) : NULL;
    size_t n = 0;

    if (in != NULL) {
        n = evbuffer_copyout(in, m->answer, GW_MT_ANSWER_MAX) < 0
                ? 0
                : evbuffer_get_length(in);
        if (n > GW_MT_ANSWER_MAX) n = GW_MT_ANSWER_MAX;
    }
    m->answer[n] = '\0';
    while (n > 0 && (m->answer[n - 1] == '\n' || m->answer[n - 1] == '\r'))
        m->answer[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)m->answer[i] < ' ' ||
            (unsigned char)m->answer[i] > '~')
            m->answer[i] = '?';
}

/* Does the answer leave its connection open for the next request?
 * HTTP/1.1 unless it says "Connection: close"; HTTP/1.0 only when it says
 * "Connection: keep-alive".  libevent 2.1 reads only the header, so after
 * an HTTP/1.0 answer it would write the next request into a connection
 * the server is closing -- a request lost, counted as "maybe". */
static int
gw_mt_keeps(const struct evhttp_request *req)
{
    const char *v = evhttp_find_header(
        evhttp_request_get_input_headers((struct evhttp_request *)req),
        "Connection");
    if (req->major > 1 || (req->major == 1 && req->minor >= 1))
        return v == NULL || evutil_ascii_strcasecmp(v, "close") != 0;
    return v != NULL && evutil_ascii_strcasecmp(v, "keep-alive") == 0;
}

/* evhttp's callback: the answer, or NULL on a connection error or its
 * timeout.  libevent still holds the connection on the stack here (and
 * does not free a failed one itself), so the rest happens from the loop,
 * where the connection is freed. */
static void
gw_mt_answered(struct evhttp_request *req, void *arg)
{
    struct gw_mt *m = arg;
    struct timeval zero = {0, 0};
    GW_CHECK_MAGIC(m, GW_MT_MAGIC);
    AN(m->phase == GW_MT_POSTING);
    m->code = req ? evhttp_request_get_response_code(req) : 0;
    gw_mt_keep_answer(m, req);
    /* no whole answer, or one that ends the connection: not used again */
    if (m->code == 0 || m->maybe || !gw_mt_keeps(req)) m->c->broken = 1;
    m->phase = GW_MT_ANSWERED;
    evtimer_del(m->timer);
    evtimer_add(m->timer, &zero);
}

/* evhttp's error callback: a timeout, EOF or bad answer after the
 * connection was made -- the request may have been read.  (A refused
 * connection fails the request without it.) */
static void
gw_mt_req_error(enum evhttp_request_error err, void *arg)
{
    struct gw_mt *m = arg;
    GW_CHECK_MAGIC(m, GW_MT_MAGIC);
    if (err != EVREQ_HTTP_REQUEST_CANCEL) m->maybe = 1;
}

static void
gw_mt_timer(evutil_socket_t fd, short what, void *arg)
{
    struct gw_mt *m = arg;
    (void)fd;
    (void)what;
    GW_CHECK_MAGIC(m, GW_MT_MAGIC);
    switch (m->phase) {
    case GW_MT_WAITING:
        gw_mt_post(m);
        break;
    case GW_MT_ANSWERED: {
        struct gw_sendsms *ss = m->ss;
        gw_conn_release(m->c);
        m->c = NULL;
        gw_mt_outcome(m); /* may free m */
        gw_conn_kick(ss);
        break;
    }
    case GW_MT_POSTING: {
        struct gw_sendsms *ss = m->ss;
        /* Our deadline (or a request that could not be made): freeing
         * the connection drops the request without a callback. */
        if (m->c != NULL) {
            m->c->broken = 1;
            gw_conn_release(m->c);
            m->c = NULL;
            snprintf(m->answer, sizeof(m->answer), "no answer in %d ms",
                     GW_MT_TIMEOUT_MS);
            m->maybe = 1;
        }
        m->code = 0;
        gw_mt_outcome(m); /* may free m */
        gw_conn_kick(ss);
        break;
    }
    case GW_MT_QUEUED:
    case GW_MT_RECORDING:
    case GW_MT_SAVING:
    default:
        WRONG("sendsms timer in this phase");
    }
}

static void
gw_mt_post(struct gw_mt *m)
{
    struct gw_sendsms *ss = m->ss;
    const struct gw_config *cfg = ss->cfg;
    struct timeval tv = {GW_MT_TIMEOUT_MS / 1000,
                         (GW_MT_TIMEOUT_MS % 1000) * 1000};
    struct evhttp_request *req;
    struct evkeyvalq *h;
    struct gw_ssconn *c;
    char to[GW_MSISDN_MAX + 1], dlr[sizeof(ss->dlr_base) + 512];

    if ((c = gw_conn_get(ss)) == NULL) {
        /* every connection has a request on it: the next free one */
        m->phase = GW_MT_QUEUED;
        TAILQ_INSERT_TAIL(&ss->connq, m, qlink);
        return;
    }
    m->tries++;
    m->phase = GW_MT_POSTING;
    m->code = 0;
    m->maybe = 0;
    m->answer[0] = '\0';
    m->c = c;
    c->m = m;
    if (c->evcon == NULL) {
        /* libevent resolves a host name here, blocking: the URL should
         * name an address (the default does). */
        c->evcon = evhttp_connection_base_new(
            gw_server_base(ss->srv), NULL, ss->host, (unsigned short)ss->port);
        if (c->evcon != NULL) {
            evhttp_connection_set_timeout_tv(c->evcon, &tv);
            evhttp_connection_set_retries(c->evcon, 0);
        }
    }
    req = c->evcon ? evhttp_request_new(gw_mt_answered, m) : NULL;
    if (req == NULL) {
        GW_LOG_ERROR(0, "sendsms request not made id=%s", m->id);
        goto failed;
    }
    evhttp_request_set_error_cb(req, gw_mt_req_error);
    h = evhttp_request_get_output_headers(req);
    snprintf(to, sizeof(to), "+%s", m->to);
    evhttp_add_header(h, "Host", ss->hostport);
    evhttp_add_header(h, "Content-Type", "text/plain; charset=UTF-8");
    evhttp_add_header(h, "X-Kannel-Username", cfg->kannel_username);
    evhttp_add_header(h, "X-Kannel-Password", cfg->kannel_password);
    evhttp_add_header(h, "X-Kannel-To", to);
    evhttp_add_header(h, "X-Kannel-From", cfg->short_code);
    evhttp_add_header(h, "X-Kannel-SMSC", cfg->sms_smsc);
    evhttp_add_header(h, "X-Kannel-Coding", m->ucs2 ? "2" : "0");
    if (m->validity_min > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", m->validity_min);
        evhttp_add_header(h, "X-Kannel-Validity", v);
    }
    if (ss->dlr_base[0]) {
        snprintf(dlr, sizeof(dlr), "%s?id=%s&status=%%d&answer=%%A&ts=%%T%s%s",
                 ss->dlr_base, m->id, ss->key[0] ? "&key=" : "", ss->key);
        evhttp_add_header(h, "X-Kannel-DLR-Mask", "31");
        evhttp_add_header(h, "X-Kannel-DLR-Url", dlr);
    }
    evbuffer_add(evhttp_request_get_output_buffer(req), m->text,
                 strlen(m->text));
    if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, ss->path) != 0) {
        GW_LOG_ERROR(0, "sendsms request not made id=%s", m->id);
        goto failed;
    }
    evtimer_add(m->timer, &tv);
    return;
failed:
    /* a try that failed at once: its outcome comes from the loop */
    c->broken = 1;
    gw_conn_release(c);
    m->c = NULL;
    snprintf(m->answer, sizeof(m->answer), "request not made");
    {
        struct timeval zero = {0, 0};
        evtimer_add(m->timer, &zero);
    }
}

static void
gw_mt_recorded(int status, const struct store_sms_result *res, void *arg)
{
    struct gw_mt *m = arg;
    struct timeval zero = {0, 0};
    GW_CHECK_MAGIC(m, GW_MT_MAGIC);
    m->db_pending = 0;
    if (m->ss->stopping) return; /* the stop hook answers and frees it */
    if (status != STORE_OK)
        GW_LOG_WARN(0, "sms not recorded, sending anyway id=%s: %s", m->id,
                    res->errstr);
    m->phase = GW_MT_WAITING;
    evtimer_add(m->timer, &zero);
}

static int
gw_sms_kind_ok(const char *kind)
{
    return strcmp(kind, "reply") == 0 || strcmp(kind, "confirmation") == 0 ||
           strcmp(kind, "notice") == 0 || strcmp(kind, "reminder") == 0;
}

/* gw_sms_send(), or with id (not NULL) a message whose sms_out row is
 * already there under that id: it is sent without writing the row. */
static int
gw_sms_start(struct gw_server *srv, const char *id, const char *msisdn,
             const char *text, int ucs2, const char *kind, gw_sent_cb *cb,
             void *arg)
{
    struct gw_sendsms *ss = srv ? srv->sendsms : NULL;
    unsigned char u[16];
    struct gw_mt *m;
    size_t ml = msisdn ? strlen(msisdn) : 0;
    int rc;

    if (ss == NULL || ss->stopping || ss->host[0] == '\0' || text == NULL ||
        text[0] == '\0' || strlen(text) > GW_MT_TEXT_MAX || ml < 8 ||
        ml >= GW_MSISDN_MAX || strspn(msisdn, "0123456789") != ml ||
        kind == NULL || !gw_sms_kind_ok(kind))
        return -1;
    if (ss->n >= GW_MT_INFLIGHT) {
        GW_LOG_WARN(0, "sms refused: %d messages on their way already kind=%s",
                    GW_MT_INFLIGHT, kind);
        return -1;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) return -1;
    m->text = strdup(text);
    m->timer = evtimer_new(gw_server_base(srv), gw_mt_timer, m);
    if (m->text == NULL || m->timer == NULL) {
        if (m->timer) event_free(m->timer);
        free(m->text);
        free(m);
        return -1;
    }
    m->magic = GW_MT_MAGIC;
    m->ss = ss;
    m->ucs2 = ucs2 != 0;
    m->cb = cb;
    m->arg = arg;
    memcpy(m->to, msisdn, ml + 1);
    snprintf(m->kind, sizeof(m->kind), "%s", kind);
    if (id != NULL) {
        snprintf(m->id, sizeof(m->id), "%s", id);
    } else {
        randombytes_buf(u, sizeof(u));
        u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
        u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        snprintf(m->id, sizeof(m->id),
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
                 u[10], u[11], u[12], u[13], u[14], u[15]);
    }
    TAILQ_INSERT_TAIL(&ss->mts, m, link);
    ss->n++;
    GW_LOG_DEBUG(0, "sms queued id=%s kind=%s to=%s coding=%d bytes=%zu", m->id,
                 m->kind, m->to, m->ucs2 ? 2 : 0, strlen(text));
    if (ss->db != NULL && id == NULL) {
        rc = store_sms_insert(ss->db, m->id, m->to, m->kind, m->text,
                              m->ucs2 ? 2 : 0, gw_mt_recorded, m);
        if (rc == STORE_OK) {
            m->phase = GW_MT_RECORDING;
            m->db_pending = 1;
            return 0;
        }
        GW_LOG_WARN(0, "sms not recorded, sending anyway id=%s: %s", m->id,
                    store_strerror(rc));
    }
    {
        struct timeval zero = {0, 0};
        m->phase = GW_MT_WAITING;
        evtimer_add(m->timer, &zero);
    }
    return 0;
}

int
gw_sms_send(struct gw_server *srv, const char *msisdn, const char *text,
            int ucs2, const char *kind, gw_sent_cb *cb, void *arg)
{
    return gw_sms_start(srv, NULL, msisdn, text, ucs2, kind, cb, arg);
}

/* Contract in gw_int.h. */
int
gw_sms_send_row(struct gw_server *srv, const char *id, const char *msisdn,
                const char *text, int ucs2, const char *kind)
{
    if (id == NULL || !store_sms_id_valid(id)) return -1;
    return gw_sms_start(srv, id, msisdn, text, ucs2, kind, NULL, NULL);
}

/* Contract in gw_int.h. */
size_t
gw_sms_room(struct gw_server *srv)
{
    struct gw_sendsms *ss = srv ? srv->sendsms : NULL;
    if (ss == NULL || ss->stopping || ss->host[0] == '\0') return 0;
    return GW_MT_INFLIGHT - ss->n;
}

/* Contract in gw.h. */
int
gw_sms_send_once(struct gw_server *srv, const struct gw_sms_once *rq,
                 gw_sms_outcome_cb *cb, void *arg)
{
    struct gw_sendsms *ss = srv ? srv->sendsms : NULL;
    struct gw_mt *m;
    size_t ml;

    if (rq == NULL || cb == NULL || rq->msisdn == NULL || rq->id == NULL)
        return -1;
    ml = strlen(rq->msisdn);
    if (ss == NULL || ss->stopping || ss->host[0] == '\0' || rq->text == NULL ||
        rq->text[0] == '\0' || strlen(rq->text) > GW_MT_TEXT_MAX || ml < 8 ||
        ml >= GW_MSISDN_MAX || strspn(rq->msisdn, "0123456789") != ml ||
        !store_sms_id_valid(rq->id) || rq->validity_min < 0)
        return -1;
    if (ss->n >= GW_MT_INFLIGHT) return -1;
    m = calloc(1, sizeof(*m));
    if (m == NULL) return -1;
    m->text = strdup(rq->text);
    m->timer = evtimer_new(gw_server_base(srv), gw_mt_timer, m);
    if (m->text == NULL || m->timer == NULL) {
        if (m->timer) event_free(m->timer);
        free(m->text);
        free(m);
        return -1;
    }
    m->magic = GW_MT_MAGIC;
    m->ss = ss;
    m->ucs2 = rq->ucs2 != 0;
    m->once = 1;
    m->validity_min = rq->validity_min;
    m->ocb = cb;
    m->arg = arg;
    memcpy(m->to, rq->msisdn, ml + 1);
    snprintf(m->kind, sizeof(m->kind), "notice");
    snprintf(m->id, sizeof(m->id), "%s", rq->id);
    TAILQ_INSERT_TAIL(&ss->mts, m, link);
    ss->n++;
    /* the row is there already: straight to the first (and only) try */
    {
        struct timeval zero = {0, 0};
        m->phase = GW_MT_WAITING;
        evtimer_add(m->timer, &zero);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Start and stop
 */

/* Every message not yet given its verdict gets -1; requests in flight
 * are dropped; the store's pending callbacks run; then all is freed. */
static void
gw_sendsms_stop(struct gw_server *srv, void *arg)
{
    struct gw_sendsms *ss = arg;
    struct gw_mt *m;

    (void)srv;
    GW_CHECK_MAGIC(ss, GW_SS_MAGIC);
    if (ss->stopping) return;
    ss->stopping = 1;
    for (int i = 0; i < GW_MT_CONNS; i++) {
        /* requests on them are dropped, without a callback */
        ss->conns[i].broken = 1;
        gw_conn_release(&ss->conns[i]);
    }
    TAILQ_FOREACH (m, &ss->mts, link) {
        m->c = NULL;
        if (m->phase == GW_MT_QUEUED) {
            TAILQ_REMOVE(&ss->connq, m, qlink);
            m->phase = GW_MT_WAITING;
        }
        evtimer_del(m->timer);
        if (m->cb != NULL || m->ocb != NULL)
            GW_LOG_WARN(0, "sms not sent at shutdown id=%s kind=%s", m->id,
                        m->kind);
        if (m->phase == GW_MT_POSTING) m->maybe = 1; /* it was on its way */
        m->code = 0;
        gw_mt_verdict(m, -1);
    }
    if (ss->db) store_sms_stop(ss->db); /* db_pending callbacks run */
    while ((m = TAILQ_FIRST(&ss->mts)) != NULL)
        gw_mt_free(m);
}

/* A stop is coming: answers and reports waiting for company are written
 * now; every message not yet done with (its answer from Kannel, its row)
 * is still under way. */
static size_t
gw_sendsms_drain(struct gw_server *srv, void *arg, int first)
{
    struct gw_sendsms *ss = arg;
    (void)srv;
    GW_CHECK_MAGIC(ss, GW_SS_MAGIC);
    if (first && ss->db) store_sms_drain(ss->db);
    return ss->n;
}

int
gw_sendsms_start(struct gw_server *srv)
{
    const struct gw_config *cfg = gw_server_config(srv);
    struct gw_sendsms *ss = calloc(1, sizeof(*ss));
    struct evhttp_uri *u;
    const char *host, *scheme, *path;
    char err[256];

    if (ss == NULL) return -1;
    ss->magic = GW_SS_MAGIC;
    ss->srv = srv;
    ss->cfg = cfg;
    TAILQ_INIT(&ss->mts);
    TAILQ_INIT(&ss->connq);
    srv->sendsms = ss;
    if (gw_dlr_start(srv) != 0) return -1;
    if (cfg->sendsms_url[0] == '\0') {
        /* ss->host stays "": gw_sms_send() refuses every message */
        if (gw_server_worker(srv) == 0)
            GW_LOG_WARN(0, "kannel.sendsms_url is empty: no SMS goes out");
        return gw_server_on_stop(srv, gw_sendsms_stop, ss);
    }
    u = evhttp_uri_parse(cfg->sendsms_url);
    host = u ? evhttp_uri_get_host(u) : NULL;
    scheme = u ? evhttp_uri_get_scheme(u) : NULL;
    if (host == NULL || host[0] == '\0' || scheme == NULL ||
        strcmp(scheme, "http") != 0 || strlen(host) >= sizeof(ss->host)) {
        GW_LOG_ERROR(0, "kannel.sendsms_url must be http://host:port/path");
        if (u) evhttp_uri_free(u);
        return -1;
    }
    snprintf(ss->host, sizeof(ss->host), "%s", host);
    ss->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
    path = evhttp_uri_get_path(u);
    snprintf(ss->path, sizeof(ss->path), "%s",
             path && path[0] ? path : "/cgi-bin/sendsms");
    evhttp_uri_free(u);
    snprintf(ss->hostport, sizeof(ss->hostport), "%s:%d", ss->host, ss->port);

    if (cfg->dlr_url[0]) {
        size_t n = strlen(cfg->dlr_url);
        while (n > 0 && cfg->dlr_url[n - 1] == '/')
            n--;
        snprintf(ss->dlr_base, sizeof(ss->dlr_base), "%.*s/kannel/dlr", (int)n,
                 cfg->dlr_url);
    } else if (gw_server_worker(srv) == 0) {
        GW_LOG_WARN(0, "kannel.dlr_url is empty: no delivery reports asked");
    }
    if (cfg->kannel_secret[0]) {
        /* Percent-encoded for the query, and each '%' doubled: Kannel
         * reads "%X" in a dlr-url as an escape code and "%%" as '%'. */
        char enc[sizeof(ss->key) / 2];
        size_t o = 0;
        if (gw_pct_encode((const unsigned char *)cfg->kannel_secret,
                          strlen(cfg->kannel_secret), enc, sizeof(enc)) < 0) {
            GW_LOG_ERROR(0, "kannel.secret is too long for a dlr-url");
            return -1;
        }
        for (const char *p = enc; *p; p++) {
            if (*p == '%') ss->key[o++] = '%';
            ss->key[o++] = *p;
        }
        ss->key[o] = '\0';
    }
    if (gw_server_on_stop(srv, gw_sendsms_stop, ss) != 0 ||
        gw_server_on_drain(srv, gw_sendsms_drain, ss) != 0)
        return -1;
    if (cfg->pg_dsn[0] == '\0') return 0;

    long tmo = cfg->pg_timeout_ms;
    if (tmo > cfg->request_timeout_ms * 3 / 4)
        tmo = cfg->request_timeout_ms * 3 / 4; /* a DLR is answered in time */
    /* PostgreSQL restarting or failing over: a report or an opt-out waits
     * for the pool within its deadline (answered in time all the same); a
     * message's row waits postgres.wait_ms before the message leaves */
    struct store_sms_config sc = {
        .dsn = cfg->pg_dsn,
        .pool = (int)cfg->pg_sms_pool,
        .timeout_ms = (int)(tmo > 0 ? tmo : 1),
        .wait_ms = (int)cfg->pg_wait_ms,
        .linger_ms = (int)cfg->pg_sms_linger_ms,
    };
    ss->db = store_sms_new(&sc, gw_server_base(srv), err, sizeof(err));
    if (ss->db == NULL) {
        GW_LOG_ERROR(0, "postgres (sms): %s", err);
        return -1;
    }
    if (store_sms_start(ss->db) != STORE_OK) return -1;
    return gw_server_worker(srv) == 0 ? gw_held_start(srv) : 0;
}

/* Contract in gw_int.h. */
struct store_sms *
gw_sendsms_db(struct gw_server *srv)
{
    return srv->sendsms ? srv->sendsms->db : NULL;
}

void
gw_sendsms_fini(struct gw_server *srv)
{
    struct gw_sendsms *ss = srv->sendsms;
    if (ss == NULL) return;
    gw_held_fini(srv);
    gw_sendsms_stop(srv, ss);
    store_sms_free(ss->db);
    ss->magic = 0;
    free(ss);
    srv->sendsms = NULL;
}
