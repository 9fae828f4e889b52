/*
 * test_gw_config.c -- loading remigate.conf: the defaults, the shipped
 * file, errors with the right line (unknown keys, wrong types, values out
 * of range), relative paths, command-line overrides and the flow settings
 * derived from the config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/gw.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[64];

static int
setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_gw_config.XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write text to tmpdir/name; returns the path (static buffer). */
static const char *
write_conf(const char *name, const char *text)
{
    static char path[128];
    FILE *fp;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static void
check_defaults(const struct gw_config *c, const char *dir)
{
    char want[GW_STR_MAX + 16];
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->listen_address, "127.0.0.1");
    assert_int_equal(c->listen_port, 8080);
    assert_int_equal(c->workers, 0);
    assert_string_equal(c->port_file, "");
    assert_int_equal(c->header_bytes, 8192);
    assert_int_equal(c->body_bytes, 8192);
    assert_int_equal(c->request_timeout_ms, 2000);
    assert_int_equal(c->max_connections, 4096);
    assert_string_equal(c->redis_host, "127.0.0.1");
    assert_int_equal(c->redis_port, 6379);
    assert_string_equal(c->redis_prefix, "remigate:");
    assert_int_equal(c->redis_timeout_ms, 500);
    assert_int_equal(c->redis_max_pending, 10000);
    assert_int_equal(c->ussd_idle, 180);
    assert_int_equal(c->resume_window, 900);
    assert_int_equal(c->sms_ttl, 86400);
    assert_int_equal(c->dedup_window, 30);
    assert_int_equal(c->cache_kb, 2048);
    assert_int_equal(c->con_stats_cache_ms, 5000);
    assert_int_equal(c->con_stats_cache_kb, 4096);
    assert_int_equal(c->kannel_enabled, 1);
    assert_string_equal(c->kannel_secret, "");
    assert_string_equal(c->redis_password, "");
    assert_string_equal(c->redis_password_file, "");
    assert_string_equal(c->redis_sentinels, "");
    assert_string_equal(c->redis_master_name, "remigate");
    assert_string_equal(c->redis_cluster, "");
    assert_int_equal(c->redis_wait_ms, 0);
    assert_string_equal(c->sendsms_url,
                        "http://127.0.0.1:13013/cgi-bin/sendsms");
    assert_string_equal(c->ussd_smsc, "ussd");
    assert_string_equal(c->sms_smsc, "sms");
    assert_string_equal(c->short_code, "16247");
    assert_string_equal(c->dlr_url, "");
    assert_string_equal(c->at_key, "");
    assert_int_equal(c->at_allow_n, 2);
    assert_true(gw_cidr_match(c->at_allow, 2, "127.0.0.1"));
    assert_true(gw_cidr_match(c->at_allow, 2, "::1"));
    assert_false(gw_cidr_match(c->at_allow, 2, "10.0.0.1"));
    assert_string_equal(c->pg_dsn, "");
    assert_int_equal(c->pg_pool, 4);
    assert_int_equal(c->pg_timeout_ms, 2000);
    assert_string_equal(c->key_file, "");
    snprintf(want, sizeof(want), "%s/flows", dir);
    assert_string_equal(c->flows_dir, want);
    snprintf(want, sizeof(want), "%s/lists", dir);
    assert_string_equal(c->lists_dir, want);
    snprintf(want, sizeof(want), "%s/messages.conf", dir);
    assert_string_equal(c->messages_file, want);
    assert_string_equal(c->entry_ussd, "main");
    assert_string_equal(c->entry_sms, "main");
    assert_string_equal(c->key_back, "0");
    assert_string_equal(c->key_home, "00");
    assert_string_equal(c->key_more, "98");
    assert_int_equal(c->max_tries, 3);
    assert_int_equal(c->utc_offset, 21600);
    assert_int_equal(c->ussd_gsm7, 182);
    assert_int_equal(c->ussd_ucs2, 80);
    assert_int_equal(c->sms_parts, 3);
}

static void
t_defaults(void **state)
{
    struct gw_config c;
    char err[512];
    (void)state;
    const char *p = write_conf("empty.conf", "# nothing\n");
    assert_int_equal(gw_config_load(p, &c, err, sizeof(err)), 0);
    check_defaults(&c, tmpdir);
    gw_config_fini(&c);
}

/* The shipped file states every default, and states them right. */
static void
t_shipped(void **state)
{
    struct gw_config c;
    char err[512];
    const char *p = "config/remigate.conf";
    (void)state;
    if (access(p, R_OK) != 0) p = "../../config/remigate.conf";
    if (access(p, R_OK) != 0) skip();
    if (gw_config_load(p, &c, err, sizeof(err)) != 0) fail_msg("%s", err);
    char dir[GW_STR_MAX];
    snprintf(dir, sizeof(dir), "%s", p);
    *strrchr(dir, '/') = '\0';
    check_defaults(&c, dir);
}

static void
t_errors(void **state)
{
    static const struct {
        const char *text;
        const char *want; /* expected error, after "path:" */
    } rows[] = {
        {"log = {\n  level = \"info\";\n  levle = \"debug\";\n};\n",
         "3: unknown setting 'log.levle'"},
        {"log = { level = \"info\"; };\n\nfoo = { a = 1; };\n",
         "3: unknown setting 'foo'"},
        {"listen = {\n  port = 70000;\n};\n",
         "2: 'listen.port' must be between 0 and 65535"},
        {"listen = { port = -1; };\n",
         "1: 'listen.port' must be between 0 and 65535"},
        {"listen = { workers = 65; };\n",
         "1: 'listen.workers' must be between 0 and 64"},
        {"limits = { request_timeout_ms = 99; };\n",
         "1: 'limits.request_timeout_ms' must be between 100 and 60000"},
        {"flows = {\n pages = {\n  ussd = {\n   ucs2 = 500;\n  };\n };\n};\n",
         "4: 'flows.pages.ussd.ucs2' must be between 20 and 200"},
        {"flows = { pages = { sms = { parts = 0; }; }; };\n",
         "1: 'flows.pages.sms.parts' must be between 1 and 10"},
        {"listen = { port = \"8080\"; };\n",
         "1: 'listen.port' must be a whole number"},
        {"listen = { port = 80.5; };\n",
         "1: 'listen.port' must be a whole number"},
        {"redis = { host = 127; };\n", "1: 'redis.host' must be a string"},
        {"log = { level = \"verbose\"; };\n",
         "1: 'log.level' must be one of debug|info|warn|error"},
        {"log = 5;\n", "1: 'log' must be a group"},
        {"listen = { port = { a = 1; }; };\n",
         "1: 'listen.port' must not be a group"},
        {"ussd_at = {\n allow = [ \"127.0.0.1\", \"300.1.1.1\" ];\n};\n",
         "2: 'ussd_at.allow': '300.1.1.1': not an IP address"},
        {"ussd_at = { allow = \"127.0.0.1\"; };\n",
         "1: 'ussd_at.allow' must be a list of addresses"},
        {"ussd_at = { allow = ( 1 ); };\n",
         "1: 'ussd_at.allow' must be a list of strings"},
        {"kannel = { short_code = "
         "\"012345678901234567890123456789012\"; };\n",
         "1: 'kannel.short_code' is too long (at most 31 bytes)"},
        {"flows = { keys = { back = \"12345678\"; }; };\n",
         "1: 'flows.keys.back' is too long (at most 7 bytes)"},
        {"listen = {\n  port = ;\n};\n", "2: syntax error"},
        {"listen = { port = 1; port = 2; };\n", "1: duplicate setting name"},
        {"redis = {\n sentinels = [ \"10.0.0.1:26379\", \"10.0.0.2\" ];\n};\n",
         "2: 'redis.sentinels': an entry is not host:port"},
        {"redis = { sentinels = [ \"a:1\", \"b:0\" ]; };\n",
         "1: 'redis.sentinels': a port is not in 1..65535"},
        {"redis = { sentinels = [ \"::1:26379\" ]; };\n",
         "1: 'redis.sentinels': an IPv6 address must be written "
         "[address]:port"},
        {"redis = { sentinels = [ \"a:1,b:2\" ]; };\n",
         "1: 'redis.sentinels': an entry is empty or has a comma"},
        {"redis = { sentinels = ( 26379 ); };\n",
         "1: 'redis.sentinels' must be a list of strings"},
        {"redis = { sentinels = 26379; };\n",
         "1: 'redis.sentinels' must be a list of strings"},
        {"redis = { cluster = [ \"10.0.0.1:7000\", \"10.0.0.2\" ]; };\n",
         "1: 'redis.cluster': an entry is not host:port"},
        {"redis = { cluster = [ \"a:70000\" ]; };\n",
         "1: 'redis.cluster': a port is not in 1..65535"},
    };
    struct gw_config c;
    char err[512], want[512];
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        const char *p = write_conf("bad.conf", rows[i].text);
        err[0] = '\0';
        if (gw_config_load(p, &c, err, sizeof(err)) == 0)
            fail_msg("row %zu loaded: %s", i, rows[i].text);
        snprintf(want, sizeof(want), "%s:%s", p, rows[i].want);
        if (strcmp(err, want) != 0)
            fail_msg("row %zu:\n got  '%s'\n want '%s'", i, err, want);
    }
    assert_int_equal(
        gw_config_load("/nonexistent/remigate.conf", &c, err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/remigate.conf: cannot read the "
                             "file");
}

static void
t_values(void **state)
{
    struct gw_config c;
    char err[512], want[GW_STR_MAX + 32];
    (void)state;
    const char *p = write_conf(
        "ok.conf",
        "log = { level = \"debug\"; };\n"
        "listen = { port = 0; workers = 1; port_file = \"run/port\"; };\n"
        "ussd_at = { allow = [ \"10.0.0.0/8\" ]; };\n"
        "crypto = { key_file = \"/etc/remigate/key\"; };\n"
        "flows = { dir = \"my flows\"; pages = { sms = { parts = 1; }; }; "
        "};\n"
        "redis = { port = 6380L; };\n");
    if (gw_config_load(p, &c, err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.listen_port, 0);
    assert_int_equal(c.workers, 1);
    assert_int_equal(c.redis_port, 6380);
    snprintf(want, sizeof(want), "%s/run/port", tmpdir);
    assert_string_equal(c.port_file, want);
    snprintf(want, sizeof(want), "%s/my flows", tmpdir);
    assert_string_equal(c.flows_dir, want);
    assert_string_equal(c.key_file, "/etc/remigate/key");
    assert_int_equal(c.at_allow_n, 1);
    assert_true(gw_cidr_match(c.at_allow, 1, "10.9.8.7"));
    assert_false(gw_cidr_match(c.at_allow, 1, "127.0.0.1"));

    struct flow_settings fs;
    gw_config_flow_settings(&c, &fs);
    assert_ptr_equal(fs.flows_dir, c.flows_dir);
    assert_int_equal(fs.page[FLOW_CH_SMS].gsm7, 160);
    assert_int_equal(fs.page[FLOW_CH_SMS].ucs2, 70);
    assert_int_equal(fs.page[FLOW_CH_USSD].gsm7, 182);
    assert_int_equal(fs.page[FLOW_CH_USSD].ucs2, 80);
    assert_string_equal(fs.key_home, "00");
    assert_int_equal(fs.max_tries, 3);
    assert_int_equal(fs.utc_offset, 21600);

    assert_int_equal(
        gw_config_set(&c, "flows.pages.sms.parts", "3", err, sizeof(err)), 0);
    gw_config_flow_settings(&c, &fs);
    assert_int_equal(fs.page[FLOW_CH_SMS].gsm7, 459);
    assert_int_equal(fs.page[FLOW_CH_SMS].ucs2, 201);

    /* Sentinels: a list, or one comma-separated string (as --set). */
    p = write_conf("sentinels.conf",
                   "redis = { sentinels = [ \"10.0.0.1:26379\", "
                   "\"[fd00::2]:26380\", \"s3.example:26379\" ]; "
                   "master_name = \"mymaster\"; };\n");
    if (gw_config_load(p, &c, err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_string_equal(c.redis_sentinels,
                        "10.0.0.1:26379,[fd00::2]:26380,s3.example:26379");
    assert_string_equal(c.redis_master_name, "mymaster");
    assert_int_equal(
        gw_config_set(&c, "redis.sentinels", "a:1, b:2", err, sizeof(err)), 0);
    assert_string_equal(c.redis_sentinels, "a:1, b:2");
    assert_int_equal(
        gw_config_set(&c, "redis.sentinels", "a:1,", err, sizeof(err)), -1);
    assert_string_equal(err, "'redis.sentinels': an entry is empty");
    assert_string_equal(c.redis_sentinels, "a:1, b:2"); /* unchanged */

    /* Cluster seeds: the same shapes. */
    p = write_conf("cluster.conf", "redis = { cluster = [ \"10.0.0.1:7000\", "
                                   "\"[fd00::2]:7001\" ]; };\n");
    if (gw_config_load(p, &c, err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_string_equal(c.redis_cluster, "10.0.0.1:7000,[fd00::2]:7001");
    assert_string_equal(c.redis_sentinels, "");
    assert_int_equal(
        gw_config_set(&c, "redis.cluster", "a:1", err, sizeof(err)), 0);
    assert_string_equal(c.redis_cluster, "a:1");

    /* An empty list allows nobody (the handler then decides). */
    p = write_conf("empty-allow.conf", "ussd_at = { allow = [ ]; };\n");
    assert_int_equal(gw_config_load(p, &c, err, sizeof(err)), 0);
    assert_int_equal(c.at_allow_n, 0);
}

static void
t_set(void **state)
{
    static const struct {
        const char *key, *value;
        int rc;
        const char *err;
    } rows[] = {
        {"listen.port", "0", 0, NULL},
        {"listen.port", "65535", 0, NULL},
        {"listen.port", "65536", -1,
         "'listen.port' must be between 0 and 65535"},
        {"listen.port", "", -1, "'listen.port' must be a whole number"},
        {"listen.port", "80x", -1, "'listen.port' must be a whole number"},
        {"listen.port", "99999999999999999999", -1,
         "'listen.port' must be a whole number"},
        {"redis.port", "6390", 0, NULL},
        {"log.level", "warn", 0, NULL},
        {"log.level", "loud", -1,
         "'log.level' must be one of debug|info|warn|error"},
        {"listen.port_file", "var/port", 0, NULL},
        {"ussd_at.allow", "10.0.0.1,::1", 0, NULL},
        {"ussd_at.allow", "10.0.0.1,nope", -1,
         "'ussd_at.allow': 'nope': not an IP address"},
        {"listen.prot", "1", -1, "unknown setting 'listen.prot'"},
        {"listen", "1", -1, "unknown setting 'listen'"},
    };
    struct gw_config c;
    char err[512];
    (void)state;
    const char *p = write_conf("set.conf", "");
    assert_int_equal(gw_config_load(p, &c, err, sizeof(err)), 0);
    for (size_t i = 0; i < NROWS(rows); i++) {
        err[0] = '\0';
        int rc =
            gw_config_set(&c, rows[i].key, rows[i].value, err, sizeof(err));
        if (rc != rows[i].rc)
            fail_msg("%s=%s: rc %d (%s)", rows[i].key, rows[i].value, rc, err);
        if (rows[i].err != NULL) assert_string_equal(err, rows[i].err);
    }
    assert_int_equal(c.listen_port, 65535);
    assert_int_equal(c.redis_port, 6390);
    assert_string_equal(c.log_level, "warn");
    /* relative to the current directory, not the config's */
    assert_string_equal(c.port_file, "var/port");
    assert_int_equal(c.at_allow_n, 2);
}

/* kannel.enabled is a boolean, in the file and on the command line. */
static void
t_bool(void **state)
{
    struct gw_config c;
    char err[512];
    (void)state;
    const char *p =
        write_conf("b.conf", "kannel = {\n  enabled = false;\n};\n");
    assert_int_equal(gw_config_load(p, &c, err, sizeof(err)), 0);
    assert_int_equal(c.kannel_enabled, 0);
    assert_int_equal(
        gw_config_set(&c, "kannel.enabled", "true", err, sizeof(err)), 0);
    assert_int_equal(c.kannel_enabled, 1);
    assert_int_equal(
        gw_config_set(&c, "kannel.enabled", "off", err, sizeof(err)), -1);
    assert_string_equal(err, "'kannel.enabled' must be true or false");
    p = write_conf("b2.conf", "kannel = {\n  enabled = 0;\n};\n");
    assert_int_equal(gw_config_load(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "b2.conf:2: 'kannel.enabled' must be true or "
                                "false"));
}

/* A config file other users may write is refused unread, with its path,
 * its mode and the fix. */
static void
t_file_mode(void **state)
{
    struct gw_config c;
    char err[512], want[512];
    (void)state;
    const char *p = write_conf("gw.conf", "");
    assert_int_equal(chmod(p, 0664), 0);
    assert_int_equal(gw_config_load(p, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want),
             "%s: mode 0664 lets other users change it; refused (run: chmod "
             "go-w %s)",
             p, p);
    assert_string_equal(err, want);
    assert_int_equal(chmod(p, 0606), 0);
    assert_int_equal(gw_config_load(p, &c, err, sizeof(err)), -1);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(gw_config_load(p, &c, err, sizeof(err)), 0);
}

/* What the daemon refuses before it starts (gw_config_harden()). */
static void
t_harden(void **state)
{
    struct gw_config c;
    char err[512], path[128];
    (void)state;
    const char *p = write_conf("h.conf", "");
    assert_int_equal(gw_config_load(p, &c, err, sizeof(err)), 0);
    /* an empty kannel.secret: refused, naming the key and both fixes */
    assert_int_equal(gw_config_harden(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "kannel.secret is empty"));
    assert_non_null(strstr(err, "kannel.enabled = false"));
    assert_int_equal(
        gw_config_set(&c, "kannel.enabled", "false", err, sizeof(err)), 0);
    assert_int_equal(gw_config_harden(&c, err, sizeof(err)), 0);
    assert_int_equal(
        gw_config_set(&c, "kannel.enabled", "true", err, sizeof(err)), 0);
    assert_int_equal(gw_config_set(&c, "kannel.secret", "s3", err, sizeof(err)),
                     0);
    assert_int_equal(gw_config_harden(&c, err, sizeof(err)), 0);

    /* the password file: its first line; 0640 is fine, 0620 is not */
    snprintf(path, sizeof(path), "%s",
             write_conf("redis.pw", "pa ss\nsecond line\n"));
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(
        gw_config_set(&c, "redis.password_file", path, err, sizeof(err)), 0);
    assert_int_equal(gw_config_harden(&c, err, sizeof(err)), 0);
    assert_string_equal(c.redis_password, "pa ss");
    /* ... not with redis.password as well */
    assert_int_equal(gw_config_harden(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "both redis.password and "
                                "redis.password_file"));
    c.redis_password[0] = '\0';
    assert_int_equal(chmod(path, 0620), 0);
    assert_int_equal(gw_config_harden(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "redis.password_file: "));
    assert_non_null(strstr(err, "mode 0620"));
    assert_non_null(strstr(err, "chmod 0600"));
    assert_string_equal(c.redis_password, "");
    write_conf("redis.pw", "\n");
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(gw_config_harden(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "first line"));
    c.redis_password_file[0] = '\0';

    /* the key file: refused when others may write it, a warning when
     * they may read it */
    snprintf(path, sizeof(path), "%s", write_conf("k", "x"));
    assert_int_equal(
        gw_config_set(&c, "crypto.key_file", path, err, sizeof(err)), 0);
    assert_int_equal(chmod(path, 0666), 0);
    assert_int_equal(gw_config_harden(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "crypto.key_file: "));
    assert_non_null(strstr(err, "mode 0666"));
    assert_int_equal(gw_secret_file_check("k", path, err, sizeof(err)), -1);
    assert_int_equal(chmod(path, 0604), 0);
    assert_int_equal(gw_secret_file_check("k", path, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "every user may read it"));
    assert_int_equal(gw_config_harden(&c, err, sizeof(err)), 0);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(gw_secret_file_check("k", path, err, sizeof(err)), 0);
    assert_int_equal(gw_secret_file_check("k", tmpdir, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_defaults),  cmocka_unit_test(t_shipped),
        cmocka_unit_test(t_errors),    cmocka_unit_test(t_values),
        cmocka_unit_test(t_set),       cmocka_unit_test(t_bool),
        cmocka_unit_test(t_file_mode), cmocka_unit_test(t_harden),
    };
    return cmocka_run_group_tests_name("gw_config", tests, setup, teardown);
}
