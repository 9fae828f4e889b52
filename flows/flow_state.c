/*
 * flow_state.c -- a dialogue's state as one compact string (the Redis value).
 *
 * Format: form-encoded pairs, version first, for example
 *
 *   v=1&f=register&n=name&h=main&l=bn&k=3f..&c=0&s=7&p=0&t=0&g=0&a=..&u=..
 *   &H=lang,consent&A.sex=f&A.name=Rahima%20Begum
 *
 * q (the letters typed to search a list) and d (the parts saved) are there
 * only when not empty.
 *
 * Text values are percent-encoded, so the string never holds '&', '=' or
 * control bytes of its own.  The parser is strict: an unknown key, a
 * repeated key, a value out of range, an id with a character ids cannot
 * have, or another version makes the whole value FLOW_ESTATE.  A foreign or
 * corrupt value in Redis then costs the caller a fresh start, never a crash
 * or a half-understood dialogue.  It is fuzzed (tests/fuzz/fuzz_state.c).
 */
#include <string.h>

#include "flows/flow_int.h"
#include "flows/flow_model.h"

static void
flow_st_esc(struct flow_buf *b, const char *s)
{
    static const char hx[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
            c == ',') {
            flow_buf_put(b, s, 1);
        } else {
            char e[3] = {'%', hx[c >> 4], hx[c & 15]};
            flow_buf_put(b, e, 3);
        }
    }
}

static void
flow_st_kv(struct flow_buf *b, const char *k, const char *v)
{
    if (b->len > 0) flow_buf_put(b, "&", 1);
    flow_buf_put(b, k, strlen(k));
    flow_buf_put(b, "=", 1);
    flow_st_esc(b, v);
}

static void
flow_st_num(struct flow_buf *b, const char *k, long long v)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", v);
    flow_st_kv(b, k, num);
}

int
flow_state_encode(const struct flow_state *st, char *buf, size_t cap)
{
    struct flow_buf b = {.buf = buf, .cap = cap};
    if (cap == 0) return -1;
    buf[0] = '\0';
    flow_st_num(&b, "v", FLOW_STATE_VERSION);
    flow_st_kv(&b, "f", st->flow);
    flow_st_kv(&b, "n", st->node);
    flow_st_kv(&b, "h", st->home);
    flow_st_kv(&b, "l", st->lang);
    flow_st_kv(&b, "k", st->key);
    flow_st_kv(&b, "w", st->why);
    flow_st_num(&b, "c", st->channel);
    flow_st_num(&b, "s", st->step);
    flow_st_num(&b, "p", st->page);
    flow_st_num(&b, "t", st->tries);
    flow_st_num(&b, "g", st->flags);
    flow_st_num(&b, "a", st->started);
    flow_st_num(&b, "u", st->updated);
    if (st->query[0] != '\0') flow_st_kv(&b, "q", st->query);
    if (st->parts != 0) flow_st_num(&b, "d", st->parts);
    flow_buf_put(&b, "&H=", 3);
    for (unsigned i = 0; i < st->nhist && i < FLOW_HIST_MAX; i++) {
        if (i) flow_buf_put(&b, ",", 1);
        flow_st_esc(&b, st->hist[i]);
    }
    for (unsigned i = 0; i < st->nanswers && i < FLOW_ANSWERS_MAX; i++) {
        flow_buf_put(&b, "&A.", 3);
        flow_st_esc(&b, st->answers[i].field);
        flow_buf_put(&b, "=", 1);
        flow_st_esc(&b, st->answers[i].value);
    }
    return b.overflow ? -1 : (int)b.len;
}

/* ------------------------------------------------------------------------
 * Parsing
 */

static int
flow_st_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (NUL-terminated, no NUL inside). */
static int
flow_st_unesc(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\0') return -1;
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = flow_st_hex(s[i + 1]), l = flow_st_hex(s[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = (char)(h << 4 | l);
            i += 2;
            if (c == '\0') return -1;
        }
        if (o + 1 >= cap) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (int)o;
}

static int
flow_st_id(const char *s, int empty_ok)
{
    size_t n = strlen(s);
    if (n == 0) return empty_ok;
    if (n >= FLOW_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_'))
            return 0;
    return 1;
}

static int
flow_st_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    if (*s == '\0' || strlen(s) > 20) return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        unsigned d = (unsigned)(*s - '0');
        if (d > max || v > (max - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static int
flow_st_field(struct flow_state *st, char key, const char *val, unsigned *seen)
{
    unsigned long long u;
    static const char keys[] = "vfnhlkwcsptgauHqd";
    const char *kp = strchr(keys, key);
    if (kp == NULL || key == '\0') return -1;
    unsigned bit = 1u << (kp - keys);
    if (*seen & bit) return -1;
    *seen |= bit;

    switch (key) {
    case 'v':
        return flow_st_uint(val, 1000, &u) && u == FLOW_STATE_VERSION ? 0 : -1;
    case 'f':
    case 'n':
    case 'h':
    case 'w': {
        char *dst = key == 'f'   ? st->flow
                    : key == 'n' ? st->node
                    : key == 'h' ? st->home
                                 : st->why;
        if (!flow_st_id(val, key == 'w')) return -1;
        flow_copy(dst, FLOW_ID_MAX, val);
        return 0;
    }
    case 'l': {
        size_t n = strlen(val);
        if (n != 0 && (n < 2 || n >= FLOW_LANG_MAX)) return -1;
        for (size_t i = 0; i < n; i++)
            if (val[i] < 'a' || val[i] > 'z') return -1;
        flow_copy(st->lang, sizeof(st->lang), val);
        return 0;
    }
    case 'k': {
        size_t n = strlen(val);
        if (n != 0 && n != FLOW_KEY_MAX - 1) return -1;
        for (size_t i = 0; i < n; i++)
            if (flow_st_hex(val[i]) < 0 || (val[i] >= 'A' && val[i] <= 'F'))
                return -1;
        flow_copy(st->key, sizeof(st->key), val);
        return 0;
    }
    case 'c':
        if (!flow_st_uint(val, 1, &u)) return -1;
        st->channel = (unsigned)u;
        return 0;
    case 's':
        if (!flow_st_uint(val, 0xFFFFFFFFull, &u)) return -1;
        st->step = (unsigned)u;
        return 0;
    case 'p':
        if (!flow_st_uint(val, 1000, &u)) return -1;
        st->page = (unsigned)u;
        return 0;
    case 't':
        if (!flow_st_uint(val, 1000, &u)) return -1;
        st->tries = (unsigned)u;
        return 0;
    case 'g':
        if (!flow_st_uint(val, 0x3FF, &u)) return -1;
        st->flags = (unsigned)u;
        return 0;
    case 'a':
    case 'u':
        if (!flow_st_uint(val, 1ull << 40, &u)) return -1;
        if (key == 'a')
            st->started = (int64_t)u;
        else
            st->updated = (int64_t)u;
        return 0;
    case 'd':
        if (!flow_st_uint(val, (1u << FLOW_PARTS_MAX) - 1, &u)) return -1;
        st->parts = (unsigned)u;
        return 0;
    case 'q':
        if (val[0] == '\0' || strlen(val) >= FLOW_QUERY_MAX ||
            !flow_utf8_valid(val, strlen(val)))
            return -1;
        flow_copy(st->query, sizeof(st->query), val);
        return 0;
    }
    return -1;
}

/* H=a,b,c: the raw (still encoded) list; ids need no escapes. */
static int
flow_st_hist(struct flow_state *st, const char *s, size_t n)
{
    st->nhist = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        if (j == i || j - i >= FLOW_ID_MAX || st->nhist == FLOW_HIST_MAX)
            return -1;
        memcpy(st->hist[st->nhist], s + i, j - i);
        st->hist[st->nhist][j - i] = '\0';
        if (!flow_st_id(st->hist[st->nhist], 0)) return -1;
        st->nhist++;
        i = j + 1;
        if (j + 1 == n && s[j] == ',') return -1; /* trailing comma */
    }
    return 0;
}

int
flow_state_decode(struct flow_state *st, const char *buf, size_t len)
{
    unsigned seen = 0;
    char val[FLOW_VALUE_MAX];
    memset(st, 0, sizeof(*st));
    if (buf == NULL || len == 0 || len > FLOW_STATE_MAX) goto bad;
    if (len < 4 || memcmp(buf, "v=", 2) != 0) goto bad;
    if (memchr(buf, '\0', len) != NULL) goto bad;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && buf[e] != '&')
            e++;
        const char *p = buf + i;
        size_t n = e - i;
        const char *eq = memchr(p, '=', n);
        if (eq == NULL) goto bad;
        size_t kl = (size_t)(eq - p);
        const char *v = eq + 1;
        size_t vl = n - kl - 1;
        if (kl > 2 && p[0] == 'A' && p[1] == '.') {
            if (st->nanswers == FLOW_ANSWERS_MAX) goto bad;
            struct flow_answer *a = &st->answers[st->nanswers];
            char field[FLOW_ID_MAX] = {0};
            if (flow_st_unesc(p + 2, kl - 2, field, sizeof(field)) < 0 ||
                !flow_st_id(field, 0) || flow_state_get(st, field) != NULL ||
                strcmp(field, "lang") == 0)
                goto bad;
            int vn = flow_st_unesc(v, vl, a->value, sizeof(a->value));
            if (vn < 0 || !flow_utf8_valid(a->value, (size_t)vn)) goto bad;
            memcpy(a->field, field, sizeof(field));
            st->nanswers++;
        } else if (kl == 1 && p[0] == 'H') {
            if (seen & (1u << 14)) goto bad;
            seen |= 1u << 14;
            if (flow_st_hist(st, v, vl) < 0) goto bad;
        } else if (kl == 1) {
            if (flow_st_unesc(v, vl, val, sizeof(val)) < 0 ||
                flow_st_field(st, p[0], val, &seen) < 0)
                goto bad;
        } else {
            goto bad;
        }
        if (e == len) break;
        i = e + 1;
        if (i == len) goto bad; /* trailing '&' */
    }
    /* v f n h c s are required */
    if ((seen & 0x18F) != 0x18F || (seen & 1u) == 0) goto bad;
    return 0;
bad:
    memset(st, 0, sizeof(*st));
    return FLOW_ESTATE;
}
