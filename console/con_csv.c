/*
 * con_csv.c -- CSV as spreadsheets open it (RFC 4180 fields, formula
 * cells neutralised) into a growing buffer.  Pure: the export handlers
 * build the whole file, hash it and only then answer.
 */
#include <stdlib.h>
#include <string.h>

#include "console/con_int.h"

int
con_buf_add(struct con_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int
con_csv_field(struct con_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    int quote = 0, formula = 0;

    if (n == 0) return con_buf_add(b, "", 0);
    /* CWE-1236: a cell a spreadsheet would evaluate */
    formula = strchr("=+-@\t\r", s[0]) != NULL;
    quote = strpbrk(s, ",\"\r\n") != NULL || s[0] == ' ' || s[n - 1] == ' ';
    if (quote && con_buf_add(b, "\"", 1) < 0) return -1;
    if (formula && con_buf_add(b, "'", 1) < 0) return -1;
    for (const char *q = s; *q; q++) {
        if (*q == '"' && con_buf_add(b, "\"", 1) < 0) return -1;
        if (con_buf_add(b, q, 1) < 0) return -1;
    }
    if (quote && con_buf_add(b, "\"", 1) < 0) return -1;
    return 0;
}
