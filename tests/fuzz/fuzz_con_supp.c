/* fuzz: flows sessions store notices console gateway */
/*
 * fuzz_con_supp.c -- libFuzzer target for small-cell suppression: the
 * input is a table (rows, columns, k, then one count per cell); the
 * suppression may not crash, must hide every count 1..k-1 and, unless it
 * refuses the table, leave no hidden entry that con_supp_pinned() can
 * work out.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/con_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long long n[9 * 9];
    unsigned char mark[9 * 9];
    int nr, nc, k, w, rc;

    if (size < 3) return 0;
    nr = 1 + data[0] % 8;
    nc = 1 + data[1] % 8;
    k = 2 + data[2] % 10;
    w = nc + 1;
    memset(n, 0, sizeof(n));
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nc; j++) {
            size_t at = 3 + (size_t)(i * nc + j);
            long long v = at < size ? data[at] : 0;
            n[i * w + j] = v;
            n[i * w + nc] += v;
            n[nr * w + j] += v;
            n[nr * w + nc] += v;
        }
    rc = con_supp_apply(nr, nc, n, k, mark);
    if (rc < 0 || rc > 1) abort();
    for (int e = 0; e < (nr + 1) * w; e++)
        if (n[e] >= 1 && n[e] < k && mark[e] != CON_SUPP_PRIMARY) abort();
    if (rc == 0 && con_supp_pinned(nr, nc, n, k, mark) != -1) abort();
    return 0;
}
