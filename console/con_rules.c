/*
 * con_rules.c -- what the API and the command line agree on: usernames,
 * the password rules (length in characters, a list of common passwords),
 * the district codes officers may be given, roles, tokens.
 *
 * The lists are read once (at start, or by the command) into sorted
 * arrays searched with bsearch; passwords are compared lower-cased, so
 * "Password1" is as refused as "password1".
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libconfig.h>
#include <sodium.h>

#include "console/con_int.h"

struct con_pwlist {
    char **w;
    size_t n;
};

struct con_codes {
    char **w;
    size_t n;
};

_Noreturn void
con_assert_fail(const char *func, const char *file, int line, const char *cond)
{
    fprintf(stderr, "assertion failed: %s %s:%d: %s\n", func, file, line, cond);
    abort();
}

unsigned
con_role_bit(const char *name)
{
#define CON_X_BIT(id, nm, bit)                                                 \
    if (name != NULL && strcmp(name, nm) == 0) return bit;
    CON_ROLES(CON_X_BIT)
#undef CON_X_BIT
    return 0;
}

const char *
con_role_name(unsigned b)
{
#define CON_X_NAME(id, nm, bit)                                                \
    if (b == (bit)) return nm;
    CON_ROLES(CON_X_NAME)
#undef CON_X_NAME
    return NULL;
}

static int
con_strp_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
con_words_free(char **w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i]);
    free(w);
}

/* Append a copy of s to *w.  0 or -1. */
static int
con_words_add(char ***w, size_t *n, size_t *cap, const char *s, size_t len)
{
    char *c;

    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        char **nw = realloc(*w, nc * sizeof(*nw));
        if (nw == NULL) return -1;
        *w = nw;
        *cap = nc;
    }
    if ((c = malloc(len + 1)) == NULL) return -1;
    memcpy(c, s, len);
    c[len] = '\0';
    (*w)[(*n)++] = c;
    return 0;
}

static void
con_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

struct con_pwlist *
con_pwlist_load(const char *path, char *err, size_t errlen)
{
    struct con_pwlist *l = calloc(1, sizeof(*l));
    FILE *f = fopen(path, "r");
    char line[512];
    size_t cap = 0;
    int lineno = 0;

    if (l == NULL || f == NULL) {
        snprintf(err, errlen, "%s: cannot read the common-password list", path);
        goto fail;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strcspn(line, "\r\n");
        lineno++;
        line[len] = '\0';
        if (len == 0 || line[0] == '#') continue;
        con_lower(line);
        if (con_words_add(&l->w, &l->n, &cap, line, len) != 0) {
            snprintf(err, errlen, "%s:%d: out of memory", path, lineno);
            goto fail;
        }
    }
    fclose(f);
    if (l->n == 0) {
        snprintf(err, errlen, "%s: the common-password list is empty", path);
        con_pwlist_free(l);
        return NULL;
    }
    qsort(l->w, l->n, sizeof(*l->w), con_strp_cmp);
    return l;
fail:
    if (f) fclose(f);
    con_pwlist_free(l);
    return NULL;
}

int
con_pwlist_has(const struct con_pwlist *l, const char *pw)
{
    char low[CON_PW_MAX * 4 + 1];
    const char *key = low;

    if (l == NULL || strlen(pw) >= sizeof(low)) return 0;
    memcpy(low, pw, strlen(pw) + 1);
    con_lower(low);
    return bsearch(&key, l->w, l->n, sizeof(*l->w), con_strp_cmp) != NULL;
}

void
con_pwlist_free(struct con_pwlist *l)
{
    if (l == NULL) return;
    con_words_free(l->w, l->n);
    free(l);
}

struct con_codes *
con_districts_load(const char *lists_dir, char *err, size_t errlen)
{
    struct con_codes *c = calloc(1, sizeof(*c));
    char path[1024];
    config_t cf;
    config_setting_t *items;
    size_t cap = 0;

    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/districts.conf", lists_dir);
    config_init(&cf);
    if (config_read_file(&cf, path) != CONFIG_TRUE) {
        snprintf(err, errlen, "%s:%d: %s", path, config_error_line(&cf),
                 config_error_text(&cf) ? config_error_text(&cf)
                                        : "cannot read");
        goto fail;
    }
    items = config_lookup(&cf, "items");
    for (int i = 0; items && i < config_setting_length(items); i++) {
        const char *code = NULL;
        config_setting_t *it = config_setting_get_elem(items, (unsigned)i);
        if (config_setting_lookup_string(it, "code", &code) == CONFIG_TRUE &&
            con_words_add(&c->w, &c->n, &cap, code, strlen(code)) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    config_destroy(&cf);
    if (c->n == 0) {
        snprintf(err, errlen, "%s: no district codes", path);
        con_codes_free(c);
        return NULL;
    }
    qsort(c->w, c->n, sizeof(*c->w), con_strp_cmp);
    return c;
fail:
    config_destroy(&cf);
    con_codes_free(c);
    return NULL;
}

int
con_codes_has(const struct con_codes *c, const char *code)
{
    return c != NULL && code != NULL &&
           bsearch(&code, c->w, c->n, sizeof(*c->w), con_strp_cmp) != NULL;
}

void
con_codes_free(struct con_codes *c)
{
    if (c == NULL) return;
    con_words_free(c->w, c->n);
    free(c);
}

const char *
con_username_check(const char *u)
{
    size_t n = u ? strlen(u) : 0;

    if (n < 3 || n > CON_USERNAME_MAX)
        return "a username has 3 to 32 characters";
    if (!((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= '0' && u[0] <= '9')))
        return "a username starts with a small letter or a digit";
    for (size_t i = 0; i < n; i++)
        if (!((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= '0' && u[i] <= '9') ||
              u[i] == '.' || u[i] == '_' || u[i] == '-'))
            return "a username has small letters, digits, '.', '_' and '-'"
                   " only";
    return NULL;
}

/* Characters (UTF-8 sequences) in s, or -1 when s is not UTF-8. */
static long
con_utf8_chars(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;

    while (*p) {
        int more = *p < 0x80             ? 0
                   : (*p & 0xE0) == 0xC0 ? 1
                   : (*p & 0xF0) == 0xE0 ? 2
                   : (*p & 0xF8) == 0xF0 ? 3
                                         : -1;
        if (more < 0) return -1;
        p++;
        for (int i = 0; i < more; i++, p++)
            if ((*p & 0xC0) != 0x80) return -1;
        n++;
    }
    return n;
}

const char *
con_password_check(const struct con_pwlist *common, const char *username,
                   const char *pw)
{
    long n = pw ? con_utf8_chars(pw) : -1;

    if (n < 0) return "the password is not UTF-8 text";
    if (n < CON_PW_MIN) return "a password has at least 8 characters";
    if (n > CON_PW_MAX) return "a password has at most 128 characters";
    if (strlen(pw) > CON_PW_MAX * 4) return "the password is too long";
    if (username != NULL && strcasecmp(pw, username) == 0)
        return "the password may not be the username";
    if (con_pwlist_has(common, pw))
        return "this password is in the list of common passwords";
    return NULL;
}

void
con_random_hex(char *out, size_t n)
{
    unsigned char b[64];

    CON_AN(n <= sizeof(b));
    randombytes_buf(b, n);
    sodium_bin2hex(out, n * 2 + 1, b, n);
    sodium_memzero(b, sizeof(b));
}

void
con_sha256_hex(const char *s, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
    sodium_bin2hex(out, 65, h, sizeof(h));
}
