/*
 * pwhash_rate.c -- what one argon2id password check costs, three ways,
 * alternated call by call on one thread:
 *
 *   sodium   crypto_pwhash_str_verify() as it is: libsodium maps a fresh
 *            block for every hash, the kernel faults in and zeroes it
 *   arena    con_pw_verify(): the same libsodium code in an arena kept and
 *            touched once, wiped after each hash (what the hashing
 *            threads do)
 *   wipe     sodium_memzero() of a block as big, touched before: the
 *            arena's wipe alone
 *
 *   build/bench/pwhash_rate [N] [KIB] [PASSES]
 *
 * N calls each (default 30), against a string libsodium made at KIB KiB
 * (default 19456) and PASSES passes (default 2).  Per way, the medians of
 * each call's CPU time (the thread's), minor page faults and wall time,
 * and the means of user and system time (getrusage; the process has this
 * one thread; the kernel splits CPU time into the two by sampling, so a
 * single call's split is coarse):
 *
 *   PWHASH way=.. cpu_ms=.. user_ms=.. sys_ms=.. minflt=.. wall_ms=.. n=..
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <sodium.h>

#include "console/con_int.h"

enum { W_SODIUM, W_ARENA, W_WIPE, W_N };
static const char *const way_name[W_N] = {"sodium", "arena", "wipe"};

static double
ts_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double
tv_ms(struct timeval tv)
{
    return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
mean(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s / n;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 30;
    size_t kib = argc > 2 ? (size_t)atol(argv[2]) : 19456;
    unsigned t = argc > 3 ? (unsigned)atoi(argv[3]) : 2;
    static const char pw[] = "Bench-Login-Password-1";
    char stored[crypto_pwhash_STRBYTES];
    struct con_pw_arena *a;
    double *m[W_N][5];
    unsigned char *block;

    if (n < 1 || sodium_init() < 0) return 2;
    if (crypto_pwhash_str_alg(stored, pw, strlen(pw), t, kib * 1024,
                              crypto_pwhash_ALG_ARGON2ID13) != 0 ||
        (a = con_pw_arena_new(kib)) == NULL ||
        (block = malloc(kib * 1024)) == NULL) {
        fprintf(stderr, "pwhash_rate: out of memory\n");
        return 1;
    }
    memset(block, 1, kib * 1024);
    for (int w = 0; w < W_N; w++)
        for (int k = 0; k < 5; k++)
            if ((m[w][k] = calloc((size_t)n, sizeof(double))) == NULL) return 1;
    for (int i = 0; i < n; i++) {
        for (int w0 = 0; w0 < W_N; w0++) {
            int w = (w0 + i) % W_N; /* rotate the order */
            struct rusage r0, r1;
            double c0, c1, t0, t1;
            int rc;

            getrusage(RUSAGE_SELF, &r0);
            t0 = ts_ms(CLOCK_MONOTONIC);
            c0 = ts_ms(CLOCK_THREAD_CPUTIME_ID);
            rc = 0;
            if (w == W_SODIUM)
                rc = crypto_pwhash_str_verify(stored, pw, strlen(pw));
            else if (w == W_WIPE)
                sodium_memzero(block, kib * 1024);
            else
                rc = con_pw_verify(a, stored, pw, strlen(pw));
            c1 = ts_ms(CLOCK_THREAD_CPUTIME_ID);
            t1 = ts_ms(CLOCK_MONOTONIC);
            getrusage(RUSAGE_SELF, &r1);
            if (rc != 0) {
                fprintf(stderr, "pwhash_rate: %s did not verify\n",
                        way_name[w]);
                return 1;
            }
            m[w][0][i] = c1 - c0;
            m[w][1][i] = tv_ms(r1.ru_utime) - tv_ms(r0.ru_utime);
            m[w][2][i] = tv_ms(r1.ru_stime) - tv_ms(r0.ru_stime);
            m[w][3][i] = (double)(r1.ru_minflt - r0.ru_minflt);
            m[w][4][i] = t1 - t0;
        }
    }
    for (int w = 0; w < W_N; w++)
        printf("PWHASH way=%s cpu_ms=%.2f user_ms=%.2f sys_ms=%.2f "
               "minflt=%.0f wall_ms=%.2f n=%d kib=%zu passes=%u\n",
               way_name[w], median(m[w][0], n), mean(m[w][1], n),
               mean(m[w][2], n), median(m[w][3], n), median(m[w][4], n), n, kib,
               t);
    con_pw_arena_free(a);
    free(block);
    return 0;
}
