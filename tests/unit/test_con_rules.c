/*
 * test_con_rules.c -- console/'s pure parts: the username and password
 * rules (length in characters, not bytes; the common list without case),
 * the district list, the route matcher and the session cookie parser, the
 * role names, and the password hasher's promise that results come back
 * on the loop, never inside the call, and that stop answers what waits.
 * Table-driven.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sodium.h>

#include "console/con_int.h"

static void
test_usernames(void **state)
{
    static const struct {
        const char *u;
        int ok;
    } t[] = {
        {"rahima", 1},
        {"officer-dhaka", 1},
        {"a.b_c-9", 1},
        {"abc", 1},
        {"ab", 0},
        {"", 0},
        {"Rahima", 0},
        {"-rahima", 0},
        {"rahi ma", 0},
        {"রহিমা", 0},
        {"a23456789012345678901234567890ab", 1},
        {"a23456789012345678901234567890abc", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if ((con_username_check(t[i].u) == NULL) != t[i].ok)
            fail_msg("username '%s': expected %s", t[i].u,
                     t[i].ok ? "ok" : "refused");
}

static void
test_passwords(void **state)
{
    char path[] = "/tmp/con-rules-XXXXXX", err[256], long_pw[200];
    int fd = mkstemp(path);
    struct con_pwlist *l;
    static const char list[] = "# comment\npassword123\nBangladesh1\n\n";

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, list, sizeof(list) - 1), sizeof(list) - 1);
    close(fd);
    l = con_pwlist_load(path, err, sizeof(err));
    assert_non_null(l);
    /* eight Bangla letters are eight characters (24 bytes) */
    assert_null(con_password_check(l, "rahima",
                                   "\xe0\xa6\xb0\xe0\xa6\xb9\xe0\xa6\xbf"
                                   "\xe0\xa6\xae\xe0\xa6\xbe\xe0\xa6\xac"
                                   "\xe0\xa6\xbe\xe0\xa6\xb2"));
    /* seven are too few, though 21 bytes */
    assert_non_null(con_password_check(l, "rahima",
                                       "\xe0\xa6\xb0\xe0\xa6\xb9\xe0\xa6\xbf"
                                       "\xe0\xa6\xae\xe0\xa6\xbe\xe0\xa6\xac"
                                       "\xe0\xa6\xbe"));
    assert_non_null(con_password_check(l, "x", "1234567"));
    assert_null(con_password_check(l, "x", "12345678x"));
    assert_non_null(con_password_check(l, "x", "PASSWORD123"));
    assert_non_null(con_password_check(l, "x", "bangladesh1"));
    assert_non_null(con_password_check(l, "rahima-k", "Rahima-K"));
    assert_non_null(
        con_password_check(l, "x", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"));
    memset(long_pw, 'a', 128);
    long_pw[128] = '\0';
    assert_null(con_password_check(l, "x", long_pw));
    long_pw[128] = 'a';
    long_pw[129] = '\0';
    assert_non_null(con_password_check(l, "x", long_pw));
    con_pwlist_free(l);
    unlink(path);
    assert_null(con_pwlist_load("/nonexistent/list", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/list"));
    /* the shipped list loads and refuses the usual suspects */
    l = con_pwlist_load("config/common-passwords.txt", err, sizeof(err));
    assert_non_null(l);
    assert_non_null(con_password_check(l, "x", "Dhaka2026"));
    assert_non_null(con_password_check(l, "x", "qwertyuiop"));
    con_pwlist_free(l);
}

static void
test_districts(void **state)
{
    char err[256];
    struct con_codes *c = con_districts_load("config/lists", err, sizeof(err));

    (void)state;
    assert_non_null(c);
    assert_true(con_codes_has(c, "BD-13"));
    assert_true(con_codes_has(c, "BD-64"));
    assert_false(con_codes_has(c, "BD-65"));
    assert_false(con_codes_has(c, "bd-13"));
    assert_false(con_codes_has(c, ""));
    con_codes_free(c);
    assert_null(con_districts_load("/nonexistent", err, sizeof(err)));
}

static void
test_path_match(void **state)
{
    static const struct {
        const char *pattern, *path;
        int ok;
        const char *p0, *p1;
    } t[] = {
        {"/api/me", "/api/me", 1, NULL, NULL},
        {"/api/me", "/api/me/", 0, NULL, NULL},
        {"/api/me", "/api/m", 0, NULL, NULL},
        {"/api/officers/{}/disable", "/api/officers/rahima/disable", 1,
         "rahima", NULL},
        {"/api/officers/{}/disable", "/api/officers//disable", 0, NULL, NULL},
        {"/api/officers/{}/disable", "/api/officers/a%20b/disable", 0, NULL,
         NULL},
        {"/api/officers/{}/disable", "/api/officers/a/b/disable", 0, NULL,
         NULL},
        {"/api/x/{}/y/{}", "/api/x/AB12.CD_3-4/y/9", 1, "AB12.CD_3-4", "9"},
        {"/api/x/{}",
         "/api/x/0123456789012345678901234567890123456789012345"
         "678901234567890123",
         0, NULL, NULL},
    };
    char params[CON_PARAMS_MAX][CON_PARAM_MAX];
    int n;

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        n = -1;
        if (con_path_match(t[i].pattern, t[i].path, params, &n) != t[i].ok)
            fail_msg("%s ~ %s: expected %d", t[i].pattern, t[i].path, t[i].ok);
        if (t[i].p0) assert_string_equal(params[0], t[i].p0);
        if (t[i].p1) assert_string_equal(params[1], t[i].p1);
    }
}

static void
test_cookie(void **state)
{
    static const struct {
        const char *h;
        const char *sid;
    } t[] = {
        {"remigate_console=0123456789abcdef0123456789abcdef",
         "0123456789abcdef0123456789abcdef"},
        {"a=1; remigate_console=0123456789abcdef0123456789abcdef; b=2",
         "0123456789abcdef0123456789abcdef"},
        {"xremigate_console=0123456789abcdef0123456789abcdef", NULL},
        {"remigate_console=0123456789ABCDEF0123456789abcdef", NULL},
        {"remigate_console=0123456789abcdef", NULL},
        {"remigate_console=0123456789abcdef0123456789abcdef00", NULL},
        {"remigate_console", NULL},
        {"", NULL},
        {NULL, NULL},
    };
    char sid[CON_TOKEN_HEX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int got = con_cookie_parse(t[i].h, sid);
        if (got != (t[i].sid != NULL))
            fail_msg("cookie '%s': %d", t[i].h ? t[i].h : "(null)", got);
        if (got) assert_string_equal(sid, t[i].sid);
    }
}

static void
test_roles(void **state)
{
    (void)state;
    assert_int_equal(con_role_bit("admin"), CON_ROLE_ADMIN);
    assert_int_equal(con_role_bit("officer"), CON_ROLE_OFFICER);
    assert_int_equal(con_role_bit("analyst"), CON_ROLE_ANALYST);
    assert_int_equal(con_role_bit("Admin"), 0);
    assert_int_equal(con_role_bit(NULL), 0);
    assert_string_equal(con_role_name(CON_ROLE_OFFICER), "officer");
    assert_null(con_role_name(CON_ROLE_ANY));
}

struct hres {
    int calls, status;
    char hash[128];
};

static void
on_hash(int status, const char *hash, void *arg)
{
    struct hres *r = arg;
    r->calls++;
    r->status = status;
    if (hash) snprintf(r->hash, sizeof(r->hash), "%s", hash);
}

/* The se.slice (ns) of /proc/self/task/tid/sched, or -1 where the
 * kernel has no slice a thread can ask for (before Linux 6.12). */
static long long
slice_ns_of(const char *tid)
{
    struct utsname u;
    int major = 0, minor = 0;
    char path[300], line[256];
    long long v = -1;
    FILE *f;

    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2 ||
        major * 100 + minor < 612)
        return -1;
    if (strcmp(tid, "self") == 0)
        snprintf(path, sizeof(path), "/proc/thread-self/sched");
    else
        snprintf(path, sizeof(path), "/proc/self/task/%s/sched", tid);
    if ((f = fopen(path, "r")) == NULL) return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "se.slice ", 9) == 0) {
            const char *c = strchr(line, ':');
            if (c != NULL) v = atoll(c + 1);
        }
    fclose(f);
    return v;
}

/* Threads of this process whose slice is ns. */
static int
threads_with_slice(long long ns)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && slice_ns_of(e->d_name) == ns) n++;
    closedir(d);
    return n;
}

static void
test_hasher(void **state)
{
    struct event_base *base = event_base_new();
    char err[256];
    struct con_hasher *h;
    struct hres made = {0}, good = {0}, bad = {0}, late[4];

    (void)state;
    assert_non_null(base);
    h = con_hasher_new(base, 2, 10, 5000, 2, 19456 * 1024, err, sizeof(err));
    assert_non_null(h);
    assert_int_equal(con_hash_make(h, "Padma-River-Dawn-7", on_hash, &made), 0);
    assert_int_equal(made.calls, 0); /* never inside the call */
    while (made.calls == 0)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(made.status, CON_HASH_OK);
    assert_memory_equal(made.hash, "$argon2id$v=19$m=19456,t=2,p=1$", 31);
    assert_int_equal(
        con_hash_verify(h, made.hash, "Padma-River-Dawn-7", on_hash, &good), 0);
    assert_int_equal(
        con_hash_verify(h, made.hash, "Padma-River-Dawn-8", on_hash, &bad), 0);
    while (good.calls == 0 || bad.calls == 0)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(good.status, CON_HASH_OK);
    assert_int_equal(bad.status, CON_HASH_MISMATCH);
    /* each thread asked for a 5 ms slice, where the kernel takes one */
    if (slice_ns_of("self") >= 0) {
        for (int i = 0; i < 200 && threads_with_slice(5000000) < 2; i++)
            usleep(10000);
        assert_int_equal(threads_with_slice(5000000), 2);
    }
    assert_int_equal(
        crypto_pwhash_str_verify(made.hash, "Padma-River-Dawn-7", 18), 0);
    /* a string libsodium made (stored by earlier versions) verifies on the
     * threads, in their arenas; one nobody can read matches nothing */
    {
        char old[crypto_pwhash_STRBYTES];
        struct hres o_good = {0}, o_bad = {0}, junk = {0};
        assert_int_equal(crypto_pwhash_str_alg(old, "Jamuna-Bridge-3", 15, 2,
                                               19456 * 1024,
                                               crypto_pwhash_ALG_ARGON2ID13),
                         0);
        assert_int_equal(
            con_hash_verify(h, old, "Jamuna-Bridge-3", on_hash, &o_good), 0);
        assert_int_equal(
            con_hash_verify(h, old, "Jamuna-Bridge-4", on_hash, &o_bad), 0);
        assert_int_equal(con_hash_verify(h, "$argon2id$v=19$m=19456,t=2,p=1$",
                                         "Jamuna-Bridge-3", on_hash, &junk),
                         0);
        while (o_good.calls == 0 || o_bad.calls == 0 || junk.calls == 0)
            event_base_loop(base, EVLOOP_ONCE);
        assert_int_equal(o_good.status, CON_HASH_OK);
        assert_int_equal(o_bad.status, CON_HASH_MISMATCH);
        assert_int_equal(junk.status, CON_HASH_MISMATCH);
    }
    /* stop: whatever still waits is answered, once, before it returns */
    memset(late, 0, sizeof(late));
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            con_hash_verify(h, made.hash, "x-y-z-w-1", on_hash, &late[i]), 0);
    assert_int_equal(con_hasher_pending(h), 4);
    con_hasher_stop(h);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(late[i].calls, 1);
        assert_true(late[i].status == CON_HASH_MISMATCH ||
                    late[i].status == CON_HASH_ESTOPPED);
    }
    assert_int_equal(con_hasher_pending(h), 0);
    assert_int_equal(con_hash_make(h, "Padma-River-Dawn-7", on_hash, &made),
                     -1);
    con_hasher_free(h);
    con_hasher_free(NULL);
    event_base_free(base);
}

/* Threads of this process whose scheduling policy (field 41 of
 * /proc/self/task/N/stat) is policy. */
static int
threads_with_policy(int policy)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[1024];
        FILE *f;
        size_t len;
        const char *p;
        int field = 2, v = -1;

        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        if ((f = fopen(path, "r")) == NULL) continue;
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* after the command's ")" the fields are plain words */
        if ((p = strrchr(buf, ')')) == NULL) continue;
        for (p++; *p && field < 41; p++)
            if (*p == ' ') field++;
        if (field == 41) v = atoi(p);
        if (v == policy) n++;
    }
    closedir(d);
    return n;
}

/* gw_sched_thread(): the calling thread's slice is the one asked for
 * (where the kernel has one to ask for), 0 gives the kernel's back, and
 * a nice out of range is refused. */
static void
test_sched_thread(void **state)
{
    long long dflt = slice_ns_of("self");

    (void)state;
    assert_int_equal(gw_sched_thread(0, 20, 100), -1);
    assert_int_equal(gw_sched_thread(0, -21, 100), -1);
    assert_int_equal(gw_sched_thread(0, 0, -1), -1);
    assert_int_equal(gw_sched_thread(0, 0, 250), 0);
    if (dflt >= 0) assert_int_equal(slice_ns_of("self"), 250000);
    assert_int_equal(gw_sched_thread(0, 0, 0), 0);
    if (dflt >= 0) assert_int_equal(slice_ns_of("self"), dflt);
}

/* console.hash_policy = idle: the hashing threads are SCHED_IDLE (5),
 * and they still hash. */
static void
test_hasher_sched_idle(void **state)
{
    struct event_base *base = event_base_new();
    char err[256];
    struct con_hasher *h;
    struct hres made = {0};

    (void)state;
    assert_non_null(base);
    assert_null(
        con_hasher_new(base, 1, -2, 0, 2, 19456 * 1024, err, sizeof(err)));
    assert_null(
        con_hasher_new(base, 1, 10, -1, 2, 19456 * 1024, err, sizeof(err)));
    assert_int_equal(threads_with_policy(5), 0);
    /* a slice asked for with SCHED_IDLE is accepted (the kernel gives
     * SCHED_IDLE threads none of their own) */
    h = con_hasher_new(base, 2, CON_HASH_SCHED_IDLE, 5000, 2, 19456 * 1024, err,
                       sizeof(err));
    assert_non_null(h);
    assert_int_equal(con_hash_make(h, "Padma-River-Dawn-7", on_hash, &made), 0);
    while (made.calls == 0)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(made.status, CON_HASH_OK);
    /* both threads have started by now: each set its policy first thing,
     * and one of them hashed; the other may still be on its way */
    for (int i = 0; i < 200 && threads_with_policy(5) < 2; i++)
        usleep(10000);
    assert_int_equal(threads_with_policy(5), 2);
    con_hasher_free(h);
    assert_int_equal(threads_with_policy(5), 0);
    event_base_free(base);
}

/* con_hasher_max_wait(): behind one thread busy with a hash, jobs that
 * wait longer than the limit come back CON_HASH_ELATE, unhashed; with no
 * limit (0) the same jobs are all checked. */
static void
test_hasher_max_wait(void **state)
{
    struct event_base *base = event_base_new();
    char err[256];
    struct con_hasher *h;
    struct hres made = {0}, r[4];
    int late;

    (void)state;
    assert_non_null(base);
    h = con_hasher_new(base, 1, 0, 0, 2, 19456 * 1024, err, sizeof(err));
    assert_non_null(h);
    assert_int_equal(con_hash_make(h, "Padma-River-Dawn-7", on_hash, &made), 0);
    while (made.calls == 0)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(made.status, CON_HASH_OK);
    for (int limit = 1; limit >= 0; limit--) {
        con_hasher_max_wait(h, limit);
        memset(r, 0, sizeof(r));
        /* the first is taken at once; each later one waits for at least
         * one whole hash (tens of ms) on the only thread */
        for (int i = 0; i < 4; i++)
            assert_int_equal(con_hash_verify(h, made.hash, "Padma-River-Dawn-7",
                                             on_hash, &r[i]),
                             0);
        while (r[0].calls + r[1].calls + r[2].calls + r[3].calls < 4)
            event_base_loop(base, EVLOOP_ONCE);
        late = 0;
        for (int i = 1; i < 4; i++) {
            assert_int_equal(r[i].calls, 1);
            late += r[i].status == CON_HASH_ELATE;
            if (r[i].status != CON_HASH_ELATE)
                assert_int_equal(r[i].status, CON_HASH_OK);
        }
        assert_int_equal(late, limit ? 3 : 0);
    }
    con_hasher_free(h);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usernames),
        cmocka_unit_test(test_passwords),
        cmocka_unit_test(test_districts),
        cmocka_unit_test(test_path_match),
        cmocka_unit_test(test_cookie),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_hasher),
        cmocka_unit_test(test_sched_thread),
        cmocka_unit_test(test_hasher_sched_idle),
        cmocka_unit_test(test_hasher_max_wait),
    };
    if (sodium_init() < 0) return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
