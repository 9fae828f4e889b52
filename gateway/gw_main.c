/*
 * gw_main.c -- `remigate`: one binary, several commands.  The daemon itself
 * arrives with the gateway; the flow tools work without Redis or PostgreSQL.
 */
#include <stdio.h>
#include <string.h>

#include "gateway/gw.h"

static void
gw_usage(FILE *fp)
{
    fprintf(fp,
            "usage: remigate -c FILE                 run the daemon\n"
            "       remigate check-flows -c FILE     lint every flow\n"
            "       remigate sim -c FILE [--flow ID] [--lang en|bn] "
            "[--channel ussd|sms]\n"
            "       remigate migrate -c FILE         apply database "
            "migrations\n"
            "       remigate --version\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        gw_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0) {
        printf("remigate %s\n", GW_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        gw_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "sim") == 0)
        return gw_sim_main(argc - 1, argv + 1);
    if (strcmp(cmd, "check-flows") == 0)
        return gw_check_flows_main(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0 || strcmp(cmd, "officer") == 0 ||
        strcmp(cmd, "-c") == 0) {
        fprintf(stderr, "remigate: %s: not available in this build yet\n",
                strcmp(cmd, "-c") == 0 ? "daemon" : cmd);
        return 2;
    }
    fprintf(stderr, "remigate: unknown command '%s'\n", cmd);
    gw_usage(stderr);
    return 2;
}
