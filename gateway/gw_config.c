/*
 * gw_config.c -- remigate.conf as a table.
 *
 * Each row names a libconfig path, a type, a range (or a set of words), a
 * default and where the value lands in struct gw_config.  Loading walks
 * the file, not the table: every setting found must match a row (or be a
 * group on the way to one), so a misspelt key is an error with its line
 * instead of a silently ignored default.  Defaults live here and nowhere
 * else -- they are applied through the same setter as the file, so a
 * default out of its own range fails at once -- and docs/config.md
 * explains each key.  The command line sets keys through the same rows
 * (gw_config_set()).
 */
#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gateway/gw.h"
#include "gateway/gw_assert.h"
#include "notices/notices.h"
#include "sessions/sess.h"

enum gw_cfg_type {
    GW_CFG_STR,   /* a string */
    GW_CFG_PATH,  /* a string; relative to the file's directory */
    GW_CFG_WORD,  /* a string from a set: "a|b|c" in words */
    GW_CFG_INT,   /* a whole number in [min, max] */
    GW_CFG_CIDRS, /* a list of addresses or networks */
    GW_CFG_BOOL,  /* true or false (text: true|false|yes|no|1|0) */
    GW_CFG_LIST,  /* a list of strings (or one string), kept as "a,b,c" */
};

struct gw_cfg_row {
    const char *path;
    enum gw_cfg_type type;
    long min, max;
    const char *words; /* GW_CFG_WORD */
    const char *def;   /* default, as text */
    size_t off;
    size_t size; /* of the string field */
    /* a string's own shape: NULL if valid, else why not */
    const char *(*check)(const char *value);
};

#define GW_F(field) offsetof(struct gw_config, field)
#define GW_Z(field) sizeof(((struct gw_config *)0)->field)
#define S(p, field, d)                                                         \
    {                                                                          \
        p, GW_CFG_STR, 0, 0, NULL, d, GW_F(field), GW_Z(field), NULL           \
    }
#define P(p, field, d)                                                         \
    {                                                                          \
        p, GW_CFG_PATH, 0, 0, NULL, d, GW_F(field), GW_Z(field), NULL          \
    }
#define W(p, field, words, d)                                                  \
    {                                                                          \
        p, GW_CFG_WORD, 0, 0, words, d, GW_F(field), GW_Z(field), NULL         \
    }
#define I(p, field, lo, hi, d)                                                 \
    {                                                                          \
        p, GW_CFG_INT, lo, hi, NULL, d, GW_F(field), 0, NULL                   \
    }
#define C(p, field, d)                                                         \
    {                                                                          \
        p, GW_CFG_CIDRS, 0, 0, NULL, d, GW_F(field), 0, NULL                   \
    }
#define L(p, field, d, check)                                                  \
    {                                                                          \
        p, GW_CFG_LIST, 0, 0, NULL, d, GW_F(field), GW_Z(field), check         \
    }
#define B(p, field, d)                                                         \
    {                                                                          \
        p, GW_CFG_BOOL, 0, 1, NULL, d, GW_F(field), 0, NULL                    \
    }

static const struct gw_cfg_row gw_cfg_rows[] = {
    W("log.level", log_level, "debug|info|warn|error", "info"),
    S("listen.address", listen_address, "127.0.0.1"),
    I("listen.port", listen_port, 0, 65535, "8080"),
    I("listen.workers", workers, 0, 64, "0"),
    I("listen.slice_us", loop_slice_us, 0, 100000, "100"),
    P("listen.port_file", port_file, ""),
    I("listen.header_timeout_ms", header_timeout_ms, 100, 600000, "5000"),
    I("listen.keepalive_ms", keepalive_ms, 100, 3600000, "120000"),
    I("limits.header_bytes", header_bytes, 1024, 1 << 20, "8192"),
    I("limits.body_bytes", body_bytes, 1024, 1 << 24, "8192"),
    I("limits.request_timeout_ms", request_timeout_ms, 100, 60000, "2000"),
    I("limits.max_connections", max_connections, 16, 1 << 20, "4096"),
    S("redis.host", redis_host, "127.0.0.1"),
    I("redis.port", redis_port, 1, 65535, "6379"),
    S("redis.prefix", redis_prefix, "remigate:"),
    I("redis.timeout_ms", redis_timeout_ms, 10, 60000, "500"),
    I("redis.max_pending", redis_max_pending, 1, 1 << 24, "10000"),
    S("redis.password", redis_password, ""),
    P("redis.password_file", redis_password_file, ""),
    L("redis.sentinels", redis_sentinels, "", sess_sentinels_check),
    S("redis.master_name", redis_master_name, "remigate"),
    L("redis.cluster", redis_cluster, "", sess_cluster_check),
    I("redis.wait_ms", redis_wait_ms, 0, 60000, "0"),
    I("sessions.ussd_idle", ussd_idle, 10, 86400, "180"),
    I("sessions.resume_window", resume_window, 0, 7 * 86400, "900"),
    I("sessions.offer_window", offer_window, 0, 30 * 86400, "86400"),
    I("sessions.parts_window", parts_window, 0, 365 * 86400, "2592000"),
    I("sessions.remind_after", remind_after, 0, 7 * 86400, "3600"),
    I("sessions.remind_tick_ms", remind_tick_ms, 100, 600000, "5000"),
    I("sessions.remind_quiet_start", remind_quiet_start, 0, 24, "0"),
    I("sessions.remind_quiet_end", remind_quiet_end, 0, 24, "6"),
    I("sessions.sms_ttl", sms_ttl, 60, 30 * 86400, "86400"),
    I("sessions.dedup_window", dedup_window, 0, 3600, "30"),
    I("sessions.cache_kb", cache_kb, 0, 1048576, "2048"),
    B("kannel.enabled", kannel_enabled, "true"),
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
    C("ussd_at.allow", at_allow, "127.0.0.1,::1"),
    S("postgres.dsn", pg_dsn, ""),
    I("postgres.pool", pg_pool, 1, 64, "4"),
    I("postgres.timeout_ms", pg_timeout_ms, 10, 60000, "2000"),
    I("postgres.batch", pg_batch, 1, 64, "16"),
    S("postgres.console_dsn", pg_console_dsn, ""),
    I("postgres.console_pool", pg_console_pool, 1, 64, "2"),
    I("postgres.sms_pool", pg_sms_pool, 1, 16, "4"),
    I("postgres.sms_linger_ms", pg_sms_linger_ms, 0, 1000, "10"),
    I("postgres.wait_ms", pg_wait_ms, 0, 60000, "3000"),
    S("postgres.read_dsn", pg_read_dsn, ""),
    I("console.idle_timeout", con_idle, 1, 86400, "1800"),
    I("console.admin_idle_timeout", con_admin_idle, 1, 86400, "900"),
    I("console.absolute_timeout", con_absolute, 1, 7 * 86400, "43200"),
    W("console.cookie_secure", con_cookie_secure, "yes|no", "no"),
    W("console.admin_totp", con_admin_totp, "required|optional", "required"),
    S("console.totp_issuer", con_totp_issuer, "remigate"),
    I("console.hash_threads", con_hash_threads, 1, 16, "2"),
    I("console.hash_nice", con_hash_nice, 0, 19, "10"),
    W("console.hash_policy", con_hash_policy, "nice|idle", "nice"),
    I("console.hash_slice_us", con_hash_slice_us, 0, 100000, "100000"),
    I("console.hash_max_wait_ms", con_hash_max_wait_ms, 0, 60000, "1500"),
    I("console.pwhash_kib", con_pwhash_kib, 19456, 1048576, "19456"),
    I("console.pwhash_passes", con_pwhash_passes, 2, 16, "2"),
    P("console.common_passwords", con_common_passwords, "common-passwords.txt"),
    I("console.throttle.user_free", con_throttle_user_free, 0, 1000, "3"),
    I("console.throttle.addr_free", con_throttle_addr_free, 0, 100000, "20"),
    I("console.throttle.max_delay", con_throttle_max_delay, 1, 86400, "300"),
    I("console.throttle.window", con_throttle_window, 60, 30 * 86400, "3600"),
    I("console.db_wait_ms", con_db_wait_ms, 0, 60000, "1500"),
    I("console.stats_cache_ms", con_stats_cache_ms, 0, 60000, "5000"),
    I("console.stats_cache_kb", con_stats_cache_kb, 0, 1048576, "4096"),
    I("stats.k", stats_k, 3, 100, "5"),
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
    I("flows.session_budget", session_budget, 10, 3600, "90"),
    I("flows.clock.menu", clock_menu, 1, 600, "6"),
    I("flows.clock.number", clock_number, 1, 600, "10"),
    I("flows.clock.text", clock_text, 1, 600, "30"),
    I("flows.clock.search", clock_search, 1, 600, "8"),
    I("flows.clock.readback", clock_readback, 1, 600, "6"),
    I("flows.clock.round_trip_ms", clock_round_trip_ms, 0, 60000, "1000"),
    S("review.office_phone", office_phone, ""),
    I("review.undo_window_s", undo_window_s, 0, 86400, "600"),
    I("review.sms_poll_ms", held_poll_ms, 50, 600000, "2000"),
    P("console.web_dir", web_dir, "../web"),
    W("notices.dispatch", notices_dispatch, "on|off", "on"),
    S("notices.window", notices_window, "09:00-20:00"),
    I("notices.rate", notices_rate, 1, 10000, "10"),
    I("notices.burst", notices_burst, 0, 10000, "0"),
    I("notices.batch", notices_batch, 1, 500, "20"),
    I("notices.poll_ms", notices_poll_ms, 50, 60000, "1000"),
    I("notices.cap", notices_cap, 1, 100, "2"),
    I("notices.cap_days", notices_cap_days, 1, 365, "7"),
    I("notices.cap_per_day", notices_cap_per_day, 1, 3, "3"),
    I("notices.lost_after_s", notices_lost_after_s, 10, 86400, "120"),
    I("notices.price_paisa", notices_price_paisa, 0, 100000, "0"),
    I("notices.approve_timeout_ms", notices_approve_timeout_ms, 1000, 600000,
      "120000"),
    W("notices.vetting", notices_vetting, "required|optional", "optional"),
};

#define GW_CFG_NROWS (sizeof(gw_cfg_rows) / sizeof(gw_cfg_rows[0]))

static const struct gw_cfg_row *
gw_cfg_find(const char *path)
{
    for (size_t i = 0; i < GW_CFG_NROWS; i++)
        if (strcmp(gw_cfg_rows[i].path, path) == 0) return &gw_cfg_rows[i];
    return NULL;
}

/* Is path a group on the way to some row? */
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
gw_cfg_word_ok(const char *words, const char *s)
{
    size_t n = strlen(s);
    for (const char *w = words; *w;) {
        const char *bar = strchr(w, '|');
        size_t wl = bar ? (size_t)(bar - w) : strlen(w);
        if (wl == n && strncmp(w, s, n) == 0) return 1;
        w += wl + (bar != NULL);
    }
    return 0;
}

/* Store a string value of row r.  base_dir is where relative paths start
 * (NULL: leave them as they are).  Returns NULL or why not. */
static const char *
gw_cfg_put_str(struct gw_config *c, const struct gw_cfg_row *r, const char *s,
               const char *base_dir, char *why, size_t whylen)
{
    char buf[2 * GW_STR_MAX];
    int n;

    AN(r->size <= sizeof(buf));
    if (r->type == GW_CFG_WORD && !gw_cfg_word_ok(r->words, s)) {
        snprintf(why, whylen, "'%s' must be one of %s", r->path, r->words);
        return why;
    }
    if (r->type == GW_CFG_PATH && base_dir != NULL && s[0] != '\0' &&
        s[0] != '/')
        n = snprintf(buf, sizeof(buf), "%s/%s", base_dir, s);
    else
        n = snprintf(buf, sizeof(buf), "%s", s);
    if (n < 0 || (size_t)n >= r->size) {
        snprintf(why, whylen, "'%s' is too long (at most %zu bytes)", r->path,
                 r->size - 1);
        return why;
    }
    const char *bad = r->check != NULL ? r->check(buf) : NULL;
    if (bad != NULL) {
        snprintf(why, whylen, "'%s': %s", r->path, bad);
        return why;
    }
    memcpy((char *)c + r->off, buf, (size_t)n + 1);
    return NULL;
}

static const char *
gw_cfg_put_int(struct gw_config *c, const struct gw_cfg_row *r, long long v,
               char *why, size_t whylen)
{
    if (v < r->min || v > r->max) {
        snprintf(why, whylen, "'%s' must be between %ld and %ld", r->path,
                 r->min, r->max);
        return why;
    }
    *(long *)((char *)c + r->off) = (long)v;
    return NULL;
}

/* Add one entry to the allow list (the only GW_CFG_CIDRS row). */
static const char *
gw_cfg_put_cidr(struct gw_config *c, const struct gw_cfg_row *r, const char *s,
                char *why, size_t whylen)
{
    const char *bad;
    AZ(strcmp(r->path, "ussd_at.allow"));
    if (c->at_allow_n >= GW_ALLOW_MAX) {
        snprintf(why, whylen, "'%s' has more than %d entries", r->path,
                 GW_ALLOW_MAX);
        return why;
    }
    bad = gw_cidr_parse(s, &c->at_allow[c->at_allow_n]);
    if (bad != NULL) {
        snprintf(why, whylen, "'%s': '%.64s': %s", r->path, s, bad);
        return why;
    }
    c->at_allow_n++;
    return NULL;
}

/* A comma-separated list ("" is an empty list). */
static const char *
gw_cfg_put_cidrs(struct gw_config *c, const struct gw_cfg_row *r, const char *s,
                 char *why, size_t whylen)
{
    struct gw_cidr keep[GW_ALLOW_MAX];
    long nkeep = c->at_allow_n;
    char item[64];

    /* All or nothing: a bad entry leaves the list as it was. */
    memcpy(keep, c->at_allow, sizeof(keep));
    c->at_allow_n = 0;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (n >= sizeof(item)) {
            snprintf(why, whylen, "'%s': an entry is too long", r->path);
            memcpy(c->at_allow, keep, sizeof(keep));
            c->at_allow_n = nkeep;
            return why;
        }
        memcpy(item, s, n);
        item[n] = '\0';
        if (gw_cfg_put_cidr(c, r, item, why, whylen) != NULL) {
            memcpy(c->at_allow, keep, sizeof(keep));
            c->at_allow_n = nkeep;
            return why;
        }
        s += n + (comma != NULL);
    }
    return NULL;
}

/* A list of strings (or one string) into the row's field, joined with
 * commas: an entry may not hold one. */
static const char *
gw_cfg_put_list(struct gw_config *c, const struct gw_cfg_row *r,
                config_setting_t *s, char *why, size_t whylen)
{
    char buf[2 * GW_STR_MAX];
    size_t used = 0;
    int type = config_setting_type(s);

    AN(r->size <= sizeof(buf));
    if (type == CONFIG_TYPE_STRING)
        return gw_cfg_put_str(c, r, config_setting_get_string(s), NULL, why,
                              whylen);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
        snprintf(why, whylen, "'%s' must be a list of strings", r->path);
        return why;
    }
    buf[0] = '\0';
    for (int i = 0; i < config_setting_length(s); i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v;
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            snprintf(why, whylen, "'%s' must be a list of strings", r->path);
            return why;
        }
        v = config_setting_get_string(e);
        if (strchr(v, ',') != NULL || v[0] == '\0') {
            snprintf(why, whylen, "'%s': an entry is empty or has a comma",
                     r->path);
            return why;
        }
        size_t n = strlen(v) + (i > 0);
        if (used + n >= r->size) {
            snprintf(why, whylen, "'%s' is too long (at most %zu bytes)",
                     r->path, r->size - 1);
            return why;
        }
        snprintf(buf + used, sizeof(buf) - used, "%s%s", i > 0 ? "," : "", v);
        used += n;
    }
    return gw_cfg_put_str(c, r, buf, NULL, why, whylen);
}

/* Apply a value given as text (defaults, the command line). */
static const char *
gw_cfg_put_text(struct gw_config *c, const struct gw_cfg_row *r, const char *s,
                const char *base_dir, char *why, size_t whylen)
{
    char *end;
    long long v;

    switch (r->type) {
    case GW_CFG_STR:
    case GW_CFG_PATH:
    case GW_CFG_WORD:
    case GW_CFG_LIST:
        return gw_cfg_put_str(c, r, s, base_dir, why, whylen);
    case GW_CFG_INT:
        errno = 0;
        v = strtoll(s, &end, 10);
        if (s[0] == '\0' || *end != '\0' || errno != 0) {
            snprintf(why, whylen, "'%s' must be a whole number", r->path);
            return why;
        }
        return gw_cfg_put_int(c, r, v, why, whylen);
    case GW_CFG_CIDRS:
        return gw_cfg_put_cidrs(c, r, s, why, whylen);
    case GW_CFG_BOOL:
        if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 ||
            strcmp(s, "1") == 0)
            return gw_cfg_put_int(c, r, 1, why, whylen);
        if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 ||
            strcmp(s, "0") == 0)
            return gw_cfg_put_int(c, r, 0, why, whylen);
        snprintf(why, whylen, "'%s' must be true or false", r->path);
        return why;
    default:
        WRONG("config row type");
    }
}

/* Apply one setting of the file. */
static const char *
gw_cfg_put_setting(struct gw_config *c, const struct gw_cfg_row *r,
                   config_setting_t *s, char *why, size_t whylen)
{
    int type = config_setting_type(s);

    switch (r->type) {
    case GW_CFG_STR:
    case GW_CFG_PATH:
    case GW_CFG_WORD:
        if (type != CONFIG_TYPE_STRING) {
            snprintf(why, whylen, "'%s' must be a string", r->path);
            return why;
        }
        return gw_cfg_put_str(c, r, config_setting_get_string(s), c->dir, why,
                              whylen);
    case GW_CFG_INT:
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
            snprintf(why, whylen, "'%s' must be a whole number", r->path);
            return why;
        }
        return gw_cfg_put_int(c, r, config_setting_get_int64(s), why, whylen);
    case GW_CFG_BOOL:
        if (type != CONFIG_TYPE_BOOL) {
            snprintf(why, whylen, "'%s' must be true or false", r->path);
            return why;
        }
        return gw_cfg_put_int(c, r, config_setting_get_bool(s), why, whylen);
    case GW_CFG_LIST:
        return gw_cfg_put_list(c, r, s, why, whylen);
    case GW_CFG_CIDRS:
        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
            snprintf(why, whylen, "'%s' must be a list of addresses", r->path);
            return why;
        }
        c->at_allow_n = 0;
        for (int i = 0; i < config_setting_length(s); i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                snprintf(why, whylen, "'%s' must be a list of strings",
                         r->path);
                return why;
            }
            if (gw_cfg_put_cidr(c, r, config_setting_get_string(e), why,
                                whylen) != NULL)
                return why;
        }
        return NULL;
    default:
        WRONG("config row type");
    }
}

static int
gw_cfg_walk(struct gw_config *c, config_setting_t *g, const char *prefix,
            char *err, size_t errlen)
{
    int n = config_setting_length(g);

    for (int i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        int line = (int)config_setting_source_line(s);
        const struct gw_cfg_row *r;
        char path[256], why[256];

        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "",
                 name ? name : "?");
        r = gw_cfg_find(path);
        if (config_setting_type(s) == CONFIG_TYPE_GROUP) {
            if (r != NULL) {
                snprintf(err, errlen, "%s:%d: '%s' must not be a group",
                         c->path, line, path);
                return -1;
            }
            if (!gw_cfg_is_group(path)) {
                snprintf(err, errlen, "%s:%d: unknown setting '%s'", c->path,
                         line, path);
                return -1;
            }
            if (gw_cfg_walk(c, s, path, err, errlen) < 0) return -1;
            continue;
        }
        if (r == NULL) {
            if (gw_cfg_is_group(path))
                snprintf(err, errlen, "%s:%d: '%s' must be a group", c->path,
                         line, path);
            else
                snprintf(err, errlen, "%s:%d: unknown setting '%s'", c->path,
                         line, path);
            return -1;
        }
        if (gw_cfg_put_setting(c, r, s, why, sizeof(why)) != NULL) {
            snprintf(err, errlen, "%s:%d: %s", c->path, line, why);
            return -1;
        }
    }
    return 0;
}

static void
gw_cfg_defaults(struct gw_config *c)
{
    char why[256];
    for (size_t i = 0; i < GW_CFG_NROWS; i++) {
        const struct gw_cfg_row *r = &gw_cfg_rows[i];
        if (gw_cfg_put_text(c, r, r->def, c->dir, why, sizeof(why)) != NULL)
            gw_assert_fail(__func__, __FILE__, __LINE__, why);
    }
}

int
gw_config_load(const char *path, struct gw_config *c, char *err, size_t errlen)
{
    config_t cfg;
    char *slash;
    int rc;

    memset(c, 0, sizeof(*c));
    if (strlen(path) >= sizeof(c->path)) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    snprintf(c->dir, sizeof(c->dir), "%s", path);
    slash = strrchr(c->dir, '/');
    if (slash == c->dir)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    else
        snprintf(c->dir, sizeof(c->dir), ".");
    gw_cfg_defaults(c);

    /* another user who can change the file can point the daemon anywhere
     * (its key file, its database), so such a file is not read at all */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        snprintf(err, errlen,
                 "%s: mode %04o lets other users change it; refused (run: "
                 "chmod go-w %s)",
                 path, (unsigned)(st.st_mode & 07777), path);
        return -1;
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
    rc = gw_cfg_walk(c, config_root_setting(&cfg), "", err, errlen);
    config_destroy(&cfg);
    if (rc == 0) {
        /* a key whose value has a shape of its own */
        struct notices_window w;
        const char *why = notices_window_parse(c->notices_window, &w);
        if (why != NULL) {
            snprintf(err, errlen, "%s: notices.window: %s", c->path, why);
            return -1;
        }
    }
    return rc;
}

int
gw_config_set(struct gw_config *c, const char *key, const char *value,
              char *err, size_t errlen)
{
    const struct gw_cfg_row *r = gw_cfg_find(key);
    char why[256];

    if (r == NULL) {
        snprintf(err, errlen, "unknown setting '%s'", key);
        return -1;
    }
    if (gw_cfg_put_text(c, r, value, NULL, why, sizeof(why)) != NULL) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    return 0;
}

void
gw_config_fini(struct gw_config *c)
{
    (void)c; /* everything lives inside the struct */
}

void
gw_config_flow_settings(const struct gw_config *c, struct flow_settings *fs)
{
    unsigned parts = (unsigned)c->sms_parts;

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
    /* One SMS holds 160 GSM / 70 UCS-2 characters; split messages lose 7
     * septets (3 code units) per part to the concatenation header. */
    fs->page[FLOW_CH_SMS].gsm7 = parts == 1 ? 160 : 153 * parts;
    fs->page[FLOW_CH_SMS].ucs2 = parts == 1 ? 70 : 67 * parts;
    fs->clock.menu_ms = (unsigned)c->clock_menu * 1000;
    fs->clock.number_ms = (unsigned)c->clock_number * 1000;
    fs->clock.text_ms = (unsigned)c->clock_text * 1000;
    fs->clock.search_ms = (unsigned)c->clock_search * 1000;
    fs->clock.readback_ms = (unsigned)c->clock_readback * 1000;
    fs->clock.round_trip_ms = (unsigned)c->clock_round_trip_ms;
    fs->clock.budget_ms = (unsigned)c->session_budget * 1000;
}
