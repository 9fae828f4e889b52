/*
 * ntc_dispatch.c -- the outbox dispatcher: notices' SMS to Kannel, at most
 * once each, at the operator's pace, inside the send window.
 *
 * One loop per worker that dispatches (notices.dispatch, worker 0 only;
 * several daemons may run it at once: claims skip each other's rows).  A
 * turn: where the window stands (notices_window_at() on our clock); one
 * transaction that starts approved notices and resumes those the window
 * paused (or pauses sending ones once it closes), sweeps now and then
 * (notice_sweep(): claimed too long -> unknown, no final report ->
 * expired, completion) and claims a batch (notice_claim(), 008_notices.sql:
 * opt-out and cap checked again, sms_out rows written).  Only after that
 * transaction has committed does any of its messages go to Kannel, one
 * try each (gw_sms_send_once()), as the token bucket allows.  Kannel's
 * answers are written back with notice_sent(), in batches: one
 * transaction at a time, and the answers that came while it was out go
 * together in the next (one statement over arrays, in the order of the
 * SMS ids, the order delivery reports lock them in): accepted, failed (4xx),
 * requeue (nothing was sent: refused connection, 503 -- the bucket then
 * holds a while) or unknown (it may have left: never again).  A message
 * whose window closed before its turn goes back to the queue unsent.
 *
 * What a crash leaves: rows claimed and not yet answered stay 'claimed'
 * until the sweep, notices.lost_after_s later, calls them 'unknown' -- so
 * a kill -9 between commit and answer can lose a message (counted) but
 * never send one twice.  The claim batch is kept to about a second of
 * sending so that few rows are in that state at any time.
 *
 * PostgreSQL restarting or failing over: the pool waits for a connection
 * (postgres.wait_ms) rather than failing.  A batch of answers that still
 * fails for want of the server (not connected, or its deadline passed)
 * is kept and written again NTC_SAVE_AGAIN later, until it goes
 * through or the daemon stops: notice_sent() changes only a row still
 * claimed under that SMS id (or an 'unknown' one to its final answer), so
 * writing an answer twice is harmless, and dropping it would turn a
 * message Kannel took into 'unknown' and one it never sent ('requeue')
 * into a recipient lost.  Only answers are written again -- a message is
 * never handed to Kannel twice.
 *
 * The clock: wall time, or for tests REMIGATE_TEST_NOW (Unix seconds):
 * the dispatcher's clock then starts there and runs at the real pace.
 * Only the send window and send_after read it; PostgreSQL's now() still
 * stamps the rows.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "gateway/gw.h"
#include "gateway/gw_assert.h"
#include "notices/notices.h"
#include "store/store.h"

#define NTC_DISP_MAGIC 0x4e544344u
#define NTC_ITEM_MAGIC 0x4e544349u
#define NTC_SAVE_MAGIC 0x4e545356u
#define NTC_INFLIGHT   64   /* messages at Kannel or being saved, at most */
#define NTC_SWEEP_MS   5000 /* between sweeps */
#define NTC_HOLD_503   1000 /* Kannel said 503: nothing for this long */
#define NTC_HOLD_DOWN  3000 /* Kannel did not answer the connection */
#define NTC_SAVE_AGAIN 500  /* ms: answers not written, written again */
#define NTC_BODY_MAX   (NOTICES_TEXT_MAX + 1)
#define NTC_TICK_MS    20 /* pace: a tick's worth of tokens leaves at once */

enum ntc_item_phase {
    NTC_ITEM_WAITING, /* claimed and committed, waiting for tokens */
    NTC_ITEM_SENDING, /* at Kannel */
    NTC_ITEM_SAVING   /* Kannel's answer on its way to the outbox */
};

struct ntc_disp;

struct ntc_item {
    unsigned magic;
    struct ntc_disp *d;
    enum ntc_item_phase phase;
    char outbox[24];
    char sms[40];
    char msisdn[24];
    char *body;
    int ucs2;
    unsigned parts;
    const char *outcome; /* SAVING: notice_sent()'s outcome */
    char reason[32];     /* SAVING: its reason ("" none) */
    TAILQ_ENTRY(ntc_item) link;
};

TAILQ_HEAD(ntc_items, ntc_item);

struct ntc_disp {
    unsigned magic;
    struct gw_server *srv;
    const struct gw_config *cfg;
    struct store_pool *pool;
    struct event *timer;
    struct notices_window win;
    struct notices_bucket bucket;
    long long clock_offset; /* REMIGATE_TEST_NOW - time(NULL) */
    char worker[64];        /* claimed_by */
    int claiming;           /* the claim transaction is out */
    int claim_stmt;         /* its claim's statement (-1: none) */
    int claim_short;        /* the last claim found fewer than it asked */
    int claim_rows;         /* what it asked for */
    int saving;             /* a batch of answers is out */
    int window_open;        /* as the last turn saw it, -1 not yet */
    long long last_sweep_ms;
    long long save_again_ms; /* answers not written wait until then */
    size_t busy;             /* items SENDING or SAVING */
    int stopping;
    int draining; /* a stop is coming: nothing new is claimed or sent */
    struct ntc_items waiting; /* claimed, not yet at Kannel */
    struct ntc_items active;  /* SENDING */
    struct ntc_items saves;   /* SAVING, not yet in a batch */
};

/* Answers on their way to the outbox in one transaction. */
struct ntc_saving {
    unsigned magic;
    struct ntc_disp *d;
    int n;
    struct ntc_item *it[NTC_INFLIGHT];
};

/* One dispatcher per worker process; NULL when this worker does not
 * dispatch. */
static struct ntc_disp *ntc_the;

static void ntc_turn(struct ntc_disp *d);

static long long
ntc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long
ntc_now(const struct ntc_disp *d)
{
    return (long long)time(NULL) + d->clock_offset;
}

static void
ntc_schedule(struct ntc_disp *d, long long ms)
{
    struct timeval tv;
    if (d->stopping) return;
    if (ms < 0) ms = 0;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    evtimer_add(d->timer, &tv);
}

static void
ntc_item_free(struct ntc_item *it)
{
    GW_CHECK_MAGIC(it, NTC_ITEM_MAGIC);
    free(it->body);
    it->magic = 0;
    free(it);
}

/* ------------------------------------------------------------------------
 * Kannel's answer, written back
 */

static void ntc_save_flush(struct ntc_disp *d);

static void
ntc_saved(int status, const struct store_tx_result *res, void *arg)
{
    struct ntc_saving *b = arg;
    struct ntc_disp *d = b->d;
    GW_CHECK_MAGIC(b, NTC_SAVE_MAGIC);
    GW_CHECK_MAGIC(d, NTC_DISP_MAGIC);
    d->saving = 0;
    if ((status == STORE_EDOWN || status == STORE_ETIMEDOUT) && !d->stopping) {
        /* the server was away: keep them, first in line, and write them
         * again a little later (notice_sent() is idempotent) */
        GW_LOG_WARN(0, "notice answers not saved yet n=%d: %s; kept", b->n,
                    store_tx_errstr(res));
        for (int i = b->n - 1; i >= 0; i--) {
            GW_CHECK_MAGIC(b->it[i], NTC_ITEM_MAGIC);
            TAILQ_INSERT_HEAD(&d->saves, b->it[i], link);
        }
        b->magic = 0;
        free(b);
        d->save_again_ms = ntc_mono_ms() + NTC_SAVE_AGAIN;
        ntc_schedule(d, NTC_SAVE_AGAIN);
        return;
    }
    for (int i = 0; i < b->n; i++) {
        struct ntc_item *it = b->it[i];
        GW_CHECK_MAGIC(it, NTC_ITEM_MAGIC);
        AN(it->phase == NTC_ITEM_SAVING);
        if (status != STORE_OK)
            /* the row stays 'claimed': the sweep makes it 'unknown' */
            GW_LOG_WARN(0, "notice answer not saved outbox=%s: %s", it->outbox,
                        store_tx_errstr(res));
        else
            GW_LOG_DEBUG(0, "notice outbox=%s now %s", it->outbox,
                         store_tx_value(res, 0, i, 0)
                             ? store_tx_value(res, 0, i, 0)
                             : "?");
        d->busy--;
        ntc_item_free(it);
    }
    b->magic = 0;
    free(b);
    if (d->stopping) return;
    ntc_save_flush(d);
    ntc_schedule(d, 0);
}

/* Append "v" (quoted when q; NULL: NULL) to the array literal in buf. */
static void
ntc_arr_add(char *buf, size_t cap, size_t *o, const char *v, int q)
{
    int n = snprintf(buf + *o, cap - *o, "%s%s%s%s", *o > 1 ? "," : "",
                     v && q ? "\"" : "", v ? v : "NULL", v && q ? "\"" : "");
    AN(n > 0 && (size_t)n < cap - *o);
    *o += (size_t)n;
}

/* With no batch out, send every answer that waits (at most NTC_INFLIGHT:
 * no more are ever SAVING) as one transaction. */
static void
ntc_save_flush(struct ntc_disp *d)
{
    /* every value is a number, a UUID or one of our own words */
    char arr[4][NTC_INFLIGHT * 48 + 4];
    size_t o[4] = {1, 1, 1, 1};
    struct ntc_item *it;
    struct ntc_saving *b;
    struct store_tx tx;
    int rc;

    if (d->saving || d->stopping || TAILQ_EMPTY(&d->saves)) return;
    if (ntc_mono_ms() < d->save_again_ms) return; /* a turn writes them */
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        GW_LOG_WARN(0, "notice answers not saved: out of memory");
        ntc_schedule(d, 50); /* they wait in saves for the next turn */
        return;
    }
    b->magic = NTC_SAVE_MAGIC;
    b->d = d;
    while ((it = TAILQ_FIRST(&d->saves)) != NULL && b->n < NTC_INFLIGHT) {
        int k = b->n++;
        TAILQ_REMOVE(&d->saves, it, link);
        while (k > 0 && strcmp(b->it[k - 1]->sms, it->sms) > 0) {
            b->it[k] = b->it[k - 1];
            k--;
        }
        b->it[k] = it;
    }
    for (int i = 0; i < 4; i++)
        arr[i][0] = '{';
    for (int i = 0; i < b->n; i++) {
        it = b->it[i];
        ntc_arr_add(arr[0], sizeof(arr[0]), &o[0], it->outbox, 0);
        ntc_arr_add(arr[1], sizeof(arr[1]), &o[1], it->sms, 0);
        ntc_arr_add(arr[2], sizeof(arr[2]), &o[2], it->outcome, 1);
        ntc_arr_add(arr[3], sizeof(arr[3]), &o[3],
                    it->reason[0] ? it->reason : NULL, 1);
    }
    for (int i = 0; i < 4; i++) {
        AN(o[i] + 2 <= sizeof(arr[i]));
        arr[i][o[i]] = '}';
        arr[i][o[i] + 1] = '\0';
    }
    memset(&tx, 0, sizeof(tx));
    tx.n = 1;
    tx.stmt[0].sql = "SELECT notice_sent(t.o, t.s, t.c, t.r)"
                     " FROM unnest($1::bigint[], $2::uuid[], $3::text[],"
                     "             $4::text[]) AS t(o, s, c, r)";
    tx.stmt[0].nparams = 4;
    tx.prepare = 1u;
    for (int i = 0; i < 4; i++)
        tx.stmt[0].params[i] = arr[i];
    rc = store_pool_tx(d->pool, &tx, ntc_saved, b);
    if (rc == STORE_OK) {
        d->saving = 1;
        return;
    }
    if (rc == STORE_EDOWN || rc == STORE_EBUSY) {
        /* kept, as in ntc_saved() */
        for (int i = b->n - 1; i >= 0; i--)
            TAILQ_INSERT_HEAD(&d->saves, b->it[i], link);
        b->magic = 0;
        free(b);
        d->save_again_ms = ntc_mono_ms() + NTC_SAVE_AGAIN;
        ntc_schedule(d, NTC_SAVE_AGAIN);
        return;
    }
    for (int i = 0; i < b->n; i++) {
        it = b->it[i];
        GW_LOG_WARN(0, "notice answer not saved outbox=%s outcome=%s: %s",
                    it->outbox, it->outcome, store_strerror(rc));
        d->busy--;
        ntc_item_free(it);
    }
    b->magic = 0;
    free(b);
}

/* Write what became of it: outcome is notice_sent()'s ('accepted',
 * 'requeue', 'failed', 'unknown'); it leaves d->active. */
static void
ntc_save(struct ntc_item *it, const char *outcome, const char *reason)
{
    struct ntc_disp *d = it->d;

    TAILQ_REMOVE(&d->active, it, link);
    it->phase = NTC_ITEM_SAVING;
    if (d->stopping) {
        GW_LOG_WARN(0,
                    "notice answer not saved outbox=%s outcome=%s: "
                    "stopping",
                    it->outbox, outcome);
        d->busy--;
        ntc_item_free(it);
        return;
    }
    it->outcome = outcome;
    snprintf(it->reason, sizeof(it->reason), "%s", reason ? reason : "");
    TAILQ_INSERT_TAIL(&d->saves, it, link);
    ntc_save_flush(d);
}

static void
ntc_sent(enum gw_sms_outcome o, int http_status, const char *answer, void *arg)
{
    struct ntc_item *it = arg;
    struct ntc_disp *d;
    char reason[32];
    GW_CHECK_MAGIC(it, NTC_ITEM_MAGIC);
    d = it->d;
    AN(it->phase == NTC_ITEM_SENDING);
    (void)answer;
    snprintf(reason, sizeof(reason), "http_%d", http_status);
    switch (o) {
    case GW_SMS_ACCEPTED:
        ntc_save(it, "accepted", NULL);
        break;
    case GW_SMS_NOT_SENT:
        GW_LOG_WARN(0,
                    "notice not taken by Kannel, back in the queue "
                    "outbox=%s status=%d",
                    it->outbox, http_status);
        notices_bucket_hold(&d->bucket, ntc_mono_ms(),
                            http_status == 503 ? NTC_HOLD_503 : NTC_HOLD_DOWN);
        ntc_save(it, "requeue", reason);
        break;
    case GW_SMS_REFUSED:
        GW_LOG_ERROR(0, "notice refused by Kannel outbox=%s status=%d",
                     it->outbox, http_status);
        ntc_save(it, "failed", reason);
        break;
    case GW_SMS_MAYBE:
        GW_LOG_WARN(0,
                    "notice may have left, not sent again outbox=%s "
                    "status=%d",
                    it->outbox, http_status);
        ntc_save(it, "unknown", http_status ? reason : "timeout");
        break;
    default:
        WRONG("sendsms outcome");
    }
}

/* ------------------------------------------------------------------------
 * Sending what was claimed
 */

/* Put every waiting item back in the queue (the window closed). */
static void
ntc_requeue_waiting(struct ntc_disp *d, const char *why)
{
    struct ntc_item *it;
    while ((it = TAILQ_FIRST(&d->waiting)) != NULL) {
        TAILQ_REMOVE(&d->waiting, it, link);
        TAILQ_INSERT_TAIL(&d->active, it, link);
        d->busy++;
        ntc_save(it, "requeue", why);
    }
}

/* The parts the next tick would send: those of the first waiting items
 * that fit in NTC_TICK_MS of the rate and in the room left in flight (at
 * least the first item's). */
static unsigned
ntc_tick_parts(const struct ntc_disp *d)
{
    double tick = d->bucket.rate * NTC_TICK_MS / 1000.0;
    const struct ntc_item *it;
    size_t room = NTC_INFLIGHT - d->busy;
    unsigned parts = 0;

    TAILQ_FOREACH (it, &d->waiting, link) {
        if (room-- == 0 || (parts > 0 && parts + it->parts > tick)) break;
        parts += it->parts;
    }
    return parts;
}

/* Hand waiting items to Kannel as the bucket allows.  Returns the ms to
 * wait for tokens (0: nothing waits).  While the bucket is short, a turn
 * waits until a tick's worth of tokens is there (ntc_tick_parts()) and
 * sends those messages together: at 200 parts/s one wake-up sends four
 * instead of one, and the rate over a second is the bucket's all the
 * same. */
static long long
ntc_send_waiting(struct ntc_disp *d, const struct notices_slot *slot)
{
    struct ntc_item *it;

    if (!TAILQ_EMPTY(&d->waiting) && d->busy < NTC_INFLIGHT) {
        long long wait =
            notices_bucket_wait(&d->bucket, ntc_tick_parts(d), ntc_mono_ms());
        if (wait > 0) return wait;
    }
    while ((it = TAILQ_FIRST(&d->waiting)) != NULL && d->busy < NTC_INFLIGHT) {
        long long wait =
            notices_bucket_take(&d->bucket, it->parts, ntc_mono_ms());
        if (wait > 0) return wait;
        TAILQ_REMOVE(&d->waiting, it, link);
        TAILQ_INSERT_TAIL(&d->active, it, link);
        d->busy++;
        it->phase = NTC_ITEM_SENDING;
        struct gw_sms_once rq = {
            .id = it->sms,
            .msisdn = it->msisdn,
            .text = it->body,
            .ucs2 = it->ucs2,
            .validity_min = slot->validity_min,
        };
        if (gw_sms_send_once(d->srv, &rq, ntc_sent, it) != 0) {
            GW_LOG_WARN(0, "notice not handed to sendsms outbox=%s",
                        it->outbox);
            ntc_save(it, "requeue", "not_started");
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The turn's transaction: window, sweep, claim
 */

static void
ntc_claimed(int status, const struct store_tx_result *res, void *arg)
{
    struct ntc_disp *d = arg;
    int claim, n;
    GW_CHECK_MAGIC(d, NTC_DISP_MAGIC);
    d->claiming = 0;
    if (status != STORE_OK) {
        /* nothing committed, or (unknown outcome) rows the sweep will
         * call lost: none of them is sent */
        GW_LOG_WARN(0, "notice claim failed: %s", store_tx_errstr(res));
        ntc_schedule(d, (long long)d->cfg->notices_poll_ms);
        return;
    }
    claim = d->claim_stmt >= 0 && store_tx_nfields(res, d->claim_stmt) > 0
                ? d->claim_stmt
                : -1;
    n = claim < 0 ? 0 : store_tx_ntuples(res, claim);
    d->claim_short = n < d->claim_rows;
    for (int i = 0; i < n; i++) {
        const char *v[7];
        for (int k = 0; k < 7; k++)
            v[k] = store_tx_value(res, claim, i, k);
        struct ntc_item *it = calloc(1, sizeof(*it));
        if (it == NULL || v[0] == NULL || v[2] == NULL || v[3] == NULL ||
            v[4] == NULL || (it->body = strdup(v[4])) == NULL) {
            /* stays 'claimed' and becomes 'unknown': never sent twice */
            GW_LOG_ERROR(0, "notice claimed but not kept outbox=%s",
                         v[0] ? v[0] : "?");
            free(it);
            continue;
        }
        it->magic = NTC_ITEM_MAGIC;
        it->d = d;
        it->phase = NTC_ITEM_WAITING;
        snprintf(it->outbox, sizeof(it->outbox), "%s", v[0]);
        snprintf(it->sms, sizeof(it->sms), "%s", v[2]);
        snprintf(it->msisdn, sizeof(it->msisdn), "%s", v[3]);
        it->ucs2 = v[5] != NULL && v[5][0] == 't';
        it->parts = v[6] ? (unsigned)atoi(v[6]) : 0;
        if (it->parts == 0) {
            struct notices_parts p;
            notices_parts_count(it->body, strlen(it->body), &p);
            it->parts = p.parts ? p.parts : 1;
        }
        TAILQ_INSERT_TAIL(&d->waiting, it, link);
    }
    if (n > 0) GW_LOG_DEBUG(0, "notices claimed n=%d", n);
    ntc_schedule(d, n > 0 ? 0 : (long long)d->cfg->notices_poll_ms);
}

static void
ntc_claim(struct ntc_disp *d, const struct notices_slot *slot)
{
    const struct gw_config *cfg = d->cfg;
    char now[24], lost[24], limit[24], validity[24], cap[24], days[24],
        per_day[24];
    struct store_tx tx;
    long long rows;
    int rc, sweep;

    memset(&tx, 0, sizeof(tx));
    snprintf(now, sizeof(now), "%lld", ntc_now(d));
    snprintf(lost, sizeof(lost), "%ld", cfg->notices_lost_after_s);
    /* about a second of sending, so few rows wait in memory */
    rows = cfg->notices_rate < cfg->notices_batch ? cfg->notices_rate
                                                  : cfg->notices_batch;
    if (rows < 1) rows = 1;
    snprintf(limit, sizeof(limit), "%lld", rows);
    snprintf(validity, sizeof(validity), "%d", slot->validity_min);
    snprintf(cap, sizeof(cap), "%ld", cfg->notices_cap);
    snprintf(days, sizeof(days), "%ld", cfg->notices_cap_days);
    snprintf(per_day, sizeof(per_day), "%ld", cfg->notices_cap_per_day);

    if (slot->open)
        tx.stmt[0].sql =
            "UPDATE notices SET state = 'sending', paused_why = NULL,"
            " started_at = coalesce(started_at, now()), updated_at = now(),"
            " version = version + 1"
            " WHERE (state = 'approved' AND (send_after IS NULL"
            "        OR send_after <= to_timestamp($1::bigint)))"
            "    OR (state = 'paused' AND paused_why = 'window')";
    else
        tx.stmt[0].sql =
            "UPDATE notices SET state = 'paused', paused_why = 'window',"
            " updated_at = now(), version = version + 1"
            " WHERE state = 'sending' AND $1::bigint IS NOT NULL";
    tx.stmt[0].nparams = 1;
    tx.stmt[0].params[0] = now;
    tx.n = 1;
    sweep = d->claim_short || !slot->open ||
            ntc_mono_ms() - d->last_sweep_ms >= NTC_SWEEP_MS;
    if (sweep) {
        tx.stmt[tx.n].sql =
            "SELECT notice_sweep(make_interval(secs => $1::int))";
        tx.stmt[tx.n].nparams = 1;
        tx.stmt[tx.n].params[0] = lost;
        tx.n++;
    }
    d->claim_stmt = -1;
    d->claim_rows = (int)rows;
    if (slot->open) {
        struct store_tx_stmt *st = &tx.stmt[tx.n];
        st->sql =
            "SELECT outbox_id, notice_id, sms_id, msisdn, body, ucs2, parts"
            " FROM notice_claim($1, $2::int, $3::int, $4::int, $5::int,"
            "                   $6::int)";
        st->nparams = 6;
        st->params[0] = d->worker;
        st->params[1] = limit;
        st->params[2] = validity;
        st->params[3] = cap;
        st->params[4] = days;
        st->params[5] = per_day;
        d->claim_stmt = tx.n++;
    }
    /* the turn's statements call functions or touch notices by state:
     * prepared once per connection, by name after */
    tx.prepare = (1u << tx.n) - 1u;
    rc = store_pool_tx(d->pool, &tx, ntc_claimed, d);
    if (rc != STORE_OK) {
        GW_LOG_WARN(0, "notice claim not started: %s", store_strerror(rc));
        ntc_schedule(d, (long long)cfg->notices_poll_ms);
        return;
    }
    d->claiming = 1;
    if (sweep) d->last_sweep_ms = ntc_mono_ms();
}

static void
ntc_turn(struct ntc_disp *d)
{
    struct notices_slot slot;
    long long wait;

    if (d->stopping) return;
    ntc_save_flush(d); /* answers kept while the server was away */
    if (d->draining) {
        /* claimed and never handed to Kannel: back in the queue */
        ntc_requeue_waiting(d, "stopping");
        if (!TAILQ_EMPTY(&d->saves) && !d->saving)
            ntc_schedule(d, NTC_SAVE_AGAIN);
        return;
    }
    notices_window_at(&d->win, ntc_now(d), &slot);
    if (d->window_open != slot.open) {
        GW_LOG_INFO(0, "notices send window %s minute=%d",
                    slot.open ? "open" : "closed", slot.minute_of_day);
        d->window_open = slot.open;
    }
    if (!slot.open) ntc_requeue_waiting(d, "window_closed");
    wait = slot.open ? ntc_send_waiting(d, &slot) : 0;
    if (!TAILQ_EMPTY(&d->waiting)) {
        /* tokens (or room at Kannel) first */
        ntc_schedule(d, wait > 0 ? wait : 50);
        return;
    }
    if (d->claiming) return; /* its callback schedules the next turn */
    if (d->busy >= NTC_INFLIGHT) return; /* an answer schedules it */
    ntc_claim(d, &slot);
}

static void
ntc_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ntc_disp *d = arg;
    (void)fd;
    (void)what;
    GW_CHECK_MAGIC(d, NTC_DISP_MAGIC);
    ntc_turn(d);
}

/* ------------------------------------------------------------------------
 * Start and stop
 */

/* A stop is coming: nothing more is claimed or handed to Kannel, what
 * was claimed and not sent goes back in the queue, and the messages at
 * Kannel get their answers written.  Under way: those, and a claim out. */
static size_t
ntc_drain(struct gw_server *srv, void *arg, int first)
{
    struct ntc_disp *d = arg;
    (void)srv;
    GW_CHECK_MAGIC(d, NTC_DISP_MAGIC);
    if (first) {
        d->draining = 1;
        evtimer_del(d->timer);
        ntc_turn(d);
    }
    return d->busy + (size_t)d->claiming + (size_t)!TAILQ_EMPTY(&d->waiting);
}

static void
ntc_stop(struct gw_server *srv, void *arg)
{
    struct ntc_disp *d = arg;
    struct ntc_item *it;
    size_t n = 0;
    (void)srv;
    GW_CHECK_MAGIC(d, NTC_DISP_MAGIC);
    d->stopping = 1;
    evtimer_del(d->timer);
    TAILQ_FOREACH (it, &d->waiting, link)
        n++;
    if (n > 0)
        GW_LOG_WARN(0,
                    "notices claimed and not sent at shutdown n=%zu "
                    "(they will count as unknown)",
                    n);
}

/* Contract in notices.h. */
int
notices_start(struct gw_server *srv)
{
    const struct gw_config *cfg = gw_server_config(srv);
    struct ntc_disp *d;
    const char *why, *test_now;
    char err[256], host[32];

    AZ(ntc_the != NULL);
    if (strcmp(cfg->notices_dispatch, "on") != 0 ||
        gw_server_worker(srv) != 0 || cfg->pg_dsn[0] == '\0' ||
        cfg->sendsms_url[0] == '\0')
        return 0; /* this worker does not dispatch */
    d = calloc(1, sizeof(*d));
    if (d == NULL) return -1;
    d->magic = NTC_DISP_MAGIC;
    d->srv = srv;
    d->cfg = cfg;
    d->window_open = -1;
    TAILQ_INIT(&d->waiting);
    TAILQ_INIT(&d->active);
    TAILQ_INIT(&d->saves);
    d->claim_stmt = -1;
    d->claim_short = 1;
    ntc_the = d;
    if ((why = notices_window_parse(cfg->notices_window, &d->win)) != NULL) {
        GW_LOG_ERROR(0, "notices.window: %s", why);
        return -1;
    }
    struct notices_cap cap = {(int)cfg->notices_cap, (int)cfg->notices_cap_days,
                              (int)cfg->notices_cap_per_day};
    if ((why = notices_cap_check(&cap)) != NULL) {
        GW_LOG_ERROR(0, "notices.cap: %s", why);
        return -1;
    }
    test_now = getenv("REMIGATE_TEST_NOW");
    if (test_now != NULL && test_now[0] != '\0') {
        d->clock_offset = strtoll(test_now, NULL, 10) - (long long)time(NULL);
        GW_LOG_WARN(0, "notices clock set by REMIGATE_TEST_NOW=%s (tests only)",
                    test_now);
    }
    notices_bucket_init(&d->bucket, (double)cfg->notices_rate,
                        (double)cfg->notices_burst, ntc_mono_ms());
    if (gethostname(host, sizeof(host)) != 0) snprintf(host, sizeof(host), "?");
    host[sizeof(host) - 1] = '\0';
    snprintf(d->worker, sizeof(d->worker), "%s:%ld", host, (long)getpid());
    d->timer = evtimer_new(gw_server_base(srv), ntc_timer, d);
    if (d->timer == NULL) return -1;
    /* PostgreSQL restarting or failing over: a turn's transaction or a
     * batch of answers waits for the pool (postgres.wait_ms) and still has
     * its whole deadline after it */
    struct store_pool_config pc = {
        .dsn = cfg->pg_dsn,
        .pool = 1,
        .timeout_ms = (int)(cfg->pg_timeout_ms + cfg->pg_wait_ms),
        .wait_ms = (int)cfg->pg_wait_ms,
    };
    d->pool = store_pool_new(&pc, gw_server_base(srv), err, sizeof(err));
    if (d->pool == NULL) {
        GW_LOG_ERROR(0, "postgres (notices): %s", err);
        return -1;
    }
    if (store_pool_start(d->pool) != STORE_OK) return -1;
    if (gw_server_on_stop(srv, ntc_stop, d) != 0 ||
        gw_server_on_drain(srv, ntc_drain, d) != 0)
        return -1;
    GW_LOG_INFO(0,
                "notices dispatcher started window=%s rate=%ld parts/s "
                "cap=%ld/%ldd per_day=%ld",
                cfg->notices_window, cfg->notices_rate, cfg->notices_cap,
                cfg->notices_cap_days, cfg->notices_cap_per_day);
    ntc_schedule(d, 0);
    return 0;
}

/* Contract in notices.h. */
void
notices_fini(struct gw_server *srv)
{
    struct ntc_disp *d = ntc_the;
    struct ntc_item *it;
    (void)srv;
    if (d == NULL) return;
    GW_CHECK_MAGIC(d, NTC_DISP_MAGIC);
    d->stopping = 1;
    if (d->timer) event_free(d->timer);
    d->timer = NULL;
    /* pending saves get STORE_EDOWN and free their items */
    if (d->pool) store_pool_stop(d->pool);
    while ((it = TAILQ_FIRST(&d->waiting)) != NULL) {
        TAILQ_REMOVE(&d->waiting, it, link);
        ntc_item_free(it);
    }
    while ((it = TAILQ_FIRST(&d->saves)) != NULL) {
        TAILQ_REMOVE(&d->saves, it, link);
        ntc_item_free(it);
    }
    /* items still SENDING were answered by sendsms's stop hook (and their
     * saves failed above) */
    while ((it = TAILQ_FIRST(&d->active)) != NULL) {
        TAILQ_REMOVE(&d->active, it, link);
        ntc_item_free(it);
    }
    store_pool_free(d->pool);
    d->magic = 0;
    free(d);
    ntc_the = NULL;
}
