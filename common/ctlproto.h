/*
 * ctlproto.h - how `sftrace ctl` talks to a running process's runtime
 * (runtime/ctl.c): SIGUSR1 queued with sigqueue(3) and one of these values.
 * A plain SIGUSR1 (kill -USR1) toggles.
 */
#ifndef SFTRACE_CTLPROTO_H
#define SFTRACE_CTLPROTO_H

#include <signal.h>

#define SF_CTL_SIGNAL SIGUSR1
#define SF_CTL_START 0x53460001 /* start recording */
#define SF_CTL_STOP 0x53460002  /* stop recording */

#endif
