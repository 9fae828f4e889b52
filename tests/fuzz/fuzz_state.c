/* fuzz: flows */
/*
 * fuzz_state.c -- libFuzzer target for the session-state codec.  Any bytes
 * are either refused by flow_state_decode() or decode to a state that
 * encodes, and decodes back to exactly the same struct.  The state comes
 * from Redis, so this is the parser that sees whatever is stored there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_state_fail(const char *why, const char *enc)
{
    fprintf(stderr, "fuzz_state: %s\nencoded: %s\n", why, enc ? enc : "-");
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct flow_state first, second;
    static char enc[FLOW_STATE_MAX + 1];
    int n;

    if (flow_state_decode(&first, (const char *)data, size) != 0) return 0;
    n = flow_state_encode(&first, enc, sizeof(enc));
    if (n < 0) fuzz_state_fail("a decoded state does not encode", NULL);
    if ((size_t)n >= sizeof(enc) || enc[n] != '\0')
        fuzz_state_fail("encode returned a wrong length", NULL);
    if (flow_state_decode(&second, enc, (size_t)n) != 0)
        fuzz_state_fail("an encoded state does not decode", enc);
    /* decode zeroes the whole struct first, so padding compares equal */
    if (memcmp(&first, &second, sizeof(first)) != 0)
        fuzz_state_fail("the round trip changed the state", enc);
    return 0;
}
