/*
 * store_migrate.c -- schema migrations: store/migrations/NNN_name.sql.
 *
 * Blocking libpq on purpose: this runs from `remigate migrate` and once at
 * daemon start-up, before the event loop, never on it.  Files are applied
 * in version order, each in its own transaction together with its row in
 * schema_migrations, so a failing file leaves nothing half-applied.  A
 * session-level advisory lock keeps two runners (two daemons, two
 * operators) from applying the same file twice.  The SHA-256 of each file
 * is recorded; a file edited after it was applied is refused, because the
 * database no longer matches what the repository says it is.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "store/store.h"

#define STORE_MIG_LOCK  "7305641901"  /* pg_advisory_lock key */
#define STORE_MIG_MAX   512           /* files */
#define STORE_MIG_BYTES (1024 * 1024) /* per file */

struct store_mig {
    int version;
    char name[128]; /* file name without ".sql" */
    char sum[65];   /* hex SHA-256 of the contents */
    char *sql;
};

static void
store_mig_free(struct store_mig *m, int n)
{
    for (int i = 0; i < n; i++)
        free(m[i].sql);
    free(m);
}

static int
store_mig_cmp(const void *a, const void *b)
{
    const struct store_mig *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Is name "NNN_word.sql"?  Sets *version. */
static int
store_mig_name_ok(const char *name, int *version)
{
    size_t len = strlen(name), i = 0;
    int v = 0;

    while (i < len && name[i] >= '0' && name[i] <= '9' && i < 6)
        v = v * 10 + (name[i++] - '0');
    if (i < 3 || i >= len || name[i] != '_' || len < i + 6 ||
        strcmp(name + len - 4, ".sql") != 0)
        return 0;
    for (size_t j = i + 1; j < len - 4; j++) {
        char c = name[j];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    *version = v;
    return 1;
}

/* Read every migration file of dir, sorted.  Returns the count or -1. */
static int
store_mig_read(const char *dir, struct store_mig **out, char *err,
               size_t errlen)
{
    struct store_mig *m = calloc(STORE_MIG_MAX, sizeof(*m));
    struct dirent *de;
    DIR *d;
    int n = 0, version;

    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        free(m);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        char path[1024];
        unsigned char sum[crypto_hash_sha256_BYTES];
        size_t len;
        FILE *f;

        if (!store_mig_name_ok(de->d_name, &version)) continue;
        if (n == STORE_MIG_MAX) {
            snprintf(err, errlen, "%s: too many migration files", dir);
            goto fail;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        m[n].version = version;
        snprintf(m[n].name, sizeof(m[n].name), "%.*s",
                 (int)(strlen(de->d_name) - 4), de->d_name);
        m[n].sql = malloc(STORE_MIG_BYTES + 1);
        f = fopen(path, "rb");
        if (m[n].sql == NULL || f == NULL) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            if (f) fclose(f);
            n++;
            goto fail;
        }
        len = fread(m[n].sql, 1, STORE_MIG_BYTES + 1, f);
        fclose(f);
        n++;
        if (len > STORE_MIG_BYTES) {
            snprintf(err, errlen, "%s: larger than 1 MiB", path);
            goto fail;
        }
        m[n - 1].sql[len] = '\0';
        crypto_hash_sha256(sum, (unsigned char *)m[n - 1].sql, len);
        sodium_bin2hex(m[n - 1].sum, sizeof(m[n - 1].sum), sum, sizeof(sum));
    }
    closedir(d);
    d = NULL;
    qsort(m, (size_t)n, sizeof(*m), store_mig_cmp);
    for (int i = 1; i < n; i++)
        if (m[i].version == m[i - 1].version) {
            snprintf(err, errlen, "%s: %s and %s have the same number", dir,
                     m[i - 1].name, m[i].name);
            goto fail;
        }
    if (n == 0) {
        snprintf(err, errlen, "%s: no migration files (NNN_name.sql)", dir);
        goto fail;
    }
    *out = m;
    return n;
fail:
    if (d) closedir(d);
    store_mig_free(m, n);
    return -1;
}

/* Run one command; 0 if it succeeded. */
static int
store_mig_exec(PGconn *pg, const char *sql, int nparams,
               const char *const *params, PGresult **keep, char *err,
               size_t errlen)
{
    PGresult *r = nparams > 0 || keep ? PQexecParams(pg, sql, nparams, NULL,
                                                     params, NULL, NULL, 0)
                                      : PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        size_t l = strlen(err);
        while (l > 0 && err[l - 1] == '\n')
            err[--l] = '\0';
        PQclear(r);
        return -1;
    }
    if (keep)
        *keep = r;
    else
        PQclear(r);
    return 0;
}

/* Server notices are dropped: they may quote data, and the log is the
 * daemon's to write. */
static void
store_mig_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *
store_mig_connect(const char *dsn, char *err, size_t errlen)
{
    PGconn *pg = PQconnectdb(dsn ? dsn : "");

    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
                 PQerrorMessage(pg));
        size_t l = strlen(err);
        while (l > 0 && err[l - 1] == '\n')
            err[--l] = '\0';
        PQfinish(pg);
        return NULL;
    }
    /* Notices (e.g. "relation exists, skipping") are not for the user. */
    PQsetNoticeProcessor(pg, store_mig_notice, NULL);
    return pg;
}

/* Find m's recorded checksum in r (version, checksum rows); NULL if the
 * file was never applied. */
static const char *
store_mig_recorded(PGresult *r, const struct store_mig *m)
{
    for (int i = 0; i < PQntuples(r); i++)
        if (atoi(PQgetvalue(r, i, 0)) == m->version) return PQgetvalue(r, i, 1);
    return NULL;
}

/* apply: 1 to apply what is missing, 0 to only check.  Returns 0, or a
 * STORE_E* with err set; *pending counts files not applied. */
static int
store_mig_run(const char *dsn, const char *dir, int apply, int verbose,
              int *pending, char *err, size_t errlen)
{
    struct store_mig *m = NULL;
    PGresult *done = NULL;
    PGconn *pg = NULL;
    int n, rc = STORE_EINVAL, locked = 0;

    *pending = 0;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium did not initialise");
        return STORE_EINVAL;
    }
    if (dir == NULL) dir = STORE_MIGRATIONS_DIR;
    n = store_mig_read(dir, &m, err, errlen);
    if (n < 0) return STORE_EINVAL;
    pg = store_mig_connect(dsn, err, errlen);
    if (pg == NULL) {
        rc = STORE_EDOWN;
        goto done;
    }
    rc = STORE_EDB;
    if (apply) {
        if (store_mig_exec(pg, "SELECT pg_advisory_lock(" STORE_MIG_LOCK ")", 0,
                           NULL, NULL, err, errlen) != 0)
            goto done;
        locked = 1;
        if (store_mig_exec(pg,
                           "CREATE TABLE IF NOT EXISTS schema_migrations ("
                           " version int PRIMARY KEY,"
                           " name text NOT NULL,"
                           " checksum text NOT NULL,"
                           " applied_at timestamptz NOT NULL DEFAULT now())",
                           0, NULL, NULL, err, errlen) != 0)
            goto done;
    } else {
        PGresult *r = NULL;
        if (store_mig_exec(pg,
                           "SELECT to_regclass('schema_migrations') IS NULL", 0,
                           NULL, &r, err, errlen) != 0)
            goto done;
        int missing = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        if (missing) {
            *pending = n;
            rc = 0;
            goto done;
        }
    }
    if (store_mig_exec(pg, "SELECT version, checksum FROM schema_migrations", 0,
                       NULL, &done, err, errlen) != 0)
        goto done;
    rc = STORE_EINVAL;
    for (int i = 0; i < n; i++) {
        const char *sum = store_mig_recorded(done, &m[i]);
        if (sum != NULL && strcmp(sum, m[i].sum) != 0) {
            snprintf(err, errlen,
                     "%s/%s.sql was changed after it was applied (recorded "
                     "checksum %.12s..., file %.12s...): add a new migration "
                     "instead of editing an applied one",
                     dir, m[i].name, sum, m[i].sum);
            goto done;
        }
        if (sum == NULL) (*pending)++;
    }
    rc = STORE_EDB;
    for (int i = 0; apply && i < n; i++) {
        char ver[16];
        const char *params[3] = {ver, m[i].name, m[i].sum};

        if (store_mig_recorded(done, &m[i]) != NULL) continue;
        snprintf(ver, sizeof(ver), "%d", m[i].version);
        if (store_mig_exec(pg, "BEGIN", 0, NULL, NULL, err, errlen) != 0)
            goto done;
        if (store_mig_exec(pg, m[i].sql, 0, NULL, NULL, err, errlen) != 0 ||
            store_mig_exec(pg,
                           "INSERT INTO schema_migrations (version, name, "
                           "checksum) VALUES ($1::int, $2, $3)",
                           3, params, NULL, err, errlen) != 0) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", err);
            snprintf(err, errlen, "%s/%s.sql: %s (nothing of it applied)", dir,
                     m[i].name, msg);
            PQclear(PQexec(pg, "ROLLBACK"));
            goto done;
        }
        if (store_mig_exec(pg, "COMMIT", 0, NULL, NULL, err, errlen) != 0)
            goto done;
        (*pending)--;
        if (verbose) printf("applied %s\n", m[i].name);
    }
    rc = 0;
done:
    if (done) PQclear(done);
    if (locked)
        PQclear(PQexec(pg, "SELECT pg_advisory_unlock(" STORE_MIG_LOCK ")"));
    PQfinish(pg);
    store_mig_free(m, n);
    return rc;
}

int
store_migrate(const char *dsn, const char *dir, char *err, size_t errlen)
{
    int pending;
    return store_mig_run(dsn, dir, 1, 0, &pending, err, errlen) == 0 ? 0 : -1;
}

int
store_migrate_main(const char *dsn, const char *dir)
{
    char err[1024];
    int pending;

    if (store_mig_run(dsn, dir, 1, 1, &pending, err, sizeof(err)) != 0) {
        fprintf(stderr, "remigate migrate: %s\n", err);
        return 1;
    }
    printf("schema up to date\n");
    return 0;
}

int
store_migrate_check(const char *dsn, const char *dir, char *err, size_t errlen)
{
    int pending, rc;

    rc = store_mig_run(dsn, dir, 0, 0, &pending, err, errlen);
    if (rc != 0) return rc;
    if (pending > 0) {
        snprintf(err, errlen,
                 "database schema is behind this program (%d migration%s "
                 "not applied): run `remigate migrate -c FILE` first",
                 pending, pending == 1 ? "" : "s");
        return STORE_ESCHEMA;
    }
    return 0;
}
