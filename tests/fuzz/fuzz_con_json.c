/* fuzz: flows sessions store notices console gateway */
/*
 * fuzz_con_json.c -- libFuzzer target for the JSON string writer: any
 * text (up to its first NUL) is written by con_json_str() exactly as
 * jansson's json_dumps() writes json_string() of it, or refused by both.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "console/con_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct con_buf b = {NULL, 0, 0};
    char *in = malloc(size + 1), *want = NULL;
    json_t *j;
    int rc;

    if (in == NULL) abort();
    memcpy(in, data, size);
    in[size] = '\0';
    j = json_string(in);
    rc = con_json_str(&b, in);
    if (j == NULL) {
        if (rc != -1 || (b.p != NULL && b.len != 0)) abort();
    } else {
        want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        if (rc != 0 || want == NULL || strcmp(b.p, want) != 0) abort();
    }
    free(want);
    json_decref(j);
    free(b.p);
    free(in);
    return 0;
}
