/*
 * con_api.c -- the /api/ dispatcher: one place that decides, for every
 * request, in this order:
 *
 *   404  no route's pattern matches the path
 *   405  a pattern matches but not with this method (Allow lists those that do)
 *   401  the route needs a session and the cookie names no live one
 *        (unknown, logged out, idle or absolute timeout, account disabled)
 *   403  the officer's role is not among the route's (audited as denied),
 *        an admin without TOTP on a route other than the enrolment ones,
 *        or a write without the session's X-CSRF-Token
 *
 * then calls the route's handler with a struct con_call: the path's "{}"
 * segments, the officer (id, username, role, districts) and the session.
 * The session is looked up in PostgreSQL on every call (console_sessions,
 * one prepared statement in one round trip), so a logout, a disabled
 * account or a password change on any worker ends it everywhere at once.
 * It writes only when it must: last_seen_at moves when it is older than a
 * sixtieth of the idle timeout (30 s of 30 min), so a page of requests is
 * one write, not one per request; and a session found over is ended with
 * its reason in the same statement.
 *
 * Replies: con_reply_json() and con_reply_error() are the only ways out
 * (errors are {"error":code,"message":text} and one log line), each with
 * Cache-Control: no-store.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "console/con_int.h"

/* ------------------------------------------------------------------------
 * Replies
 */

void
con_reply_json(struct con_call *call, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    con_reply_json_text(call, status, text);
    free(text);
}

void
con_reply_json_text(struct con_call *call, int status, const char *text)
{
    gw_req_header_add(call->req, "Cache-Control", "no-store");
    if (text == NULL) {
        gw_reply_text(call->req, 500, "application/json",
                      "{\"error\":\"internal\",\"message\":\"out of memory\"}");
        return;
    }
    gw_reply_text(call->req, status, "application/json", text);
}

void
con_reply_error(struct con_call *call, int status, const char *code,
                const char *message)
{
    json_t *o = json_pack("{s:s,s:s}", "error", code, "message", message);
    char path[96];
    const char *p = gw_req_path(call->req);

    if (!gw_req_answered(call->req))
        GW_RLOG(status >= 500 ? GW_LEVEL_WARN : GW_LEVEL_INFO, call->req, 0,
                "api refused status=%d error=%s path=%s officer=%lld", status,
                code, gw_log_quote(path, sizeof(path), p, strlen(p)),
                call->has_session ? call->who.id : 0LL);
    if (o == NULL) {
        gw_reply_text(call->req, status, "application/json",
                      "{\"error\":\"internal\",\"message\":\"out of memory\"}");
        return;
    }
    con_reply_json(call, status, o);
}

void
con_reply_store_error(struct con_call *call, int status,
                      const struct store_tx_result *res)
{
    GW_RLOG(GW_LEVEL_WARN, call->req, 0, "api store status=%s err=%s",
            store_strerror(status), res ? store_tx_errstr(res) : "");
    con_reply_error(call, 503, "unavailable",
                    status == STORE_EDOWN ? CON_DB_DOWN_MSG
                                          : "the database did not answer; "
                                            "try again");
}

json_t *
con_body_or_400(struct con_call *call)
{
    const char *ct = gw_req_header(call->req, "Content-Type");
    size_t len;
    const char *body = gw_req_body(call->req, &len);
    json_error_t jerr;
    json_t *o;

    if (ct == NULL || strncmp(ct, "application/json", 16) != 0) {
        con_reply_error(call, 415, "bad_type",
                        "send the body as application/json");
        return NULL;
    }
    o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        con_reply_error(call, 400, "bad_json", "the body is not a JSON object");
        return NULL;
    }
    return o;
}

void
con_tx_init(const struct con_call *call, struct store_tx *tx)
{
    memset(tx, 0, sizeof(*tx));
    if (call->has_session) {
        tx->officer = call->who.id_text;
        tx->role = call->who.role;
        tx->districts = call->who.districts;
    }
}

static const char con_audit_sql[] =
    "INSERT INTO audit_log (actor, actor_id, role, source, action, target,"
    " outcome, detail) VALUES ($1, $2::bigint, $3, $4, $5, $6, $7,"
    " coalesce($8::jsonb, '{}'::jsonb))";

int
con_audit_add(const struct con_call *call, struct store_tx *tx,
              const char *actor_name, const char *action, const char *target,
              const char *outcome, const char *detail)
{
    struct store_tx_stmt *st;

    if (tx->n >= STORE_TX_STMTS) return -1;
    st = &tx->stmt[tx->n++];
    memset(st, 0, sizeof(*st));
    st->sql = con_audit_sql;
    st->nparams = 8;
    st->params[0] = call->has_session ? call->who.username
                    : actor_name      ? actor_name
                                      : "anonymous";
    st->params[1] = call->has_session ? call->who.id_text : NULL;
    st->params[2] = call->has_session ? call->who.role : NULL;
    st->params[3] = call->source;
    st->params[4] = action;
    st->params[5] = target;
    st->params[6] = outcome;
    st->params[7] = detail;
    return 0;
}

int
con_tx_or_503(struct con_call *call, const struct store_tx *tx, store_tx_cb *cb)
{
    int rc = store_pool_tx(call->con->pool, tx, cb, call);

    if (rc == 0) return 0;
    GW_RLOG(GW_LEVEL_WARN, call->req, 0, "api store refused now status=%s",
            store_strerror(rc));
    con_reply_error(call, 503, "unavailable", CON_DB_DOWN_MSG);
    return -1;
}

/* The standby's lag, once it has replayed what the primary had at the
 * session check (032); NULL when read from a primary. */
static const char con_read_lag_sql[] =
    "SELECT remigate_read_lag(0.1, $1::pg_lsn)";

int
con_read_tx_or_503(struct con_call *call, struct store_tx *tx, store_tx_cb *cb)
{
    struct store_pool *p =
        call->con->read_pool ? call->con->read_pool : call->con->pool;
    int rc;

    if (tx->n >= STORE_TX_STMTS) {
        con_reply_error(call, 503, "unavailable", "query too large");
        return -1;
    }
    memmove(&tx->stmt[CON_READ_ROWS], &tx->stmt[0],
            (size_t)tx->n * sizeof(tx->stmt[0]));
    tx->stmt[CON_READ_LAG] = (struct store_tx_stmt){
        con_read_lag_sql, 1, {call->primary_lsn[0] ? call->primary_lsn : NULL}};
    tx->n++;
    tx->prepare = tx->prepare << 1 | 1u; /* the lag's plan: one, whatever $1 */
    rc = store_pool_tx(p, tx, cb, call);
    if (rc == 0) return 0;
    GW_RLOG(GW_LEVEL_WARN, call->req, 0, "api store refused now status=%s%s",
            store_strerror(rc), call->con->read_pool ? " pool=read" : "");
    con_reply_error(call, 503, "unavailable", CON_DB_DOWN_MSG);
    return -1;
}

void
con_read_lag(json_t *o, const struct store_tx_result *res, int stmt)
{
    const char *v = store_tx_value(res, stmt, 0, 0);

    /* one decimal: the page says "3.2 s behind" */
    json_object_set_new(o, "lag_s",
                        v ? json_real(round(strtod(v, NULL) * 10) / 10)
                          : json_null());
}

/* ------------------------------------------------------------------------
 * Routing
 */

int
con_path_match(const char *pattern, const char *path,
               char params[CON_PARAMS_MAX][CON_PARAM_MAX], int *nparams)
{
    const char *p = pattern, *s = path;
    int np = 0;

    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            size_t n = strcspn(s, "/");
            if (n == 0 || n >= CON_PARAM_MAX || np >= CON_PARAMS_MAX) return 0;
            for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                      c == '-'))
                    return 0;
            }
            if (params) {
                memcpy(params[np], s, n);
                params[np][n] = '\0';
            }
            np++;
            p += 2;
            s += n;
            continue;
        }
        if (*p != *s) return 0;
        p++;
        s++;
    }
    if (*p || *s) return 0;
    if (nparams) *nparams = np;
    return 1;
}

static const char *
con_method_name(unsigned m)
{
    switch (m) {
    case GW_METHOD_GET:
        return "GET";
    case GW_METHOD_POST:
        return "POST";
    case GW_METHOD_HEAD:
        return "HEAD";
    case GW_METHOD_PUT:
        return "PUT";
    case GW_METHOD_DELETE:
        return "DELETE";
    case GW_METHOD_PATCH:
        return "PATCH";
    default:
        return "?";
    }
}

int
con_cookie_parse(const char *h, char out[CON_TOKEN_HEX + 1])
{
    const char *p = h;
    size_t klen = strlen(CON_COOKIE);

    while (p != NULL && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        if (strncmp(p, CON_COOKIE, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, "; ");
            if (n != CON_TOKEN_HEX) return 0;
            for (size_t i = 0; i < n; i++)
                if (!((v[i] >= '0' && v[i] <= '9') ||
                      (v[i] >= 'a' && v[i] <= 'f')))
                    return 0;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
        p = strchr(p, ';');
    }
    return 0;
}

int
con_cookie_sid_of(struct gw_req *r, char out[CON_TOKEN_HEX + 1])
{
    return con_cookie_parse(gw_req_header(r, "Cookie"), out);
}

static void
con_on_deadline(struct gw_req *r, void *arg)
{
    struct con_call *call = arg;

    (void)r;
    con_reply_error(call, 503, "timeout", "the console did not answer in time");
}

/* What con_deny() answers once the audit row is in. */
struct con_denial {
    int status;
    const char *code, *message;
};

static void
con_on_denied(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    const struct con_denial *d = call->data;

    if (status != 0)
        GW_RLOG(GW_LEVEL_WARN, call->req, 0,
                "api denial not audited status=%s err=%s",
                store_strerror(status), res ? store_tx_errstr(res) : "");
    con_reply_error(call, d->status, d->code, d->message);
}

void
con_deny(struct con_call *call, int status, const char *code,
         const char *message, const char *reason)
{
    struct con_denial *d = gw_req_alloc(call->req, sizeof(*d));
    char *detail = gw_req_alloc(call->req, 256);
    const struct con_route *rt = call->route;
    struct store_tx tx;

    if (d == NULL || detail == NULL) {
        con_reply_error(call, status, code, message);
        return;
    }
    d->status = status;
    d->code = code;
    d->message = message;
    snprintf(detail, 256,
             "{\"reason\":\"%s\",\"method\":\"%s\",\"route\":\"%s\"}", reason,
             rt ? con_method_name(rt->method) : "", rt ? rt->pattern : "");
    call->data = d;
    con_tx_init(call, &tx);
    CON_AZ(con_audit_add(call, &tx, NULL, "access.denied",
                         gw_req_path(call->req), "denied", detail));
    if (store_pool_tx(call->con->pool, &tx, con_on_denied, call) != 0)
        con_on_denied(STORE_EDOWN, NULL, call);
}

/* After the session: role, second factor, CSRF, then the handler. */
static void
con_gate(struct con_call *call)
{
    const struct con_route *rt = call->route;
    const char *tok;

    if (!(rt->access & call->who.role_bit)) {
        con_deny(call, 403, "forbidden", "your role may not do this", "role");
        return;
    }
    if (call->who.role_bit == CON_ROLE_ADMIN && !call->who.totp_enabled &&
        call->con->admin_totp_required && !(rt->access & CON_PRE_MFA)) {
        con_deny(call, 403, "totp_required",
                 "enrol a second factor (TOTP) first", "totp");
        return;
    }
    if (rt->csrf) {
        tok = gw_req_header(call->req, "X-CSRF-Token");
        if (tok == NULL || strlen(tok) != CON_TOKEN_HEX ||
            sodium_memcmp(tok, call->who.csrf, CON_TOKEN_HEX) != 0) {
            con_deny(call, 403, "csrf",
                     "the X-CSRF-Token header is missing or wrong", "csrf");
            return;
        }
    }
    rt->handler(call);
}

/* $1 the session id's hash (hex), $2 the absolute timeout, $3 the idle
 * timeout, $4 the admins' (seconds).  One row: the officer (id, username,
 * role, totp_enabled, csrf, districts), NULL and the primary's WAL
 * position (for the dashboards' lag on a standby), or NULLs and why the
 * session just ended; no row: no such session, or one already ended. */
static const char con_session_sql[] =
    "WITH s AS (SELECT s.id_hash, s.csrf, s.last_seen_at, o.id, o.username,"
    "  o.role, o.totp_enabled,"
    "  CASE WHEN o.disabled_at IS NOT NULL THEN 'disabled'"
    "   WHEN s.created_at <= now() - make_interval(secs => $2::int)"
    "    THEN 'absolute'"
    "   WHEN s.last_seen_at <= now() - make_interval(secs => i.idle)"
    "    THEN 'idle' END AS why,"
    "  make_interval(secs => i.idle / 60.0) AS grain"
    "  FROM console_sessions s JOIN officers o ON o.id = s.officer_id,"
    "  LATERAL (SELECT CASE o.role WHEN 'admin' THEN $4::int"
    "   ELSE $3::int END AS idle) i"
    "  WHERE s.id_hash = decode($1, 'hex') AND s.ended_at IS NULL),"
    " seen AS (UPDATE console_sessions c SET last_seen_at = now() FROM s"
    "  WHERE c.id_hash = s.id_hash AND s.why IS NULL"
    "  AND s.last_seen_at < now() - s.grain AND c.ended_at IS NULL),"
    " ended AS (UPDATE console_sessions c SET ended_at = now(),"
    "  ended_why = s.why FROM s WHERE c.id_hash = s.id_hash"
    "  AND s.why IS NOT NULL AND c.ended_at IS NULL RETURNING c.ended_why)"
    " SELECT s.id, s.username, s.role, s.totp_enabled, s.csrf,"
    "  coalesce((SELECT string_agg(d.district, ',' ORDER BY d.district)"
    "   FROM officer_districts d WHERE d.officer_id = s.id), ''), NULL,"
    "  CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END"
    " FROM s WHERE s.why IS NULL"
    " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, e.ended_why, NULL"
    " FROM ended e";

static void
con_on_session(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    const char *v;

    CON_AN(call->magic == CON_CALL_MAGIC);
    if (status != 0) {
        con_reply_store_error(call, status, res);
        return;
    }
    if (store_tx_ntuples(res, 0) != 1 || store_tx_value(res, 0, 0, 0) == NULL) {
        const char *why = store_tx_value(res, 0, 0, 6);
        if (why != NULL)
            GW_RLOG(GW_LEVEL_INFO, call->req, 0, "api session ended why=%s",
                    why);
        con_reply_error(call, 401, why ? "session_expired" : "no_session",
                        why ? "the session has ended; log in again"
                            : "log in first");
        return;
    }
    call->has_session = 1;
    call->who.id = atoll(store_tx_value(res, 0, 0, 0));
    snprintf(call->who.id_text, sizeof(call->who.id_text), "%lld",
             call->who.id);
    snprintf(call->who.username, sizeof(call->who.username), "%s",
             store_tx_value(res, 0, 0, 1));
    snprintf(call->who.role, sizeof(call->who.role), "%s",
             store_tx_value(res, 0, 0, 2));
    call->who.role_bit = con_role_bit(call->who.role);
    v = store_tx_value(res, 0, 0, 3);
    call->who.totp_enabled = v != NULL && v[0] == 't';
    snprintf(call->who.csrf, sizeof(call->who.csrf), "%s",
             store_tx_value(res, 0, 0, 4));
    snprintf(call->who.districts, sizeof(call->who.districts), "%s",
             store_tx_value(res, 0, 0, 5));
    v = store_tx_value(res, 0, 0, 7);
    snprintf(call->primary_lsn, sizeof(call->primary_lsn), "%s", v ? v : "");
    con_gate(call);
}

/* Look the session up, then con_gate(). */
static void
con_session_check(struct con_call *call, const char *sid)
{
    const struct gw_config *cfg = call->con->cfg;
    struct store_tx tx;
    char abs_s[24], idle_s[24], admin_s[24];

    con_sha256_hex(sid, call->sid_hash);
    snprintf(abs_s, sizeof(abs_s), "%ld", cfg->con_absolute);
    snprintf(idle_s, sizeof(idle_s), "%ld", cfg->con_idle);
    snprintf(admin_s, sizeof(admin_s), "%ld", cfg->con_admin_idle);
    memset(&tx, 0, sizeof(tx));
    tx.n = 1;
    tx.prepare = 1u;
    tx.stmt[0].sql = con_session_sql;
    tx.stmt[0].nparams = 4;
    tx.stmt[0].params[0] = call->sid_hash;
    tx.stmt[0].params[1] = abs_s;
    tx.stmt[0].params[2] = idle_s;
    tx.stmt[0].params[3] = admin_s;
    con_tx_or_503(call, &tx, con_on_session);
}

void
con_api_handle(struct gw_req *r)
{
    struct con *con = gw_req_route_arg(r);
    const char *path = gw_req_path(r);
    unsigned method = gw_req_method(r), allow = 0;
    const struct con_route *rt = NULL;
    struct con_call *call;
    char sid[CON_TOKEN_HEX + 1];

    con_headers_add(r); /* every /api/ reply, errors too */
    if (con == NULL || con->pool == NULL) {
        gw_req_header_add(r, "Cache-Control", "no-store");
        gw_reply_text(r, 503, "application/json",
                      "{\"error\":\"unavailable\",\"message\":\"the console "
                      "needs postgres.dsn\"}");
        return;
    }
    CON_AN(con->magic == CON_MAGIC);
    call = gw_req_alloc(r, sizeof(*call));
    if (call == NULL) {
        gw_reply_error(r, 503, "out of memory");
        return;
    }
    call->magic = CON_CALL_MAGIC;
    call->req = r;
    call->con = con;
    call->source = gw_req_peer(r);
    gw_req_on_deadline(r, con_on_deadline, call);
    for (const struct con_route *const *t = con_route_tables; *t; t++)
        for (const struct con_route *x = *t; x->pattern; x++) {
            if (!con_path_match(x->pattern, path, NULL, NULL)) continue;
            allow |= x->method;
            if (x->method == method && rt == NULL) rt = x;
        }
    if (allow == 0) {
        con_reply_error(call, 404, "not_found", "no such API call");
        return;
    }
    if (rt == NULL) {
        char list[64];
        size_t used = 0;
        static const unsigned order[] = {GW_METHOD_GET, GW_METHOD_POST,
                                         GW_METHOD_PUT, GW_METHOD_PATCH,
                                         GW_METHOD_DELETE};
        list[0] = '\0';
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
            if (allow & order[i])
                used += (size_t)snprintf(list + used, sizeof(list) - used,
                                         "%s%s", used ? ", " : "",
                                         con_method_name(order[i]));
        gw_req_header_add(r, "Allow", list);
        con_reply_error(call, 405, "method_not_allowed",
                        "this API call does not take that method");
        return;
    }
    call->route = rt;
    CON_AN(con_path_match(rt->pattern, path, call->params, &call->nparams));
    if (rt->access & CON_PUBLIC) {
        rt->handler(call);
        return;
    }
    if (!con_cookie_sid_of(r, sid)) {
        con_reply_error(call, 401, "no_session", "log in first");
        return;
    }
    con_session_check(call, sid);
}
