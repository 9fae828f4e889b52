/*
 * con_hash.c -- argon2id (libsodium crypto_pwhash) off the event loop.
 *
 * One hash costs tens of milliseconds of CPU and 19 MiB or more: on the
 * loop it would stall every USSD step of the worker.  A few threads take
 * jobs from a queue under a mutex; a finished job goes on a done list and
 * one byte into a pipe, whose read end the loop watches.  The loop drains
 * the done list and calls back -- so a callback always runs on the loop,
 * and never inside the call that queued its job.  Passwords are copied
 * into the job and wiped when it ends.
 *
 * Each thread keeps one argon2 arena of the configured size for its life
 * (con_pwmem.c: every page touched at start) and libsodium hashes in it:
 * no mapping, page faults or unmapping per hash, which were about half a
 * hash's CPU.  The price is the memory: threads x console.pwhash_kib per
 * worker, held while idle too.
 *
 * Off the loop is not enough on a busy machine: a hash is 19 MiB and two
 * passes of CPU, and the threads compete with the loop for the same cores.
 * They run at a lower priority (console.hash_nice, nice is per thread on
 * Linux), so the scheduler gives the loop's short USSD steps the CPU first
 * and logins wait for what is left (bench/login-load).  With
 * console.hash_policy = idle they are SCHED_IDLE instead: a weight of 3
 * against nice 19's 15 and nice 0's 1024, and no preempting a normal
 * thread on wake-up -- the loop (and PostgreSQL, Redis) always run first;
 * on a machine that is never idle a login can wait long (its deadline).
 * Going down to SCHED_IDLE needs no privilege.  On Linux 6.12 and later
 * they also ask for a long slice (console.hash_slice_us, 100 ms) and the
 * loop for a short one (listen.slice_us): EEVDF then picks the loop first
 * when it wakes and preempts a hash less often (gateway/gw_sched.c).
 *
 * A job that waited longer than console.hash_max_wait_ms is answered
 * CON_HASH_ELATE and not hashed: when logins come faster than the threads
 * hash, every one would otherwise wait behind all the others, past its
 * request's deadline, and the CPU would go on hashes nobody waits for.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "console/con_int.h"

#define HASH_MAGIC     0x48415348u
#define HASH_THREADS   16
#define HASH_STR_BYTES crypto_pwhash_STRBYTES

enum hash_kind { HASH_VERIFY, HASH_MAKE };

struct hash_job {
    TAILQ_ENTRY(hash_job) link;
    enum hash_kind kind;
    char password[CON_PW_MAX * 4 + 1];
    char stored[HASH_STR_BYTES];
    char out[HASH_STR_BYTES];
    int status;
    long long queued_ms; /* CLOCK_MONOTONIC when queued */
    con_hash_cb *cb;
    void *arg;
};

TAILQ_HEAD(hash_list, hash_job);

/* What one thread is given: its hasher and its own arena. */
struct hash_slot {
    struct con_hasher *h;
    struct con_pw_arena *arena;
};

struct con_hasher {
    unsigned magic;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct hash_list todo, done;
    int pending; /* queued + running + done not yet called back */
    int stopping;
    int nthreads;
    pthread_t threads[HASH_THREADS];
    struct hash_slot slots[HASH_THREADS];
    int pipe_rd, pipe_wr;
    int nice;
    long slice_us;
    int max_wait_ms; /* 0: none; read under mu */
    struct event *ev;
    unsigned long long opslimit;
    size_t memlimit;
};

static long long
hash_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
hash_job_free(struct hash_job *j)
{
    sodium_memzero(j->password, sizeof(j->password));
    free(j);
}

static void
hash_job_run(const struct hash_slot *slot, struct hash_job *j)
{
    const struct con_hasher *h = slot->h;
    size_t len = strlen(j->password);

    switch (j->kind) {
    case HASH_VERIFY:
        if (con_pw_verify(slot->arena, j->stored, j->password, len) == 0)
            j->status = CON_HASH_OK;
        else
            j->status = CON_HASH_MISMATCH;
        break;
    case HASH_MAKE:
        j->status = con_pw_make(slot->arena, j->password, len, h->opslimit,
                                h->memlimit, j->out) == 0
                        ? CON_HASH_OK
                        : CON_HASH_EFAIL;
        break;
    default:
        CON_WRONG("hash job kind");
    }
    sodium_memzero(j->password, sizeof(j->password));
}

static void *
hash_thread(void *arg)
{
    struct hash_slot *slot = arg;
    struct con_hasher *h = slot->h;
    struct hash_job *j;
    char one = 1;
    int late;

    /* best effort: where the kernel refuses, it stays as it is */
    if (gw_sched_thread(h->nice == CON_HASH_SCHED_IDLE,
                        h->nice == CON_HASH_SCHED_IDLE ? 0 : h->nice,
                        h->slice_us) != 0) {
    }
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->stopping && TAILQ_EMPTY(&h->todo))
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->stopping) break;
        j = TAILQ_FIRST(&h->todo);
        TAILQ_REMOVE(&h->todo, j, link);
        late =
            h->max_wait_ms > 0 && hash_now_ms() - j->queued_ms > h->max_wait_ms;
        pthread_mutex_unlock(&h->mu);
        if (late) {
            j->status = CON_HASH_ELATE;
            sodium_memzero(j->password, sizeof(j->password));
        } else {
            hash_job_run(slot, j);
        }
        pthread_mutex_lock(&h->mu);
        TAILQ_INSERT_TAIL(&h->done, j, link);
        /* a full pipe already wakes the loop: EAGAIN is fine */
        if (write(h->pipe_wr, &one, 1) < 0 && errno != EAGAIN) {
            /* the loop still drains on its next wake-up */
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Call back every job on the done list (on the loop). */
static void
hash_drain(struct con_hasher *h)
{
    struct hash_list ready;
    struct hash_job *j;

    TAILQ_INIT(&ready);
    pthread_mutex_lock(&h->mu);
    while ((j = TAILQ_FIRST(&h->done)) != NULL) {
        TAILQ_REMOVE(&h->done, j, link);
        TAILQ_INSERT_TAIL(&ready, j, link);
    }
    pthread_mutex_unlock(&h->mu);
    while ((j = TAILQ_FIRST(&ready)) != NULL) {
        TAILQ_REMOVE(&ready, j, link);
        h->pending--;
        j->cb(j->status, j->kind == HASH_MAKE && j->status == 0 ? j->out : NULL,
              j->arg);
        hash_job_free(j);
    }
}

static void
hash_on_pipe(evutil_socket_t fd, short what, void *arg)
{
    char buf[64];

    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    hash_drain(arg);
}

struct con_hasher *
con_hasher_new(struct event_base *base, int threads, int nice, long slice_us,
               unsigned long long opslimit, size_t memlimit, char *err,
               size_t errlen)
{
    struct con_hasher *h;
    int fds[2];

    if (threads < 1 || threads > HASH_THREADS ||
        (nice != CON_HASH_SCHED_IDLE && (nice < 0 || nice > 19)) ||
        slice_us < 0 || slice_us > 100000 ||
        opslimit < crypto_pwhash_OPSLIMIT_MIN ||
        memlimit < crypto_pwhash_MEMLIMIT_MIN) {
        snprintf(err, errlen, "hasher: bad settings");
        return NULL;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        snprintf(err, errlen, "hasher: out of memory");
        return NULL;
    }
    h->magic = HASH_MAGIC;
    h->opslimit = opslimit;
    h->memlimit = memlimit;
    h->nice = nice;
    h->slice_us = slice_us;
    h->pipe_rd = h->pipe_wr = -1;
    TAILQ_INIT(&h->todo);
    TAILQ_INIT(&h->done);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pipe(fds) != 0) {
        snprintf(err, errlen, "hasher: pipe: %s", strerror(errno));
        goto fail;
    }
    h->pipe_rd = fds[0];
    h->pipe_wr = fds[1];
    if (fcntl(h->pipe_rd, F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(h->pipe_wr, F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(h->pipe_rd, F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(h->pipe_wr, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(err, errlen, "hasher: fcntl: %s", strerror(errno));
        goto fail;
    }
    h->ev = event_new(base, h->pipe_rd, EV_READ | EV_PERSIST, hash_on_pipe, h);
    if (h->ev == NULL || event_add(h->ev, NULL) != 0) {
        snprintf(err, errlen, "hasher: out of memory");
        goto fail;
    }
    for (int i = 0; i < threads; i++) {
        h->slots[i].h = h;
        h->slots[i].arena = con_pw_arena_new(memlimit / 1024);
        if (h->slots[i].arena == NULL) {
            snprintf(err, errlen,
                     "hasher: out of memory (%zu KiB per hashing thread)",
                     memlimit / 1024);
            goto fail;
        }
        if (pthread_create(&h->threads[i], NULL, hash_thread, &h->slots[i]) !=
            0) {
            snprintf(err, errlen, "hasher: cannot start a thread");
            goto fail;
        }
        h->nthreads++;
    }
    return h;
fail:
    con_hasher_free(h);
    return NULL;
}

static int
hash_queue(struct con_hasher *h, struct hash_job *j)
{
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        hash_job_free(j);
        return -1;
    }
    j->queued_ms = hash_now_ms();
    TAILQ_INSERT_TAIL(&h->todo, j, link);
    h->pending++;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static struct hash_job *
hash_job_new(enum hash_kind kind, const char *password, con_hash_cb *cb,
             void *arg)
{
    struct hash_job *j;

    if (password == NULL || cb == NULL ||
        strlen(password) >= sizeof(j->password))
        return NULL;
    if ((j = calloc(1, sizeof(*j))) == NULL) return NULL;
    j->kind = kind;
    j->cb = cb;
    j->arg = arg;
    memcpy(j->password, password, strlen(password) + 1);
    return j;
}

int
con_hash_verify(struct con_hasher *h, const char *stored, const char *password,
                con_hash_cb *cb, void *arg)
{
    struct hash_job *j;

    CON_AN(h->magic == HASH_MAGIC);
    if (stored == NULL || strlen(stored) >= HASH_STR_BYTES) return -1;
    if ((j = hash_job_new(HASH_VERIFY, password, cb, arg)) == NULL) return -1;
    memcpy(j->stored, stored, strlen(stored) + 1);
    return hash_queue(h, j);
}

int
con_hash_make(struct con_hasher *h, const char *password, con_hash_cb *cb,
              void *arg)
{
    struct hash_job *j;

    CON_AN(h->magic == HASH_MAGIC);
    if ((j = hash_job_new(HASH_MAKE, password, cb, arg)) == NULL) return -1;
    return hash_queue(h, j);
}

void
con_hasher_max_wait(struct con_hasher *h, int ms)
{
    CON_AN(h->magic == HASH_MAGIC);
    pthread_mutex_lock(&h->mu);
    h->max_wait_ms = ms > 0 ? ms : 0;
    pthread_mutex_unlock(&h->mu);
}

int
con_hasher_pending(const struct con_hasher *h)
{
    return h->pending;
}

void
con_hasher_stop(struct con_hasher *h)
{
    struct hash_job *j;
    int n;

    CON_AN(h->magic == HASH_MAGIC);
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    n = h->nthreads;
    h->nthreads = 0;
    for (int i = 0; i < n; i++)
        pthread_join(h->threads[i], NULL);
    /* Finished jobs keep their result; the rest never ran. */
    hash_drain(h);
    while ((j = TAILQ_FIRST(&h->todo)) != NULL) {
        TAILQ_REMOVE(&h->todo, j, link);
        h->pending--;
        j->cb(CON_HASH_ESTOPPED, NULL, j->arg);
        hash_job_free(j);
    }
}

void
con_hasher_free(struct con_hasher *h)
{
    if (h == NULL) return;
    CON_AN(h->magic == HASH_MAGIC);
    con_hasher_stop(h);
    if (h->ev) event_free(h->ev);
    if (h->pipe_rd >= 0) close(h->pipe_rd);
    if (h->pipe_wr >= 0) close(h->pipe_wr);
    for (int i = 0; i < HASH_THREADS; i++)
        con_pw_arena_free(h->slots[i].arena); /* their threads have ended */
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    h->magic = 0;
    free(h);
}

int
con_pw_hash_now(const char *password, unsigned long long opslimit,
                size_t memlimit, char out[128])
{
    CON_AN(HASH_STR_BYTES <= 128);
    return con_pw_make(NULL, password, strlen(password), opslimit, memlimit,
                       out);
}
