/*
 * gw_remind.c -- one SMS to a caller who left a registration part undone.
 *
 * When a USSD step's save wins and the caller has a part of a registration
 * to do (flow_part_todo()), "DUE MSISDN" goes onto the Redis list REMIND
 * (DUE: now + sessions.remind_after) -- on a dial, on the first answer of
 * a part and when a part is saved; not at every step.  Each worker looks
 * at the head of the list every sessions.remind_tick_ms; once it is due,
 * it reads the caller's session, and the parts the number saved on any
 * channel (parts:MSISDN, merged as a dial merges them: a part done by SMS
 * since is not reminded about):
 *
 *   nothing left to do                       shifted off
 *   a step since (the last one less than     pushed again, due remind_after
 *   remind_after ago)                        after that step; shifted off
 *   the quiet hours (sessions.remind_quiet_  pushed again, due when they
 *   start.._end, local time)                 end; shifted off
 *   otherwise                                the caller's reminder record
 *                                            (REMIND:MSISDN, "d=DAY p=PARTS")
 *                                            decides: not today yet, not this
 *                                            part yet -> compare-and-set it,
 *                                            and the SMS goes to whoever won
 *
 * so at most one SMS a day reaches a number, and one for each part (a part
 * reminded about is never again).  A crash between the record and the SMS
 * loses that reminder rather than sending it twice.  Redis down: the item
 * stays at the head and is looked at again on the next tick.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gw_ussd_int.h"

#define GW_REMIND "remind"

struct gw_remind {
    struct gw_ussd *u;
    struct event *ev;
    int busy;               /* an item is being looked at */
    struct gw_flows *flows; /* a reference, while busy */
    char item[64];          /* the head, as read */
    size_t item_len;
    char msisdn[GW_MSISDN_MAX];
    char skey[80]; /* s:ussd:MSISDN */
    char rkey[80]; /* remind:MSISDN */
    char pkey[GW_PARTS_KEY_MAX];
    unsigned part; /* to remind about */
    char lang[FLOW_LANG_MAX];
    struct gw_env env; /* the caller's envelope, decoded */
    struct flow_state st;
    char again[64]; /* the item pushed again */
};

static void gw_remind_tick(evutil_socket_t fd, short what, void *arg);

/* Done with the head (or unable to go on): free to look again. */
static void
gw_remind_idle(struct gw_remind *rm)
{
    gw_flows_unref(rm->flows);
    rm->flows = NULL;
    rm->busy = 0;
}

static void
gw_remind_shifted(int status, void *arg)
{
    struct gw_remind *rm = arg;
    gw_remind_idle(rm);
    /* more may be due: look again at once */
    if (status == SESS_OK) gw_remind_tick(-1, 0, rm);
}

/* Take the head off (only if it is still what was read). */
static void
gw_remind_shift(struct gw_remind *rm)
{
    if (sess_shift(rm->u->srv->sess, GW_REMIND, rm->item, rm->item_len,
                   gw_remind_shifted, rm) != SESS_OK)
        gw_remind_idle(rm);
}

static void
gw_remind_pushed(int status, void *arg)
{
    struct gw_remind *rm = arg;
    if (status != SESS_OK) {
        gw_remind_idle(rm);
        return;
    }
    gw_remind_shift(rm);
}

static void
gw_remind_cas_cb(int status, uint64_t version, void *arg)
{
    struct gw_remind *rm = arg;
    (void)version;
    if (status == SESS_ECONFLICT) {
        /* another worker took this reminder */
        gw_remind_shift(rm);
        return;
    }
    if (status != SESS_OK) {
        gw_remind_idle(rm);
        return;
    }
    struct flow_out out;
    char to[GW_MSISDN_MAX];
    flow_render_message(rm->flows->set, rm->lang, FLOW_CH_SMS, "sms_remind",
                        &out);
    if (gw_sms_send(rm->u->srv, rm->msisdn, out.text, out.enc == FLOW_ENC_UCS2,
                    "reminder", NULL, NULL) == 0) {
        gw_metric_inc(GW_M_SESSIONS, "reminded", NULL);
        GW_LOG_INFO(0, "reminder sent to=%s part=%u",
                    gw_log_msisdn(to, sizeof(to), rm->msisdn), rm->part);
    } else {
        GW_LOG_WARN(0, "reminder not sent to=%s part=%u",
                    gw_log_msisdn(to, sizeof(to), rm->msisdn), rm->part);
    }
    gw_remind_shift(rm);
}

/* The caller's reminder record: "d=DAY p=PARTS" (DAY: days since 1970 in
 * flows.utc_offset's time, PARTS: a bit per part reminded about). */
static void
gw_remind_record_cb(int status, const char *value, size_t len, uint64_t version,
                    void *arg)
{
    struct gw_remind *rm = arg;
    const struct gw_config *cfg = rm->u->cfg;
    long long day = -1;
    unsigned parts = 0;
    char buf[64];
    if (status != SESS_OK && status != SESS_ENOTFOUND) {
        gw_remind_idle(rm);
        return;
    }
    if (status == SESS_OK) {
        snprintf(buf, sizeof(buf), "%.*s", (int)len, value);
        if (sscanf(buf, "d=%lld p=%u", &day, &parts) != 2) day = -1;
    }
    long long today = ((long long)time(NULL) + cfg->utc_offset) / 86400;
    unsigned bit = 1u << (rm->part - 1);
    if (day == today || (parts & bit)) {
        gw_remind_shift(rm);
        return;
    }
    int n = snprintf(buf, sizeof(buf), "d=%lld p=%u", today, parts | bit);
    if (sess_cas(
            rm->u->srv->sess, rm->rkey, version, buf, (size_t)n,
            (unsigned)(cfg->offer_window > 86400 ? cfg->offer_window : 86400) *
                30,
            gw_remind_cas_cb, rm) != SESS_OK)
        gw_remind_idle(rm);
}

static void gw_remind_decide(struct gw_remind *rm);

/* The parts the number saved on any channel, merged into its session. */
static void
gw_remind_parts_cb(int status, const char *value, size_t len, uint64_t version,
                   void *arg)
{
    struct gw_remind *rm = arg;
    unsigned bits = 0;
    char lang[FLOW_LANG_MAX] = "";
    (void)version;
    if (status != SESS_OK && status != SESS_ENOTFOUND) {
        gw_remind_idle(rm);
        return;
    }
    if (status == SESS_OK) (void)gw_parts_parse(value, len, &bits, lang);
    (void)gw_parts_merge(rm->flows->set, &rm->st, bits, lang);
    gw_remind_decide(rm);
}

/* The caller's session, once the head is due. */
static void
gw_remind_session_cb(int status, const char *value, size_t len,
                     uint64_t version, void *arg)
{
    struct gw_remind *rm = arg;
    struct gw_ussd *u = rm->u;
    (void)version;
    if (status == SESS_ENOTFOUND) {
        gw_remind_shift(rm); /* gone: nothing kept to go on from */
        return;
    }
    if (status != SESS_OK) {
        gw_remind_idle(rm);
        return;
    }
    memset(&rm->st, 0, sizeof(rm->st));
    if (gw_env_decode(u, gw_records_keys(u->srv), rm->skey, value, len,
                      &rm->env) < 0 ||
        flow_state_decode(&rm->st, rm->env.st, strlen(rm->env.st)) != 0) {
        gw_remind_shift(rm);
        return;
    }
    if (sess_get(u->srv->sess, rm->pkey, gw_remind_parts_cb, rm) != SESS_OK)
        gw_remind_idle(rm);
}

/* The caller's session and parts: remind, put off, or drop the item. */
static void
gw_remind_decide(struct gw_remind *rm)
{
    struct gw_ussd *u = rm->u;
    unsigned total;
    if ((rm->part = flow_part_todo(rm->flows->set, &rm->st, &total)) == 0 ||
        rm->part > 8) {
        gw_remind_shift(rm);
        return;
    }
    int64_t now = (int64_t)time(NULL), due = 0;
    int64_t sod = (now + u->cfg->utc_offset) % 86400; /* local time of day */
    int64_t qs = u->cfg->remind_quiet_start * 3600;
    int64_t qe = u->cfg->remind_quiet_end * 3600;
    if (now - rm->env.t < u->cfg->remind_after)
        /* a step since it was queued: due again after that step */
        due = rm->env.t + u->cfg->remind_after;
    else if (qs < qe && sod >= qs && sod < qe)
        /* the quiet hours (by default 00:00-06:00, as for notices): due
         * again when they end */
        due = now - sod + qe;
    if (due != 0) {
        int n = snprintf(rm->again, sizeof(rm->again), "%lld %s",
                         (long long)due, rm->msisdn);
        if (sess_push(u->srv->sess, GW_REMIND, rm->again, (size_t)n,
                      gw_remind_pushed, rm) != SESS_OK)
            gw_remind_idle(rm);
        return;
    }
    snprintf(rm->lang, sizeof(rm->lang), "%s", rm->st.lang);
    if (sess_get(u->srv->sess, rm->rkey, gw_remind_record_cb, rm) != SESS_OK)
        gw_remind_idle(rm);
}

static void
gw_remind_peek_cb(int status, const char *value, size_t len, uint64_t version,
                  void *arg)
{
    struct gw_remind *rm = arg;
    long long due;
    char msisdn[32];
    (void)version;
    if (status != SESS_OK || len >= sizeof(rm->item)) {
        if (status == SESS_OK) GW_LOG_WARN(0, "reminder queue: item too long");
        gw_remind_idle(rm);
        return;
    }
    memcpy(rm->item, value, len);
    rm->item[len] = '\0';
    rm->item_len = len;
    if (sscanf(rm->item, "%lld %31s", &due, msisdn) != 2 ||
        strlen(msisdn) >= sizeof(rm->msisdn)) {
        GW_LOG_WARN(0, "reminder queue: unreadable item dropped");
        gw_remind_shift(rm);
        return;
    }
    if (due > (long long)time(NULL)) {
        gw_remind_idle(rm); /* the head is not due: nothing behind it is */
        return;
    }
    memcpy(rm->msisdn, msisdn, strlen(msisdn) + 1); /* fits: checked */
    snprintf(rm->skey, sizeof(rm->skey), "s:ussd:%s", rm->msisdn);
    snprintf(rm->rkey, sizeof(rm->rkey), "remind:%s", rm->msisdn);
    gw_parts_key(rm->msisdn, rm->pkey, sizeof(rm->pkey));
    if (sess_get(rm->u->srv->sess, rm->skey, gw_remind_session_cb, rm) !=
        SESS_OK)
        gw_remind_idle(rm);
}

static void
gw_remind_tick(evutil_socket_t fd, short what, void *arg)
{
    struct gw_remind *rm = arg;
    struct gw_ussd *u = rm->u;
    (void)fd;
    (void)what;
    if (rm->busy || !sess_connected(u->srv->sess) || u->flows == NULL) return;
    rm->busy = 1;
    rm->flows = u->flows;
    rm->flows->refs++;
    if (sess_peek(u->srv->sess, GW_REMIND, gw_remind_peek_cb, rm) != SESS_OK)
        gw_remind_idle(rm);
}

static void
gw_remind_queued(int status, void *arg)
{
    (void)arg;
    if (status != SESS_OK)
        GW_LOG_WARN(0, "reminder not queued: %s", sess_strerror(status));
}

int
gw_remind_push(struct gw_ussd *u, const char *msisdn, int64_t due)
{
    char item[64];
    int n = snprintf(item, sizeof(item), "%lld %s", (long long)due, msisdn);
    if (n < 0 || (size_t)n >= sizeof(item)) return -1;
    return sess_push(u->srv->sess, GW_REMIND, item, (size_t)n, gw_remind_queued,
                     NULL) == SESS_OK
               ? 0
               : -1;
}

int
gw_remind_start(struct gw_ussd *u)
{
    const struct gw_config *cfg = u->cfg;
    if (cfg->remind_after <= 0) return 0;
    struct gw_remind *rm = calloc(1, sizeof(*rm));
    if (rm == NULL) return -1;
    rm->u = u;
    u->remind = rm;
    rm->ev =
        event_new(gw_server_base(u->srv), -1, EV_PERSIST, gw_remind_tick, rm);
    struct timeval tv = {cfg->remind_tick_ms / 1000,
                         (cfg->remind_tick_ms % 1000) * 1000};
    return rm->ev != NULL && event_add(rm->ev, &tv) == 0 ? 0 : -1;
}

void
gw_remind_stop(struct gw_ussd *u)
{
    if (u->remind != NULL && u->remind->ev != NULL) event_del(u->remind->ev);
}

void
gw_remind_free(struct gw_ussd *u)
{
    if (u->remind == NULL) return;
    if (u->remind->ev != NULL) event_free(u->remind->ev);
    free(u->remind);
    u->remind = NULL;
}
