/*
 * gw.h -- the gateway module: the daemon's main, its configuration, and the
 * flow author's tools (sim, check-flows).
 */
#ifndef GW_H
#define GW_H

#include <stddef.h>

#include "flows/flow.h"

#define GW_VERSION "0.1.0"
#define GW_STR_MAX 256

/* Everything in remigate.conf.  Filled by gw_config_load() from a table of
 * (path, type, range, default, offset); strings are owned by the struct. */
struct gw_config {
    char path[GW_STR_MAX];          /* the file itself */
    char dir[GW_STR_MAX];           /* its directory: base of relative paths */
    char log_level[16];
    char listen_address[64];
    long listen_port, workers;
    char port_file[GW_STR_MAX];
    long header_bytes, body_bytes, request_timeout_ms, max_connections;
    char redis_host[128];
    long redis_port;
    char redis_prefix[64];
    long redis_timeout_ms, redis_max_pending;
    long ussd_idle, resume_window, sms_ttl, dedup_window;
    char kannel_secret[128], sendsms_url[GW_STR_MAX];
    char kannel_username[64], kannel_password[128];
    char ussd_smsc[32], sms_smsc[32], short_code[32], dlr_url[GW_STR_MAX];
    char at_key[128];
    char pg_dsn[GW_STR_MAX];
    long pg_pool, pg_timeout_ms;
    char key_file[GW_STR_MAX];
    char flows_dir[GW_STR_MAX], lists_dir[GW_STR_MAX];
    char messages_file[GW_STR_MAX];
    char entry_ussd[32], entry_sms[32];
    char key_back[8], key_home[8], key_more[8];
    long max_tries, utc_offset;
    long ussd_gsm7, ussd_ucs2, sms_parts;
};

/* Load path into c (defaults for what the file leaves out).  Unknown keys,
 * wrong types and values out of range are errors: returns -1 with
 * "file:line: message" in err.  Relative paths become relative to the
 * directory of the file. */
int gw_config_load(const char *path, struct gw_config *c, char *err,
                   size_t errlen);
void gw_config_fini(struct gw_config *c);

/* The flow settings of c; fs borrows c's strings. */
void gw_config_flow_settings(const struct gw_config *c,
                             struct flow_settings *fs);

/* Subcommands (gw_sim.c). */
int gw_check_flows_main(int argc, char **argv);
int gw_sim_main(int argc, char **argv);

#endif
