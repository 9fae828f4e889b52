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

#endif
