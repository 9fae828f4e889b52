/*
 * store_sms.c -- the sms_out table, on a pool of its own (store_pool.c).
 *
 * Every request here is one statement with text parameters, run as a
 * transaction of the generic pool: its deadline, its bounded queue, its
 * reconnects and its "callback from the loop, exactly once" are the
 * pool's.  What is left here is the statements, the checks of their
 * arguments and what their rows mean.
 *
 * The statements keep the table's promises themselves: an insert that
 * finds its id does nothing, and a delivery report moves dlr_state only
 * to a higher remigate_dlr_rank() (002_sms.sql) under the row's lock, so
 * repeats, reordered reports and racing workers all end in one state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

#define SMS_MAGIC      0x534d5351u
#define SMS_CALL_MAGIC 0x534d5352u
#define SMS_TEXT_MAX   4096 /* bytes of message text */
#define SMS_ANSWER_MAX 1024 /* bytes kept of an answer or receipt */
#define SMS_PARAMS_MAX 5

enum sms_kind {
    SMS_REQ_INSERT,
    SMS_REQ_SENT,
    SMS_REQ_DLR,
    SMS_REQ_OPTOUT,
    SMS_REQ_INTEREST
};

static const char *const sms_sql[] = {
    [SMS_REQ_INSERT] = "INSERT INTO sms_out (id, msisdn, kind, text, coding)"
                       " VALUES ($1::uuid, $2, $3, $4, $5::smallint)"
                       " ON CONFLICT (id) DO NOTHING",
    [SMS_REQ_SENT] =
        "UPDATE sms_out SET tries = $2::int,"
        " kannel_status = nullif($3::int, 0), kannel_answer = $4,"
        " accepted_at = CASE WHEN $5::bool THEN coalesce(accepted_at, now())"
        "  ELSE accepted_at END,"
        " failed_at = CASE WHEN $5::bool THEN NULL ELSE now() END"
        " WHERE id = $1::uuid RETURNING 1",
    /* Lock the row first so the rank is compared with the latest state. */
    [SMS_REQ_DLR] =
        "WITH o AS (SELECT id, dlr_state FROM sms_out WHERE id = $1::uuid"
        "  FOR UPDATE),"
        " a AS (SELECT remigate_dlr_rank($2::smallint) >"
        "  remigate_dlr_rank(o.dlr_state) AS adv FROM o)"
        " UPDATE sms_out s SET dlr_reports = s.dlr_reports + 1,"
        " dlr_state = CASE WHEN a.adv THEN $2::smallint ELSE s.dlr_state END,"
        " dlr_at = CASE WHEN a.adv THEN now() ELSE s.dlr_at END,"
        " dlr_answer = CASE WHEN a.adv THEN $3 ELSE s.dlr_answer END,"
        " dlr_smsc_at = CASE WHEN a.adv THEN to_timestamp($4::bigint)"
        "  ELSE s.dlr_smsc_at END"
        " FROM o, a WHERE s.id = o.id RETURNING s.dlr_state, a.adv",
    [SMS_REQ_OPTOUT] =
        "INSERT INTO sms_optout (msisdn, opted_out) VALUES ($1, $2::bool)"
        " ON CONFLICT (msisdn) DO UPDATE SET opted_out = EXCLUDED.opted_out,"
        " changed_at = now()",
    [SMS_REQ_INTEREST] = "SELECT notice_interest_record($1, $2)",
};

static const int sms_nparams[] = {[SMS_REQ_INSERT] = 5,
                                  [SMS_REQ_SENT] = 5,
                                  [SMS_REQ_DLR] = 4,
                                  [SMS_REQ_OPTOUT] = 2,
                                  [SMS_REQ_INTEREST] = 2};

struct store_sms {
    unsigned magic;
    struct store_pool *pool;
};

/* One request on its way: what to call back with what its rows mean. */
struct sms_call {
    unsigned magic;
    enum sms_kind kind;
    store_sms_cb *cb;
    void *arg;
};

/* The pool's answer, read the way kind's statement means it. */
static void
sms_on_tx(int status, const struct store_tx_result *res, void *arg)
{
    struct sms_call *c = arg;
    struct store_sms_result out = {0};
    int n;

    STORE_AN(c->magic == SMS_CALL_MAGIC);
    /* a statement the server refused is a failure like any other here */
    if (status == STORE_EREFUSED) status = STORE_EDB;
    n = status == 0 ? store_tx_ntuples(res, 0) : 0;
    if (status == 0 && (c->kind == SMS_REQ_SENT || c->kind == SMS_REQ_DLR) &&
        n == 0) {
        status = STORE_ENOTFOUND;
    } else if (status == 0 && c->kind == SMS_REQ_INTEREST && n == 1) {
        const char *v = store_tx_value(res, 0, 0, 0);
        out.interest = v ? atoi(v) : 0;
    } else if (status == 0 && c->kind == SMS_REQ_DLR) {
        const char *st = store_tx_value(res, 0, 0, 0);
        const char *adv = store_tx_value(res, 0, 0, 1);
        out.dlr_state = st ? atoi(st) : 0;
        out.changed = adv != NULL && adv[0] == 't';
    }
    out.errstr = status == 0               ? ""
                 : store_tx_errstr(res)[0] ? store_tx_errstr(res)
                                           : store_strerror(status);
    c->magic = 0;
    c->cb(status, &out, c->arg);
    free(c);
}

/* Run kind's statement with params (borrowed; NULL is SQL NULL).  0, or
 * the pool's STORE_EDOWN / STORE_EBUSY / STORE_ENOMEM / STORE_EINVAL. */
static int
sms_call(struct store_sms *q, enum sms_kind kind,
         const char *const params[SMS_PARAMS_MAX], store_sms_cb *cb, void *arg)
{
    struct store_tx tx = {.officer = "", .role = "", .districts = "", .n = 1};
    struct sms_call *c;
    int rc;

    STORE_AN(q->magic == SMS_MAGIC);
    tx.stmt[0].sql = sms_sql[kind];
    tx.stmt[0].nparams = sms_nparams[kind];
    for (int i = 0; i < sms_nparams[kind]; i++)
        tx.stmt[0].params[i] = params[i];
    if ((c = calloc(1, sizeof(*c))) == NULL) return STORE_ENOMEM;
    c->magic = SMS_CALL_MAGIC;
    c->kind = kind;
    c->cb = cb;
    c->arg = arg;
    if ((rc = store_pool_tx(q->pool, &tx, sms_on_tx, c)) != 0) {
        c->magic = 0;
        free(c);
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * Public
 */

struct store_sms *
store_sms_new(const struct store_sms_config *cfg, struct event_base *base,
              char *err, size_t errlen)
{
    struct store_pool_config pc;
    struct store_sms *q;

    if (cfg == NULL || base == NULL || cfg->dsn == NULL || cfg->pool < 0 ||
        cfg->pool > 16 || cfg->timeout_ms < 0 || cfg->max_waiting < 0) {
        snprintf(err, errlen, "store_sms: bad configuration");
        return NULL;
    }
    if ((q = calloc(1, sizeof(*q))) == NULL) {
        snprintf(err, errlen, "store_sms: out of memory");
        return NULL;
    }
    q->magic = SMS_MAGIC;
    pc = (struct store_pool_config){.dsn = cfg->dsn,
                                    .pool = cfg->pool,
                                    .timeout_ms = cfg->timeout_ms,
                                    .max_waiting = cfg->max_waiting};
    if ((q->pool = store_pool_new(&pc, base, err, errlen)) == NULL) {
        free(q);
        return NULL;
    }
    return q;
}

int
store_sms_start(struct store_sms *q)
{
    STORE_AN(q->magic == SMS_MAGIC);
    return store_pool_start(q->pool);
}

void
store_sms_stop(struct store_sms *q)
{
    STORE_AN(q->magic == SMS_MAGIC);
    store_pool_stop(q->pool);
}

void
store_sms_free(struct store_sms *q)
{
    if (q == NULL) return;
    STORE_AN(q->magic == SMS_MAGIC);
    store_pool_free(q->pool);
    q->magic = 0;
    free(q);
}

int
store_sms_connected(const struct store_sms *q)
{
    return store_pool_connected(q->pool);
}

int
store_sms_id_valid(const char *id)
{
    if (id == NULL || strlen(id) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (id[i] != '-') return 0;
        } else if (strchr("0123456789abcdefABCDEF", id[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* Copy at most SMS_ANSWER_MAX bytes of s into out, never cutting a UTF-8
 * sequence in two. */
static void
sms_cut(const char *s, char out[SMS_ANSWER_MAX + 1])
{
    size_t n = strlen(s);

    if (n > SMS_ANSWER_MAX) {
        n = SMS_ANSWER_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

static int
sms_digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    return n >= min && n <= max && strspn(s, "0123456789") == n;
}

int
store_sms_insert(struct store_sms *q, const char *id, const char *msisdn,
                 const char *kind, const char *text, int coding,
                 store_sms_cb *cb, void *arg)
{
    char cod[8];

    if (q == NULL || cb == NULL || !store_sms_id_valid(id) || msisdn == NULL ||
        !sms_digits(msisdn, 8, 15) || kind == NULL ||
        (strcmp(kind, "reply") != 0 && strcmp(kind, "confirmation") != 0 &&
         strcmp(kind, "notice") != 0 && strcmp(kind, "reminder") != 0) ||
        text == NULL || strlen(text) > SMS_TEXT_MAX ||
        (coding != 0 && coding != 2))
        return STORE_EINVAL;
    snprintf(cod, sizeof(cod), "%d", coding);
    const char *p[SMS_PARAMS_MAX] = {id, msisdn, kind, text, cod};
    return sms_call(q, SMS_REQ_INSERT, p, cb, arg);
}

int
store_sms_sent(struct store_sms *q, const char *id, int tries, int http_status,
               const char *answer, int accepted, store_sms_cb *cb, void *arg)
{
    char cut[SMS_ANSWER_MAX + 1], t[16], h[16];

    if (q == NULL || cb == NULL || !store_sms_id_valid(id) || tries < 0 ||
        http_status < 0 || http_status > 999 || answer == NULL)
        return STORE_EINVAL;
    sms_cut(answer, cut);
    snprintf(t, sizeof(t), "%d", tries);
    snprintf(h, sizeof(h), "%d", http_status);
    const char *p[SMS_PARAMS_MAX] = {id, t, h, cut,
                                     accepted ? "true" : "false"};
    return sms_call(q, SMS_REQ_SENT, p, cb, arg);
}

int
store_sms_dlr(struct store_sms *q, const char *id, int type, const char *answer,
              long long smsc_time, store_sms_cb *cb, void *arg)
{
    char cut[SMS_ANSWER_MAX + 1], ty[16], at[32];

    if (q == NULL || cb == NULL || !store_sms_id_valid(id) || answer == NULL ||
        (type != 1 && type != 2 && type != 4 && type != 8 && type != 16 &&
         type != (2 | 0x20) && type != (2 | 0x40)))
        return STORE_EINVAL;
    sms_cut(answer, cut);
    snprintf(ty, sizeof(ty), "%d", type);
    snprintf(at, sizeof(at), "%lld", smsc_time);
    const char *p[SMS_PARAMS_MAX] = {id, ty, cut, smsc_time >= 0 ? at : NULL};
    return sms_call(q, SMS_REQ_DLR, p, cb, arg);
}

int
store_sms_optout(struct store_sms *q, const char *msisdn, int out,
                 store_sms_cb *cb, void *arg)
{
    if (q == NULL || cb == NULL || msisdn == NULL || !sms_digits(msisdn, 8, 15))
        return STORE_EINVAL;
    const char *p[SMS_PARAMS_MAX] = {msisdn, out ? "t" : "f"};
    return sms_call(q, SMS_REQ_OPTOUT, p, cb, arg);
}

/* Contract in store.h. */
int
store_sms_interest(struct store_sms *q, const char *msisdn, const char *word,
                   store_sms_cb *cb, void *arg)
{
    if (q == NULL || cb == NULL || msisdn == NULL || word == NULL ||
        !sms_digits(msisdn, 8, 15) || strlen(word) > 32)
        return STORE_EINVAL;
    const char *p[SMS_PARAMS_MAX] = {msisdn, word};
    return sms_call(q, SMS_REQ_INTEREST, p, cb, arg);
}
