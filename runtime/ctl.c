/*
 * ctl.c - live recording control: start and stop recording while the
 * program runs (sftrace record --paused, SIGUSR1, `sftrace ctl PID
 * start|stop`), and the MARK chunks that tell the tools when.
 *
 * Stopped means the sleds are unpatched again, so a stopped program runs at
 * full speed: nothing is added to the hot path of normal recording. While
 * control is on (SFTRACE_CONTROL, or SFTRACE_PAUSED), patch.c reports every
 * sled it patches here (sf_ctl_obj_*); starting and stopping rewrite the
 * first instruction of each of them (sf_arch_sled_toggle), object by object
 * with its text made writable, under patch.c's lock, each inside
 * dl_iterate_phdr's callback for it (walk_objs), so an object dlclose'd
 * meanwhile is forgotten and never touched (neither record nor attach
 * interposes dlclose).
 *
 * Safe with threads running: a toggle changes one naturally aligned
 * instruction head per sled in one store (x86_64: two bytes, `mov r10d` or
 * XRay's jump; aarch64: one branch for another, which the architecture
 * allows to be modified while other cores run it); the rest of a patched
 * sled never changes after it was first patched, so a thread running
 * through a sled as it is toggled executes either the old or the new
 * instruction and never a mix. A thread already inside the trampoline when
 * recording stops still stores its record: the STOP mark is written after
 * every such record the helper can see (a flush), and the tools drop the
 * few that come later (docs/log-format.md, MARK).
 *
 * Order in the log: START is written (and the helper has appended it)
 * before the first sled is turned on, so every record of the window comes
 * after it; STOP is written after the sleds are off and a flush, so every
 * record of the window comes before it.
 *
 * Triggers: `trace-on 0xADDR NAME` and `trace-off 0xADDR NAME` lines in
 * filter files (docs/filter-format.md) name functions whose entry starts
 * recording (the entry itself is recorded) and whose return stops it (the
 * exit is recorded). Their sleds go to their own trampoline (T_TRIG, always
 * through C) and stay patched while recording is stopped; only they pay
 * for the check. A trace-on line makes the process start stopped.
 *
 * Requests come from a signal handler (SIGUSR1; `sftrace ctl` sends it with
 * sigqueue and a value saying start or stop), so everything here is
 * async-signal-safe in practice: no malloc, the patch lock only tried.
 */
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

static int lock_patch(void);
static int ctl_on;            /* control enabled: sleds are tracked */
static int control_sig;       /* record --paused / --control: SIGUSR1 and ctl are ours */
static _Atomic int live = 1;  /* the sleds are on */
static _Atomic uint32_t busy; /* a toggle is running */
static uint32_t mark_seq;

struct ctl_sled {
    uint8_t *sled;
    uint8_t kind;
    uint8_t keep;               /* a trigger's: stays on while stopped */
    uint8_t orig[SF_SLED_SIZE]; /* as it was before patching (detach restores it) */
};
struct ctl_obj {
    uintptr_t plo;
    size_t plen;
    int rx;
    struct ctl_sled *s; /* sf_map'd, cap entries; NULL: a free entry */
    uint32_t n, cap;
    int tfile; /* the trigger file for its build-id, -1 if none */
    /* which loaded object it is (dl_iterate_phdr's bias and phdr) */
    uintptr_t bias;
    const void *phdr;
    int other_ns; /* in a namespace dlmopen made: listed by sf_each_other_namespace */
    int seen;     /* walk_objs: still loaded */
};

/* Trigger lines, per filter file (matched to objects by build-id); and the
 * function ids of the patched trigger functions. */
#define MAX_TFILES 64
#define MAX_TRIG 256
static struct {
    uint8_t bid[64];
    size_t bidlen;
    struct sf_trigger *t;
    size_t n;
} tfiles[MAX_TFILES];
static int ntfiles;
static struct {
    uint32_t fid;
    uint8_t on, off; /* trace-on at entry, trace-off at exit */
    uint8_t snap;    /* snapshot-on: a snapshot at entry */
    uint8_t rec;     /* its own events are recorded */
    uint64_t slow;   /* snapshot-slower: ns, 0 if not */
} trig[MAX_TRIG];
static _Atomic uint32_t ntrig;
#define CTL_MAX_OBJS 4096
static struct ctl_obj objs[CTL_MAX_OBJS];
static uint32_t nobjs;

int sf_ctl_enabled(void)
{
    return ctl_on;
}

int sf_ctl_live(void)
{
    return atomic_load(&live);
}

/* ---- what patch.c tells us (under its lock) ------------------------------ */

int sf_ctl_triggers(void)
{
    return ntfiles > 0;
}

static void drop_obj(struct ctl_obj *o)
{
    if (o->s)
        sf_unmap(o->s, o->cap * sizeof *o->s);
    memset(o, 0, sizeof *o);
}

struct ctl_obj *sf_ctl_obj_begin(uintptr_t plo, size_t plen, int rx, size_t max_sleds,
                                 const uint8_t *bid, size_t bidlen, uintptr_t bias,
                                 const void *phdr, int other_ns)
{
    if (!ctl_on || !max_sleds)
        return NULL;
    struct ctl_obj *o = NULL;
    for (uint32_t k = 0; k < nobjs; k++) {
        if (objs[k].s && objs[k].bias == bias && objs[k].phdr == phdr)
            drop_obj(&objs[k]); /* closed and loaded again at the same place: patched anew */
        if (!o && !objs[k].s)
            o = &objs[k];
    }
    if (!o && nobjs < CTL_MAX_OBJS)
        o = &objs[nobjs++];
    if (!o)
        return NULL;
    o->s = sf_map(max_sleds * sizeof *o->s);
    if (!o->s)
        return NULL;
    o->plo = plo;
    o->plen = plen;
    o->rx = rx;
    o->n = 0;
    o->cap = (uint32_t)max_sleds;
    o->tfile = -1;
    o->bias = bias;
    o->phdr = phdr;
    o->other_ns = other_ns;
    for (int i = 0; i < ntfiles && bidlen; i++)
        if (tfiles[i].bidlen == bidlen && !memcmp(tfiles[i].bid, bid, bidlen))
            o->tfile = i;
    return o;
}

/* A sled of the function at ELF address elf_addr (function id fid): is it
 * the entry of a trace-on function or an exit (or tail call) of a
 * trace-off one? record: the function is traced (a filter selects it, or
 * none applies); a trigger that is not only triggers. */
int sf_ctl_obj_trigger(struct ctl_obj *o, uint64_t elf_addr, int kind, uint32_t fid, int record)
{
    if (!o || o->tfile < 0)
        return 0;
    int on = 0, off = 0, snap = 0;
    uint64_t slow = 0;
    for (size_t i = 0; i < tfiles[o->tfile].n; i++) {
        const struct sf_trigger *t = &tfiles[o->tfile].t[i];
        if (t->addr != elf_addr)
            continue;
        on |= t->kind == SF_TRIG_ON;
        off |= t->kind == SF_TRIG_OFF;
        snap |= t->kind == SF_TRIG_SNAP && sf_ring_on();
        if (t->kind == SF_TRIG_SLOW && sf_ring_on())
            slow = t->ns ? t->ns : 1;
    }
    int is = kind == XRAY_ENTRY ? on || snap || slow : off || slow;
    if (!is)
        return 0;
    uint32_t n = atomic_load(&ntrig), k;
    for (k = 0; k < n && trig[k].fid != fid; k++)
        ;
    if (k == n) {
        if (n == MAX_TRIG)
            return 0;
        trig[n].fid = fid;
        trig[n].on = (uint8_t)on;
        trig[n].off = (uint8_t)off;
        trig[n].snap = (uint8_t)snap;
        trig[n].slow = slow;
        trig[n].rec = (uint8_t)record;
        atomic_store(&ntrig, n + 1); /* published before the sled is patched */
    }
    return 1;
}

void sf_ctl_obj_sled(struct ctl_obj *o, uint8_t *sled, int kind, int keep)
{
    if (o && o->n < o->cap) {
        struct ctl_sled *s = &o->s[o->n++];
        s->sled = sled;
        s->kind = (uint8_t)kind;
        s->keep = (uint8_t)keep;
        memcpy(s->orig, sled, SF_SLED_SIZE);
    }
}

/* The object's sleds are patched and its text is still writable: a
 * stopped process gets them turned off at once (a dlopen while stopped;
 * at start-up with --paused, before the program's main runs). */
void sf_ctl_obj_end(struct ctl_obj *o)
{
    if (!o || atomic_load(&live))
        return;
    for (uint32_t i = 0; i < o->n; i++)
        if (!o->s[i].keep)
            sf_arch_sled_toggle(o->s[i].sled, o->s[i].kind, 0);
}

/*
 * The tracked objects that are still loaded, each given to fn while the
 * dynamic linker cannot unload it: inside dl_iterate_phdr's callback, which
 * holds the lock dlclose needs to take an object off the list before it
 * unmaps it. An object no longer listed (dlclose'd), or listed at the same
 * place but no longer patched by us (closed, and something loaded there
 * again), is forgotten without its memory being touched. The caller holds
 * patch.c's lock.
 */
struct walk {
    void (*fn)(struct ctl_obj *, int);
    int arg;
    int other_ns;  /* walking the other namespaces' lists */
    int ns_walked; /* sf_each_other_namespace's answer */
};

static int in_exec_segment(struct dl_phdr_info *info, const uint8_t *p)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && (uintptr_t)p >= lo &&
            (uintptr_t)p + SF_SLED_SIZE <= lo + ph->p_filesz)
            return 1;
    }
    return 0;
}

static int walk_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    const struct walk *w = data;
    for (uint32_t k = 0; k < nobjs; k++) {
        struct ctl_obj *o = &objs[k];
        if (!o->s || o->other_ns != w->other_ns || o->seen || o->bias != info->dlpi_addr ||
            o->phdr != info->dlpi_phdr)
            continue;
        if (o->n &&
            (!in_exec_segment(info, o->s[0].sled) || !in_exec_segment(info, o->s[o->n - 1].sled) ||
             !sf_arch_sled_ours(o->s[0].sled) || !sf_arch_sled_ours(o->s[o->n - 1].sled)))
            continue; /* not the object we patched */
        o->seen = 1;
        if (w->fn && o->n)
            w->fn(o, w->arg);
    }
    return 0;
}

/* dl_iterate_phdr's callback: at the first object (the list lock is held
 * from there on) every other namespace's objects (dlmopen), then the base
 * namespace's. */
static int walk_list_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct walk *w = data;
    if (w->ns_walked == -2) {
        w->other_ns = 1;
        w->ns_walked = sf_each_other_namespace(walk_cb, w);
        w->other_ns = 0;
    }
    return walk_cb(info, size, data);
}

static void walk_objs(void (*fn)(struct ctl_obj *, int), int arg)
{
    for (uint32_t k = 0; k < nobjs; k++)
        objs[k].seen = 0;
    struct walk w = {fn, arg, 0, -2};
    dl_iterate_phdr(walk_list_cb, &w);
    for (uint32_t k = 0; k < nobjs; k++) {
        struct ctl_obj *o = &objs[k];
        if (!o->s || o->seen)
            continue;
        if (o->other_ns && w.ns_walked < 0) {
            if (fn && o->n)
                fn(o, arg); /* the namespaces cannot be listed: not checked */
        } else {
            drop_obj(o); /* unloaded */
        }
    }
}

/* Forget the objects that were unloaded (attach.c's watcher). */
void sf_ctl_prune(void)
{
    if (!ctl_on || lock_patch() != 0)
        return;
    sf_ctl_prune_held();
    sf_patch_unlock();
}

void sf_ctl_prune_held(void)
{
    if (ctl_on)
        walk_objs(NULL, 0);
}

/* The object's sleds, first instructions on or off (on: 0 off, 1 on, 2
 * off including the triggers'), or (3) put back as they were. */
static void set_obj(struct ctl_obj *o, int how)
{
    if (mprotect((void *)o->plo, o->plen, PROT_READ | PROT_WRITE | PROT_EXEC))
        return;
    for (uint32_t i = 0; i < o->n; i++) {
        if (how == 3)
            sf_arch_sled_restore(o->s[i].sled, o->s[i].orig);
        else if (how == 2 || !o->s[i].keep)
            sf_arch_sled_toggle(o->s[i].sled, o->s[i].kind, how == 1);
    }
    mprotect((void *)o->plo, o->plen, o->rx);
    __builtin___clear_cache((char *)o->plo, (char *)o->plo + o->plen);
}

/* Every tracked sled on or off. The caller holds patch.c's lock. */
static void toggle_all(int on)
{
    walk_objs(set_obj, on);
}

/* Detach: every sled back to its bytes before patching. First instructions
 * off, a pause for threads in a sled to leave it (pause: other threads may
 * run; a forked child has none), then the rest. -1 (nothing done) if the
 * patch lock could not be had. The walk waits for the dynamic linker's
 * list lock (dl_iterate_phdr): a thread of the program that holds it long
 * (a callback of its own that blocks) holds the detach up as long. */
static int restore(int pause)
{
    if (lock_patch() != 0) {
        sf_ctl_note("the sleds could not be put back: another thread holds the patch lock "
                    "(patching an object) for more than 100 ms");
        return -1;
    }
    walk_objs(set_obj, 2);
    if (pause) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    walk_objs(set_obj, 3);
    for (uint32_t k = 0; k < nobjs; k++)
        drop_obj(&objs[k]);
    nobjs = 0; /* a new attach patches (and tracks) them afresh */
    atomic_store(&live, 1);
    sf_patch_unlock();
    return 0;
}

int sf_ctl_restore(void)
{
    return restore(1);
}

/* A child forked while attached: it runs as if never traced (attach.c). */
void sf_ctl_restore_in_child(void)
{
    restore(0);
}

/* ---- marks ------------------------------------------------------------------ */

void sf_mark_fill(struct sf_mark *m, uint32_t kind, uint32_t why, uint32_t arg, uint32_t seq,
                  uint64_t ts)
{
    memset(m, 0, sizeof *m);
    m->h.magic = SF_CHUNK_MAGIC;
    m->h.type = SF_CHUNK_MARK;
    m->h.size = sizeof *m;
    m->h.pid = (uint32_t)sf_g.pid;
    m->kind = kind;
    m->why = why;
    m->tsc = ts;
    m->mono_ns = sf_g.clock == SF_CLOCK_TSC ? sf_mono_ns() : ts;
    m->arg = arg;
    m->seq = seq;
}

static void write_mark(uint32_t kind, uint32_t why, uint32_t arg, uint64_t ts)
{
    struct sf_mark m;
    sf_mark_fill(&m, kind, why, arg, ++mark_seq, ts);
    sf_log_write(&m, sizeof m, NULL, 0);
}

/* attach.c: the start (before patching) and the stop (after restoring the
 * sleds) of an attached recording, as for any start and stop. -1 if the
 * helper did not take it. */
int sf_ctl_mark_attach(int start)
{
    if (start) {
        write_mark(SF_MARK_START, SF_WHY_ATTACH, 0, sf_now());
        return 0;
    }
    uint64_t ts = sf_now();
    if (sf_request(REQ_FLUSH, 0) != 0)
        return -1;
    struct sf_mark m;
    sf_mark_fill(&m, SF_MARK_STOP, SF_WHY_ATTACH, 0, ++mark_seq, ts);
    return sf_log_write(&m, sizeof m, NULL, 0);
}

/* ---- what went wrong ------------------------------------------------------ */

/* The last problem, in the process's memory, where `sftrace attach` reads
 * it after a call that failed (the program's stderr is not ours to write
 * when attached). */
SF_EXPORT char sftrace_why[512] __attribute__((section(".data")));

void sf_ctl_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sftrace_why, sizeof sftrace_why, fmt, ap);
    va_end(ap);
    if (!sf_g.attached)
        sf_msg("pid %d: %s", (int)sf_g.pid, sftrace_why);
}

const char *sf_req_name(uint32_t kind)
{
    switch (kind) {
    case REQ_CHUNK:
        return "CHUNK (append a chunk)";
    case REQ_FLUSH:
        return "FLUSH (write every thread's records)";
    case REQ_END:
        return "END (write the rest and END)";
    case REQ_SNAPSHOT:
        return "SNAPSHOT";
    case REQ_SHARER_END:
        return "SHARER_END (a vfork child's end)";
    }
    return "?";
}

/* ---- start and stop ------------------------------------------------------ */

/* Try the lock a while: another thread may be patching a dlopen'd object;
 * if this very thread holds it (a signal in the middle of its dlopen) it
 * cannot be had, and the request is refused. */
static int lock_patch(void)
{
    for (uint64_t t0 = sf_mono_ns(); sf_mono_ns() - t0 < 100000000ull;) {
        if (sf_patch_trylock() == 0)
            return 0;
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Start (on) or stop recording. 0 done (or already so), -1 refused. */
int sf_ctl_set(int on, uint32_t why, uint32_t arg)
{
    if (!ctl_on || !sf_g.enabled || getpid() != sf_g.pid)
        return -1;
    uint32_t z = 0;
    if (!atomic_compare_exchange_strong(&busy, &z, 1))
        return -1;
    int rc = 0;
    if (atomic_load(&live) == on) {
        /* nothing to do */
    } else if (lock_patch() != 0) {
        rc = -1;
    } else if (on) {
        write_mark(SF_MARK_START, why, arg, sf_now());
        atomic_store(&live, 1);
        toggle_all(1);
        sf_patch_unlock();
    } else {
        toggle_all(0);
        atomic_store(&live, 0);
        sf_patch_unlock();
        uint64_t ts = sf_now();
        sf_request(REQ_FLUSH, 0);
        write_mark(SF_MARK_STOP, why, arg, ts);
    }
    atomic_store(&busy, 0);
    return rc;
}

/* ---- triggers (the slow path of a T_TRIG sled, signals blocked) ---------- */

static int trig_of(uint32_t fid)
{
    uint32_t n = atomic_load(&ntrig);
    for (uint32_t k = 0; k < n; k++)
        if (trig[k].fid == fid)
            return (int)k;
    return -1;
}

int sf_ctl_trigger(uint32_t w1, int mode)
{
    int k = trig_of(sf_w1_fid(w1));
    if (k >= 0 && sf_w1_kind(w1) == SF_KIND_ENTRY && trig[k].on && !atomic_load(&live))
        sf_ctl_set(1, SF_WHY_TRIGGER, sf_w1_fid(w1)); /* START, then this entry */
    if (!atomic_load(&live) || (k >= 0 && !trig[k].rec))
        mode &= ~SF_SLOW_RECORD; /* stopped (a trace-off function returning), or not traced */
    return mode;
}

/* After the event was recorded: snapshots (they include it), then a stop. */
void sf_ctl_trigger_after(uint32_t w1)
{
    uint32_t fid = sf_w1_fid(w1);
    int k = trig_of(fid);
    if (k < 0)
        return;
    /* snapshot-slower: the calls of such functions open on this thread, in
     * its slot (a thread without one yet is not timed) */
    struct sf_slot *sl = sf_tls.slot;
    if (sf_w1_kind(w1) == SF_KIND_ENTRY) {
        if (trig[k].slow && sl && sl->trig_depth < SF_TRIG_DEPTH) {
            sl->trig_fid[sl->trig_depth] = fid;
            sl->trig_t0[sl->trig_depth++] = sf_mono_ns();
        }
        if (trig[k].snap && atomic_load(&live))
            sf_ring_request(SF_WHY_TRIGGER, fid);
        return;
    }
    if (trig[k].slow && sl && sl->trig_depth) {
        /* the innermost open call of it (calls left by unwinding drop off) */
        uint32_t d = sl->trig_depth;
        while (d && sl->trig_fid[d - 1] != fid)
            d--;
        if (d) {
            uint64_t dur = sf_mono_ns() - sl->trig_t0[d - 1];
            sl->trig_depth = d - 1;
            if (dur > trig[k].slow && atomic_load(&live))
                sf_ring_request(SF_WHY_SLOW, fid);
        }
    }
    if (trig[k].off && atomic_load(&live))
        sf_ctl_set(0, SF_WHY_TRIGGER, fid); /* this exit, then STOP */
}

/* Read the trigger lines of the filter files in list (SFTRACE_FILTER).
 * The files were checked by filter.c already. */
static void load_triggers(const char *list)
{
    char path[4096];
    while (list && *list && ntfiles < MAX_TFILES) {
        const char *colon = strchr(list, ':');
        size_t n = colon ? (size_t)(colon - list) : strlen(list);
        list += n + (colon ? 1 : 0);
        if (!n || n >= sizeof path)
            continue;
        memcpy(path, list - n - (colon ? 1 : 0), n);
        path[n] = 0;
        char *buf = sf_map(1 << 20);
        if (!buf)
            return;
        ssize_t len = sf_read_file(path, buf, (1 << 20) - 1);
        struct sf_filter_info info;
        char err[256];
        size_t nt;
        if (len > 0 && sf_filter_parse(buf, (size_t)len, &info, NULL, NULL, err, sizeof err) == 0 &&
            (nt = sf_filter_triggers(buf, (size_t)len, NULL, 0)) > 0) {
            tfiles[ntfiles].t = sf_alloc(nt * sizeof *tfiles[ntfiles].t);
            if (tfiles[ntfiles].t) {
                sf_filter_triggers(buf, (size_t)len, tfiles[ntfiles].t, nt);
                tfiles[ntfiles].n = nt;
                memcpy(tfiles[ntfiles].bid, info.build_id, sizeof tfiles[ntfiles].bid);
                tfiles[ntfiles].bidlen = info.build_id_len;
                ntfiles++;
            }
        }
        sf_unmap(buf, 1 << 20);
    }
}

/* SIGUSR1: a plain signal toggles; `sftrace ctl` queues one with the value
 * SF_CTL_START or SF_CTL_STOP. */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    int saved = errno;
    int on = !atomic_load(&live);
    uint32_t why = SF_WHY_SIGNAL;
    if (si && si->si_code == SI_QUEUE &&
        (si->si_value.sival_int == SF_CTL_START || si->si_value.sival_int == SF_CTL_STOP)) {
        on = si->si_value.sival_int == SF_CTL_START;
        why = SF_WHY_CTL;
    }
    if (sf_ctl_set(on, why, 0) != 0)
        sf_msg("pid %d: cannot %s recording now (patching in progress); try again", (int)sf_g.pid,
               on ? "start" : "stop");
    errno = saved;
}

/* A signal that reached the wrapper of a handler the program installed
 * (hooks.c): a program that takes SIGUSR1 (postgres: the postmaster and
 * every backend use it for their own requests) replaces our handler, but
 * what `sftrace ctl` queues, with its values, is still ours; the program's
 * own SIGUSR1s (kill, raise: no such value) go to its handler. 1 if handled
 * here. */
int sf_ctl_queued(int sig, siginfo_t *si)
{
    if (!si || si->si_code != SI_QUEUE || !sf_g.enabled)
        return 0;
    int v = si->si_value.sival_int;
    /* only `sftrace ctl` sends these values, and only to a process under
     * control (record --paused / --control: cmd/ctl.c checks) */
    if (sig == SF_CTL_SIGNAL && ctl_on && (v == SF_CTL_START || v == SF_CTL_STOP)) {
        on_signal(sig, si, NULL);
        return 1;
    }
    if (sig == SF_SNAP_SIGNAL && v == SF_CTL_SNAPSHOT)
        return sf_ring_queued(sig, si);
    return 0;
}

static int env_true(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* Install fn for sig with the real sigaction (the program's later
 * sigaction for it replaces ours: docs/design.md). */
void sf_ctl_take_signal(int sig, void (*fn)(int, siginfo_t *, void *))
{
    int (*real_sigaction)(int, const struct sigaction *, struct sigaction *) =
        (int (*)(int, const struct sigaction *, struct sigaction *))sf_real("sigaction");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (real_sigaction)
        real_sigaction(sig, &sa, NULL);
}

/* At start-up, before any object is patched. SIGUSR1 is taken only when
 * asked for (record --paused or --control), never for triggers alone. */
void sf_ctl_init(void)
{
    int paused = env_true("SFTRACE_PAUSED");
    load_triggers(getenv("SFTRACE_FILTER"));
    for (int i = 0; i < ntfiles; i++)
        for (size_t k = 0; k < tfiles[i].n; k++)
            paused |= tfiles[i].t[k].kind == SF_TRIG_ON; /* trace-on: nothing before it */
    int control = env_true("SFTRACE_PAUSED") || env_true("SFTRACE_CONTROL");
    ctl_on = paused || ntfiles || control || sf_g.attached;
    if (!ctl_on)
        return;
    atomic_store(&live, !paused);
    if (!control)
        return; /* triggers only: SIGUSR1 stays the program's */
    control_sig = 1;
    sf_ctl_take_signal(SF_CTL_SIGNAL, on_signal);
}

/* After the helper runs and the objects are patched: a paused start says
 * so in the log. */
void sf_ctl_started(void)
{
    if (ctl_on && !atomic_load(&live))
        write_mark(SF_MARK_STOP, SF_WHY_PAUSED, 0, sf_now());
}

/* In a forked child (hooks.c), its helper started or deferred. It is
 * stopped or recording as its parent was at the fork; a stopped child says
 * so as a paused start does, in a STOP mark of its own: `sftrace ctl` knows a
 * process's state from its marks, and took a child of a paused server (a
 * pre-fork worker, a postgres backend) that had none for a recording one
 * ("recording is on already"; its stop waited for a mark that never came).
 * Its parent's marks cannot tell: the parent may have started or stopped
 * since. This costs a stopped process's children their helper and PROCESS
 * chunk at the fork instead of at their first record. A toggle running in
 * another thread of the parent at the fork is not running in the child. */
void sf_ctl_after_fork(void)
{
    atomic_store(&busy, 0);
    if (ctl_on && control_sig && !sf_g.attached && !atomic_load(&live))
        write_mark(SF_MARK_STOP, SF_WHY_PAUSED, 0, sf_now());
}
