/*
 * gw_harden.c -- what the daemon refuses, and warns about, before it
 * starts; and no core dumps.
 *
 * Fail closed: a setting whose empty value would switch a check off is an
 * error unless the thing it guards is switched off by name.  So an empty
 * kannel.secret stops the daemon unless kannel.enabled = false, rather
 * than letting anyone who reaches the port drive /kannel/mo and make it
 * send SMS.  Where the daemon cannot know whether it is exposed (a
 * reverse proxy in front of /ussd/at makes every caller 127.0.0.1), it
 * warns at start and docs/operators.md says what to do.
 *
 * Files that hold secrets (the key file, redis.password_file) are refused
 * when other users may write them -- whoever can change the key can read
 * what is encrypted under it from then on -- and warned about when other
 * users may read them.  store/ checks the key file's mode again on the
 * open descriptor, for every command that reads it.
 *
 * Each refusal is one line naming the key and the fix.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "gateway/gw_int.h"

int
gw_harden_process(void)
{
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0) return -1;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return -1;
    return 0;
}

int
gw_secret_file_check(const char *what, const char *path, char *err,
                     size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s: %s", what, path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s is not a regular file", what, path);
        return -1;
    }
    unsigned mode = (unsigned)(st.st_mode & 07777);
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen,
                 "%s: %s has mode %04o: other users may change it; refused "
                 "(run: chmod 0600 %s)",
                 what, path, mode, path);
        return -1;
    }
    if (st.st_mode & S_IROTH) {
        snprintf(err, errlen,
                 "%s: %s has mode %04o: every user may read it (run: chmod "
                 "0600 %s)",
                 what, path, mode, path);
        return 1;
    }
    return 0;
}

/* Read the password file: its first line, without the line end. */
static int
gw_password_read(struct gw_config *c, char *err, size_t errlen)
{
    char buf[sizeof(c->redis_password) + 2];
    int fd = open(c->redis_password_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "redis.password_file: %s: %s",
                 c->redis_password_file, strerror(errno));
        return -1;
    }
    ssize_t n;
    do
        n = read(fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "redis.password_file: %s: %s",
                 c->redis_password_file, strerror(errno));
        return -1;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    size_t len = strlen(buf);
    int rc = 0;
    if (len == 0 || len >= sizeof(c->redis_password)) {
        snprintf(err, errlen,
                 "redis.password_file: %s must hold the password on its "
                 "first line (1 to %zu bytes)",
                 c->redis_password_file, sizeof(c->redis_password) - 1);
        rc = -1;
    } else {
        memcpy(c->redis_password, buf, len + 1);
    }
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

/* Does the file at path (its first 1 MiB) contain s?  0 when it cannot
 * be read. */
static int
gw_file_holds(const char *path, const char *s)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) return 0;
    size_t cap = 1 << 20, n;
    char *buf = malloc(cap + 1);
    n = buf ? fread(buf, 1, cap, fp) : 0;
    fclose(fp);
    if (buf == NULL) return 0;
    buf[n] = '\0';
    int found = strstr(buf, s) != NULL; /* a NUL in the file ends it early */
    sodium_memzero(buf, n);
    free(buf);
    return found;
}

/* Is the listen address loopback only?  "" and host names other than
 * localhost count as beyond it. */
static int
gw_loopback_only(const char *address)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(address, "localhost") == 0) return 1;
    if (inet_pton(AF_INET, address, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, address, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

int
gw_config_harden(struct gw_config *c, char *err, size_t errlen)
{
    char why[GW_STR_MAX + 160];

    if (c->kannel_enabled && c->kannel_secret[0] == '\0') {
        snprintf(err, errlen,
                 "%s: kannel.secret is empty, so anyone who reaches the port "
                 "could drive /kannel/mo and send SMS; refused (set "
                 "kannel.secret to the key= value of Kannel's get-url, or "
                 "kannel.enabled = false)",
                 c->path);
        return -1;
    }
    if (c->key_file[0] != '\0') {
        int rc = gw_secret_file_check("crypto.key_file", c->key_file, why,
                                      sizeof(why));
        if (rc < 0) {
            snprintf(err, errlen, "%s", why);
            return -1;
        }
        if (rc > 0) GW_LOG_WARN(0, "%s", why);
    }
    if (c->redis_password_file[0] != '\0') {
        if (c->redis_password[0] != '\0') {
            snprintf(err, errlen,
                     "%s: both redis.password and redis.password_file are "
                     "set; keep one (redis.password_file keeps the password "
                     "out of the config file)",
                     c->path);
            return -1;
        }
        int rc = gw_secret_file_check("redis.password_file",
                                      c->redis_password_file, why, sizeof(why));
        if (rc < 0) {
            snprintf(err, errlen, "%s", why);
            return -1;
        }
        if (rc > 0) GW_LOG_WARN(0, "%s", why);
        if (gw_password_read(c, err, errlen) != 0) return -1;
    }

    /* the config file itself, when it holds secrets (gw_config_load()
     * refuses it when others may write it); a secret given on the command
     * line is not in the file */
    struct stat st;
    const char *secret = NULL;
    if (stat(c->path, &st) == 0 && (st.st_mode & S_IROTH)) {
        const struct {
            const char *key, *value;
        } held[] = {
            {"kannel.secret", c->kannel_secret},
            {"redis.password",
             c->redis_password_file[0] ? "" : c->redis_password},
            {"ussd_at.key", c->at_key},
            {"kannel.password", c->kannel_password},
            {"postgres.dsn", strstr(c->pg_dsn, "password") ? c->pg_dsn : ""},
            {"postgres.console_dsn",
             strstr(c->pg_console_dsn, "password") ? c->pg_console_dsn : ""},
            {"postgres.read_dsn",
             strstr(c->pg_read_dsn, "password") ? c->pg_read_dsn : ""},
        };
        for (size_t i = 0; secret == NULL && i < sizeof(held) / sizeof(held[0]);
             i++)
            if (held[i].value[0] != '\0' &&
                gw_file_holds(c->path, held[i].value))
                secret = held[i].key;
    }
    if (secret != NULL)
        GW_LOG_WARN(0,
                    "%s has mode %04o and holds %s: every user may read it "
                    "(run: chmod 0640 %s, or pass secrets in files)",
                    c->path, (unsigned)(st.st_mode & 07777), secret, c->path);

    /* /ussd/at: who may call it */
    int open_wide = !gw_loopback_only(c->listen_address);
    if (c->at_key[0] == '\0') {
        if (c->at_allow_n == 0)
            GW_LOG_WARN(0, "ussd_at.key is empty and ussd_at.allow is empty: "
                           "anyone who reaches the port can register callers "
                           "over /ussd/at (set ussd_at.key)");
        else if (open_wide)
            GW_LOG_WARN(0,
                        "listen.address=%s reaches beyond loopback and "
                        "ussd_at.key is empty: /ussd/at trusts the caller's "
                        "address alone (set ussd_at.key)",
                        c->listen_address[0] ? c->listen_address : "(all)");
        else
            GW_LOG_WARN(0, "ussd_at.key is empty: /ussd/at trusts the caller's "
                           "address alone, and behind a reverse proxy every "
                           "caller has the proxy's address (set ussd_at.key; "
                           "see docs/operators.md, Hardening)");
    }
    if (!c->kannel_enabled)
        GW_LOG_INFO(0, "kannel.enabled = false: /kannel/mo and /kannel/dlr "
                       "refuse every request");
    return 0;
}

int
gw_req_kannel_or_404(struct gw_req *r)
{
    const struct gw_config *cfg = gw_server_config(r->srv);
    if (cfg->kannel_enabled && cfg->kannel_secret[0] != '\0') return 0;
    gw_reply_error(r, 404,
                   cfg->kannel_enabled
                       ? "kannel callbacks are off: kannel.secret is empty"
                       : "kannel callbacks are off (kannel.enabled = false)");
    return -1;
}
