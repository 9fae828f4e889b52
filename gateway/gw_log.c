/*
 * gw_log.c -- the daemon's log: one line per event on stderr.
 *
 * A line is built in a stack buffer and written with a single write(2), so
 * lines from several worker processes sharing stderr never interleave
 * (short writes to a pipe are atomic up to PIPE_BUF).  Control characters
 * in a finished line become spaces: whatever a caller formats, one event
 * stays one line.  Values that come from the network should still go
 * through gw_log_quote(), which keeps them readable and unambiguous.
 *
 * The level test lives in the macros of gw.h, before any argument is
 * evaluated; gw_log_emit() trusts that it is wanted.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/gw.h"

#define GW_LOG_LINE_MAX 2048

int gw_log_level = GW_LEVEL_INFO;

static const char *const gw_log_names[] = {"error", "warn", "info", "debug"};

void
gw_log_set_level(int level)
{
    if (level < GW_LEVEL_ERROR) level = GW_LEVEL_ERROR;
    if (level > GW_LEVEL_DEBUG) level = GW_LEVEL_DEBUG;
    gw_log_level = level;
}

int
gw_log_level_parse(const char *name)
{
    for (int i = 0; i <= GW_LEVEL_DEBUG; i++)
        if (strcmp(name, gw_log_names[i]) == 0) return i;
    return -1;
}

const char *
gw_log_level_name(int level)
{
    if (level < GW_LEVEL_ERROR || level > GW_LEVEL_DEBUG) return "?";
    return gw_log_names[level];
}

static void
gw_log_write(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return; /* nowhere left to complain */
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void
gw_log_vemit(int level, int err, const char *fmt, va_list ap)
{
    char line[GW_LOG_LINE_MAX];
    const size_t room = sizeof(line) - 1; /* keep one byte for '\n' */
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, room, "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, room - n, ".%03ldZ %s pid=%ld ",
                 (long)(ts.tv_nsec / 1000000), gw_log_level_name(level),
                 (long)getpid());
    if (k > 0) n += (size_t)k < room - n ? (size_t)k : room - n - 1;
    k = vsnprintf(line + n, room - n, fmt, ap);
    if (k > 0) n += (size_t)k < room - n ? (size_t)k : room - n - 1;
    if (err != 0 && n < room - 1) {
        k = snprintf(line + n, room - n, " err=\"%s\"", strerror(err));
        if (k > 0) n += (size_t)k < room - n ? (size_t)k : room - n - 1;
    }
    if (n >= room - 1 && room > 4) memcpy(line + room - 4, "...", 3);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7F) line[i] = ' ';
    line[n++] = '\n';
    gw_log_write(line, n);
}

int
gw_log_limit_take(struct gw_log_limit *l, unsigned long *held)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec != l->sec) {
        l->sec = now.tv_sec;
        l->n = 0;
    }
    if (l->n >= l->per_sec) {
        l->held++;
        return 0;
    }
    l->n++;
    *held = l->held;
    l->held = 0;
    return 1;
}

const char *
gw_msisdn_mask(char *buf, size_t cap, const char *msisdn)
{
    size_t n = strlen(msisdn), head, tail;
    if (n >= cap) n = cap - 1;
    head = n >= 9 ? 5 : 0;
    tail = n >= 5 ? 2 : 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = i < head || i >= n - tail ? msisdn[i] : '*';
    buf[n] = '\0';
    return buf;
}

const char *
gw_log_msisdn(char *buf, size_t cap, const char *msisdn)
{
    if (gw_log_level >= GW_LEVEL_DEBUG) {
        snprintf(buf, cap, "%s", msisdn);
        return buf;
    }
    return gw_msisdn_mask(buf, cap, msisdn);
}

void
gw_log_emit(int level, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_log_vemit(level, err, fmt, ap);
    va_end(ap);
}

const char *
gw_log_quote(char *buf, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (cap < 8) {
        if (cap > 0) buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[4];
        size_t e = 0;
        if (c == '"' || c == '\\') {
            esc[e++] = '\\';
            esc[e++] = (char)c;
        } else if (c >= 0x20 && c < 0x7F) {
            esc[e++] = (char)c;
        } else {
            esc[e++] = '\\';
            esc[e++] = 'x';
            esc[e++] = hex[c >> 4];
            esc[e++] = hex[c & 15];
        }
        /* room for this, then '...' '"' and NUL */
        if (o + e + 5 > cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, esc, e);
        o += e;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static void
gw_log_event_cb(int severity, const char *msg)
{
    int level;
    switch (severity) {
    case EVENT_LOG_DEBUG:
        level = GW_LEVEL_DEBUG;
        break;
    case EVENT_LOG_MSG:
        level = GW_LEVEL_INFO;
        break;
    case EVENT_LOG_WARN:
        level = GW_LEVEL_WARN;
        break;
    case EVENT_LOG_ERR:
        level = GW_LEVEL_ERROR;
        break;
    default:
        level = GW_LEVEL_WARN;
        break;
    }
    GW_LOG(level, 0, "libevent: %s", msg);
}

static void
gw_log_event_fatal(int err)
{
    gw_log_emit(GW_LEVEL_ERROR, 0, "libevent: fatal error code=%d", err);
    abort();
}

void
gw_log_libevent(void)
{
    event_set_log_callback(gw_log_event_cb);
    event_set_fatal_callback(gw_log_event_fatal);
}
