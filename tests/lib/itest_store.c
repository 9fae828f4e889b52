/*
 * itest_store.c -- the forked worker that plays a plan of gw_action_run()
 * calls, and the test side around it (itest_store.h).  The worker side
 * runs in the child, on the worker's own event base: a 20 ms tick moves
 * it through its phases (wait, run the steps, wait for the queue to
 * drain, end) and nothing in it blocks but the officer's SQL.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "gateway/gw_int.h"
#include "sessions/sess.h"
#include "store/store.h"
#include "tests/lib/itest.h"
#include "tests/lib/itest_pg.h"
#include "tests/lib/itest_store.h"

struct itest_store_env itest_store = {.worker = -1};

/* ------------------------------------------------------------------------
 * Records
 */

static char rec_buf[ITEST_STORE_STEPS][2048];

const char *
itest_store_rec_reg(int slot, const char *key, const char *ref,
                    const char *msisdn)
{
    snprintf(rec_buf[slot], sizeof(rec_buf[slot]),
             "{\"flow\":\"register\",\"action\":\"submit_registration\","
             "\"key\":\"%s\",\"ref\":\"%s\",\"lang\":\"en\","
             "\"channel\":\"ussd\",\"msisdn\":\"%s\",\"started\":1795343567,"
             "\"answers\":{\"consent\":\"yes\",\"name\":\"Rahima Begum\","
             "\"sex\":\"f\",\"birth_year\":1990,\"division\":\"C\","
             "\"district\":\"BD-13\",\"country\":\"SA\",\"years_abroad\":3,"
             "\"return_year\":2025,\"reason\":\"lost_job\","
             "\"education\":\"none\",\"skills\":[\"mason\"],"
             "\"need\":\"job_home\",\"id_type\":\"nid\","
             "\"nid\":\"1234567890\"}}",
             key, ref, msisdn);
    return rec_buf[slot];
}

const char *
itest_store_rec_skills(int slot, const char *key, const char *ref,
                       const char *msisdn)
{
    snprintf(rec_buf[slot], sizeof(rec_buf[slot]),
             "{\"flow\":\"update_skills\",\"action\":\"update_skills\","
             "\"key\":\"%s\",\"ref\":\"%s\",\"lang\":\"en\","
             "\"channel\":\"ussd\",\"msisdn\":\"%s\",\"started\":1795343600,"
             "\"answers\":{\"skills\":[\"mason\",\"hotel\"]}}",
             key, ref, msisdn);
    return rec_buf[slot];
}

const char *
itest_store_rec_lookup(int slot, const char *msisdn)
{
    snprintf(rec_buf[slot], sizeof(rec_buf[slot]),
             "{\"flow\":\"status\",\"action\":\"status_lookup\","
             "\"key\":\"0123456789abcdef0123\",\"ref\":\"RS00000000\","
             "\"lang\":\"en\",\"channel\":\"ussd\",\"msisdn\":\"%s\"}",
             msisdn);
    return rec_buf[slot];
}

void
itest_store_step(struct itest_store_step *st, const char *action,
                 const char *record, const char *sql, const char *lock)
{
    *st = (struct itest_store_step){.action = action,
                                    .record = record,
                                    .sql = sql,
                                    .lock = lock,
                                    .unlock_ms = 0};
}

/* ------------------------------------------------------------------------
 * The worker side (runs in the child)
 */

enum phase { PH_WAIT, PH_RUN, PH_DRAIN, PH_END };

static struct {
    struct gw_server *srv;
    struct itest_store_shared *shm; /* itest_store.shm */
    struct event *tick;
    struct event *unlock;
    struct event *resume; /* SIGCONT to Redis */
    int locked;
    PGconn *pg; /* the officer's and the locker's connection */
    enum phase phase;
    int busy; /* a probe, an action or a peek is out */
    int cur;  /* the step running */
    long t0, phase_t0;
} W;

static int
w_sql(const char *sql)
{
    PGresult *res = PQexec(W.pg, sql);
    ExecStatusType st = PQresultStatus(res);
    PQclear(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* The step ends once its callback came and its lock is gone. */
static void
w_step_end_maybe(void)
{
    if (W.shm->got[W.cur].calls == 0 || W.locked) return;
    W.cur++;
    W.busy = 0;
}

static void
w_unlock(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!w_sql("ROLLBACK")) W.shm->got[W.cur].sql_ok = 0;
    W.locked = 0;
    w_step_end_maybe();
}

static void
w_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    kill(itest_store.redis_pid, SIGCONT);
}

static void
w_act_cb(const struct gw_act_result *res, void *arg)
{
    struct itest_store_got *g = arg;
    g->calls++;
    if (g->calls > 1) return;
    g->res = *res;
    g->ms = itest_now_ms() - W.t0;
    if (W.locked && itest_store.plan.steps[W.cur].unlock_ms == 0) {
        evtimer_del(W.unlock);
        w_unlock(-1, 0, NULL);
        return;
    }
    w_step_end_maybe();
}

static void
w_probe_done(int status, void *arg)
{
    (void)arg;
    W.shm->probe = status;
    W.busy = 0;
}

static void
w_probe(void)
{
    for (size_t i = 0; i < W.srv->nprobes; i++)
        if (strcmp(W.srv->probes[i].name, "postgres") == 0) {
            W.busy = 1;
            W.srv->probes[i].probe(W.srv->probes[i].arg, w_probe_done, NULL);
            return;
        }
    W.shm->probe = 2;
}

static void
w_peeked(int status, const char *value, size_t len, uint64_t version, void *arg)
{
    (void)value;
    (void)len;
    (void)version;
    (void)arg;
    if (status == SESS_ENOTFOUND) W.shm->drained = 1;
    W.busy = 0;
}

static void
w_phase(enum phase ph)
{
    W.phase = ph;
    W.phase_t0 = itest_now_ms();
}

static void
w_step(void)
{
    const struct itest_store_step *st = &itest_store.plan.steps[W.cur];
    struct itest_store_got *g = &W.shm->got[W.cur];

    if (st->sql != NULL && st->lock != NULL) WRONG("a step with sql and lock");
    /* the lock is taken with NOWAIT: waiting here would block the loop
     * that the transaction holding it needs to end */
    if (st->lock != NULL) {
        if (!w_sql("BEGIN") || !w_sql(st->lock)) {
            w_sql("ROLLBACK");
            if (itest_now_ms() - W.phase_t0 > 10000) w_phase(PH_END);
            return; /* again on the next tick */
        }
        W.locked = 1;
        if (st->unlock_ms > 0) {
            struct timeval tv = {st->unlock_ms / 1000,
                                 (st->unlock_ms % 1000) * 1000};
            evtimer_add(W.unlock, &tv);
        }
    }
    g->sql_ok = 1;
    if (st->sql != NULL && !w_sql(st->sql)) g->sql_ok = 0;
    if (st->pause_redis_ms > 0) {
        struct timeval tv = {st->pause_redis_ms / 1000,
                             (st->pause_redis_ms % 1000) * 1000};
        if (itest_store.redis_pid <= 0 ||
            kill(itest_store.redis_pid, SIGSTOP) != 0)
            g->sql_ok = 0;
        evtimer_add(W.resume, &tv);
    }
    W.busy = 1;
    W.t0 = itest_now_ms();
    g->inside = -1;
    g->rc = gw_action_run(W.srv, st->action, st->record, strlen(st->record),
                          w_act_cb, g);
    if (g->calls > 0) g->inside = 1;
    if (g->inside == -1) g->inside = 0;
    if (g->rc != 0) {
        if (W.locked) {
            evtimer_del(W.unlock);
            w_sql("ROLLBACK");
            W.locked = 0;
        }
        W.cur++;
        W.busy = 0;
    }
}

static void
w_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (W.busy) return;
    switch (W.phase) {
    case PH_WAIT:
        if (itest_now_ms() - W.phase_t0 > 10000) {
            w_phase(PH_END);
            break;
        }
        if (itest_store.plan.wait_redis && !sess_connected(W.srv->sess)) break;
        if (W.shm->probe != 0 && W.shm->probe != 2) w_probe();
        if (W.busy || (itest_store.plan.wait_pg && W.shm->probe != 0)) break;
        W.shm->ready = 1;
        w_phase(PH_RUN);
        /* FALLTHROUGH */
    case PH_RUN:
        if (itest_store.plan.steps[W.cur].action == NULL) {
            W.shm->steps = W.cur;
            w_phase(itest_store.plan.wait_drained ? PH_DRAIN : PH_END);
            break;
        }
        w_step();
        W.shm->steps = W.cur;
        break;
    case PH_DRAIN:
        if (W.shm->drained || itest_now_ms() - W.phase_t0 > 10000) {
            w_phase(PH_END);
            break;
        }
        W.busy = 1;
        if (sess_peek(W.srv->sess, "queue:records", w_peeked, NULL) != SESS_OK)
            W.busy = 0;
        break;
    case PH_END:
        W.shm->finished = itest_store.plan.steps[W.cur].action == NULL;
        evtimer_del(W.tick);
        kill(getpid(), SIGTERM);
        break;
    default:
        WRONG("phase");
    }
}

static void
w_stop(struct gw_server *srv, void *arg)
{
    (void)srv;
    (void)arg;
    if (W.tick != NULL) event_free(W.tick);
    if (W.unlock != NULL) event_free(W.unlock);
    if (W.resume != NULL) {
        if (evtimer_pending(W.resume, NULL))
            kill(itest_store.redis_pid, SIGCONT);
        event_free(W.resume);
    }
    W.tick = W.unlock = W.resume = NULL;
    if (W.pg != NULL) PQfinish(W.pg);
    W.pg = NULL;
}

static int
w_start(struct gw_server *srv, void *arg)
{
    const struct gw_config *cfg = gw_server_config(srv);
    struct timeval tv = {0, 20 * 1000};
    (void)arg;
    W.shm = itest_store.shm;
    W.shm->started = 1;
    W.shm->probe = -1;
    W.srv = srv;
    W.phase = PH_WAIT;
    W.phase_t0 = itest_now_ms();
    if (cfg->pg_dsn[0] != '\0') {
        W.pg = PQconnectdb(cfg->pg_dsn);
        /* a database that is down is part of some plans */
        if (PQstatus(W.pg) != CONNECTION_OK) {
            PQfinish(W.pg);
            W.pg = NULL;
        }
    }
    W.tick = event_new(gw_server_base(srv), -1, EV_PERSIST, w_tick, NULL);
    W.unlock = evtimer_new(gw_server_base(srv), w_unlock, NULL);
    W.resume = evtimer_new(gw_server_base(srv), w_resume, NULL);
    if (W.tick == NULL || W.unlock == NULL || W.resume == NULL ||
        event_add(W.tick, &tv) != 0)
        return -1;
    return gw_server_on_stop(srv, w_stop, NULL);
}

/* ------------------------------------------------------------------------
 * The test side
 */

int
itest_store_run(void)
{
    int fd, port;

    memset(itest_store.shm, 0, sizeof(*itest_store.shm));
    fd = itest_listen(&port, 1);
    assert_true(fd >= 0);
    assert_int_equal(truncate(itest_store.log, 0), 0);
    fflush(NULL);
    itest_store.worker = fork();
    assert_true(itest_store.worker >= 0);
    if (itest_store.worker == 0) {
        int logfd = open(itest_store.log, O_WRONLY | O_APPEND);
        if (logfd < 0 || dup2(logfd, 2) < 0) _exit(9);
        close(logfd);
        gw_log_set_level(getenv("TEST_VERBOSE") ? GW_LEVEL_DEBUG
                                                : GW_LEVEL_WARN);
        _exit(gw_worker_run_with(&itest_store.cfg, fd, 0, w_start, NULL));
    }
    close(fd);
    return itest_child_wait(&itest_store.worker, 0, 30000);
}

const char *
itest_store_log(void)
{
    static char buf[16384];
    return itest_file_text(itest_store.log, buf, sizeof(buf));
}

void
itest_store_check_ran(int rc)
{
    const struct itest_store_shared *shm = itest_store.shm;
    if (rc != 0 || !shm->finished)
        fail_msg("worker exit %d, ready %d, %d steps, finished %d; log:\n%s",
                 rc, shm->ready, shm->steps, shm->finished, itest_store_log());
}

void
itest_store_check_got(int i, int status, const char *ref)
{
    const struct itest_store_got *g = &itest_store.shm->got[i];
    if (g->rc != 0 || g->calls != 1 || g->inside != 0 || !g->sql_ok ||
        (int)g->res.status != status || strcmp(g->res.ref, ref) != 0)
        fail_msg("step %d: rc %d calls %d inside %d sql %d status %d ref '%s' "
                 "(want status %d ref '%s'); log:\n%s",
                 i, g->rc, g->calls, g->inside, g->sql_ok, (int)g->res.status,
                 g->res.ref, status, ref, itest_store_log());
}

void
itest_store_check_ms(int from, int to, long lo, long hi)
{
    for (int i = from; i < to; i++) {
        long ms = itest_store.shm->got[i].ms;
        if (ms < lo || ms >= hi)
            fail_msg("step %d answered after %ld ms, want %ld to %ld", i, ms,
                     lo, hi - 1);
    }
}

long long
itest_store_queue(char *first, size_t cap)
{
    char key[128];
    redisContext *c = redisConnect("127.0.0.1", itest_store.redis_port);
    if (c == NULL || c->err) fail_msg("redis: %s", c ? c->errstr : "?");
    snprintf(key, sizeof(key), "%squeue:records", itest_store.cfg.redis_prefix);
    redisReply *r = redisCommand(c, "LLEN %s", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    if (first != NULL) {
        first[0] = '\0';
        r = redisCommand(c, "LINDEX %s 0", key);
        assert_non_null(r);
        if (r->type == REDIS_REPLY_STRING)
            snprintf(first, cap, "%.*s", (int)r->len, r->str);
        freeReplyObject(r);
    }
    redisFree(c);
    return n;
}

void
itest_store_check_sealed(const char *item, const char *record)
{
    char opened[4096], err[256];
    assert_memory_equal(item, "rq1:", 4);
    assert_null(strstr(item, "1234567890"));
    assert_null(strstr(item, "Rahima"));
    struct store_config sc = {.dsn = "", .key_file = itest_store.pg.key_file};
    struct store *st = store_new(&sc, itest_store.pg.base, err, sizeof(err));
    assert_non_null(st);
    int n = store_record_open(st, item, strlen(item), opened, sizeof(opened));
    store_free(st);
    assert_int_equal(n, (int)strlen(record));
    assert_string_equal(opened, record);
}

int
itest_store_group_setup(void **state)
{
    char err[512];
    const char *rp = getenv("REDIS_PORT"), *pid = getenv("REDIS_PID");
    (void)state;
    if (rp == NULL) {
        fprintf(stderr, "REDIS_PORT must be set (tests/run integration)\n");
        return -1;
    }
    itest_store.redis_port = atoi(rp);
    itest_store.redis_pid = pid != NULL ? (pid_t)atol(pid) : 0;
    itest_store.shm =
        mmap(NULL, sizeof(*itest_store.shm), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (itest_store.shm == MAP_FAILED) return -1;
    if (gw_config_load("config/remigate.conf", &itest_store.base, err,
                       sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (itest_env_new(&itest_store.pg, "gwstore", "gwstore") != 0) return -1;
    snprintf(itest_store.log, sizeof(itest_store.log), "%s/log",
             itest_store.pg.tmp);
    int fd = open(itest_store.log, O_WRONLY | O_CREAT, 0600);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

int
itest_store_group_teardown(void **state)
{
    (void)state;
    if (getenv("REMIGATE_TEST_KEEP")) itest_store.pg.tmp[0] = '\0';
    return itest_env_free(&itest_store.pg);
}

int
itest_store_setup(void **state)
{
    static int n;
    struct gw_config *cfg = &itest_store.cfg;
    (void)state;
    *cfg = itest_store.base;
    cfg->redis_port = itest_store.redis_port;
    cfg->request_timeout_ms = ITEST_STORE_REQ_MS;
    cfg->redis_timeout_ms = ITEST_STORE_REDIS_MS;
    cfg->pg_timeout_ms = 5000; /* longer than our deadlines */
    if (snprintf(cfg->pg_dsn, sizeof(cfg->pg_dsn), "%s", itest_store.pg.dsn) >=
        (int)sizeof(cfg->pg_dsn))
        return -1; /* a PG_DSN too long for postgres.dsn */
    snprintf(cfg->key_file, sizeof(cfg->key_file), "%s",
             itest_store.pg.key_file);
    snprintf(cfg->redis_prefix, sizeof(cfg->redis_prefix), "gwstore%d:", ++n);
    memset(&itest_store.plan, 0, sizeof(itest_store.plan));
    itest_store.plan.wait_redis = 1;
    itest_store.worker = -1;
    return 0;
}

int
itest_store_teardown(void **state)
{
    (void)state;
    if (itest_store.worker > 0)
        itest_child_wait(&itest_store.worker, SIGKILL, 5000);
    return 0;
}
