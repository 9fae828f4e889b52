/*
 * gw_assert.h -- invariant checks for every gateway file.
 *
 * AN(p) says p is not NULL (or not zero), AZ(x) says x is zero, WRONG(why)
 * marks a branch that cannot be taken.  A failed check prints
 * "assert: func file:line expr" on stderr and aborts.  They are never
 * compiled out (NDEBUG changes nothing) and they check invariants only:
 * bad input gets an error, never an abort.
 *
 * Self-contained on purpose: the pure parsers use them too and are linked
 * alone into fuzz targets, without the log.
 */
#ifndef GW_ASSERT_H
#define GW_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

__attribute__((noreturn, cold)) static inline void
gw_assert_fail(const char *func, const char *file, int line, const char *expr)
{
    fprintf(stderr, "assert: %s %s:%d %s\n", func, file, line, expr);
    fflush(stderr);
    abort();
}

#define AN(x)                                                                  \
    do {                                                                       \
        if (!(x))                                                              \
            gw_assert_fail(__func__, __FILE__, __LINE__, "(" #x ") != 0");     \
    } while (0)

#define AZ(x)                                                                  \
    do {                                                                       \
        if ((x) != 0)                                                          \
            gw_assert_fail(__func__, __FILE__, __LINE__, "(" #x ") == 0");     \
    } while (0)

#define WRONG(why) gw_assert_fail(__func__, __FILE__, __LINE__, "wrong: " why)

/* Objects that travel through void * carry a magic number first. */
#define GW_CHECK_MAGIC(p, m)                                                   \
    do {                                                                       \
        AN(p);                                                                 \
        if ((p)->magic != (m))                                                 \
            gw_assert_fail(__func__, __FILE__, __LINE__,                       \
                           "(" #p ")->magic == " #m);                          \
    } while (0)

#endif
