/*
 * con_pwmem.c -- libsodium's argon2id in memory a hashing thread keeps.
 *
 * crypto_pwhash maps a fresh block (19 MiB and more) for every hash and
 * unmaps it after: the kernel faults in and zeroes it page by page (4,864
 * faults at 19 MiB), about half of a login's CPU (bench/RESULTS.md).
 * libsodium has no allocator hook, and Debian's libargon2, which has one,
 * is the portable reference build: 2.3 times libsodium's CPU for the
 * hashing itself, more than the faults cost (bench/pwhash_rate, measured
 * side by side).  So libsodium is linked statically and its calls to
 * mmap() and munmap() go through __wrap_mmap() and __wrap_munmap() below
 * (the linker's --wrap, the Makefile's SODIUM_LIBS): on a thread that armed
 * its arena for one call (con_pw_verify(), con_pw_make()), an anonymous
 * mapping that fits is answered with the arena, and its unmapping wipes
 * the arena and gives it back; every other call, on any thread, goes to
 * the C library as before.  The hash and its string are libsodium's own:
 * nothing about their format changes.
 *
 * Wiping: libsodium does not wipe argon2's block (it gives it back to the
 * kernel, which zeroes it for the next user).  A kept block is wiped at
 * its "unmapping" instead, so the memory is zero between hashes as a
 * fresh mapping would be.  It matters: the first blocks are Blake2b of
 * the password and salt, so a block left in memory would let whoever
 * reads it (a core dump, a bug reading stale memory) test guesses at
 * Blake2b's speed, not argon2's.  The wipe is one write of memory already
 * mapped, about 1 ms at 19 MiB.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <sodium.h>

#include "console/con_int.h"

#define ARENA_MAGIC 0x41524e41u

struct con_pw_arena {
    unsigned magic;
    uint8_t *mem;
    size_t size;
    int lent;           /* to the mapping of the hash running now */
    unsigned long hits; /* hashes that ran in it */
};

/* The arena armed on this thread for the call running now, else NULL. */
static _Thread_local struct con_pw_arena *pw_armed;

/* What libsodium calls for mmap() and munmap() (the linker's --wrap).
 * Everything not ours goes to the kernel as the C library would send it
 * (a system call: __real_mmap exists only in a wrapped link, and the fuzz
 * targets link libsodium unwrapped). */
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off);
int __wrap_munmap(void *addr, size_t len);

void *
__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    struct con_pw_arena *a = pw_armed;

    if (a != NULL && !a->lent && addr == NULL && fd == -1 &&
        (flags & MAP_ANONYMOUS) && (flags & MAP_PRIVATE) &&
        prot == (PROT_READ | PROT_WRITE) && len <= a->size) {
        a->lent = 1;
        a->hits++;
        return a->mem;
    }
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int
__wrap_munmap(void *addr, size_t len)
{
    struct con_pw_arena *a = pw_armed;

    if (a != NULL && a->lent && addr == a->mem) {
        CON_AN(len <= a->size);
        sodium_memzero(a->mem, len);
        a->lent = 0;
        return 0;
    }
    return (int)syscall(SYS_munmap, addr, len);
}

struct con_pw_arena *
con_pw_arena_new(size_t kib)
{
    struct con_pw_arena *a;
    void *p = NULL;
    long page = sysconf(_SC_PAGESIZE);

    if (kib == 0 || kib > SIZE_MAX / 1024) return NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL) return NULL;
    a->size = kib * 1024;
    if (page <= 0) page = 4096;
    if (posix_memalign(&p, (size_t)page, a->size) != 0) {
        free(a);
        return NULL;
    }
    a->mem = p;
    /* zero, as a fresh mapping is, and every page faulted in now, once
     * (posix_memalign() may hand back used heap memory) */
    memset(a->mem, 0, a->size);
    a->magic = ARENA_MAGIC;
    return a;
}

void
con_pw_arena_free(struct con_pw_arena *a)
{
    if (a == NULL) return;
    CON_AN(a->magic == ARENA_MAGIC && !a->lent);
    free(a->mem);
    a->magic = 0;
    free(a);
}

unsigned long
con_pw_arena_hits(const struct con_pw_arena *a)
{
    CON_AN(a->magic == ARENA_MAGIC);
    return a->hits;
}

int
con_pw_arena_clean(const struct con_pw_arena *a)
{
    uint8_t acc = 0;

    CON_AN(a->magic == ARENA_MAGIC);
    if (a->lent) return 0;
    for (size_t i = 0; i < a->size; i++)
        acc |= a->mem[i];
    return acc == 0;
}

static void
pw_arm(struct con_pw_arena *a)
{
    CON_AN(pw_armed == NULL);
    if (a != NULL) CON_AN(a->magic == ARENA_MAGIC && !a->lent);
    pw_armed = a;
}

static void
pw_disarm(struct con_pw_arena *a)
{
    /* libsodium unmaps what it mapped on every path */
    if (a != NULL) CON_AZ(a->lent);
    pw_armed = NULL;
}

int
con_pw_verify(struct con_pw_arena *a, const char *stored, const char *password,
              size_t len)
{
    int rc;

    pw_arm(a);
    rc = crypto_pwhash_str_verify(stored, password, (unsigned long long)len);
    pw_disarm(a);
    return rc == 0 ? 0 : -1;
}

int
con_pw_make(struct con_pw_arena *a, const char *password, size_t len,
            unsigned long long opslimit, size_t memlimit, char out[128])
{
    int rc;

    pw_arm(a);
    rc = crypto_pwhash_str_alg(out, password, (unsigned long long)len, opslimit,
                               memlimit, crypto_pwhash_ALG_ARGON2ID13);
    pw_disarm(a);
    return rc == 0 ? 0 : -1;
}
