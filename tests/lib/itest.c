/*
 * itest.c -- helpers the C integration tests share (itest.h).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>

#include "tests/lib/itest.h"

long
itest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
itest_listen(int *port, int nonblock)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0),
        one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static void
itest_on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

int
itest_run_until(struct event_base *base, int (*cond)(void *), void *arg, int ms)
{
    struct timeval tv = {0, 20000};
    struct event *tick = event_new(base, -1, EV_PERSIST, itest_on_tick, NULL);
    long end = itest_now_ms() + ms;
    int ok;

    event_add(tick, &tv);
    while (!(ok = cond(arg)) && itest_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return ok;
}

int
itest_child_wait(pid_t *pid, int sig, long limit_ms)
{
    long t0 = itest_now_ms();
    int st = 0;

    if (*pid <= 0) return -1;
    if (sig != 0) kill(*pid, sig);
    while (waitpid(*pid, &st, WNOHANG) != *pid) {
        if (itest_now_ms() - t0 > limit_ms) {
            kill(*pid, SIGKILL);
            waitpid(*pid, NULL, 0);
            *pid = -1;
            return -1;
        }
        usleep(10 * 1000);
    }
    *pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void
itest_log_line(int fd, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof(buf) - 2) n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    if (write(fd, buf, (size_t)n) != n) abort();
}

const char *
itest_file_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;

    if (f) fclose(f);
    buf[n] = '\0';
    return buf;
}
