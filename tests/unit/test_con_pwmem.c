/*
 * test_con_pwmem.c -- console/con_pwmem.c: libsodium's argon2id hashing in
 * an arena a thread keeps.  Strings libsodium made verify in the arena,
 * hash after hash, without the page faults of a fresh mapping; strings
 * made in it verify with plain libsodium; a cost larger than the arena
 * maps its own block; the arena is wiped after every hash, and wrong
 * passwords, truncated and malformed strings never match and leave it
 * free.  Table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>
#include <sodium.h>

#include "console/con_int.h"

static const char pw_good[] = "Padma-River-Dawn-7";
static const char pw_bad[] = "Padma-River-Dawn-8";

static long
minflt(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r); /* this test is one thread */
    return r.ru_minflt;
}

/* A string libsodium made at the configured cost (19 MiB, 2 passes) and
 * others: each verifies in an arena of 19 MiB, again and again, with no
 * fresh memory (the page faults of a 19 MiB mapping would be 4,864); the
 * arena is zero after each. */
static void
test_sodium_strings_in_arena(void **state)
{
    static const struct {
        unsigned t;
        size_t kib;
        int in_arena;
    } t[] = {
        {2, 19456, 1}, {3, 19456, 1}, {1, 64, 1},
        {4, 4096, 1},  {2, 32768, 0}, /* more than the arena: a mapping of its
                                         own */
    };
    struct con_pw_arena *a = con_pw_arena_new(19456);
    char s[crypto_pwhash_STRBYTES];

    (void)state;
    assert_non_null(a);
    assert_true(con_pw_arena_clean(a));
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        unsigned long hits = con_pw_arena_hits(a);
        long f0;

        assert_int_equal(crypto_pwhash_str_alg(s, pw_good, strlen(pw_good),
                                               t[i].t, t[i].kib * 1024,
                                               crypto_pwhash_ALG_ARGON2ID13),
                         0);
        f0 = minflt();
        for (int round = 0; round < 3; round++) {
            assert_int_equal(con_pw_verify(a, s, pw_good, strlen(pw_good)), 0);
            assert_true(con_pw_arena_clean(a));
            assert_int_equal(con_pw_verify(a, s, pw_bad, strlen(pw_bad)), -1);
        }
        if (t[i].in_arena) {
            assert_int_equal(con_pw_arena_hits(a), hits + 6);
            /* six hashes of up to 19 MiB, a handful of faults at most */
            assert_true(minflt() - f0 < 100);
        } else {
            assert_int_equal(con_pw_arena_hits(a), hits);
        }
        /* no arena: libsodium as it is */
        assert_int_equal(con_pw_verify(NULL, s, pw_good, strlen(pw_good)), 0);
        assert_int_equal(con_pw_verify(NULL, s, "", 0), -1);
        /* the length is the password's, not up to a NUL */
        assert_int_equal(con_pw_verify(a, s, pw_good, strlen(pw_good) - 1), -1);
    }
    con_pw_arena_free(a);
    con_pw_arena_free(NULL);
}

/* Strings made in the arena are crypto_pwhash_str's: libsodium verifies
 * them, reads their cost, and a fresh salt makes each one different. */
static void
test_made_in_arena(void **state)
{
    static const struct {
        unsigned long long t;
        size_t kib;
        const char *prefix;
    } t[] = {
        {2, 19456, "$argon2id$v=19$m=19456,t=2,p=1$"},
        {3, 8, "$argon2id$v=19$m=8,t=3,p=1$"},
        {2, 65536, "$argon2id$v=19$m=65536,t=2,p=1$"}, /* > the arena */
    };
    struct con_pw_arena *a = con_pw_arena_new(19456);
    char s[crypto_pwhash_STRBYTES], s2[crypto_pwhash_STRBYTES];

    (void)state;
    assert_non_null(a);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_int_equal(con_pw_make(a, pw_good, strlen(pw_good), t[i].t,
                                     t[i].kib * 1024, s),
                         0);
        assert_memory_equal(s, t[i].prefix, strlen(t[i].prefix));
        assert_true(con_pw_arena_clean(a));
        assert_int_equal(crypto_pwhash_str_verify(s, pw_good, strlen(pw_good)),
                         0);
        assert_int_equal(crypto_pwhash_str_verify(s, pw_bad, strlen(pw_bad)),
                         -1);
        assert_int_equal(
            crypto_pwhash_str_needs_rehash(s, t[i].t, t[i].kib * 1024), 0);
        assert_int_equal(con_pw_make(a, pw_good, strlen(pw_good), t[i].t,
                                     t[i].kib * 1024, s2),
                         0);
        assert_string_not_equal(s, s2);
        assert_int_equal(con_pw_verify(a, s2, pw_good, strlen(pw_good)), 0);
    }
    assert_int_equal(
        con_pw_make(NULL, pw_good, strlen(pw_good), 2, 19456 * 1024, s), 0);
    assert_int_equal(con_pw_verify(a, s, pw_good, strlen(pw_good)), 0);
    /* a cost libsodium refuses */
    assert_int_equal(
        con_pw_make(a, pw_good, strlen(pw_good), 0, 19456 * 1024, s), -1);
    assert_true(con_pw_arena_clean(a));
    con_pw_arena_free(a);
}

/* Every truncation of a good string, the string with any one character
 * changed, and malformed strings never match the right password, and the
 * arena is free and clean after each. */
static void
test_bad_strings(void **state)
{
#define SALT "c2FsdHNhbHRzYWx0c2FsdA"
#define HASH "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE"
    static const char *const bad[] = {
        "",
        "$argon2id$",
        "$argon2i$v=19$m=64,t=1,p=1$" SALT "$" HASH,
        "$argon2id$v=19$m=64,t=1,p=1$" SALT "$" HASH, /* not the password's */
        "$argon2id$v=19$m=64,t=0,p=1$" SALT "$" HASH,
        "$argon2id$v=19$m=64,t=1,p=0$" SALT "$" HASH,
        "$argon2id$v=19$m=-1,t=1,p=1$" SALT "$" HASH,
        "$argon2id$v=19$m=4294967296,t=1,p=1$" SALT "$" HASH,
        "$argon2id$v=19$m=64,t=1,p=1$" SALT "==$" HASH,
        "$argon2id$v=19$m=64,t=1,p=1$" SALT "$" HASH "$",
        "$argon2id$v=19$m=64,t=1,p=1$" SALT,
        "$argon2id$v=19$m=64,t=1,p=1$$" HASH,
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" HASH, /* salt < 8 bytes */
        "$argon2id$v=19$m=64,t=1,p=1$" SALT "$QUFBQQ",
    };
    struct con_pw_arena *a = con_pw_arena_new(64);
    char s[crypto_pwhash_STRBYTES], cut[crypto_pwhash_STRBYTES];
    size_t n;

    (void)state;
    assert_non_null(a);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(con_pw_verify(a, bad[i], pw_good, strlen(pw_good)),
                         -1);
        if (!con_pw_arena_clean(a)) fail_msg("not clean after %s", bad[i]);
    }
    assert_int_equal(crypto_pwhash_str_alg(s, pw_good, strlen(pw_good), 1,
                                           64 * 1024,
                                           crypto_pwhash_ALG_ARGON2ID13),
                     0);
    n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        memcpy(cut, s, i);
        cut[i] = '\0';
        assert_int_equal(con_pw_verify(a, cut, pw_good, strlen(pw_good)), -1);
        memcpy(cut, s, n + 1);
        cut[i] = cut[i] == 'A' ? 'B' : 'A';
        assert_int_equal(con_pw_verify(a, cut, pw_good, strlen(pw_good)), -1);
    }
    assert_int_equal(con_pw_verify(a, s, pw_good, strlen(pw_good)), 0);
    assert_true(con_pw_arena_clean(a));
    con_pw_arena_free(a);
#undef SALT
#undef HASH
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sodium_strings_in_arena),
        cmocka_unit_test(test_made_in_arena),
        cmocka_unit_test(test_bad_strings),
    };

    if (sodium_init() < 0) return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
