/* fuzz: flows */
/*
 * fuzz_step.c -- libFuzzer target for the engine.  The input is lines: the
 * first is tried as a serialised state (else the fixture flow "find" starts
 * when it says "find" -- a search menu, parts -- and the demo flow
 * otherwise), every further line is one answer, or "~dial N": a new dial N
 * seconds later (N from 0 to 9: 0..9000 s).  After every step the screen must
 * fit its page, the state must survive its codec, and nothing may crash, leak
 * or trip a sanitizer.  Run from the repository root (it loads the fixtures in
 * tests/unit/fixtures).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flow.h"

static struct flow_set *set;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct flow_settings s;
    struct flow_diag d;
    flow_settings_default(&s);
    s.flows_dir = "tests/unit/fixtures/flows";
    s.lists_dir = "tests/unit/fixtures/lists";
    s.messages_file = "tests/unit/fixtures/messages.conf";
    flow_diag_init(&d);
    set = flow_set_load(&s, &d);
    flow_diag_fini(&d);
    if (set == NULL) {
        fprintf(stderr, "fuzz_step: fixtures did not load (run from the "
                        "repository root)\n");
        abort();
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct flow_state st, back;
    static struct flow_out out;
    static char enc[FLOW_STATE_MAX], enc2[FLOW_STATE_MAX];
    struct flow_ctx ctx = {.now = 1795343567};
    const char *p = (const char *)data, *end = p + size;
    const char *nl = memchr(p, '\n', size);
    size_t first = nl ? (size_t)(nl - p) : size;

    if (flow_state_decode(&st, p, first) != 0)
        flow_start(set, &st,
                   first == 4 && memcmp(p, "find", 4) == 0 ? "find" : "demo",
                   NULL, FLOW_CH_USSD, &ctx, &out);
    p = nl ? nl + 1 : end;
    for (int steps = 0; p < end && steps < 64; steps++) {
        nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        ctx.nonce[0] = (unsigned char)steps;
        if (len == 7 && memcmp(p, "~dial ", 6) == 0 && p[6] >= '0' &&
            p[6] <= '9') {
            ctx.now += (p[6] - '0') * 1000;
            ctx.resume_window = 900;
            flow_dial(set, &st, NULL, FLOW_CH_USSD, &ctx, &out);
        } else {
            flow_step(set, &st, p, len, &ctx, &out);
        }
        if (out.done && out.action != NULL) flow_part_mark(set, &st);
        if (out.used > out.limit || out.len != strlen(out.text)) abort();
        int n = flow_state_encode(&st, enc, sizeof(enc));
        if (n < 0 || flow_state_decode(&back, enc, (size_t)n) != 0 ||
            flow_state_encode(&back, enc2, sizeof(enc2)) != n ||
            memcmp(enc, enc2, (size_t)n) != 0)
            abort();
        p = nl ? nl + 1 : end;
    }
    return 0;
}
