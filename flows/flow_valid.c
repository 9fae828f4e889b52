/*
 * flow_valid.c -- validators for free-text answers.
 *
 * Each takes an input already normalised by flow_text_normalise() (Bangla
 * digits are ASCII by now) and either writes the canonical value and returns
 * NULL, or returns the id of the messages.conf text that tells the caller
 * what was wrong.  They check shape only: an NID's check digit has no public
 * algorithm, and an officer checks the person against the document.
 *
 * Inputs reach this file from callers on a keypad and from the fuzzer, so
 * nothing here trusts them: UTF-8 is decoded strictly, every copy is bounded,
 * and the numbers are small enough that no sum can overflow.
 */
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "flows/flow_int.h"

#define FLOW_VALID_NUM_DIGITS 9   /* age, number: at most 999999999 */
#define FLOW_VALID_REGEX_MAX  512 /* longest pattern, bytes */

/* The closed set of validators, by the name flow files use. */
#define FLOW_VALIDATORS(X)                                                     \
    X(name)                                                                    \
    X(year)                                                                    \
    X(age)                                                                     \
    X(number)                                                                  \
    X(nid)                                                                     \
    X(passport)                                                                \
    X(id)                                                                      \
    X(phone)                                                                   \
    X(regex)

#define X(v)                                                                   \
    static const char *flow_valid_##v(const struct flow_vparam *p,             \
                                      const char *in, int year, char *out,     \
                                      size_t cap);
FLOW_VALIDATORS(X)
#undef X

static const struct flow_validator {
    const char *name;
    const char *(*fn)(const struct flow_vparam *p, const char *in, int year,
                      char *out, size_t cap);
} flow_validators[] = {
#define X(v) {#v, flow_valid_##v},
    FLOW_VALIDATORS(X)
#undef X
};

#define FLOW_NVALIDATORS (sizeof(flow_validators) / sizeof(flow_validators[0]))

/* Copy n bytes and a NUL to out; -1 if they do not fit. */
static int
flow_valid_put(const char *v, size_t n, char *out, size_t cap)
{
    if (n >= cap) return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

static int
flow_valid_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The digits of in, which may be split into groups by runs of spaces and
 * dashes (as people copy a number off a card).  Returns how many, or -1 for
 * any other character, a separator at either end, or more than cap - 1
 * digits. */
static int
flow_valid_digits(const char *in, char *buf, size_t cap)
{
    size_t n = 0;
    const char *s;

    if (!flow_valid_is_digit(in[0])) return -1;
    for (s = in; *s != '\0'; s++) {
        if (flow_valid_is_digit(*s)) {
            if (n + 1 >= cap) return -1;
            buf[n++] = *s;
        } else if (*s != ' ' && *s != '-') {
            return -1;
        }
    }
    if (!flow_valid_is_digit(s[-1])) return -1;
    buf[n] = '\0';
    return (int)n;
}

/* ------------------------------------------------------------------------
 * name
 */

enum flow_name_class {
    FLOW_NC_OTHER = 0, /* not allowed in a name */
    FLOW_NC_SPACE,
    FLOW_NC_PUNCT,      /* . - ' */
    FLOW_NC_LATIN,      /* a Latin letter */
    FLOW_NC_LATIN_MARK, /* a combining accent, after a Latin letter */
    FLOW_NC_BN,         /* a Bangla letter */
    FLOW_NC_BN_MARK,    /* vowel sign, hasanta, candrabindu ... */
    FLOW_NC_JOINER,     /* ZWJ, ZWNJ: only inside a Bangla word */
};

/* Assigned code points of the Bangla block, as [first, last, class]. */
static const struct {
    uint16_t lo, hi;
    uint8_t cls;
} flow_name_bangla[] = {
    {0x0981, 0x0983, FLOW_NC_BN_MARK}, /* candrabindu, anusvara, visarga */
    {0x0985, 0x098C, FLOW_NC_BN},      /* independent vowels */
    {0x098F, 0x0990, FLOW_NC_BN},
    {0x0993, 0x09A8, FLOW_NC_BN}, /* vowels, consonants */
    {0x09AA, 0x09B0, FLOW_NC_BN},
    {0x09B2, 0x09B2, FLOW_NC_BN},
    {0x09B6, 0x09B9, FLOW_NC_BN},
    {0x09BC, 0x09BC, FLOW_NC_BN_MARK}, /* nukta */
    {0x09BD, 0x09BD, FLOW_NC_BN_MARK}, /* avagraha */
    {0x09BE, 0x09C4, FLOW_NC_BN_MARK}, /* vowel signs */
    {0x09C7, 0x09C8, FLOW_NC_BN_MARK},
    {0x09CB, 0x09CD, FLOW_NC_BN_MARK}, /* ... and hasanta */
    {0x09CE, 0x09CE, FLOW_NC_BN},      /* khanda ta */
    {0x09D7, 0x09D7, FLOW_NC_BN_MARK}, /* au length mark */
    {0x09DC, 0x09DD, FLOW_NC_BN},      /* rra, rha */
    {0x09DF, 0x09E1, FLOW_NC_BN},      /* yya, vocalic rr, ll */
    {0x09E2, 0x09E3, FLOW_NC_BN_MARK},
    {0x09F0, 0x09F1, FLOW_NC_BN}, /* ra, wa with middle/lower bar */
};

static enum flow_name_class
flow_name_classify(uint32_t cp)
{
    if (cp == ' ') return FLOW_NC_SPACE;
    if (cp == '.' || cp == '-' || cp == '\'') return FLOW_NC_PUNCT;
    if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z'))
        return FLOW_NC_LATIN;
    /* Latin-1 Supplement and Latin Extended-A/B letters, not x and / */
    if (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7)
        return FLOW_NC_LATIN;
    if (cp >= 0x300 && cp <= 0x36F) return FLOW_NC_LATIN_MARK;
    if (cp == 0x200C || cp == 0x200D) return FLOW_NC_JOINER;
    for (size_t k = 0; k < sizeof(flow_name_bangla) / sizeof(*flow_name_bangla);
         k++)
        if (cp >= flow_name_bangla[k].lo && cp <= flow_name_bangla[k].hi)
            return (enum flow_name_class)flow_name_bangla[k].cls;
    return FLOW_NC_OTHER; /* digits, symbols, Bangla digits and signs */
}

/* 2..60 characters of Bangla or Latin letters, spaces and . - '; at least
 * two letters; one script per word; marks and joiners only where they can
 * belong to the letter before them. */
static const char *
flow_valid_name(const struct flow_vparam *p, const char *in, int year,
                char *out, size_t cap)
{
    size_t len = strlen(in), i = 0, chars = 0, letters = 0;
    enum flow_name_class prev = FLOW_NC_SPACE;
    int script = 0; /* of the current word: FLOW_NC_LATIN or FLOW_NC_BN */
    uint32_t cp;

    (void)p;
    (void)year;
    while (i < len) {
        if (flow_utf8_next(in, len, &i, &cp) < 0) return "invalid_name";
        enum flow_name_class c = flow_name_classify(cp);
        if (prev == FLOW_NC_JOINER && c != FLOW_NC_BN && c != FLOW_NC_BN_MARK)
            return "invalid_name";
        switch (c) {
        case FLOW_NC_OTHER:
            return "invalid_name";
        case FLOW_NC_SPACE:
            script = 0;
            break;
        case FLOW_NC_PUNCT:
            break;
        case FLOW_NC_LATIN:
        case FLOW_NC_BN:
            if (script != 0 && script != (int)c) return "invalid_name";
            script = (int)c;
            letters++;
            break;
        case FLOW_NC_LATIN_MARK:
            if (prev != FLOW_NC_LATIN && prev != FLOW_NC_LATIN_MARK)
                return "invalid_name";
            break;
        case FLOW_NC_BN_MARK:
            if (prev != FLOW_NC_BN && prev != FLOW_NC_BN_MARK &&
                prev != FLOW_NC_JOINER)
                return "invalid_name";
            break;
        case FLOW_NC_JOINER:
            if (prev != FLOW_NC_BN && prev != FLOW_NC_BN_MARK)
                return "invalid_name";
            break;
        }
        prev = c;
        chars++;
    }
    if (prev == FLOW_NC_JOINER || chars < 2 || chars > 60 || letters < 2)
        return "invalid_name";
    return flow_valid_put(in, len, out, cap) ? "invalid" : NULL;
}

/* ------------------------------------------------------------------------
 * Numbers
 */

/* 1..max_digits ASCII digits and nothing else, as a value. */
static int
flow_valid_uint(const char *in, size_t max_digits, long *v)
{
    size_t n = strlen(in);

    if (n == 0 || n > max_digits) return -1;
    *v = 0;
    for (size_t k = 0; k < n; k++) {
        if (!flow_valid_is_digit(in[k])) return -1;
        *v = *v * 10 + (in[k] - '0');
    }
    return 0;
}

/* v - base within the bounds p gives; base is 0 or the current year, v at
 * most 999999999, so the difference cannot overflow. */
static int
flow_valid_in_range(const struct flow_vparam *p, long v, long base)
{
    long d = v - base;
    return !(p->have_min && d < p->min) && !(p->have_max && d > p->max);
}

/* Four digits within min..max years of the current year; stored as typed. */
static const char *
flow_valid_year(const struct flow_vparam *p, const char *in, int year,
                char *out, size_t cap)
{
    long v;

    if (strlen(in) != 4 || flow_valid_uint(in, 4, &v) < 0 ||
        !flow_valid_in_range(p, v, year))
        return "invalid_year";
    return flow_valid_put(in, 4, out, cap) ? "invalid" : NULL;
}

/* A whole number within min..max; stored without leading zeros. */
static const char *
flow_valid_count(const struct flow_vparam *p, const char *in, const char *why,
                 char *out, size_t cap)
{
    char buf[16];
    long v;

    if (flow_valid_uint(in, FLOW_VALID_NUM_DIGITS, &v) < 0 ||
        !flow_valid_in_range(p, v, 0))
        return why;
    int n = snprintf(buf, sizeof(buf), "%ld", v);
    return flow_valid_put(buf, (size_t)n, out, cap) ? "invalid" : NULL;
}

static const char *
flow_valid_age(const struct flow_vparam *p, const char *in, int year, char *out,
               size_t cap)
{
    (void)year;
    return flow_valid_count(p, in, "invalid_age", out, cap);
}

static const char *
flow_valid_number(const struct flow_vparam *p, const char *in, int year,
                  char *out, size_t cap)
{
    (void)year;
    return flow_valid_count(p, in, "invalid_number", out, cap);
}

/* ------------------------------------------------------------------------
 * Documents and phone numbers
 */

/* Bangladesh NID: 10 digits (smart card), 13 (old laminated card) or 17
 * (the 13 with the birth year in front); stored as digits only. */
static const char *
flow_valid_nid(const struct flow_vparam *p, const char *in, int year, char *out,
               size_t cap)
{
    char buf[24];
    int n;

    (void)p;
    (void)year;
    n = flow_valid_digits(in, buf, sizeof(buf));
    if (n != 10 && n != 13 && n != 17) return "invalid_nid";
    return flow_valid_put(buf, (size_t)n, out, cap) ? "invalid" : NULL;
}

/* Bangladesh passport: nine characters, one or two letters then digits
 * (e-passport A01234567, machine-readable EB0123456); any case, spaces
 * ignored, stored upper-case. */
static const char *
flow_valid_passport(const struct flow_vparam *p, const char *in, int year,
                    char *out, size_t cap)
{
    char buf[10];
    size_t n = 0, letters = 0;

    (void)p;
    (void)year;
    for (const char *s = in; *s != '\0'; s++) {
        char c = *s;
        if (c == ' ') continue;
        if (n == 9) return "invalid_passport";
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        if (c >= 'A' && c <= 'Z') {
            if (n != letters) /* a letter after a digit */
                return "invalid_passport";
            letters++;
        } else if (!flow_valid_is_digit(c)) {
            return "invalid_passport";
        }
        buf[n++] = c;
    }
    if (n != 9 || letters < 1 || letters > 2) return "invalid_passport";
    return flow_valid_put(buf, n, out, cap) ? "invalid" : NULL;
}

/* Either document in one answer, to save the caller a screen: with a
 * letter in it a passport number, else an NID; stored as those are. */
static const char *
flow_valid_id(const struct flow_vparam *p, const char *in, int year, char *out,
              size_t cap)
{
    int letter = 0;
    for (const char *s = in; *s != '\0'; s++)
        letter |= (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z');
    if ((letter ? flow_valid_passport : flow_valid_nid)(p, in, year, out,
                                                        cap) != NULL)
        return "invalid_id";
    return NULL;
}

/* Bangladesh mobile: 01[3-9] and 8 more digits, as dialled at home
 * (01712345678) or with the country code (8801712345678, +8801712345678,
 * 008801712345678); spaces and dashes between digits are fine.  Stored
 * as 8801712345678. */
static const char *
flow_valid_phone(const struct flow_vparam *p, const char *in, int year,
                 char *out, size_t cap)
{
    char buf[24], canon[14];
    const char *sub; /* the 10 digits after the trunk 0 or 880 */
    int plus = in[0] == '+';
    int n;

    (void)p;
    (void)year;
    n = flow_valid_digits(in + plus, buf, sizeof(buf));
    if (n == 13 && strncmp(buf, "880", 3) == 0)
        sub = buf + 3;
    else if (!plus && n == 11 && buf[0] == '0')
        sub = buf + 1;
    else if (!plus && n == 15 && strncmp(buf, "00880", 5) == 0)
        sub = buf + 5;
    else
        return "invalid_phone";
    if (sub[0] != '1' || sub[1] < '3' || sub[1] > '9') return "invalid_phone";
    memcpy(canon, "880", 3);
    memcpy(canon + 3, sub, 10);
    return flow_valid_put(canon, 13, out, cap) ? "invalid" : NULL;
}

/* ------------------------------------------------------------------------
 * regex
 */

/* The whole input matches the flow's POSIX extended pattern.  A pattern
 * that does not compile (the linter should have caught it) refuses every
 * answer rather than accepting any. */
static const char *
flow_valid_regex(const struct flow_vparam *p, const char *in, int year,
                 char *out, size_t cap)
{
    char pat[FLOW_VALID_REGEX_MAX + 8];
    regex_t re;
    int rc;

    (void)year;
    if (p->regex == NULL || strlen(p->regex) > FLOW_VALID_REGEX_MAX)
        return "invalid_format";
    snprintf(pat, sizeof(pat), "^(%s)$", p->regex);
    if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
        return "invalid_format";
    rc = regexec(&re, in, 0, NULL, 0);
    regfree(&re);
    if (rc != 0) return "invalid_format";
    return flow_valid_put(in, strlen(in), out, cap) ? "invalid" : NULL;
}

/* ------------------------------------------------------------------------
 * Entry points
 */

static const struct flow_validator *
flow_validator_find(const char *name)
{
    if (name == NULL) return NULL;
    for (size_t k = 0; k < FLOW_NVALIDATORS; k++)
        if (strcmp(flow_validators[k].name, name) == 0)
            return &flow_validators[k];
    return NULL;
}

/* Contract in flow.h. */
int
flow_validator_known(const char *name)
{
    return flow_validator_find(name) != NULL;
}

/* Contract in flow.h.  out is "" whenever the answer is refused; a missing
 * p counts as no bounds and no pattern. */
const char *
flow_validate(const char *name, const struct flow_vparam *p, const char *in,
              int year, char *out, size_t cap)
{
    static const struct flow_vparam none;
    const struct flow_validator *v = flow_validator_find(name);

    if (out == NULL || cap == 0) return "invalid";
    out[0] = '\0';
    if (v == NULL || in == NULL) return "invalid";
    const char *why = v->fn(p != NULL ? p : &none, in, year, out, cap);
    if (why != NULL) out[0] = '\0';
    return why;
}
