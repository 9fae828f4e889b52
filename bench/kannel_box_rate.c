/*
 * kannel_box_rate.c -- what handing SMS to Kannel costs over bearerbox's
 * own box protocol, for comparison with smsbox's HTTP sendsms and its
 * dlr-url (what remigate does): a measurement of a design not built, not
 * part of the daemon.
 *
 *   build/bench/kannel_box_rate BEARERBOX_SMSBOX_PORT [RATE [SECS]]
 *
 * Connects to bearerbox as a box that names itself "rgbench" (an admin
 * identify), sends RATE (default 200) one-part MT messages a second in
 * ticks of 20 ms to the "sms" bind, each with dlr-mask 31 and a dlr-url of
 * its own, and reads what comes back on the same connection: bearerbox's
 * ack of each message, and the delivery reports, which bearerbox routes
 * to the box that sent the message (type 3, report_mo) and which the box
 * acknowledges as smsbox does (bearerbox holds back more than its
 * max-pending otherwise).  After 5 s of warm-up, for SECS s (default 30):
 *
 *   BOX sent=.. acks=.. nacks=.. reports_1=.. reports_8=.. other=..
 *       cpu_us_per_sms=.. wakeups_per_sms=..
 *
 * counted over the measured window: the process's CPU time (schedstat)
 * and its voluntary context switches (each a sleep and a wake-up) per
 * message sent.  No PostgreSQL: only the traffic with Kannel.
 *
 * The wire format (Kannel 1.4.5, gw/msg-decl.h): a message is a 32-bit
 * big-endian length and then its fields in order; integers are 32-bit
 * big-endian, strings a 32-bit length (-1: none) and their bytes, a
 * message id the 36-character text of a UUID as a string.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

enum { T_HEARTBEAT = 0, T_ADMIN = 1, T_SMS = 2, T_ACK = 3 };
enum { CMD_IDENTIFY = 3, MT_PUSH = 2, REPORT_MO = 3 };
#define BOX_ID  "rgbench"
#define TICK_MS 20
#define WARM_MS 5000

struct run {
    struct event_base *base;
    struct bufferevent *bev;
    int rate, secs;
    long sent, acks, nacks, reports[32], other;
    long k;
    long long t0, next;
    double owed; /* messages due and not yet sent */
    int measuring;
    long sent0;
    unsigned long long cpu0, vol0;
};

static void
put32(struct evbuffer *b, int32_t v)
{
    uint32_t n = htonl((uint32_t)v);
    evbuffer_add(b, &n, 4);
}

static void
putstr(struct evbuffer *b, const char *s)
{
    if (s == NULL) {
        put32(b, -1);
        return;
    }
    put32(b, (int32_t)strlen(s));
    evbuffer_add(b, s, strlen(s));
}

static int32_t
get32(const unsigned char *p)
{
    uint32_t n;
    memcpy(&n, p, 4);
    return (int32_t)ntohl(n);
}

/* Send m as one framed message, and empty it. */
static void
frame(struct run *r, struct evbuffer *m)
{
    struct evbuffer *out = bufferevent_get_output(r->bev);
    put32(out, (int32_t)evbuffer_get_length(m));
    evbuffer_add_buffer(out, m);
}

static void
send_sms(struct run *r, struct evbuffer *m)
{
    unsigned char u[16];
    char id[37], to[24], url[96];

    randombytes_buf(u, sizeof(u));
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    snprintf(id, sizeof(id),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
             u[11], u[12], u[13], u[14], u[15]);
    snprintf(to, sizeof(to), "+88017%08ld", r->k++ % 100000000);
    snprintf(url, sizeof(url), "http://127.0.0.1:9/kannel/dlr?id=%s", id);
    put32(m, T_SMS);
    putstr(m, "16247"); /* sender */
    putstr(m, to);      /* receiver */
    putstr(m, "");      /* udhdata */
    putstr(m, "Bench 1: welding course at TTC Dhaka, reply B1. Reply STOP "
              "to stop");
    put32(m, (int32_t)time(NULL)); /* time */
    putstr(m, "sms");              /* smsc_id */
    putstr(m, NULL);               /* smsc_number */
    putstr(m, NULL);               /* foreign_id */
    putstr(m, "notices");          /* service */
    putstr(m, NULL);               /* account */
    putstr(m, id);                 /* id */
    put32(m, MT_PUSH);             /* sms_type */
    put32(m, -1);                  /* mclass */
    put32(m, -1);                  /* mwi */
    put32(m, 0);                   /* coding: GSM 7-bit */
    put32(m, -1);                  /* compress */
    put32(m, -1);                  /* validity */
    put32(m, -1);                  /* deferred */
    put32(m, 31);                  /* dlr_mask */
    putstr(m, url);                /* dlr_url */
    put32(m, -1);                  /* pid */
    put32(m, -1);                  /* alt_dcs */
    put32(m, -1);                  /* rpi */
    putstr(m, NULL);               /* charset */
    putstr(m, BOX_ID);             /* boxc_id: reports come back here */
    putstr(m, NULL);               /* binfo */
    put32(m, -1);                  /* msg_left */
    put32(m, -1);                  /* priority */
    put32(m, -1);                  /* resend_try */
    put32(m, -1);                  /* resend_time */
    putstr(m, NULL);               /* meta_data */
    frame(r, m);
    r->sent++;
}

/* Skip one string field at *o of p (len bytes); its length, or -2 when
 * it runs past the end. */
static int32_t
skipstr(const unsigned char *p, size_t len, size_t *o)
{
    int32_t l;
    if (*o + 4 > len) return -2;
    l = get32(p + *o);
    if (l > 0 && (size_t)l > len - *o - 4) return -2;
    *o += 4 + (size_t)(l > 0 ? l : 0);
    return l;
}

/* An sms from bearerbox: count a report by its type, and ack it. */
static void
got_sms(struct run *r, const unsigned char *p, size_t len)
{
    size_t o = 4, id_at;
    int32_t l = 0, type, mask;

    for (int i = 0; i < 4 && l >= -1; i++) /* sender .. msgdata */
        l = skipstr(p, len, &o);
    o += 4;                                /* time */
    for (int i = 0; i < 5 && l >= -1; i++) /* smsc_id .. account */
        l = skipstr(p, len, &o);
    id_at = o;
    if (l < -1 || skipstr(p, len, &o) != 36 || o + 4 * 8 > len) {
        r->other++;
        return;
    }
    type = get32(p + o);
    mask = get32(p + o + 4 * 7);
    if (type == REPORT_MO && mask > 0 && mask < 32)
        r->reports[mask]++;
    else
        r->other++;
    struct evbuffer *m = evbuffer_new();
    put32(m, T_ACK);
    put32(m, 0); /* ack_success */
    put32(m, (int32_t)time(NULL));
    evbuffer_add(m, p + id_at, 40); /* the id as it came: length, text */
    frame(r, m);
    evbuffer_free(m);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct run *r = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    unsigned char hdr[4];

    for (;;) {
        size_t n = evbuffer_get_length(in);
        int32_t len;
        if (n < 4) return;
        evbuffer_copyout(in, hdr, 4);
        len = get32(hdr);
        if (len < 4 || len > 1 << 20) {
            fprintf(stderr, "kannel_box_rate: bad frame length %d\n", len);
            event_base_loopbreak(r->base);
            return;
        }
        if (n < (size_t)len + 4) return;
        const unsigned char *p = evbuffer_pullup(in, len + 4) + 4;
        switch (get32(p)) {
        case T_ACK:
            if (len >= 8 && get32(p + 4) == 0)
                r->acks++;
            else
                r->nacks++;
            break;
        case T_SMS:
            got_sms(r, p, (size_t)len);
            break;
        default:
            r->other++;
        }
        evbuffer_drain(in, (size_t)len + 4);
    }
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct run *r = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        fprintf(stderr, "kannel_box_rate: bearerbox closed the connection\n");
        event_base_loopbreak(r->base);
    }
}

/* The loop's time of this turn, in ms (wall clock: a bench run). */
static long long
loop_ms(struct event_base *base)
{
    struct timeval tv;
    event_base_gettimeofday_cached(base, &tv);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* This process's CPU time in ns and its voluntary context switches. */
static void
self_stats(unsigned long long *cpu, unsigned long long *vol)
{
    char line[256];
    FILE *f = fopen("/proc/self/schedstat", "r");
    *cpu = 0;
    *vol = 0;
    if (f != NULL) {
        if (fscanf(f, "%llu", cpu) != 1) *cpu = 0;
        fclose(f);
    }
    f = fopen("/proc/self/status", "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
            *vol = strtoull(line + 24, NULL, 10);
    if (f != NULL) fclose(f);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    struct evbuffer *m = evbuffer_new();
    long long now = loop_ms(r->base);
    (void)fd;
    (void)what;
    while (r->next <= now) {
        /* a rate that is not a multiple of 1000 / TICK_MS carries the
         * fraction over to the next tick */
        r->owed += (double)r->rate * TICK_MS / 1000.0;
        for (; r->owed >= 1.0; r->owed -= 1.0)
            send_sms(r, m);
        r->next += TICK_MS;
    }
    evbuffer_free(m);
    if (!r->measuring && now - r->t0 >= WARM_MS) {
        r->measuring = 1;
        r->sent0 = r->sent;
        self_stats(&r->cpu0, &r->vol0);
    }
    if (now - r->t0 >= WARM_MS + (long long)r->secs * 1000) {
        unsigned long long cpu, vol;
        long s;
        self_stats(&cpu, &vol);
        s = r->sent - r->sent0;
        if (s < 1) s = 1;
        printf("BOX sent=%ld acks=%ld nacks=%ld reports_1=%ld reports_8=%ld "
               "other=%ld cpu_us_per_sms=%.1f wakeups_per_sms=%.2f\n",
               r->sent, r->acks, r->nacks, r->reports[1], r->reports[8],
               r->other, (double)(cpu - r->cpu0) / 1e3 / (double)s,
               (double)(vol - r->vol0) / (double)s);
        event_base_loopbreak(r->base);
    }
}

static void
heartbeat(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    struct evbuffer *m = evbuffer_new();
    (void)fd;
    (void)what;
    put32(m, T_HEARTBEAT);
    put32(m, 0); /* load */
    frame(r, m);
    evbuffer_free(m);
}

int
main(int argc, char **argv)
{
    struct run r;
    struct sockaddr_in sa;
    struct timeval t_tick = {0, TICK_MS * 1000}, t_hb = {1, 0};
    struct event *te, *he;
    struct evbuffer *m;

    memset(&r, 0, sizeof(r));
    if (argc < 2 || sodium_init() < 0) {
        fprintf(stderr, "usage: kannel_box_rate PORT [RATE [SECS]]\n");
        return 2;
    }
    r.rate = argc > 2 ? atoi(argv[2]) : 200;
    r.secs = argc > 3 ? atoi(argv[3]) : 30;
    if (r.rate < 50 || r.rate > 10000 || r.secs < 1) {
        fprintf(stderr, "kannel_box_rate: RATE 50..10000, SECS >= 1\n");
        return 2;
    }
    r.base = event_base_new();
    r.bev = bufferevent_socket_new(r.base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (r.base == NULL || r.bev == NULL) return 1;
    bufferevent_setcb(r.bev, on_read, NULL, on_event, &r);
    bufferevent_enable(r.bev, EV_READ | EV_WRITE);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(argv[1]));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (bufferevent_socket_connect(r.bev, (struct sockaddr *)&sa, sizeof(sa)) <
        0) {
        fprintf(stderr, "kannel_box_rate: cannot connect to port %s\n",
                argv[1]);
        return 1;
    }
    m = evbuffer_new();
    put32(m, T_ADMIN);
    put32(m, CMD_IDENTIFY);
    putstr(m, BOX_ID);
    frame(&r, m);
    evbuffer_free(m);
    heartbeat(-1, 0, &r);
    r.t0 = r.next = loop_ms(r.base);
    te = event_new(r.base, -1, EV_PERSIST, tick, &r);
    he = event_new(r.base, -1, EV_PERSIST, heartbeat, &r);
    event_add(te, &t_tick);
    event_add(he, &t_hb);
    event_base_dispatch(r.base);
    event_free(te);
    event_free(he);
    bufferevent_free(r.bev);
    event_base_free(r.base);
    return 0;
}
