/*
 * flow_text.c -- UTF-8, the GSM 03.38 alphabet, and input normalisation.
 *
 * A screen goes out as GSM 7-bit when every character is in the default
 * alphabet or its extension table (those cost two septets: escape + char),
 * otherwise as UCS-2, where every BMP character is one unit and anything
 * astral two.  Bangla is always UCS-2.  We count exactly what the network
 * will count, so the engine can promise that no page is cut.
 */
#include <string.h>

#include "flows/flow_model.h"

/* Decode one code point at s[*i]; strict (no overlongs, no surrogates). */
static int
flow_utf8_next(const char *s, size_t len, size_t *i, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = len - *i;
    uint32_t c;
    size_t n;

    if (left == 0)
        return -1;
    if (p[0] < 0x80) {
        *cp = p[0];
        *i += 1;
        return 0;
    }
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        n = 2;
        c = p[0] & 0x1F;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        n = 3;
        c = p[0] & 0x0F;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        n = 4;
        c = p[0] & 0x07;
    } else {
        return -1;
    }
    if (left < n)
        return -1;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return -1;
        c = c << 6 | (p[k] & 0x3F);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return -1;
    *cp = c;
    *i += n;
    return 0;
}

int
flow_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    uint32_t cp;
    while (i < len)
        if (flow_utf8_next(s, len, &i, &cp) < 0)
            return 0;
    return 1;
}

/* 1: in the GSM default alphabet; 2: in the extension table; 0: neither. */
static int
flow_gsm7_char(uint32_t cp)
{
    static const uint32_t basic[] = {
        0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A,
        0xD8, 0xF8, 0x0D, 0xC5, 0xE5, 0x394, 0x5F, 0x3A6, 0x393, 0x39B,
        0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, 0xC6, 0xE6, 0xDF, 0xC9,
        0xA4, 0xA1, 0xC4, 0xD6, 0xD1, 0xDC, 0xA7, 0xBF, 0xE4, 0xF6, 0xF1,
        0xFC, 0xE0};
    static const char ext[] = "^{}\\[~]|\f";
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
        (cp >= '0' && cp <= '9'))
        return 1;
    if (cp >= 0x20 && cp < 0x7F && strchr(" !\"#%&'()*+,-./:;<=>?", (int)cp))
        return 1;
    for (size_t i = 0; i < sizeof(basic) / sizeof(basic[0]); i++)
        if (basic[i] == cp)
            return 1;
    if (cp == 0x20AC || (cp != 0 && cp < 0x80 && strchr(ext, (int)cp)))
        return 2;
    return 0;
}

void
flow_text_measure(const char *s, size_t len, enum flow_enc *enc,
                  unsigned *units)
{
    size_t i = 0;
    unsigned septets = 0, ucs2 = 0;
    int gsm = 1;
    uint32_t cp;
    while (i < len) {
        if (flow_utf8_next(s, len, &i, &cp) < 0) {
            gsm = 0;
            ucs2++;
            i++;
            continue;
        }
        int g = flow_gsm7_char(cp);
        if (g == 0)
            gsm = 0;
        septets += (unsigned)g;
        ucs2 += cp > 0xFFFF ? 2 : 1;
    }
    *enc = gsm ? FLOW_ENC_GSM7 : FLOW_ENC_UCS2;
    *units = gsm ? septets : ucs2;
}

const char *
flow_enc_name(enum flow_enc enc)
{
    return enc == FLOW_ENC_GSM7 ? "gsm7" : "ucs2";
}

static int
flow_text_space(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' ||
           cp == 0x0B || cp == 0x0C || cp == 0xA0;
}

static int
flow_text_zw(uint32_t cp)
{
    return cp == 0x200B || cp == 0x2060 || cp == 0xFEFF;
}

int
flow_text_normalise(const char *in, size_t len, int digits, char *out,
                    size_t cap)
{
    size_t i = 0, o = 0, mark = 0; /* mark: length before trailing junk */
    int pending_space = 0;
    uint32_t cp;

    if (cap == 0)
        return -1;
    while (i < len) {
        size_t at = i;
        if (flow_utf8_next(in, len, &i, &cp) < 0)
            return -1;
        if (flow_text_zw(cp))
            continue;
        if (flow_text_space(cp)) {
            pending_space = o > 0;
            continue;
        }
        int joiner = cp == 0x200C || cp == 0x200D;
        if (joiner && o == 0)
            continue; /* leading ZWJ/ZWNJ */
        if (pending_space && !joiner) {
            o = mark; /* drop joiners before the space */
            if (o + 1 >= cap)
                return -1;
            out[o++] = ' ';
            pending_space = 0;
        } else if (pending_space && joiner) {
            continue; /* joiner right after a space */
        }
        if (digits && cp >= 0x09E6 && cp <= 0x09EF) {
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)('0' + (cp - 0x09E6));
        } else {
            size_t n = i - at;
            if (o + n >= cap)
                return -1;
            memcpy(out + o, in + at, n);
            o += n;
        }
        if (!joiner)
            mark = o;
    }
    o = mark; /* trailing spaces and joiners */
    out[o] = '\0';
    return (int)o;
}
