/*
 * con_officers.c -- the admins' account calls:
 *
 *   GET  /api/officers                      every account
 *   POST /api/officers                      {username, role, districts,
 * password} POST /api/officers/{username}/disable   its sessions end at once
 *   POST /api/officers/{username}/enable
 *   POST /api/officers/{username}/password  {password}; its sessions end
 *   POST /api/officers/{username}/districts {districts: [...]} (officers)
 *   POST /api/officers/{username}/totp-reset  TOTP off; its sessions end
 *
 * The same rules as `remigate officer` (con_rules.c).  A change to one
 * account is two round trips: the account is looked up (404, or 409 when
 * the change does not fit it: an admin disabling themselves, districts
 * for a non-officer), then one transaction makes the change, ends the
 * sessions it must and writes the audit row.  Accounts are never deleted
 * and their role never changes, so what the lookup saw still holds.
 * Passwords are hashed on the hashing threads before that transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "console/con_int.h"

#define OFF_MAGIC 0x4f464643u

enum off_action {
    OFF_ADD,
    OFF_DISABLE,
    OFF_ENABLE,
    OFF_PASSWORD,
    OFF_DISTRICTS,
    OFF_TOTP_RESET
};

struct off_op {
    unsigned magic;
    enum off_action action;
    char username[CON_USERNAME_MAX + 1];
    char role[16];
    char id[24];
    char target[CON_USERNAME_MAX + 16];
    char password[CON_PW_MAX * 4 + 1];
    char hash[128];
    char districts[CON_DISTRICTS]; /* "{BD-13,BD-26}" */
    char *detail;                  /* json_dumps'd, freed after the reply */
    json_t *districts_json;
};

static const char *const off_names[] = {
    [OFF_ADD] = "officer.add",
    [OFF_DISABLE] = "officer.disable",
    [OFF_ENABLE] = "officer.enable",
    [OFF_PASSWORD] = "officer.passwd",
    [OFF_DISTRICTS] = "officer.districts",
    [OFF_TOTP_RESET] = "officer.totp_reset",
};

static void
off_done(struct off_op *op)
{
    sodium_memzero(op->password, sizeof(op->password));
    sodium_memzero(op->hash, sizeof(op->hash));
    free(op->detail);
    op->detail = NULL;
    json_decref(op->districts_json);
    op->districts_json = NULL;
}

static struct off_op *
off_op_new(struct con_call *call, enum off_action a)
{
    struct off_op *op = gw_req_alloc(call->req, sizeof(*op));

    if (op == NULL) {
        con_reply_error(call, 503, "unavailable", "out of memory");
        return NULL;
    }
    op->magic = OFF_MAGIC;
    op->action = a;
    call->data = op;
    return op;
}

/* districts (a JSON array of codes) into op->districts as an array
 * literal, checked against the list.  NULL or why not. */
static const char *
off_districts(struct con_call *call, struct off_op *op, json_t *a)
{
    size_t i, n = 1;
    json_t *v;

    if (!json_is_array(a) || json_array_size(a) > 64)
        return "districts is a list of district codes";
    op->districts[0] = '{';
    json_array_foreach(a, i, v)
    {
        const char *code = json_string_value(v);
        if (code == NULL || !con_codes_has(call->con->districts, code))
            return "an unknown district code";
        n += (size_t)snprintf(op->districts + n, sizeof(op->districts) - n,
                              "%s%s", i ? "," : "", code);
        if (n >= sizeof(op->districts) - 2) return "too many districts";
    }
    snprintf(op->districts + n, sizeof(op->districts) - n, "}");
    op->districts_json = json_incref(a);
    return NULL;
}

/* ------------------------------------------------------------------------
 * GET /api/officers
 */

static void
off_on_list(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    json_t *items = json_array();

    if (status != 0) {
        json_decref(items);
        con_reply_store_error(call, status, res);
        return;
    }
    for (int i = 0; items && i < store_tx_ntuples(res, 0); i++) {
        json_t *d = json_array();
        const char *ds = store_tx_value(res, 0, i, 3);
        const char *last = store_tx_value(res, 0, i, 7);
        while (d && ds && *ds) {
            size_t n = strcspn(ds, ",");
            json_array_append_new(d, json_stringn(ds, n));
            ds += n + (ds[n] == ',');
        }
        json_array_append_new(
            items,
            json_pack("{s:I,s:s,s:s,s:o,s:b,s:b,s:s,s:o}", "id",
                      (json_int_t)atoll(store_tx_value(res, 0, i, 0)),
                      "username", store_tx_value(res, 0, i, 1), "role",
                      store_tx_value(res, 0, i, 2), "districts", d, "totp",
                      store_tx_value(res, 0, i, 4)[0] == 't', "disabled",
                      store_tx_value(res, 0, i, 5)[0] == 't', "created_at",
                      store_tx_value(res, 0, i, 6), "last_login",
                      last ? json_string(last) : json_null()));
    }
    con_reply_json(call, 200, json_pack("{s:o}", "items", items));
}

static void
con_officers_list(struct con_call *call)
{
    static const char sql[] =
        "SELECT o.id, o.username, o.role, coalesce((SELECT"
        " string_agg(d.district, ',' ORDER BY d.district) FROM"
        " officer_districts d WHERE d.officer_id = o.id), ''),"
        " o.totp_enabled, o.disabled_at IS NOT NULL,"
        " to_char(o.created_at AT TIME ZONE 'UTC',"
        "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " (SELECT to_char(max(s.created_at) AT TIME ZONE 'UTC',"
        "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM console_sessions s"
        "  WHERE s.officer_id = o.id)"
        " FROM officers o ORDER BY o.username";
    struct store_tx tx;

    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){sql, 0, {NULL}};
    con_tx_or_503(call, &tx, off_on_list);
}

/* ------------------------------------------------------------------------
 * The change itself
 */

static void
off_on_changed(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct off_op *op = call->data;
    json_t *o;

    CON_AN(op->magic == OFF_MAGIC);
    if (status != 0 && op->action == OFF_ADD &&
        strcmp(store_tx_sqlstate(res), "23505") == 0) {
        off_done(op);
        con_reply_error(call, 409, "username_taken",
                        "an account with that username exists");
        return;
    }
    if (status != 0) {
        off_done(op);
        con_reply_store_error(call, status, res);
        return;
    }
    GW_RLOG(GW_LEVEL_INFO, call->req, 0, "api %s by=%lld officer=%s",
            off_names[op->action], call->who.id,
            op->action == OFF_ADD ? store_tx_value(res, 0, 0, 0) : op->id);
    if (op->action == OFF_ADD)
        o = json_pack("{s:I,s:s,s:s,s:O}", "id",
                      (json_int_t)atoll(store_tx_value(res, 0, 0, 0)),
                      "username", op->username, "role", op->role, "districts",
                      op->districts_json);
    else
        o = json_pack("{s:b,s:s}", "ok", 1, "username", op->username);
    off_done(op); /* op goes with the reply */
    con_reply_json(call, op->action == OFF_ADD ? 201 : 200, o);
}

static void
off_change(struct con_call *call, struct off_op *op)
{
    static const char add_sql[] =
        "INSERT INTO officers (username, role, pw_hash) VALUES ($1, $2, $3)"
        " RETURNING id";
    static const char add_districts_sql[] =
        "INSERT INTO officer_districts (officer_id, district) SELECT o.id, d"
        " FROM officers o, unnest($2::text[]) d WHERE o.username = $1";
    static const char end_sql[] =
        "UPDATE console_sessions SET ended_at = now(), ended_why = $2"
        " WHERE officer_id = $1::bigint AND ended_at IS NULL";
    static const char disable_sql[] =
        "UPDATE officers SET disabled_at = coalesce(disabled_at, now()),"
        " updated_at = now() WHERE id = $1::bigint";
    static const char enable_sql[] =
        "UPDATE officers SET disabled_at = NULL, updated_at = now()"
        " WHERE id = $1::bigint";
    static const char password_sql[] =
        "UPDATE officers SET pw_hash = $2, pw_changed_at = now(),"
        " updated_at = now() WHERE id = $1::bigint";
    static const char districts_del_sql[] =
        "DELETE FROM officer_districts WHERE officer_id = $1::bigint";
    static const char districts_add_sql[] =
        "INSERT INTO officer_districts (officer_id, district)"
        " SELECT $1::bigint, d FROM unnest($2::text[]) d";
    static const char totp_sql[] =
        "UPDATE officers SET totp_enc = NULL, totp_enabled = false,"
        " totp_last_step = NULL, updated_at = now() WHERE id = $1::bigint";
    struct store_tx tx;

    con_tx_init(call, &tx);
    switch (op->action) {
    case OFF_ADD:
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            add_sql, 3, {op->username, op->role, op->hash}};
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            add_districts_sql, 2, {op->username, op->districts}};
        break;
    case OFF_DISABLE:
        tx.stmt[tx.n++] = (struct store_tx_stmt){disable_sql, 1, {op->id}};
        tx.stmt[tx.n++] =
            (struct store_tx_stmt){end_sql, 2, {op->id, "disabled"}};
        break;
    case OFF_ENABLE:
        tx.stmt[tx.n++] = (struct store_tx_stmt){enable_sql, 1, {op->id}};
        break;
    case OFF_PASSWORD:
        tx.stmt[tx.n++] =
            (struct store_tx_stmt){password_sql, 2, {op->id, op->hash}};
        tx.stmt[tx.n++] =
            (struct store_tx_stmt){end_sql, 2, {op->id, "password"}};
        break;
    case OFF_DISTRICTS:
        tx.stmt[tx.n++] =
            (struct store_tx_stmt){districts_del_sql, 1, {op->id}};
        tx.stmt[tx.n++] = (struct store_tx_stmt){
            districts_add_sql, 2, {op->id, op->districts}};
        break;
    case OFF_TOTP_RESET:
        tx.stmt[tx.n++] = (struct store_tx_stmt){totp_sql, 1, {op->id}};
        tx.stmt[tx.n++] =
            (struct store_tx_stmt){end_sql, 2, {op->id, "password"}};
        break;
    default:
        CON_WRONG("officer action");
    }
    snprintf(op->target, sizeof(op->target), "officer:%s", op->username);
    if (op->districts_json != NULL) {
        json_t *o = json_pack("{s:s,s:O}", "role", op->role, "districts",
                              op->districts_json);
        op->detail = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
    }
    CON_AZ(con_audit_add(call, &tx, NULL, off_names[op->action], op->target,
                         "ok", op->detail));
    if (con_tx_or_503(call, &tx, off_on_changed) != 0) off_done(op);
}

static void
off_on_hash(int status, const char *hash, void *arg)
{
    struct con_call *call = arg;
    struct off_op *op = call->data;

    CON_AN(op->magic == OFF_MAGIC);
    sodium_memzero(op->password, sizeof(op->password));
    if (status != CON_HASH_OK || hash == NULL) {
        off_done(op);
        con_reply_error(call, 503, "unavailable", "try again");
        return;
    }
    snprintf(op->hash, sizeof(op->hash), "%s", hash);
    off_change(call, op);
}

/* The change once the account is known (or a new password is hashed). */
static void
off_go(struct con_call *call, struct off_op *op)
{
    if (op->password[0] != '\0') {
        if (con_hash_make(call->con->hasher, op->password, off_on_hash, call) !=
            0) {
            off_done(op);
            con_reply_error(call, 503, "unavailable", "try again");
        }
        return;
    }
    off_change(call, op);
}

/* ------------------------------------------------------------------------
 * The lookup of /api/officers/{username}/...
 */

static void
off_on_lookup(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct off_op *op = call->data;

    CON_AN(op->magic == OFF_MAGIC);
    if (status != 0) {
        off_done(op);
        con_reply_store_error(call, status, res);
        return;
    }
    if (store_tx_ntuples(res, 0) != 1) {
        off_done(op);
        con_reply_error(call, 404, "no_officer", "no account by that name");
        return;
    }
    snprintf(op->id, sizeof(op->id), "%s", store_tx_value(res, 0, 0, 0));
    snprintf(op->role, sizeof(op->role), "%s", store_tx_value(res, 0, 0, 1));
    if (op->action == OFF_DISABLE && atoll(op->id) == call->who.id) {
        off_done(op);
        con_reply_error(call, 409, "self",
                        "you cannot disable your own account");
        return;
    }
    if (op->action == OFF_DISTRICTS && strcmp(op->role, "officer") != 0) {
        off_done(op);
        con_reply_error(call, 409, "not_an_officer",
                        "only officers have districts (admins and analysts "
                        "see all)");
        return;
    }
    off_go(call, op);
}

/* Start a change of the account named in the path. */
static void
off_account(struct con_call *call, enum off_action a, json_t *body)
{
    static const char sql[] =
        "SELECT id, role FROM officers WHERE username = $1";
    struct off_op *op = off_op_new(call, a);
    const char *why = NULL;
    struct store_tx tx;

    if (op == NULL) {
        json_decref(body);
        return;
    }
    if (con_username_check(call->params[0]) != NULL) {
        json_decref(body);
        con_reply_error(call, 404, "no_officer", "no account by that name");
        return;
    }
    /* con_username_check() held it to CON_USERNAME_MAX */
    memcpy(op->username, call->params[0], strlen(call->params[0]) + 1);
    if (a == OFF_PASSWORD) {
        const char *pw = json_string_value(json_object_get(body, "password"));
        if (pw == NULL)
            why = "give password";
        else if ((why = con_password_check(call->con->common, op->username,
                                           pw)) == NULL)
            memcpy(op->password, pw, strlen(pw) + 1);
    } else if (a == OFF_DISTRICTS) {
        json_t *d = json_object_get(body, "districts");
        why = off_districts(call, op, d);
        if (why == NULL && json_array_size(d) == 0)
            why = "an officer needs at least one district";
    }
    json_decref(body);
    if (why != NULL) {
        off_done(op);
        con_reply_error(call, 400, "bad_request", why);
        return;
    }
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){sql, 1, {op->username}};
    if (con_tx_or_503(call, &tx, off_on_lookup) != 0) off_done(op);
}

static void
con_officer_disable(struct con_call *call)
{
    off_account(call, OFF_DISABLE, NULL);
}

static void
con_officer_enable(struct con_call *call)
{
    off_account(call, OFF_ENABLE, NULL);
}

static void
con_officer_totp_reset(struct con_call *call)
{
    off_account(call, OFF_TOTP_RESET, NULL);
}

static void
con_officer_password(struct con_call *call)
{
    json_t *body = con_body_or_400(call);
    if (body != NULL) off_account(call, OFF_PASSWORD, body);
}

static void
con_officer_districts(struct con_call *call)
{
    json_t *body = con_body_or_400(call);
    if (body != NULL) off_account(call, OFF_DISTRICTS, body);
}

/* ------------------------------------------------------------------------
 * POST /api/officers
 */

static void
con_officer_add(struct con_call *call)
{
    json_t *body = con_body_or_400(call), *d, *none = json_array();
    struct off_op *op;
    const char *u, *role, *pw, *why = NULL;

    if (body == NULL || (op = off_op_new(call, OFF_ADD)) == NULL) {
        json_decref(body);
        json_decref(none);
        return;
    }
    u = json_string_value(json_object_get(body, "username"));
    role = json_string_value(json_object_get(body, "role"));
    pw = json_string_value(json_object_get(body, "password"));
    d = json_object_get(body, "districts");
    if (u == NULL || role == NULL || pw == NULL)
        why = "give username, role and password";
    else if ((why = con_username_check(u)) != NULL)
        ;
    else if (con_role_bit(role) == 0)
        why = "role is admin, officer or analyst";
    else if ((why = off_districts(call, op, d ? d : none)) != NULL)
        ;
    else if (strcmp(role, "officer") == 0 && json_array_size(d) == 0)
        why = "an officer needs at least one district";
    else if (strcmp(role, "officer") != 0 && json_array_size(d) > 0)
        why = "only officers have districts (admins and analysts see all)";
    else if ((why = con_password_check(call->con->common, u, pw)) == NULL) {
        memcpy(op->username, u, strlen(u) + 1);
        snprintf(op->role, sizeof(op->role), "%s", role);
        memcpy(op->password, pw, strlen(pw) + 1);
    }
    json_decref(body);
    json_decref(none);
    if (why != NULL) {
        off_done(op);
        con_reply_error(call, 400, "bad_request", why);
        return;
    }
    off_go(call, op);
}

const struct con_route con_officers_routes[] = {
    {GW_METHOD_GET, "/api/officers", CON_ROLE_ADMIN, 0, con_officers_list},
    {GW_METHOD_POST, "/api/officers", CON_ROLE_ADMIN, 1, con_officer_add},
    {GW_METHOD_POST, "/api/officers/{}/disable", CON_ROLE_ADMIN, 1,
     con_officer_disable},
    {GW_METHOD_POST, "/api/officers/{}/enable", CON_ROLE_ADMIN, 1,
     con_officer_enable},
    {GW_METHOD_POST, "/api/officers/{}/password", CON_ROLE_ADMIN, 1,
     con_officer_password},
    {GW_METHOD_POST, "/api/officers/{}/districts", CON_ROLE_ADMIN, 1,
     con_officer_districts},
    {GW_METHOD_POST, "/api/officers/{}/totp-reset", CON_ROLE_ADMIN, 1,
     con_officer_totp_reset},
    {0, NULL, 0, 0, NULL},
};
