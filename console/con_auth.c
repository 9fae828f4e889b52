/*
 * con_auth.c -- login, logout, who am I.
 *
 * POST /api/login is a small state machine over two transactions and one
 * hash on the worker threads:
 *
 *   LOOKUP   one round trip: is the username or the source address
 *            throttled (login_throttle), and the officer's row
 *   HASH     argon2id verify on a hashing thread -- against a dummy hash
 *            when the username is unknown, so both cost the same
 *   SECOND   an admin with TOTP enrolled gives a code too (con_totp.c)
 *   FINISH   success: the old session (if the request carried one) ends,
 *            a new one is stored (its id hashed), the throttle keys are
 *            cleared and the audit row written -- one transaction; then
 *            the cookie.  Failure: both throttle keys count the failure
 *            and the audit row says why -- one transaction; then 401.
 *
 * The throttle: per username ('u:' key) and per source address ('a:'),
 * the first N failures within the window are free; after that each one
 * blocks further attempts for 1, 2, 4, ... seconds, capped at
 * console.throttle.max_delay.  A blocked attempt gets 429 with
 * Retry-After and is not counted.  A success clears the username's key;
 * the window's end forgets old failures.  No failure count ever locks an
 * account for good.  Log lines carry the officer id or nothing -- never
 * a username typed at the login form (it may be a password typed in the
 * wrong box).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "console/con_int.h"

#define LOGIN_MAGIC 0x4c4f474eu

struct login {
    unsigned magic;
    struct con_call *call;
    char username[CON_USERNAME_MAX + 1];
    char password[CON_PW_MAX * 4 + 1];
    char otp[16];
    int has_otp;
    int known; /* the username names an officer */
    long long officer_id;
    char officer_text[24];
    char role[16];
    int disabled;
    int totp_enabled;
    char districts[CON_DISTRICTS];
    char user_key[CON_USERNAME_MAX + 3];
    char addr_key[80];
    char old_hash[65]; /* the session the request came with ("" none) */
    char sid[CON_TOKEN_HEX + 1];
    char sid_hash[65];
    char csrf[CON_TOKEN_HEX + 1];
    const char *why; /* of a failure, for the audit row */
    char detail[128];
    char target[CON_USERNAME_MAX + 16];
    long long totp_step; /* the accepted code's step, or -1 */
    long long retry;     /* throttled: seconds to wait */
    char totp_enc[256];  /* hex of the sealed secret ("" none) */
    long long totp_last; /* step of the last code used, -1 none */
    char num[5][24];     /* numbers as statement parameters */
};

static void
login_wipe(struct login *l)
{
    sodium_memzero(l->password, sizeof(l->password));
}

/* ------------------------------------------------------------------------
 * FINISH
 */

static const char login_throttle_count_sql[] =
    "INSERT INTO login_throttle AS t (key, failures, last_failure_at)"
    " VALUES ($1, 1, now()) ON CONFLICT (key) DO UPDATE SET"
    " failures = CASE WHEN t.last_failure_at <"
    "  now() - make_interval(secs => $2::int) THEN 1 ELSE t.failures + 1 END,"
    " last_failure_at = now() RETURNING failures";

static const char login_throttle_block_sql[] =
    "UPDATE login_throttle SET blocked_until = CASE WHEN failures > $2::int"
    " THEN now() + make_interval(secs => least($3::int,"
    "  power(2, least(failures - $2::int - 1, 20)))) END WHERE key = $1";

static void
login_on_failed(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct login *l = call->data;

    if (status != 0)
        GW_RLOG(GW_LEVEL_WARN, call->req, 0,
                "api login failure not recorded status=%s err=%s",
                store_strerror(status), store_tx_errstr(res));
    GW_RLOG(GW_LEVEL_INFO, call->req, 0, "api login failed why=%s officer=%lld",
            l->why, l->known ? l->officer_id : 0LL);
    if (strcmp(l->why, "otp_missing") == 0) {
        con_reply_error(call, 401, "otp_required",
                        "give the code from your authenticator app");
        return;
    }
    con_reply_error(call, 401, "bad_credentials",
                    "wrong username, password or code");
}

/* A failed login: count it against both keys and audit it. */
static void
login_fail(struct login *l, const char *why)
{
    struct con_call *call = l->call;
    const struct gw_config *cfg = call->con->cfg;
    char *window = l->num[0], *ufree = l->num[1], *afree = l->num[2],
         *maxd = l->num[3];
    struct store_tx tx;

    login_wipe(l);
    l->why = why;
    snprintf(window, 24, "%ld", cfg->con_throttle_window);
    snprintf(ufree, 24, "%ld", cfg->con_throttle_user_free);
    snprintf(afree, 24, "%ld", cfg->con_throttle_addr_free);
    snprintf(maxd, 24, "%ld", cfg->con_throttle_max_delay);
    snprintf(l->detail, sizeof(l->detail), "{\"reason\":\"%s\"}", why);
    memset(&tx, 0, sizeof(tx));
    /* a missing second factor after a right password is no guess */
    if (strcmp(why, "otp_missing") != 0) {
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            login_throttle_count_sql, 2, {l->user_key, window}};
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            login_throttle_block_sql, 3, {l->user_key, ufree, maxd}};
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            login_throttle_count_sql, 2, {l->addr_key, window}};
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            login_throttle_block_sql, 3, {l->addr_key, afree, maxd}};
    }
    /* actor: the officer when the name is one, else "anonymous"; the
     * name typed is kept only when it is an officer's (target) */
    CON_AZ(con_audit_add(call, &tx, l->known ? l->username : NULL, "login",
                         l->known ? l->target : NULL, "failed", l->detail));
    if (l->known) tx.stmt[tx.n - 1].params[1] = l->officer_text;
    con_tx_or_503(call, &tx, login_on_failed);
}

static void
login_cookie(struct con_call *call, const char *value, int clear)
{
    char c[160];

    snprintf(c, sizeof(c), "%s=%s; Path=/; HttpOnly; SameSite=Strict%s%s",
             CON_COOKIE, value, clear ? "; Max-Age=0" : "",
             call->con->secure_cookie ? "; Secure" : "");
    gw_req_header_add(call->req, "Set-Cookie", c);
}

/* "BD-13,BD-26" as a JSON array. */
static json_t *
con_districts_json(const char *list)
{
    json_t *a = json_array();
    const char *p = list;

    while (a && *p) {
        size_t n = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, n));
        p += n;
        if (*p == ',') p++;
    }
    return a;
}

static void
login_on_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct login *l = call->data;
    json_t *o;

    if (status != 0) {
        con_reply_store_error(call, status, res);
        return;
    }
    GW_RLOG(GW_LEVEL_INFO, call->req, 0, "api login officer=%lld role=%s",
            l->officer_id, l->role);
    login_cookie(call, l->sid, 0);
    o = json_pack("{s:s,s:s,s:o,s:s,s:b,s:b}", "csrf", l->csrf, "role", l->role,
                  "districts", con_districts_json(l->districts), "username",
                  l->username, "totp", l->totp_enabled, "totp_required",
                  !l->totp_enabled && call->con->admin_totp_required &&
                      strcmp(l->role, "admin") == 0);
    if (o == NULL) {
        con_reply_error(call, 500, "internal", "out of memory");
        return;
    }
    con_reply_json(call, 200, o);
}

static void
login_succeed(struct login *l)
{
    struct con_call *call = l->call;
    static const char end_sql[] =
        "UPDATE console_sessions SET ended_at = now(), ended_why = 'logout'"
        " WHERE id_hash = decode($1, 'hex') AND ended_at IS NULL";
    static const char new_sql[] =
        "INSERT INTO console_sessions (id_hash, officer_id, csrf, source)"
        " VALUES (decode($1, 'hex'), $2::bigint, $3, $4)";
    static const char clear_sql[] = "DELETE FROM login_throttle WHERE key = $1";
    static const char step_sql[] =
        "UPDATE officers SET totp_last_step = $2::bigint WHERE id = $1::bigint";
    char *step = l->num[4];
    struct store_tx tx;

    login_wipe(l);
    con_random_hex(l->sid, CON_SID_BYTES);
    con_random_hex(l->csrf, CON_SID_BYTES);
    con_sha256_hex(l->sid, l->sid_hash);
    /* the audit row is the officer's own from here */
    call->has_session = 1;
    call->who.id = l->officer_id;
    snprintf(call->who.id_text, sizeof(call->who.id_text), "%s",
             l->officer_text);
    snprintf(call->who.username, sizeof(call->who.username), "%s", l->username);
    snprintf(call->who.role, sizeof(call->who.role), "%s", l->role);
    memset(&tx, 0, sizeof(tx));
    tx.officer = l->officer_text;
    tx.role = l->role;
    tx.districts = l->districts;
    if (l->old_hash[0])
        tx.stmt[tx.n++] = (struct store_tx_stmt){end_sql, 1, {l->old_hash}};
    tx.stmt[tx.n++] = (struct store_tx_stmt){
        new_sql, 4, {l->sid_hash, l->officer_text, l->csrf, call->source}};
    tx.stmt[tx.n++] = (struct store_tx_stmt){clear_sql, 1, {l->user_key}};
    if (l->totp_step >= 0) {
        snprintf(step, 24, "%lld", l->totp_step);
        tx.stmt[tx.n++] =
            (struct store_tx_stmt){step_sql, 2, {l->officer_text, step}};
    }
    CON_AZ(con_audit_add(call, &tx, NULL, "login", l->target, "ok", NULL));
    con_tx_or_503(call, &tx, login_on_done);
}

/* ------------------------------------------------------------------------
 * HASH, SECOND
 */

static void
login_on_hash(int status, const char *hash, void *arg)
{
    struct con_call *call = arg;
    struct login *l = call->data;

    (void)hash;
    CON_AN(l->magic == LOGIN_MAGIC);
    if (status == CON_HASH_ESTOPPED || status == CON_HASH_EFAIL) {
        login_wipe(l);
        con_reply_error(call, 503, "unavailable", "try again");
        return;
    }
    if (status == CON_HASH_ELATE) { /* not checked: not a failure either */
        login_wipe(l);
        con_reply_error(call, 503, "busy",
                        "too many logins at once; try again in a moment");
        return;
    }
    if (!l->known) {
        login_fail(l, "unknown_user");
        return;
    }
    if (status != CON_HASH_OK) {
        login_fail(l, "bad_password");
        return;
    }
    if (l->disabled) {
        login_fail(l, "disabled");
        return;
    }
    if (l->totp_enabled) {
        const char *why = con_totp_check(
            call->con, l->officer_text, l->totp_enc, l->totp_last,
            l->has_otp ? l->otp : NULL, &l->totp_step);
        if (why != NULL) {
            login_fail(l, why);
            return;
        }
    }
    login_succeed(l);
}

/* ------------------------------------------------------------------------
 * LOOKUP
 */

static const char login_blocked_sql[] =
    "SELECT max(ceil(extract(epoch FROM blocked_until - now())))::int"
    " FROM login_throttle WHERE key IN ($1, $2) AND blocked_until > now()";

static const char login_officer_sql[] =
    "SELECT o.id, o.role, o.pw_hash, o.disabled_at IS NOT NULL,"
    " o.totp_enabled, coalesce((SELECT string_agg(d.district, ','"
    "  ORDER BY d.district) FROM officer_districts d"
    "  WHERE d.officer_id = o.id), ''),"
    " coalesce(encode(o.totp_enc, 'hex'), ''), o.totp_last_step"
    " FROM officers o WHERE o.username = $1";

static void
login_on_throttled(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct login *l = call->data;
    char secs[16];

    (void)status;
    (void)res;
    snprintf(secs, sizeof(secs), "%lld", l->retry);
    gw_req_header_add(call->req, "Retry-After", secs);
    GW_RLOG(GW_LEVEL_INFO, call->req, 0, "api login throttled retry_after=%s",
            secs);
    con_reply_error(call, 429, "throttled",
                    "too many failed logins; wait and try again");
}

static void
login_on_lookup(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct login *l = call->data;
    const char *blocked, *v, *stored;

    CON_AN(l->magic == LOGIN_MAGIC);
    if (status != 0) {
        login_wipe(l);
        con_reply_store_error(call, status, res);
        return;
    }
    if (store_tx_ntuples(res, 1) == 1) {
        l->known = 1;
        l->officer_id = atoll(store_tx_value(res, 1, 0, 0));
        snprintf(l->officer_text, sizeof(l->officer_text), "%lld",
                 l->officer_id);
        snprintf(l->role, sizeof(l->role), "%s", store_tx_value(res, 1, 0, 1));
        v = store_tx_value(res, 1, 0, 3);
        l->disabled = v && v[0] == 't';
        v = store_tx_value(res, 1, 0, 4);
        l->totp_enabled = v && v[0] == 't';
        snprintf(l->districts, sizeof(l->districts), "%s",
                 store_tx_value(res, 1, 0, 5));
        snprintf(l->target, sizeof(l->target), "officer:%s", l->username);
        snprintf(l->totp_enc, sizeof(l->totp_enc), "%s",
                 store_tx_value(res, 1, 0, 6));
        v = store_tx_value(res, 1, 0, 7);
        l->totp_last = v ? atoll(v) : -1;
    }
    blocked = store_tx_value(res, 0, 0, 0);
    if (blocked != NULL && atoll(blocked) > 0) {
        struct store_tx tx;
        login_wipe(l);
        l->retry = atoll(blocked);
        memset(&tx, 0, sizeof(tx));
        CON_AZ(con_audit_add(call, &tx, l->known ? l->username : NULL, "login",
                             l->known ? l->target : NULL, "denied",
                             "{\"reason\":\"throttled\"}"));
        if (l->known) tx.stmt[0].params[1] = l->officer_text;
        if (store_pool_tx(call->con->pool, &tx, login_on_throttled, call) != 0)
            login_on_throttled(STORE_EDOWN, NULL, call);
        return;
    }
    stored = l->known ? store_tx_value(res, 1, 0, 2) : call->con->dummy_hash;
    if (con_hash_verify(call->con->hasher, stored, l->password, login_on_hash,
                        call) != 0) {
        login_wipe(l);
        con_reply_error(call, 503, "unavailable", "try again");
    }
}

static void
con_login(struct con_call *call)
{
    json_t *body = con_body_or_400(call);
    struct login *l;
    const char *u, *pw, *otp = NULL;
    char sid[CON_TOKEN_HEX + 1];
    struct store_tx tx;

    if (body == NULL) return;
    l = gw_req_alloc(call->req, sizeof(*l));
    if (l == NULL) {
        json_decref(body);
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    l->magic = LOGIN_MAGIC;
    l->call = call;
    l->totp_step = -1;
    call->data = l;
    u = json_string_value(json_object_get(body, "username"));
    pw = json_string_value(json_object_get(body, "password"));
    if (json_object_get(body, "otp") != NULL &&
        !json_is_null(json_object_get(body, "otp")))
        otp = json_string_value(json_object_get(body, "otp"));
    if (u == NULL || pw == NULL ||
        (json_object_get(body, "otp") != NULL &&
         !json_is_null(json_object_get(body, "otp")) && otp == NULL) ||
        strlen(u) > 256 || strlen(pw) >= sizeof(l->password) ||
        (otp && strlen(otp) >= sizeof(l->otp))) {
        json_decref(body);
        con_reply_error(call, 400, "bad_request",
                        "give username and password (and otp) as strings");
        return;
    }
    /* a name that cannot be an officer's is looked up all the same (it
     * finds nobody), so it costs what any unknown name costs */
    if (strlen(u) <= CON_USERNAME_MAX) {
        memcpy(l->username, u, strlen(u) + 1);
        for (char *c = l->username; *c; c++) /* "Rahima" logs in as rahima */
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    }
    memcpy(l->password, pw, strlen(pw) + 1);
    if (otp) {
        snprintf(l->otp, sizeof(l->otp), "%s", otp);
        l->has_otp = 1;
    }
    json_decref(body);
    snprintf(l->user_key, sizeof(l->user_key), "u:%s", l->username);
    snprintf(l->addr_key, sizeof(l->addr_key), "a:%s", call->source);
    if (con_cookie_sid_of(call->req, sid)) con_sha256_hex(sid, l->old_hash);
    memset(&tx, 0, sizeof(tx));
    tx.n = 2;
    tx.stmt[0] = (struct store_tx_stmt){
        login_blocked_sql, 2, {l->user_key, l->addr_key}};
    tx.stmt[1] = (struct store_tx_stmt){login_officer_sql, 1, {l->username}};
    if (con_tx_or_503(call, &tx, login_on_lookup) != 0) login_wipe(l);
}

/* ------------------------------------------------------------------------
 * Logout, me
 */

static void
logout_on_done(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;

    if (status != 0) {
        con_reply_store_error(call, status, res);
        return;
    }
    GW_RLOG(GW_LEVEL_INFO, call->req, 0, "api logout officer=%lld",
            call->who.id);
    login_cookie(call, "", 1);
    con_reply_json(call, 200, json_pack("{s:b}", "ok", 1));
}

static void
con_logout(struct con_call *call)
{
    static const char sql[] =
        "UPDATE console_sessions SET ended_at = now(), ended_why = 'logout'"
        " WHERE id_hash = decode($1, 'hex') AND ended_at IS NULL";
    struct store_tx tx;

    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){sql, 1, {call->sid_hash}};
    CON_AZ(con_audit_add(call, &tx, NULL, "logout", NULL, "ok", NULL));
    con_tx_or_503(call, &tx, logout_on_done);
}

static void
con_me(struct con_call *call)
{
    json_t *o = json_pack(
        "{s:I,s:s,s:s,s:o,s:b,s:b,s:s}", "id", (json_int_t)call->who.id,
        "username", call->who.username, "role", call->who.role, "districts",
        con_districts_json(call->who.districts), "totp", call->who.totp_enabled,
        "totp_required",
        call->who.role_bit == CON_ROLE_ADMIN && !call->who.totp_enabled &&
            call->con->admin_totp_required,
        "csrf", call->who.csrf);

    if (o == NULL) {
        con_reply_error(call, 500, "internal", "out of memory");
        return;
    }
    con_reply_json(call, 200, o);
}

const struct con_route con_auth_routes[] = {
    {GW_METHOD_POST, "/api/login", CON_PUBLIC, 0, con_login},
    {GW_METHOD_POST, "/api/logout", CON_ROLE_ANY | CON_PRE_MFA, 1, con_logout},
    {GW_METHOD_GET, "/api/me", CON_ROLE_ANY | CON_PRE_MFA, 0, con_me},
    {0, NULL, 0, 0, NULL},
};
