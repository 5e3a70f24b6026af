/*
 * logfmt.h - the sftrace log format, shared by the runtime and the tools.
 *
 * This header is the one definition of what a log file holds. The runtime
 * (libsftrace.so) writes it; `sftrace dump`, `convert` and the rest read it.
 * docs/log-format.md explains the same layout in prose; keep them in step.
 *
 * A log is a file header followed by chunks. Every chunk is self-describing
 * (magic, type, size, pid) and is appended with one write(2) on an O_APPEND
 * descriptor, so any number of threads and processes can append to one log
 * without interleaving partial data. All integers are little-endian; every
 * chunk is a multiple of 8 bytes long and starts 8-byte aligned.
 *
 * Function events are 8 bytes: the low 32 bits of the timestamp and a 32-bit
 * word that is exactly the immediate the patched XRay sled loads into r10d,
 * (function id << 2) | kind. The trampoline stores both words as they are:
 * no encoding work on the hot path. The high 32 bits of the timestamp are
 * carried by TSC_HI records, written only when they change (about every 1.4 s
 * at 3 GHz), so decoding is exact however long a thread sleeps.
 */
#ifndef SFTRACE_LOGFMT_H
#define SFTRACE_LOGFMT_H

#include <stdint.h>

/* ---- file header ------------------------------------------------------ */

#define SF_FILE_MAGIC "SFTRACE\0" /* 8 bytes */
#define SF_VERSION_MAJOR 1        /* readers refuse a newer major */
#define SF_VERSION_MINOR 3 /* compatible additions (1: PROCESS machine; 2: END status; 3: MARK) */

struct sf_file_header {
    char magic[8];           /* SF_FILE_MAGIC */
    uint16_t version_major;  /* SF_VERSION_MAJOR */
    uint16_t version_minor;  /* SF_VERSION_MINOR */
    uint32_t header_size;    /* sizeof(struct sf_file_header); chunks start here */
    uint64_t session_id;     /* random; descendants that append share it */
    uint64_t create_mono_ns; /* CLOCK_MONOTONIC when the log was created */
    uint64_t create_real_ns; /* CLOCK_REALTIME at the same moment */
    uint64_t reserved[3];
};

/* Fill a file header: what `record` and the runtime write to start a log. */
static inline void sf_file_header_init(struct sf_file_header *h, uint64_t session_id,
                                       uint64_t mono_ns, uint64_t real_ns)
{
    static const char magic[8] = SF_FILE_MAGIC;
    *h = (struct sf_file_header){0};
    for (int i = 0; i < 8; i++)
        h->magic[i] = magic[i];
    h->version_major = SF_VERSION_MAJOR;
    h->version_minor = SF_VERSION_MINOR;
    h->header_size = sizeof *h;
    h->session_id = session_id;
    h->create_mono_ns = mono_ns;
    h->create_real_ns = real_ns;
}

/* ---- chunks ------------------------------------------------------------ */

#define SF_CHUNK_MAGIC 0x4b434653u /* "SFCK" */

enum sf_chunk_type {
    SF_CHUNK_PROCESS = 1, /* a process (or exec'd image) starts recording */
    SF_CHUNK_OBJECT = 2,  /* an instrumented object was patched */
    SF_CHUNK_THREAD = 3,  /* a thread's name, or its exit */
    SF_CHUNK_EVENTS = 4,  /* events of one thread */
    SF_CHUNK_END = 5,     /* a process finished recording (summary) */
    SF_CHUNK_MARK = 6,    /* minor 3: recording stopped or started (live control) */
};

struct sf_chunk {
    uint32_t magic; /* SF_CHUNK_MAGIC */
    uint16_t type;  /* enum sf_chunk_type */
    uint16_t flags; /* type-specific */
    uint32_t size;  /* whole chunk in bytes, header included, multiple of 8 */
    uint32_t pid;   /* OS process id of the writer */
};

/* Largest chunk a reader accepts; a larger size field means corruption. */
#define SF_CHUNK_MAX (1u << 30)

/* Clock domains: what the 64-bit event timestamps count. */
enum sf_clock {
    SF_CLOCK_TSC = 1,  /* rdtsc ticks; convert with the calibration pairs */
    SF_CLOCK_MONO = 2, /* CLOCK_MONOTONIC nanoseconds (no invariant TSC) */
};

/*
 * PROCESS: written before anything else a process writes. A forked child
 * writes its own (flags SF_PROC_FORKED) before its first events; an exec'd
 * image writes a new one with the same pid, and from then on that pid's
 * objects and function ids are the new image's.
 * Followed by name_len bytes of name, cmdline_len bytes of command line
 * (arguments separated by NUL), exe_len bytes of executable path, then zero
 * padding to a multiple of 8.
 */
#define SF_PROC_FORKED 1u
#define SF_PROC_EXECED 2u
struct sf_process {
    struct sf_chunk h;
    uint32_t ppid;
    uint32_t clock;   /* enum sf_clock */
    uint64_t tsc;     /* calibration pair: timestamp ... */
    uint64_t mono_ns; /* ... and CLOCK_MONOTONIC read at the same moment */
    uint64_t real_ns; /* CLOCK_REALTIME at the same moment */
    uint64_t tsc_hz;  /* the runtime's estimate, 0 if unknown */
    uint32_t name_len;
    uint32_t cmdline_len;
    uint32_t exe_len;
    uint32_t machine; /* ELF e_machine of the writer: 62 x86_64, 183 aarch64
                         (0: a runtime before version 1.1, always x86_64) */
};

/*
 * OBJECT: one instrumented object (executable or shared library) of the
 * writing process. Function ids fid_base .. fid_base+nfuncs-1 are its
 * functions, in the order of its xray_instr_map. Followed by
 * uint64_t func_addr[nfuncs] (function entry addresses as in the ELF file,
 * i.e. runtime address - load_bias), path_len bytes of path, build_id_len
 * bytes of GNU build-id, then zero padding to a multiple of 8.
 */
#define SF_OBJ_MAIN 1u /* the main executable */
#define SF_OBJ_KEYS 2u /* some functions record keys (a keys file: flows) */
struct sf_object {
    struct sf_chunk h;
    uint64_t load_bias; /* dlpi_addr: runtime address - ELF address */
    uint32_t fid_base;
    uint32_t nfuncs;
    uint32_t nsleds; /* function sleds in its xray_instr_map (0 before 1.1) */
    uint32_t path_len;
    uint32_t build_id_len;
    uint32_t reserved;
};

/* THREAD: the name of a thread (as the program set it) or its exit. */
#define SF_THREAD_EXITED 1u
struct sf_thread {
    struct sf_chunk h;
    uint32_t tid;
    uint32_t reserved;
    uint64_t tsc;  /* when the name was read */
    char name[16]; /* NUL-terminated, Linux comm */
};

/*
 * EVENTS: a run of one thread's records. Chunks of one thread appear in the
 * file in the order of their seq (starting at 0 per thread and process image)
 * and in time order. tsc_hi is the high half of the timestamp in force at the
 * first record. flush_tsc/flush_mono_ns is a calibration pair read when the
 * chunk was written. Followed by (size - sizeof) bytes of records.
 */
#define SF_EVENTS_LOST 1u /* records were dropped just before this chunk */
/* SF_EVENTS_PACKED (2, pack.h): the records are in the compact encoding */
struct sf_events {
    struct sf_chunk h;
    uint32_t tid;
    uint32_t seq;
    uint32_t tsc_hi;
    uint32_t pad; /* packed chunks: zero bytes after the last record */
    uint64_t flush_tsc;
    uint64_t flush_mono_ns;
};

/*
 * END: a process image stops recording (exit, exec, a fatal signal the
 * runtime saw, or its death without the runtime running: DIED, written by
 * the helper that salvaged its buffers). Totals are for that image and count
 * exactly the records the log holds for it. status_how/status (minor 1) say
 * how the process ended; a 56-byte END (minor 0) has neither.
 */
struct sf_end {
    struct sf_chunk h;
    uint64_t tsc; /* calibration pair at the end */
    uint64_t mono_ns;
    uint64_t events;     /* function events recorded */
    uint64_t lost;       /* records dropped */
    uint32_t threads;    /* threads that recorded */
    uint32_t reason;     /* enum sf_end_reason */
    uint32_t status_how; /* enum sf_status_how (minor 1) */
    uint32_t status;     /* exit status, or the signal number */
};
#define SF_END_SIZE_V0 56u /* END of a minor-0 log: no status fields */
enum sf_end_reason {
    SF_END_EXIT = 1,
    SF_END_EXEC = 2,
    SF_END_SIGNAL = 3, /* a fatal signal, seen by the runtime's handler */
    SF_END_DIED = 4,   /* it died without the runtime's last flush (SIGKILL, the OOM
                          killer, a raw exit_group, a crash): its helper wrote it */
    SF_END_DETACH = 5, /* minor 3: `sftrace attach` detached; the process runs on */
};
enum sf_status_how {
    SF_STATUS_UNKNOWN = 0,
    SF_STATUS_EXITED = 1,   /* status = exit status */
    SF_STATUS_SIGNALED = 2, /* status = the signal that killed it */
};
/* END flags */
#define SF_END_WRITE_FAILED 1u /* the log could not hold everything (disk full...) */

/*
 * MARK (minor 3): a moment of live recording control in the writing process
 * image. STOP: from tsc on, nothing of the image is recorded (the sleds are
 * unpatched) until the next START; every call open at tsc was cut there,
 * not left unfinished. The runtime writes STOP after every record stored
 * before tsc is in the log, and START before any record after its tsc, so
 * in file order a STOP follows the records of its window and a START comes
 * before the records of the next. Records of the image after a STOP and
 * before the next START (threads that were inside the trampoline as the
 * sleds were unpatched) belong to no window and are dropped by readers.
 * A process started paused writes a STOP right after its PROCESS chunk.
 *
 * SNAP_BEGIN / SNAP_END (flight recorder, `record --ring`): a process image
 * keeping only its most recent records writes no EVENTS chunk except in
 * snapshots. A snapshot is SNAP_BEGIN, THREAD chunks naming its threads,
 * the EVENTS (and THREAD) chunks it kept, oldest first, and SNAP_END; both
 * marks carry the same seq (1, 2, 3... per image) and tsc, the cut: every
 * thread's records up to that moment (later ones in the snapshot are not
 * part of it). Each snapshot stands alone: a later one may repeat chunks
 * of an earlier one. Tools read one snapshot at a time (--snapshot N).
 */
enum sf_mark_kind {
    SF_MARK_STOP = 1,
    SF_MARK_START = 2,
    SF_MARK_SNAP_BEGIN = 3, /* a flight-recorder snapshot follows (seq: its number) */
    SF_MARK_SNAP_END = 4,   /* it is complete */
};
enum sf_mark_why {
    SF_WHY_PAUSED = 1,  /* started paused (record --paused) */
    SF_WHY_SIGNAL = 2,  /* SIGUSR1 (toggle) */
    SF_WHY_CTL = 3,     /* sftrace ctl PID start|stop */
    SF_WHY_TRIGGER = 4, /* a trace-on / trace-off function (arg: its function id) */
    SF_WHY_API = 5,     /* the program called sftrace_start/sftrace_stop */
    SF_WHY_SLOW = 6,    /* snapshot: a call of function arg took longer than asked */
    SF_WHY_EXIT = 7,    /* snapshot: the process image ended (exit, exec) */
    SF_WHY_FATAL = 8,   /* snapshot: a fatal signal */
    SF_WHY_DIED = 9,    /* snapshot: it died without the runtime (SIGKILL...) */
    SF_WHY_ATTACH = 10, /* sftrace attach attached (START) or detached (STOP) */
    SF_WHY_RING = 11,   /* in a snapshot: START where the ring's complete history
                           begins (older records were dropped to make room) */
};
struct sf_mark {
    struct sf_chunk h;
    uint32_t kind;    /* enum sf_mark_kind; readers skip one of a kind they do not know */
    uint32_t why;     /* enum sf_mark_why (informational) */
    uint64_t tsc;     /* the moment, in the image's clock */
    uint64_t mono_ns; /* calibration pair with tsc */
    uint32_t arg;     /* TRIGGER: the function id; otherwise 0 */
    uint32_t seq;     /* 1, 2, 3... per process image */
};

/* ---- records inside EVENTS chunks -------------------------------------- */

/*
 * Every record starts with two 32-bit words: w0 and w1.
 *   w1 & 3 == 0,1,2: function event. w0 = timestamp bits 0..31,
 *                    w1 >> 2 = function id. 8 bytes.
 *   w1 & 3 == 3:     extended record: subtype = (w1 >> 2) & 0x3f,
 *                    arg = (w1 >> 8) & 0xff, followed by (w1 >> 16) 64-bit
 *                    payload words. w0 is the timestamp's low half, except
 *                    for TSC_HI where it is the new high half.
 */
enum sf_kind {
    SF_KIND_ENTRY = 0,
    SF_KIND_EXIT = 1,
    SF_KIND_TAIL = 2, /* tail call: the function leaves by jumping to another */
    SF_KIND_EXT = 3,
};

enum sf_ext {
    SF_EXT_PAD = 0,    /* filler: skip */
    SF_EXT_TSC_HI = 1, /* w0 = new high half of the timestamp */
    SF_EXT_ALLOC = 2,  /* arg = enum sf_alloc_kind; payload: size, align, ptr */
    SF_EXT_ARGS = 3,   /* arg = count; payload: integer argument registers of
                          the entry just before (rdi rsi rdx rcx r8 r9) */
    SF_EXT_RET = 4,    /* payload: rax of the exit just before */
    SF_EXT_LOST = 5,   /* payload: number of records dropped here */
    SF_EXT_KEY = 6,    /* arg = enum sf_key_reg; payload: that register at the
                          entry (argument) or exit (SF_KEY_RET) just before,
                          then the next one (the runtime writes 2 words) */
};

/* Which register a KEY record holds first: argument 0..5 (rdi rsi rdx rcx
 * r8 r9) at an entry, or the return value (rax, then rdx) at an exit. The
 * same values may come as ARGS or RET instead (the runtime's slow path). */
enum sf_key_reg { SF_KEY_ARG0 = 0, SF_KEY_RET = 6 };

enum sf_alloc_kind {
    SF_ALLOC_ALLOC = 1,
    SF_ALLOC_FREE = 2,
    SF_ALLOC_REALLOC_ALLOC = 3, /* realloc: the new block */
    SF_ALLOC_REALLOC_FREE = 4,  /* realloc: the old block */
};

#define SF_FID_MAX ((1u << 30) - 1)

static inline uint32_t sf_w1_event(uint32_t fid, enum sf_kind kind)
{
    return (fid << 2) | (uint32_t)kind;
}

static inline uint32_t sf_w1_ext(enum sf_ext sub, uint32_t arg, uint32_t nwords)
{
    return 3u | ((uint32_t)sub << 2) | (arg << 8) | (nwords << 16);
}

static inline uint32_t sf_w1_kind(uint32_t w1)
{
    return w1 & 3u;
}
static inline uint32_t sf_w1_fid(uint32_t w1)
{
    return w1 >> 2;
}
static inline uint32_t sf_w1_sub(uint32_t w1)
{
    return (w1 >> 2) & 0x3fu;
}
static inline uint32_t sf_w1_arg(uint32_t w1)
{
    return (w1 >> 8) & 0xffu;
}
static inline uint32_t sf_w1_nwords(uint32_t w1)
{
    return w1 >> 16;
}

#endif /* SFTRACE_LOGFMT_H */
