/*
 * gw_sim.c -- `remigate check-flows` and `remigate sim`: the flow author's
 * tools.  Neither touches Redis, PostgreSQL or the network.
 *
 * The simulator drives the same engine calls as the daemon, and between
 * two steps it serialises the dialogue state and parses it back, exactly as
 * the state travels through Redis; a transcript that passes here exercises
 * the codec too.  After each screen it prints one status line:
 *
 *   == CON gsm7 57/182        (continue or end, encoding, used/limit)
 *
 * and when a flow ends with an action, the record the action would receive:
 *
 *   == RECORD {"flow":"register",...}
 *
 * An input line "~dial +SECONDS" cuts the session and dials again that many
 * seconds after the last step, with the state the daemon would keep (the
 * windows of remigate.conf's sessions group), so a transcript can follow a
 * registration over several sessions.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flows/flow.h"
#include "gateway/gw.h"

static void
gw_sim_usage(FILE *fp)
{
    fprintf(fp, "usage: remigate sim -c FILE [--flow ID] [--lang en|bn] "
                "[--channel ussd|sms]\n"
                "                    [--msisdn NUMBER] [--now UNIX_TIME] "
                "[--seed N] [--outcome NAME]\n"
                "       remigate check-flows -c FILE [--strict]\n"
                "\n"
                "sim reads one answer per line on standard input and prints "
                "each screen,\n"
                "then a status line '== CON|END gsm7|ucs2 USED/LIMIT'; a "
                "finished flow\n"
                "prints '== RECORD {json}'.  --outcome picks the result of the "
                "end action\n"
                "(e.g. verified, rejected, none for status_lookup).\n"
                "An input '~dial +SECONDS' hangs up and dials again that much "
                "later.\n");
}

/* Load the config and the flows; print every problem as file:line. */
static struct flow_set *
gw_sim_load(const char *path, int quiet, long *win)
{
    struct gw_config cfg;
    char err[512];
    if (gw_config_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    struct flow_settings fs;
    gw_config_flow_settings(&cfg, &fs);
    if (win != NULL) {
        win[0] = cfg.resume_window;
        win[1] = cfg.offer_window;
    }
    struct flow_diag diag;
    flow_diag_init(&diag);
    struct flow_set *set = flow_set_load(&fs, &diag);
    for (size_t i = 0; i < diag.n; i++) {
        const struct flow_diag_item *it = &diag.items[i];
        if (it->line > 0)
            fprintf(stderr, "%s:%d: %s\n", it->file, it->line, it->msg);
        else
            fprintf(stderr, "%s: %s\n", it->file, it->msg);
    }
    if (set == NULL && !quiet)
        fprintf(stderr, "check-flows: %zu error%s\n", diag.n,
                diag.n == 1 ? "" : "s");
    flow_diag_fini(&diag);
    gw_config_fini(&cfg);
    return set;
}

static const char *
gw_sim_config_arg(int argc, char **argv)
{
    for (int i = 1; i < argc - 1; i++)
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)
            return argv[i + 1];
    return NULL;
}

struct gw_clock_report {
    int strict;
    unsigned budget_ms;
};

/* One line per part; a part over the budget also as file:line. */
static void
gw_check_part(const struct flow_part_time *t, void *arg)
{
    const struct gw_clock_report *r = arg;
    printf("check-flows: %s %s part %u/%u: %u screen%s (%u menu, %u number, "
           "%u text, %u search, %u read-back), %u.%u s of %u s\n",
           t->flow, t->lang, t->part, t->nparts, t->screens,
           t->screens == 1 ? "" : "s", t->menus, t->numbers, t->texts,
           t->searches, t->readbacks, t->ms / 1000, t->ms % 1000 / 100,
           r->budget_ms / 1000);
    if (t->ms > r->budget_ms)
        fprintf(stderr,
                "%s:%d: %s: part %u of flow '%s' takes %u.%u s in '%s' "
                "(modelled), over the %u s session budget\n",
                t->file, t->line, r->strict ? "error" : "warning", t->part,
                t->flow, t->ms / 1000, t->ms % 1000 / 100, t->lang,
                r->budget_ms / 1000);
}

int
gw_check_flows_main(int argc, char **argv)
{
    const char *path = gw_sim_config_arg(argc, argv);
    int strict = 0;
    for (int i = 1; i < argc; i++)
        strict |= strcmp(argv[i], "--strict") == 0;
    if (path == NULL) {
        gw_sim_usage(stderr);
        return 2;
    }
    struct flow_set *set = gw_sim_load(path, 0, NULL);
    if (set == NULL) return 1;
    struct gw_clock_report r = {
        .strict = strict, .budget_ms = flow_set_settings(set)->clock.budget_ms};
    unsigned over = flow_clock_parts(set, gw_check_part, &r);
    flow_set_free(set);
    if (over > 0 && strict) {
        fprintf(stderr, "check-flows: %u part%s over the session budget\n",
                over, over == 1 ? "" : "s");
        return 1;
    }
    printf("check-flows: %s: ok%s\n", path,
           over ? " (with parts over the session budget)" : "");
    return 0;
}

static void
gw_sim_print(const struct flow_out *out)
{
    printf("%s\n== %s %s %u/%u\n", out->text, out->done ? "END" : "CON",
           flow_enc_name(out->enc), out->used, out->limit);
}

/* splitmix64: deterministic nonces for a given --seed. */
static uint64_t
gw_sim_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void
gw_sim_nonce(uint64_t *seed, struct flow_ctx *ctx)
{
    uint64_t a = gw_sim_next(seed), b = gw_sim_next(seed);
    memcpy(ctx->nonce, &a, 8);
    memcpy(ctx->nonce + 8, &b, 8);
}

/* The end of a flow: what the action would store, then its screen. */
static void
gw_sim_finish(const struct flow_set *set, const struct flow_state *st,
              const struct flow_out *out, const char *msisdn,
              const char *outcome)
{
    if (out->action == NULL) {
        gw_sim_print(out);
        return;
    }
    static char rec[65536];
    if (flow_record_json(set, st, msisdn, rec, sizeof(rec)) < 0)
        snprintf(rec, sizeof(rec), "{\"error\":\"record too long\"}");
    const char *vars[3] = {NULL, NULL, NULL};
    char oc[64];
    if (outcome != NULL) {
        snprintf(oc, sizeof(oc), "outcome=%s", outcome);
        vars[0] = oc;
    }
    struct flow_out end;
    flow_render_end(set, st, vars, &end);
    gw_sim_print(&end);
    printf("== RECORD %s\n", rec);
}

/* What the daemon does to a caller's state when they dial again: after
 * the longer of the two windows an unfinished dialogue is dropped (the
 * language and the parts of a registration saved stay); within
 * sessions.resume_window it goes on at once (ctx->resume_window). */
static void
gw_sim_redial(struct flow_state *st, struct flow_ctx *ctx, const long *win)
{
    long keep = win[1] > win[0] ? win[1] : win[0];
    ctx->resume_window = (unsigned)win[0];
    if (ctx->now - st->updated > keep && !(st->flags & FLOW_SF_DONE)) {
        struct flow_state old = *st;
        memset(st, 0, sizeof(*st));
        memcpy(st->lang, old.lang, sizeof(st->lang));
        st->flags = old.flags & FLOW_SF_LANG;
        st->parts = old.parts;
    }
}

int
gw_sim_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"flow", required_argument, NULL, 'f'},
        {"lang", required_argument, NULL, 'l'},
        {"channel", required_argument, NULL, 'C'},
        {"msisdn", required_argument, NULL, 'm'},
        {"now", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"outcome", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *flow = NULL, *lang = NULL, *outcome = NULL;
    const char *msisdn = "8801700000000";
    enum flow_channel channel = FLOW_CH_USSD;
    struct flow_ctx ctx = {.now = (int64_t)time(NULL)};
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'f':
            flow = optarg;
            break;
        case 'l':
            lang = optarg;
            break;
        case 'm':
            msisdn = optarg;
            break;
        case 'o':
            outcome = optarg;
            break;
        case 'n':
            ctx.now = strtoll(optarg, NULL, 10);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'C':
            if (flow_channel_parse(optarg, &channel) != 0) {
                fprintf(stderr, "sim: --channel must be ussd or sms\n");
                return 2;
            }
            break;
        case 'h':
            gw_sim_usage(stdout);
            return 0;
        default:
            gw_sim_usage(stderr);
            return 2;
        }
    }
    if (path == NULL) {
        gw_sim_usage(stderr);
        return 2;
    }
    long win[2];
    struct flow_set *set = gw_sim_load(path, 1, win);
    if (set == NULL) return 1;
    if (flow != NULL && !flow_exists(set, flow)) {
        fprintf(stderr, "sim: no flow '%s'\n", flow);
        flow_set_free(set);
        return 2;
    }

    static struct flow_state st;
    struct flow_out out;
    static char enc[FLOW_STATE_MAX];
    gw_sim_nonce(&seed, &ctx);
    memset(&st, 0, sizeof(st));
    if (lang != NULL) {
        snprintf(st.lang, sizeof(st.lang), "%s", lang);
        st.flags |= FLOW_SF_LANG;
    }
    flow_dial(set, &st, flow, channel, &ctx, &out);

    int tty = isatty(STDIN_FILENO);
    char line[4096];
    int rc = 0, shown = 0;
    for (;;) {
        if (!out.done) {
            gw_sim_print(&out);
        } else if (!shown) {
            /* the end: its record, and a part of a registration saved */
            gw_sim_finish(set, &st, &out, msisdn, outcome);
            if (out.action != NULL) flow_part_mark(set, &st);
            shown = 1;
        }
        if (tty) {
            printf("> ");
            fflush(stdout);
        }
        if (fgets(line, sizeof(line), stdin) == NULL) break;
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        /* Through the codec, as through Redis. */
        int n = flow_state_encode(&st, enc, sizeof(enc));
        if (n < 0 || flow_state_decode(&st, enc, (size_t)n) != 0) {
            fprintf(stderr, "sim: state did not survive encoding\n");
            rc = 1;
            goto done;
        }
        gw_sim_nonce(&seed, &ctx);
        if (strncmp(line, "~dial", 5) == 0) {
            /* "~dial +SECONDS": the session was cut; the caller dials
             * again that much later, as the daemon would see it */
            ctx.now += strtoll(line + 5 + strspn(line + 5, " +"), NULL, 10);
            gw_sim_redial(&st, &ctx, win);
            flow_dial(set, &st, NULL, channel, &ctx, &out);
            shown = 0;
            continue;
        }
        if (out.done) break; /* the old sim: input after the end is unread */
        flow_step(set, &st, line, len, &ctx, &out);
    }
done:
    fflush(stdout);
    flow_set_free(set);
    return rc;
}
