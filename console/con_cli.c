/*
 * con_cli.c -- `remigate officer add|passwd|disable|enable|list`.
 *
 * Blocking libpq as the database owner (postgres.dsn): this runs from a
 * shell, never on the event loop.  Each command is one transaction with
 * its audit_log row (actor "cli", source "cli").  Passwords come from
 * standard input -- twice, without echo, when it is a terminal -- and go
 * through the same rules as the console's (con_password_check), hashed
 * with the configured argon2id cost.  A disabled account or a changed
 * password ends the account's console sessions in the same transaction,
 * so a browser still logged in gets 401 on its next call.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "console/con_int.h"

#define CLI_DISTRICTS_MAX 64

struct cli {
    struct gw_config cfg;
    const char *config;
    const char *username;
    const char *role;
    const char *districts[CLI_DISTRICTS_MAX];
    int ndistricts;
    PGconn *db;
};

static void
cli_usage(FILE *fp)
{
    fprintf(fp, "usage: remigate officer add --username U --role "
                "admin|officer|analyst [--district CODE]... -c FILE\n"
                "       remigate officer passwd --username U -c FILE\n"
                "       remigate officer disable --username U -c FILE\n"
                "       remigate officer enable --username U -c FILE\n"
                "       remigate officer list -c FILE\n"
                "The password is read from standard input (asked twice on a "
                "terminal).\n");
}

/* Read one password: prompt twice without echo on a terminal, else one
 * line of stdin.  0 or -1 (message printed). */
static int
cli_password(char *out, size_t cap)
{
    char again[CON_PW_MAX * 4 + 2];
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO);
    size_t n;

    for (int round = 0; round < (tty ? 2 : 1); round++) {
        char *buf = round == 0 ? out : again;
        size_t bcap = round == 0 ? cap : sizeof(again);
        if (tty) {
            fprintf(stderr, round == 0 ? "Password: " : "Again: ");
            tcgetattr(STDIN_FILENO, &old);
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        if (fgets(buf, (int)bcap, stdin) == NULL) buf[0] = '\0';
        if (tty) {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
            fputc('\n', stderr);
        }
        n = strcspn(buf, "\r\n");
        if (buf[n] == '\0' && n == bcap - 1) {
            fprintf(stderr, "remigate: officer: the password is too long\n");
            return -1;
        }
        buf[n] = '\0';
    }
    if (tty && strcmp(out, again) != 0) {
        sodium_memzero(again, sizeof(again));
        fprintf(stderr, "remigate: officer: the two passwords differ\n");
        return -1;
    }
    sodium_memzero(again, sizeof(again));
    return 0;
}

/* Run q with params; on failure print why and return NULL. */
static PGresult *
cli_exec(struct cli *c, const char *q, int n, const char *const *p)
{
    PGresult *r = PQexecParams(c->db, q, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    fprintf(stderr, "remigate: officer: database: %s", PQresultErrorMessage(r));
    PQclear(r);
    return NULL;
}

static int
cli_simple(struct cli *c, const char *q)
{
    PGresult *r = cli_exec(c, q, 0, NULL);
    PQclear(r);
    return r ? 0 : -1;
}

static int
cli_audit(struct cli *c, const char *action, const char *detail)
{
    char target[64];
    const char *p[3] = {action, target, detail};
    PGresult *r;

    snprintf(target, sizeof(target), "officer:%s", c->username);
    r = cli_exec(c,
                 "INSERT INTO audit_log (actor, source, action, target,"
                 " outcome, detail) VALUES ('cli', 'cli', $1, $2, 'ok',"
                 " coalesce($3::jsonb, '{}'::jsonb))",
                 3, p);
    PQclear(r);
    return r ? 0 : -1;
}

/* A new hash of a password read from stdin, checked against the rules. */
static int
cli_new_hash(struct cli *c, char out[128])
{
    char pw[CON_PW_MAX * 4 + 2], err[512];
    struct con_pwlist *common;
    const char *why;
    int rc = -1;

    common = con_pwlist_load(c->cfg.con_common_passwords, err, sizeof(err));
    if (common == NULL) {
        fprintf(stderr, "remigate: officer: %s\n", err);
        return -1;
    }
    if (cli_password(pw, sizeof(pw)) != 0) goto done;
    if ((why = con_password_check(common, c->username, pw)) != NULL) {
        fprintf(stderr, "remigate: officer: %s\n", why);
        goto done;
    }
    if (con_pw_hash_now(pw, (unsigned long long)c->cfg.con_pwhash_passes,
                        (size_t)c->cfg.con_pwhash_kib * 1024, out) != 0) {
        fprintf(stderr, "remigate: officer: cannot hash (out of memory)\n");
        goto done;
    }
    rc = 0;
done:
    sodium_memzero(pw, sizeof(pw));
    con_pwlist_free(common);
    return rc;
}

/* End every open console session of the user, with why. */
static int
cli_end_sessions(struct cli *c, const char *why)
{
    const char *p[2] = {c->username, why};
    PGresult *r = cli_exec(
        c,
        "UPDATE console_sessions s SET ended_at = now(), ended_why = $2"
        " FROM officers o WHERE o.id = s.officer_id AND o.username = $1"
        " AND s.ended_at IS NULL",
        2, p);
    PQclear(r);
    return r ? 0 : -1;
}

static int
cli_add(struct cli *c)
{
    char hash[128], err[512], detail[2048];
    const char *p[3];
    struct con_codes *codes;
    PGresult *r;
    size_t n;

    if (con_role_bit(c->role) == 0) {
        fprintf(stderr, "remigate: officer: --role is admin, officer or "
                        "analyst\n");
        return 2;
    }
    if (strcmp(c->role, "officer") == 0 && c->ndistricts == 0) {
        fprintf(stderr, "remigate: officer: an officer needs at least one "
                        "--district\n");
        return 2;
    }
    if (strcmp(c->role, "officer") != 0 && c->ndistricts > 0) {
        fprintf(stderr, "remigate: officer: only an officer has districts "
                        "(admins and analysts see all)\n");
        return 2;
    }
    if ((codes = con_districts_load(c->cfg.lists_dir, err, sizeof(err))) ==
        NULL) {
        fprintf(stderr, "remigate: officer: %s\n", err);
        return 1;
    }
    for (int i = 0; i < c->ndistricts; i++)
        if (!con_codes_has(codes, c->districts[i])) {
            fprintf(stderr,
                    "remigate: officer: no district %s in "
                    "%s/districts.conf\n",
                    c->districts[i], c->cfg.lists_dir);
            con_codes_free(codes);
            return 2;
        }
    con_codes_free(codes);
    if (cli_new_hash(c, hash) != 0) return 1;
    if (cli_simple(c, "BEGIN") != 0) return 1;
    p[0] = c->username;
    p[1] = c->role;
    p[2] = hash;
    r = PQexecParams(c->db,
                     "INSERT INTO officers (username, role, pw_hash)"
                     " VALUES ($1, $2, $3) RETURNING id",
                     3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (code && strcmp(code, "23505") == 0)
            fprintf(stderr, "remigate: officer: %s exists already\n",
                    c->username);
        else
            fprintf(stderr, "remigate: officer: database: %s",
                    PQresultErrorMessage(r));
        PQclear(r);
        return 1;
    }
    PQclear(r);
    n = (size_t)snprintf(detail, sizeof(detail),
                         "{\"role\":\"%s\",\"districts\":[", c->role);
    for (int i = 0; i < c->ndistricts; i++) {
        const char *q[2] = {c->username, c->districts[i]};
        r = cli_exec(c,
                     "INSERT INTO officer_districts (officer_id, district)"
                     " SELECT id, $2 FROM officers WHERE username = $1"
                     " ON CONFLICT DO NOTHING",
                     2, q);
        if (r == NULL) return 1;
        PQclear(r);
        if (n < sizeof(detail))
            n += (size_t)snprintf(detail + n, sizeof(detail) - n, "%s\"%s\"",
                                  i ? "," : "", c->districts[i]);
    }
    if (n < sizeof(detail)) snprintf(detail + n, sizeof(detail) - n, "]}");
    if (cli_audit(c, "officer.add", detail) != 0 ||
        cli_simple(c, "COMMIT") != 0)
        return 1;
    printf("remigate: officer: added %s (%s)\n", c->username, c->role);
    return 0;
}

/* passwd, disable, enable: one UPDATE of the user's row, sessions ended
 * when why is set, one audit row. */
static int
cli_change(struct cli *c, const char *sql, const char *action, const char *why,
           const char *hash)
{
    const char *p[2] = {c->username, hash};
    PGresult *r;

    if (cli_simple(c, "BEGIN") != 0) return 1;
    if ((r = cli_exec(c, sql, hash ? 2 : 1, p)) == NULL) return 1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        fprintf(stderr, "remigate: officer: no officer %s\n", c->username);
        return 1;
    }
    PQclear(r);
    if ((why && cli_end_sessions(c, why) != 0) ||
        cli_audit(c, action, NULL) != 0 || cli_simple(c, "COMMIT") != 0)
        return 1;
    printf("remigate: officer: %s %s\n", action + strlen("officer."),
           c->username);
    return 0;
}

static int
cli_list(struct cli *c)
{
    PGresult *r = cli_exec(
        c,
        "SELECT o.username, o.role, coalesce((SELECT string_agg(d.district,"
        " ',' ORDER BY d.district) FROM officer_districts d WHERE"
        " d.officer_id = o.id), '-'), CASE WHEN o.totp_enabled THEN 'yes'"
        " ELSE 'no' END, CASE WHEN o.disabled_at IS NULL THEN 'active' ELSE"
        " 'disabled' END, to_char(o.created_at AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD') FROM officers o ORDER BY o.username",
        0, NULL);

    if (r == NULL) return 1;
    printf("%-24s %-8s %-6s %-9s %-10s %s\n", "USERNAME", "ROLE", "TOTP",
           "STATE", "CREATED", "DISTRICTS");
    for (int i = 0; i < PQntuples(r); i++)
        printf("%-24s %-8s %-6s %-9s %-10s %s\n", PQgetvalue(r, i, 0),
               PQgetvalue(r, i, 1), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
               PQgetvalue(r, i, 5), PQgetvalue(r, i, 2));
    PQclear(r);
    return 0;
}

int
console_officer_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"username", required_argument, NULL, 'u'},
        {"role", required_argument, NULL, 'r'},
        {"district", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    const char *cmd, *why;
    char err[512], hash[128];
    int o, rc;

    memset(&c, 0, sizeof(c));
    if (argc < 2 || argv[1][0] == '-') {
        cli_usage(stderr);
        return 2;
    }
    cmd = argv[1];
    optind = 2;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            c.config = optarg;
            break;
        case 'u':
            c.username = optarg;
            break;
        case 'r':
            c.role = optarg;
            break;
        case 'd':
            if (c.ndistricts == CLI_DISTRICTS_MAX) {
                fprintf(stderr, "remigate: officer: too many districts\n");
                return 2;
            }
            c.districts[c.ndistricts++] = optarg;
            break;
        case 'h':
            cli_usage(stdout);
            return 0;
        default:
            cli_usage(stderr);
            return 2;
        }
    }
    if (optind != argc || c.config == NULL ||
        (strcmp(cmd, "list") != 0 && c.username == NULL) ||
        (strcmp(cmd, "add") == 0) != (c.role != NULL) ||
        (strcmp(cmd, "add") != 0 && c.ndistricts > 0)) {
        cli_usage(stderr);
        return 2;
    }
    if (c.username && (why = con_username_check(c.username)) != NULL) {
        fprintf(stderr, "remigate: officer: %s\n", why);
        return 2;
    }
    if (gw_config_load(c.config, &c.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "remigate: %s\n", err);
        return 1;
    }
    if (c.cfg.pg_dsn[0] == '\0') {
        fprintf(stderr, "remigate: officer: postgres.dsn is empty in %s\n",
                c.config);
        return 1;
    }
    if (sodium_init() < 0) return 1;
    if (strcmp(cmd, "add") != 0 && strcmp(cmd, "passwd") != 0 &&
        strcmp(cmd, "disable") != 0 && strcmp(cmd, "enable") != 0 &&
        strcmp(cmd, "list") != 0) {
        fprintf(stderr, "remigate: officer: unknown command '%s'\n", cmd);
        cli_usage(stderr);
        return 2;
    }
    /* the password first: a typo in it should not need the database */
    if (strcmp(cmd, "passwd") == 0 && cli_new_hash(&c, hash) != 0) return 1;
    c.db = PQconnectdb(c.cfg.pg_dsn);
    if (PQstatus(c.db) != CONNECTION_OK) {
        fprintf(stderr, "remigate: officer: cannot connect: %s",
                PQerrorMessage(c.db));
        PQfinish(c.db);
        return 1;
    }
    if (strcmp(cmd, "add") == 0)
        rc = cli_add(&c);
    else if (strcmp(cmd, "passwd") == 0)
        rc = cli_change(&c,
                        "UPDATE officers SET pw_hash = $2, pw_changed_at ="
                        " now(), updated_at = now() WHERE username = $1"
                        " RETURNING id",
                        "officer.passwd", "password", hash);
    else if (strcmp(cmd, "disable") == 0)
        rc = cli_change(&c,
                        "UPDATE officers SET disabled_at = coalesce("
                        "disabled_at, now()), updated_at = now() WHERE"
                        " username = $1 RETURNING id",
                        "officer.disable", "disabled", NULL);
    else if (strcmp(cmd, "enable") == 0)
        rc = cli_change(&c,
                        "UPDATE officers SET disabled_at = NULL, updated_at ="
                        " now() WHERE username = $1 RETURNING id",
                        "officer.enable", NULL, NULL);
    else
        rc = cli_list(&c);
    sodium_memzero(hash, sizeof(hash));
    PQfinish(c.db);
    return rc;
}
