/* fuzz: sessions */
/*
 * fuzz_sess_cluster.c -- libFuzzer target for the session store's Redis
 * Cluster parsers: the input as a -MOVED / -ASK answer
 * (sess_cl_redirect_parse), as the RESP bytes of a CLUSTER SLOTS answer
 * read by hiredis's own reader (sess_cl_slots_parse), as CLUSTER INFO's
 * text (sess_cl_info_state), and as a key (sess_slot).  None may crash or read
 * out of bounds, and what they take must hold: a slot below 16384, a port
 * in 1..65535, at most 64 primaries, every slot naming one of them or none, the
 * holes counted right, and a key's slot that of its hash tag.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "sessions/sess_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *why)
{
    fprintf(stderr, "fuzz_sess_cluster: %s\n", why);
    abort();
}

static struct sess_hp fuzz_hp[SESS_CL_NODES_MAX];
static uint8_t fuzz_slot[SESS_SLOTS];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    const char *in = (const char *)data;

    struct sess_hp hp;
    int slot = -1;
    int kind = sess_cl_redirect_parse(in, size, &slot, &hp);
    if (kind < 0 || kind > 2) fuzz_fail("a redirection of no kind");
    if (kind != 0 && (slot < 0 || slot >= SESS_SLOTS || hp.port < 1 ||
                      hp.port > 65535 || strlen(hp.host) >= sizeof(hp.host)))
        fuzz_fail("a redirection taken out of range");

    /* as CLUSTER INFO's text; what it reads must be in it */
    int st = sess_cl_info_state(in, size);
    if (st < -1 || st > 1) fuzz_fail("a cluster state of no kind");
    if (st == 1) {
        int seen = 0;
        for (size_t i = 0; i + 16 <= size && !seen; i++)
            seen = memcmp(in + i, "cluster_state:ok", 16) == 0;
        if (!seen) fuzz_fail("ok without cluster_state:ok");
    }

    unsigned s = sess_slot(in, size);
    if (s >= SESS_SLOTS) fuzz_fail("a slot out of range");
    const char *open = memchr(in, '{', size);
    if (open != NULL) {
        size_t from = (size_t)(open - in) + 1;
        const char *close = memchr(open + 1, '}', size - from);
        if (close != NULL && close > open + 1 &&
            sess_slot(open + 1, (size_t)(close - open - 1)) != s)
            fuzz_fail("a key's slot is not its tag's");
    }

    /* hiredis 0.14's reader allocates an answer's array as soon as it
     * reads the length ("*1000000000" asks for 8 GB): a trusted server's
     * answer, not ours to fuzz -- keep arrays small */
    for (size_t i = 0; i < size; i++) {
        if (in[i] != '*') continue;
        long n = 0;
        for (size_t j = i + 1; j < size && in[j] >= '0' && in[j] <= '9'; j++)
            if ((n = n * 10 + (in[j] - '0')) > 4096) return 0;
    }
    redisReader *rd = redisReaderCreate();
    if (rd == NULL) return 0;
    void *r = NULL;
    if (redisReaderFeed(rd, in, size) == REDIS_OK &&
        redisReaderGetReply(rd, &r) == REDIS_OK && r != NULL) {
        int n = -1, holes = -1;
        const char *why =
            sess_cl_slots_parse(r, "asked", fuzz_hp, &n, fuzz_slot, &holes);
        if (why == NULL) {
            if (n < 0 || n > SESS_CL_NODES_MAX) fuzz_fail("primaries");
            int count = 0;
            for (int i = 0; i < SESS_SLOTS; i++) {
                if (fuzz_slot[i] == SESS_CL_NONE)
                    count++;
                else if (fuzz_slot[i] >= n)
                    fuzz_fail("a slot names no primary");
            }
            if (count != holes) fuzz_fail("holes miscounted");
            for (int i = 0; i < n; i++)
                if (fuzz_hp[i].host[0] == '\0' || fuzz_hp[i].port < 1 ||
                    fuzz_hp[i].port > 65535)
                    fuzz_fail("a primary without host or port");
        }
        freeReplyObject(r);
    }
    redisReaderFree(rd);
    return 0;
}
