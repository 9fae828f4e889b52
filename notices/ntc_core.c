/*
 * ntc_core.c -- the pure rules of programme notices: no clock, no I/O.
 *
 * The send window is computed in Dhaka minutes (UTC+6, no DST).  Whatever
 * window it is given, 06:00-22:00 bounds it, so a bad config (or a struct
 * filled by hand) cannot open the night.  The validity handed to Kannel
 * is the time left in the window, so an SMSC that retries gives up before
 * the window closes.
 *
 * The token bucket counts SMS parts, as operators' contracts and Kannel's
 * throughput do.  A message larger than the bucket is let through when
 * the bucket is full and leaves it in debt, so the average rate holds.
 *
 * Templates know three placeholders; anything else in braces is refused
 * when the notice is written, not when it is sent.  Receipts are scanned
 * for id:, stat: and err: before the free "text:" field, which may quote
 * the message and so anything at all.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "flows/flow.h"
#include "gateway/gw_assert.h"
#include "notices/notices.h"

/* ------------------------------------------------------------------------
 * The send window
 */

static int
ntc_hhmm(const char *s, int *min)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != ':' ||
        s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9')
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || (h == 24 && m != 0)) return -1;
    *min = h * 60 + m;
    return 0;
}

/* Contract in notices.h. */
const char *
notices_window_parse(const char *s, struct notices_window *w)
{
    int open, close;

    AN(w);
    if (s == NULL || strlen(s) != 11 || s[5] != '-' || ntc_hhmm(s, &open) ||
        ntc_hhmm(s + 6, &close))
        return "send window must be HH:MM-HH:MM (Asia/Dhaka)";
    if (open >= close) return "send window must open before it closes";
    if (open < NOTICES_WINDOW_EARLIEST || close > NOTICES_WINDOW_LATEST)
        return "send window must lie inside 06:00-22:00 (Asia/Dhaka)";
    w->open_min = open;
    w->close_min = close;
    return NULL;
}

/* Floor division for times before 1970 (tests use any clock). */
static long long
ntc_floordiv(long long a, long long b)
{
    long long q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

/* Contract in notices.h. */
void
notices_window_at(const struct notices_window *w, long long now,
                  struct notices_slot *out)
{
    AN(w);
    AN(out);
    int open = w->open_min, close = w->close_min;
    if (open < NOTICES_WINDOW_EARLIEST) open = NOTICES_WINDOW_EARLIEST;
    if (close > NOTICES_WINDOW_LATEST) close = NOTICES_WINDOW_LATEST;
    if (open >= close) { /* nothing sane left: the default */
        open = NOTICES_WINDOW_OPEN_DEF;
        close = NOTICES_WINDOW_CLOSE_DEF;
    }

    long long local = now + NOTICES_TZ_OFFSET_S;
    long long day = ntc_floordiv(local, 86400);
    long long sec = local - day * 86400;                    /* 0..86399 */
    long long midnight = day * 86400 - NOTICES_TZ_OFFSET_S; /* UTC */
    long long t_open = midnight + open * 60LL;
    long long t_close = midnight + close * 60LL;

    memset(out, 0, sizeof(*out));
    out->minute_of_day = (int)(sec / 60);
    if (now >= t_open && t_close - now >= NOTICES_WINDOW_MIN_LEFT * 60LL) {
        long long left = (t_close - now) / 60; /* whole minutes, floor */
        out->open = 1;
        out->validity_min =
            (int)(left > NOTICES_VALIDITY_MAX ? NOTICES_VALIDITY_MAX : left);
        out->closes_at = t_close;
        return;
    }
    out->next_open = now < t_open ? t_open : t_open + 86400;
}

/* ------------------------------------------------------------------------
 * Token bucket
 */

static void
ntc_bucket_refill(struct notices_bucket *b, long long now_ms)
{
    if (now_ms <= b->last_ms) return; /* a clock that went back: no gift */
    b->tokens += b->rate * (double)(now_ms - b->last_ms) / 1000.0;
    if (b->tokens > b->burst) b->tokens = b->burst;
    b->last_ms = now_ms;
}

/* Contract in notices.h. */
void
notices_bucket_init(struct notices_bucket *b, double rate, double burst,
                    long long now_ms)
{
    AN(b);
    AN(rate > 0);
    if (burst <= 0) burst = rate;
    if (burst < 1) burst = 1;
    b->rate = rate;
    b->burst = burst;
    b->tokens = burst;
    b->last_ms = now_ms;
    b->hold_until = 0;
}

/* Contract in notices.h. */
long long
notices_bucket_take(struct notices_bucket *b, unsigned parts, long long now_ms)
{
    AN(b);
    if (now_ms < b->hold_until) return b->hold_until - now_ms;
    ntc_bucket_refill(b, now_ms);
    double need = (double)parts;
    if (need > b->burst) need = b->burst;
    if (b->tokens + 1e-9 >= need) {
        b->tokens -= (double)parts;
        return 0;
    }
    long long wait = (long long)((need - b->tokens) * 1000.0 / b->rate) + 1;
    return wait < 1 ? 1 : wait;
}

/* Contract in notices.h. */
long long
notices_bucket_wait(const struct notices_bucket *b, unsigned parts,
                    long long now_ms)
{
    AN(b);
    if (now_ms < b->hold_until) return b->hold_until - now_ms;
    double tokens = b->tokens;
    if (now_ms > b->last_ms)
        tokens += b->rate * (double)(now_ms - b->last_ms) / 1000.0;
    if (tokens > b->burst) tokens = b->burst;
    double need = (double)parts;
    if (need > b->burst) need = b->burst;
    if (tokens + 1e-9 >= need) return 0;
    long long wait = (long long)((need - tokens) * 1000.0 / b->rate) + 1;
    return wait < 1 ? 1 : wait;
}

/* Contract in notices.h. */
void
notices_bucket_hold(struct notices_bucket *b, long long now_ms,
                    long long hold_ms)
{
    AN(b);
    if (hold_ms < 0) hold_ms = 0;
    if (now_ms + hold_ms > b->hold_until) b->hold_until = now_ms + hold_ms;
    b->tokens = 0;
    b->last_ms = b->hold_until;
}

/* ------------------------------------------------------------------------
 * Per-person cap
 */

/* Contract in notices.h. */
const char *
notices_cap_check(const struct notices_cap *c)
{
    AN(c);
    if (c->max_n < 1 || c->max_n > 100) return "cap must allow 1..100 notices";
    if (c->days < 1 || c->days > 365) return "cap period must be 1..365 days";
    if (c->per_day < 1 || c->per_day > NOTICES_CAP_PER_DAY_MAX)
        return "daily cap must be 1..3 (BTRC: never more than 3 a day)";
    return NULL;
}

/* Contract in notices.h. */
int
notices_cap_allows(const struct notices_cap *c, const long long *sent, size_t n,
                   long long now)
{
    AN(c);
    int per_day = c->per_day;
    if (per_day > NOTICES_CAP_PER_DAY_MAX || per_day < 1)
        per_day = NOTICES_CAP_PER_DAY_MAX;
    long long period = (long long)c->days * 86400;
    long long in_period = 0, in_day = 0;

    for (size_t i = 0; i < n; i++) {
        long long age = now - sent[i];
        if (age < 0) age = 0; /* a send "in the future" counts as now */
        if (age < period) in_period++;
        if (age < 86400) in_day++;
    }
    return in_period < c->max_n && in_day < per_day;
}

/* ------------------------------------------------------------------------
 * Parts, cost, templates
 */

/* Contract in notices.h. */
void
notices_parts_count(const char *text, size_t len, struct notices_parts *p)
{
    enum flow_enc enc;
    unsigned units;

    AN(p);
    flow_text_measure(text, len, &enc, &units);
    p->ucs2 = enc == FLOW_ENC_UCS2;
    p->units = units;
    unsigned single = p->ucs2 ? NOTICES_UCS2_SINGLE : NOTICES_GSM7_SINGLE;
    unsigned multi = p->ucs2 ? NOTICES_UCS2_MULTI : NOTICES_GSM7_MULTI;
    if (units == 0)
        p->parts = 0;
    else if (units <= single)
        p->parts = 1;
    else
        p->parts = (units + multi - 1) / multi;
}

/* Contract in notices.h. */
long long
notices_cost_paisa(unsigned parts, long long price_paisa)
{
    return (long long)parts * price_paisa;
}

#define NTC_VARS(X)                                                            \
    X("code", code)                                                            \
    X("deadline", deadline)                                                    \
    X("phone", phone)

/* The placeholder at tpl[i] == '{': its value's index (0..2) and length
 * through '}', or -1. */
static int
ntc_placeholder(const char *tpl, size_t len, size_t i, size_t *plen)
{
    static const char *const names[] = {
#define NTC_X_NAME(name, field) name,
        NTC_VARS(NTC_X_NAME)
#undef NTC_X_NAME
    };
    for (int k = 0; k < (int)(sizeof(names) / sizeof(names[0])); k++) {
        size_t n = strlen(names[k]);
        if (i + n + 2 <= len && memcmp(tpl + i + 1, names[k], n) == 0 &&
            tpl[i + n + 1] == '}') {
            *plen = n + 2;
            return k;
        }
    }
    return -1;
}

/* Control characters other than newline, and NUL, have no place in an
 * SMS text (a tab or CR renders differently on every phone). */
static const char *
ntc_text_plain(const char *s, size_t len)
{
    if (!flow_utf8_valid(s, len)) return "text is not valid UTF-8";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\n') || ch == 0x7F)
            return "text has a control character";
    }
    return NULL;
}

/* Contract in notices.h. */
const char *
notices_template_check(const char *tpl, size_t len)
{
    const char *why;

    if (tpl == NULL || len == 0) return "text is empty";
    if (len > NOTICES_TEXT_MAX) return "text is too long";
    if ((why = ntc_text_plain(tpl, len)) != NULL) return why;
    for (size_t i = 0; i < len; i++) {
        size_t plen;
        if (tpl[i] == '}') return "a '}' without its '{'";
        if (tpl[i] != '{') continue;
        if (ntc_placeholder(tpl, len, i, &plen) < 0)
            return "unknown placeholder (use {code}, {deadline}, {phone})";
        i += plen - 1;
    }
    return NULL;
}

static int
ntc_put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    if (*o + n + 1 > cap || *o + n > NOTICES_TEXT_MAX) return -1;
    memcpy(out + *o, s, n);
    *o += n;
    return 0;
}

/* Contract in notices.h. */
int
notices_render(const char *tpl, size_t len, const struct notices_vars *v,
               int bangla, char *out, size_t cap, const char **why)
{
    const char *vals[3];
    size_t o = 0;

    AN(v);
    AN(why);
    AN(out);
    *why = NULL;
    if ((*why = notices_template_check(tpl, len)) != NULL) return -1;
    vals[0] = v->code ? v->code : "";
    vals[1] = v->deadline ? v->deadline : "";
    vals[2] = v->phone ? v->phone : "";
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(vals[k]);
        if (ntc_text_plain(vals[k], n) != NULL || memchr(vals[k], '\n', n) ||
            memchr(vals[k], '{', n) || memchr(vals[k], '}', n)) {
            *why = "a placeholder's value is not plain one-line text";
            return -1;
        }
    }
    for (size_t i = 0; i < len; i++) {
        size_t plen;
        int k;
        if (tpl[i] == '{' && (k = ntc_placeholder(tpl, len, i, &plen)) >= 0) {
            if (ntc_put(out, cap, &o, vals[k], strlen(vals[k]))) goto long_;
            i += plen - 1;
            continue;
        }
        if (ntc_put(out, cap, &o, tpl + i, 1)) goto long_;
    }
    const char *foot = bangla ? NOTICES_FOOTER_BN : NOTICES_FOOTER_EN;
    if (ntc_put(out, cap, &o, "\n", 1) ||
        ntc_put(out, cap, &o, foot, strlen(foot)))
        goto long_;
    out[o] = '\0';
    return (int)o;
long_:
    *why = "rendered text is too long";
    if (cap > 0) out[0] = '\0';
    return -1;
}

/* ------------------------------------------------------------------------
 * Receipts
 */

static const char *const ntc_stat_names[] = {
#define NOTICES_X_NAME(name, text) text,
    NOTICES_STATS(NOTICES_X_NAME)
#undef NOTICES_X_NAME
};

/* Contract in notices.h. */
const char *
notices_stat_name(enum notices_stat s)
{
    if ((unsigned)s >= sizeof(ntc_stat_names) / sizeof(ntc_stat_names[0]))
        return "OTHER";
    return ntc_stat_names[s];
}

static int
ntc_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Does s[i..] start with key (lower case, ends with ':'), at the start of
 * the text or after white space? */
static int
ntc_key_at(const char *s, size_t len, size_t i, const char *key)
{
    size_t n = strlen(key);
    if (i > 0 && s[i - 1] != ' ' && s[i - 1] != '\t') return 0;
    if (i + n > len) return 0;
    for (size_t k = 0; k < n; k++)
        if (ntc_lower((unsigned char)s[i + k]) != key[k]) return 0;
    return 1;
}

/* The value after a key: up to white space or the end. */
static size_t
ntc_value_len(const char *s, size_t len, size_t i)
{
    size_t j = i;
    while (j < len && s[j] != ' ' && s[j] != '\t' && s[j] != '\0')
        j++;
    return j - i;
}

static int
ntc_err_parse(const char *v, size_t n)
{
    long val = 0;
    int base = 10;
    size_t i = 0;

    if (n >= 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
        base = 16;
        i = 2;
    } else {
        for (size_t k = 0; k < n; k++) /* "err:0F1" is hex without 0x */
            if ((v[k] >= 'a' && v[k] <= 'f') || (v[k] >= 'A' && v[k] <= 'F'))
                base = 16;
    }
    if (i >= n || n - i > 8) return -1;
    for (; i < n; i++) {
        int d, c = ntc_lower((unsigned char)v[i]);
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return -1;
        val = val * base + d;
    }
    return (int)val;
}

/* Contract in notices.h. */
int
notices_receipt_parse(const char *s, size_t len, struct notices_receipt *r)
{
    AN(r);
    memset(r, 0, sizeof(*r));
    r->stat = NOTICES_STAT_NONE;
    r->err = -1;
    if (s == NULL) return -1;
    for (size_t i = 0; i < len; i++) {
        size_t n;
        if (ntc_key_at(s, len, i, "text:")) break; /* free text: stop */
        if (ntc_key_at(s, len, i, "id:")) {
            i += 3;
            n = ntc_value_len(s, len, i);
            if (n > NOTICES_RECEIPT_ID_MAX) n = NOTICES_RECEIPT_ID_MAX;
            for (size_t k = 0; k < n; k++) {
                unsigned char c = (unsigned char)s[i + k];
                r->id[k] = (c > 0x20 && c < 0x7F) ? (char)c : '?';
            }
            r->id[n] = '\0';
            i += n;
        } else if (ntc_key_at(s, len, i, "stat:")) {
            i += 5;
            n = ntc_value_len(s, len, i);
            r->stat = NOTICES_STAT_OTHER;
            for (int k = 1; k < NOTICES_STAT_OTHER; k++) {
                const char *name = ntc_stat_names[k];
                size_t m = strlen(name), q;
                if (m != n) continue;
                for (q = 0; q < m; q++)
                    if (ntc_lower((unsigned char)s[i + q]) !=
                        ntc_lower((unsigned char)name[q]))
                        break;
                if (q == m) {
                    r->stat = (enum notices_stat)k;
                    break;
                }
            }
            i += n;
        } else if (ntc_key_at(s, len, i, "err:")) {
            i += 4;
            n = ntc_value_len(s, len, i);
            r->err = ntc_err_parse(s + i, n);
            i += n;
        }
        if (i >= len) break;
    }
    return r->stat == NOTICES_STAT_NONE ? -1 : 0;
}

/* ------------------------------------------------------------------------
 * States
 */

static const char *const ntc_state_names[] = {
#define NOTICES_X_NAME(name, text) text,
    NOTICES_STATES(NOTICES_X_NAME)
#undef NOTICES_X_NAME
};

static const char *const ntc_action_names[] = {
#define NOTICES_X_NAME(name, text) text,
    NOTICES_ACTIONS(NOTICES_X_NAME)
#undef NOTICES_X_NAME
};

static const char *const ntc_rstate_names[] = {
#define NOTICES_X_NAME(name, text, final) text,
    NOTICES_RSTATES(NOTICES_X_NAME)
#undef NOTICES_X_NAME
};

static const unsigned char ntc_rstate_finals[] = {
#define NOTICES_X_FINAL(name, text, final) final,
    NOTICES_RSTATES(NOTICES_X_FINAL)
#undef NOTICES_X_FINAL
};

#define NTC_NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* Contract in notices.h. */
const char *
notices_state_name(enum notices_state s)
{
    return (unsigned)s < NTC_NROWS(ntc_state_names) ? ntc_state_names[s]
                                                    : "invalid";
}

/* Contract in notices.h. */
enum notices_state
notices_state_parse(const char *s)
{
    for (unsigned i = 0; s != NULL && i < NTC_NROWS(ntc_state_names); i++)
        if (strcmp(s, ntc_state_names[i]) == 0) return (enum notices_state)i;
    return NOTICES_STATE_INVALID;
}

/* Contract in notices.h. */
const char *
notices_action_name(enum notices_action a)
{
    return (unsigned)a < NTC_NROWS(ntc_action_names) ? ntc_action_names[a]
                                                     : "invalid";
}

/* Contract in notices.h. */
enum notices_action
notices_action_parse(const char *s)
{
    for (unsigned i = 0; s != NULL && i < NTC_NROWS(ntc_action_names); i++)
        if (strcmp(s, ntc_action_names[i]) == 0) return (enum notices_action)i;
    return NOTICES_ACTION_INVALID;
}

/* Contract in notices.h. */
enum notices_state
notices_transition(enum notices_state st, enum notices_action a)
{
    switch (a) {
    case NOTICES_ACT_SUBMIT:
        return st == NOTICES_DRAFT ? NOTICES_SUBMITTED : NOTICES_STATE_INVALID;
    case NOTICES_ACT_REJECT:
        return st == NOTICES_SUBMITTED ? NOTICES_DRAFT : NOTICES_STATE_INVALID;
    case NOTICES_ACT_APPROVE:
        return st == NOTICES_SUBMITTED ? NOTICES_APPROVED
                                       : NOTICES_STATE_INVALID;
    case NOTICES_ACT_START:
        return st == NOTICES_APPROVED ? NOTICES_SENDING : NOTICES_STATE_INVALID;
    case NOTICES_ACT_PAUSE:
        return st == NOTICES_APPROVED || st == NOTICES_SENDING
                   ? NOTICES_PAUSED
                   : NOTICES_STATE_INVALID;
    case NOTICES_ACT_RESUME:
        return st == NOTICES_PAUSED ? NOTICES_SENDING : NOTICES_STATE_INVALID;
    case NOTICES_ACT_COMPLETE:
        return st == NOTICES_SENDING ? NOTICES_COMPLETED
                                     : NOTICES_STATE_INVALID;
    case NOTICES_ACT_CANCEL:
        return st < NOTICES_COMPLETED ? NOTICES_CANCELLED
                                      : NOTICES_STATE_INVALID;
    case NOTICES_ACTION_INVALID:
        return NOTICES_STATE_INVALID;
    }
    return NOTICES_STATE_INVALID;
}

/* Contract in notices.h. */
const char *
notices_rstate_name(enum notices_rstate s)
{
    return (unsigned)s < NTC_NROWS(ntc_rstate_names) ? ntc_rstate_names[s]
                                                     : "invalid";
}

/* Contract in notices.h. */
enum notices_rstate
notices_rstate_parse(const char *s)
{
    for (unsigned i = 0; s != NULL && i < NTC_NROWS(ntc_rstate_names); i++)
        if (strcmp(s, ntc_rstate_names[i]) == 0) return (enum notices_rstate)i;
    return NOTICES_RSTATE_INVALID;
}

/* Contract in notices.h. */
int
notices_rstate_final(enum notices_rstate s)
{
    return (unsigned)s < NTC_NROWS(ntc_rstate_finals) && ntc_rstate_finals[s];
}

/* Contract in notices.h.  The order of the tests is the lattice of
 * 002_sms.sql: a final bit wins over buffered, buffered over the SMSC's
 * ack, the ack over its reject. */
enum notices_rstate
notices_dlr_rstate(int type, const struct notices_receipt *r)
{
    if (type & 1) return NOTICES_R_DELIVERED;
    if (type & 2) {
        if (r != NULL && r->stat == NOTICES_STAT_EXPIRED)
            return NOTICES_R_EXPIRED;
        if ((r == NULL || r->stat == NOTICES_STAT_NONE) && (type & 0x20))
            return NOTICES_R_EXPIRED;
        return NOTICES_R_UNDELIVERED;
    }
    if (type & 4) return NOTICES_R_BUFFERED;
    if (type & 8) return NOTICES_R_SUBMITTED;
    if (type & 16) return NOTICES_R_REJECTED;
    return NOTICES_RSTATE_INVALID;
}
