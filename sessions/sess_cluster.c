/*
 * sess_cluster.c -- the session store over a Redis Cluster: the hash
 * slot of a key, the map of slots to primaries (CLUSTER SLOTS), one
 * store per primary, each command routed by its key, and -MOVED / -ASK
 * followed.  hiredis 0.14 has no cluster client, so this is one, on the
 * event loop, in the shape of sess_sentinel.c.
 *
 * The cluster's store (s->cl) has no connection of its own for commands:
 * each primary gets a store of the single-node kind (sess_conn.c), made
 * here, with s as its parent; so every primary has its own handshake,
 * backoff, timers and script cache, and a -NOSCRIPT on one is handled
 * there as on a single node.  A command is sent on the store of its
 * key's primary; a cluster node's commands keep their formatted bytes,
 * so an answer -MOVED or -ASK sends the same bytes once more, to the
 * node named (after ASKING, for -ASK).
 *
 * The map is asked for on a second, short connection (cl->ac): to the
 * primaries known, then the seeds, in turn, each within
 * connect_timeout_ms + timeout_ms; CLUSTER INFO goes with it, for the
 * cluster's own state.  It is asked for at start, after a -MOVED or a
 * -CLUSTERDOWN, whenever a primary's connection drops, and again for as
 * long as the cluster is not whole (some slot without a connected
 * primary, or the node asked saying cluster_state:fail): every 0.1 s
 * while the nodes answer (a failover under way: the dead primary is
 * still listed while it is only suspected, and every node answers
 * -CLUSTERDOWN once it is marked failed and until its replica is
 * promoted), with the backoff when none does -- so a promoted replica is
 * followed within about 0.1 s.  The store says it is down for all that
 * time, and callers wait for it (the gateway's redis.wait_ms); a command
 * answered -CLUSTERDOWN was refused, not run, and fails with SESS_EDOWN
 * like one whose connection dropped, never retried here.  Whatever would
 * free a store or a connection from inside a hiredis callback does it
 * from a zero timer instead (cl->timer for the asking connection and the
 * new map, cl->update for the state).
 */
#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions/sess_int.h"

/* ------------------------------------------------------------------------
 * Slots and the parsers (pure)
 */

/* CRC16-CCITT as XMODEM computes it: polynomial 0x1021, initial 0, not
 * reflected -- what Redis Cluster hashes keys with. */
static unsigned
sess_crc16(const unsigned char *p, size_t n)
{
    unsigned crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff
                               : (crc << 1) & 0xffff;
    }
    return crc;
}

unsigned
sess_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - from);
        if (close != NULL && close > open + 1)
            return sess_crc16((const unsigned char *)open + 1,
                              (size_t)(close - open - 1)) &
                   (SESS_SLOTS - 1);
    }
    return sess_crc16((const unsigned char *)key, len) & (SESS_SLOTS - 1);
}

const char *
sess_cluster_check(const char *list)
{
    int n;
    return list == NULL ? NULL : sess_hp_list(list, NULL, &n);
}

/* A non-negative integer answer (or a string of digits) in *v. */
static int
sess_cl_int(const redisReply *r, long long *v)
{
    if (r->type == REDIS_REPLY_INTEGER) {
        *v = r->integer;
        return 0;
    }
    return -1;
}

const char *
sess_cl_slots_parse(const redisReply *r, const char *asked, struct sess_hp *hp,
                    int *n, uint8_t *slot, int *holes)
{
    *n = 0;
    memset(slot, SESS_CL_NONE, SESS_SLOTS);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return "CLUSTER SLOTS did not answer a list";
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        long long from, to, port;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            sess_cl_int(e->element[0], &from) != 0 ||
            sess_cl_int(e->element[1], &to) != 0 || from < 0 || to < from ||
            to >= SESS_SLOTS)
            return "CLUSTER SLOTS: a range that is not two slots";
        const redisReply *m = e->element[2];
        if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
            m->element[0]->type != REDIS_REPLY_STRING ||
            sess_cl_int(m->element[1], &port) != 0 || port < 1 || port > 65535)
            return "CLUSTER SLOTS: a primary that is not host and port";
        const char *h = m->element[0]->str;
        size_t hl = m->element[0]->len;
        if (hl == 0 || (hl == 1 && h[0] == '?')) {
            h = asked;
            hl = strlen(asked);
        }
        if (hl == 0 || hl >= sizeof(hp->host) || memchr(h, '\0', hl) != NULL)
            return "CLUSTER SLOTS: a host that is empty or too long";
        int k;
        for (k = 0; k < *n; k++)
            if (hp[k].port == port && strlen(hp[k].host) == hl &&
                memcmp(hp[k].host, h, hl) == 0)
                break;
        if (k == *n) {
            if (*n >= SESS_CL_NODES_MAX)
                return "CLUSTER SLOTS: more than 64 primaries";
            memcpy(hp[k].host, h, hl);
            hp[k].host[hl] = '\0';
            hp[k].port = (int)port;
            (*n)++;
        }
        memset(slot + from, k, (size_t)(to - from + 1));
    }
    *holes = 0;
    for (int i = 0; i < SESS_SLOTS; i++)
        *holes += slot[i] == SESS_CL_NONE;
    return NULL;
}

int
sess_cl_redirect_parse(const char *msg, size_t len, int *slot,
                       struct sess_hp *hp)
{
    int kind;
    size_t i;
    if (len > 5 && memcmp(msg, "MOVED ", 6) == 0) {
        kind = 1;
        i = 6;
    } else if (len > 3 && memcmp(msg, "ASK ", 4) == 0) {
        kind = 2;
        i = 4;
    } else {
        return 0;
    }
    long sl = 0;
    size_t d = i;
    for (; i < len && msg[i] >= '0' && msg[i] <= '9' && sl < SESS_SLOTS; i++)
        sl = sl * 10 + (msg[i] - '0');
    if (i == d || sl >= SESS_SLOTS || i >= len || msg[i] != ' ') return 0;
    i++;
    /* HOST:PORT, the port after the last ':' (an IPv6 host has colons) */
    const char *a = msg + i, *colon = NULL;
    size_t an = len - i;
    for (size_t j = 0; j < an; j++)
        if (a[j] == ':') colon = a + j;
    if (colon == NULL) return 0;
    size_t hl = (size_t)(colon - a);
    if (hl >= sizeof(hp->host) || memchr(a, '\0', hl) != NULL ||
        memchr(a, ' ', hl) != NULL)
        return 0;
    long port = 0;
    const char *p = colon + 1, *end = a + an;
    if (p == end) return 0;
    for (; p < end && port <= 65535; p++) {
        if (*p < '0' || *p > '9') return 0;
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535) return 0;
    memcpy(hp->host, a, hl);
    hp->host[hl] = '\0';
    hp->port = (int)port;
    *slot = (int)sl;
    return kind;
}

int
sess_cl_info_state(const char *txt, size_t len)
{
    static const char field[] = "cluster_state:";
    const size_t fl = sizeof(field) - 1;
    for (size_t i = 0; i + fl <= len;) {
        const char *nl = memchr(txt + i, '\n', len - i);
        size_t end = nl != NULL ? (size_t)(nl - txt) : len;
        if (end - i >= fl && memcmp(txt + i, field, fl) == 0) {
            size_t v = i + fl, vl = end - v;
            if (vl > 0 && txt[end - 1] == '\r') vl--;
            return vl == 2 && memcmp(txt + v, "ok", 2) == 0 ? 1 : 0;
        }
        i = end + 1;
    }
    return -1;
}

/* ------------------------------------------------------------------------
 * The primaries' stores and the cluster's state
 */

/* While some slot has no connected primary, the map is asked for again
 * this often at most: a promotion is followed within about this long. */
#define SESS_CL_ASK_MAX_MS 500
/* ... but while the nodes answer and only the cluster is not whole (a
 * primary suspected or failed, its replica not promoted yet, or the
 * cluster saying cluster_state:fail), this often: callers wait for the
 * promotion (redis.wait_ms), which is followed within about this long.
 * For SESS_CL_POLL_MAX asks in a row at most (a cluster that stays
 * broken is then asked at the slower pace). */
#define SESS_CL_POLL_MS  100
#define SESS_CL_POLL_MAX 300

static void sess_cl_ask(struct sess *s);

/* Every slot has a primary and every primary is connected. */
static int
sess_cl_up(const struct sess *s)
{
    const struct sess_cl *cl = s->cl;
    if (!cl->mapped || cl->holes > 0 || cl->nnode == 0 || !cl->state_ok)
        return 0;
    for (int i = 0; i < cl->nnode; i++)
        if (!cl->node[i]->connected) return 0;
    return 1;
}

/* Ask for the map now, or once the asking under way ends. */
static void
sess_cl_want(struct sess *s)
{
    struct sess_cl *cl = s->cl;
    if (!s->started) return;
    if (cl->ac != NULL || evtimer_pending(cl->timer, NULL)) {
        cl->again_soon = 1;
        return;
    }
    evtimer_del(cl->again);
    sess_cl_ask(s);
}

/* The cluster's state from its primaries': said when it changes, and a
 * cluster that is not whole asks for the map again after the backoff. */
static void
sess_cl_look(struct sess *s)
{
    struct sess_cl *cl = s->cl;
    if (!s->started) return;
    int up = sess_cl_up(s);
    if (up != s->connected) {
        s->connected = up;
        s->gen++;
        if (up)
            sess_say(s, 0, NULL);
        else
            sess_say(s, SESS_EDOWN,
                     cl->why[0] ? cl->why : "a cluster primary is down");
    }
    if (up) {
        cl->backoff_ms = SESS_BACKOFF_MIN_MS;
        cl->polls = 0;
    } else if (cl->ac == NULL && !evtimer_pending(cl->timer, NULL) &&
               !evtimer_pending(cl->again, NULL)) {
        struct timeval tv;
        if (cl->answered && cl->polls < SESS_CL_POLL_MAX) {
            /* the nodes answer: a failover under way, poll for it */
            cl->polls++;
            sess_ms_tv(SESS_CL_POLL_MS, &tv);
            evtimer_add(cl->again, &tv);
            return;
        }
        sess_ms_tv(cl->backoff_ms, &tv);
        evtimer_add(cl->again, &tv);
        cl->backoff_ms *= 2;
        if (cl->backoff_ms > SESS_CL_ASK_MAX_MS)
            cl->backoff_ms = SESS_CL_ASK_MAX_MS;
    }
}

/* cl->update: a primary's state changed, said from inside its hiredis
 * callbacks before its flags settle: look from here instead. */
static void
sess_cl_on_update(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sess_cl_look(arg);
}

static void
sess_cl_update(struct sess *s)
{
    struct timeval zero = {0, 0};
    evtimer_add(s->cl->update, &zero);
}

/* A primary's store changed state: its cluster looks again, and a drop
 * asks for the map (a failover may have moved its slots). */
static void
sess_cl_node_state(int error, const char *why, void *arg)
{
    struct sess *n = arg, *s = n->parent;
    s->gen++; /* what was read on it may be gone */
    if (error != 0) {
        snprintf(s->cl->why, sizeof(s->cl->why), "%.100s:%d: %.80s", n->host,
                 n->port, why ? why : sess_strerror(error));
        /* down at once: a caller whose command just failed must not see
         * the cluster as up and try again before this settles */
        if (s->connected) {
            s->connected = 0;
            sess_say(s, error, s->cl->why);
        }
        sess_cl_want(s);
    }
    sess_cl_update(s);
}

static struct sess *
sess_cl_node_new(struct sess *s, const struct sess_hp *hp)
{
    struct sess_cfg cfg = {
        .host = hp->host,
        .port = hp->port,
        .prefix = s->prefix,
        .timeout_ms = s->timeout_ms,
        .max_pending = s->max_pending,
        .connect_timeout_ms = s->connect_timeout_ms,
        .password = s->password,
        .on_state = sess_cl_node_state,
    };
    char err[200];
    struct sess *n = sess_new(&cfg, s->base, err, sizeof(err));
    if (n == NULL) return NULL;
    n->state_arg = n;
    n->parent = s;
    if (sess_start(n) != 0) {
        sess_free(n);
        return NULL;
    }
    return n;
}

static int
sess_cl_find(const struct sess_cl *cl, const char *host, int port)
{
    for (int i = 0; i < cl->nnode; i++)
        if (cl->node[i]->port == port && strcmp(cl->node[i]->host, host) == 0)
            return i;
    return -1;
}

/* The map asked for arrived (cl->got_*): make it the one used.  From a
 * timer: the stores of primaries no longer in it are freed here, and
 * their commands in flight answered SESS_EDOWN, after the new map is in
 * place (so a caller that sends again from that callback is routed by
 * it). */
static void
sess_cl_apply(struct sess *s)
{
    struct sess_cl *cl = s->cl;
    struct sess *node[SESS_CL_NODES_MAX], *gone[SESS_CL_NODES_MAX];
    int ngone = 0, changed = !cl->mapped || cl->got_n != cl->nnode;
    for (int i = 0; i < cl->got_n; i++) {
        int k = sess_cl_find(cl, cl->got_hp[i].host, cl->got_hp[i].port);
        if (k >= 0) {
            node[i] = cl->node[k];
            changed = changed || k != i;
            continue;
        }
        node[i] = sess_cl_node_new(s, &cl->got_hp[i]);
        changed = 1;
        if (node[i] == NULL) {
            /* out of memory: keep the old map, ask again later */
            for (int j = 0; j < i; j++)
                if (sess_cl_find(cl, node[j]->host, node[j]->port) < 0)
                    sess_free(node[j]);
            snprintf(cl->why, sizeof(cl->why), "out of memory");
            return;
        }
    }
    for (int k = 0; k < cl->nnode; k++) {
        int kept = 0;
        for (int i = 0; i < cl->got_n; i++)
            kept = kept || node[i] == cl->node[k];
        if (!kept) gone[ngone++] = cl->node[k];
    }
    changed = changed || memcmp(cl->slot, cl->got_slot, SESS_SLOTS) != 0;
    memcpy(cl->node, node, sizeof(node[0]) * (size_t)cl->got_n);
    cl->nnode = cl->got_n;
    memcpy(cl->slot, cl->got_slot, SESS_SLOTS);
    cl->holes = cl->got_holes;
    cl->mapped = 1;
    cl->state_ok = cl->got_state != 0 && !cl->down_during;
    if (cl->nnode > 0) {
        snprintf(s->host, sizeof(s->host), "%s", cl->node[0]->host);
        s->port = cl->node[0]->port;
    }
    if (cl->holes > 0)
        snprintf(cl->why, sizeof(cl->why),
                 "%d slots have no primary (CLUSTER SLOTS from %.100s:%d)",
                 cl->holes, cl->ask_host, cl->ask_port);
    else if (cl->got_state == 0)
        snprintf(cl->why, sizeof(cl->why),
                 "the cluster is down (cluster_state:fail at %.100s:%d)",
                 cl->ask_host, cl->ask_port);
    if (cl->got_state == 0) {
        /* ask another node next: this one may be the one cut off */
        int total = cl->nnode + cl->nseed;
        cl->ask_idx = (cl->ask_idx + 1) % (total > 0 ? total : 1);
    }
    if (changed) s->gen++;
    /* the state first: a caller answered SESS_EDOWN below must see it */
    sess_cl_look(s);
    for (int i = 0; i < ngone; i++)
        sess_free(gone[i]);
    sess_cl_update(s);
}

/* ------------------------------------------------------------------------
 * Asking for the map
 */

static void
sess_cl_drop(struct sess *s)
{
    struct sess_cl *cl = s->cl;
    redisAsyncContext *ac = cl->ac;
    cl->ac = NULL; /* its callbacks, run NULL by the free, see that */
    if (ac != NULL) redisAsyncFree(ac);
}

/* The node asked failed (why) or answered (cl->got): go on from a zero
 * timer, outside hiredis's callbacks. */
static void
sess_cl_asked(struct sess *s, const char *why)
{
    struct sess_cl *cl = s->cl;
    cl->decided = 1;
    if (why != NULL)
        snprintf(cl->why, sizeof(cl->why),
                 "CLUSTER SLOTS from %.100s:%d: %.80s", cl->ask_host,
                 cl->ask_port, why);
    struct timeval zero = {0, 0};
    evtimer_add(cl->timer, &zero);
}

/* hiredis frees a connection that failed or closed by itself, after
 * these callbacks: forget it (and say why, if nothing was said yet). */
static void
sess_cl_gone(struct sess *s, const redisAsyncContext *ac)
{
    struct sess_cl *cl = s->cl;
    if (ac != cl->ac) return; /* dropped on purpose, or an old one */
    cl->ac = NULL;
    if (!cl->decided)
        sess_cl_asked(s, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void
sess_cl_on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) sess_cl_gone(ac->data, ac);
}

static void
sess_cl_on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    sess_cl_gone(ac->data, ac);
}

/* What the asking connection's reply callbacks do first: the reply when
 * it is one to act on; NULL when the connection is gone (forgotten here,
 * see sess_cl_gone) or when the answer no longer counts (an older
 * connection's, or the node asked was already decided on). */
static const redisReply *
sess_cl_reply(struct sess *s, const redisAsyncContext *ac, const void *reply)
{
    if (reply == NULL) {
        sess_cl_gone(s, ac);
        return NULL;
    }
    if (ac != s->cl->ac || s->cl->decided) return NULL;
    return reply;
}

static void
sess_cl_on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    const redisReply *r = sess_cl_reply(s, ac, reply);
    if (r == NULL) return;
    if (r->type == REDIS_REPLY_ERROR) {
        s->cl->auth_refused = 1;
        sess_cl_asked(s, r->str);
    }
}

/* CLUSTER INFO's answer, sent before CLUSTER SLOTS: the cluster's state
 * as the node asked sees it.  An error (a node that does not know it)
 * says nothing, and the map alone decides. */
static void
sess_cl_on_info(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    const redisReply *r = sess_cl_reply(s, ac, reply);
    if (r == NULL) return;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        s->cl->got_state = sess_cl_info_state(r->str, r->len);
}

static void
sess_cl_on_slots(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sess *s = privdata;
    struct sess_cl *cl = s->cl;
    const redisReply *r = sess_cl_reply(s, ac, reply);
    if (r == NULL) return;
    if (r->type == REDIS_REPLY_ERROR) {
        sess_cl_asked(s, r->str);
        return;
    }
    const char *why = sess_cl_slots_parse(
        r, cl->ask_host, cl->got_hp, &cl->got_n, cl->got_slot, &cl->got_holes);
    if (why == NULL && cl->got_n == 0) why = "no slot is served";
    cl->got = why == NULL;
    sess_cl_asked(s, why);
}

/* Ask the address cl->ask_idx names (the primaries known, then the
 * seeds) for CLUSTER SLOTS. */
static void
sess_cl_ask(struct sess *s)
{
    struct sess_cl *cl = s->cl;
    int total = cl->nnode + cl->nseed;
    if (cl->ask_idx >= total) cl->ask_idx = 0;
    if (cl->ask_idx < cl->nnode) {
        const struct sess *n = cl->node[cl->ask_idx];
        snprintf(cl->ask_host, sizeof(cl->ask_host), "%s", n->host);
        cl->ask_port = n->port;
    } else {
        const struct sess_hp *hp = &cl->seed[cl->ask_idx - cl->nnode];
        snprintf(cl->ask_host, sizeof(cl->ask_host), "%s", hp->host);
        cl->ask_port = hp->port;
    }
    cl->got = 0;
    cl->got_state = -1;
    cl->down_during = 0;
    cl->decided = 0;
    cl->again_soon = 0;
    struct timeval tv;
    sess_ms_tv(s->connect_timeout_ms + s->timeout_ms, &tv);
    evtimer_add(cl->timer, &tv);
    redisAsyncContext *ac = redisAsyncConnect(cl->ask_host, cl->ask_port);
    if (ac == NULL || ac->err) {
        const char *why = ac ? ac->errstr : "out of memory";
        snprintf(cl->why, sizeof(cl->why),
                 "CLUSTER SLOTS from %.100s:%d: %.80s", cl->ask_host,
                 cl->ask_port, why);
        if (ac != NULL) redisAsyncFree(ac);
        sess_cl_asked(s, NULL);
        return;
    }
    ac->data = s;
    cl->ac = ac;
    int rc = sess_io_attach(s, ac) == 0 &&
                     redisAsyncSetConnectCallback(ac, sess_cl_on_connect) ==
                         REDIS_OK &&
                     redisAsyncSetDisconnectCallback(
                         ac, sess_cl_on_disconnect) == REDIS_OK
                 ? REDIS_OK
                 : REDIS_ERR;
    if (rc == REDIS_OK && s->password[0] != '\0')
        rc = redisAsyncCommand(ac, sess_cl_on_auth, s, "AUTH %s", s->password);
    if (rc == REDIS_OK)
        rc = redisAsyncCommand(ac, sess_cl_on_info, s, "CLUSTER INFO");
    if (rc == REDIS_OK)
        rc = redisAsyncCommand(ac, sess_cl_on_slots, s, "CLUSTER SLOTS");
    if (rc != REDIS_OK) sess_cl_asked(s, "could not send CLUSTER SLOTS");
}

/* cl->timer: the node asked answered, failed, or is late. */
static void
sess_cl_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sess *s = arg;
    struct sess_cl *cl = s->cl;
    (void)fd;
    (void)what;
    int got = cl->got;
    if (!got && !cl->decided)
        snprintf(cl->why, sizeof(cl->why),
                 "CLUSTER SLOTS from %.100s:%d: no answer in time",
                 cl->ask_host, cl->ask_port);
    cl->decided = 0;
    sess_cl_drop(s);
    cl->got = 0;
    if (!s->started) return;
    if (got) {
        cl->ask_tried = 0;
        cl->answered = 1;
        sess_cl_apply(s);
        if (cl->again_soon) sess_cl_want(s);
        return;
    }
    int total = cl->nnode + cl->nseed;
    cl->ask_idx = (cl->ask_idx + 1) % (total > 0 ? total : 1);
    if (++cl->ask_tried < total) {
        sess_cl_ask(s); /* the next address, at once */
        return;
    }
    /* a whole round failed: say so, and wait the backoff */
    cl->ask_tried = 0;
    cl->answered = 0;
    if (!s->connected || !cl->mapped)
        sess_say(s, cl->auth_refused ? SESS_EAUTH : SESS_EDOWN, cl->why);
    cl->auth_refused = 0;
    sess_cl_update(s);
}

static void
sess_cl_on_again(evutil_socket_t fd, short what, void *arg)
{
    struct sess *s = arg;
    (void)fd;
    (void)what;
    sess_cl_want(s);
}

/* ------------------------------------------------------------------------
 * Lifecycle and routing
 */

int
sess_cl_new(struct sess *s, const char *seeds)
{
    struct sess_cl *cl = calloc(1, sizeof(*cl));
    if (cl == NULL) return -1;
    s->cl = cl;
    (void)sess_hp_list(seeds, cl->seed, &cl->nseed); /* checked */
    memset(cl->slot, SESS_CL_NONE, sizeof(cl->slot));
    cl->holes = SESS_SLOTS;
    cl->backoff_ms = SESS_BACKOFF_MIN_MS;
    cl->timer = evtimer_new(s->base, sess_cl_on_timer, s);
    cl->again = evtimer_new(s->base, sess_cl_on_again, s);
    cl->update = evtimer_new(s->base, sess_cl_on_update, s);
    if (cl->timer == NULL || cl->again == NULL || cl->update == NULL) return -1;
    snprintf(s->host, sizeof(s->host), "%.255s", cl->seed[0].host);
    s->port = cl->seed[0].port;
    return 0;
}

void
sess_cl_start(struct sess *s)
{
    s->cl->backoff_ms = SESS_BACKOFF_MIN_MS;
    for (int i = 0; i < s->cl->nnode; i++)
        (void)sess_start(s->cl->node[i]);
    sess_cl_want(s);
}

void
sess_cl_stop(struct sess *s)
{
    struct sess_cl *cl = s->cl;
    if (cl->timer) evtimer_del(cl->timer);
    if (cl->again) evtimer_del(cl->again);
    if (cl->update) evtimer_del(cl->update);
    cl->again_soon = 0;
    cl->got = 0;
    sess_cl_drop(s);
    for (int i = 0; i < cl->nnode; i++)
        sess_stop(cl->node[i]);
}

void
sess_cl_free(struct sess *s)
{
    struct sess_cl *cl = s->cl;
    if (cl == NULL) return;
    sess_cl_stop(s);
    for (int i = 0; i < cl->nnode; i++)
        sess_free(cl->node[i]);
    if (cl->timer) event_free(cl->timer);
    if (cl->again) event_free(cl->again);
    if (cl->update) event_free(cl->update);
    free(cl);
    s->cl = NULL;
}

struct sess *
sess_cl_route(struct sess *s, const char *k, int *rc)
{
    const struct sess_cl *cl = s->cl;
    unsigned i = cl->slot[sess_slot(k, strlen(k))];
    if (!s->started || i == SESS_CL_NONE) {
        *rc = SESS_EDOWN;
        return NULL;
    }
    return cl->node[i];
}

void
sess_cl_down(struct sess *node, const char *msg)
{
    struct sess *s = node->parent;
    struct sess_cl *cl = s->cl;
    cl->state_ok = 0;
    /* an answer under way may have been made before this: it cannot
     * say the cluster is up again, the next one will */
    cl->down_during = cl->ac != NULL || evtimer_pending(cl->timer, NULL);
    snprintf(cl->why, sizeof(cl->why), "%.100s:%d: %.120s", node->host,
             node->port, msg);
    if (s->connected) {
        s->connected = 0;
        sess_say(s, SESS_EDOWN, cl->why);
    }
    sess_cl_want(s);
}

int
sess_cl_redirect(struct sess_cmd *c, const char *msg, size_t len)
{
    struct sess *from = c->s, *s = from->parent;
    struct sess_cl *cl = s->cl;
    struct sess_hp hp;
    int slot;
    int kind = sess_cl_redirect_parse(msg, len, &slot, &hp);
    if (kind == 0) return SESS_EPROTO;
    if (hp.host[0] == '\0')
        snprintf(hp.host, sizeof(hp.host), "%s", from->host);
    int k = sess_cl_find(cl, hp.host, hp.port);
    if (kind == 1) {
        /* the slot has moved for good: use the node named for it now,
         * and ask for the whole map (other slots may have moved too) */
        if (k >= 0) {
            cl->slot[slot] = (uint8_t)k;
        } else if (cl->slot[slot] != SESS_CL_NONE) {
            /* a primary not known yet: the slot is unserved, and the
             * cluster down, until the map has it (callers wait) */
            cl->slot[slot] = SESS_CL_NONE;
            cl->holes++;
            snprintf(cl->why, sizeof(cl->why),
                     "slot %d moved to %.100s:%d, a primary not known yet",
                     slot, hp.host, hp.port);
            if (s->connected) {
                s->connected = 0;
                sess_say(s, SESS_EDOWN, cl->why);
            }
        }
        s->gen++;
        sess_cl_want(s);
    }
    if (c->fmt == NULL || c->redirected || k < 0) return SESS_EDOWN;
    struct sess *to = cl->node[k];
    if (!to->connected || to->ac == NULL) return SESS_EDOWN;
    return sess_cmd_resend(to, c, kind == 2);
}
