/*
 * vnote.h - the version note of libsftrace.so, shared by the runtime (which
 * carries it) and `sftrace record` (which reads it before preloading).
 *
 * The runtime has an ELF note section .note.sftrace holding one note: owner
 * "sftrace", type SF_NOTE_VERSION, descriptor the NUL-terminated version
 * string (SFTRACE_VERSION, from the VERSION file and git describe). A note
 * rather than a symbol: it survives `strip`, needs no symbol lookup, and
 * `readelf -n libsftrace.so` shows it. record refuses a library without it
 * or with another version; the runtime, started by record, also compares
 * its own version with record's (SF_ENV_RECORD_VERSION).
 */
#ifndef SFTRACE_VNOTE_H
#define SFTRACE_VNOTE_H

#define SF_NOTE_OWNER "sftrace"
#define SF_NOTE_VERSION 1u

/* record exports its version to the traced command under this name. */
#define SF_ENV_RECORD_VERSION "SFTRACE_RECORD_VERSION"

#endif
