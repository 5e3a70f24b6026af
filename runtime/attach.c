/*
 * attach.c - recording a process that is already running (`sftrace attach
 * PID`, cmd/attach.c): the command makes the process dlopen this library and
 * call sftrace_attach, later sftrace_detach, through ptrace.
 *
 * Attached, the runtime records as under `record` (every object patched,
 * the helper process writing the log) except that nothing is interposed:
 * the library came in with dlopen, after the program bound its symbols, so
 * dlopen, fork, exec and signal handlers are the program's own. What is done
 * instead (docs/design.md, "Attach"):
 *   - objects loaded later: a watcher thread of ours (signals blocked, no
 *     instrumented code) looks at the dynamic linker's load and unload
 *     counters (dl_iterate_phdr's dlpi_adds, dlpi_subs) every WATCH_MS and,
 *     when they moved, patches the new objects the way record's dlopen hook
 *     does (patch.c: OBJECT chunk, function ids, filters) and forgets the
 *     unloaded ones (ctl.c). Calls into an object in the first WATCH_MS
 *     after its dlopen may be missed;
 *   - fork: a child (pthread_atfork, which works whenever it is registered)
 *     is not recorded: its sleds are put back as they were and our
 *     descriptors closed, so it runs as if never traced;
 *   - exec ends the recording (the helper sees the image go and writes END);
 *   - a fatal signal is seen by the helper as a death.
 *
 * Detaching stops the watcher, puts every patched sled back as it was, byte
 * for byte (ctl.c), has the helper write everything and an END saying
 * DETACH, and the helper exits. The shared memory stays mapped (threads that
 * recorded keep their pointers into it) and is used again by the next
 * attach.
 */
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define WATCH_MS 10

static pthread_t watcher;
static int watching;
static _Atomic uint32_t watch_stop;
static int forked_from_attached; /* this process is such a child */

struct dl_counts {
    unsigned long long adds, subs;
};

static int counts_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct dl_counts *c = data;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c->adds = info->dlpi_adds;
        c->subs = info->dlpi_subs;
    }
    return 1; /* the first object has them */
}

static struct dl_counts watch_from;

static void *watch_main(void *arg)
{
    (void)arg;
    struct dl_counts last = watch_from;
    while (!atomic_load(&watch_stop)) {
        struct timespec ts = {0, WATCH_MS * 1000000L};
        syscall(SYS_futex, &watch_stop, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
        if (atomic_load(&watch_stop))
            break;
        struct dl_counts now = last;
        dl_iterate_phdr(counts_cb, &now);
        if (now.adds == last.adds && now.subs == last.subs)
            continue;
        if (now.subs != last.subs)
            sf_ctl_prune(); /* before patching: a new object may sit where an old one was */
        last = now;
        sf_patch_all_objects();
    }
    return NULL;
}

static void watch_start(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the program's signals are not for us */
    atomic_store(&watch_stop, 0);
    watching = pthread_create(&watcher, NULL, watch_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (watching)
        pthread_setname_np(watcher, "sftrace-watch");
    else
        sf_msg("pid %d: cannot start a thread to watch for objects loaded later; they are "
               "not traced",
               (int)sf_g.pid);
}

/* Stop the watcher: 0 once it has ended; -1 if it has not within a while.
 * It may be waiting for the dynamic linker's lock, held by the very thread
 * that runs this (ptrace stopped it anywhere, dl_iterate_phdr included):
 * then the detach is refused and tried again after that thread has run on. */
static int watch_end(void)
{
    if (!watching)
        return 0;
    atomic_store(&watch_stop, 1);
    syscall(SYS_futex, &watch_stop, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 300000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(watcher, NULL, &until) != 0)
        return -1;
    watching = 0;
    return 0;
}

static void close_ours(int *fd)
{
    if (*fd >= 0 && sf_is_our_fd(*fd))
        syscall(SYS_close, *fd);
    *fd = -1;
}

/* In a child forked while attached (only the forking thread exists): the
 * sleds back as they were, and none of our descriptors. Its memory still
 * maps the parent's shared buffers, which it no longer writes to. */
static void atfork_child(void)
{
    if (!sf_g.attached || !sf_g.enabled)
        return;
    sf_g.enabled = 0;
    forked_from_attached = 1;
    watching = 0; /* the thread is the parent's */
    sf_patch_after_fork();
    sf_ctl_restore_in_child();
    close_ours(&sf_g.wake_fd);
    close_ours(&sf_g.alive_fd);
    if (sf_g.memfd >= 0 && sf_fd_is(sf_g.memfd, sf_g.memfd_ino))
        syscall(SYS_close, sf_g.memfd);
    sf_g.memfd = -1;
    sf_g.helper_gone = 1;
}

/* 0: recording; -1: not (already attached, or it could not start); -2: this
 * process was forked from one sftrace was attached to (its memory is shared
 * with that one's recording, so it cannot record). */
SF_EXPORT int sftrace_attach(const char *log, const char *session)
{
    if (forked_from_attached)
        return -2;
    if (!log || !session || sf_g.enabled)
        return -1;
    static int atfork_set;
    if (!atfork_set)
        atfork_set = pthread_atfork(NULL, NULL, atfork_child) == 0;
    sf_g.attached = 1;
    dl_iterate_phdr(counts_cb, &watch_from); /* before the first scan: none is missed */
    int rc = sf_start_attached(log, session);
    if (rc == 0)
        watch_start();
    return rc;
}

/* 0: detached; -1: not attached; -3: busy (the watcher did not end), try
 * again. */
SF_EXPORT int sftrace_detach(void)
{
    if (!sf_g.enabled || !sf_g.attached)
        return -1;
    if (watch_end() != 0)
        return -3;
    sf_ctl_restore();
    sf_ctl_mark_attach(0);
    if (sf_request(REQ_END, SF_END_DETACH) != 0)
        sf_msg("pid %d: the helper did not end the recording (gone %d)", (int)sf_g.pid,
               sf_g.helper_gone);
    sf_g.enabled = 0;
    /* our pipes to the helper, which exits: closed, so the program has the
     * descriptors it had (hooks.c's close would refuse them: a system call) */
    if (sf_g.wake_fd >= 0)
        syscall(SYS_close, sf_g.wake_fd);
    if (sf_g.alive_fd >= 0)
        syscall(SYS_close, sf_g.alive_fd);
    sf_g.wake_fd = sf_g.alive_fd = -1;
    sf_g.helper_gone = 1;
    return 0;
}
