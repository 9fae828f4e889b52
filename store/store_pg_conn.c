/*
 * store_pg_conn.c -- the records store's connections and statements, on
 * libevent.
 *
 * Each connection is a small state machine (DOWN -> CONNECTING -> SETUP ->
 * IDLE <-> BUSY) driven by one socket event and one timer: PQconnectPoll
 * while connecting, PQsendPrepare for every statement once connected, then
 * PQsendQueryPrepared / PQconsumeInput / PQgetResult for requests.  Nothing
 * here blocks: the socket is non-blocking and PQflush is retried on
 * EV_WRITE.  A dropped connection is opened again after a jittered backoff.
 *
 * store_dispatch() hands the waiting requests to idle connections;
 * registrations waiting behind one another share one transaction (a
 * batch, store.batch of them at most), and a batch that fails goes back
 * to the head of the queue to run one by one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "store/store_pg_int.h"

/* In the registration upsert: the stored identity (t) equals the new one
 * (EXCLUDED).  The name is compared by the keyed hash of the personal
 * answers (personal_hash): PostgreSQL never holds it in clear. */
#define STORE_SQL_SAME_ID                                                      \
    " (t.personal_hash, t.birth_year, t.district, t.nid_hash,"                 \
    " t.passport_hash) IS NOT DISTINCT FROM (EXCLUDED.personal_hash,"          \
    " EXCLUDED.birth_year, EXCLUDED.district, EXCLUDED.nid_hash,"              \
    " EXCLUDED.passport_hash)"


/* The prepared statements, by index; every one is prepared on every
 * connection before it takes requests. */
enum store_stmt {
    STORE_SQL_SUB_INSERT,
    STORE_SQL_REG_APPLY,
    STORE_SQL_SKILLS_APPLY,
    STORE_SQL_PART_APPLY,
    STORE_SQL_DUP_SELECT,
    STORE_SQL_STATUS,
    STORE_SQL_PING,
    STORE_SQL_N
};

static const struct store_sql {
    const char *name;
    const char *text;
    int nparams;
} store_sql[STORE_SQL_N] = {
    [STORE_SQL_SUB_INSERT] =
        {"remigate_sub_insert",
         "INSERT INTO submissions (idempotency_key, kind, ref, msisdn, lang,"
         " channel, answers, started_at)"
         " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb,"
         " to_timestamp($8::bigint))"
         " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
         8},
    /* Insert or replace the profile from the submission row just made and
     * link the submission to it: back to pending, except a verified record
     * whose identity (name, birth year, district, ID numbers) is unchanged;
     * a verified record whose identity changed names the changed fields
     * (changed_since_verified) for the officer.  Also counts other records
     * sharing the ID number's keyed hash.  A registration in parts (part 1
     * is "who you are") keeps what the other parts saved when it is done
     * again: an answer the submission does not have is kept. */
    [STORE_SQL_REG_APPLY] =
        {"remigate_reg_apply",
         "WITH s AS (SELECT * FROM submissions WHERE id = $1::bigint),"
         " r AS (INSERT INTO returnees AS t (msisdn, name, sex, birth_year,"
         "  division, district, country, years_abroad, return_year, reason,"
         "  education, skills, need, lang, channel, status, ref, nid_enc,"
         "  nid_hash, passport_enc, passport_hash, personal_enc,"
         "  personal_hash, parts_done)"
         "  SELECT s.msisdn, NULL, s.answers->>'sex',"
         "  (s.answers->>'birth_year')::int, s.answers->>'division',"
         "  s.answers->>'district', s.answers->>'country',"
         "  (s.answers->>'years_abroad')::int,"
         "  (s.answers->>'return_year')::int, s.answers->>'reason',"
         "  s.answers->>'education',"
         "  ARRAY(SELECT jsonb_array_elements_text(CASE WHEN"
         "   jsonb_typeof(s.answers->'skills') = 'array'"
         "   THEN s.answers->'skills' ELSE '[]'::jsonb END)),"
         "  s.answers->>'need', s.lang, s.channel, 'pending', s.ref,"
         "  $2::bytea, $3::bytea, $4::bytea, $5::bytea, $6::bytea,"
         "  $7::bytea, ARRAY[s.kind] FROM s"
         "  ON CONFLICT (msisdn) DO UPDATE SET name = EXCLUDED.name,"
         "  sex = EXCLUDED.sex, birth_year = EXCLUDED.birth_year,"
         "  division = EXCLUDED.division, district = EXCLUDED.district,"
         "  country = coalesce(EXCLUDED.country, t.country),"
         "  years_abroad = coalesce(EXCLUDED.years_abroad, t.years_abroad),"
         "  return_year = coalesce(EXCLUDED.return_year, t.return_year),"
         "  reason = coalesce(EXCLUDED.reason, t.reason),"
         "  education = coalesce(EXCLUDED.education, t.education),"
         "  skills = CASE WHEN cardinality(EXCLUDED.skills) > 0"
         "   THEN EXCLUDED.skills ELSE t.skills END,"
         "  need = coalesce(EXCLUDED.need, t.need),"
         "  parts_done = ARRAY(SELECT DISTINCT unnest(t.parts_done ||"
         "   EXCLUDED.parts_done) ORDER BY 1), lang = EXCLUDED.lang,"
         "  channel = EXCLUDED.channel,"
         "  status = CASE WHEN t.status = 'verified' AND" STORE_SQL_SAME_ID
         "   THEN 'verified' ELSE 'pending' END,"
         "  changed_since_verified = CASE WHEN t.status = 'verified' AND NOT"
         "   " STORE_SQL_SAME_ID " THEN array_remove(ARRAY["
         "   CASE WHEN t.personal_hash IS DISTINCT FROM"
         "    EXCLUDED.personal_hash THEN 'name' END,"
         "   CASE WHEN t.birth_year IS DISTINCT FROM EXCLUDED.birth_year"
         "    THEN 'birth_year' END,"
         "   CASE WHEN t.district IS DISTINCT FROM EXCLUDED.district"
         "    THEN 'district' END,"
         "   CASE WHEN t.nid_hash IS DISTINCT FROM EXCLUDED.nid_hash"
         "    THEN 'nid' END,"
         "   CASE WHEN t.passport_hash IS DISTINCT FROM EXCLUDED.passport_hash"
         "    THEN 'passport' END], NULL)"
         "   WHEN t.status = 'pending' THEN t.changed_since_verified END,"
         "  verified_by = CASE WHEN t.status = 'verified' AND"
         "   " STORE_SQL_SAME_ID " THEN t.verified_by END,"
         "  verified_at = CASE WHEN t.status = 'verified' AND"
         "   " STORE_SQL_SAME_ID " THEN t.verified_at END,"
         "  ref = EXCLUDED.ref, nid_enc = EXCLUDED.nid_enc,"
         "  nid_hash = EXCLUDED.nid_hash,"
         "  passport_enc = EXCLUDED.passport_enc,"
         "  passport_hash = EXCLUDED.passport_hash,"
         "  personal_enc = EXCLUDED.personal_enc,"
         "  personal_hash = EXCLUDED.personal_hash, updated_at = now(),"
         "  info_reason = NULL, reject_reason = NULL, reject_note = NULL"
         "  RETURNING t.id, t.status, t.ref, t.nid_hash, t.passport_hash)"
         " UPDATE submissions u SET returnee_id = r.id FROM r"
         " WHERE u.id = $1::bigint"
         " RETURNING r.status, r.ref, (SELECT count(*) FROM returnees o"
         "  WHERE o.id <> r.id AND ((r.nid_hash IS NOT NULL AND"
         "  o.nid_hash = r.nid_hash) OR (r.passport_hash IS NOT NULL AND"
         "  o.passport_hash = r.passport_hash)))",
         7},
    /* Only the skills of an existing profile (a record waiting for more
     * information goes back to the queue); no row back when there is none
     * (the caller then rolls back, so no submission stays). */
    [STORE_SQL_SKILLS_APPLY] =
        {"remigate_skills_apply",
         "WITH s AS (SELECT * FROM submissions WHERE id = $1::bigint),"
         " r AS (UPDATE returnees t SET skills = ARRAY(SELECT"
         "  jsonb_array_elements_text(s.answers->'skills')),"
         "  status = CASE WHEN t.status = 'needs_info' THEN 'pending'"
         "   ELSE t.status END,"
         "  info_reason = CASE WHEN t.status = 'needs_info' THEN NULL"
         "   ELSE t.info_reason END,"
         "  updated_at = now() FROM s WHERE t.msisdn = s.msisdn"
         "  RETURNING t.id, t.status, t.ref)"
         " UPDATE submissions u SET returnee_id = r.id FROM r"
         " WHERE u.id = $1::bigint RETURNING r.status, r.ref, 0",
         1},
    /* Part 2 or 3 of a registration onto the profile part 1 made: the
     * answers it has, its name added to parts_done; the status stays (an
     * officer may be checking part 1).  No row back when there is no
     * profile. */
    [STORE_SQL_PART_APPLY] =
        {"remigate_part_apply",
         "WITH s AS (SELECT * FROM submissions WHERE id = $1::bigint),"
         " r AS (UPDATE returnees t SET"
         "  country = coalesce(s.answers->>'country', t.country),"
         "  years_abroad = coalesce((s.answers->>'years_abroad')::int,"
         "   t.years_abroad),"
         "  return_year = coalesce((s.answers->>'return_year')::int,"
         "   t.return_year),"
         "  reason = coalesce(s.answers->>'reason', t.reason),"
         "  education = coalesce(s.answers->>'education', t.education),"
         "  skills = CASE WHEN jsonb_typeof(s.answers->'skills') = 'array'"
         "   THEN ARRAY(SELECT jsonb_array_elements_text(s.answers->'skills'))"
         "   ELSE t.skills END,"
         "  need = coalesce(s.answers->>'need', t.need),"
         "  parts_done = ARRAY(SELECT DISTINCT unnest(t.parts_done ||"
         "   s.kind) ORDER BY 1), updated_at = now()"
         "  FROM s WHERE t.msisdn = s.msisdn"
         "  RETURNING t.id, t.status, t.ref)"
         " UPDATE submissions u SET returnee_id = r.id FROM r"
         " WHERE u.id = $1::bigint RETURNING r.status, r.ref, 0",
         1},
    [STORE_SQL_DUP_SELECT] =
        {"remigate_dup_select",
         "SELECT r.status, coalesce(r.ref, s.ref) FROM submissions s"
         " LEFT JOIN returnees r ON r.id = s.returnee_id"
         " WHERE s.idempotency_key = $1",
         1},
    [STORE_SQL_STATUS] =
        {"remigate_status",
         "SELECT status, coalesce(ref, ''),"
         " coalesce(CASE status WHEN 'rejected' THEN reject_reason"
         " WHEN 'needs_info' THEN info_reason END, ''),"
         " coalesce(lang, '')"
         " FROM returnees WHERE msisdn = $1",
         1},
    [STORE_SQL_PING] = {"remigate_ping", "SELECT pg_sleep($1::int / 1000.0)",
                        1},
};

/* ------------------------------------------------------------------------
 * Connections
 */

/* Take c's request, or every request of its batch, off c into reqs
 * (STORE_BATCH_MAX), each with conn NULL; c->req_step keeps the step that
 * was in flight.  Returns how many. */
int
store_conn_detach(struct store_conn *c, struct store_req **reqs)
{
    int n = 0;

    c->req_step = c->req ? c->req->step : STORE_STEP_START;
    if (c->nbatch > 0) {
        for (int i = 0; i < c->nbatch; i++)
            reqs[n++] = c->batch[i];
    } else if (c->req != NULL) {
        reqs[n++] = c->req;
    }
    for (int i = 0; i < n; i++)
        reqs[i]->conn = NULL;
    c->req = NULL;
    c->nbatch = c->bi = 0;
    return n;
}

/* Close c's connection (if any), settle its state, plan the next attempt
 * when the store runs, then fail its request (or batch) with status. */
void
store_conn_drop(struct store_conn *c, int status, const char *why)
{
    struct store_req *reqs[STORE_BATCH_MAX];
    int n = store_conn_detach(c, reqs);
    int commit = n > 0 && c->req_step == STORE_STEP_COMMIT;

    if (c->res) {
        PQclear(c->res);
        c->res = NULL;
    }
    if (c->l.pg && why) store_set_err(c->s, why, PQerrorMessage(c->l.pg));
    store_link_close(&c->l);
    c->state = STORE_CONN_DOWN;
    if (c->s->running)
        store_link_retry(&c->l, STORE_BACKOFF_MIN_MS, STORE_BACKOFF_MAX_MS);
    for (int i = 0; i < n; i++) {
        struct store_req *r = reqs[i];
        /* with the COMMIT on its way the outcome is unknown, whatever the
         * request knew before */
        if (commit) r->unknown = 1;
        if (r->status == 0 || status == STORE_ETIMEDOUT || r->unknown)
            r->status = status;
        if (r->errstr[0] == '\0')
            snprintf(r->errstr, sizeof(r->errstr), "%s",
                     why ? why : store_strerror(status));
        store_req_complete(r);
    }
}

static void
store_conn_connect(struct store_conn *c)
{
    struct store *s = c->s;
    int ms = s->timeout_ms > STORE_CONNECT_MIN_MS ? s->timeout_ms
                                                  : STORE_CONNECT_MIN_MS;

    if (store_link_connect(&c->l, s->dsn, ms) != 0) {
        if (c->l.pg == NULL) store_set_err(s, "connect", "out of memory");
        store_conn_drop(c, STORE_EDOWN, c->l.pg ? "connect" : NULL);
        return;
    }
    c->state = STORE_CONN_CONNECTING;
}

/* Prepare the next statement, or become idle when all are. */
static void
store_conn_setup_next(struct store_conn *c)
{
    const struct store_sql *q;

    if (c->setup_next == STORE_SQL_N) {
        c->state = STORE_CONN_IDLE;
        c->l.backoff_ms = 0;
        if (store_link_watch(&c->l, EV_READ) != 0) {
            store_conn_drop(c, STORE_EDOWN, "watch");
            return;
        }
        store_dispatch(c->s);
        return;
    }
    q = &store_sql[c->setup_next++];
    if (!PQsendPrepare(c->l.pg, q->name, q->text, q->nparams, NULL) ||
        store_link_flush(&c->l) != 0)
        store_conn_drop(c, STORE_EDOWN, "prepare");
}

static void
store_conn_poll(struct store_conn *c)
{
    int up = store_link_poll(&c->l);

    if (up == 0) return;
    if (up < 0) {
        store_conn_drop(c, STORE_EDOWN, "connect");
        return;
    }
    c->state = STORE_CONN_SETUP;
    c->setup_next = 0;
    store_conn_setup_next(c);
}

/* Is an error of this SQLSTATE about the record itself (a data exception,
 * an integrity constraint, a program limit such as a value too large), so
 * that sending the same record again fails again?  Anything else -- a
 * deadlock, a cancelled query, a permission or schema problem, the server
 * going away -- may pass. */
static int
store_sqlstate_refuses(const char *code)
{
    return code != NULL && strlen(code) == 5 &&
           (strncmp(code, "22", 2) == 0 || strncmp(code, "23", 2) == 0 ||
            strncmp(code, "54", 2) == 0);
}

/* Send one step of r. */
static int
store_req_send(struct store_conn *c, enum store_stmt q, int n,
               const char *const *vals, const int *lens, const int *fmts)
{
    if (!PQsendQueryPrepared(c->l.pg, store_sql[q].name, n, vals, lens, fmts,
                             0))
        return -1;
    return store_link_flush(&c->l);
}

static int
store_req_send_plain(struct store_conn *c, const char *sql)
{
    if (!PQsendQuery(c->l.pg, sql)) return -1;
    return store_link_flush(&c->l);
}

static int
store_req_send_apply(struct store_conn *c, struct store_req *r)
{
    const char *vals[7] = {r->sub_id, NULL, NULL, NULL, NULL, NULL, NULL};
    int lens[7] = {0}, fmts[7] = {0, 1, 1, 1, 1, 1, 1};

    if (r->kind == STORE_REQ_SKILLS)
        return store_req_send(c, STORE_SQL_SKILLS_APPLY, 1, vals, NULL, NULL);
    if (r->kind == STORE_REQ_PART)
        return store_req_send(c, STORE_SQL_PART_APPLY, 1, vals, NULL, NULL);
    if (r->nid_enc_len > 0) {
        vals[1] = (const char *)r->nid_enc;
        lens[1] = r->nid_enc_len;
        vals[2] = (const char *)r->nid_hash;
        lens[2] = STORE_HASH_BYTES;
    }
    if (r->pp_enc_len > 0) {
        vals[3] = (const char *)r->pp_enc;
        lens[3] = r->pp_enc_len;
        vals[4] = (const char *)r->pp_hash;
        lens[4] = STORE_HASH_BYTES;
    }
    if (r->pers_enc_len > 0) {
        vals[5] = (const char *)r->pers_enc;
        lens[5] = r->pers_enc_len;
        vals[6] = (const char *)r->pers_hash;
        lens[6] = STORE_HASH_BYTES;
    }
    return store_req_send(c, STORE_SQL_REG_APPLY, 7, vals, lens, fmts);
}

/* Finish r (or r's whole batch) on c: c becomes idle, each calls back,
 * then waiting requests move on. */
static void
store_req_finish(struct store_conn *c, struct store_req *r)
{
    struct store *s = c->s;
    struct store_req *reqs[STORE_BATCH_MAX];
    int n;

    STORE_AN(c->req == r);
    n = store_conn_detach(c, reqs);
    c->state = STORE_CONN_IDLE;
    for (int i = 0; i < n; i++)
        store_req_complete(reqs[i]);
    if (s->running) store_dispatch(s);
}

/* A batch failed on a statement and was rolled back: every request of it
 * goes back to the head of the waiting list, in order, to run alone, so
 * that a record the database refuses fails by itself and takes no other
 * with it.  Their deadlines run on. */
static void
store_batch_requeue(struct store_conn *c)
{
    struct store *s = c->s;
    struct store_req *reqs[STORE_BATCH_MAX];
    int n = store_conn_detach(c, reqs);

    c->state = STORE_CONN_IDLE;
    for (int i = n - 1; i >= 0; i--) {
        struct store_req *r = reqs[i];
        r->solo = 1;
        r->step = STORE_STEP_START;
        r->status = 0;
        r->duplicate = r->id_shared = 0;
        r->rstatus = STORE_REC_NONE;
        r->ref_out[0] = r->errstr[0] = r->sub_id[0] = '\0';
        TAILQ_INSERT_HEAD(&s->waiting, r, link);
        r->queued = 1;
        s->nwaiting++;
    }
    if (s->running) store_dispatch(s);
}

/* Send the submission insert of r. */
static int
store_req_send_insert(struct store_conn *c, struct store_req *r)
{
    const char *vals[8] = {r->key,
                           r->flow,
                           r->ref,
                           r->msisdn,
                           r->lang[0] ? r->lang : NULL,
                           r->channel,
                           r->answers,
                           r->started[0] ? r->started : NULL};
    r->step = STORE_STEP_INSERT;
    return store_req_send(c, STORE_SQL_SUB_INSERT, 8, vals, NULL, NULL);
}

/* Take the result of r's current step (NULL to start) and send the next
 * one, or finish r. */
static void
store_req_advance(struct store_conn *c, struct store_req *r, PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_COMMAND_OK;
    int rc;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        /* SQLSTATE and the primary message only: the detail line may
         * quote row values. */
        snprintf(r->errstr, sizeof(r->errstr), "%s: %s", code ? code : "?",
                 msg ? msg : "?");
        /* a kept update_skills whose COMMIT failed was not kept */
        if (r->status == 0 || r->step == STORE_STEP_COMMIT)
            r->status =
                store_sqlstate_refuses(code) ? STORE_EREFUSED : STORE_EDB;
        if (r->step != STORE_STEP_ROLLBACK &&
            PQtransactionStatus(c->l.pg) != PQTRANS_IDLE) {
            r->step = STORE_STEP_ROLLBACK;
            rc = store_req_send_plain(c, "ROLLBACK");
            goto sent;
        }
        if (c->nbatch > 0) {
            store_batch_requeue(c);
            return;
        }
        store_req_finish(c, r);
        return;
    }
    switch (r->step) {
    case STORE_STEP_START:
        if (r->kind == STORE_REQ_STATUS) {
            const char *vals[1] = {r->msisdn};
            r->step = STORE_STEP_READ;
            rc = store_req_send(c, STORE_SQL_STATUS, 1, vals, NULL, NULL);
        } else if (r->kind == STORE_REQ_PING) {
            const char *vals[1] = {r->sleep_ms};
            r->step = STORE_STEP_READ;
            rc = store_req_send(c, STORE_SQL_PING, 1, vals, NULL, NULL);
        } else {
            r->step = STORE_STEP_BEGIN;
            rc = store_req_send_plain(c, "BEGIN");
        }
        break;
    case STORE_STEP_BEGIN:
        rc = store_req_send_insert(c, r);
        break;
    case STORE_STEP_INSERT:
        if (PQntuples(res) == 1) {
            snprintf(r->sub_id, sizeof(r->sub_id), "%s", PQgetvalue(res, 0, 0));
            r->step = STORE_STEP_APPLY;
            rc = store_req_send_apply(c, r);
        } else {
            const char *vals[1] = {r->key};
            r->duplicate = 1;
            r->step = STORE_STEP_DUP;
            rc = store_req_send(c, STORE_SQL_DUP_SELECT, 1, vals, NULL, NULL);
        }
        break;
    case STORE_STEP_APPLY:
    case STORE_STEP_DUP:
        if (PQntuples(res) == 1) {
            r->rstatus = store_rec_status_parse(PQgetvalue(res, 0, 0));
            snprintf(r->ref_out, sizeof(r->ref_out), "%s",
                     PQgetvalue(res, 0, 1));
            if (r->step == STORE_STEP_APPLY)
                r->id_shared = atoi(PQgetvalue(res, 0, 2));
            if (c->nbatch > 0 && c->bi + 1 < c->nbatch) {
                /* the next registration of the batch, same transaction */
                r->step = STORE_STEP_COMMIT; /* it waits for the COMMIT */
                c->req = r = c->batch[++c->bi];
                rc = store_req_send_insert(c, r);
                break;
            }
            r->step = STORE_STEP_COMMIT;
            rc = store_req_send_plain(c, "COMMIT");
        } else if (r->step == STORE_STEP_APPLY) {
            /* update_skills without a profile: keep nothing, or only the
             * submission when asked to */
            r->status = STORE_ENOTREGISTERED;
            r->step = r->keep ? STORE_STEP_COMMIT : STORE_STEP_ROLLBACK;
            rc = store_req_send_plain(c, r->keep ? "COMMIT" : "ROLLBACK");
        } else {
            /* The duplicate's row vanished between the two statements:
             * cannot happen to an append-only table. */
            r->status = STORE_EDB;
            snprintf(r->errstr, sizeof(r->errstr),
                     "submission under this key not found");
            r->step = STORE_STEP_ROLLBACK;
            rc = store_req_send_plain(c, "ROLLBACK");
        }
        break;
    case STORE_STEP_COMMIT:
        store_req_finish(c, r);
        return;
    case STORE_STEP_ROLLBACK:
        /* a batch rolls back only after an error (registrations have no
         * ENOTREGISTERED) */
        if (c->nbatch > 0 && r->status != 0) {
            store_batch_requeue(c);
            return;
        }
        store_req_finish(c, r);
        return;
    case STORE_STEP_READ:
        if (r->kind == STORE_REQ_STATUS) {
            if (PQntuples(res) == 0) {
                r->status = STORE_ENOTFOUND;
            } else {
                r->rstatus = store_rec_status_parse(PQgetvalue(res, 0, 0));
                snprintf(r->ref_out, sizeof(r->ref_out), "%s",
                         PQgetvalue(res, 0, 1));
                snprintf(r->reason, sizeof(r->reason), "%s",
                         PQgetvalue(res, 0, 2));
                snprintf(r->lang_out, sizeof(r->lang_out), "%s",
                         PQgetvalue(res, 0, 3));
            }
        }
        store_req_finish(c, r);
        return;
    default:
        STORE_WRONG("request step");
    }
sent:
    if (rc != 0) store_conn_drop(c, STORE_EDOWN, "send");
}

/* A command on c has delivered all its results. */
static void
store_conn_command_done(struct store_conn *c)
{
    PGresult *res = c->res;

    c->res = NULL;
    if (PQstatus(c->l.pg) == CONNECTION_BAD) {
        PQclear(res);
        store_conn_drop(c, STORE_EDOWN, "connection lost");
        return;
    }
    if (c->state == STORE_CONN_SETUP) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            store_set_err(c->s, "prepare", PQresultErrorMessage(res));
            PQclear(res);
            store_conn_drop(c, STORE_EDOWN, NULL);
            return;
        }
        PQclear(res);
        store_conn_setup_next(c);
        return;
    }
    STORE_AN(c->state == STORE_CONN_BUSY && c->req != NULL);
    store_req_advance(c, c->req, res);
    PQclear(res);
}

void
store_conn_on_io(evutil_socket_t fd, short what, void *arg)
{
    struct store_conn *c = arg;
    PGresult *x;

    (void)fd;
    STORE_AN(c->magic == STORE_CONN_MAGIC);
    if (c->state == STORE_CONN_CONNECTING) {
        store_conn_poll(c);
        return;
    }
    if ((what & EV_WRITE) && store_link_flush(&c->l) != 0) {
        store_conn_drop(c, STORE_EDOWN, "send");
        return;
    }
    if (!(what & EV_READ)) return;
    if (!PQconsumeInput(c->l.pg) || PQstatus(c->l.pg) == CONNECTION_BAD) {
        store_conn_drop(c, STORE_EDOWN, "connection lost");
        return;
    }
    if (c->state == STORE_CONN_IDLE) {
        /* Nothing asked: a notice, or the server going away. */
        while ((x = PQgetResult(c->l.pg)) != NULL)
            PQclear(x);
        return;
    }
    while (!PQisBusy(c->l.pg)) {
        x = PQgetResult(c->l.pg);
        if (x == NULL) {
            store_conn_command_done(c);
            return;
        }
        /* Keep the last result, but never let one hide an error. */
        if (c->res == NULL || PQresultStatus(c->res) == PGRES_COMMAND_OK ||
            PQresultStatus(c->res) == PGRES_TUPLES_OK) {
            PQclear(c->res);
            c->res = x;
        } else {
            PQclear(x);
        }
    }
}

void
store_conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct store_conn *c = arg;

    (void)fd;
    (void)what;
    STORE_AN(c->magic == STORE_CONN_MAGIC);
    if (c->state == STORE_CONN_DOWN)
        store_conn_connect(c);
    else if (c->state == STORE_CONN_CONNECTING)
        store_conn_drop(c, STORE_EDOWN, "connect timed out");
}

/* May r share a transaction with others?  Registrations only (an
 * update_skills may roll back alone), and not one a batch failed with. */
static int
store_req_batchable(const struct store_req *r)
{
    return r->kind == STORE_REQ_REGISTER && !r->solo && r->s->batch > 1;
}

/* Hand waiting requests to idle connections. */
void
store_dispatch(struct store *s)
{
    while (s->running && !TAILQ_EMPTY(&s->waiting)) {
        struct store_conn *c = NULL;
        struct store_req *r;

        for (int i = 0; i < s->pool; i++)
            if (s->conns[i].state == STORE_CONN_IDLE) {
                c = &s->conns[i];
                break;
            }
        if (c == NULL) return;
        r = TAILQ_FIRST(&s->waiting);
        store_req_unqueue(r);
        r->conn = c;
        c->req = r;
        c->nbatch = c->bi = 0;
        /* registrations waiting behind this one share its transaction:
         * one commit (one WAL flush) for several */
        if (store_req_batchable(r)) {
            struct store_req *n;
            c->batch[c->nbatch++] = r;
            while (c->nbatch < s->batch &&
                   (n = TAILQ_FIRST(&s->waiting)) != NULL &&
                   store_req_batchable(n)) {
                store_req_unqueue(n);
                n->conn = c;
                c->batch[c->nbatch++] = n;
            }
            if (c->nbatch == 1) c->nbatch = 0;
        }
        c->state = STORE_CONN_BUSY;
        store_req_advance(c, r, NULL);
    }
}
