/*
 * gw_held.c -- held SMS: rows written with hold_state 'held' (an officer's
 * decision, held for the undo window, 005_review.sql) leave once send_after has
 * passed.  Worker 0 looks every review.sms_poll_ms: one statement, in its
 * own committed transaction, marks the due rows 'sending' and returns
 * them, and only then are they handed to sendsms -- so a row is sent at
 * most once whatever crashes, and an undo that comes after the claim finds
 * nothing to cancel.  A row claimed by a worker that dies before sendsms
 * is never sent (tries stays 0: visible in sms_out).  The messages go
 * through gw_sendsms.c (gw_sms_send_row(): the row is there, it is not
 * written again), never more than it has room for.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_int.h"
#include "store/store.h"

#define GW_HELD_MAGIC 0x484c4453u

/* Worker 0's: an owner's pool, the poll timer, a claim out. */
struct gw_held {
    unsigned magic;
    struct gw_server *srv;
    const struct gw_config *cfg;
    struct store_pool *db;
    struct event *timer;
    int busy;
    int stopping;
};

/* One per worker process (worker 0 only), like the notices dispatcher. */
static struct gw_held *gw_held_the;

#define GW_HELD_BATCH 100 /* rows claimed per look */

static const char gw_held_claim_sql[] =
    "UPDATE sms_out s SET hold_state = 'sending' WHERE s.id IN ("
    " SELECT id FROM sms_out WHERE hold_state = 'held' AND send_after <= now()"
    " ORDER BY send_after LIMIT $1::int FOR UPDATE SKIP LOCKED)"
    " RETURNING s.id, s.msisdn, s.text, s.coding, s.kind";

static void gw_held_arm(struct gw_held *hd);

static void
gw_held_claimed(int status, const struct store_tx_result *res, void *arg)
{
    struct gw_held *hd = arg;
    GW_CHECK_MAGIC(hd, GW_HELD_MAGIC);
    hd->busy = 0;
    if (hd->stopping) return;
    if (status != STORE_OK) {
        GW_LOG_WARN(0, "held sms: claim failed: %s%s", store_strerror(status),
                    store_tx_unknown(res) ? " (may have committed)" : "");
        gw_held_arm(hd);
        return;
    }
    int n = store_tx_ntuples(res, 0);
    for (int i = 0; i < n; i++) {
        const char *id = store_tx_value(res, 0, i, 0);
        const char *to = store_tx_value(res, 0, i, 1);
        const char *text = store_tx_value(res, 0, i, 2);
        const char *coding = store_tx_value(res, 0, i, 3);
        const char *kind = store_tx_value(res, 0, i, 4);
        AN(id && to && text && coding && kind);
        if (gw_sms_send_row(hd->srv, id, to, text, strcmp(coding, "2") == 0,
                            kind) != 0)
            GW_LOG_WARN(0, "held sms: claimed but not sent id=%s kind=%s", id,
                        kind);
        else
            GW_LOG_INFO(0, "held sms: sending id=%s kind=%s", id, kind);
    }
    if (n == GW_HELD_BATCH) {
        /* more may be due: look again at once */
        struct timeval zero = {0, 0};
        evtimer_add(hd->timer, &zero);
        return;
    }
    gw_held_arm(hd);
}

static void
gw_held_tick(evutil_socket_t fd, short what, void *arg)
{
    struct gw_held *hd = arg;
    char limit[16];
    (void)fd;
    (void)what;
    GW_CHECK_MAGIC(hd, GW_HELD_MAGIC);
    if (hd->stopping || hd->busy) return;
    size_t room = gw_sms_room(hd->srv);
    if (room == 0) {
        gw_held_arm(hd);
        return;
    }
    snprintf(limit, sizeof(limit), "%zu",
             room < GW_HELD_BATCH ? room : (size_t)GW_HELD_BATCH);
    struct store_tx tx = {.officer = "", .role = "", .districts = "", .n = 1};
    tx.stmt[0].sql = gw_held_claim_sql;
    tx.stmt[0].nparams = 1;
    tx.stmt[0].params[0] = limit;
    int rc = store_pool_tx(hd->db, &tx, gw_held_claimed, hd);
    if (rc != STORE_OK) {
        GW_LOG_DEBUG(0, "held sms: no claim now: %s", store_strerror(rc));
        gw_held_arm(hd);
        return;
    }
    hd->busy = 1;
}

static void
gw_held_arm(struct gw_held *hd)
{
    long ms = hd->cfg->held_poll_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(hd->timer, &tv);
}

static void
gw_held_stop(struct gw_server *srv, void *arg)
{
    struct gw_held *hd = arg;
    (void)srv;
    GW_CHECK_MAGIC(hd, GW_HELD_MAGIC);
    if (hd->stopping) return;
    hd->stopping = 1;
    if (hd->timer) evtimer_del(hd->timer);
    if (hd->db) store_pool_stop(hd->db); /* a claim out is called back */
}

/* Contract in gw_int.h. */
int
gw_held_start(struct gw_server *srv)
{
    const struct gw_config *cfg = gw_server_config(srv);
    struct gw_held *hd;
    char err[256];
    /* PostgreSQL restarting or failing over: a claim waits for the pool
     * (postgres.wait_ms) and still has its whole deadline after it */
    struct store_pool_config pc = {
        .dsn = cfg->pg_dsn,
        .pool = 1,
        .timeout_ms = (int)(cfg->pg_timeout_ms + cfg->pg_wait_ms),
        .wait_ms = (int)cfg->pg_wait_ms,
    };

    AZ(gw_held_the != NULL);
    if ((hd = calloc(1, sizeof(*hd))) == NULL) return -1;
    hd->magic = GW_HELD_MAGIC;
    hd->srv = srv;
    hd->cfg = cfg;
    gw_held_the = hd;
    hd->db = store_pool_new(&pc, gw_server_base(srv), err, sizeof(err));
    if (hd->db == NULL) {
        GW_LOG_ERROR(0, "postgres (held sms): %s", err);
        return -1;
    }
    hd->timer = evtimer_new(gw_server_base(srv), gw_held_tick, hd);
    if (hd->timer == NULL || store_pool_start(hd->db) != STORE_OK ||
        gw_server_on_stop(srv, gw_held_stop, hd) != 0)
        return -1;
    gw_held_arm(hd);
    return 0;
}

/* Contract in gw_int.h. */
void
gw_held_fini(struct gw_server *srv)
{
    struct gw_held *hd = gw_held_the;
    if (hd == NULL) return;
    GW_CHECK_MAGIC(hd, GW_HELD_MAGIC);
    gw_held_stop(srv, hd);
    store_pool_free(hd->db);
    if (hd->timer) event_free(hd->timer);
    hd->magic = 0;
    free(hd);
    gw_held_the = NULL;
}
