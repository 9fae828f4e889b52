/* fuzz: sessions */
/*
 * fuzz_sess_sentinels.c -- libFuzzer target for redis.sentinels' parser
 * (sess_sentinels_check(), and sess_new() which parses the same list
 * into its table).  Neither may crash or read out of bounds, and they
 * must agree: a list the check accepts makes a store (with a master
 * name), and one it refuses is refused by sess_new() with the same
 * message.  A list accepted has at most SESS_SENTINELS_MAX entries, each
 * with a ':' before a port.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "sessions/sess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *fuzz_base;

static void
fuzz_fail(const char *why, const char *in)
{
    fprintf(stderr, "fuzz_sess_sentinels: %s: '%s'\n", why, in);
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024) return 0;
    char *in = malloc(size + 1);
    if (in == NULL) return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    if (fuzz_base == NULL) fuzz_base = event_base_new();

    const char *why = sess_sentinels_check(in);
    struct sess_cfg cfg = {.host = "127.0.0.1",
                           .port = 6379,
                           .prefix = "f:",
                           .timeout_ms = 100,
                           .max_pending = 1,
                           .sentinels = in,
                           .master_name = "remigate"};
    char err[256];
    struct sess *s = sess_new(&cfg, fuzz_base, err, sizeof(err));
    if (why == NULL && s == NULL)
        fuzz_fail("checked, but sess_new refused", in);
    if (why != NULL && s != NULL) fuzz_fail("refused, but sess_new took", in);
    if (why != NULL && strcmp(err, why) != 0)
        fuzz_fail("sess_new said something else", in);
    if (why == NULL && in[0] != '\0') {
        size_t commas = 0;
        for (const char *p = in; *p; p++)
            commas += *p == ',';
        if (commas + 1 > SESS_SENTINELS_MAX) fuzz_fail("too many taken", in);
        if (strchr(in, ':') == NULL) fuzz_fail("an entry without a port", in);
    }
    sess_free(s);
    free(in);
    return 0;
}
