/*
 * gw_store.c -- what a finished flow's action does with its record.
 *
 * Writes ("submit_registration", "update_skills") go to PostgreSQL through
 * store/ with at most half the request deadline; when PostgreSQL is down,
 * slow or not configured, the record is pushed onto a durable Redis list
 * (PREFIX "queue:records"), sealed with the crypto key when one is
 * configured (store_record_seal()) -- the drainer then stores nothing
 * else: a plain or altered entry is set aside -- and the caller still gets the
 * record's own reference.  The caller is always answered from the event
 * loop, before the request's deadline.  A drainer in every worker moves queued
 * records into PostgreSQL once it answers: it looks at the head of the list,
 * stores it, then takes it off only if it is still the head (sess_shift), so a
 * crash in between stores it twice -- harmless, the store is idempotent on
 * the record's key.  A record that can never be stored as it is (it does
 * not open or parse, or PostgreSQL refuses it for good) is set aside on
 * "queue:records:failed" with the error, for an operator; the rest of the
 * queue goes on.  Nothing is dropped (see "The drainer" below).
 *
 * A write's query gets a deadline that ends within the caller's: when
 * Redis refuses the copy of a record whose query is still running, the
 * query's own outcome (stored, or never committed) is what the caller
 * hears, never "try again" for a row that then commits.  The push to
 * Redis likewise: it carries a deadline that Redis checks on its own
 * clock before it appends (sess_push_until()), so a push that timed out
 * -- Redis stopped or hung, the caller told "could not save" -- is not
 * appended when Redis resumes and reads it from the socket.  The caller
 * hears "saved" only for a record that is in PostgreSQL or in the queue,
 * and "could not save" only for one that will never be stored.
 *
 * "status_lookup" reads the caller's record; with no database it fails
 * (the caller hears "busy").
 */
#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gw_int.h"
#include "sessions/sess.h"
#include "store/store.h"

#define GW_QUEUE        "queue:records"
#define GW_QUEUE_FAILED "queue:records:failed"
#define GW_DRAIN_MS     1000
/* what a record's ref or key may hold, for the log */
#define GW_DRAIN_ID_CHARS                                                      \
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"

struct gw_records {
    struct gw_server *srv;
    const struct gw_config *cfg;
    struct store *store; /* NULL: neither database nor key configured; with
                            no database, one never started, for the key */
    struct event *drain;
    int draining; /* a queued record is on its way */
    char *item;   /* the head of the queue being stored */
    size_t item_len;
    char ref[24], key[72]; /* the head's, for the log ("" unknown) */
    char why[256];         /* why the head is being set aside */
    char retry_why[256];   /* the last reason logged for a retry */
    time_t retry_logged;
    unsigned long drained; /* records moved into PostgreSQL */
};

/* One action in flight.  Freed once the caller has been answered and
 * neither the store nor a push to Redis still holds it: a write that
 * passed its deadline is pushed while its query may still finish, and
 * whichever of the two answers first is what the caller hears. */
struct gw_act {
    struct gw_records *rec;
    char action[32];
    char ref[32];
    char msisdn[GW_MSISDN_MAX];
    char lang[12]; /* status_lookup: the record's language */
    char *record;
    size_t len;
    gw_act_cb *cb;
    void *arg;
    struct event *timer;
    int answered;
    int in_store;    /* the store has it and will call back */
    int in_queue;    /* a push to Redis will call back */
    int push_failed; /* Redis did not take it: the store's answer decides */
};

static void
gw_act_free_maybe(struct gw_act *a)
{
    if (!a->answered || a->in_store || a->in_queue) return;
    if (a->timer) event_free(a->timer);
    free(a->record);
    free(a);
}

static void
gw_act_answer(struct gw_act *a, enum gw_act_status st, const char *ref,
              const char *outcome, const char *reason)
{
    if (a->answered) return;
    a->answered = 1;
    if (a->timer) evtimer_del(a->timer);
    struct gw_act_result res = {.status = st};
    snprintf(res.ref, sizeof(res.ref), "%s", ref ? ref : "");
    snprintf(res.outcome, sizeof(res.outcome), "%s", outcome ? outcome : "");
    snprintf(res.reason, sizeof(res.reason), "%s", reason ? reason : "");
    snprintf(res.lang, sizeof(res.lang), "%s", a->lang);
    a->cb(&res, a->arg);
}

/* ------------------------------------------------------------------------
 * The durable queue
 */

static void
gw_act_queued(int status, void *arg)
{
    struct gw_act *a = arg;
    a->in_queue = 0;
    if (status == SESS_OK) {
        GW_LOG_INFO(0, "record queued in redis action=%s ref=%s", a->action,
                    a->ref);
        gw_act_answer(a, GW_ACT_QUEUED, a->ref, NULL, NULL);
    } else if (a->in_store && !a->answered) {
        /* the query is still running and ends by its own deadline, which
         * lies within the caller's: what it says is what the caller
         * hears, so "try again" never covers a row that commits */
        gw_metric_inc(GW_M_REDIS_ERRORS, NULL, NULL);
        a->push_failed = 1;
        GW_LOG_WARN(0,
                    "record not queued (%s); waiting for postgres action=%s "
                    "ref=%s",
                    sess_strerror(status), a->action, a->ref);
    } else {
        gw_metric_inc(GW_M_REDIS_ERRORS, NULL, NULL);
        GW_LOG_ERROR(0, "record neither stored nor queued action=%s: %s",
                     a->action, sess_strerror(status));
        gw_act_answer(a, GW_ACT_FAILED, NULL, NULL, NULL);
    }
    gw_act_free_maybe(a);
}

static void
gw_act_queue(struct gw_act *a)
{
    struct gw_server *srv = a->rec->srv;
    if (a->in_queue) return;
    a->in_queue = 1;
    const char *v = a->record;
    size_t vlen = a->len;
    char *sealed = NULL;
    if (a->rec->store != NULL) {
        /* with a key: no name or ID number in clear in Redis */
        size_t cap = a->len * 4 / 3 + 128;
        int n = (sealed = malloc(cap)) != NULL
                    ? store_record_seal(a->rec->store, a->record, a->len,
                                        sealed, cap)
                    : STORE_ENOMEM;
        if (n < 0) {
            free(sealed);
            gw_act_queued(SESS_ENOMEM, a);
            return;
        }
        v = sealed;
        vlen = (size_t)n;
    }
    /* Redis must run the push within half its timeout, on its own clock:
     * a push still in the socket when a stopped Redis resumes, after the
     * caller heard "could not save", does nothing (SESS_ELATE); the other
     * half is for the answer's way back */
    int rc = srv->sess
                 ? sess_push_until(srv->sess, GW_QUEUE, v, vlen,
                                   (int)(a->rec->cfg->redis_timeout_ms / 2),
                                   gw_act_queued, a)
                 : SESS_EDOWN;
    free(sealed);
    if (rc != SESS_OK) gw_act_queued(rc, a);
}

/* ------------------------------------------------------------------------
 * Actions
 */

/* The deadline of a query in flight (in_store), or the next turn of the
 * loop for an action the store could not take (PostgreSQL down or not
 * configured): either way the caller is answered from here, never from
 * inside gw_action_run(). */
static void
gw_act_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct gw_act *a = arg;
    (void)fd;
    (void)what;
    if (!a->in_store && strcmp(a->action, "status_lookup") != 0) {
        gw_act_queue(a);
        return;
    }
    gw_metric_inc(GW_M_POSTGRES_ERRORS, NULL, NULL);
    if (strcmp(a->action, "status_lookup") == 0) {
        GW_LOG_WARN(0, "status lookup: %s",
                    a->rec->cfg->pg_dsn[0] ? "postgres down or too slow"
                                           : "no database configured");
        gw_act_answer(a, GW_ACT_FAILED, NULL, NULL, NULL);
        gw_act_free_maybe(a);
        return;
    }
    GW_LOG_WARN(0, "postgres too slow, queueing action=%s ref=%s", a->action,
                a->ref);
    gw_act_queue(a);
}

static void
gw_act_stored(int status, const struct store_result *res, void *arg)
{
    struct gw_act *a = arg;
    a->in_store = 0;
    if (!a->answered) {
        if (status == STORE_OK) {
            gw_act_answer(a, GW_ACT_DONE, res->ref[0] ? res->ref : a->ref, NULL,
                          NULL);
        } else if (status == STORE_ENOTREGISTERED) {
            gw_act_answer(a, GW_ACT_NOT_REGISTERED, NULL, NULL, NULL);
        } else if (a->push_failed) {
            /* not committed -- unless res->unknown: the COMMIT was on its
             * way at the deadline; a retry then shows the same reference */
            gw_metric_inc(GW_M_POSTGRES_ERRORS, NULL, NULL);
            GW_LOG_ERROR(0,
                         "record neither stored nor queued action=%s ref=%s: "
                         "%s (%s)%s",
                         a->action, a->ref, store_strerror(status),
                         res ? res->errstr : "",
                         res && res->unknown ? "; the commit was on its way"
                                             : "");
            gw_act_answer(a, GW_ACT_FAILED, NULL, NULL, NULL);
        } else if (!a->in_queue) {
            gw_metric_inc(GW_M_POSTGRES_ERRORS, NULL, NULL);
            GW_LOG_WARN(0, "store: %s (%s), queueing action=%s ref=%s",
                        store_strerror(status), res ? res->errstr : "",
                        a->action, a->ref);
            gw_act_queue(a);
            return;
        }
    } else if (status != STORE_OK && status != STORE_ENOTREGISTERED) {
        gw_metric_inc(GW_M_POSTGRES_ERRORS, NULL, NULL);
    }
    gw_act_free_maybe(a);
}

static void
gw_act_status(int status, const struct store_result *res, void *arg)
{
    struct gw_act *a = arg;
    a->in_store = 0;
    if (status == STORE_OK) {
        snprintf(a->lang, sizeof(a->lang), "%s", res->lang);
        gw_act_answer(a, GW_ACT_DONE, res->ref,
                      store_rec_status_name(res->status), res->reject_reason);
    } else if (status == STORE_ENOTFOUND || status == STORE_ENOTREGISTERED)
        gw_act_answer(a, GW_ACT_NOT_REGISTERED, NULL, NULL, NULL);
    else {
        if (!a->answered) gw_metric_inc(GW_M_POSTGRES_ERRORS, NULL, NULL);
        gw_act_answer(a, GW_ACT_FAILED, NULL, NULL, NULL);
    }
    gw_act_free_maybe(a);
}

/* The record's "ref" and "msisdn". */
static int
gw_act_fields(struct gw_act *a)
{
    json_error_t jerr;
    json_t *j = json_loadb(a->record, a->len, 0, &jerr);
    if (j == NULL) return -1;
    const char *ref = json_string_value(json_object_get(j, "ref"));
    const char *msisdn = json_string_value(json_object_get(j, "msisdn"));
    snprintf(a->ref, sizeof(a->ref), "%s", ref ? ref : "");
    snprintf(a->msisdn, sizeof(a->msisdn), "%s", msisdn ? msisdn : "");
    json_decref(j);
    return a->msisdn[0] ? 0 : -1;
}

int
gw_action_run(struct gw_server *srv, const char *action, const char *record,
              size_t len, gw_act_cb *cb, void *arg)
{
    struct gw_records *rec = srv->records;
    int lookup = strcmp(action, "status_lookup") == 0;
    if (rec == NULL || cb == NULL ||
        (!lookup && strcmp(action, "submit_registration") != 0 &&
         strcmp(action, "submit_part") != 0 &&
         strcmp(action, "update_skills") != 0))
        return -1;
    struct gw_act *a = calloc(1, sizeof(*a));
    if (a == NULL) return -1;
    a->record = malloc(len + 1);
    a->timer = evtimer_new(gw_server_base(srv), gw_act_deadline, a);
    if (a->record == NULL || a->timer == NULL) goto fail;
    memcpy(a->record, record, len);
    a->record[len] = '\0';
    a->len = len;
    a->rec = rec;
    a->cb = cb;
    a->arg = arg;
    snprintf(a->action, sizeof(a->action), "%s", action);
    if (gw_act_fields(a) < 0) goto fail;

    /* PostgreSQL gets half the request's time, less if a write pushed to
     * Redis after it (up to redis.timeout_ms) would not end in time */
    long req = rec->cfg->request_timeout_ms;
    long left = req - req / 10 - rec->cfg->redis_timeout_ms; /* for a push */
    long ms = req / 2;
    if (!lookup && left < ms) ms = left;
    if (ms < 1) ms = 1;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    /* a write's query ends (answered, or its connection closed so it never
     * commits) while the caller can still hear of it: if Redis refuses the
     * copy, the query's outcome is what the caller is told */
    struct store_submit_opts opts = {.timeout_ms =
                                         (int)rec->cfg->pg_timeout_ms};
    if (left < opts.timeout_ms) opts.timeout_ms = left > 1 ? (int)left : 1;
    int rc = STORE_EDOWN;
    if (rec->store != NULL && store_connected(rec->store) > 0)
        rc = lookup ? store_status(rec->store, a->msisdn, gw_act_status, a)
                    : store_submit_with(rec->store, a->record, a->len, &opts,
                                        gw_act_stored, a);
    if (rc == STORE_OK) {
        a->in_store = 1;
        evtimer_add(a->timer, &tv);
        return 0;
    }
    if (rc == STORE_EINVAL) goto fail;
    /* no database now: on the next turn of the loop a lookup fails and a
     * write goes to the queue */
    struct timeval now = {0, 0};
    evtimer_add(a->timer, &now);
    return 0;
fail:
    if (a->timer) event_free(a->timer);
    free(a->record);
    free(a);
    return -1;
}

/* ------------------------------------------------------------------------
 * The drainer
 *
 * One record at a time from the head of the queue: peek, open (if sealed),
 * store, then shift it off if it is still the head.  What becomes of it:
 *
 *   stored (or stored before)        shifted off; "stored"
 *   update_skills, no registration   kept as a submission without a
 *                                    profile, shifted off; "unregistered"
 *   does not open or parse, or       set aside on queue:records:failed with
 *   PostgreSQL refuses it for good   the error, then shifted off; "failed"
 *   anything else (PostgreSQL down,  stays at the head and is tried again on
 *   slow, a deadlock, permissions)   the next tick; a "retry"
 *
 * Setting aside pushes before it shifts: a crash in between leaves the
 * record in both lists, never in neither, and sess_push_once() keeps two
 * workers that set the same head aside from making two entries.
 */

static void gw_drain_next(struct gw_records *rec);

static void
gw_drain_stop(struct gw_records *rec)
{
    rec->draining = 0;
    free(rec->item);
    rec->item = NULL;
}

static void
gw_drain_shifted(int status, void *arg)
{
    struct gw_records *rec = arg;
    if (status != SESS_OK) {
        gw_drain_stop(rec);
        return;
    }
    free(rec->item);
    rec->item = NULL;
    gw_drain_next(rec);
}

static void
gw_drain_shift(struct gw_records *rec)
{
    if (sess_shift(rec->srv->sess, GW_QUEUE, rec->item, rec->item_len,
                   gw_drain_shifted, rec) != SESS_OK)
        gw_drain_stop(rec);
}

static void
gw_drain_failed_pushed(int status, void *arg)
{
    struct gw_records *rec = arg;
    if (status != SESS_OK) {
        gw_drain_stop(rec);
        return;
    }
    gw_metric_inc(GW_M_QUEUE_RECORDS, "failed", NULL);
    GW_LOG_ERROR(0,
                 "queued record set aside on %s ref=%s key=%s error=\"%s\"; "
                 "the rest of the queue goes on",
                 GW_QUEUE_FAILED, rec->ref[0] ? rec->ref : "?",
                 rec->key[0] ? rec->key : "?", rec->why);
    gw_drain_shift(rec);
}

/* The head can never be stored as it is (why says so): set it aside as
 * {"item": the queued text unchanged, "error": why, "ref", "failed_at"},
 * then take it off the queue. */
static void
gw_drain_set_aside(struct gw_records *rec, const char *why)
{
    snprintf(rec->why, sizeof(rec->why), "%s", why);
    json_t *item = json_stringn(rec->item, rec->item_len);
    json_t *err = json_string(why);
    char *qi = item ? json_dumps(item, JSON_ENCODE_ANY) : NULL;
    char *qe = err ? json_dumps(err, JSON_ENCODE_ANY) : NULL;
    json_decref(item);
    json_decref(err);
    char at[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    size_t cap = (qi ? strlen(qi) : 0) + (qe ? strlen(qe) : 0) + 128;
    char *entry = qi && qe ? malloc(cap) : NULL;
    int n = entry ? snprintf(entry, cap,
                             "{\"item\":%s,\"error\":%s,\"ref\":\"%s\","
                             "\"failed_at\":\"%s\"}",
                             qi, qe, rec->ref, at)
                  : -1;
    /* the same item already set aside: {"item":<it>, */
    size_t head = qi ? strlen("{\"item\":") + strlen(qi) + 1 : 0;
    if (n < 0 || (size_t)n >= cap ||
        sess_push_once(rec->srv->sess, GW_QUEUE_FAILED, entry, (size_t)n, head,
                       gw_drain_failed_pushed, rec) != SESS_OK)
        gw_drain_stop(rec);
    free(entry);
    free(qi);
    free(qe);
}

/* The head stays for the next tick.  Logged when the reason changes or
 * once a minute, so a long outage does not flood the log. */
static void
gw_drain_retry(struct gw_records *rec, int status, const char *why)
{
    char line[sizeof(rec->why)];
    time_t now = time(NULL);
    gw_metric_inc(GW_M_QUEUE_RETRIES, NULL, NULL);
    snprintf(line, sizeof(line), "%s%s%s", store_strerror(status),
             why && why[0] ? ": " : "", why ? why : "");
    if (strcmp(line, rec->retry_why) != 0 || now - rec->retry_logged >= 60) {
        GW_LOG_WARN(0,
                    "queued record not stored yet ref=%s error=\"%s\"; it "
                    "stays at the head of the queue and is tried again",
                    rec->ref[0] ? rec->ref : "?", line);
        snprintf(rec->retry_why, sizeof(rec->retry_why), "%s", line);
        rec->retry_logged = now;
    }
    gw_drain_stop(rec);
}

static void
gw_drain_stored(int status, const struct store_result *res, void *arg)
{
    struct gw_records *rec = arg;
    if (!rec->draining) return;
    switch (status) {
    case STORE_OK:
        rec->drained++;
        rec->retry_why[0] = '\0';
        gw_metric_inc(GW_M_QUEUE_RECORDS, "stored", NULL);
        GW_LOG_INFO(0, "queued record stored ref=%s drained=%lu", rec->ref,
                    rec->drained);
        gw_drain_shift(rec);
        return;
    case STORE_ENOTREGISTERED:
        /* the caller was told it was received: what they sent is kept
         * (store_submit_opts.keep_unregistered), though there is no
         * profile to change */
        rec->retry_why[0] = '\0';
        gw_metric_inc(GW_M_QUEUE_RECORDS, "unregistered", NULL);
        GW_LOG_WARN(0,
                    "queued update_skills for a number with no registration "
                    "ref=%s key=%s: kept as a submission only",
                    rec->ref, rec->key);
        gw_drain_shift(rec);
        return;
    case STORE_EREFUSED:
        gw_drain_set_aside(rec, res && res->errstr[0] ? res->errstr
                                                      : store_strerror(status));
        return;
    default:
        gw_drain_retry(rec, status, res ? res->errstr : NULL);
        return;
    }
}

/* The record's "ref" and "key", for the log (best effort). */
static void
gw_drain_fields(struct gw_records *rec, const char *plain, size_t len)
{
    json_t *j = json_loadb(plain, len, 0, NULL);
    const char *ref = json_string_value(json_object_get(j, "ref"));
    const char *key = json_string_value(json_object_get(j, "key"));
    /* only what a reference or key may hold: never quote the record */
    snprintf(rec->ref, sizeof(rec->ref), "%s",
             ref && strspn(ref, GW_DRAIN_ID_CHARS) == strlen(ref) ? ref : "");
    snprintf(rec->key, sizeof(rec->key), "%s",
             key && strspn(key, GW_DRAIN_ID_CHARS) == strlen(key) ? key : "");
    json_decref(j);
}

static void
gw_drain_peeked(int status, const char *value, size_t len, uint64_t version,
                void *arg)
{
    struct gw_records *rec = arg;
    (void)version;
    if (status != SESS_OK || rec->store == NULL) {
        gw_drain_stop(rec);
        return;
    }
    rec->item = malloc(len + 1);
    if (rec->item == NULL) {
        gw_drain_stop(rec);
        return;
    }
    memcpy(rec->item, value, len);
    rec->item[len] = '\0';
    rec->item_len = len;
    rec->ref[0] = rec->key[0] = '\0';
    /* Only what gw_act_queue() sealed with our key is stored: anyone who
     * can write to Redis could queue a plain record (or alter a sealed
     * one) and overwrite a returnee's profile.  The store always has a key
     * here (store_new() needs one), so a plain entry -- forged, or queued
     * by a daemon without a key -- is set aside for an operator, who can
     * seal it (remigate seal) once it is checked. */
    if (len < 4 || memcmp(value, "rq1:", 4) != 0) {
        gw_metric_inc(GW_M_QUEUE_UNSEALED, "plain", NULL);
        gw_drain_set_aside(rec, "not sealed with the crypto key: only sealed "
                                "records are stored (remigate seal)");
        return;
    }
    char *plain = malloc(len + 1);
    int n = plain
                ? store_record_open(rec->store, rec->item, len, plain, len + 1)
                : STORE_ENOMEM;
    if (n < 0) {
        free(plain);
        char why[128];
        snprintf(why, sizeof(why),
                 "sealed record does not open (%s): another key, or "
                 "altered",
                 store_strerror(n));
        if (n == STORE_ENOMEM) {
            gw_drain_retry(rec, n, NULL);
            return;
        }
        gw_metric_inc(GW_M_QUEUE_UNSEALED, "altered", NULL);
        gw_drain_set_aside(rec, why);
        return;
    }
    gw_drain_fields(rec, plain, (size_t)n);
    struct store_submit_opts opts = {.keep_unregistered = 1};
    int rc = store_submit_with(rec->store, plain, (size_t)n, &opts,
                               gw_drain_stored, rec);
    sodium_memzero(plain, (size_t)n);
    free(plain);
    if (rc == STORE_EINVAL)
        gw_drain_set_aside(rec, "malformed record: not a complete record "
                                "this version can store");
    else if (rc != STORE_OK)
        gw_drain_retry(rec, rc, NULL);
}

static void
gw_drain_next(struct gw_records *rec)
{
    if (rec->store == NULL || rec->srv->sess == NULL ||
        store_connected(rec->store) == 0 ||
        sess_peek(rec->srv->sess, GW_QUEUE, gw_drain_peeked, rec) != SESS_OK) {
        gw_drain_stop(rec);
        return;
    }
    rec->draining = 1;
}

static void
gw_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct gw_records *rec = arg;
    (void)fd;
    (void)what;
    if (!rec->draining) gw_drain_next(rec);
}

/* ------------------------------------------------------------------------
 * The worker's part
 */

static void
gw_records_ping_cb(int status, const struct store_result *res, void *arg)
{
    (void)res;
    gw_probe_wait_end(arg, status == STORE_OK);
}

static void
gw_records_probe(void *probe_arg, gw_health_done_cb *done, void *done_arg)
{
    struct gw_records *rec = probe_arg;
    struct gw_probe_wait *w = gw_probe_wait_new(done, done_arg);
    if (w != NULL &&
        store_ping(rec->store, 0, gw_records_ping_cb, w) != STORE_OK)
        gw_probe_wait_end(w, 0);
}

static void
gw_records_stop(struct gw_server *srv, void *arg)
{
    struct gw_records *rec = arg;
    if (rec->drain) event_del(rec->drain);
    if (rec->store) store_stop(rec->store);
    (void)srv;
}

int
gw_records_start(struct gw_server *srv)
{
    const struct gw_config *cfg = gw_server_config(srv);
    struct gw_records *rec = calloc(1, sizeof(*rec));
    if (rec == NULL) return -1;
    rec->srv = srv;
    rec->cfg = cfg;
    srv->records = rec;
    if (gw_server_on_stop(srv, gw_records_stop, rec) != 0) return -1;
    char err[512];
    if (cfg->pg_dsn[0] == '\0') {
        /* a store that never connects, for its key: the queue is sealed
         * all the same */
        if (cfg->key_file[0] != '\0') {
            struct store_config sc = {.dsn = "", .key_file = cfg->key_file};
            rec->store = store_new(&sc, gw_server_base(srv), err, sizeof(err));
            if (rec->store == NULL) {
                GW_LOG_ERROR(0, "crypto: %s", err);
                return -1;
            }
        }
        if (gw_server_worker(srv) == 0)
            GW_LOG_WARN(0,
                        "postgres.dsn is empty: records wait in the "
                        "redis queue (%s) until a database is configured",
                        rec->store ? "sealed" : "in clear: no crypto.key_file");
        if (rec->store == NULL && gw_server_worker(srv) == 0)
            GW_LOG_WARN(0, "crypto.key_file is empty: names and ID numbers "
                           "typed in dialogues are kept IN CLEAR in Redis "
                           "(sessions and the record queue); for anything but "
                           "a test, create a key (remigate keygen FILE) and "
                           "set crypto.key_file");
        return 0;
    }
    int rc = store_migrate_check(cfg->pg_dsn, NULL, err, sizeof(err));
    if (rc == STORE_ESCHEMA) {
        GW_LOG_ERROR(0,
                     "postgres: %s; not starting (run: remigate migrate -c "
                     "%s)",
                     err, cfg->path);
        return -1;
    }
    if (rc == STORE_EINVAL) {
        GW_LOG_ERROR(0, "postgres: %s", err);
        return -1;
    }
    if (rc != 0)
        GW_LOG_WARN(0, "postgres: schema not checked (%s); going on", err);
    struct store_config sc = {
        .dsn = cfg->pg_dsn,
        .key_file = cfg->key_file,
        .pool = (int)cfg->pg_pool,
        .timeout_ms = (int)cfg->pg_timeout_ms,
        .batch = (int)cfg->pg_batch,
    };
    rec->store = store_new(&sc, gw_server_base(srv), err, sizeof(err));
    if (rec->store == NULL) {
        GW_LOG_ERROR(0, "postgres: %s", err);
        return -1;
    }
    rec->drain =
        event_new(gw_server_base(srv), -1, EV_PERSIST, gw_drain_tick, rec);
    struct timeval tv = {GW_DRAIN_MS / 1000, (GW_DRAIN_MS % 1000) * 1000};
    if (store_start(rec->store) != 0 || rec->drain == NULL ||
        event_add(rec->drain, &tv) != 0 ||
        gw_health_register(srv, "postgres", gw_records_probe, rec) != 0)
        return -1;
    return 0;
}

const struct store *
gw_records_keys(const struct gw_server *srv)
{
    return srv->records != NULL ? srv->records->store : NULL;
}

void
gw_records_fini(struct gw_server *srv)
{
    struct gw_records *rec = srv->records;
    if (rec == NULL) return;
    if (rec->drain) event_free(rec->drain);
    store_free(rec->store);
    free(rec->item);
    free(rec);
    srv->records = NULL;
}
