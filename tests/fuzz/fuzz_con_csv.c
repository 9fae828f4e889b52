/* fuzz: flows sessions store notices console gateway */
/*
 * fuzz_con_csv.c -- libFuzzer target for the CSV writer: any text (no
 * NUL) written as one field must read back, by an RFC 4180 reader, as
 * the same text -- with one "'" in front when it starts with a character
 * a spreadsheet takes for a formula -- and never start with such a
 * character itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console/con_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct con_buf b = {NULL, 0, 0};
    char *in = malloc(size + 1), *back = malloc(size + 2);
    size_t n = 0, i = 0;
    const char *p;

    if (in == NULL || back == NULL) abort();
    memcpy(in, data, size);
    in[size] = '\0';
    if (con_csv_field(&b, in) < 0) abort();
    p = b.p ? b.p : "";
    if (b.len > 0 && strchr("=+-@\t\r", p[0]) != NULL) abort();
    if (p[0] == '"') { /* quoted: "" is one quote, ends at a lone quote */
        for (i = 1; p[i]; i++) {
            if (p[i] == '"') {
                if (p[i + 1] != '"') break;
                i++;
            }
            back[n++] = p[i];
        }
        if (p[i] != '"' || p[i + 1] != '\0') abort();
    } else {
        if (strpbrk(p, ",\"\r\n")) abort();
        n = strlen(p);
        memcpy(back, p, n);
    }
    back[n] = '\0';
    {
        size_t len = strlen(in);
        int formula = len > 0 && strchr("=+-@\t\r", in[0]) != NULL;
        if (formula ? (back[0] != '\'' || strcmp(back + 1, in) != 0)
                    : strcmp(back, in) != 0)
            abort();
    }
    free(b.p);
    free(in);
    free(back);
    return 0;
}
