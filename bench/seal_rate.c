/*
 * seal_rate.c -- what sealing a session costs: store_sess_seal() and
 * store_sess_open() of one envelope's secret part, as the USSD step does
 * once each (a save seals, a read opens), timed alone on one core.
 *
 *   build/bench/seal_rate KEYFILE [N]
 *
 * For secret parts of 512, 1,536, 4,096 and 12,288 bytes (a dialogue's
 * state grows with its answers: about 1.5 KB at the read-back of a
 * registration), N rounds each (default 200,000) of seal then open, and
 * prints one line per size, in microseconds of CPU time (the process's,
 * so a busy machine does not inflate it):
 *
 *   SEAL bytes=.. sealed=.. seal_us=.. open_us=.. n=..
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "store/store.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    static const size_t sizes[] = {512, 1536, 4096, 12288};
    static char in[12288], sealed[20000], out[12288 + 64];
    const char *ad = "s:ussd:8801712345678";
    char err[256];

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: seal_rate KEYFILE [N]\n");
        return 2;
    }
    long n = argc == 3 ? atol(argv[2]) : 200000;
    struct event_base *base = event_base_new();
    struct store_config sc = {.dsn = "", .key_file = argv[1]};
    struct store *s = base ? store_new(&sc, base, err, sizeof(err)) : NULL;
    if (s == NULL || n <= 0) {
        fprintf(stderr, "seal_rate: %s\n", s ? "bad N" : err);
        return 1;
    }
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (char)('a' + i % 26);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t len = sizes[k];
        int sl = 0;
        double t0 = now_s();
        for (long i = 0; i < n; i++)
            sl = store_sess_seal(s, ad, in, len, sealed, sizeof(sealed));
        double t1 = now_s();
        for (long i = 0; i < n; i++)
            if (store_sess_open(s, ad, sealed, (size_t)sl, out, sizeof(out)) !=
                (int)len) {
                fprintf(stderr, "seal_rate: does not open\n");
                return 1;
            }
        double t2 = now_s();
        printf("SEAL bytes=%zu sealed=%d seal_us=%.2f open_us=%.2f n=%ld\n",
               len, sl, (t1 - t0) / (double)n * 1e6,
               (t2 - t1) / (double)n * 1e6, n);
    }
    store_free(s);
    event_base_free(base);
    return 0;
}
