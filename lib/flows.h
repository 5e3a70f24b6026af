/*
 * flows.h - cross-thread causality: which call made a job or task available
 * and which call ran it (docs/design.md, "Flows").
 *
 * A flow rule names a function (a PCRE2 regex on the demangled name, robust
 * to generic parameters and closure numbering), its role (producer: it makes
 * a job available; consumer: it runs it) and the register that carries the
 * job's identity, the key: an argument (0..5) at the entry or the return
 * value. The runtime records that register with the function's event (a KEY
 * record from the fast key trampolines, or ARGS / RET from the slow path)
 * for the functions a keys file names; `sftrace record` writes that file
 * from the same rules (sf_flows_write_keys), so the built-in rules for
 * rayon-core 1.x and tokio 1.x are on whenever such functions are present.
 *
 * The tools pair keys in a prepass (sf_flows_scan: its own run of the call
 * engine over the log, all threads merged in time order):
 *   rayon (domain SF_FLOW_JOB): a producer's key is pending until a
 *     consumer with the same key runs; that is a flow when the consumer's
 *     thread is another one. A producer nested in an open producer of the
 *     same key on the same thread (WorkerThread::push calling the deque's
 *     push) does not replace it.
 *   tokio (domain SF_FLOW_TASK): task creation (the key is the raw task
 *     pointer it returns) starts a task; its first poll is a flow from the
 *     creation, every later poll of the task one from the poll before,
 *     whatever the threads. In release builds RawTask::new is inlined: OwnedTasks::bind,
 *     which returns the same pointer, is the creation then (a poll of an
 *     unknown pointer starts a task with no spawn flow), and
 *     blocking::pool::Spawner::spawn_task for spawn_blocking's; Harness::complete (and
 * raw::dealloc) ends it, so a new task at the same address is not taken for the old one. Every key
 * record then has at most one incoming and one outgoing flow, found by the record's file offset in
 * the tools' main pass.
 */
#ifndef SFTRACE_FLOWS_H
#define SFTRACE_FLOWS_H

#include <stddef.h>
#include <stdint.h>

/* Only declared here, so that cmd/record.c (which has common/logfile.h's
 * sf_log_open, not logread.h's) can write keys files. */
struct sf_event;
struct sf_select;

enum sf_flow_domain {
    SF_FLOW_JOB = 0,  /* rayon jobs: flows only across threads */
    SF_FLOW_TASK = 1, /* tokio tasks: spawn -> first poll -> next poll ... */
    SF_FLOW_NDOMAINS
};
enum sf_flow_role {
    SF_FLOW_PRODUCER = 0,
    SF_FLOW_CONSUMER = 1,
    SF_FLOW_RETIRE = 2, /* the key's job or task is gone (tokio's dealloc) */
};

/* A built-in rule. reg: enum sf_key_reg (0..5 argument, SF_KEY_RET).
 * pair: the key is one of two words passed by value in reg and the next
 * register (rayon's JobRef {pointer, execute_fn}, whose field order is the
 * compiler's choice): both are taken as keys; only the pointer can ever
 * match a consumer's. */
struct sf_flow_rule {
    const char *regex;
    uint8_t domain, role, reg, pair;
};
extern const struct sf_flow_rule sf_flow_builtin[];
extern const size_t sf_flow_nbuiltin;

struct sf_flows;
struct sf_flows *sf_flows_new(void);
void sf_flows_free(struct sf_flows *fl);

/*
 * The user's rules: a flows file (docs/filter-format.md, "Flow rules"):
 *   sftrace-flows 1
 *   DOMAIN ROLE KEY REGEX      e.g.  job producer k0 ^pool::submit$
 * DOMAIN job or task, ROLE producer, consumer or retire, KEY k0..k5 (an
 * argument), kr (the return value) or k0+..k4+ (two words, either may be
 * the key). They are tried before the built-in ones. 0, or -1 with a
 * message naming the file and line in err.
 */
#define SF_FLOWS_MAGIC "sftrace-flows 1"
int sf_flows_load(struct sf_flows *fl, const char *path, char *err, size_t errlen);

/* Add a --flows FILE to a command's list of them. */
void sf_flows_addfile(const char ***files, size_t *n, const char *path);
/* A flows table with the rules of files[0..n) loaded (the commands'
 * --flows FILE). NULL after printing "sftrace CMD: MESSAGE". */
struct sf_flows *sf_flows_with(const char *cmd, const char *const *files, size_t n);

/* The rule index for a demangled function name, or -1. */
int sf_flows_match(struct sf_flows *fl, const char *name);

/* Write a keys file (docs/filter-format.md, `mode keys`) for the
 * instrumented functions of the ELF file exe the rules name. Returns how
 * many functions it names (0: no file written), or -1 with a message in err. */
int sf_flows_write_keys(struct sf_flows *fl, const char *exe, const char *out, char *err,
                        size_t errlen);

/* The prepass over the log at path with the selection sel (may be NULL).
 * Quiet: a damaged log is the main pass's to report. 0, or -1 with a
 * message in err (no flows then). */
int sf_flows_scan(struct sf_flows *fl, const char *path, const struct sf_select *sel, char *err,
                  size_t errlen);

/* Flow endpoints of one key record. Ids are 1, 2, 3... in the order the
 * flows start; 0 = none. */
struct sf_flow_ends {
    uint64_t in;  /* the flow this call ends (it runs the job / polls the task) */
    uint64_t out; /* the flow it starts */
    uint8_t domain;
};
/* The endpoints of the ext record ev (a KEY, or ARGS / RET of a rule
 * function) of the main pass; 0 when it has none (fl may be NULL). */
int sf_flows_at(const struct sf_flows *fl, const struct sf_event *ev, struct sf_flow_ends *out);
/* Can ev carry a key (KEY, ARGS or RET)? */
int sf_flows_is_key(const struct sf_event *ev);

/* tokio tasks, for one async track per task: its polls (start, end ns),
 * in time order, and a name: the future's type from the poll function's
 * generic arguments (v0 names), else "tokio task". */
struct sf_flow_task {
    uint32_t pid;
    const char *name;
    size_t npolls;
    const uint64_t (*polls)[2];
};
size_t sf_flows_ntasks(const struct sf_flows *fl);
void sf_flows_task(const struct sf_flows *fl, size_t i, struct sf_flow_task *out);

/*
 * --follow-jobs (report, graph, flame): before sf_flows_scan, ask it to keep
 * each producer's calling context. Then, for a flow id (sf_flow_ends.in of a
 * consumer's key record), where its consumer call belongs in a tree that
 * follows jobs: under the consumer call of flow *parent (0: a thread's
 * outermost level), then the calls named by (*names)[0..*n) (outermost
 * first; the producer's own call left out). Returns 0 if the flow has no
 * such context (the call stays where its thread ran it). A tokio poll's
 * context is its task's spawn context.
 */
void sf_flows_set_follow(struct sf_flows *fl, int on);
int sf_flows_graft(const struct sf_flows *fl, uint64_t flow, uint64_t *parent,
                   const char *const **names, size_t *n);

struct sf_flows_stats {
    uint64_t keys;                    /* key records seen */
    uint64_t flows[SF_FLOW_NDOMAINS]; /* flows made */
    uint64_t tasks;                   /* tokio tasks created */
};
void sf_flows_stats(const struct sf_flows *fl, struct sf_flows_stats *st);
/* Number of flows in total (0: nothing to draw). */
uint64_t sf_flows_count(const struct sf_flows *fl);

#endif /* SFTRACE_FLOWS_H */
