/* fuzz: flows */
/*
 * fuzz_state.c -- libFuzzer target for the session-state parser: any bytes
 * are either refused or parsed into a state that encodes and parses back to
 * the same string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct flow_state st, back;
    static char a[FLOW_STATE_MAX], b[FLOW_STATE_MAX];
    if (flow_state_decode(&st, (const char *)data, size) != 0)
        return 0;
    int n = flow_state_encode(&st, a, sizeof(a));
    if (n < 0 || flow_state_decode(&back, a, (size_t)n) != 0 ||
        flow_state_encode(&back, b, sizeof(b)) != n || memcmp(a, b, (size_t)n))
        abort();
    return 0;
}
