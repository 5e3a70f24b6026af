/*
 * flows.c - producer/consumer pairs of rayon jobs and tokio tasks (and the
 * keys file that makes the runtime record their keys); flows.h says what a
 * flow is and how keys pair.
 *
 * The prepass runs its own call engine over the log, keeping for every key
 * record of a rule function: thread, time, function id, key, and the time
 * its call ends. The records are then sorted by time (threads merged) and
 * paired with one map from (pid, domain, key) to the pending record; the
 * result is a map from the record's file offset to its endpoints.
 * Memory grows with the number of key records (a few per job or poll), not
 * with the number of events.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "flows.h"

#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gelf.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calls.h"
#include "logread.h"
#include "select.h"
#include "symbols.h"
#include "xalloc.h"
#include "xraymap.h"

/*
 * Built-in rules. Names are matched demangled, legacy (`rayon_core::job::
 * StackJob<L,F,R>`) or v0 (`<rayon_core::registry::WorkerThread>::push`, with
 * the real generic arguments), so each regex allows both.
 *
 * rayon-core 1.x: a job is a JobRef {pointer, execute_fn}; the pointer is
 * the key. It is made available by the local deque's push (join's second
 * closure, scope spawns inside the pool), or the injector's push (install
 * and spawns from outside the pool, and in_worker_cross); both take the
 * JobRef by value, as arguments 1 and 2 after &self. StackJob and HeapJob
 * execute get the pointer as their only argument (they are only called
 * through JobRef's function pointer, so they exist even in release builds).
 *
 * tokio 1.x: RawTask::new returns the task's header pointer, the key that
 * raw::poll (the vtable's poll, never inlined) gets as its argument. In
 * release builds RawTask::new is inlined into OwnedTasks::bind (spawn's
 * path, for the multi-thread and current-thread schedulers and LocalSet),
 * which returns (JoinHandle, Option<Notified>) in rax:rdx, the JoinHandle
 * being the header pointer: a second producer of the same task, taken only
 * when it comes alone (pair). A task ends in Harness::complete (its last
 * poll, or its shutdown), whose self is the header pointer: it retires the
 * key, so a new task at the same address is not taken for the old one.
 * raw::dealloc does too, but the harness frees most tasks by its own,
 * inlined dealloc, not the vtable's (seen: 11 of 5,500 tasks).
 * spawn_blocking's tasks (task::unowned, inlined too) are queued by
 * blocking::pool::Spawner::spawn_task(&self, Task {task, mandatory}): the
 * header pointer is argument 1, at the entry, before a blocking thread can
 * poll it (spawn_blocking returns the JoinHandle only after that: as a
 * return-value producer it would come after the poll).
 */
const struct sf_flow_rule sf_flow_builtin[] = {
    {"^<rayon_core::job::(StackJob|HeapJob)<.*> as rayon_core::job::Job>::execute$", SF_FLOW_JOB,
     SF_FLOW_CONSUMER, 0, 0},
    {"^<?rayon_core::registry::WorkerThread>?::push$", SF_FLOW_JOB, SF_FLOW_PRODUCER, 1, 1},
    {"^<?crossbeam_deque::deque::(Worker|Injector)<[^ ]*>>?::push$", SF_FLOW_JOB, SF_FLOW_PRODUCER,
     1, 1},
    {"^<?tokio::runtime::task::raw::RawTask>?::new(::<.*>)?$", SF_FLOW_TASK, SF_FLOW_PRODUCER,
     SF_KEY_RET, 0},
    {"^tokio::runtime::task::raw::poll(::<.*>)?$", SF_FLOW_TASK, SF_FLOW_CONSUMER, 0, 0},
    {"^tokio::runtime::task::raw::dealloc(::<.*>)?$", SF_FLOW_TASK, SF_FLOW_RETIRE, 0, 0},
    {"^<?tokio::runtime::task::list::(Local)?OwnedTasks<.*>>?::bind(::<.*>)?$", SF_FLOW_TASK,
     SF_FLOW_PRODUCER, SF_KEY_RET, 0},
    {"^<?tokio::runtime::task::harness::Harness<.*>>?::complete$", SF_FLOW_TASK, SF_FLOW_RETIRE, 0,
     0},
    {"^<?tokio::runtime::blocking::pool::Spawner>?::spawn_task$", SF_FLOW_TASK, SF_FLOW_PRODUCER, 1,
     0},
};
const size_t sf_flow_nbuiltin = sizeof sf_flow_builtin / sizeof sf_flow_builtin[0];

/* One key record of the prepass. */
struct krec {
    uint64_t ns, end_ns; /* the record's time; its call's end (UINT64_MAX: open) */
    uint64_t key;
    uint64_t in, out; /* flow ids */
    uint64_t offset;  /* the record's file offset: its identity in every pass */
    uint32_t pid, tid, fid;
    uint32_t order;    /* scan order, for a stable sort */
    uint32_t task;     /* tokio: 1 + index in tasks, 0 = none */
    const char *tname; /* tokio consumer: the future's type */
    uint32_t ctx;      /* --follow-jobs, producers: 1 + index in ctxs, 0 = none */
    uint8_t domain, role;
};

/* --follow-jobs: a producer's calling context when it made its key
 * available: the delivered open calls of its thread (outermost first, the
 * producer's own call left out), and which of them are consumer calls
 * (rayon's execute, tokio's poll) with their records, so that a job made
 * inside a job that came from another thread continues that job's context. */
struct kctx {
    const char **names; /* frame names (interned in fl->fname_of) */
    uint32_t n;
    uint32_t *cpos;   /* consumer frames: position in names ... */
    uint32_t *corder; /* ... and their record's scan order */
    uint32_t nc;
};

/* The context a followed flow's consumer call continues (sf_flows_graft). */
struct graft {
    uint64_t parent; /* flow whose consumer call the names start at, 0: none */
    uint64_t alias;  /* tokio poll -> next poll: the same as this flow's */
    const char **names;
    uint32_t n;
    uint8_t set;
};

struct sf_flows {
    struct sf_flow_rule *rules; /* the built-in ones, then the user's (sf_flows_load) */
    pcre2_code **re;
    size_t nrules, nuser;
    pcre2_match_data *md;
    struct krec *k;
    size_t nk, capk;
    struct sf_map at; /* file offset of a record with endpoints -> index + 1 in k */
    uint64_t nflows[SF_FLOW_NDOMAINS], tasks;
    /* prepass state */
    struct sf_calls *eng;
    int32_t *rule_of; /* per global function: rule + 1, 0 unknown, -1 none */
    size_t nrule_of;
    struct kthr **kts; /* every thread's, freed after the run */
    size_t nkts;
    const char **tname_of; /* per global function: the poll's future type */
    char **strs;           /* strings owned */
    size_t nstrs;
    struct task *tk; /* tokio tasks */
    size_t ntk, captk;
    /* --follow-jobs */
    int follow;
    struct kctx *ctxs;
    size_t nctxs, capctxs;
    char **fname_of; /* per prepass function: its name, interned */
    size_t nfname;
    struct graft *grafts; /* by flow id */
    size_t ngrafts;
};

struct task {
    uint32_t pid;
    const char *name;
    uint64_t (*polls)[2];
    size_t npolls, cap;
};

struct sf_flows *sf_flows_new(void)
{
    struct sf_flows *fl = sf_xcalloc(1, sizeof *fl);
    fl->rules = sf_xcalloc(sf_flow_nbuiltin, sizeof *fl->rules);
    fl->re = sf_xcalloc(sf_flow_nbuiltin, sizeof *fl->re);
    for (size_t i = 0; i < sf_flow_nbuiltin; i++) {
        int ec;
        PCRE2_SIZE eo;
        fl->rules[i] = sf_flow_builtin[i];
        fl->re[i] = pcre2_compile((PCRE2_SPTR)sf_flow_builtin[i].regex, PCRE2_ZERO_TERMINATED, 0,
                                  &ec, &eo, NULL);
        if (!fl->re[i]) /* a built-in regex: a bug */
            abort();
    }
    fl->nrules = sf_flow_nbuiltin;
    fl->md = pcre2_match_data_create(4, NULL);
    return fl;
}

void sf_flows_free(struct sf_flows *fl)
{
    if (!fl)
        return;
    for (size_t i = 0; i < fl->nrules; i++)
        pcre2_code_free(fl->re[i]);
    for (size_t i = sf_flow_nbuiltin; i < fl->nrules; i++)
        free((char *)fl->rules[i].regex);
    free(fl->re);
    free(fl->rules);
    pcre2_match_data_free(fl->md);
    free(fl->k);
    free(fl->rule_of);
    free(fl->tname_of);
    for (size_t i = 0; i < fl->nstrs; i++)
        free(fl->strs[i]);
    free(fl->strs);
    for (size_t i = 0; i < fl->ntk; i++)
        free(fl->tk[i].polls);
    free(fl->tk);
    sf_map_free(&fl->at);
    for (size_t i = 0; i < fl->nctxs; i++) {
        free(fl->ctxs[i].names);
        free(fl->ctxs[i].cpos);
        free(fl->ctxs[i].corder);
    }
    free(fl->ctxs);
    for (size_t i = 0; i < fl->nfname; i++)
        free(fl->fname_of[i]);
    free(fl->fname_of);
    free(fl->grafts);
    free(fl);
}

void sf_flows_set_follow(struct sf_flows *fl, int on)
{
    fl->follow = on;
}

int sf_flows_match(struct sf_flows *fl, const char *name)
{
    /* the user's rules first: they may refine a built-in one */
    for (size_t k = 0; k < fl->nrules; k++) {
        size_t i = k < fl->nuser ? sf_flow_nbuiltin + k : k - fl->nuser;
        if (pcre2_match(fl->re[i], (PCRE2_SPTR)name, strlen(name), 0, 0, fl->md, NULL) >= 0)
            return (int)i;
    }
    return -1;
}

/* One line of a flows file: DOMAIN ROLE KEY REGEX. 0, or -1 with err. */
static int parse_rule(struct sf_flows *fl, char *line, char *err, size_t errlen)
{
    static const char *const domains[] = {"job", "task"};
    static const char *const roles[] = {"producer", "consumer", "retire"};
    char *sp[3];
    char *p = line;
    for (int i = 0; i < 3; i++) {
        sp[i] = p;
        p += strcspn(p, " \t");
        if (!*p) {
            snprintf(err, errlen, "expected 'DOMAIN ROLE KEY REGEX'");
            return -1;
        }
        *p++ = 0;
        p += strspn(p, " \t");
    }
    struct sf_flow_rule r = {0};
    int d = -1, o = -1;
    for (int i = 0; i < 2; i++)
        if (!strcmp(sp[0], domains[i]))
            d = i;
    for (int i = 0; i < 3; i++)
        if (!strcmp(sp[1], roles[i]))
            o = i;
    if (d < 0) {
        snprintf(err, errlen, "domain '%.40s': job or task", sp[0]);
        return -1;
    }
    if (o < 0) {
        snprintf(err, errlen, "role '%.40s': producer, consumer or retire", sp[1]);
        return -1;
    }
    const char *k = sp[2];
    size_t kl = strlen(k);
    r.pair = kl == 3 && k[2] == '+';
    if (!(kl == 2 || r.pair) || k[0] != 'k' ||
        !((k[1] >= '0' && k[1] <= '5') || (k[1] == 'r' && !r.pair)) || (r.pair && k[1] == '5')) {
        snprintf(err, errlen,
                 "key '%.40s': k0..k5 (an argument), kr (the return value), or "
                 "k0+..k4+ (two words from that argument on)",
                 k);
        return -1;
    }
    r.reg = k[1] == 'r' ? SF_KEY_RET : (uint8_t)(k[1] - '0');
    r.domain = (uint8_t)d;
    r.role = (uint8_t)o;
    if (!*p) {
        snprintf(err, errlen, "no REGEX");
        return -1;
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR m[120];
        pcre2_get_error_message(ec, m, sizeof m);
        snprintf(err, errlen, "regex '%.60s': %s at offset %zu", p, (const char *)m, (size_t)eo);
        return -1;
    }
    if (fl->nrules >= 250) {
        snprintf(err, errlen, "more than %d rules", 250 - (int)sf_flow_nbuiltin);
        pcre2_code_free(re);
        return -1;
    }
    r.regex = sf_xstrdup(p);
    fl->rules = sf_xrealloc(fl->rules, (fl->nrules + 1) * sizeof *fl->rules);
    fl->re = sf_xrealloc(fl->re, (fl->nrules + 1) * sizeof *fl->re);
    fl->rules[fl->nrules] = r;
    fl->re[fl->nrules++] = re;
    fl->nuser++;
    return 0;
}

void sf_flows_addfile(const char ***files, size_t *n, const char *path)
{
    *files = sf_xrealloc(*files, (*n + 1) * sizeof **files);
    (*files)[(*n)++] = path;
}

struct sf_flows *sf_flows_with(const char *cmd, const char *const *files, size_t n)
{
    struct sf_flows *fl = sf_flows_new();
    for (size_t i = 0; i < n; i++) {
        char err[PATH_MAX + 512];
        if (sf_flows_load(fl, files[i], err, sizeof err) < 0) {
            fprintf(stderr, "sftrace %s: %s\n", cmd, err);
            sf_flows_free(fl);
            return NULL;
        }
    }
    return fl;
}

int sf_flows_load(struct sf_flows *fl, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                         line[n - 1] == '\t'))
            line[--n] = 0;
        char *s = line + strspn(line, " \t");
        if (lineno == 1) {
            if (strcmp(s, SF_FLOWS_MAGIC)) {
                snprintf(err, errlen, "%s: line 1: not a flows file (it starts '%s')", path,
                         SF_FLOWS_MAGIC);
                rc = -1;
            }
            continue;
        }
        if (!*s || *s == '#')
            continue;
        char why[400];
        if (parse_rule(fl, s, why, sizeof why) < 0) {
            snprintf(err, errlen, "%s: line %d: %s", path, lineno, why);
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && lineno == 0) {
        snprintf(err, errlen, "%s: empty (a flows file starts '%s')", path, SF_FLOWS_MAGIC);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---- the keys file for the runtime -------------------------------------- */

/* The crates the rules name appear as plain text in mangled names (legacy
 * `_ZN10rayon_core3job...`, v0 `_R...10rayon_core...`): only symbols
 * containing one are demangled, so a keys file costs little at start-up. */
static const char *const rule_crates[] = {"rayon_core", "crossbeam_deque", "tokio"};

struct keyscan {
    struct sf_flows *fl;
    const struct sf_xraymap *m;
    uint64_t *sorted; /* the map's functions, ascending */
    uint64_t *sel;    /* address << 8 | register */
    size_t nsel;
};

static int is_instrumented(const struct keyscan *ks, uint64_t a)
{
    size_t lo = 0, hi = ks->m->nfuncs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ks->sorted[mid] < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ks->m->nfuncs && ks->sorted[lo] == a;
}

static void keyscan_sym(void *ctx, const GElf_Sym *sym, const char *name, int rank)
{
    (void)rank;
    struct keyscan *ks = ctx;
    size_t c = 0;
    while (c < sizeof rule_crates / sizeof rule_crates[0] && !strstr(name, rule_crates[c]))
        c++;
    /* the user's rules may name any crate: then every symbol is demangled */
    if ((c == sizeof rule_crates / sizeof rule_crates[0] && !ks->fl->nuser) ||
        !is_instrumented(ks, sym->st_value))
        return;
    char *d = sf_demangle(name);
    int rule = d ? sf_flows_match(ks->fl, d) : -1;
    free(d);
    if (rule >= 0)
        ks->sel[ks->nsel++] = sym->st_value << 16 | (uint64_t)rule << 8 | ks->fl->rules[rule].reg;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int sf_flows_write_keys(struct sf_flows *fl, const char *exe, const char *out, char *err,
                        size_t errlen)
{
    struct sf_xraymap m;
    int r = sf_xraymap_read_file(exe, &m, err, errlen);
    if (r == SF_XRAYMAP_NONE)
        return 0;
    if (r != 0)
        return -1;
    int fd = open(exe, O_RDONLY | O_CLOEXEC);
    Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
    const void *bid = NULL;
    ssize_t bidlen = elf ? dwelf_elf_gnu_build_id(elf, &bid) : -1;
    uint8_t idbuf[64];
    if (bidlen > 0 && bidlen <= (ssize_t)sizeof idbuf)
        memcpy(idbuf, bid, (size_t)bidlen);
    else
        bidlen = 0; /* the runtime binds a keys file to the build-id */
    struct keyscan ks = {.fl = fl, .m = &m};
    if (bidlen && m.nfuncs) {
        ks.sorted = sf_xcalloc(m.nfuncs, sizeof *ks.sorted);
        memcpy(ks.sorted, m.funcs, m.nfuncs * sizeof *ks.sorted);
        qsort(ks.sorted, m.nfuncs, sizeof *ks.sorted, cmp_u64);
        /* every symbol of an address may match: at most 4 per function */
        ks.sel = sf_xcalloc(4 * m.nfuncs, sizeof *ks.sel);
        sf_elf_func_syms(elf, 0, keyscan_sym, &ks);
    }
    if (elf)
        elf_end(elf);
    if (fd >= 0)
        close(fd);
    int n = 0;
    if (ks.nsel) {
        qsort(ks.sel, ks.nsel, sizeof *ks.sel, cmp_u64);
        FILE *f = fopen(out, "w");
        if (!f) {
            snprintf(err, errlen, "%s: %s", out, strerror(errno));
            n = -1;
        } else {
            fprintf(f, "sftrace-filter 1\n# flows: functions whose key register is recorded\n");
            fprintf(f, "object %s\nbuild-id ", exe);
            for (ssize_t i = 0; i < bidlen; i++)
                fprintf(f, "%02x", idbuf[i]);
            fprintf(f, "\nmode keys\n");
            uint64_t prev = UINT64_MAX;
            for (size_t i = 0; i < ks.nsel; i++) {
                uint64_t a = ks.sel[i] >> 16;
                const struct sf_flow_rule *r = &fl->rules[(ks.sel[i] >> 8) & 0xff];
                if (a == prev)
                    continue;
                prev = a;
                /* the role letters let descendants mode follow the job */
                fprintf(f, "f 0x%llx k%c%c%s%s -\n", (unsigned long long)a,
                        r->reg == SF_KEY_RET ? 'r' : (char)('0' + r->reg), "pcx"[r->role],
                        r -> domain == SF_FLOW_TASK ? "t" : "", r->pair ? "+" : "");
                n++;
            }
            if (fclose(f) != 0) {
                snprintf(err, errlen, "%s: %s", out, strerror(errno));
                n = -1;
            }
        }
    }
    free(ks.sorted);
    free(ks.sel);
    sf_xraymap_free(&m);
    return n;
}

/* ---- the prepass ------------------------------------------------------------ */

int sf_flows_is_key(const struct sf_event *ev)
{
    return ev->kind == SF_KIND_EXT &&
           (ev->sub == SF_EXT_KEY || ev->sub == SF_EXT_ARGS || ev->sub == SF_EXT_RET);
}

/* The keys a rule wants from ext record ev (1, or 2 for a pair rule); 0
 * if ev does not have them. */
static int key_of(const struct sf_flow_rule *r, const struct sf_event *ev, uint64_t key[2])
{
    unsigned want = r->pair ? 2 : 1;
    if (ev->sub == SF_EXT_KEY && ev->arg == r->reg && ev->nwords >= want) {
        key[0] = ev->v[0];
        key[1] = ev->v[1];
    } else if (ev->sub == SF_EXT_ARGS && r->reg < SF_KEY_RET && r->reg + want <= ev->arg &&
               r->reg + want <= 6) {
        key[0] = ev->v[r->reg];
        key[1] = want == 2 ? ev->v[r->reg + 1] : 0;
    } else if (ev->sub == SF_EXT_RET && r->reg == SF_KEY_RET && want == 1 && ev->nwords >= 1) {
        key[0] = ev->v[0]; /* the slow path's RET has rax only */
    } else {
        return 0;
    }
    return (int)want;
}

/* A string owned by fl. */
static const char *intern(struct sf_flows *fl, const char *str)
{
    fl->strs = sf_xrealloc(fl->strs, (fl->nstrs + 1) * sizeof *fl->strs);
    return fl->strs[fl->nstrs++] = sf_xstrdup(str);
}

/* The future's type in `tokio::runtime::task::raw::poll::<T, S>`: T. */
static const char *future_type(struct sf_flows *fl, const char *name)
{
    const char *lt = strstr(name, "::<");
    if (!lt)
        return "tokio task";
    const char *p = lt + 3, *q = p;
    int depth = 0;
    for (; *q; q++) { /* up to the top-level comma or the closing '>' */
        if (*q == '<' || *q == '(' || *q == '[')
            depth++;
        else if ((*q == '>' || *q == ')' || *q == ']') && depth-- == 0)
            break;
        else if (*q == ',' && depth == 0)
            break;
    }
    char *s = sf_xrealloc(NULL, (size_t)(q - p) + 1);
    memcpy(s, p, (size_t)(q - p));
    s[q - p] = 0;
    fl->strs = sf_xrealloc(fl->strs, (fl->nstrs + 1) * sizeof *fl->strs);
    fl->strs[fl->nstrs++] = s;
    return s;
}

static int rule_for(struct sf_flows *fl, uint32_t g)
{
    if (g >= fl->nrule_of) {
        size_t n = fl->nrule_of ? fl->nrule_of : 1024;
        while (n <= g)
            n *= 2;
        fl->rule_of = sf_xrealloc(fl->rule_of, n * sizeof *fl->rule_of);
        memset(fl->rule_of + fl->nrule_of, 0, (n - fl->nrule_of) * sizeof *fl->rule_of);
        fl->tname_of = sf_xrealloc(fl->tname_of, n * sizeof *fl->tname_of);
        memset(fl->tname_of + fl->nrule_of, 0, (n - fl->nrule_of) * sizeof *fl->tname_of);
        fl->nrule_of = n;
    }
    if (fl->rule_of[g] == 0) {
        const char *name = sf_calls_func(fl->eng, g)->name;
        int r = sf_flows_match(fl, name);
        fl->rule_of[g] = r < 0 ? -1 : r + 1;
        if (r >= 0 && fl->rules[r].domain == SF_FLOW_TASK && fl->rules[r].role == SF_FLOW_CONSUMER)
            fl->tname_of[g] = r < (int)sf_flow_nbuiltin ? future_type(fl, name) : intern(fl, name);
    }
    return fl->rule_of[g] - 1;
}

/* Per thread during the prepass: the key records whose calls are open. */
struct kthr {
    uint64_t *call; /* call ids ... */
    size_t *rec;    /* ... and their records */
    size_t n, cap;
};

static void add_rec(struct sf_flows *fl, struct sf_cthread *t, const struct sf_event *ev,
                    uint64_t ns, int r, uint64_t key);

static void cb_ext(void *ctx, struct sf_cthread *t, const struct sf_event *ev, uint64_t ns)
{
    struct sf_flows *fl = ctx;
    if (!sf_flows_is_key(ev) || ev->fid == SF_FID_NONE || !t->depth)
        return;
    uint32_t g = sf_calls_lookup(fl->eng, t->img, ev->fid);
    int r = rule_for(fl, g);
    uint64_t keys[2];
    int nkeys = r < 0 ? 0 : key_of(&fl->rules[r], ev, keys);
    for (int i = 0; i < nkeys; i++) {
        add_rec(fl, t, ev, ns, r, keys[i]);
        fl->k[fl->nk - 1].tname = fl->tname_of[g];
    }
}

static const char *fname(struct sf_flows *fl, uint32_t g)
{
    SF_GROW_ZERO(fl->fname_of, g, fl->nfname, 1024);
    if (!fl->fname_of[g])
        fl->fname_of[g] = sf_xstrdup(sf_calls_func(fl->eng, g)->name);
    return fl->fname_of[g];
}

/* The calling context of a producer record on t (1 + its index). own: the
 * stack's top is the producer's call (a key argument), left out. */
static uint32_t capture(struct sf_flows *fl, struct sf_cthread *t, int own)
{
    SF_GROW_FROM(fl->ctxs, fl->nctxs, fl->capctxs, 256);
    struct kctx *c = &fl->ctxs[fl->nctxs];
    memset(c, 0, sizeof *c);
    uint32_t top = t->depth - (own && t->depth ? 1 : 0);
    c->names = sf_xrealloc(NULL, (top + 1) * sizeof *c->names);
    uint32_t *pos = sf_xrealloc(NULL, (top + 1) * sizeof *pos); /* frame -> position */
    for (uint32_t i = 0; i < top; i++) {
        pos[i] = c->n;
        if (t->stack[i].kept)
            c->names[c->n++] = fname(fl, t->stack[i].func);
    }
    struct kthr *kt = t->user;
    for (size_t j = 0; kt && j < kt->n; j++) {
        const struct krec *o = &fl->k[kt->rec[j]];
        if (o->role != SF_FLOW_CONSUMER)
            continue;
        for (uint32_t i = 0; i < top; i++)
            if (t->stack[i].id == kt->call[j] && t->stack[i].kept) {
                c->cpos = sf_xrealloc(c->cpos, (c->nc + 1) * sizeof *c->cpos);
                c->corder = sf_xrealloc(c->corder, (c->nc + 1) * sizeof *c->corder);
                c->cpos[c->nc] = pos[i];
                c->corder[c->nc++] = o->order;
                break;
            }
    }
    free(pos);
    return (uint32_t)++fl->nctxs;
}

static void add_rec(struct sf_flows *fl, struct sf_cthread *t, const struct sf_event *ev,
                    uint64_t ns, int r, uint64_t key)
{
    if (fl->nk == fl->capk) {
        fl->capk = fl->capk ? 2 * fl->capk : 1024;
        fl->k = sf_xrealloc(fl->k, fl->capk * sizeof *fl->k);
    }
    struct krec *k = &fl->k[fl->nk];
    *k = (struct krec){.ns = ns,
                       .end_ns = UINT64_MAX,
                       .key = key,
                       .pid = t->pid,
                       .tid = t->tid,
                       .fid = ev->fid,
                       .offset = ev->offset,
                       .order = (uint32_t)fl->nk,
                       .domain = fl->rules[r].domain,
                       .role = fl->rules[r].role};
    /* an argument's record follows the begin of its call (the stack top);
     * remember it to learn when the call ends. A return value's call has
     * ended already. */
    if (fl->rules[r].reg != SF_KEY_RET) {
        struct kthr *kt = t->user;
        if (!kt) {
            kt = t->user = sf_xcalloc(1, sizeof *kt);
            fl->kts = sf_xrealloc(fl->kts, (fl->nkts + 1) * sizeof *fl->kts);
            fl->kts[fl->nkts++] = kt;
        }
        if (kt->n == kt->cap) {
            kt->cap = kt->cap ? 2 * kt->cap : 16;
            kt->call = sf_xrealloc(kt->call, kt->cap * sizeof *kt->call);
            kt->rec = sf_xrealloc(kt->rec, kt->cap * sizeof *kt->rec);
        }
    }
    if (fl->follow && k->role == SF_FLOW_PRODUCER) {
        const struct krec *prev = fl->nk ? &fl->k[fl->nk - 1] : NULL;
        k->ctx = prev && prev->offset == k->offset && prev->ctx
                     ? prev->ctx /* the second key of a pair rule */
                     : capture(fl, t, fl->rules[r].reg != SF_KEY_RET);
    }
    if (fl->rules[r].reg != SF_KEY_RET) {
        struct kthr *kt = t->user;
        kt->call[kt->n] = t->stack[t->depth - 1].id;
        kt->rec[kt->n++] = fl->nk;
    } else {
        k->end_ns = ns;
    }
    fl->nk++;
}

static void cb_end(void *ctx, struct sf_cthread *t, const struct sf_call *c)
{
    struct sf_flows *fl = ctx;
    struct kthr *kt = t->user;
    while (kt && kt->n && kt->call[kt->n - 1] == c->id) /* a pair rule made two */
        fl->k[kt->rec[--kt->n]].end_ns = c->end_ns;
}

static void cb_thread_exit(void *ctx, struct sf_cthread *t, uint64_t ns)
{
    (void)ctx;
    (void)ns;
    struct kthr *kt = t->user;
    if (kt)
        kt->n = 0; /* a tid seen again is a new thread */
    t->user = NULL;
}

static void cb_warning(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

static int by_time(const void *a, const void *b)
{
    const struct krec *x = a, *y = b;
    if (x->ns != y->ns)
        return x->ns < y->ns ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

/* --follow-jobs: the context of every flow's consumer call. A producer's
 * flow continues its thread's innermost open consumer call that is itself a
 * flow's end (a job made inside a job another thread made), else it starts
 * at the thread's outermost call; a tokio poll's flow to the next poll
 * continues the same context as the flow into it (every poll of a task
 * hangs where it was spawned). */
static void make_grafts(struct sf_flows *fl, uint64_t next_id)
{
    fl->ngrafts = next_id;
    fl->grafts = sf_xcalloc(next_id, sizeof *fl->grafts);
    uint32_t *at = sf_xrealloc(NULL, (fl->nk + 1) * sizeof *at); /* scan order -> index */
    for (size_t i = 0; i < fl->nk; i++)
        at[fl->k[i].order] = (uint32_t)i;
    for (size_t i = 0; i < fl->nk; i++) {
        const struct krec *k = &fl->k[i];
        if (!k->out)
            continue;
        struct graft *g = &fl->grafts[k->out];
        g->set = 1;
        if (k->role == SF_FLOW_CONSUMER) { /* poll -> next poll */
            g->alias = k->in;
            g->set = k->in != 0;
            continue;
        }
        if (!k->ctx) {
            g->set = 0;
            continue;
        }
        const struct kctx *c = &fl->ctxs[k->ctx - 1];
        uint32_t from = 0;
        for (uint32_t j = c->nc; j-- > 0;) {
            const struct krec *o = &fl->k[at[c->corder[j]]];
            if (o->in && o->in < k->out) {
                g->parent = o->in;
                from = c->cpos[j];
                break;
            }
        }
        g->names = c->names + from;
        g->n = c->n - from;
    }
    free(at);
}

int sf_flows_graft(const struct sf_flows *fl, uint64_t flow, uint64_t *parent,
                   const char *const **names, size_t *n)
{
    for (int hops = 0; fl && flow && flow < fl->ngrafts && hops < 1 << 20; hops++) {
        const struct graft *g = &fl->grafts[flow];
        if (!g->set)
            return 0;
        if (g->alias) {
            flow = g->alias;
            continue;
        }
        *parent = g->parent;
        *names = g->names;
        *n = g->n;
        return 1;
    }
    return 0;
}

/* Pair the records (sorted by time) and index those with endpoints. */
static void pair(struct sf_flows *fl)
{
    if (!fl->nk)
        return;
    qsort(fl->k, fl->nk, sizeof *fl->k, by_time);
    struct sf_map pend = {0}; /* (pid, domain, key) -> index + 1 */
    uint64_t next_id = 1;
    for (size_t i = 0; i < fl->nk; i++) {
        struct krec *k = &fl->k[i];
        uint64_t h = mix(mix(mix(1, k->pid), k->domain), k->key);
        uint64_t *slot = sf_map_get(&pend, h, 1);
        struct krec *p = *slot ? &fl->k[*slot - 1] : NULL;
        if (p && (p->pid != k->pid || p->domain != k->domain || p->key != k->key))
            p = NULL; /* a hash collision: treat as no pending record */
        if (k->role == SF_FLOW_PRODUCER) {
            /* a task made known twice on its thread before any poll (debug
             * builds: RawTask::new returns inside OwnedTasks::bind): one
             * task; the first record, the innermost, stays its creation */
            if (p && k->domain == SF_FLOW_TASK && p->role == SF_FLOW_PRODUCER && p->tid == k->tid)
                continue;
            if (k->domain == SF_FLOW_TASK) {
                fl->tasks++;
                if (fl->ntk == fl->captk) {
                    fl->captk = fl->captk ? 2 * fl->captk : 64;
                    fl->tk = sf_xrealloc(fl->tk, fl->captk * sizeof *fl->tk);
                }
                fl->tk[fl->ntk] = (struct task){.pid = k->pid};
                k->task = (uint32_t)++fl->ntk;
            }
            /* nested in an open producer of the same job: keep the outer */
            if (p && p->role == SF_FLOW_PRODUCER && p->tid == k->tid && p->end_ns > k->ns)
                continue;
            *slot = i + 1;
            continue;
        }
        if (k->role == SF_FLOW_RETIRE) {
            *slot = 0;
            continue;
        }
        /* a consumer */
        if (!p && k->domain == SF_FLOW_TASK) { /* its creation was not seen */
            if (fl->ntk == fl->captk) {
                fl->captk = fl->captk ? 2 * fl->captk : 64;
                fl->tk = sf_xrealloc(fl->tk, fl->captk * sizeof *fl->tk);
            }
            fl->tk[fl->ntk] = (struct task){.pid = k->pid};
            k->task = (uint32_t)++fl->ntk;
            struct task *tk = &fl->tk[k->task - 1];
            tk->cap = 8;
            tk->polls = sf_xrealloc(NULL, tk->cap * sizeof *tk->polls);
            tk->polls[0][0] = k->ns;
            tk->polls[0][1] = k->end_ns == UINT64_MAX ? k->ns : k->end_ns;
            tk->npolls = 1;
            tk->name = k->tname;
            *slot = i + 1;
            continue;
        }
        if (p) {
            int cross = p->tid != k->tid || p->pid != k->pid;
            if (k->domain == SF_FLOW_TASK || cross) {
                p->out = next_id;
                k->in = next_id++;
                fl->nflows[k->domain]++;
            }
        }
        if (k->domain == SF_FLOW_TASK && p && p->task) {
            struct task *tk = &fl->tk[p->task - 1];
            k->task = p->task;
            if (tk->npolls == tk->cap) {
                tk->cap = tk->cap ? 2 * tk->cap : 8;
                tk->polls = sf_xrealloc(tk->polls, tk->cap * sizeof *tk->polls);
            }
            tk->polls[tk->npolls][0] = k->ns;
            tk->polls[tk->npolls][1] = k->end_ns == UINT64_MAX ? k->ns : k->end_ns;
            tk->npolls++;
            if (!tk->name)
                tk->name = k->tname;
        }
        if (k->domain == SF_FLOW_TASK && p)
            *slot = i + 1; /* the next poll continues from this one */
        else
            *slot = 0; /* a rayon job runs once; a poll of an unknown task starts nothing */
    }
    sf_map_free(&pend);
    for (size_t i = 0; i < fl->nk; i++) {
        struct krec *k = &fl->k[i];
        if (!k->in && !k->out)
            continue;
        *sf_map_get(&fl->at, k->offset, 1) = i + 1;
    }
    if (fl->follow)
        make_grafts(fl, next_id);
}

static int skip_events(void *ctx, const struct sf_chunkv *c)
{
    (void)ctx;
    (void)c;
    return 1;
}

/* Does any OBJECT chunk say its functions record keys (SF_OBJ_KEYS)? Reads
 * the chunks but decodes no records: cheap next to the prepass. */
static int log_has_keys(const char *path)
{
    char err[256];
    struct sf_log *log = sf_log_open(path, err, sizeof err);
    if (!log)
        return 0;
    sf_log_set_skip(log, skip_events, NULL);
    sf_log_set_warn(log, cb_warning, NULL); /* damage: the main pass's to report */
    struct sf_chunkv c;
    int keys = 0;
    while (!keys && sf_log_next(log, &c) > 0)
        keys = c.h->type == SF_CHUNK_OBJECT && (c.h->flags & SF_OBJ_KEYS);
    sf_log_close(log);
    return keys;
}

int sf_flows_scan(struct sf_flows *fl, const char *path, const struct sf_select *sel, char *err,
                  size_t errlen)
{
    if (!log_has_keys(path))
        return 0; /* recorded with --no-flows, or nothing to pair */
    struct sf_log *log = sf_log_open(path, err, errlen);
    if (!log)
        return -1;
    sf_log_set_warn(log, cb_warning, NULL); /* damage: the main pass's to report */
    struct sf_syms *syms = sf_syms_new();
    sf_syms_set_quiet(syms, 1);
    sf_syms_set_lines(syms, 0);
    /* symbolizer warnings are the main pass's to give */
    struct sf_calls_ops ops = {
        .ext = cb_ext, .end = cb_end, .thread_exit = cb_thread_exit, .warning = cb_warning};
    fl->eng = sf_calls_new(log, syms, sel, &ops, fl);
    int rc = sf_calls_run(fl->eng);
    if (rc < 0)
        snprintf(err, errlen, "%s", sf_calls_error(fl->eng));
    sf_calls_free(fl->eng);
    fl->eng = NULL;
    for (size_t i = 0; i < fl->nkts; i++) {
        free(fl->kts[i]->call);
        free(fl->kts[i]->rec);
        free(fl->kts[i]);
    }
    free(fl->kts);
    fl->kts = NULL;
    fl->nkts = 0;
    sf_syms_free(syms);
    sf_log_close(log);
    free(fl->rule_of);
    fl->rule_of = NULL;
    fl->nrule_of = 0;
    if (rc == 0)
        pair(fl);
    return rc;
}

int sf_flows_at(const struct sf_flows *fl, const struct sf_event *ev, struct sf_flow_ends *out)
{
    if (!fl || !fl->at.n || !sf_flows_is_key(ev))
        return 0;
    uint64_t *v = sf_map_get((struct sf_map *)&fl->at, ev->offset, 0); /* does not change it */
    if (!v || !*v)
        return 0;
    const struct krec *k = &fl->k[*v - 1];
    out->in = k->in;
    out->out = k->out;
    out->domain = k->domain;
    return 1;
}

void sf_flows_stats(const struct sf_flows *fl, struct sf_flows_stats *st)
{
    memset(st, 0, sizeof *st);
    st->keys = fl->nk;
    memcpy(st->flows, fl->nflows, sizeof st->flows);
    st->tasks = fl->tasks;
}

uint64_t sf_flows_count(const struct sf_flows *fl)
{
    uint64_t n = 0;
    for (int d = 0; d < SF_FLOW_NDOMAINS; d++)
        n += fl->nflows[d];
    return n;
}

size_t sf_flows_ntasks(const struct sf_flows *fl)
{
    return fl ? fl->ntk : 0;
}

void sf_flows_task(const struct sf_flows *fl, size_t i, struct sf_flow_task *out)
{
    const struct task *t = &fl->tk[i];
    out->pid = t->pid;
    out->name = t->name ? t->name : "tokio task";
    out->npolls = t->npolls;
    out->polls = (const uint64_t(*)[2])t->polls;
}
