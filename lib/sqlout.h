/*
 * sqlout.h - `sftrace convert --format sqlite`: the calls of a log as an
 * SQLite database (schema and example queries: docs/sqlite.md).
 *
 * One entry point: it runs the call engine (calls.h) over the log and writes
 * every call, thread, process, object, function and allocation record into
 * a new database, in one transaction with prepared statements; the small
 * indexes are made at the end (and the ones over all calls with
 * SF_SQLOUT_INDEXES). The database is written beside the target and renamed
 * over it when complete, so a failed conversion leaves no half database and
 * an existing file as it was.
 */
#ifndef SFTRACE_SQLOUT_H
#define SFTRACE_SQLOUT_H

#include <stddef.h>
#include <stdint.h>

#include "calls.h"
#include "logread.h"
#include "select.h"
#include "symbols.h"

#define SF_SQL_SCHEMA_VERSION 2 /* meta.schema_version */
/* flags: also the classic indexes over all calls (function, parent, thread +
 * start_ns), for ad-hoc SQL; docs/sqlite.md says what each costs */
#define SF_SQLOUT_INDEXES 1u

struct sf_sqlout_stats {
    struct sf_calls_stats calls; /* the engine's totals */
    uint64_t allocs;             /* rows of table alloc */
    uint64_t functions, objects; /* rows of function, object */
    uint64_t bytes;              /* size of the database */
    double insert_s, index_s;    /* time spent reading + inserting, making indexes */
    /* CPU time of the load: the calling thread (the engine; with one CPU
     * the inserts too), the writer thread (the inserts; 0 without one) */
    double engine_cpu_s, writer_cpu_s;
    size_t runs; /* engine runs (groups of threads whose chunks do not interleave) */
    int damaged; /* a reader skipped damage (some of which log's
                    sf_log_summary may not know: the runs of
                    other threads read with readers of their own) */
};

/*
 * Write log's calls (sel: the selection, NULL for all) into a database at
 * path (log: opened, not read yet). syms names the functions. 0, or -1 with
 * "what: why" in err (nothing is left at path then). Damage in the log is
 * the reader's to report (logread.h); the database has everything readable.
 */
int sf_sqlout_write(struct sf_log *log, struct sf_syms *syms, const struct sf_select *sel,
                    const char *path, unsigned flags, struct sf_sqlout_stats *st, char *err,
                    size_t errlen);

#endif /* SFTRACE_SQLOUT_H */
