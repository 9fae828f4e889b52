/*
 * sess_sentinel.c -- finding the session store's primary through Redis
 * Sentinel, and following it when it changes: the sentinels' addresses
 * (redis.sentinels) parsed, one sentinel asked at a time, its watch.
 *
 * With sentinels, a second connection (sen_ac) goes to one sentinel at a
 * time: it asks for the primary's address, then SUBSCRIBEs to
 * +switch-master on the same connection (hiredis answers the regular
 * command before the subscription's messages) and stays as the watch.
 * Every reconnect of the primary (s->retry) asks afresh, on a new
 * sentinel connection, as the sentinel-clients document wants; a sentinel
 * that does not answer within connect_timeout_ms, or does not know the
 * name, is dropped for the next one, and a round with no answer waits the
 * backoff.  Whatever must drop a connection from inside a hiredis
 * callback (a failover message, -READONLY, a sentinel that failed) does it
 * from a zero timer instead: s->kick for the primary, s->sen_timer for
 * the sentinel.
 */
#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions/sess_int.h"

/* Parse "host:port" or "[v6]:port" (n bytes at a) into hp (NULL: check
 * only).  NULL, or why not. */
static const char *
sess_hp_parse(const char *a, size_t n, struct sess_hp *hp)
{
    const char *h = a, *colon = NULL;
    size_t hl;
    if (n == 0) return "an entry is empty";
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', n);
        if (rb == NULL || rb + 1 >= a + n || rb[1] != ':')
            return "an IPv6 address must be written [address]:port";
        h = a + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        for (size_t i = 0; i < n; i++)
            if (a[i] == ':') colon = a + i;
        if (colon == NULL) return "an entry is not host:port";
        hl = (size_t)(colon - a);
        if (memchr(a, ':', hl) != NULL)
            return "an IPv6 address must be written [address]:port";
    }
    if (hl == 0 || hl >= sizeof(hp->host)) return "a host is empty or too long";
    long port = 0;
    const char *p = colon + 1, *end = a + n;
    if (p == end) return "a port is missing";
    for (; p < end && port <= 65535; p++) {
        if (*p < '0' || *p > '9') return "a port is not a number";
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535) return "a port is not in 1..65535";
    if (hp != NULL) {
        memcpy(hp->host, h, hl);
        hp->host[hl] = '\0';
        hp->port = (int)port;
    }
    return NULL;
}

/* Parse the comma-separated list into out[] (NULL: check only), *n
 * entries.  NULL, or why not. */
const char *
sess_hp_list(const char *list, struct sess_hp *out, int *n)
{
    *n = 0;
    for (const char *p = list; *p != '\0';) {
        while (*p == ' ')
            p++;
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (*n >= SESS_SENTINELS_MAX) return "more than 16 sentinels";
        const char *why = sess_hp_parse(p, len, out ? &out[*n] : NULL);
        if (why != NULL) return why;
        (*n)++;
        if (comma == NULL) break;
        p = comma + 1;
        if (*p == '\0') return "an entry is empty";
    }
    return NULL;
}

const char *
sess_sentinels_check(const char *list)
{
    int n;
    return list == NULL ? NULL : sess_hp_list(list, NULL, &n);
}

/* Drop the sentinel connection (never from inside its callbacks: those
 * go through sess_sen_failed()). */
void
sess_sen_drop(struct sess *s)
{
    redisAsyncContext *ac = s->sen_ac;
    s->sen_ac = NULL; /* its callbacks, run NULL by the free, see that */
    evtimer_del(s->sen_timer);
    if (ac != NULL) redisAsyncFree(ac);
}

/* The sentinel asked now failed: remember why, and go on from a zero
 * timer (sess_sen_on_timer), outside hiredis's callbacks. */
static void
sess_sen_failed(struct sess *s, const char *why)
{
    const struct sess_hp *hp = &s->sen[s->sen_idx];
    snprintf(s->sen_why, sizeof(s->sen_why), "sentinel %.100s:%d: %.80s",
             hp->host, hp->port, why);
    struct timeval now = {0, 0};
    evtimer_add(s->sen_timer, &now);
}

/* The sentinels name host:port as the primary: connect there, unless it
 * is the one in use (or being connected to) already. */
static void
sess_sen_follow(struct sess *s, const char *host, int port, const char *why)
{
    if (s->ac != NULL && strcmp(host, s->host) == 0 && port == s->port) return;
    snprintf(s->host, sizeof(s->host), "%s", host);
    s->port = port;
    sess_kick(s, 1, why);
}

/* SENTINEL get-master-addr-by-name's answer: [ip, port], or nil when the
 * sentinel does not monitor that name. */
static void
sess_sen_on_addr(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    redisReply *r = reply;
    char why[160];
    if (r == NULL || ac != s->sen_ac) return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        if (r->type == REDIS_REPLY_ERROR)
            snprintf(why, sizeof(why), "%.100s", r->str);
        else if (r->type == REDIS_REPLY_NIL)
            snprintf(why, sizeof(why), "does not know a primary named '%.60s'",
                     s->master_name);
        else
            snprintf(why, sizeof(why), "an answer that is not an address");
        sess_sen_failed(s, why);
        return;
    }
    char *end;
    long port = strtol(r->element[1]->str, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535 ||
        r->element[0]->len >= sizeof(s->host)) {
        sess_sen_failed(s, "an answer that is not an address");
        return;
    }
    /* this one watches from now on */
    evtimer_del(s->sen_timer);
    s->sen_tried = 0;
    sess_sen_follow(s, r->element[0]->str, (int)port,
                    "the sentinels name another primary");
}

/* +switch-master messages: "name old-ip old-port new-ip new-port". */
static void
sess_sen_on_switch(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    redisReply *r = reply;
    char name[128], oip[256], nip[256], why[200];
    int oport, nport;
    if (r == NULL || ac != s->sen_ac || r->type != REDIS_REPLY_ARRAY ||
        r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    if (sscanf(r->element[2]->str, "%127s %255s %d %255s %d", name, oip, &oport,
               nip, &nport) != 5 ||
        strcmp(name, s->master_name) != 0 || nport < 1 || nport > 65535)
        return;
    snprintf(why, sizeof(why), "failover: the primary is now %.100s:%d", nip,
             nport);
    sess_sen_follow(s, nip, nport, why);
}

static void
sess_sen_on_connect(const redisAsyncContext *ac, int status)
{
    struct sess *s = ac->data;
    if (ac != s->sen_ac || status == REDIS_OK) return;
    s->sen_ac = NULL; /* hiredis frees it after this returns */
    sess_sen_failed(s, ac->errstr);
}

static void
sess_sen_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct sess *s = ac->data;
    if (ac != s->sen_ac) return; /* dropped on purpose */
    s->sen_ac = NULL;
    sess_sen_failed(s, status == REDIS_OK || ac->errstr[0] == '\0'
                           ? "connection closed"
                           : ac->errstr);
}

/* Ask sen[sen_idx] on a new connection (the one before, if any, is
 * dropped): the primary's address, then the watch. */
void
sess_sen_connect(struct sess *s)
{
    sess_sen_drop(s);
    const struct sess_hp *hp = &s->sen[s->sen_idx];
    redisAsyncContext *ac = redisAsyncConnect(hp->host, hp->port);
    if (ac == NULL || ac->err) {
        sess_sen_failed(s, ac ? ac->errstr : "out of memory");
        if (ac != NULL) redisAsyncFree(ac);
        return;
    }
    ac->data = s;
    s->sen_ac = ac;
    snprintf(s->sen_why, sizeof(s->sen_why),
             "sentinel %.100s:%d: no answer in time", hp->host, hp->port);
    if (sess_io_attach(s, ac) != 0 ||
        redisAsyncSetConnectCallback(ac, sess_sen_on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ac, sess_sen_on_disconnect) !=
            REDIS_OK ||
        redisAsyncCommand(ac, sess_sen_on_addr, s,
                          "SENTINEL get-master-addr-by-name %s",
                          s->master_name) != REDIS_OK ||
        redisAsyncCommand(ac, sess_sen_on_switch, s,
                          "SUBSCRIBE +switch-master") != REDIS_OK) {
        sess_sen_failed(s, "could not send to it");
        return;
    }
    struct timeval tv;
    sess_ms_tv(s->connect_timeout_ms, &tv);
    evtimer_add(s->sen_timer, &tv);
}

/* The sentinel asked did not answer in time, or failed: drop it, ask the
 * next; after a whole round without an answer, wait the backoff. */
void
sess_sen_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sess *s = arg;
    (void)fd;
    (void)what;
    sess_sen_drop(s);
    if (!s->started) return;
    s->sen_idx = (s->sen_idx + 1) % s->nsen;
    if (++s->sen_tried < s->nsen) {
        sess_sen_connect(s);
        return;
    }
    s->sen_tried = 0;
    if (!s->connected) sess_say(s, SESS_EDOWN, s->sen_why);
    sess_schedule(s);
}
