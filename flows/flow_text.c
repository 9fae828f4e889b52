/*
 * flow_text.c -- UTF-8, the GSM 03.38 alphabet, and input normalisation.
 *
 * A screen goes out in GSM 7-bit when every character is in the default
 * alphabet or its extension table (an extension character is sent as escape
 * plus character: two septets), otherwise in UCS-2, one UTF-16 code unit per
 * BMP character and two for anything above U+FFFF.  All Bangla is UCS-2.
 * We count exactly what the network counts, so the engine can promise that
 * no page is ever cut.
 *
 * Decoding is strict everywhere: a byte string that is not UTF-8 is refused
 * as input and, when measured, costs the most it could (UCS-2, one unit per
 * byte).
 */
#include <limits.h>
#include <string.h>

#include "flows/flow_int.h"

int
flow_utf8_next(const char *s, size_t len, size_t *i, uint32_t *cp)
{
    const unsigned char *p;
    uint32_t c, min;
    size_t n;

    if (s == NULL || *i >= len) return -1;
    p = (const unsigned char *)s + *i;
    if (p[0] < 0x80) {
        *cp = p[0];
        *i += 1;
        return 0;
    }
    if ((p[0] & 0xE0) == 0xC0) {
        n = 2;
        c = p[0] & 0x1Fu;
        min = 0x80;
    } else if ((p[0] & 0xF0) == 0xE0) {
        n = 3;
        c = p[0] & 0x0Fu;
        min = 0x800;
    } else if ((p[0] & 0xF8) == 0xF0) {
        n = 4;
        c = p[0] & 0x07u;
        min = 0x10000;
    } else {
        return -1; /* continuation byte, or 0xF8..0xFF */
    }
    if (len - *i < n) return -1;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) return -1;
        c = c << 6 | (p[k] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return -1;
    *cp = c;
    *i += n;
    return 0;
}

/* Contract in flow.h. */
int
flow_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    uint32_t cp;

    if (s == NULL) return len == 0;
    while (i < len)
        if (flow_utf8_next(s, len, &i, &cp) < 0) return 0;
    return 1;
}

/* The non-ASCII characters of the GSM 03.38 default alphabet, ascending. */
static const uint16_t flow_gsm7_basic[] = {
    0x00A1, /* ¡ */ 0x00A3, /* £ */ 0x00A4, /* ¤ */ 0x00A5, /* ¥ */
    0x00A7, /* § */ 0x00BF, /* ¿ */ 0x00C4, /* Ä */ 0x00C5, /* Å */
    0x00C6, /* Æ */ 0x00C7, /* Ç */ 0x00C9, /* É */ 0x00D1, /* Ñ */
    0x00D6, /* Ö */ 0x00D8, /* Ø */ 0x00DC, /* Ü */ 0x00DF, /* ß */
    0x00E0, /* à */ 0x00E4, /* ä */ 0x00E5, /* å */ 0x00E6, /* æ */
    0x00E8, /* è */ 0x00E9, /* é */ 0x00EC, /* ì */ 0x00F1, /* ñ */
    0x00F2, /* ò */ 0x00F6, /* ö */ 0x00F8, /* ø */ 0x00F9, /* ù */
    0x00FC, /* ü */ 0x0393, /* Γ */ 0x0394, /* Δ */ 0x0398, /* Θ */
    0x039B, /* Λ */ 0x039E, /* Ξ */ 0x03A0, /* Π */ 0x03A3, /* Σ */
    0x03A6, /* Φ */ 0x03A8, /* Ψ */ 0x03A9,                 /* Ω */
};

/* GSM 03.38 for ASCII: 1 default alphabet, 2 extension table, 0 none
 * (controls other than LF, CR and FF, DEL, and the backtick GSM lacks). */
static const unsigned char flow_gsm7_ascii[128] = {
    ['\n'] = 1, ['\r'] = 1, ['\f'] = 2, [' '] = 1,  ['!'] = 1,  ['"'] = 1,
    ['#'] = 1,  ['$'] = 1,  ['%'] = 1,  ['&'] = 1,  ['\''] = 1, ['('] = 1,
    [')'] = 1,  ['*'] = 1,  ['+'] = 1,  [','] = 1,  ['-'] = 1,  ['.'] = 1,
    ['/'] = 1,  ['0'] = 1,  ['1'] = 1,  ['2'] = 1,  ['3'] = 1,  ['4'] = 1,
    ['5'] = 1,  ['6'] = 1,  ['7'] = 1,  ['8'] = 1,  ['9'] = 1,  [':'] = 1,
    [';'] = 1,  ['<'] = 1,  ['='] = 1,  ['>'] = 1,  ['?'] = 1,  ['@'] = 1,
    ['A'] = 1,  ['B'] = 1,  ['C'] = 1,  ['D'] = 1,  ['E'] = 1,  ['F'] = 1,
    ['G'] = 1,  ['H'] = 1,  ['I'] = 1,  ['J'] = 1,  ['K'] = 1,  ['L'] = 1,
    ['M'] = 1,  ['N'] = 1,  ['O'] = 1,  ['P'] = 1,  ['Q'] = 1,  ['R'] = 1,
    ['S'] = 1,  ['T'] = 1,  ['U'] = 1,  ['V'] = 1,  ['W'] = 1,  ['X'] = 1,
    ['Y'] = 1,  ['Z'] = 1,  ['['] = 2,  ['\\'] = 2, [']'] = 2,  ['^'] = 2,
    ['_'] = 1,  ['a'] = 1,  ['b'] = 1,  ['c'] = 1,  ['d'] = 1,  ['e'] = 1,
    ['f'] = 1,  ['g'] = 1,  ['h'] = 1,  ['i'] = 1,  ['j'] = 1,  ['k'] = 1,
    ['l'] = 1,  ['m'] = 1,  ['n'] = 1,  ['o'] = 1,  ['p'] = 1,  ['q'] = 1,
    ['r'] = 1,  ['s'] = 1,  ['t'] = 1,  ['u'] = 1,  ['v'] = 1,  ['w'] = 1,
    ['x'] = 1,  ['y'] = 1,  ['z'] = 1,  ['{'] = 2,  ['|'] = 2,  ['}'] = 2,
    ['~'] = 2,
};

int
flow_gsm7_char(uint32_t cp)
{
    size_t lo = 0, hi = sizeof(flow_gsm7_basic) / sizeof(flow_gsm7_basic[0]);

    if (cp < 0x80) return flow_gsm7_ascii[cp];
    if (cp == 0x20AC) /* euro sign */
        return 2;
    if (cp > flow_gsm7_basic[hi - 1]) return 0; /* Bangla, and most else */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (flow_gsm7_basic[mid] == cp) return 1;
        if (flow_gsm7_basic[mid] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Contract in flow_int.h.  Runs of ASCII, the most of an English screen,
 * are counted without decoding. */
int
flow_text_scan(const char *s, size_t len, unsigned *septets, unsigned *ucs2)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int gsm = 1;
    unsigned sep = 0, u16 = 0;
    uint32_t cp;

    while (i < len) {
        if (p[i] < 0x80) {
            unsigned g = flow_gsm7_ascii[p[i]];
            gsm &= g != 0;
            sep += g == 0 ? 1u : g;
            u16++;
            i++;
            continue;
        }
        if (flow_utf8_next(s, len, &i, &cp) < 0) {
            gsm = 0;
            sep++;
            u16++;
            i++;
            continue;
        }
        int g = flow_gsm7_char(cp);
        if (g == 0) gsm = 0;
        sep += g == 0 ? 1u : (unsigned)g;
        u16 += cp > 0xFFFF ? 2u : 1u;
    }
    *septets = sep;
    *ucs2 = u16;
    return gsm;
}

/* Contract in flow.h. */
void
flow_text_measure(const char *s, size_t len, enum flow_enc *enc,
                  unsigned *units)
{
    unsigned septets, ucs2;

    if (s == NULL) len = 0;
    if (flow_text_scan(s, len, &septets, &ucs2)) {
        *enc = FLOW_ENC_GSM7;
        *units = septets;
    } else {
        *enc = FLOW_ENC_UCS2;
        *units = ucs2;
    }
}

unsigned
flow_text_units(const char *s, size_t len, enum flow_enc enc)
{
    unsigned septets, ucs2;

    if (s == NULL) len = 0;
    (void)flow_text_scan(s, len, &septets, &ucs2);
    return enc == FLOW_ENC_GSM7 ? septets : ucs2;
}

/* Contract in flow.h. */
const char *
flow_enc_name(enum flow_enc enc)
{
    switch (enc) {
    case FLOW_ENC_GSM7:
        return "gsm7";
    case FLOW_ENC_UCS2:
        return "ucs2";
    }
    return "unknown";
}

/* White space an input may carry: ASCII, and the no-break space phones
 * insert when text is pasted. */
static int
flow_text_is_space(uint32_t cp)
{
    return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0xA0;
}

/* Invisible characters with no meaning in an answer. */
static int
flow_text_is_zw(uint32_t cp)
{
    return cp == 0x200B || cp == 0x2060 || cp == 0xFEFF;
}

static int
flow_text_is_joiner(uint32_t cp)
{
    return cp == 0x200C || cp == 0x200D;
}

/* Append n bytes at *o if they fit with a NUL after them; count them
 * either way.  Offsets only grow, so once a byte fits every earlier byte
 * fitted too, and the caller only has to check the final length. */
static void
flow_text_put(char *out, size_t cap, size_t *o, const char *b, size_t n)
{
    if (*o + n < cap) memcpy(out + *o, b, n);
    *o += n;
}

/* Contract in flow.h.  Two details: a ZWJ/ZWNJ next to white space joins
 * nothing and goes with it (so each word is trimmed, not only the whole
 * input), and U+0000 is refused like invalid UTF-8, since the result is a C
 * string that could not carry it. */
int
flow_text_normalise(const char *in, size_t len, int digits, char *out,
                    size_t cap)
{
    size_t i = 0, o = 0, keep = 0; /* keep: length up to the last letter */
    int space = 0;                 /* white space since that letter */
    uint32_t cp;

    if (out == NULL || cap == 0 || (in == NULL && len > 0)) return -1;
    while (i < len) {
        size_t at = i;
        if (flow_utf8_next(in, len, &i, &cp) < 0 || cp == 0) return -1;
        if (flow_text_is_zw(cp)) continue;
        if (flow_text_is_space(cp)) {
            space = keep > 0;
            continue;
        }
        if (flow_text_is_joiner(cp)) {
            /* at the start or after white space it is dropped; before
             * white space or at the end it is cut again below */
            if (keep > 0 && !space)
                flow_text_put(out, cap, &o, in + at, i - at);
            continue;
        }
        if (space) {
            o = keep;
            flow_text_put(out, cap, &o, " ", 1);
            space = 0;
        }
        if (digits && cp >= 0x09E6 && cp <= 0x09EF) {
            char d = (char)('0' + (cp - 0x09E6));
            flow_text_put(out, cap, &o, &d, 1);
        } else {
            flow_text_put(out, cap, &o, in + at, i - at);
        }
        keep = o;
    }
    if (keep >= cap || keep > INT_MAX) return -1;
    out[keep] = '\0';
    return (int)keep;
}

/* Does c keep the digits beside it as they are? */
static int
flow_digits_keep(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*' ||
           c == '#';
}

size_t
flow_digits_apply(const char *digits, const char *in, size_t len, char *out,
                  size_t cap)
{
    const char *d[10];
    size_t dl[10], o = 0, i = 0;
    if (cap == 0) return 0;
    /* the ten digits, each one code point */
    const char *p = digits;
    size_t n = 0, plen = digits ? strlen(digits) : 0;
    while (digits != NULL && n < 10) {
        size_t at = (size_t)(p - digits), next = at;
        uint32_t cp;
        if (flow_utf8_next(digits, plen, &next, &cp) != 0) break;
        d[n] = p;
        dl[n] = next - at;
        n++;
        p = digits + next;
    }
    if (n != 10 || *p != '\0') {
        size_t c = len < cap ? len : cap - 1;
        memcpy(out, in, c);
        out[c] = '\0';
        return c;
    }
    while (i < len) {
        if (in[i] < '0' || in[i] > '9') {
            if (o + 1 >= cap) goto whole;
            out[o++] = in[i++];
            continue;
        }
        size_t e = i;
        while (e < len && in[e] >= '0' && in[e] <= '9')
            e++;
        int keep = (i > 0 && flow_digits_keep(in[i - 1])) ||
                   (e < len && flow_digits_keep(in[e]));
        for (; i < e; i++) {
            const char *s = keep ? &in[i] : d[in[i] - '0'];
            size_t sl = keep ? 1 : dl[in[i] - '0'];
            if (o + sl >= cap) goto whole;
            memcpy(out + o, s, sl);
            o += sl;
        }
    }
    out[o] = '\0';
    return o;
whole:
    /* out of room: the text as it came, never half of each */
    return flow_digits_apply(NULL, in, len, out, cap);
}

/* Contract in flow_int.h. */
void
flow_buf_put(struct flow_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}
