/*
 * test_gw_store.c -- gw_store.c in a real worker against the PostgreSQL
 * and Redis tests/run started (PG_DSN, REDIS_PORT): what a finished flow's
 * action gets back, and what it leaves in the database and the queue.
 *
 * Each test forks a worker (gw_worker_run_with()) whose start hook plays a
 * plan: wait until Redis (and, if asked, the "postgres" health probe) is
 * up, then run its steps one by one -- optionally some SQL first, as an
 * officer would, or a table lock held while the action runs so that
 * PostgreSQL is slow -- and write what each gw_action_run() call returned
 * and what its callback got (status, ref, outcome, reason, time taken, and
 * whether it came from inside the call) to shared memory.  At the end it
 * may wait until the worker's drainer has emptied the queue, then sends
 * itself SIGTERM.  The test side checks those results, the rows, and the
 * Redis list with a plain hiredis connection.
 *
 *   - submit: a pending row, the record's ref; the same record again: the
 *     same ref, no second row; status_lookup pending, verified, rejected
 *     with the reason, and not registered; update_skills for a registered
 *     and an unregistered number; unknown actions and bad records refused;
 *   - PostgreSQL slow (a lock): a write is QUEUED with its ref after about
 *     half the request deadline, a lookup FAILED; once the lock goes the
 *     drainer stores the queued copy and there is still one row;
 *   - Redis refusing the copy of a write whose query still runs: DONE if
 *     it commits before its deadline, else FAILED and never a row;
 *   - PostgreSQL down: writes QUEUED at once, sealed in Redis (no ID number
 *     in clear; it opens to the record); the probe says down;
 *   - PostgreSQL and Redis down: FAILED;
 *   - no database configured: one warning, writes queued (sealed when a
 *     key is configured), lookups FAILED;
 *   - an unmigrated database: the worker does not start and says to run
 *     `remigate migrate -c FILE`; after `remigate migrate` it starts;
 *   - `remigate keygen`: a 0600 key file, never overwritten.
 *
 * Under SAN=1 a worker that leaks exits non-zero, which every test checks.
 */
#include <errno.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "gateway/gw_int.h"
#include "sessions/sess.h"
#include "store/store.h"
#include "tests/lib/itest.h"

#define DB       "gwstore"
#define DB_FRESH "gwstore_fresh"
#define REQ_MS   1000 /* limits.request_timeout_ms of every worker */
#define REDIS_MS 300  /* redis.timeout_ms */
#define STEPS    16
/* the tests that race a lock against deadlines: a longer request deadline,
 * so that a slow machine (or SAN=1) still fits in the margins, and the
 * deadline of a write's query: what is left of it after a tenth and a
 * Redis push (postgres.timeout_ms is longer still) */
#define SLOW_REQ_MS   3000
#define SLOW_STORE_MS (SLOW_REQ_MS - SLOW_REQ_MS / 10 - REDIS_MS)

/* ------------------------------------------------------------------------
 * Records and plans
 */

static char rec_buf[STEPS][2048];

/* A registration in flow_record_json()'s shape. */
static const char *
rec_reg(int slot, const char *key, const char *ref, const char *msisdn)
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

static const char *
rec_skills(int slot, const char *key, const char *ref, const char *msisdn)
{
    snprintf(rec_buf[slot], sizeof(rec_buf[slot]),
             "{\"flow\":\"update_skills\",\"action\":\"update_skills\","
             "\"key\":\"%s\",\"ref\":\"%s\",\"lang\":\"en\","
             "\"channel\":\"ussd\",\"msisdn\":\"%s\",\"started\":1795343600,"
             "\"answers\":{\"skills\":[\"mason\",\"hotel\"]}}",
             key, ref, msisdn);
    return rec_buf[slot];
}

static const char *
rec_lookup(int slot, const char *msisdn)
{
    snprintf(rec_buf[slot], sizeof(rec_buf[slot]),
             "{\"flow\":\"status\",\"action\":\"status_lookup\","
             "\"key\":\"0123456789abcdef0123\",\"ref\":\"RS00000000\","
             "\"lang\":\"en\",\"channel\":\"ussd\",\"msisdn\":\"%s\"}",
             msisdn);
    return rec_buf[slot];
}

struct step {
    const char *action; /* NULL: the end */
    const char *record;
    const char *sql;     /* run before the action, or NULL (not with lock) */
    const char *lock;    /* held (in a transaction) while the action runs; a
                            LOCK ... NOWAIT, tried on every tick until taken */
    long unlock_ms;      /* 0: until the callback; else this long */
    long pause_redis_ms; /* Redis stopped (SIGSTOP) from the action's
                            start for this long (needs REDIS_PID) */
};

static void
step(struct step *st, const char *action, const char *record, const char *sql,
     const char *lock)
{
    *st = (struct step){.action = action,
                        .record = record,
                        .sql = sql,
                        .lock = lock,
                        .unlock_ms = 0};
}

/* What the worker saw, in memory shared with the test. */
struct got {
    int rc;     /* gw_action_run() */
    int calls;  /* callbacks */
    int inside; /* a callback came from inside gw_action_run() */
    int sql_ok; /* the step's SQL and lock went through */
    struct gw_act_result res;
    long ms; /* call to callback */
};

struct shared {
    int started;  /* the start hook ran */
    int ready;    /* the waits before the first step ended well */
    int probe;    /* the "postgres" probe: 0 up, -1 down, 2 none */
    int steps;    /* steps finished */
    int drained;  /* the queue was seen empty at the end */
    int finished; /* the plan ran to its end */
    struct got got[STEPS];
};

static struct {
    struct step steps[STEPS];
    int wait_pg;      /* wait until the "postgres" probe says up */
    int wait_redis;   /* wait until the session store is connected */
    int wait_drained; /* at the end, wait until the queue is empty */
} plan;

static struct shared *shm;
static pid_t redis_pid; /* REDIS_PID, or 0 */

/* ------------------------------------------------------------------------
 * The worker side (runs in the child)
 */

enum phase { PH_WAIT, PH_RUN, PH_DRAIN, PH_END };

static struct {
    struct gw_server *srv;
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
    if (shm->got[W.cur].calls == 0 || W.locked) return;
    W.cur++;
    W.busy = 0;
}

static void
w_unlock(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!w_sql("ROLLBACK")) shm->got[W.cur].sql_ok = 0;
    W.locked = 0;
    w_step_end_maybe();
}

static void
w_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    kill(redis_pid, SIGCONT);
}

static void
w_act_cb(const struct gw_act_result *res, void *arg)
{
    struct got *g = arg;
    g->calls++;
    if (g->calls > 1) return;
    g->res = *res;
    g->ms = itest_now_ms() - W.t0;
    if (W.locked && plan.steps[W.cur].unlock_ms == 0) {
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
    shm->probe = status;
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
    shm->probe = 2;
}

static void
w_peeked(int status, const char *value, size_t len, uint64_t version, void *arg)
{
    (void)value;
    (void)len;
    (void)version;
    (void)arg;
    if (status == SESS_ENOTFOUND) shm->drained = 1;
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
    const struct step *st = &plan.steps[W.cur];
    struct got *g = &shm->got[W.cur];

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
        if (redis_pid <= 0 || kill(redis_pid, SIGSTOP) != 0) g->sql_ok = 0;
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
        if (plan.wait_redis && !sess_connected(W.srv->sess)) break;
        if (shm->probe != 0 && shm->probe != 2) w_probe();
        if (W.busy || (plan.wait_pg && shm->probe != 0)) break;
        shm->ready = 1;
        w_phase(PH_RUN);
        /* FALLTHROUGH */
    case PH_RUN:
        if (plan.steps[W.cur].action == NULL) {
            shm->steps = W.cur;
            w_phase(plan.wait_drained ? PH_DRAIN : PH_END);
            break;
        }
        w_step();
        shm->steps = W.cur;
        break;
    case PH_DRAIN:
        if (shm->drained || itest_now_ms() - W.phase_t0 > 10000) {
            w_phase(PH_END);
            break;
        }
        W.busy = 1;
        if (sess_peek(W.srv->sess, "queue:records", w_peeked, NULL) != SESS_OK)
            W.busy = 0;
        break;
    case PH_END:
        shm->finished = plan.steps[W.cur].action == NULL;
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
        if (evtimer_pending(W.resume, NULL)) kill(redis_pid, SIGCONT);
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
    shm->started = 1;
    shm->probe = -1;
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

static struct {
    struct gw_config base; /* config/remigate.conf */
    struct gw_config cfg;  /* this test's */
    char tmp[64];
    char key[128];
    char log[128];
    char dsn[GW_STR_MAX];       /* PG_DSN on database DB */
    char dsn_fresh[GW_STR_MAX]; /* ... on DB_FRESH */
    char dsn_down[GW_STR_MAX];  /* a port nothing listens on */
    int redis_port;
    int down_port;
    pid_t worker;
} T;

/* A loopback port with nothing listening on it (bound, then closed). */
static int
port_closed(void)
{
    int port = 0, fd = itest_listen(&port, 1);
    if (fd >= 0) close(fd);
    return port;
}

/* A Redis that answers the connection's handshake (PING, TIME: sent
 * together) and then nothing more: a child process on a free loopback
 * port.  Its pid; kill it. */
static pid_t
redis_mute(int *port)
{
    int fd = itest_listen(port, 1);
    if (fd < 0) return -1;
    pid_t pid = fork();
    if (pid != 0) {
        close(fd);
        return pid;
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    int c = accept(fd, NULL, NULL);
    char buf[4096];
    ssize_t n = c >= 0 ? read(c, buf, sizeof(buf)) : -1;
    char t[64];
    int tn =
        snprintf(t, sizeof(t), "+PONG\r\n*2\r\n$10\r\n%010ld\r\n$1\r\n0\r\n",
                 (long)time(NULL));
    if (n > 0 && write(c, t, (size_t)tn) != tn) _exit(1);
    while (n > 0)
        n = read(c, buf, sizeof(buf)); /* never answered */
    _exit(0);
}

/* Run the plan in a worker; its exit status (-1 if it took over 30 s). */
static int
worker_run(void)
{
    int fd, port;

    memset(shm, 0, sizeof(*shm));
    fd = itest_listen(&port, 1);
    assert_true(fd >= 0);
    assert_int_equal(truncate(T.log, 0), 0);
    fflush(NULL);
    T.worker = fork();
    assert_true(T.worker >= 0);
    if (T.worker == 0) {
        int logfd = open(T.log, O_WRONLY | O_APPEND);
        if (logfd < 0 || dup2(logfd, 2) < 0) _exit(9);
        close(logfd);
        gw_log_set_level(getenv("TEST_VERBOSE") ? GW_LEVEL_DEBUG
                                                : GW_LEVEL_WARN);
        _exit(gw_worker_run_with(&T.cfg, fd, 0, w_start, NULL));
    }
    close(fd);
    return itest_child_wait(&T.worker, 0, 30000);
}

/* The worker's log as a string (static buffer). */
static const char *
worker_log(void)
{
    static char buf[16384];
    return itest_file_text(T.log, buf, sizeof(buf));
}

static void
check_ran(int rc)
{
    if (rc != 0 || !shm->finished)
        fail_msg("worker exit %d, ready %d, %d steps, finished %d; log:\n%s",
                 rc, shm->ready, shm->steps, shm->finished, worker_log());
}

static void
check_got(int i, int status, const char *ref)
{
    const struct got *g = &shm->got[i];
    if (g->rc != 0 || g->calls != 1 || g->inside != 0 || !g->sql_ok ||
        (int)g->res.status != status || strcmp(g->res.ref, ref) != 0)
        fail_msg("step %d: rc %d calls %d inside %d sql %d status %d ref '%s' "
                 "(want status %d ref '%s'); log:\n%s",
                 i, g->rc, g->calls, g->inside, g->sql_ok, (int)g->res.status,
                 g->res.ref, status, ref, worker_log());
}

static PGconn *
db(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", dsn, PQerrorMessage(c));
    return c;
}

/* The first value of a query on DB, as a string (static buffer). */
static const char *
sql1(const char *sql)
{
    static char out[512];
    PGconn *c = db(T.dsn);
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    snprintf(out, sizeof(out), "%s",
             PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "(none)");
    PQclear(res);
    PQfinish(c);
    return out;
}

static void
db_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int
db_exec(const char *dsn, const char *sql)
{
    PGconn *c = PQconnectdb(dsn);
    PQsetNoticeProcessor(c, db_quiet, NULL);
    PGresult *res = PQexec(c, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* A fresh database named name (dropped first). */
static int
db_create(const char *name)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    if (db_exec(getenv("PG_DSN"), sql) != 0) return -1;
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    return db_exec(getenv("PG_DSN"), sql);
}

static redisContext *
redis(void)
{
    redisContext *c = redisConnect("127.0.0.1", T.redis_port);
    if (c == NULL || c->err) fail_msg("redis: %s", c ? c->errstr : "?");
    return c;
}

/* The queue under this test's prefix: its length, and its first item in
 * first (NUL-terminated, cap bytes) when there is one. */
static long long
queue(char *first, size_t cap)
{
    char key[128];
    redisContext *c = redis();
    snprintf(key, sizeof(key), "%squeue:records", T.cfg.redis_prefix);
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

/* item is record sealed with the test's key: no name or ID number in
 * clear. */
static void
check_sealed(const char *item, const char *record)
{
    char opened[4096], err[256];
    assert_memory_equal(item, "rq1:", 4);
    assert_null(strstr(item, "1234567890"));
    assert_null(strstr(item, "Rahima"));
    struct event_base *base = event_base_new();
    struct store_config sc = {.dsn = "", .key_file = T.key};
    struct store *st = store_new(&sc, base, err, sizeof(err));
    assert_non_null(st);
    int n = store_record_open(st, item, strlen(item), opened, sizeof(opened));
    store_free(st);
    event_base_free(base);
    assert_int_equal(n, (int)strlen(record));
    assert_string_equal(opened, record);
}

static int
group_setup(void **state)
{
    char err[512];
    const char *dsn = getenv("PG_DSN"), *rp = getenv("REDIS_PORT");
    (void)state;
    if (dsn == NULL || rp == NULL) {
        fprintf(stderr, "PG_DSN and REDIS_PORT must be set (tests/run "
                        "integration)\n");
        return -1;
    }
    shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) return -1;
    if (gw_config_load("config/remigate.conf", &T.base, err, sizeof(err)) !=
        0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    T.redis_port = atoi(rp);
    if (getenv("REDIS_PID") != NULL)
        redis_pid = (pid_t)atol(getenv("REDIS_PID"));
    snprintf(T.tmp, sizeof(T.tmp), "/tmp/remigate-gwstore.XXXXXX");
    if (mkdtemp(T.tmp) == NULL) return -1;
    snprintf(T.key, sizeof(T.key), "%s/key", T.tmp);
    snprintf(T.log, sizeof(T.log), "%s/log", T.tmp);
    int fd = open(T.log, O_WRONLY | O_CREAT, 0600);
    if (fd < 0) return -1;
    close(fd);
    if (store_keygen(T.key, err, sizeof(err)) != 0) {
        fprintf(stderr, "keygen: %s\n", err);
        return -1;
    }
    snprintf(T.dsn, sizeof(T.dsn), "%s dbname=%s", dsn, DB);
    snprintf(T.dsn_fresh, sizeof(T.dsn_fresh), "%s dbname=%s", dsn, DB_FRESH);
    T.down_port = port_closed();
    snprintf(T.dsn_down, sizeof(T.dsn_down),
             "host=127.0.0.1 port=%d dbname=x user=x connect_timeout=1",
             T.down_port);
    if (db_create(DB) != 0 ||
        store_migrate(T.dsn, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "database %s: %s\n", DB, err);
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    char cmd[128];
    (void)state;
    db_exec(getenv("PG_DSN"), "DROP DATABASE IF EXISTS " DB " WITH (FORCE)");
    db_exec(getenv("PG_DSN"),
            "DROP DATABASE IF EXISTS " DB_FRESH " WITH (FORCE)");
    if (T.tmp[0] && !getenv("REMIGATE_TEST_KEEP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.tmp);
        if (system(cmd) != 0) return -1;
    }
    return 0;
}

/* Each test: the shipped config on DB with the key, its own Redis prefix,
 * and an empty plan. */
static int
setup(void **state)
{
    static int n;
    (void)state;
    T.cfg = T.base;
    T.cfg.redis_port = T.redis_port;
    T.cfg.request_timeout_ms = REQ_MS;
    T.cfg.redis_timeout_ms = REDIS_MS;
    T.cfg.pg_timeout_ms = 5000; /* longer than our deadlines */
    snprintf(T.cfg.pg_dsn, sizeof(T.cfg.pg_dsn), "%s", T.dsn);
    snprintf(T.cfg.key_file, sizeof(T.cfg.key_file), "%s", T.key);
    snprintf(T.cfg.redis_prefix, sizeof(T.cfg.redis_prefix), "gwstore%d:", ++n);
    memset(&plan, 0, sizeof(plan));
    plan.wait_redis = 1;
    T.worker = -1;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    if (T.worker > 0) {
        kill(T.worker, SIGKILL);
        waitpid(T.worker, NULL, 0);
        T.worker = -1;
    }
    return 0;
}

/* Everything with PostgreSQL up. */
static void
t_records(void **state)
{
    (void)state;
    const char *m1 = "8801712000001", *m2 = "8801712000002";
    const char *ka = "aa000000000000000000000000000001";
    struct step *s = plan.steps;

    plan.wait_pg = 1;
    step(&s[0], "submit_registration", rec_reg(0, ka, "RA00000001", m1), NULL,
         NULL);
    step(&s[1], "submit_registration", rec_reg(1, ka, "RA00000001", m1), NULL,
         NULL);
    step(&s[2], "status_lookup", rec_lookup(2, m1), NULL, NULL);
    step(&s[3], "status_lookup", rec_lookup(3, m1),
         "UPDATE returnees SET status = 'verified'"
         " WHERE msisdn = '8801712000001'",
         NULL);
    step(&s[4], "status_lookup", rec_lookup(4, m1),
         "UPDATE returnees SET status = 'rejected',"
         " reject_reason = 'NID mismatch'"
         " WHERE msisdn = '8801712000001'",
         NULL);
    step(&s[5], "status_lookup", rec_lookup(5, m2), NULL, NULL);
    step(&s[6], "update_skills",
         rec_skills(6, "bb000000000000000000000000000001", "RK00000001", m1),
         NULL, NULL);
    step(&s[7], "update_skills",
         rec_skills(7, "bb000000000000000000000000000002", "RK00000002", m2),
         NULL, NULL);
    step(&s[8], "delete_everything", rec_lookup(8, m1), NULL, NULL);
    step(&s[9], "submit_registration", "{\"msisdn\":", NULL, NULL);
    step(&s[10], "status_lookup", "{\"ref\":\"RA00000001\"}", NULL, NULL);
    /* a record the store refuses (no key) is not queued either */
    step(&s[11], "submit_registration",
         "{\"action\":\"submit_registration\","
         "\"msisdn\":\"8801712000003\",\"ref\":\"RA3\"}",
         NULL, NULL);
    check_ran(worker_run());

    assert_int_equal(shm->probe, 0);
    check_got(0, GW_ACT_DONE, "RA00000001");
    check_got(1, GW_ACT_DONE, "RA00000001");
    check_got(2, GW_ACT_DONE, "RA00000001");
    assert_string_equal(shm->got[2].res.outcome, "pending");
    check_got(3, GW_ACT_DONE, "RA00000001");
    assert_string_equal(shm->got[3].res.outcome, "verified");
    check_got(4, GW_ACT_DONE, "RA00000001");
    assert_string_equal(shm->got[4].res.outcome, "rejected");
    assert_string_equal(shm->got[4].res.reason, "NID mismatch");
    check_got(5, GW_ACT_NOT_REGISTERED, "");
    check_got(6, GW_ACT_DONE, "RA00000001");
    check_got(7, GW_ACT_NOT_REGISTERED, "");
    for (int i = 8; i <= 11; i++)
        if (shm->got[i].rc != -1 || shm->got[i].calls != 0)
            fail_msg("step %d: rc %d calls %d, want -1 and no callback", i,
                     shm->got[i].rc, shm->got[i].calls);

    assert_string_equal(sql1("SELECT count(*) || ' ' || min(ref) || ' ' ||"
                             " array_to_string(min(skills), ' ') FROM returnees"
                             " WHERE msisdn = '8801712000001'"),
                        "1 RA00000001 mason hotel");
    assert_string_equal(sql1("SELECT count(*) FROM submissions WHERE"
                             " idempotency_key = "
                             "'aa000000000000000000000000000001'"),
                        "1");
    assert_string_equal(sql1("SELECT count(*) FROM returnees WHERE"
                             " msisdn IN ('8801712000002', '8801712000003')"),
                        "0");
    assert_string_equal(sql1("SELECT count(*) FROM submissions WHERE"
                             " msisdn IN ('8801712000002', '8801712000003')"),
                        "0");
    assert_int_equal(queue(NULL, 0), 0);
}

/* PostgreSQL slow: a table lock held while the action runs. */
static void
t_pg_slow(void **state)
{
    (void)state;
    const char *m = "8801712000010";
    struct step *s = plan.steps;

    plan.wait_pg = 1;
    plan.wait_drained = 1;
    step(&s[0], "submit_registration",
         rec_reg(0, "cc000000000000000000000000000001", "RB00000001", m), NULL,
         "LOCK TABLE submissions IN EXCLUSIVE MODE NOWAIT");
    step(&s[1], "status_lookup", rec_lookup(1, m), NULL,
         "LOCK TABLE returnees IN ACCESS EXCLUSIVE MODE NOWAIT");
    check_ran(worker_run());

    check_got(0, GW_ACT_QUEUED, "RB00000001");
    check_got(1, GW_ACT_FAILED, "");
    for (int i = 0; i < 2; i++)
        if (shm->got[i].ms < REQ_MS / 2 - 150 || shm->got[i].ms >= REQ_MS)
            fail_msg("step %d answered after %ld ms, want about %d", i,
                     shm->got[i].ms, REQ_MS / 2);
    /* the query that waited on the lock and the drained copy: one row */
    assert_int_equal(shm->drained, 1);
    assert_int_equal(queue(NULL, 0), 0);
    assert_string_equal(sql1("SELECT count(*) || ' ' || min(status) || ' ' ||"
                             " min(ref) FROM returnees"
                             " WHERE msisdn = '8801712000010'"),
                        "1 pending RB00000001");
    assert_string_equal(sql1("SELECT count(*) FROM submissions WHERE"
                             " msisdn = '8801712000010'"),
                        "1");
}

/* PostgreSQL answers while a write that passed its deadline is still on
 * its way into a Redis that does not answer: the caller hears the store's
 * answer once, and the late push finds its action alive. */
static void
t_answer_race(void **state)
{
    (void)state;
    const char *m = "8801712000011";
    struct step *s = plan.steps;
    int port;
    pid_t hole = redis_mute(&port); /* answers the handshake, then nothing */

    assert_true(hole > 0);
    T.cfg.redis_port = port;
    T.cfg.request_timeout_ms = SLOW_REQ_MS;
    plan.wait_pg = 1;
    step(&s[0], "submit_registration",
         rec_reg(0, "cc000000000000000000000000000002", "RB00000002", m), NULL,
         "LOCK TABLE submissions IN EXCLUSIVE MODE NOWAIT");
    /* once the push is out, well before the query's own deadline */
    s[0].unlock_ms = SLOW_REQ_MS / 2 + 150;
    int rc = worker_run();
    kill(hole, SIGKILL);
    waitpid(hole, NULL, 0);
    check_ran(rc);

    check_got(0, GW_ACT_DONE, "RB00000002");
    if (shm->got[0].ms < SLOW_REQ_MS / 2 + 100 ||
        shm->got[0].ms >= SLOW_STORE_MS)
        fail_msg("answered after %ld ms, want about %d", shm->got[0].ms,
                 SLOW_REQ_MS / 2 + 150);
    assert_string_equal(sql1("SELECT count(*) FROM returnees"
                             " WHERE msisdn = '8801712000011'"),
                        "1");
}

/* Wait until no backend but ours is left on DB (the worker's are gone and
 * a query it left waiting on a lock has ended): 0, or -1 after 10 s. */
static int
db_settled(void)
{
    for (long t0 = itest_now_ms(); itest_now_ms() - t0 < 10000;
         usleep(20 * 1000))
        if (strcmp(sql1("SELECT count(*) FROM pg_stat_activity WHERE"
                        " datname = '" DB "' AND pid <> pg_backend_pid()"),
                   "0") == 0)
            return 0;
    return -1;
}

/* The caller hears the truth: Redis is stopped (SIGSTOP) while a write is
 * slow on a lock, so the copy pushed to the queue at half the deadline
 * waits in the socket, the push times out, the query's deadline passes:
 * the caller hears FAILED.  Redis is resumed after that and runs the push
 * it had read: it must change nothing -- no queued entry, so no row ever
 * (a plain RPUSH would land and the drainer would store a record whose
 * caller was told it was not saved). */
static void
t_push_late(void **state)
{
    (void)state;
    const char *m = "8801712000014";
    struct step *s = plan.steps;

    if (redis_pid <= 0) skip();
    T.cfg.request_timeout_ms = SLOW_REQ_MS;
    plan.wait_pg = 1;
    plan.wait_drained = 1;
    step(&s[0], "submit_registration",
         rec_reg(0, "cc000000000000000000000000000005", "RB00000005", m), NULL,
         "LOCK TABLE submissions IN EXCLUSIVE MODE NOWAIT");
    s[0].unlock_ms = SLOW_REQ_MS - 50;
    s[0].pause_redis_ms = SLOW_REQ_MS + 200; /* after the answer */
    int rc = worker_run();
    kill(redis_pid, SIGCONT); /* whatever became of the worker */
    check_ran(rc);

    check_got(0, GW_ACT_FAILED, "");
    if (shm->got[0].ms >= SLOW_REQ_MS)
        fail_msg("answered after %ld ms", shm->got[0].ms);
    usleep(300 * 1000); /* a late push, if any, has run by now */
    assert_int_equal(queue(NULL, 0), 0);
    assert_int_equal(db_settled(), 0);
    assert_string_equal(sql1("SELECT count(*) FROM submissions"
                             " WHERE msisdn = '8801712000014'"),
                        "0");
    assert_string_equal(sql1("SELECT count(*) FROM returnees"
                             " WHERE msisdn = '8801712000014'"),
                        "0");
}

/* Redis refuses the copy of a write whose query is still running (slow on
 * a lock): the query's outcome is what the caller hears.  Released before
 * the query's deadline, it commits and the caller hears DONE; held past
 * it, the caller hears FAILED and the row never appears, even once the
 * lock is gone. */
static void
t_push_fails(void **state)
{
    (void)state;
    const char *m1 = "8801712000012", *m2 = "8801712000013";
    struct step *s = plan.steps;

    T.cfg.redis_port = port_closed();
    T.cfg.request_timeout_ms = SLOW_REQ_MS;
    plan.wait_redis = 0;
    plan.wait_pg = 1;
    step(&s[0], "submit_registration",
         rec_reg(0, "cc000000000000000000000000000003", "RB00000003", m1), NULL,
         "LOCK TABLE submissions IN EXCLUSIVE MODE NOWAIT");
    s[0].unlock_ms = SLOW_REQ_MS / 2 + 150;
    step(&s[1], "submit_registration",
         rec_reg(1, "cc000000000000000000000000000004", "RB00000004", m2), NULL,
         "LOCK TABLE submissions IN EXCLUSIVE MODE NOWAIT");
    s[1].unlock_ms = SLOW_REQ_MS - 50;
    check_ran(worker_run());

    check_got(0, GW_ACT_DONE, "RB00000003");
    check_got(1, GW_ACT_FAILED, "");
    for (int i = 0; i < 2; i++)
        if (shm->got[i].ms < SLOW_REQ_MS / 2 || shm->got[i].ms >= SLOW_REQ_MS)
            fail_msg("step %d answered after %ld ms", i, shm->got[i].ms);
    if (shm->got[1].ms < SLOW_STORE_MS - 20 ||
        shm->got[1].ms > SLOW_STORE_MS + 300)
        fail_msg("FAILED after %ld ms, want the query's deadline (%d ms)",
                 shm->got[1].ms, SLOW_STORE_MS);
    assert_non_null(strstr(worker_log(), "waiting for postgres"));
    assert_int_equal(db_settled(), 0);
    assert_string_equal(sql1("SELECT count(*) FROM submissions"
                             " WHERE msisdn = '8801712000012'"),
                        "1");
    assert_string_equal(sql1("SELECT count(*) FROM returnees"
                             " WHERE msisdn = '8801712000012'"),
                        "1");
    assert_string_equal(sql1("SELECT count(*) FROM submissions"
                             " WHERE msisdn = '8801712000013'"),
                        "0");
    assert_string_equal(sql1("SELECT count(*) FROM returnees"
                             " WHERE msisdn = '8801712000013'"),
                        "0");
}

/* PostgreSQL down (nothing listens on its port). */
static void
t_pg_down(void **state)
{
    (void)state;
    const char *m = "8801712000020";
    const char *reg =
        rec_reg(0, "dd000000000000000000000000000001", "RC00000001", m);
    struct step *s = plan.steps;
    char first[4096];

    snprintf(T.cfg.pg_dsn, sizeof(T.cfg.pg_dsn), "%s", T.dsn_down);
    step(&s[0], "submit_registration", reg, NULL, NULL);
    step(&s[1], "update_skills",
         rec_skills(1, "dd000000000000000000000000000002", "RK00000020", m),
         NULL, NULL);
    step(&s[2], "status_lookup", rec_lookup(2, m), NULL, NULL);
    check_ran(worker_run());

    assert_int_equal(shm->probe, -1);
    check_got(0, GW_ACT_QUEUED, "RC00000001");
    check_got(1, GW_ACT_QUEUED, "RK00000020");
    check_got(2, GW_ACT_FAILED, "");
    for (int i = 0; i < 3; i++)
        if (shm->got[i].ms >= REQ_MS / 2)
            fail_msg("step %d answered after %ld ms", i, shm->got[i].ms);
    assert_non_null(strstr(worker_log(), "schema not checked"));

    /* sealed: no name or ID number in clear; it opens to the record */
    assert_int_equal(queue(first, sizeof(first)), 2);
    check_sealed(first, reg);
}

/* PostgreSQL and Redis down. */
static void
t_both_down(void **state)
{
    (void)state;
    const char *m = "8801712000030";
    struct step *s = plan.steps;

    snprintf(T.cfg.pg_dsn, sizeof(T.cfg.pg_dsn), "%s", T.dsn_down);
    T.cfg.redis_port = port_closed();
    plan.wait_redis = 0;
    step(&s[0], "submit_registration",
         rec_reg(0, "ee000000000000000000000000000001", "RD00000001", m), NULL,
         NULL);
    step(&s[1], "status_lookup", rec_lookup(1, m), NULL, NULL);
    check_ran(worker_run());

    check_got(0, GW_ACT_FAILED, "");
    check_got(1, GW_ACT_FAILED, "");
    for (int i = 0; i < 2; i++)
        if (shm->got[i].ms >= REQ_MS)
            fail_msg("step %d answered after %ld ms", i, shm->got[i].ms);
    assert_non_null(strstr(worker_log(), "neither stored nor queued"));
}

/* No database configured: the durable queue only. */
static void
t_no_database(void **state)
{
    (void)state;
    const char *m = "8801712000040";
    const char *reg =
        rec_reg(0, "ff000000000000000000000000000001", "RE00000001", m);
    struct step *s = plan.steps;
    char first[4096];

    T.cfg.pg_dsn[0] = '\0';
    step(&s[0], "submit_registration", reg, NULL, NULL);
    step(&s[1], "status_lookup", rec_lookup(1, m), NULL, NULL);
    step(&s[2], "submit_registration", reg, NULL, NULL);
    check_ran(worker_run());

    assert_int_equal(shm->probe, 2); /* no "postgres" probe */
    check_got(0, GW_ACT_QUEUED, "RE00000001");
    check_got(1, GW_ACT_FAILED, "");
    check_got(2, GW_ACT_QUEUED, "RE00000001");
    const char *log = worker_log(), *w = strstr(log, "postgres.dsn is empty");
    assert_non_null(w);
    assert_non_null(strstr(w, "(sealed)"));
    assert_null(strstr(w + 1, "postgres.dsn is empty")); /* once */
    assert_int_equal(queue(first, sizeof(first)), 2);
    check_sealed(first, reg);

    /* and no key either: the record as it came, and the log says so */
    T.cfg.key_file[0] = '\0';
    snprintf(T.cfg.redis_prefix, sizeof(T.cfg.redis_prefix), "gwstore-nokey:");
    check_ran(worker_run());
    check_got(0, GW_ACT_QUEUED, "RE00000001");
    check_got(1, GW_ACT_FAILED, "");
    assert_non_null(strstr(worker_log(), "in clear: no crypto.key_file"));
    assert_int_equal(queue(first, sizeof(first)), 2);
    assert_string_equal(first, reg);
}

/* An unmigrated database, `remigate migrate`, then the worker starts. */
static void
t_migrate(void **state)
{
    (void)state;
    char conf[256], cmd[1024], out[256];
    const char *bin = getenv("REMIGATE_BIN");
    if (bin == NULL) bin = "build/remigate";

    assert_int_equal(db_create(DB_FRESH), 0);
    snprintf(T.cfg.pg_dsn, sizeof(T.cfg.pg_dsn), "%s", T.dsn_fresh);
    step(&plan.steps[0], "status_lookup", rec_lookup(0, "8801712000050"), NULL,
         NULL);
    int rc = worker_run();
    if (rc == 0 || shm->started)
        fail_msg("worker on an unmigrated database: exit %d, started %d", rc,
                 shm->started);
    const char *log = worker_log();
    if (strstr(log, "schema is behind") == NULL ||
        strstr(log, "remigate migrate -c config/remigate.conf") == NULL)
        fail_msg("log does not say to migrate:\n%s", log);

    /* a copy of the config (relative paths stay good) on DB_FRESH */
    snprintf(conf, sizeof(conf), "%s/config/remigate.conf", T.tmp);
    snprintf(cmd, sizeof(cmd),
             "rm -rf '%s/config' && cp -r config '%s/config' && "
             "sed -i 's|^\\( *dsn = \\)\"\";|\\1\"%s\";|' '%s'",
             T.tmp, T.tmp, T.dsn_fresh, conf);
    assert_int_equal(system(cmd), 0);
    snprintf(out, sizeof(out), "%s/migrate.out", T.tmp);
    snprintf(cmd, sizeof(cmd), "'%s' migrate -c '%s' >'%s' 2>&1", bin, conf,
             out);
    rc = system(cmd);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
    rc = system(cmd); /* again: nothing to do */
    assert_int_equal(WEXITSTATUS(rc), 0);
    snprintf(cmd, sizeof(cmd), "grep -q 'schema up to date' '%s'", out);
    assert_int_equal(system(cmd), 0);

    /* usage errors and an empty dsn: clear messages, non-zero */
    snprintf(cmd, sizeof(cmd), "'%s' migrate >'%s' 2>&1", bin, out);
    rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 2);
    snprintf(cmd, sizeof(cmd),
             "'%s' migrate -c config/remigate.conf >'%s' 2>&1 && exit 9; "
             "grep -q 'postgres.dsn is empty' '%s'",
             bin, out, out);
    assert_int_equal(system(cmd), 0);

    plan.wait_pg = 1;
    rc = worker_run();
    check_ran(rc);
    assert_int_equal(shm->probe, 0);
    check_got(0, GW_ACT_NOT_REGISTERED, "");
}

/* `remigate keygen FILE`. */
static void
t_keygen(void **state)
{
    (void)state;
    char path[256], cmd[512];
    struct stat sb;
    unsigned char buf[128];
    const char *bin = getenv("REMIGATE_BIN");
    if (bin == NULL) bin = "build/remigate";

    snprintf(path, sizeof(path), "%s/new.key", T.tmp);
    snprintf(cmd, sizeof(cmd), "'%s' keygen '%s' >/dev/null 2>&1", bin, path);
    int rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(n == 64 || n == 65); /* 64 hex characters (and a newline) */
    rc = system(cmd);                /* never overwritten */
    assert_int_equal(WEXITSTATUS(rc), 1);
    snprintf(cmd, sizeof(cmd), "'%s' keygen >/dev/null 2>&1", bin);
    rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_records, setup, teardown),
        cmocka_unit_test_setup_teardown(t_pg_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(t_answer_race, setup, teardown),
        cmocka_unit_test_setup_teardown(t_push_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(t_push_late, setup, teardown),
        cmocka_unit_test_setup_teardown(t_pg_down, setup, teardown),
        cmocka_unit_test_setup_teardown(t_both_down, setup, teardown),
        cmocka_unit_test_setup_teardown(t_no_database, setup, teardown),
        cmocka_unit_test_setup_teardown(t_migrate, setup, teardown),
        cmocka_unit_test_setup_teardown(t_keygen, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("gw_store", tests, group_setup,
                                       group_teardown);
}
