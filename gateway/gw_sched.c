/*
 * gw_sched.c -- how the scheduler treats a thread: its policy, its nice,
 * and the length of its slice.
 *
 * Linux 6.6 replaced CFS with EEVDF: a runnable thread is picked by its
 * virtual deadline, which is its eligible time plus its slice over its
 * weight.  A short slice means an early deadline -- a thread that wakes
 * for a short piece of work (the event loop with one USSD step) is picked
 * before one that runs long (a password hash), even at equal nice; a long
 * slice means the long runner is preempted less often and, once
 * preempted, comes back later.  Since Linux 6.12 a thread asks for its
 * slice with sched_setattr(): sched_runtime of a SCHED_OTHER thread,
 * which the kernel clamps to 0.1..100 ms (a SCHED_IDLE thread's is
 * accepted and not applied).  Older kernels ignore it, and the nice and
 * the policy still apply.  No
 * privilege is needed to lower one's own priority or change one's slice.
 *
 * bench/login-load measures the effect: USSD steps beside 20 logins a
 * second, with and without (bench/RESULTS.md).
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gateway/gw.h"

/* Linux's values (sched.h shows SCHED_IDLE with _GNU_SOURCE only; struct
 * sched_attr is in no header of Debian 12's libc) */
#define GW_SCHED_OTHER 0
#define GW_SCHED_IDLE  5

struct gw_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
};

int
gw_sched_thread(int idle, int nice, long slice_us)
{
    struct gw_sched_attr at;
    pid_t tid = (pid_t)syscall(SYS_gettid);

    if (nice < -20 || nice > 19 || slice_us < 0) {
        errno = EINVAL;
        return -1;
    }
#ifdef SYS_sched_setattr
    memset(&at, 0, sizeof(at));
    at.size = sizeof(at);
    at.sched_policy = idle ? GW_SCHED_IDLE : GW_SCHED_OTHER;
    at.sched_nice = nice;
    at.sched_runtime = (uint64_t)slice_us * 1000u; /* 0: the kernel's */
    if (syscall(SYS_sched_setattr, tid, &at, 0u) == 0) return 0;
#else
    (void)at;
#endif
    /* a kernel or a filter without sched_setattr: the old calls */
    if (idle) {
        struct sched_param sp = {.sched_priority = 0};
        /* pid 0: on Linux, the calling thread */
        if (sched_setscheduler(0, GW_SCHED_IDLE, &sp) != 0) return -1;
    }
    return setpriority(PRIO_PROCESS, (id_t)tid, nice);
}
