/*
 * store_pg.c -- the connection pool and the queries, on libevent.
 *
 * Each connection is a small state machine (DOWN -> CONNECTING -> SETUP ->
 * IDLE <-> BUSY) driven by one socket event and one timer: PQconnectPoll
 * while connecting, PQsendPrepare for every statement once connected, then
 * PQsendQueryPrepared / PQconsumeInput / PQgetResult for requests.  Nothing
 * here blocks: the socket is non-blocking and PQflush is retried on
 * EV_WRITE.  A dropped connection is opened again after a jittered backoff.
 *
 * A request is a chain of steps run on one connection (a submission is
 * BEGIN, insert the submission, apply it to the profile, COMMIT), with one
 * deadline timer from the moment it was accepted.  When the deadline
 * passes the connection is simply closed (PQcancel would block the loop);
 * the open transaction dies with it.  Requests wait in a bounded FIFO while
 * every connection is busy; they are handed to connections from the loop
 * (a "kick" event), so no callback ever runs inside the API call that
 * started it.  State is always settled before a callback runs, and nothing
 * of the request is touched after it, so callbacks may start new requests
 * or stop the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "flows/flow.h"
#include "store/store_int.h"

#define STORE_MAGIC          0x53544f52u
#define STORE_REQ_MAGIC      0x53524551u
#define STORE_CONN_MAGIC     0x53434f4eu
#define STORE_BACKOFF_MIN_MS 100
#define STORE_BACKOFF_MAX_MS 5000
#define STORE_CONNECT_MIN_MS 2000
#define STORE_BATCH_MAX      64

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

enum store_conn_state {
    STORE_CONN_DOWN,       /* no connection; timer = next attempt */
    STORE_CONN_CONNECTING, /* PQconnectPoll; timer = connect deadline */
    STORE_CONN_SETUP,      /* preparing statements */
    STORE_CONN_IDLE,
    STORE_CONN_BUSY /* running req */
};

enum store_req_kind {
    STORE_REQ_REGISTER,
    STORE_REQ_SKILLS,
    STORE_REQ_PART,
    STORE_REQ_STATUS,
    STORE_REQ_PING
};

/* The step whose result is awaited. */
enum store_step {
    STORE_STEP_START,
    STORE_STEP_BEGIN,
    STORE_STEP_INSERT,
    STORE_STEP_APPLY,
    STORE_STEP_DUP,
    STORE_STEP_COMMIT,
    STORE_STEP_ROLLBACK,
    STORE_STEP_READ /* status or ping: one statement */
};

struct store_conn;

struct store_req {
    unsigned magic;
    struct store *s;
    TAILQ_ENTRY(store_req) link;
    int queued;
    struct store_conn *conn;
    struct event *deadline;
    store_submit_cb *cb;
    void *arg;
    enum store_req_kind kind;
    enum store_step step;
    int status;     /* outcome so far */
    int timeout_ms; /* its deadline */
    int keep;       /* store_submit_opts.keep_unregistered */
    int unknown;    /* failed with the COMMIT on its way */
    int solo;       /* never in a batch (one already failed with it) */

    /* parameters, owned */
    char key[72], flow[32], ref[24], msisdn[20], lang[12], channel[8];
    char started[24], sub_id[24], sleep_ms[16];
    char *answers; /* redacted JSON text */
    unsigned char nid_enc[STORE_ENC_MAX], nid_hash[STORE_HASH_BYTES];
    unsigned char pp_enc[STORE_ENC_MAX], pp_hash[STORE_HASH_BYTES];
    int nid_enc_len, pp_enc_len; /* 0: none */
    unsigned char *pers_enc;     /* the other personal answers, encrypted */
    unsigned char pers_hash[STORE_HASH_BYTES]; /* their keyed hash */
    int pers_enc_len;                          /* 0: none */

    /* result */
    int duplicate, id_shared;
    enum store_rec_status rstatus;
    char ref_out[24], reason[256], lang_out[12], errstr[160];
};

TAILQ_HEAD(store_req_list, store_req);

struct store_conn {
    unsigned magic;
    struct store *s;
    enum store_conn_state state;
    struct store_link l;
    int setup_next;        /* next statement to prepare */
    PGresult *res;         /* result of the command in flight */
    struct store_req *req; /* the request whose step is in flight */
    /* a batch: registrations sharing one transaction, run one after the
     * other (req is batch[bi]); nbatch 0 when req runs alone */
    struct store_req *batch[STORE_BATCH_MAX];
    int nbatch, bi;
    enum store_step req_step; /* set by store_conn_detach() */
};

struct store {
    unsigned magic;
    struct event_base *base;
    char *dsn;
    int pool, timeout_ms, max_waiting, batch;
    int running;
    struct store_keys *keys; /* sodium_malloc: locked, not in core dumps */
    struct store_conn *conns;
    struct store_req_list waiting;
    int nwaiting;
    struct event *kick;
    char errstr[256];
};

static void store_conn_on_io(evutil_socket_t fd, short what, void *arg);
static void store_conn_on_timer(evutil_socket_t fd, short what, void *arg);
static void store_conn_drop(struct store_conn *c, int status, const char *why);
static void store_dispatch(struct store *s);

const char *
store_strerror(int err)
{
    switch (err) {
#define STORE_X_STR(name, val, text)                                           \
    case name:                                                                 \
        return text;
        STORE_ERRORS(STORE_X_STR)
#undef STORE_X_STR
    default:
        return "unknown error";
    }
}

const char *
store_rec_status_name(enum store_rec_status st)
{
    switch (st) {
    case STORE_REC_PENDING:
        return "pending";
    case STORE_REC_VERIFIED:
        return "verified";
    case STORE_REC_REJECTED:
        return "rejected";
    case STORE_REC_NEEDS_INFO:
        return "needs_info";
    case STORE_REC_NONE:
    default:
        return "none";
    }
}

static enum store_rec_status
store_rec_status_parse(const char *s)
{
    if (strcmp(s, "pending") == 0) return STORE_REC_PENDING;
    if (strcmp(s, "verified") == 0) return STORE_REC_VERIFIED;
    if (strcmp(s, "rejected") == 0) return STORE_REC_REJECTED;
    if (strcmp(s, "needs_info") == 0) return STORE_REC_NEEDS_INFO;
    return STORE_REC_NONE;
}

void
store_assert_fail(const char *func, const char *file, int line,
                  const char *cond)
{
    fprintf(stderr, "store: assertion failed in %s %s:%d: %s\n", func, file,
            line, cond);
    abort();
}

const struct store_keys *
store_keys_of(const struct store *s)
{
    return s->keys;
}

const char *
store_errstr(const struct store *s)
{
    return s->errstr;
}

/* Remember a libpq message, on one line. */
static void
store_set_err(struct store *s, const char *what, const char *msg)
{
    snprintf(s->errstr, sizeof(s->errstr), "%s: %s", what, msg ? msg : "");
    for (char *p = s->errstr; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

/* ------------------------------------------------------------------------
 * Requests
 */

static void
store_req_free(struct store_req *r)
{
    if (r == NULL) return;
    if (r->deadline) event_free(r->deadline);
    free(r->answers);
    free(r->pers_enc);
    sodium_memzero(r, sizeof(*r));
    free(r);
}

/* The request is detached from every list and connection: run its
 * callback and free it. */
static void
store_req_complete(struct store_req *r)
{
    struct store_result res;
    store_submit_cb *cb = r->cb;
    void *arg = r->arg;
    int status = r->status;

    STORE_AN(r->magic == STORE_REQ_MAGIC);
    STORE_AN(!r->queued && r->conn == NULL);
    event_del(r->deadline);
    res.ref = r->ref_out;
    res.duplicate = r->duplicate;
    res.status = r->rstatus;
    res.reject_reason = r->reason;
    res.lang = r->lang_out;
    res.id_shared = r->id_shared;
    res.unknown = r->unknown;
    res.errstr = status == 0    ? ""
                 : r->errstr[0] ? r->errstr
                                : store_strerror(status);
    cb(status, &res, arg);
    store_req_free(r);
}

static void
store_req_unqueue(struct store_req *r)
{
    struct store *s = r->s;

    if (r->queued) {
        TAILQ_REMOVE(&s->waiting, r, link);
        r->queued = 0;
        s->nwaiting--;
    }
}

static void
store_req_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct store_req *r = arg;

    (void)fd;
    (void)what;
    STORE_AN(r->magic == STORE_REQ_MAGIC);
    r->status = STORE_ETIMEDOUT;
    snprintf(r->errstr, sizeof(r->errstr), "query deadline of %d ms passed",
             r->timeout_ms);
    if (r->queued) {
        store_req_unqueue(r);
        store_req_complete(r);
    } else {
        /* Close the connection that runs it: drop settles the connection,
         * then calls back with r->status. */
        STORE_AN(r->conn != NULL);
        store_conn_drop(r->conn, STORE_ETIMEDOUT, "query deadline passed");
    }
}

/* A request with its deadline (timeout_ms, <= 0: the store's) running, or
 * NULL. */
static struct store_req *
store_req_new(struct store *s, enum store_req_kind kind, int timeout_ms,
              store_submit_cb *cb, void *arg)
{
    struct store_req *r = calloc(1, sizeof(*r));
    struct timeval tv;

    if (r == NULL) return NULL;
    r->magic = STORE_REQ_MAGIC;
    r->s = s;
    r->kind = kind;
    r->cb = cb;
    r->arg = arg;
    r->deadline = evtimer_new(s->base, store_req_on_deadline, r);
    if (r->deadline == NULL) {
        free(r);
        return NULL;
    }
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : s->timeout_ms;
    tv.tv_sec = r->timeout_ms / 1000;
    tv.tv_usec = (r->timeout_ms % 1000) * 1000;
    evtimer_add(r->deadline, &tv);
    return r;
}

/* Queue r (the deadline already runs); the loop hands it to a connection.
 * Returns 0 or STORE_EBUSY (r is then freed). */
static int
store_req_enqueue(struct store *s, struct store_req *r)
{
    if (s->nwaiting >= s->max_waiting) {
        store_req_free(r);
        return STORE_EBUSY;
    }
    TAILQ_INSERT_TAIL(&s->waiting, r, link);
    r->queued = 1;
    s->nwaiting++;
    event_active(s->kick, EV_TIMEOUT, 0);
    return 0;
}

/* ------------------------------------------------------------------------
 * Record parsing
 */

static int
store_json_str(json_t *obj, const char *name, char *out, size_t cap,
               int required)
{
    json_t *v = json_object_get(obj, name);
    const char *s;

    if (v == NULL || json_is_null(v)) {
        out[0] = '\0';
        return required ? -1 : 0;
    }
    if (!json_is_string(v)) return -1;
    s = json_string_value(v);
    if (strlen(s) >= cap) return -1;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int
store_str_chars(const char *s, const char *allowed, size_t min, size_t max)
{
    size_t n = strlen(s);
    return n >= min && n <= max && strspn(s, allowed) == n;
}

/* An answer of the type its action declares (flows/flow.h,
 * FLOW_ACTION_FIELDS); null is no answer. */
static int
store_ans_typed(json_t *v, enum flow_ftype t)
{
    json_t *it;
    size_t i;

    if (json_is_null(v)) return 1;
    switch (t) {
    case FLOW_FT_TEXT:
        return json_is_string(v) && strlen(json_string_value(v)) <= 300;
    case FLOW_FT_CODE:
        return json_is_string(v) && strlen(json_string_value(v)) >= 1 &&
               strlen(json_string_value(v)) <= 64;
    case FLOW_FT_INT:
        return json_is_integer(v);
    case FLOW_FT_CODES:
        if (!json_is_array(v) || json_array_size(v) > 64) return 0;
        json_array_foreach(v, i, it)
        {
            if (!json_is_string(it) || strlen(json_string_value(it)) == 0 ||
                strlen(json_string_value(it)) > 64)
                return 0;
        }
        return 1;
    case FLOW_FT_NID:
    case FLOW_FT_PASSPORT:
    case FLOW_FT_ID: /* made nid or passport by store_id_number() first */
        return json_is_string(v);
    case FLOW_FT__N:
    default:
        STORE_WRONG("field type");
    }
}

/* An optional integer answer within [lo, hi]. */
static int
store_ans_int(json_t *a, const char *name, long lo, long hi)
{
    json_t *v = json_object_get(a, name);
    return v == NULL || json_is_null(v) ||
           (json_is_integer(v) && json_integer_value(v) >= lo &&
            json_integer_value(v) <= hi);
}

/* Encrypt and hash one ID answer (field a, of an ID type) into the
 * columns of its type and replace its plaintext in the answers by "***".
 * 0, or STORE_EINVAL. */
static int
store_req_id(struct store *s, struct store_req *r, json_t *ans,
             const struct flow_afield *a)
{
    json_t *v = json_object_get(ans, a->field);
    const char *type = flow_ftype_name(a->type);
    int pp = a->type == FLOW_FT_PASSPORT;
    unsigned char *enc = pp ? r->pp_enc : r->nid_enc;
    unsigned char *hash = pp ? r->pp_hash : r->nid_hash;
    int *enclen = pp ? &r->pp_enc_len : &r->nid_enc_len;
    char norm[STORE_ID_MAX];
    int rc = STORE_EINVAL;

    if (v == NULL || json_is_null(v)) return 0;
    if (*enclen > 0 || /* two fields of one ID type */
        store_id_normalise(type, json_string_value(v), norm, sizeof(norm)) < 0)
        goto done;
    *enclen = store_id_encrypt(s->keys, norm, r->msisdn, enc);
    if (*enclen < 0) {
        *enclen = 0;
        goto done;
    }
    store_id_hash_keys(s->keys, type, norm, hash);
    rc = json_object_set_new(ans, a->field, json_string("***")) == 0
             ? 0
             : STORE_ENOMEM;
done:
    sodium_memzero(norm, sizeof(norm));
    return rc;
}

/* One answer "id_number" (an NID or a passport number, flow validator
 * "id") becomes "nid" or "passport": with a letter in it a passport
 * number.  0, or -1 when it is not a string or the record has both. */
static int
store_id_number(json_t *ans)
{
    json_t *v = json_object_get(ans, "id_number");
    if (v == NULL || json_is_null(v)) return 0;
    if (!json_is_string(v) || json_object_get(ans, "nid") != NULL ||
        json_object_get(ans, "passport") != NULL)
        return -1;
    const char *s = json_string_value(v);
    int letter = 0;
    for (; *s; s++)
        letter |= (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z');
    if (json_object_set(ans, letter ? "passport" : "nid", v) != 0) return -1;
    return json_object_del(ans, "id_number");
}

/* Every personal answer of action that is not an ID number goes into one
 * encrypted JSON object (returnees.personal_enc, bound to the msisdn) and
 * is replaced by "***" in the answers kept in clear.  0, STORE_ENOMEM or
 * STORE_ECRYPTO. */
static int
store_req_personal(struct store *s, struct store_req *r, json_t *ans,
                   const char *action)
{
    json_t *pers = json_object();
    char *text = NULL;
    int rc = STORE_ENOMEM;

    if (pers == NULL) return STORE_ENOMEM;
    for (const struct flow_afield *a = flow_afields; a->action != NULL; a++) {
        json_t *v;
        if (!a->personal || flow_ftype_is_id(a->type) ||
            strcmp(a->action, action) != 0 ||
            (v = json_object_get(ans, a->field)) == NULL || json_is_null(v))
            continue;
        if (json_object_set(pers, a->field, v) != 0 ||
            json_object_set_new(ans, a->field, json_string("***")) != 0)
            goto done;
    }
    rc = 0;
    if (json_object_size(pers) == 0) goto done;
    text = json_dumps(pers, JSON_COMPACT);
    if (text == NULL) {
        rc = STORE_ENOMEM;
        goto done;
    }
    /* the keyed hash tells a changed name from the same one (a verified
     * record stays verified) without decrypting */
    store_id_hash_keys(s->keys, "personal", text, r->pers_hash);
    r->pers_enc = malloc(strlen(text) + STORE_ENC_OVERHEAD);
    r->pers_enc_len = r->pers_enc
                          ? store_personal_encrypt(s->keys, text, strlen(text),
                                                   r->msisdn, r->pers_enc)
                          : -1;
    if (r->pers_enc_len < 0) {
        r->pers_enc_len = 0;
        rc = r->pers_enc ? STORE_ECRYPTO : STORE_ENOMEM;
    }
done:
    if (text) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    json_decref(pers);
    return rc;
}

/* Fill r from a flow record.  0 or STORE_EINVAL / STORE_ENOMEM.  The
 * answers are held to the action's declared fields (flows/flow.h): an
 * answer the action does not take, or of another type, makes the record
 * invalid; the personal ones are encrypted by their declaration, whatever
 * the flow called its field. */
static int
store_req_parse(struct store *s, struct store_req *r, const char *json,
                size_t len)
{
    static const char hexalnum[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-";
    static const char digits[] = "0123456789";
    char action[40], sex[4];
    const char *k;
    json_error_t jerr;
    json_t *root, *ans, *v;
    int rc = STORE_EINVAL;

    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) goto done;
    if (store_json_str(root, "action", action, sizeof(action), 1) ||
        store_json_str(root, "flow", r->flow, sizeof(r->flow), 1) ||
        store_json_str(root, "key", r->key, sizeof(r->key), 1) ||
        store_json_str(root, "ref", r->ref, sizeof(r->ref), 1) ||
        store_json_str(root, "msisdn", r->msisdn, sizeof(r->msisdn), 1) ||
        store_json_str(root, "channel", r->channel, sizeof(r->channel), 1) ||
        store_json_str(root, "lang", r->lang, sizeof(r->lang), 0))
        goto done;
    if (strcmp(action, "submit_registration") == 0)
        r->kind = STORE_REQ_REGISTER;
    else if (strcmp(action, "update_skills") == 0)
        r->kind = STORE_REQ_SKILLS;
    else if (strcmp(action, "submit_part") == 0)
        r->kind = STORE_REQ_PART;
    else
        goto done;
    if (!store_str_chars(r->key, hexalnum, 16, 64) ||
        !store_str_chars(r->ref, hexalnum, 4, 16) ||
        !store_str_chars(r->msisdn, digits, 8, 15) ||
        !store_str_chars(r->flow, hexalnum, 1, 31) ||
        (strcmp(r->channel, "ussd") != 0 && strcmp(r->channel, "sms") != 0))
        goto done;
    v = json_object_get(root, "started");
    if (v != NULL && json_is_integer(v) && json_integer_value(v) > 0)
        snprintf(r->started, sizeof(r->started), "%lld",
                 (long long)json_integer_value(v));
    else if (v != NULL && !json_is_null(v))
        goto done;
    ans = json_object_get(root, "answers");
    if (ans == NULL || !json_is_object(ans)) goto done;
    if (store_id_number(ans) != 0) goto done;
    json_object_foreach(ans, k, v)
    {
        const struct flow_afield *a = flow_afield_find(action, k);
        if (a == NULL || !store_ans_typed(v, a->type)) goto done;
    }
    if (r->kind == STORE_REQ_REGISTER || r->kind == STORE_REQ_PART) {
        if (store_json_str(ans, "sex", sex, sizeof(sex), 0) ||
            (sex[0] && strcmp(sex, "m") && strcmp(sex, "f") &&
             strcmp(sex, "x")))
            goto done;
        v = json_object_get(ans, "country");
        if (v && !json_is_null(v) &&
            !store_str_chars(json_string_value(v), "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                             2, 2))
            goto done;
        if (!store_ans_int(ans, "birth_year", 1900, 2100) ||
            !store_ans_int(ans, "return_year", 1900, 2100) ||
            !store_ans_int(ans, "years_abroad", 0, 100))
            goto done;
    } else if ((v = json_object_get(ans, "skills")) == NULL ||
               json_is_null(v)) {
        goto done;
    }
    for (const struct flow_afield *a = flow_afields; a->action != NULL; a++)
        if (a->personal && flow_ftype_is_id(a->type) &&
            strcmp(a->action, action) == 0 &&
            (rc = store_req_id(s, r, ans, a)) != 0)
            goto done;
    if ((rc = store_req_personal(s, r, ans, action)) != 0) goto done;
    r->answers = json_dumps(ans, JSON_COMPACT);
    rc = r->answers ? 0 : STORE_ENOMEM;
done:
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------------
 * Connections
 */

/* Take c's request, or every request of its batch, off c into reqs
 * (STORE_BATCH_MAX), each with conn NULL; c->req_step keeps the step that
 * was in flight.  Returns how many. */
static int
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
static void
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

static void
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

static void
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
static void
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

static void
store_on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store_dispatch(arg);
}

/* ------------------------------------------------------------------------
 * Public
 */

struct store *
store_new(const struct store_config *cfg, struct event_base *base, char *err,
          size_t errlen)
{
    struct store *s;

    if (cfg == NULL || base == NULL || cfg->pool < 0 || cfg->pool > 64 ||
        cfg->timeout_ms < 0 || cfg->max_waiting < 0 || cfg->batch < 0 ||
        cfg->batch > STORE_BATCH_MAX) {
        snprintf(err, errlen, "store: bad configuration");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "store: out of memory");
        return NULL;
    }
    s->magic = STORE_MAGIC;
    s->base = base;
    s->pool = cfg->pool ? cfg->pool : 4;
    s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 2000;
    s->max_waiting = cfg->max_waiting ? cfg->max_waiting : 1024;
    s->batch = cfg->batch ? cfg->batch : 1;
    TAILQ_INIT(&s->waiting);
    /* guard pages, mlock and MADV_DONTDUMP (libsodium 1.0.18's
     * sodium_malloc() does all three), so the keys stay out of swap and of
     * any core dump */
    s->keys = sodium_init() >= 0 ? sodium_malloc(sizeof(*s->keys)) : NULL;
    if (s->keys == NULL) {
        snprintf(err, errlen, "store: out of memory for the keys");
        goto fail;
    }
    if (store_keys_load(cfg->key_file, s->keys, err, errlen) != 0) goto fail;
    s->dsn = strdup(cfg->dsn ? cfg->dsn : "");
    s->conns = calloc((size_t)s->pool, sizeof(*s->conns));
    s->kick = event_new(base, -1, 0, store_on_kick, s);
    if (s->dsn == NULL || s->conns == NULL || s->kick == NULL) {
        snprintf(err, errlen, "store: out of memory");
        goto fail;
    }
    for (int i = 0; i < s->pool; i++) {
        struct store_conn *c = &s->conns[i];
        c->magic = STORE_CONN_MAGIC;
        c->s = s;
        if (store_link_init(&c->l, base, store_conn_on_io, store_conn_on_timer,
                            c) != 0) {
            snprintf(err, errlen, "store: out of memory");
            goto fail;
        }
    }
    return s;
fail:
    store_free(s);
    return NULL;
}

int
store_start(struct store *s)
{
    STORE_AN(s->magic == STORE_MAGIC);
    if (s->running) return STORE_EINVAL;
    s->running = 1;
    for (int i = 0; i < s->pool; i++) {
        s->conns[i].l.backoff_ms = 0;
        store_link_schedule(&s->conns[i].l, 0);
    }
    return 0;
}

void
store_stop(struct store *s)
{
    struct store_req_list failed;
    struct store_req *r;

    STORE_AN(s->magic == STORE_MAGIC);
    if (!s->running) return;
    s->running = 0;
    event_del(s->kick);
    TAILQ_INIT(&failed);
    /* Settle everything first, then call back. */
    for (int i = 0; i < s->pool; i++) {
        struct store_conn *c = &s->conns[i];
        struct store_req *reqs[STORE_BATCH_MAX];
        int n = store_conn_detach(c, reqs);
        store_conn_drop(c, STORE_EDOWN, NULL);
        for (int k = 0; k < n; k++)
            TAILQ_INSERT_TAIL(&failed, reqs[k], link);
    }
    while ((r = TAILQ_FIRST(&s->waiting)) != NULL) {
        store_req_unqueue(r);
        TAILQ_INSERT_TAIL(&failed, r, link);
    }
    while ((r = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, r, link);
        r->status = STORE_EDOWN;
        snprintf(r->errstr, sizeof(r->errstr), "store stopped");
        store_req_complete(r);
    }
}

void
store_free(struct store *s)
{
    if (s == NULL) return;
    STORE_AN(s->magic == STORE_MAGIC);
    store_stop(s);
    for (int i = 0; s->conns && i < s->pool; i++)
        store_link_fini(&s->conns[i].l);
    if (s->kick) event_free(s->kick);
    free(s->conns);
    free(s->dsn);
    if (s->keys != NULL) {
        store_keys_wipe(s->keys);
        sodium_free(s->keys);
    }
    s->magic = 0;
    free(s);
}

int
store_connected(const struct store *s)
{
    int n = 0;

    for (int i = 0; i < s->pool; i++)
        if (s->conns[i].state == STORE_CONN_IDLE ||
            s->conns[i].state == STORE_CONN_BUSY)
            n++;
    return n;
}

/* Checks shared by every request. */
static int
store_can_take(const struct store *s)
{
    if (!s->running || store_connected(s) == 0) return STORE_EDOWN;
    if (s->nwaiting >= s->max_waiting) return STORE_EBUSY;
    return 0;
}

int
store_submit(struct store *s, const char *record_json, size_t len,
             store_submit_cb *cb, void *arg)
{
    return store_submit_with(s, record_json, len, NULL, cb, arg);
}

int
store_submit_with(struct store *s, const char *record_json, size_t len,
                  const struct store_submit_opts *opts, store_submit_cb *cb,
                  void *arg)
{
    struct store_req *r;
    int rc;

    if (s == NULL || record_json == NULL || cb == NULL) return STORE_EINVAL;
    STORE_AN(s->magic == STORE_MAGIC);
    if ((rc = store_can_take(s)) != 0) return rc;
    r = store_req_new(s, STORE_REQ_REGISTER, opts ? opts->timeout_ms : 0, cb,
                      arg);
    if (r == NULL) return STORE_ENOMEM;
    r->keep = opts ? opts->keep_unregistered : 0;
    rc = store_req_parse(s, r, record_json, len);
    if (rc != 0) {
        store_req_free(r);
        return rc;
    }
    return store_req_enqueue(s, r);
}

int
store_status(struct store *s, const char *msisdn, store_status_cb *cb,
             void *arg)
{
    struct store_req *r;
    int rc;

    if (s == NULL || msisdn == NULL || cb == NULL ||
        !store_str_chars(msisdn, "0123456789", 8, 15))
        return STORE_EINVAL;
    STORE_AN(s->magic == STORE_MAGIC);
    if ((rc = store_can_take(s)) != 0) return rc;
    r = store_req_new(s, STORE_REQ_STATUS, 0, cb, arg);
    if (r == NULL) return STORE_ENOMEM;
    snprintf(r->msisdn, sizeof(r->msisdn), "%s", msisdn);
    return store_req_enqueue(s, r);
}

int
store_ping(struct store *s, int sleep_ms, store_status_cb *cb, void *arg)
{
    struct store_req *r;
    int rc;

    if (s == NULL || cb == NULL || sleep_ms < 0 || sleep_ms > 600000)
        return STORE_EINVAL;
    STORE_AN(s->magic == STORE_MAGIC);
    if ((rc = store_can_take(s)) != 0) return rc;
    r = store_req_new(s, STORE_REQ_PING, 0, cb, arg);
    if (r == NULL) return STORE_ENOMEM;
    snprintf(r->sleep_ms, sizeof(r->sleep_ms), "%d", sleep_ms);
    return store_req_enqueue(s, r);
}
