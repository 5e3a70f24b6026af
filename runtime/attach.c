/*
 * attach.c - recording a process that is already running (`sftrace attach
 * PID`, cmd/attach.c): the command makes the process dlopen this library and
 * call sftrace_attach, later sftrace_detach, through ptrace.
 *
 * Attached, the runtime records as under `record` (every object patched,
 * the helper process writing the log) except that nothing is interposed:
 * the library came in with dlopen, after the program bound its symbols, so
 * dlopen, fork, exec and signal handlers are the program's own. Objects the
 * program dlopens later are not patched (a new attach patches them), forked
 * children are not recorded, an exec ends the recording (the helper sees
 * the image go and writes END), and a fatal signal is seen by the helper as
 * a death.
 *
 * Detaching puts every patched sled back as it was, byte for byte (ctl.c),
 * has the helper write everything and an END saying DETACH, and the helper
 * exits. The shared memory stays mapped (threads that recorded keep their
 * pointers into it) and is used again by the next attach.
 */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

/* 0: recording; -1: not (already attached, or it could not start). */
SF_EXPORT int sftrace_attach(const char *log, const char *session)
{
    if (!log || !session || sf_g.enabled)
        return -1;
    sf_g.attached = 1;
    return sf_start_attached(log, session);
}

SF_EXPORT int sftrace_detach(void)
{
    if (!sf_g.enabled || !sf_g.attached)
        return -1;
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
