/*
 * itest.h -- helpers the C integration tests share (the C side of
 * tests/lib/itest.sh): a monotonic clock in milliseconds, a listening
 * socket on a free loopback port, and a libevent loop run until a
 * condition holds.
 */
#ifndef ITEST_H
#define ITEST_H

/* CLOCK_MONOTONIC in milliseconds. */
long itest_now_ms(void);

/* A TCP socket listening on 127.0.0.1 on a port the kernel picks (backlog
 * 128, SO_REUSEADDR), non-blocking when nonblock is set: the fd with
 * *port set, or -1. */
int itest_listen(int *port, int nonblock);

struct event_base;

/* Run base's loop (a 20 ms tick keeps it turning when nothing else is
 * pending) until cond(arg) is true or ms pass; returns cond's last
 * value. */
int itest_run_until(struct event_base *base, int (*cond)(void *), void *arg,
                    int ms);

/* Send sig (0: none) to child *pid and wait for it to end: its exit
 * status (128 + the signal when one ended it), or -1 when it took over
 * limit_ms (then it is killed with SIGKILL) or *pid was not a child
 * (<= 0).  *pid is -1 after. */
int itest_child_wait(pid_t *pid, int sig, long limit_ms);

/* One line (fmt, and a newline) written to fd with one write(), so that
 * processes appending to one file do not mix their lines; at most 8 KiB,
 * cut beyond.  Aborts when the write falls short. */
void itest_log_line(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The file at path, NUL-terminated, in buf (its first cap - 1 bytes; ""
 * when it cannot be read): buf. */
const char *itest_file_text(const char *path, char *buf, size_t cap);

#endif
