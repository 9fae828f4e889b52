/*
 * con_json.c -- JSON text written straight into a growing buffer, for
 * the answers made of many rows (the queue's page: 50 rows of 13 fields
 * were some 650 jansson values made, dumped and freed per request, about
 * half of the daemon's time on a page).  The text is the same as
 * json_dumps(JSON_COMPACT) writes for the same values: strings escaped as
 * jansson escapes them, and refused where jansson refuses them (not
 * UTF-8).  Pure (fuzz_con_json checks it against jansson).
 */
#include <stdio.h>
#include <string.h>

#include "console/con_int.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none:
 * jansson's rules (no overlong form, no surrogate, at most U+10FFFF). */
static size_t
con_json_utf8(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp;
    size_t len;

    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int
con_json_str(struct con_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n, run = 0, len, at = b->len;

    if (s == NULL) return con_buf_add(b, "null", 4);
    n = strlen(s);
    if (con_buf_add(b, "\"", 1) < 0) return -1;
    for (size_t i = 0; i < n; i += len) {
        const char *esc = NULL;
        char u[8];

        if ((len = con_json_utf8(p + i, n - i)) == 0) goto refuse;
        switch (p[i]) {
        case '\\':
            esc = "\\\\";
            break;
        case '"':
            esc = "\\\"";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (p[i] < 0x20) {
                snprintf(u, sizeof(u), "\\u%04X", (unsigned)p[i]);
                esc = u;
            }
        }
        if (esc == NULL) {
            run += len;
            continue;
        }
        if (con_buf_add(b, s + i - run, run) < 0 ||
            con_buf_add(b, esc, strlen(esc)) < 0)
            goto refuse;
        run = 0;
    }
    if (con_buf_add(b, s + n - run, run) < 0 || con_buf_add(b, "\"", 1) < 0)
        goto refuse;
    return 0;
refuse:
    b->len = at; /* b as it was */
    if (b->p) b->p[at] = '\0';
    return -1;
}
