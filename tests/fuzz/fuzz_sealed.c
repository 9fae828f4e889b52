/* fuzz: store flows */
/*
 * fuzz_sealed.c -- libFuzzer target for what opens sealed values read back
 * from Redis: store_sess_open() (a session's secrets, "ss1:") and
 * store_record_open() (a queued record, "rq1:").  Anyone who can write to
 * Redis chooses these bytes.  Any input is refused or opens; whatever
 * opens was sealed by us (the key is the fuzzer's own, so only inputs that
 * are our own seals can), and a seal of any input opens to exactly it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct store *fuzz_store;

static struct store *
fuzz_sealed_store(void)
{
    char path[] = "/tmp/fuzz_sealed.XXXXXX", err[256];
    if (fuzz_store != NULL) return fuzz_store;
    int fd = mkstemp(path);
    /* a fixed key: 64 hex digits */
    static const char key[] = "00112233445566778899aabbccddeeff"
                              "00112233445566778899aabbccddeeff\n";
    if (fd < 0 || write(fd, key, sizeof(key) - 1) != (ssize_t)sizeof(key) - 1)
        abort();
    close(fd);
    struct event_base *base = event_base_new();
    struct store_config sc = {.dsn = "", .key_file = path};
    fuzz_store = base ? store_new(&sc, base, err, sizeof(err)) : NULL;
    unlink(path);
    if (fuzz_store == NULL) abort();
    return fuzz_store;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[70000], sealed[100000], back[70000];
    struct store *s = fuzz_sealed_store();
    const char *in = (const char *)data;

    if (size > 65536) return 0;
    /* what a reader of Redis does with the bytes: refused or opened */
    int n =
        store_sess_open(s, "s:ussd:8801712345678", in, size, out, sizeof(out));
    if (n >= 0 && (size_t)n >= sizeof(out)) abort();
    n = store_record_open(s, in, size, out, sizeof(out));
    if (n >= 0 && (size_t)n >= sizeof(out)) abort();
    /* a seal of the bytes opens to them, for its own session only */
    int sl = store_sess_seal(s, "s:sms:8801712345678", in, size, sealed,
                             sizeof(sealed));
    if (sl < 0) abort();
    n = store_sess_open(s, "s:sms:8801712345678", sealed, (size_t)sl, back,
                        sizeof(back));
    if (n != (int)size || memcmp(back, in, size) != 0) abort();
    if (store_sess_open(s, "s:sms:8801712345679", sealed, (size_t)sl, back,
                        sizeof(back)) != STORE_ECRYPTO)
        abort();
    sl = store_record_seal(s, in, size, sealed, sizeof(sealed));
    if (sl < 0) abort();
    n = store_record_open(s, sealed, (size_t)sl, back, sizeof(back));
    if (n != (int)size || memcmp(back, in, size) != 0) abort();
    return 0;
}
