/*
 * gw_dlr.c -- what comes back about SMS out: Kannel's delivery reports
 * (GET /kannel/dlr, asked for by the dlr-url gw_sendsms.c gives every
 * message), and two writes of the same sms_out pool that the SMS
 * dialogues make: STOP/START (the opt-out of programme notices) and
 * replies of interest to a notice.
 *
 * A report is checked (key, one of each parameter, our id, a Kannel DLR
 * type, Unix seconds) and then answered only once the database has it:
 * 200 when recorded (or when it changed nothing: the lattice of 002_sms.sql
 * moves only forward), 404 for a message we do not know, 503 when the
 * database is away -- after waiting for it within the report's deadline
 * (postgres.wait_ms: a restart or a failover of PostgreSQL costs a report
 * some delay, not its row).  store_sms_dlr() may put it in one transaction
 * with other reports and answers (store_sms.c); the reply waits for its
 * own.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_int.h"
#include "store/store.h"

#define GW_DLR_ANSWER_MAX 1024 /* bytes kept of the SMSC's receipt */

/* ------------------------------------------------------------------------
 * GET /kannel/dlr?id=ID&status=TYPE&answer=RECEIPT&ts=UNIX[&key=SECRET]
 */

/* Copy s[0..len) into out (cap > 0) as valid UTF-8: every byte that does
 * not start a well-formed sequence, and every control character, becomes
 * '?'; cut at a character boundary to fit. */
static void
gw_dlr_utf8(const char *s, size_t len, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;

    while (i < len) {
        size_t n = 1;
        unsigned c = p[i];
        if (c >= 0xC2 && c <= 0xDF)
            n = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 3;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 4;
        int ok = c >= 0x20 && c != 0x7F && (c < 0x80 || n > 1) && i + n <= len;
        for (size_t k = 1; ok && k < n; k++)
            if ((p[i + k] & 0xC0) != 0x80) ok = 0;
        /* overlong and surrogate forms */
        if (ok && n == 3 &&
            ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F)))
            ok = 0;
        if (ok && n == 4 &&
            ((c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F)))
            ok = 0;
        if (!ok) n = 1;
        if (o + (ok ? n : 1) >= cap) break;
        if (ok)
            memcpy(out + o, s + i, n);
        else
            out[o] = '?';
        o += ok ? n : 1;
        i += n;
    }
    out[o] = '\0';
}

static int
gw_dlr_type_ok(long t)
{
    return t == 1 || t == 2 || t == 4 || t == 8 || t == 16 || t == (2 | 0x20) ||
           t == (2 | 0x40);
}

/* A report on its way to the database. */
struct gw_dlr {
    struct gw_req *r;
    int type;
    char id[40];
    char answer[GW_DLR_ANSWER_MAX + 1];
};

/* The metric's name of a report type (gw_dlr_type_ok()). */
static const char *
gw_dlr_type_name(int type)
{
    switch (type & 0x1f) {
    case 1:
        return "delivered";
    case 4:
        return "buffered";
    case 8:
        return "submitted";
    case 16:
        return "rejected";
    default:
        return "undelivered";
    }
}

static void
gw_dlr_stored(int status, const struct store_sms_result *res, void *arg)
{
    struct gw_dlr *d = arg;
    struct gw_req *r = d->r;

    switch (status) {
    case STORE_OK:
        gw_metric_inc(GW_M_DLR, gw_dlr_type_name(d->type), NULL);
        /* debug: sms_out has it, and a notice brings two a message */
        GW_RLOG(GW_LEVEL_DEBUG, r, 0, "dlr id=%s state=%d changed=%d", d->id,
                res->dlr_state, res->changed);
        gw_reply_text(r, 200, "text/plain; charset=utf-8", "ok\n");
        break;
    case STORE_ENOTFOUND:
        GW_RLOG(GW_LEVEL_WARN, r, 0, "dlr for a message we do not know id=%s",
                d->id);
        gw_reply_error(r, 404, "no such message");
        break;
    default:
        GW_RLOG(GW_LEVEL_WARN, r, 0, "dlr not recorded id=%s: %s", d->id,
                res->errstr);
        gw_reply_error(r, 503, "database unavailable");
        break;
    }
}

void
gw_kannel_dlr_handle(struct gw_req *r)
{
    static const char *const once[] = {"id", "status", "answer", "ts", "key"};
    struct store_sms *db = gw_sendsms_db(r->srv);
    const struct gw_config *cfg = gw_server_config(r->srv);
    const struct gw_params *ps;
    const struct gw_param *id, *st, *ans, *ts, *k;
    long long when = -1;
    struct gw_dlr *d;
    char *end = NULL;
    long type;
    int rc;

    if (gw_req_kannel_or_404(r) < 0) return;
    if (gw_req_query_or_400(r, &ps) < 0) return;
    k = gw_params_get(ps, "key");
    if (gw_req_key_or_403(r, cfg->kannel_secret, k ? k->val : "",
                          k ? k->vlen : 0) < 0)
        return;
    for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++)
        if (gw_params_count(ps, once[i]) > 1) {
            gw_reply_error(r, 400, "a dlr parameter given twice");
            return;
        }
    id = gw_params_get(ps, "id");
    st = gw_params_get(ps, "status");
    ans = gw_params_get(ps, "answer");
    ts = gw_params_get(ps, "ts");
    if (id == NULL || id->vlen != strlen(id->val) ||
        !store_sms_id_valid(id->val)) {
        gw_reply_error(r, 400, "dlr needs the id of one of our messages");
        return;
    }
    type = st && st->vlen > 0 && st->vlen < 4 &&
                   strspn(st->val, "0123456789") == st->vlen
               ? strtol(st->val, &end, 10)
               : -1;
    if (!gw_dlr_type_ok(type)) {
        gw_reply_error(r, 400,
                       "dlr status must be a Kannel DLR type "
                       "(1, 2, 4, 8, 16)");
        return;
    }
    if (ts != NULL && ts->vlen > 0) {
        if (ts->vlen > 12 || strspn(ts->val, "0123456789") != ts->vlen) {
            gw_reply_error(r, 400, "dlr ts must be Unix seconds");
            return;
        }
        when = strtoll(ts->val, NULL, 10);
    }
    if (db == NULL) {
        GW_RLOG(GW_LEVEL_DEBUG, r, 0,
                "dlr not recorded (no database) id=%s "
                "status=%ld",
                id->val, type);
        gw_reply_text(r, 200, "text/plain; charset=utf-8", "ok\n");
        return;
    }
    d = gw_req_alloc(r, sizeof(*d));
    if (d == NULL) {
        gw_reply_error(r, 500, "out of memory");
        return;
    }
    d->r = r;
    d->type = (int)type;
    memcpy(d->id, id->val, id->vlen + 1);
    if (ans != NULL)
        gw_dlr_utf8(ans->val, ans->vlen, d->answer, sizeof(d->answer));
    rc = store_sms_dlr(db, d->id, (int)type, d->answer, when, gw_dlr_stored, d);
    if (rc != STORE_OK) {
        GW_RLOG(GW_LEVEL_WARN, r, 0, "dlr not recorded id=%s: %s", d->id,
                store_strerror(rc));
        gw_reply_error(r, 503, "database unavailable");
    }
}

static const struct gw_route gw_dlr_route = {
    "/kannel/dlr", 0, GW_METHOD_GET, "kannel_dlr", gw_kannel_dlr_handle, NULL,
};

/* Contract in gw_int.h. */
int
gw_dlr_start(struct gw_server *srv)
{
    return gw_server_route(srv, &gw_dlr_route);
}

/* STOP / START: the opt-out for programme notices. */
struct gw_optout {
    gw_sent_cb *cb;
    void *arg;
    int out;
};

static void
gw_optout_done(int status, const struct store_sms_result *res, void *arg)
{
    struct gw_optout *o = arg;
    (void)res;
    if (status != STORE_OK)
        GW_LOG_WARN(0, "sms opt-out not recorded: %s", store_strerror(status));
    else
        gw_metric_inc(GW_M_OPTOUTS, o->out ? "stop" : "start", NULL);
    o->cb(status == STORE_OK ? 0 : -1, o->arg);
    free(o);
}

int
gw_sms_optout(struct gw_server *srv, const char *msisdn, int out,
              gw_sent_cb *cb, void *arg)
{
    struct store_sms *db = gw_sendsms_db(srv);
    if (db == NULL || cb == NULL) return -1;
    struct gw_optout *o = malloc(sizeof(*o));
    if (o == NULL) return -1;
    o->cb = cb;
    o->arg = arg;
    o->out = out;
    if (store_sms_optout(db, msisdn, out, gw_optout_done, o) != STORE_OK) {
        free(o);
        return -1;
    }
    return 0;
}

/* A reply of interest to a programme notice. */
struct gw_interest {
    gw_interest_cb *cb;
    void *arg;
};

static void
gw_interest_done(int status, const struct store_sms_result *res, void *arg)
{
    struct gw_interest *o = arg;
    if (status != STORE_OK)
        GW_LOG_WARN(0, "interest reply not recorded: %s", res->errstr);
    o->cb(status == STORE_OK ? 0 : -1, status == STORE_OK ? res->interest : 0,
          o->arg);
    free(o);
}

int
gw_sms_interest(struct gw_server *srv, const char *msisdn, const char *word,
                gw_interest_cb *cb, void *arg)
{
    struct store_sms *db = gw_sendsms_db(srv);
    if (db == NULL || cb == NULL) return -1;
    struct gw_interest *o = malloc(sizeof(*o));
    if (o == NULL) return -1;
    o->cb = cb;
    o->arg = arg;
    if (store_sms_interest(db, msisdn, word, gw_interest_done, o) != STORE_OK) {
        free(o);
        return -1;
    }
    return 0;
}
