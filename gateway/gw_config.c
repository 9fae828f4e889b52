/*
 * gw_config.c -- remigate.conf as a table.
 *
 * Each row names a libconfig path, a type, a range, a default and where the
 * value lands in struct gw_config.  Loading walks the file, not the table:
 * every setting found must match a row (or be a group on the way to one),
 * so a misspelt key is an error with its line instead of a silently ignored
 * default.  Defaults live here and nowhere else; docs/config.md explains
 * each key.
 */
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"

enum gw_cfg_type { GW_CFG_STR, GW_CFG_INT, GW_CFG_PATH };

struct gw_cfg_row {
    const char *path;
    enum gw_cfg_type type;
    long min, max;
    const char *def; /* default, as text */
    size_t off;
    size_t size;     /* for strings */
};

#define S(p, field, d)                                                      \
    {p, GW_CFG_STR, 0, 0, d, offsetof(struct gw_config, field),             \
     sizeof(((struct gw_config *)0)->field)}
#define P(p, field, d)                                                      \
    {p, GW_CFG_PATH, 0, 0, d, offsetof(struct gw_config, field),            \
     sizeof(((struct gw_config *)0)->field)}
#define I(p, field, lo, hi, d)                                              \
    {p, GW_CFG_INT, lo, hi, d, offsetof(struct gw_config, field), 0}

static const struct gw_cfg_row gw_cfg_rows[] = {
    S("log.level", log_level, "info"),
    S("listen.address", listen_address, "127.0.0.1"),
    I("listen.port", listen_port, 0, 65535, "8080"),
    I("listen.workers", workers, 0, 64, "0"),
    P("listen.port_file", port_file, ""),
    I("limits.header_bytes", header_bytes, 1024, 1 << 20, "8192"),
    I("limits.body_bytes", body_bytes, 1024, 1 << 24, "8192"),
    I("limits.request_timeout_ms", request_timeout_ms, 100, 60000, "2000"),
    I("limits.max_connections", max_connections, 16, 1 << 20, "4096"),
    S("redis.host", redis_host, "127.0.0.1"),
    I("redis.port", redis_port, 1, 65535, "6379"),
    S("redis.prefix", redis_prefix, "remigate:"),
    I("redis.timeout_ms", redis_timeout_ms, 10, 60000, "500"),
    I("redis.max_pending", redis_max_pending, 1, 1 << 24, "10000"),
    I("sessions.ussd_idle", ussd_idle, 10, 86400, "180"),
    I("sessions.resume_window", resume_window, 0, 7 * 86400, "900"),
    I("sessions.sms_ttl", sms_ttl, 60, 30 * 86400, "86400"),
    I("sessions.dedup_window", dedup_window, 0, 3600, "30"),
    S("kannel.secret", kannel_secret, ""),
    S("kannel.sendsms_url", sendsms_url,
      "http://127.0.0.1:13013/cgi-bin/sendsms"),
    S("kannel.username", kannel_username, ""),
    S("kannel.password", kannel_password, ""),
    S("kannel.ussd_smsc", ussd_smsc, "ussd"),
    S("kannel.sms_smsc", sms_smsc, "sms"),
    S("kannel.short_code", short_code, "16247"),
    S("kannel.dlr_url", dlr_url, ""),
    S("ussd_at.key", at_key, ""),
    S("postgres.dsn", pg_dsn, ""),
    I("postgres.pool", pg_pool, 1, 64, "4"),
    I("postgres.timeout_ms", pg_timeout_ms, 10, 60000, "2000"),
    P("crypto.key_file", key_file, ""),
    P("flows.dir", flows_dir, "flows"),
    P("flows.lists", lists_dir, "lists"),
    P("flows.messages", messages_file, "messages.conf"),
    S("flows.entry_ussd", entry_ussd, "main"),
    S("flows.entry_sms", entry_sms, "main"),
    S("flows.keys.back", key_back, "0"),
    S("flows.keys.home", key_home, "00"),
    S("flows.keys.more", key_more, "98"),
    I("flows.max_tries", max_tries, 1, 20, "3"),
    I("flows.utc_offset", utc_offset, -50400, 50400, "21600"),
    I("flows.pages.ussd.gsm7", ussd_gsm7, 40, 400, "182"),
    I("flows.pages.ussd.ucs2", ussd_ucs2, 20, 200, "80"),
    I("flows.pages.sms.parts", sms_parts, 1, 10, "3"),
};

#define GW_CFG_NROWS (sizeof(gw_cfg_rows) / sizeof(gw_cfg_rows[0]))

/* Arrays the table does not describe but the file may hold. */
static const char *const gw_cfg_lists[] = {"ussd_at.allow", NULL};

static int
gw_cfg_set(struct gw_config *c, const struct gw_cfg_row *r, const char *s,
           long v)
{
    char *base = (char *)c;
    if (r->type == GW_CFG_INT) {
        if (v < r->min || v > r->max)
            return -1;
        *(long *)(base + r->off) = v;
        return 0;
    }
    char buf[GW_STR_MAX * 2];
    if (r->type == GW_CFG_PATH && s[0] != '\0' && s[0] != '/')
        snprintf(buf, sizeof(buf), "%s/%s", c->dir, s);
    else
        snprintf(buf, sizeof(buf), "%s", s);
    if (strlen(buf) >= r->size)
        return -2;
    memcpy(base + r->off, buf, strlen(buf) + 1);
    return 0;
}

static const struct gw_cfg_row *
gw_cfg_find(const char *path)
{
    for (size_t i = 0; i < GW_CFG_NROWS; i++)
        if (strcmp(gw_cfg_rows[i].path, path) == 0)
            return &gw_cfg_rows[i];
    return NULL;
}

/* Is path a prefix group of some row? */
static int
gw_cfg_is_group(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < GW_CFG_NROWS; i++)
        if (strncmp(gw_cfg_rows[i].path, path, n) == 0 &&
            gw_cfg_rows[i].path[n] == '.')
            return 1;
    return 0;
}

static int
gw_cfg_walk(struct gw_config *c, config_setting_t *g, const char *prefix,
            char *err, size_t errlen)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        char path[256];
        const char *name = config_setting_name(s);
        int line = (int)config_setting_source_line(s);
        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "",
                 name ? name : "?");
        int type = config_setting_type(s);
        if (type == CONFIG_TYPE_GROUP) {
            if (!gw_cfg_is_group(path))
                goto unknown;
            if (gw_cfg_walk(c, s, path, err, errlen) < 0)
                return -1;
            continue;
        }
        int listed = 0;
        for (size_t k = 0; gw_cfg_lists[k]; k++)
            listed |= strcmp(gw_cfg_lists[k], path) == 0;
        if (listed)
            continue;
        const struct gw_cfg_row *r = gw_cfg_find(path);
        if (r == NULL)
            goto unknown;
        int rc;
        if (r->type == GW_CFG_INT) {
            if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
                snprintf(err, errlen, "%s:%d: '%s' must be a whole number",
                         c->path, line, path);
                return -1;
            }
            rc = gw_cfg_set(c, r, NULL, (long)config_setting_get_int64(s));
            if (rc < 0) {
                snprintf(err, errlen, "%s:%d: '%s' must be between %ld and "
                         "%ld", c->path, line, path, r->min, r->max);
                return -1;
            }
        } else {
            if (type != CONFIG_TYPE_STRING) {
                snprintf(err, errlen, "%s:%d: '%s' must be a string",
                         c->path, line, path);
                return -1;
            }
            if (gw_cfg_set(c, r, config_setting_get_string(s), 0) < 0) {
                snprintf(err, errlen, "%s:%d: '%s' is too long", c->path,
                         line, path);
                return -1;
            }
        }
        continue;
    unknown:
        snprintf(err, errlen, "%s:%d: unknown setting '%s'", c->path, line,
                 path);
        return -1;
    }
    return 0;
}

int
gw_config_load(const char *path, struct gw_config *c, char *err,
               size_t errlen)
{
    config_t cfg;
    memset(c, 0, sizeof(*c));
    if (strlen(path) >= sizeof(c->path)) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    snprintf(c->dir, sizeof(c->dir), "%s", path);
    char *slash = strrchr(c->dir, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(c->dir, sizeof(c->dir), ".");
    for (size_t i = 0; i < GW_CFG_NROWS; i++) {
        const struct gw_cfg_row *r = &gw_cfg_rows[i];
        gw_cfg_set(c, r, r->def, r->type == GW_CFG_INT ? atol(r->def) : 0);
    }
    config_init(&cfg);
    if (config_read_file(&cfg, path) != CONFIG_TRUE) {
        if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "%s: cannot read the file", path);
        else
            snprintf(err, errlen, "%s:%d: %s",
                     config_error_file(&cfg) ? config_error_file(&cfg) : path,
                     config_error_line(&cfg), config_error_text(&cfg));
        config_destroy(&cfg);
        return -1;
    }
    int rc = gw_cfg_walk(c, config_root_setting(&cfg), "", err, errlen);
    config_destroy(&cfg);
    if (rc == 0 && strcmp(c->log_level, "debug") && strcmp(c->log_level,
        "info") && strcmp(c->log_level, "warn") && strcmp(c->log_level,
        "error")) {
        snprintf(err, errlen, "%s: log.level must be debug, info, warn or "
                 "error", path);
        rc = -1;
    }
    return rc;
}

void
gw_config_fini(struct gw_config *c)
{
    (void)c; /* everything is inline in the struct */
}

void
gw_config_flow_settings(const struct gw_config *c, struct flow_settings *fs)
{
    flow_settings_default(fs);
    fs->flows_dir = c->flows_dir;
    fs->lists_dir = c->lists_dir;
    fs->messages_file = c->messages_file;
    fs->entry_ussd = c->entry_ussd;
    fs->entry_sms = c->entry_sms;
    snprintf(fs->key_back, sizeof(fs->key_back), "%s", c->key_back);
    snprintf(fs->key_home, sizeof(fs->key_home), "%s", c->key_home);
    snprintf(fs->key_more, sizeof(fs->key_more), "%s", c->key_more);
    fs->max_tries = (unsigned)c->max_tries;
    fs->utc_offset = (int)c->utc_offset;
    fs->page[FLOW_CH_USSD].gsm7 = (unsigned)c->ussd_gsm7;
    fs->page[FLOW_CH_USSD].ucs2 = (unsigned)c->ussd_ucs2;
    unsigned parts = (unsigned)c->sms_parts;
    fs->page[FLOW_CH_SMS].gsm7 = parts == 1 ? 160 : 153 * parts;
    fs->page[FLOW_CH_SMS].ucs2 = parts == 1 ? 70 : 67 * parts;
}
