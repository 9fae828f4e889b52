/*
 * gw_seal.c -- `remigate seal` and `remigate open`: the crypto key in an
 * operator's hands (and the tests').
 *
 * With a key configured the drainer takes only sealed records from the
 * Redis queue, so a record an operator fixed (docs/operators.md) is sealed
 * with `remigate seal` before it is queued again; `remigate open` reads a
 * sealed queue entry, a sealed session value, or an encrypted column
 * (nid_enc, passport_enc, personal_enc as psql prints a bytea: \x...).
 * Both read one value a line on stdin and write one a line on stdout; a
 * line that does not seal or open is reported on stderr with its number,
 * and the exit status is then 1.
 */
#include <event2/event.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"
#include "store/store.h"

#define GW_SEAL_LINE_MAX (1 << 20)

struct gw_seal_cli {
    struct gw_config cfg;
    struct event_base *base;
    struct store *store;
};

static int
gw_seal_cli_init(struct gw_seal_cli *c, const char *path, const char *cmd)
{
    char err[512];
    memset(c, 0, sizeof(*c));
    if (gw_config_load(path, &c->cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (c->cfg.key_file[0] == '\0') {
        fprintf(stderr, "remigate: %s: crypto.key_file is empty in %s\n", cmd,
                path);
        gw_config_fini(&c->cfg);
        return -1;
    }
    /* as the daemon does: refused when others may write it, a warning
     * when they may read it */
    int mode = gw_secret_file_check("crypto.key_file", c->cfg.key_file, err,
                                    sizeof(err));
    if (mode != 0) fprintf(stderr, "remigate: %s: %s\n", cmd, err);
    if (mode < 0) {
        gw_config_fini(&c->cfg);
        return -1;
    }
    struct store_config sc = {.dsn = "", .key_file = c->cfg.key_file};
    if ((c->base = event_base_new()) == NULL ||
        (c->store = store_new(&sc, c->base, err, sizeof(err))) == NULL) {
        fprintf(stderr, "remigate: %s: %s\n", cmd,
                c->base ? err : "no event base");
        if (c->base) event_base_free(c->base);
        gw_config_fini(&c->cfg);
        return -1;
    }
    return 0;
}

static void
gw_seal_cli_fini(struct gw_seal_cli *c)
{
    store_free(c->store);
    event_base_free(c->base);
    gw_config_fini(&c->cfg);
}

/* One line of stdin into *line (without its newline); its length, or -1
 * at the end. */
static ssize_t
gw_seal_getline(char **line, size_t *cap)
{
    ssize_t n = getline(line, cap, stdin);
    if (n < 0) return -1;
    if (n > 0 && (*line)[n - 1] == '\n') (*line)[--n] = '\0';
    if (n > 0 && (*line)[n - 1] == '\r') (*line)[--n] = '\0';
    return n;
}

/* `remigate seal -c FILE`: each line a record (flow_record_json()), out
 * the sealed queue entry. */
static int
gw_seal_run(struct gw_seal_cli *c)
{
    char *line = NULL, *out = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    unsigned no = 0;
    while ((n = gw_seal_getline(&line, &cap)) >= 0) {
        no++;
        size_t ocap = (size_t)n * 4 / 3 + 128;
        char *o = realloc(out, ocap);
        if (o == NULL || n > GW_SEAL_LINE_MAX) {
            fprintf(stderr, "remigate: seal: line %u: too long\n", no);
            rc = 1;
            continue;
        }
        out = o;
        int w = store_record_seal(c->store, line, (size_t)n, out, ocap);
        if (w < 0) {
            fprintf(stderr, "remigate: seal: line %u: %s\n", no,
                    store_strerror(w));
            rc = 1;
            continue;
        }
        printf("%s\n", out);
    }
    if (line) sodium_memzero(line, cap);
    free(line);
    free(out);
    return rc;
}

/* `remigate open -c FILE [--msisdn N] [--session KEY]`: each line a
 * sealed queue entry (rq1:), a sealed session value (ss1:, bound to the
 * session's key KEY, prefix included), or an encrypted column of the
 * returnee msisdn N (\x and hex, as psql prints a bytea). */
static int
gw_open_run(struct gw_seal_cli *c, const char *msisdn, const char *session)
{
    char *line = NULL, *out = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    unsigned no = 0;
    while ((n = gw_seal_getline(&line, &cap)) >= 0) {
        no++;
        size_t ocap = (size_t)n + 64;
        char *o = realloc(out, ocap);
        if (o == NULL || n > GW_SEAL_LINE_MAX) {
            fprintf(stderr, "remigate: open: line %u: too long\n", no);
            rc = 1;
            continue;
        }
        out = o;
        int w;
        const char *why = NULL;
        if (n >= 4 && memcmp(line, "rq1:", 4) == 0) {
            w = store_record_open(c->store, line, (size_t)n, out, ocap);
        } else if (n >= 4 && memcmp(line, "ss1:", 4) == 0) {
            w = session ? store_sess_open(c->store, session, line, (size_t)n,
                                          out, ocap)
                        : STORE_EINVAL;
            if (session == NULL) why = "a session value needs --session KEY";
        } else if (n >= 2 && line[0] == '\\' && line[1] == 'x') {
            unsigned char *bin = malloc((size_t)n / 2 + 1);
            size_t blen = 0;
            w = STORE_EINVAL;
            if (msisdn == NULL)
                why = "an encrypted column needs --msisdn N";
            else if (bin != NULL &&
                     sodium_hex2bin(bin, (size_t)n / 2 + 1, line + 2,
                                    (size_t)n - 2, NULL, &blen, NULL) == 0)
                w = store_id_decrypt(c->store, bin, blen, msisdn, out, ocap);
            free(bin);
        } else {
            w = STORE_EINVAL;
            why = "neither rq1:, ss1: nor \\x...";
        }
        if (w < 0) {
            fprintf(stderr, "remigate: open: line %u: %s\n", no,
                    why ? why : store_strerror(w));
            rc = 1;
            continue;
        }
        printf("%s\n", out);
        sodium_memzero(out, ocap);
    }
    if (line) sodium_memzero(line, cap);
    free(line);
    free(out);
    return rc;
}

int
gw_seal_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"msisdn", required_argument, NULL, 'm'},
        {"session", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0], *path = NULL, *msisdn = NULL, *session = NULL;
    int open = strcmp(cmd, "open") == 0, o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            path = optarg;
            break;
        case 'm':
            msisdn = optarg;
            break;
        case 's':
            session = optarg;
            break;
        default:
            path = NULL;
            optind = argc + 1;
            break;
        }
    }
    if (path == NULL || optind != argc || (!open && (msisdn || session))) {
        fprintf(stderr, open ? "usage: remigate open -c FILE [--msisdn N] "
                               "[--session KEY] <values\n"
                             : "usage: remigate seal -c FILE <records\n");
        return 2;
    }
    struct gw_seal_cli c;
    if (gw_seal_cli_init(&c, path, cmd) != 0) return 1;
    int rc = open ? gw_open_run(&c, msisdn, session) : gw_seal_run(&c);
    gw_seal_cli_fini(&c);
    return rc;
}
