/*
 * flow_valid.c -- validators for free-text answers.
 *
 * Each takes an input already normalised by flow_text_normalise() (Bangla
 * digits are ASCII by now) and either writes the canonical value and returns
 * NULL, or returns the id of the messages.conf text that tells the caller
 * what was wrong.  They check shape only: an NID's check digit has no public
 * algorithm, and the officer verifies the person against the document.
 */
#include <regex.h>
#include <string.h>

#include "flows/flow_model.h"

typedef const char *flow_valid_fn(const struct flow_vparam *p, const char *in,
                                  int year, char *out, size_t cap);

/* Copy the digits of in, allowing single spaces and dashes between them. */
static int
flow_valid_digits(const char *in, char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n + 1 >= cap)
                return -1;
            buf[n++] = *p;
        } else if ((*p == ' ' || *p == '-') && n > 0 && p[1] >= '0' &&
                   p[1] <= '9') {
            continue;
        } else {
            return -1;
        }
    }
    buf[n] = '\0';
    return (int)n;
}

static int
flow_valid_put(const char *v, char *out, size_t cap)
{
    size_t n = strlen(v);
    if (n + 1 > cap)
        return -1;
    memcpy(out, v, n + 1);
    return 0;
}

/* A person's name: letters of one script per word, spaces, . - ' */
static const char *
flow_valid_name(const struct flow_vparam *p, const char *in, int year,
                char *out, size_t cap)
{
    (void)p;
    (void)year;
    size_t len = strlen(in), i = 0, chars = 0, letters = 0;
    int script = 0; /* of the current word: 1 Latin, 2 Bangla */
    while (i < len) {
        const unsigned char *u = (const unsigned char *)in + i;
        uint32_t cp;
        size_t n;
        if (u[0] < 0x80) {
            cp = u[0];
            n = 1;
        } else if ((u[0] & 0xE0) == 0xC0) {
            cp = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
            n = 2;
        } else if ((u[0] & 0xF0) == 0xE0) {
            cp = (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 |
                 (u[2] & 0x3F);
            n = 3;
        } else {
            return "invalid_name";
        }
        i += n;
        chars++;
        int s = 0;
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
            (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7))
            s = 1;
        else if (cp >= 0x0980 && cp <= 0x09FF &&
                 !(cp >= 0x09E6 && cp <= 0x09EF))
            s = 2;
        if (s != 0) {
            if (script != 0 && script != s)
                return "invalid_name";
            script = s;
            letters++;
        } else if (cp == 0x200C || cp == 0x200D) {
            if (script != 2)
                return "invalid_name";
        } else if (cp == ' ') {
            script = 0;
        } else if (cp != '.' && cp != '-' && cp != '\'') {
            return "invalid_name";
        }
    }
    if (chars < 2 || chars > 60 || letters < 2)
        return "invalid_name";
    return flow_valid_put(in, out, cap) ? "invalid" : NULL;
}

/* A whole number of at most 9 digits within [lo, hi]. */
static int
flow_valid_long(const char *in, long *v)
{
    size_t n = strlen(in);
    if (n == 0 || n > 9)
        return -1;
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] < '0' || in[i] > '9')
            return -1;
        *v = *v * 10 + (in[i] - '0');
    }
    return 0;
}

static const char *
flow_valid_range(const struct flow_vparam *p, const char *in, long base,
                 const char *why, char *out, size_t cap)
{
    long v;
    char buf[32];
    if (flow_valid_long(in, &v) < 0)
        return why;
    if ((p->have_min && v < base + p->min) ||
        (p->have_max && v > base + p->max))
        return why;
    snprintf(buf, sizeof(buf), "%ld", v);
    return flow_valid_put(buf, out, cap) ? "invalid" : NULL;
}

static const char *
flow_valid_year(const struct flow_vparam *p, const char *in, int year,
                char *out, size_t cap)
{
    if (strlen(in) != 4)
        return "invalid_year";
    return flow_valid_range(p, in, year, "invalid_year", out, cap);
}

static const char *
flow_valid_age(const struct flow_vparam *p, const char *in, int year,
               char *out, size_t cap)
{
    (void)year;
    return flow_valid_range(p, in, 0, "invalid_age", out, cap);
}

static const char *
flow_valid_number(const struct flow_vparam *p, const char *in, int year,
                  char *out, size_t cap)
{
    (void)year;
    return flow_valid_range(p, in, 0, "invalid_number", out, cap);
}

/* Bangladesh NID: 10 (smart card), 13 (old) or 17 (13 with birth year). */
static const char *
flow_valid_nid(const struct flow_vparam *p, const char *in, int year,
               char *out, size_t cap)
{
    (void)p;
    (void)year;
    char buf[32];
    int n = flow_valid_digits(in, buf, sizeof(buf));
    if (n != 10 && n != 13 && n != 17)
        return "invalid_nid";
    return flow_valid_put(buf, out, cap) ? "invalid" : NULL;
}

/* Bangladesh passport: nine characters, one or two letters then digits
 * (e-passport A01234567, machine-readable EB0123456). */
static const char *
flow_valid_passport(const struct flow_vparam *p, const char *in, int year,
                    char *out, size_t cap)
{
    (void)p;
    (void)year;
    char buf[16];
    size_t n = 0, letters = 0;
    for (const char *s = in; *s; s++) {
        char c = *s;
        if (c == ' ')
            continue;
        if (n + 1 >= sizeof(buf))
            return "invalid_passport";
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c >= 'A' && c <= 'Z') {
            if (n != letters)
                return "invalid_passport";
            letters++;
        } else if (c < '0' || c > '9') {
            return "invalid_passport";
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    if (letters < 1 || letters > 2 || n != 9)
        return "invalid_passport";
    return flow_valid_put(buf, out, cap) ? "invalid" : NULL;
}

/* Bangladesh mobile: 01[3-9] and 8 digits, optionally +880/880/00880. */
static const char *
flow_valid_phone(const struct flow_vparam *p, const char *in, int year,
                 char *out, size_t cap)
{
    (void)p;
    (void)year;
    char buf[32], canon[16];
    const char *s = in;
    if (s[0] == '+')
        s++;
    int n = flow_valid_digits(s, buf, sizeof(buf));
    const char *d = buf;
    if (n < 0)
        return "invalid_phone";
    if (n == 15 && strncmp(d, "00880", 5) == 0)
        d += 4;
    else if (n == 13 && strncmp(d, "880", 3) == 0)
        d += 2;
    else if (in[0] == '+' || n != 11)
        return "invalid_phone";
    if (strlen(d) != 11 || d[0] != '0' || d[1] != '1' || d[2] < '3')
        return "invalid_phone";
    memcpy(canon, "88", 2);
    memcpy(canon + 2, d, 12); /* 11 digits and the NUL */
    return flow_valid_put(canon, out, cap) ? "invalid" : NULL;
}

static const char *
flow_valid_regex(const struct flow_vparam *p, const char *in, int year,
                 char *out, size_t cap)
{
    (void)year;
    char pat[512];
    regex_t re;
    if (p->regex == NULL ||
        (size_t)snprintf(pat, sizeof(pat), "^(%s)$", p->regex) >= sizeof(pat))
        return "invalid_format";
    if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
        return "invalid_format";
    int rc = regexec(&re, in, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        return "invalid_format";
    return flow_valid_put(in, out, cap) ? "invalid" : NULL;
}

static const struct {
    const char *name;
    flow_valid_fn *fn;
} flow_validators[] = {
    {"name", flow_valid_name},       {"year", flow_valid_year},
    {"age", flow_valid_age},         {"number", flow_valid_number},
    {"nid", flow_valid_nid},         {"passport", flow_valid_passport},
    {"phone", flow_valid_phone},     {"regex", flow_valid_regex},
};

int
flow_validator_known(const char *name)
{
    for (size_t i = 0; i < sizeof(flow_validators) / sizeof(*flow_validators);
         i++)
        if (name && strcmp(flow_validators[i].name, name) == 0)
            return 1;
    return 0;
}

const char *
flow_validate(const char *name, const struct flow_vparam *p, const char *in,
              int year, char *out, size_t cap)
{
    static const struct flow_vparam none;
    if (p == NULL)
        p = &none;
    for (size_t i = 0; i < sizeof(flow_validators) / sizeof(*flow_validators);
         i++)
        if (name && strcmp(flow_validators[i].name, name) == 0)
            return flow_validators[i].fn(p, in, year, out, cap);
    return "invalid";
}
