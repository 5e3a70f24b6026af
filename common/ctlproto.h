/*
 * ctlproto.h - how `sftrace ctl` talks to a running process's runtime
 * (runtime/ctl.c, ring.c): SIGUSR1 or SIGUSR2 queued with sigqueue(3) and one
 * of these values.
 * A plain SIGUSR1 (kill -USR1) toggles.
 */
#ifndef SFTRACE_CTLPROTO_H
#define SFTRACE_CTLPROTO_H

#include <signal.h>

#define SF_CTL_SIGNAL SIGUSR1
#define SF_CTL_START 0x53460001 /* start recording */
#define SF_CTL_STOP 0x53460002  /* stop recording */

/* `sftrace snapshot PID`: SIGUSR2 queued with this value (a plain SIGUSR2
 * asks for a snapshot too) to a process recording with --ring. */
#define SF_SNAP_SIGNAL SIGUSR2
#define SF_CTL_SNAPSHOT 0x53460003

#endif
