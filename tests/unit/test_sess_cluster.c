/*
 * test_sess_cluster.c -- the session store's Redis Cluster parts that do
 * no I/O: the hash slot of a key (the values Redis's own documentation
 * and CLUSTER KEYSLOT give, hash tags included), the -MOVED / -ASK
 * answers, and CLUSTER SLOTS answers fed through hiredis's own reader as
 * Redis sends them (RESP bytes) -- with malformed ones refused; CLUSTER
 * INFO's cluster_state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "sessions/sess_int.h"

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

static void
test_slot(void **state)
{
    static const struct {
        const char *key;
        unsigned slot;
    } rows[] = {
        {"foo", 12182},
        {"123456789", 12739}, /* CRC16-XMODEM's check value 0x31C3 */
        {"bar", 5061},
        {"hello", 866},
        {"", 0},
        /* hash tags: the first {...} that is not empty */
        {"{user1000}.following", 3443},
        {"{user1000}.followers", 3443},
        {"foo{bar}{zap}", 5061}, /* "bar" */
        {"foo{}{bar}", 8363},    /* an empty first tag: the whole key */
        {"foo{{bar}}zap", 4015}, /* "{bar" */
        {"{bar", 4015},          /* no '}': the whole key */
        {"{remigate}:x", 2518},  /* the one-slot prefix of old */
        {"remigate", 2518},
        {"remigate:s:ussd:8801712000100", 7859},
    };
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        unsigned got = sess_slot(rows[i].key, strlen(rows[i].key));
        if (got != rows[i].slot)
            fail_msg("slot of '%s': %u, want %u", rows[i].key, got,
                     rows[i].slot);
    }
    /* bytes after a NUL count: the length decides, not strlen */
    assert_int_not_equal(sess_slot("a\0b", 3), sess_slot("a", 1));
}

static void
test_redirect(void **state)
{
    static const struct {
        const char *msg;
        int kind, slot;
        const char *host;
        int port;
    } rows[] = {
        {"MOVED 3999 127.0.0.1:6381", 1, 3999, "127.0.0.1", 6381},
        {"ASK 3999 127.0.0.1:6381", 2, 3999, "127.0.0.1", 6381},
        {"MOVED 0 10.0.0.7:7000", 1, 0, "10.0.0.7", 7000},
        {"MOVED 16383 redis-3.local:6379", 1, 16383, "redis-3.local", 6379},
        {"MOVED 12 ::1:7001", 1, 12, "::1", 7001}, /* IPv6: the last ':' */
        {"MOVED 12 :7001", 1, 12, "", 7001},       /* the node that answered */
        /* not redirections, or malformed */
        {"READONLY You can't write against a read only replica.", 0, 0, "", 0},
        {"NOSCRIPT No matching script.", 0, 0, "", 0},
        {"MOVED", 0, 0, "", 0},
        {"MOVED 16384 127.0.0.1:6381", 0, 0, "", 0},
        {"MOVED x 127.0.0.1:6381", 0, 0, "", 0},
        {"MOVED 1 127.0.0.1", 0, 0, "", 0},
        {"MOVED 1 127.0.0.1:0", 0, 0, "", 0},
        {"MOVED 1 127.0.0.1:65536", 0, 0, "", 0},
        {"MOVED 1 127.0.0.1:63a", 0, 0, "", 0},
        {"MOVED 1 127.0.0.1:", 0, 0, "", 0},
        {"MOVED 1  127.0.0.1:1", 0, 0, "", 0},
        {"MOVED  1 127.0.0.1:1", 0, 0, "", 0},
        {"ASKING", 0, 0, "", 0},
    };
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        struct sess_hp hp = {"unchanged", 1};
        int slot = -1;
        int kind = sess_cl_redirect_parse(rows[i].msg, strlen(rows[i].msg),
                                          &slot, &hp);
        if (kind != rows[i].kind)
            fail_msg("'%s': kind %d, want %d", rows[i].msg, kind, rows[i].kind);
        if (kind == 0) continue;
        if (slot != rows[i].slot || strcmp(hp.host, rows[i].host) != 0 ||
            hp.port != rows[i].port)
            fail_msg("'%s': slot %d host '%s' port %d", rows[i].msg, slot,
                     hp.host, hp.port);
    }
}

/* RESP bytes through hiredis's reader, as the async client reads them. */
static redisReply *
resp(const char *bytes)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, bytes, strlen(bytes)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_non_null(r);
    redisReaderFree(rd);
    return r;
}

/* One range's entry: from, to, the primary (host, port, id) and one
 * replica, as Redis 7 answers. */
#define RANGE(from, to, host, port)                                            \
    "*4\r\n:" from "\r\n:" to "\r\n*3\r\n$" host "\r\n:" port                  \
    "\r\n$2\r\nid\r\n*3\r\n$9\r\n127.0.0.9\r\n:9999\r\n$2\r\nid\r\n"

static void
test_slots(void **state)
{
    static struct sess_hp hp[SESS_CL_NODES_MAX];
    static uint8_t slot[SESS_SLOTS];
    int n, holes;
    (void)state;
    /* three primaries, the way redis-cli --cluster create splits them,
     * answered in another order than the slots' */
    redisReply *r =
        resp("*3\r\n" RANGE("5461", "10922", "9\r\n127.0.0.1", "7002")
                 RANGE("0", "5460", "9\r\n127.0.0.1", "7001")
                     RANGE("10923", "16383", "9\r\n127.0.0.1", "7003"));
    assert_null(sess_cl_slots_parse(r, "10.9.9.9", hp, &n, slot, &holes));
    assert_int_equal(n, 3);
    assert_int_equal(holes, 0);
    assert_string_equal(hp[slot[0]].host, "127.0.0.1");
    assert_int_equal(hp[slot[0]].port, 7001);
    assert_int_equal(hp[slot[5460]].port, 7001);
    assert_int_equal(hp[slot[5461]].port, 7002);
    assert_int_equal(hp[slot[12182]].port, 7003); /* "foo" */
    assert_int_equal(hp[slot[16383]].port, 7003);
    freeReplyObject(r);

    /* one primary with two ranges, an empty host (the node asked), and
     * a hole (a failover under way) */
    r = resp("*2\r\n" RANGE("0", "99", "0\r\n", "7001")
                 RANGE("200", "16383", "0\r\n", "7001"));
    assert_null(sess_cl_slots_parse(r, "10.9.9.9", hp, &n, slot, &holes));
    assert_int_equal(n, 1);
    assert_string_equal(hp[0].host, "10.9.9.9");
    assert_int_equal(holes, 100);
    assert_int_equal(slot[100], SESS_CL_NONE);
    assert_int_equal(slot[99], 0);
    freeReplyObject(r);

    /* an empty cluster: no primary, every slot a hole */
    r = resp("*0\r\n");
    assert_null(sess_cl_slots_parse(r, "h", hp, &n, slot, &holes));
    assert_int_equal(n, 0);
    assert_int_equal(holes, SESS_SLOTS);
    freeReplyObject(r);

    static const char *bad[] = {
        "-ERR This instance has cluster support disabled\r\n",
        "+OK\r\n",
        "*1\r\n:5\r\n",
        "*1\r\n*2\r\n:0\r\n:1\r\n",
        "*1\r\n" RANGE("5", "4", "1\r\nh", "7001"),     /* to < from */
        "*1\r\n" RANGE("0", "16384", "1\r\nh", "7001"), /* past the last */
        "*1\r\n" RANGE("-1", "4", "1\r\nh", "7001"),
        "*1\r\n" RANGE("0", "4", "1\r\nh", "0"),     /* port 0 */
        "*1\r\n" RANGE("0", "4", "1\r\nh", "65536"), /* port too big */
        "*1\r\n*3\r\n:0\r\n:1\r\n:7\r\n",            /* no primary list */
        "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n", /* no port */
        "*1\r\n*3\r\n$1\r\n0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n",
    };
    for (size_t i = 0; i < NROWS(bad); i++) {
        r = resp(bad[i]);
        if (sess_cl_slots_parse(r, "h", hp, &n, slot, &holes) == NULL)
            fail_msg("bad CLUSTER SLOTS answer %zu taken", i);
        freeReplyObject(r);
    }
    assert_non_null(sess_cl_slots_parse(NULL, "h", hp, &n, slot, &holes));
}

static void
test_cluster_list(void **state)
{
    (void)state;
    assert_null(sess_cluster_check(""));
    assert_null(sess_cluster_check(NULL));
    assert_null(sess_cluster_check("127.0.0.1:7001,127.0.0.1:7002"));
    assert_null(sess_cluster_check("[::1]:7001, redis-1:6379"));
    assert_non_null(sess_cluster_check("127.0.0.1"));
    assert_non_null(sess_cluster_check("127.0.0.1:7001,"));
    assert_non_null(sess_cluster_check("h:0"));
}

/* CLUSTER INFO's cluster_state, as Redis 7 writes it (CRLF lines) and as
 * other nodes might: only "ok" is ok, a missing field is unsaid. */
static void
test_info_state(void **state)
{
    static const struct {
        const char *txt;
        int want;
    } rows[] = {
        {"cluster_state:ok\r\ncluster_slots_assigned:16384\r\n", 1},
        {"cluster_enabled:1\r\ncluster_state:fail\r\n", 0},
        {"cluster_slots_ok:16384\r\ncluster_state:ok\r\n", 1},
        {"cluster_state:ok", 1},
        {"cluster_state:ok\n", 1},
        {"cluster_state:okay\r\n", 0},
        {"cluster_state:\r\n", 0},
        {"cluster_state:OK\r\n", 0},
        {"x_cluster_state:ok\r\n", -1},
        {"cluster_slots_ok:1\r\n", -1},
        {"cluster_stat", -1},
        {"", -1},
        {"\r\n\r\ncluster_state:fail", 0},
    };
    (void)state;
    for (size_t i = 0; i < NROWS(rows); i++) {
        int got = sess_cl_info_state(rows[i].txt, strlen(rows[i].txt));
        if (got != rows[i].want)
            fail_msg("row %zu (%s): %d, not %d", i, rows[i].txt, got,
                     rows[i].want);
    }
    /* the length bounds it: a field cut short is not read past */
    assert_int_equal(sess_cl_info_state("cluster_state:ok", 15), 0);
    assert_int_equal(sess_cl_info_state("cluster_state:ok", 13), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot),       cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_slots),      cmocka_unit_test(test_cluster_list),
        cmocka_unit_test(test_info_state),
    };
    return cmocka_run_group_tests_name("sess_cluster", tests, NULL, NULL);
}
