/*
 * gw_daemon.c -- the daemon's process model: bind, fork the workers,
 * supervise them.
 *
 * The listening sockets are bound here, before any worker exists, so a
 * bad address or a busy port fails at start with a clear message, and the
 * real port (listen.port = 0 picks a free one) is known and written to
 * port_file before anything could connect.  Each worker gets a socket of
 * its own bound to the same port with SO_REUSEPORT, so the kernel spreads
 * connections over the workers and a worker that stops accepting (on
 * SIGTERM) takes only its own socket away.  Each worker runs its own event
 * base (gw_worker_run()); the parent runs none.
 *
 * The parent blocks the signals it cares about and takes them one at a
 * time with sigtimedwait(): SIGTERM and SIGINT are forwarded and the
 * parent waits for the workers to drain (killing stragglers after the
 * request timeout plus a margin), SIGHUP is forwarded, and a worker that
 * dies on its own is started again after a second -- unless workers keep
 * dying, and then the daemon gives up.  With one worker there is no parent:
 * the worker runs in this process (the tests use that).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "gateway/gw_int.h"

#define GW_WORKERS_MAX    64
#define GW_RESTARTS_MAX   10 /* in GW_RESTART_WINDOW seconds: give up */
#define GW_RESTART_WINDOW 60

/* Bind a non-blocking listening socket.  port 0 picks a free port; the
 * port bound is stored in *bound.  Returns the fd or -1 (logged). */
static int
gw_listen_open(const char *address, long port, long *bound)
{
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char portstr[16];
    int fd = -1, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%ld", port);
    rc = getaddrinfo(address[0] ? address : NULL, portstr, &hints, &ai);
    if (rc != 0) {
        GW_LOG_ERROR(0,
                     "cannot resolve the listen address address=%s "
                     "why=\"%s\"",
                     address, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        GW_LOG_ERROR(errno, "socket failed");
        goto fail;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        /* accepted sockets inherit it (Linux): a reply's last partial
         * segment must not wait for the client's delayed ACK (40 ms for
         * every reply over one segment: the console's files, bench/
         * console-static) */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
        GW_LOG_ERROR(errno, "cannot set socket options");
        goto fail;
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        GW_LOG_ERROR(errno, "cannot bind address=%s port=%ld", address, port);
        goto fail;
    }
    if (listen(fd, 1024) < 0) {
        GW_LOG_ERROR(errno, "cannot listen");
        goto fail;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        GW_LOG_ERROR(errno, "getsockname failed");
        goto fail;
    }
    if (ss.ss_family == AF_INET)
        *bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else
        *bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    freeaddrinfo(ai);
    return fd;
fail:
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return -1;
}

/* Write the port atomically: readers see nothing or the whole number. */
static int
gw_port_file_write(const char *path, long port)
{
    char tmp[GW_STR_MAX + 32];
    FILE *fp;
    int ok;

    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    fp = fopen(tmp, "w");
    if (fp == NULL) {
        GW_LOG_ERROR(errno, "cannot write the port file path=%s", path);
        return -1;
    }
    ok = fprintf(fp, "%ld\n", port) > 0;
    ok &= fclose(fp) == 0;
    if (!ok || rename(tmp, path) != 0) {
        GW_LOG_ERROR(errno, "cannot write the port file path=%s", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

static long
gw_workers_of(const struct gw_config *c)
{
    long n = c->workers;
    if (n == 0) n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > GW_WORKERS_MAX) n = GW_WORKERS_MAX;
    return n;
}

struct gw_child {
    pid_t pid;  /* 0: not running */
    time_t due; /* when to start it again */
};

static pid_t
gw_spawn(const struct gw_config *c, int fd, int worker)
{
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        GW_LOG_ERROR(errno, "fork failed worker=%d", worker);
        return -1;
    }
    if (pid == 0) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        exit(gw_worker_run(c, fd, worker));
    }
    return pid;
}

static void
gw_kill_all(struct gw_child *kids, long n, int sig)
{
    for (long i = 0; i < n; i++)
        if (kids[i].pid > 0) kill(kids[i].pid, sig);
}

static int
gw_supervise(const struct gw_config *c, int *fds, long n, long port)
{
    struct gw_child kids[GW_WORKERS_MAX];
    time_t restarts[GW_RESTARTS_MAX];
    size_t nrestarts = 0;
    time_t deadline = 0;
    int stopping = 0, rc = 0;
    sigset_t set;

    memset(kids, 0, sizeof(kids));
    memset(restarts, 0, sizeof(restarts));
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);

    for (long i = 0; i < n; i++) {
        kids[i].pid = gw_spawn(c, fds[i], (int)i);
        close(fds[i]); /* the worker has it */
        if (kids[i].pid < 0) {
            kids[i].pid = 0;
            stopping = 1;
            rc = 1;
        }
    }
    if (stopping) {
        gw_kill_all(kids, n, SIGTERM);
        deadline = time(NULL) + c->request_timeout_ms / 1000 + 3;
    }

    for (;;) {
        struct timespec to = {1, 0};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &to);
        time_t now = time(NULL);
        pid_t pid;
        int st, running = 0;

        if (sig == SIGTERM || sig == SIGINT) {
            GW_LOG_INFO(0, "stopping signal=%d", sig);
            if (!stopping) deadline = now + c->request_timeout_ms / 1000 + 3;
            stopping = 1;
            gw_kill_all(kids, n, SIGTERM);
        } else if (sig == SIGHUP) {
            GW_LOG_INFO(0, "reload requested, telling the workers");
            gw_kill_all(kids, n, SIGHUP);
        }
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            for (long i = 0; i < n; i++) {
                if (kids[i].pid != pid) continue;
                kids[i].pid = 0;
                if (stopping) {
                    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 1;
                    break;
                }
                GW_LOG_ERROR(0,
                             "worker died worker=%ld pid=%ld status=%d "
                             "signal=%d",
                             i, (long)pid, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                             WIFSIGNALED(st) ? WTERMSIG(st) : 0);
                kids[i].due = now + 1;
                if (nrestarts == GW_RESTARTS_MAX &&
                    now - restarts[0] < GW_RESTART_WINDOW) {
                    GW_LOG_ERROR(0, "workers keep dying, giving up");
                    stopping = 1;
                    rc = 1;
                    deadline = now + c->request_timeout_ms / 1000 + 3;
                    gw_kill_all(kids, n, SIGTERM);
                    break;
                }
                if (nrestarts == GW_RESTARTS_MAX) {
                    memmove(restarts, restarts + 1,
                            sizeof(restarts[0]) * (GW_RESTARTS_MAX - 1));
                    nrestarts--;
                }
                restarts[nrestarts++] = now;
                break;
            }
        }
        for (long i = 0; i < n; i++) {
            if (kids[i].pid > 0) {
                running++;
                continue;
            }
            if (stopping || kids[i].due > now) continue;
            long got;
            int fd = gw_listen_open(c->listen_address, port, &got);
            if (fd < 0) {
                kids[i].due = now + 1;
                continue;
            }
            kids[i].pid = gw_spawn(c, fd, (int)i);
            close(fd);
            if (kids[i].pid < 0) {
                kids[i].pid = 0;
                kids[i].due = now + 1;
                continue;
            }
            gw_metric_inc(GW_M_WORKER_RESTARTS, NULL, NULL);
            GW_LOG_INFO(0, "worker started again worker=%ld pid=%ld", i,
                        (long)kids[i].pid);
            running++;
        }
        if (stopping && running == 0) break;
        if (stopping && now > deadline) {
            GW_LOG_WARN(0, "workers did not stop in time, killing them");
            gw_kill_all(kids, n, SIGKILL);
            rc = 1;
            deadline = now + 3600;
        }
    }
    return rc;
}

int
gw_daemon_run(const struct gw_config *c)
{
    int fds[GW_WORKERS_MAX];
    long n = gw_workers_of(c), port = 0;
    int rc;

    gw_log_set_level(gw_log_level_parse(c->log_level));
    gw_log_libevent();
    signal(SIGPIPE, SIG_IGN);
    if (gw_metrics_init(n > 1) != GW_OK) {
        GW_LOG_ERROR(ENOMEM, "cannot allocate the metrics");
        return 1;
    }
    gw_metric_add(GW_M_START_TIME, NULL, NULL, (int64_t)time(NULL));

    for (long i = 0; i < n; i++) {
        fds[i] = gw_listen_open(c->listen_address,
                                i == 0 ? c->listen_port : port, &port);
        if (fds[i] < 0) {
            while (i-- > 0)
                close(fds[i]);
            return 1;
        }
    }
    if (c->port_file[0] != '\0' && gw_port_file_write(c->port_file, port)) {
        for (long i = 0; i < n; i++)
            close(fds[i]);
        return 1;
    }
    GW_LOG_INFO(0, "listening version=%s address=%s port=%ld workers=%ld",
                GW_VERSION, c->listen_address, port, n);

    if (n == 1)
        rc = gw_worker_run(c, fds[0], 0);
    else
        rc = gw_supervise(c, fds, n, port);
    if (c->port_file[0] != '\0') unlink(c->port_file);
    GW_LOG_INFO(0, "stopped status=%d", rc);
    return rc;
}
