/*
 * con_main.c -- the console of one worker: its PostgreSQL pool (acting as
 * remigate_console, or logged in through postgres.console_dsn), the pool
 * of the dashboards' reads when postgres.read_dsn names a standby, its
 * password-hashing threads, the lists it checks against, the "/api/"
 * route, and the stop hook that ends every pending call.
 *
 * The route tables are checked once at start: a malformed pattern, a
 * write that needs a session but no CSRF token, a route nobody may call,
 * or two routes with the same method and pattern stop the worker -- they
 * are programming errors, found by the first test that starts a daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "console/con_int.h"

#define CON_PURGE_S 600 /* how often worker 0 forgets old login failures */

#define CON_MAX_WORKERS 64

/* The console of each server of this process (a worker has one; tests may
 * run several in one process). */
static struct {
    struct gw_server *srv;
    struct con *con;
} con_of[CON_MAX_WORKERS];

static void
con_stop(struct gw_server *srv, void *arg)
{
    struct con *con = arg;

    (void)srv;
    CON_AN(con->magic == CON_MAGIC);
    /* every pending hash and query calls back now (with an error), so
     * the handlers waiting on them answer before the loop ends */
    if (con->purge) event_del(con->purge);
    if (con->hasher) con_hasher_stop(con->hasher);
    if (con->pool) store_pool_stop(con->pool);
    if (con->read_pool) store_pool_stop(con->read_pool);
}

static void
con_on_purged(int status, const struct store_tx_result *res, void *arg)
{
    (void)arg;
    if (status != 0)
        GW_LOG_WARN(0, "console: login_throttle not purged err=%s",
                    store_tx_errstr(res));
    else if (store_tx_affected(res, 0) > 0)
        GW_LOG_DEBUG(0, "console: login_throttle purged rows=%lld",
                     store_tx_affected(res, 0));
}

/* Rows of login_throttle whose failures the window forgot and whose block
 * is over go: unknown usernames tried once would otherwise stay for ever. */
static void
con_on_purge(evutil_socket_t fd, short what, void *arg)
{
    static const char sql[] =
        "DELETE FROM login_throttle WHERE last_failure_at <"
        " now() - make_interval(secs => $1::int)"
        " AND (blocked_until IS NULL OR blocked_until < now())";
    struct con *con = arg;
    struct store_tx tx;
    char window[24];

    (void)fd;
    (void)what;
    snprintf(window, sizeof(window), "%ld", con->cfg->con_throttle_window);
    memset(&tx, 0, sizeof(tx));
    tx.n = 1;
    tx.stmt[0] = (struct store_tx_stmt){sql, 1, {window}};
    if (store_pool_tx(con->pool, &tx, con_on_purged, NULL) != 0) {
        /* the database is away: the next round tries again */
    }
}

/* stats.k is configuration: it changes only when the daemon starts with
 * another value (the config file is not read again on SIGHUP), and there
 * is no API to change it.  So worker 0 audits it at start: when the last
 * audited value (action config.change, target stats.k) differs from the
 * one in use, or there is none, it writes a row {"key","from","to"}
 * (actor "config") and logs the change.  Retried every CON_KCHECK_S
 * until the database has answered. */
#define CON_KCHECK_S 5

static void con_kcheck_arm(struct con *con, int secs);

static void
con_on_kchecked(int status, const struct store_tx_result *res, void *arg)
{
    struct con *con = arg;

    if (status != 0) {
        GW_LOG_DEBUG(0, "console: stats.k audit not written yet err=%s",
                     store_tx_errstr(res));
        con_kcheck_arm(con, CON_KCHECK_S);
        return;
    }
    if (store_tx_ntuples(res, 0) > 0) {
        const char *from = store_tx_value(res, 0, 0, 0);
        GW_LOG_INFO(0,
                    "console: config change audited key=stats.k from=%s to=%ld",
                    from ? from : "none", con->cfg->stats_k);
    }
}

static void
con_on_kcheck(evutil_socket_t fd, short what, void *arg)
{
    static const char sql[] =
        "INSERT INTO audit_log (actor, action, target, outcome, detail)"
        " SELECT 'config', 'config.change', 'stats.k', 'ok',"
        "  jsonb_build_object('key', 'stats.k', 'from', prev, 'to', $1::int)"
        " FROM (SELECT (SELECT (detail->>'to')::int FROM audit_log"
        "  WHERE action = 'config.change' AND target = 'stats.k'"
        "  ORDER BY id DESC LIMIT 1) AS prev) p"
        " WHERE prev IS DISTINCT FROM $1::int"
        " RETURNING detail->>'from'";
    struct con *con = arg;
    struct store_tx tx;
    char k[24];

    (void)fd;
    (void)what;
    snprintf(k, sizeof(k), "%ld", con->cfg->stats_k);
    memset(&tx, 0, sizeof(tx));
    tx.n = 1;
    tx.stmt[0] = (struct store_tx_stmt){sql, 1, {k}};
    if (store_pool_tx(con->pool, &tx, con_on_kchecked, con) != 0)
        con_kcheck_arm(con, CON_KCHECK_S);
}

static void
con_kcheck_arm(struct con *con, int secs)
{
    struct timeval tv = {secs, 0};
    if (con->kcheck != NULL) evtimer_add(con->kcheck, &tv);
}

/* Is every row of every table well formed?  Logs the first bad one. */
static int
con_routes_check(void)
{
    for (const struct con_route *const *t = con_route_tables; *t; t++)
        for (const struct con_route *x = *t; x->pattern; x++) {
            const char *why = NULL;
            if (strncmp(x->pattern, "/api/", 5) != 0)
                why = "pattern outside /api/";
            else if (x->handler == NULL)
                why = "no handler";
            else if (!(x->access & (CON_ROLE_ANY | CON_PUBLIC)))
                why = "nobody may call it";
            else if (x->method != GW_METHOD_GET && !x->csrf &&
                     !(x->access & CON_PUBLIC))
                why = "a write with a session needs csrf";
            for (const struct con_route *const *u = con_route_tables;
                 !why && *u; u++)
                for (const struct con_route *y = *u; y->pattern; y++)
                    if (y != x && y->method == x->method &&
                        strcmp(y->pattern, x->pattern) == 0)
                        why = "route defined twice";
            if (why) {
                GW_LOG_ERROR(0, "console: bad API route pattern=%s why=%s",
                             x->pattern, why);
                return -1;
            }
        }
    return 0;
}

static void
con_free(struct con *con)
{
    if (con == NULL) return;
    if (con->purge) event_free(con->purge);
    if (con->kcheck) event_free(con->kcheck);
    con_hasher_free(con->hasher);
    con_cache_free(con->cache);
    store_pool_free(con->pool);
    store_pool_free(con->read_pool);
    store_free(con->crypto);
    con_pwlist_free(con->common);
    con_codes_free(con->districts);
    con->magic = 0;
    free(con);
}

int
console_start(struct gw_server *srv)
{
    const struct gw_config *cfg = gw_server_config(srv);
    struct gw_route rt = {.path = "/api/",
                          .prefix = 1,
                          .methods = GW_METHOD_GET | GW_METHOD_POST |
                                     GW_METHOD_PUT | GW_METHOD_PATCH |
                                     GW_METHOD_DELETE | GW_METHOD_HEAD,
                          .endpoint = "api",
                          .handler = con_api_handle};
    const char *dsn =
        cfg->pg_console_dsn[0] ? cfg->pg_console_dsn : cfg->pg_dsn;
    struct store_pool_config pc = {
        .dsn = dsn,
        .role = cfg->pg_console_dsn[0] ? "" : "remigate_console",
        /* migration 013: admins' policy is the admin role's */
        .admin_role = "remigate_console_admin",
        .pool = (int)cfg->pg_console_pool,
        .timeout_ms = (int)cfg->pg_timeout_ms,
        /* a request that finds the pool reconnecting (a failover) waits
         * for it, leaving a quarter of its deadline for the queries */
        .wait_ms = (int)(cfg->con_db_wait_ms < cfg->request_timeout_ms * 3 / 4
                             ? cfg->con_db_wait_ms
                             : cfg->request_timeout_ms * 3 / 4),
    };
    char err[512];
    struct con *con;
    int slot = -1;

    if (con_routes_check() != 0) return -1;
    /* the pages need no database: served whatever follows */
    if (con_static_start(srv) != 0 || con_lists_start(srv) != 0) return -1;
    for (int i = 0; i < CON_MAX_WORKERS; i++)
        if (con_of[i].srv == NULL) {
            slot = i;
            break;
        }
    if (slot < 0) return -1;
    if (cfg->pg_dsn[0] == '\0' && cfg->pg_console_dsn[0] == '\0') {
        /* no database: /api/ says so (503) */
        return gw_server_route(srv, &rt);
    }
    if ((con = calloc(1, sizeof(*con))) == NULL) return -1;
    con->magic = CON_MAGIC;
    con->srv = srv;
    con->cfg = cfg;
    con->secure_cookie = strcmp(cfg->con_cookie_secure, "yes") == 0;
    con->admin_totp_required = strcmp(cfg->con_admin_totp, "required") == 0;
    con_of[slot].srv = srv;
    con_of[slot].con = con;
    if ((con->common = con_pwlist_load(cfg->con_common_passwords, err,
                                       sizeof(err))) == NULL ||
        (con->districts =
             con_districts_load(cfg->lists_dir, err, sizeof(err))) == NULL) {
        GW_LOG_ERROR(0, "console: %s", err);
        return -1;
    }
    if (con_records_lint(gw_server_flows(srv), cfg, err, sizeof(err)) != 0) {
        GW_LOG_ERROR(0, "console: %s", err);
        return -1;
    }
    if (con_totp_init() != 0) {
        GW_LOG_ERROR(0, "console: liboath did not start");
        return -1;
    }
    if (cfg->key_file[0] != '\0') {
        /* for its keys only: it never connects */
        struct store_config sc = {.dsn = "", .key_file = cfg->key_file};
        con->crypto = store_new(&sc, gw_server_base(srv), err, sizeof(err));
        if (con->crypto == NULL) {
            GW_LOG_ERROR(0, "console: %s", err);
            return -1;
        }
    }
    /* the hash an unknown username is checked against, so a wrong name
     * costs what a wrong password costs */
    {
        char pw[33];
        con_random_hex(pw, 16);
        if (con_pw_hash_now(pw, (unsigned long long)cfg->con_pwhash_passes,
                            (size_t)cfg->con_pwhash_kib * 1024,
                            con->dummy_hash) != 0) {
            GW_LOG_ERROR(0, "console: cannot hash (out of memory?)");
            return -1;
        }
        sodium_memzero(pw, sizeof(pw));
    }
    con->hasher = con_hasher_new(
        gw_server_base(srv), (int)cfg->con_hash_threads,
        strcmp(cfg->con_hash_policy, "idle") == 0 ? CON_HASH_SCHED_IDLE
                                                  : (int)cfg->con_hash_nice,
        cfg->con_hash_slice_us, (unsigned long long)cfg->con_pwhash_passes,
        (size_t)cfg->con_pwhash_kib * 1024, err, sizeof(err));
    if (con->hasher == NULL) {
        GW_LOG_ERROR(0, "console: %s", err);
        return -1;
    }
    con_hasher_max_wait(con->hasher, (int)cfg->con_hash_max_wait_ms);
    con->cache = con_cache_new(cfg->con_stats_cache_ms,
                               (size_t)cfg->con_stats_cache_kb * 1024);
    if (con->cache == NULL) {
        GW_LOG_ERROR(0, "console: out of memory");
        return -1;
    }
    con->pool = store_pool_new(&pc, gw_server_base(srv), err, sizeof(err));
    if (con->pool == NULL) {
        GW_LOG_ERROR(0, "console: %s", err);
        return -1;
    }
    if (cfg->pg_read_dsn[0] != '\0') {
        /* the same role as the main pool: row-level security and the
         * functions' grants hold on the standby too */
        struct store_pool_config rc = pc;
        rc.dsn = cfg->pg_read_dsn;
        con->read_pool =
            store_pool_new(&rc, gw_server_base(srv), err, sizeof(err));
        if (con->read_pool == NULL) {
            GW_LOG_ERROR(0, "console: postgres.read_dsn: %s", err);
            return -1;
        }
    }
    if (gw_server_worker(srv) == 0) {
        struct timeval tv = {CON_PURGE_S, 0};
        con->purge =
            event_new(gw_server_base(srv), -1, EV_PERSIST, con_on_purge, con);
        if (con->purge == NULL || event_add(con->purge, &tv) != 0) return -1;
        con->kcheck = evtimer_new(gw_server_base(srv), con_on_kcheck, con);
        if (con->kcheck == NULL) return -1;
        con_kcheck_arm(con, 0);
    }
    rt.arg = con;
    if (store_pool_start(con->pool) != 0 ||
        (con->read_pool && store_pool_start(con->read_pool) != 0) ||
        gw_server_on_stop(srv, con_stop, con) != 0 ||
        gw_server_route(srv, &rt) != 0)
        return -1;
    return 0;
}

void
console_fini(struct gw_server *srv)
{
    con_static_fini(srv);
    for (int i = 0; i < CON_MAX_WORKERS; i++)
        if (con_of[i].srv == srv) {
            con_free(con_of[i].con);
            con_of[i].srv = NULL;
            con_of[i].con = NULL;
        }
}

int
console_routes_main(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: remigate api-routes\n");
        return 2;
    }
    for (const struct con_route *const *t = con_route_tables; *t; t++)
        for (const struct con_route *x = *t; x->pattern; x++) {
            char who[64] = "";
            size_t n = 0;
            if (x->access & CON_PUBLIC) snprintf(who, sizeof(who), "public");
#define CON_X_WHO(id, name, bit)                                               \
    if (x->access & (bit))                                                     \
        n += (size_t)snprintf(who + n, sizeof(who) - n, "%s%s", n ? "," : "",  \
                              name);
            if (!(x->access & CON_PUBLIC)) CON_ROLES(CON_X_WHO)
#undef CON_X_WHO
            printf("%s %s %s %s%s\n",
                   x->method == GW_METHOD_GET     ? "GET"
                   : x->method == GW_METHOD_POST  ? "POST"
                   : x->method == GW_METHOD_PUT   ? "PUT"
                   : x->method == GW_METHOD_PATCH ? "PATCH"
                                                  : "DELETE",
                   x->pattern, who, x->csrf ? "csrf" : "-",
                   (x->access & CON_PRE_MFA) ? " pre-mfa" : "");
        }
    return 0;
}
