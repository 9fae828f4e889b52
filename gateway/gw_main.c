/*
 * gw_main.c -- `remigate`: one binary, several commands.
 *
 *   remigate -c FILE [options]     the daemon
 *   remigate check-flows -c FILE   lint the flows (gw_sim.c)
 *   remigate sim -c FILE ...       the offline flow simulator (gw_sim.c)
 *   remigate migrate -c FILE       apply the database migrations
 *   remigate keygen FILE           a new key file for ID numbers
 *   remigate seal|open -c FILE     seal a queue record, open a sealed
 *                                  value or an encrypted column (gw_seal.c)
 *   remigate officer ...           officer accounts (console/con_cli.c)
 *
 * Daemon options override keys of the config file after it is loaded, with
 * the same checks (gw_config_set()); --set reaches any key.  A relative
 * path given on the command line is relative to the current directory.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/console.h"
#include "gateway/gw.h"
#include "store/store.h"

static void
gw_usage(FILE *fp)
{
    fprintf(fp, "usage: remigate -c FILE [options]          run the daemon\n"
                "       remigate check-flows -c FILE [--strict]  lint and time "
                "every flow\n"
                "       remigate sim -c FILE [--flow ID] [--lang en|bn] "
                "[--channel ussd|sms]\n"
                "       remigate migrate -c FILE            apply database "
                "migrations\n"
                "       remigate keygen FILE                write a new "
                "32-byte key file (mode 0600)\n"
                "       remigate seal -c FILE               seal records "
                "(stdin) for the queue\n"
                "       remigate open -c FILE [--msisdn N] [--session KEY]\n"
                "                                           open sealed "
                "values or encrypted columns\n"
                "       remigate officer add --username U --role R "
                "[--district CODE]... -c FILE\n"
                "       remigate officer passwd|disable|enable --username U "
                "-c FILE\n"
                "       remigate officer list -c FILE\n"
                "       remigate api-routes                 list the /api/ "
                "calls and who may make them\n"
                "       remigate --version | --help\n"
                "\n"
                "daemon options (each overrides the config file):\n"
                "  -c, --config FILE      the config file (required)\n"
                "      --port N           listen.port (0: pick a free port)\n"
                "      --port-file FILE   listen.port_file: write the port "
                "there\n"
                "      --workers N        listen.workers (0: one per core)\n"
                "      --redis-port N     redis.port\n"
                "      --log-level LEVEL  log.level: debug|info|warn|error\n"
                "      --set KEY=VALUE    any key, e.g. --set "
                "postgres.dsn=...\n"
                "  -t, --check-config     load the config, report, and exit\n");
}

#define GW_OVERRIDES_MAX 32

static int
gw_daemon_main(int argc, char **argv)
{
    enum {
        O_PORT = 256,
        O_PORT_FILE,
        O_WORKERS,
        O_REDIS_PORT,
        O_LOG_LEVEL,
        O_SET
    };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"port", required_argument, NULL, O_PORT},
        {"port-file", required_argument, NULL, O_PORT_FILE},
        {"workers", required_argument, NULL, O_WORKERS},
        {"redis-port", required_argument, NULL, O_REDIS_PORT},
        {"log-level", required_argument, NULL, O_LOG_LEVEL},
        {"set", required_argument, NULL, O_SET},
        {"check-config", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct {
        const char *key;
        char *value;
    } ov[GW_OVERRIDES_MAX];
    size_t nov = 0;
    const char *path = NULL;
    struct gw_config cfg;
    char err[512];
    int check = 0, o, rc;

    opterr = 1;
    while ((o = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
        const char *key = NULL;
        char *value = optarg;
        switch (o) {
        case 'c':
            path = optarg;
            continue;
        case 't':
            check = 1;
            continue;
        case 'h':
            gw_usage(stdout);
            return 0;
        case 'V':
            printf("remigate %s\n", GW_VERSION);
            return 0;
        case O_PORT:
            key = "listen.port";
            break;
        case O_PORT_FILE:
            key = "listen.port_file";
            break;
        case O_WORKERS:
            key = "listen.workers";
            break;
        case O_REDIS_PORT:
            key = "redis.port";
            break;
        case O_LOG_LEVEL:
            key = "log.level";
            break;
        case O_SET: {
            char *eq = strchr(optarg, '=');
            if (eq == NULL) {
                fprintf(stderr, "remigate: --set wants KEY=VALUE\n");
                return 2;
            }
            *eq = '\0';
            key = optarg;
            value = eq + 1;
            break;
        }
        default:
            gw_usage(stderr);
            return 2;
        }
        if (nov == GW_OVERRIDES_MAX) {
            fprintf(stderr, "remigate: too many options\n");
            return 2;
        }
        ov[nov].key = key;
        ov[nov].value = value;
        nov++;
    }
    if (optind < argc) {
        fprintf(stderr, "remigate: unexpected argument '%s'\n", argv[optind]);
        gw_usage(stderr);
        return 2;
    }
    if (path == NULL) {
        fprintf(stderr, "remigate: -c FILE is required\n");
        gw_usage(stderr);
        return 2;
    }
    if (gw_config_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (size_t i = 0; i < nov; i++)
        if (gw_config_set(&cfg, ov[i].key, ov[i].value, err, sizeof(err))) {
            fprintf(stderr, "remigate: command line: %s\n", err);
            return 1;
        }
    gw_log_set_level(gw_log_level_parse(cfg.log_level));
    if (gw_config_harden(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "remigate: %s\n", err);
        return 1;
    }
    if (check) {
        printf("%s: ok\n", path);
        return 0;
    }
    rc = gw_daemon_run(&cfg);
    gw_config_fini(&cfg);
    return rc;
}

/* remigate migrate -c FILE: postgres.dsn of FILE, migrations from
 * store/migrations (relative to the current directory). */
static int
gw_migrate_main(int argc, char **argv)
{
    struct gw_config cfg;
    char err[512];
    if (argc != 3 || strcmp(argv[1], "-c") != 0) {
        fprintf(stderr, "usage: remigate migrate -c FILE\n");
        return 2;
    }
    if (gw_config_load(argv[2], &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc;
    if (cfg.pg_dsn[0] == '\0') {
        fprintf(stderr, "remigate: migrate: postgres.dsn is empty in %s\n",
                argv[2]);
        rc = 1;
    } else {
        rc = store_migrate_main(cfg.pg_dsn, NULL);
    }
    gw_config_fini(&cfg);
    return rc;
}

static int
gw_keygen_main(int argc, char **argv)
{
    char err[512];
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: remigate keygen FILE\n");
        return 2;
    }
    if (store_keygen(argv[1], err, sizeof(err)) != 0) {
        fprintf(stderr, "remigate: keygen: %s\n", err);
        return 1;
    }
    printf("remigate: keygen: wrote %s\n", argv[1]);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        gw_usage(stderr);
        return 2;
    }
    cmd = argv[1];
    /* every command: the daemon and its workers hold the key and callers'
     * answers, migrate and keygen the key or a database password */
    if (gw_harden_process() != 0) {
        fprintf(stderr, "remigate: cannot turn core dumps off: %s\n",
                strerror(errno));
        return 1;
    }
    if (strcmp(cmd, "sim") == 0) return gw_sim_main(argc - 1, argv + 1);
    if (strcmp(cmd, "check-flows") == 0)
        return gw_check_flows_main(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0) return gw_migrate_main(argc - 1, argv + 1);
    if (strcmp(cmd, "keygen") == 0) return gw_keygen_main(argc - 1, argv + 1);
    if (strcmp(cmd, "seal") == 0 || strcmp(cmd, "open") == 0)
        return gw_seal_main(argc - 1, argv + 1);
    if (strcmp(cmd, "officer") == 0)
        return console_officer_main(argc - 1, argv + 1);
    if (strcmp(cmd, "api-routes") == 0)
        return console_routes_main(argc - 1, argv + 1);
    if (cmd[0] == '-') return gw_daemon_main(argc, argv);
    fprintf(stderr, "remigate: unknown command '%s'\n", cmd);
    gw_usage(stderr);
    return 2;
}
