/*
 * patch.c - find instrumented objects, describe them in the log, and patch
 * their XRay sleds to call the trampoline.
 *
 * For every loaded object (dl_iterate_phdr) we read its section headers from
 * the file to locate `xray_instr_map` (the section is mapped, but only the
 * file says where), check that the file is the one in memory (GNU build-id),
 * number its functions, write an OBJECT chunk, and then patch. Each object
 * gets a stub within rel32 reach of its sleds that jumps to the trampoline in
 * this library (which is usually too far away for a direct call): either a
 * slot the object gave us through sftrace_setup, or a page we map nearby.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime.h"

#define MAX_OBJS 4096

struct xray_entry {
    int64_t address;
    int64_t function;
    uint8_t kind;
    uint8_t always_instrument;
    uint8_t version;
    uint8_t padding[13];
};

struct obj {
    uintptr_t bias;
    const void *phdr;    /* identity together with bias and the first sled */
    uint8_t *first_sled; /* still patched while this mapping lives */
    uint32_t fid_base, nfuncs;
    void *chunk; /* the OBJECT chunk, kept for forked children */
    size_t chunk_size;
    int skipped;  /* not instrumented, or could not be patched */
    int other_ns; /* in a namespace dlmopen made */
    int listed;   /* compact(): still loaded */
};

static struct obj objs[MAX_OBJS];
static int in_other_ns; /* sf_patch_namespace_of is scanning another namespace */
int sf_patch_early;     /* the objects are not relocated yet (attach.c) */
int sf_patch_deferred;  /* an object was left for a later pass (sf_patch_early) */
static uint32_t nobjs;
static uint32_t fid_next = 1; /* from 1: a record's second word is never zero */
static pthread_mutex_t patch_lock = PTHREAD_MUTEX_INITIALIZER;

struct stub_page {
    uint8_t *page;
};
static struct stub_page stubs[256];
static uint32_t nstubs;

uint32_t sf_patched_objects(void)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < nobjs; i++)
        n += !objs[i].skipped;
    return n;
}

/* ---- reading the ELF file ------------------------------------------------ */

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
    char *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Find section `want` in the file; 0 if found. */
static int find_section(int fd, const char *want, Elf64_Shdr *out)
{
    Elf64_Ehdr eh;
    if (pread_all(fd, &eh, sizeof eh, 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr))
        return -1;
    size_t shnum = eh.e_shnum;
    size_t shstrndx = eh.e_shstrndx;
    Elf64_Shdr sh0;
    if (eh.e_shoff == 0 || pread_all(fd, &sh0, sizeof sh0, (off_t)eh.e_shoff))
        return -1;
    if (shnum == 0)
        shnum = sh0.sh_size;
    if (shstrndx == SHN_XINDEX)
        shstrndx = sh0.sh_link;
    if (shnum == 0 || shnum > (1u << 24) || shstrndx >= shnum)
        return -1;
    size_t shlen = shnum * sizeof(Elf64_Shdr);
    Elf64_Shdr *sh = sf_map(shlen);
    if (!sh)
        return -1;
    int rc = -1;
    if (pread_all(fd, sh, shlen, (off_t)eh.e_shoff) == 0) {
        Elf64_Shdr *str = &sh[shstrndx];
        size_t wlen = strlen(want) + 1;
        char name[64];
        /* the names in one read (start-up cost of every process: one read,
         * not one per section), else one by one */
        size_t tlen = str->sh_size <= 65536 ? (size_t)str->sh_size : 0;
        char *tab = tlen ? sf_map(tlen) : NULL;
        if (tab && pread_all(fd, tab, tlen, (off_t)str->sh_offset) != 0) {
            sf_unmap(tab, tlen);
            tab = NULL;
        }
        for (size_t i = 1; i < shnum && rc; i++) {
            if (sh[i].sh_name + wlen > str->sh_size || wlen > sizeof name)
                continue;
            if (tab ? !memcmp(tab + sh[i].sh_name, want, wlen)
                    : pread_all(fd, name, wlen, (off_t)(str->sh_offset + sh[i].sh_name)) == 0 &&
                          !memcmp(name, want, wlen)) {
                *out = sh[i];
                rc = 0;
            }
        }
        if (tab)
            sf_unmap(tab, tlen);
    }
    sf_unmap(sh, shlen);
    return rc;
}

/* The GNU build-id of a note area; returns its length (0 if none). */
static size_t note_build_id(const uint8_t *p, size_t len, const uint8_t **id)
{
    size_t off = 0;
    while (off + sizeof(Elf64_Nhdr) <= len) {
        const Elf64_Nhdr *n = (const Elf64_Nhdr *)(p + off);
        size_t namesz = (n->n_namesz + 3) & ~3u, descsz = (n->n_descsz + 3) & ~3u;
        size_t desc = off + sizeof *n + namesz;
        if (desc + descsz > len)
            break;
        if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
            !memcmp(p + off + sizeof *n, "GNU", 4) && n->n_descsz <= 64) {
            *id = p + desc;
            return n->n_descsz;
        }
        off = desc + descsz;
    }
    return 0;
}

static size_t mem_build_id(struct dl_phdr_info *info, const uint8_t **id)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        size_t n = note_build_id((const uint8_t *)(info->dlpi_addr + ph->p_vaddr), ph->p_memsz, id);
        if (n)
            return n;
    }
    return 0;
}

static size_t file_build_id(int fd, uint8_t *buf, size_t cap)
{
    Elf64_Shdr sh;
    const uint8_t *id;
    if (find_section(fd, ".note.gnu.build-id", &sh) || sh.sh_size > cap ||
        pread_all(fd, buf, sh.sh_size, (off_t)sh.sh_offset))
        return 0;
    size_t n = note_build_id(buf, sh.sh_size, &id);
    if (n)
        memmove(buf, id, n);
    return n;
}

/* ---- stubs ------------------------------------------------------------------ */

static uint8_t *stub_near(uintptr_t lo, uintptr_t hi)
{
    for (uint32_t i = 0; i < nstubs; i++)
        if (sf_arch_in_reach(lo, hi, (uintptr_t)stubs[i].page))
            return stubs[i].page;
    if (nstubs == sizeof stubs / sizeof stubs[0])
        return NULL;
    long pg = sysconf(_SC_PAGESIZE);
    /* Try pages just beyond the object, then just before it, moving out. */
    for (uintptr_t d = 0; d < 0x70000000u; d += 0x100000) {
        uintptr_t cand[2] = {((hi + 0x10000) & ~(uintptr_t)0xffff) + d,
                             (lo & ~(uintptr_t)0xffff) - 0x10000 - d};
        for (int k = 0; k < 2; k++) {
            if (cand[k] < 0x10000 || cand[k] > 0x7ffffffff000ull)
                continue;
            if (!sf_arch_in_reach(lo, hi, cand[k]))
                continue;
            void *p = mmap((void *)cand[k], (size_t)pg, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == MAP_FAILED)
                continue;
            if (!sf_arch_in_reach(lo, hi, (uintptr_t)p)) {
                munmap(p, (size_t)pg); /* an old kernel took it as a hint */
                continue;
            }
            const void *const *t = sf_g.clock == SF_CLOCK_TSC ? sf_tramp_fast : sf_tramp_mono;
            for (int i = 0; i < T_COUNT; i++)
                sf_arch_write_stub((uint8_t *)p + i * SF_STUB_SIZE, t[i]);
            mprotect(p, (size_t)pg, PROT_READ | PROT_EXEC);
            stubs[nstubs++].page = p;
            return p;
        }
    }
    return NULL;
}

/* Put our stub into a 16-byte slot the object provided (sftrace_setup). */
static uint8_t *stub_in_slot(uint8_t *slot, int rx)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)slot & ~(uintptr_t)(pg - 1);
    size_t len = ((uintptr_t)slot + SF_STUB_SIZE - a + (size_t)pg - 1) & ~(size_t)(pg - 1);
    if (mprotect((void *)a, len, PROT_READ | PROT_WRITE | PROT_EXEC))
        return NULL;
    sf_arch_write_stub(slot, sf_g.clock == SF_CLOCK_TSC ? sf_tramp_fast[T_NORMAL]
                                                        : sf_tramp_mono[T_NORMAL]);
    mprotect((void *)a, len, rx);
    __builtin___clear_cache((char *)slot, (char *)slot + SF_STUB_SIZE);
    return slot;
}

/* ---- patching one object --------------------------------------------------- */

struct scan_ctx {
    const void *want; /* only the object containing this address, or NULL: all */
    uint8_t *slot;    /* its stub slot, from sftrace_setup */
    int found;
};

static int contains(struct dl_phdr_info *info, const void *addr);

/* Already handled? An object closed and loaded again at the same address
 * looks the same to dl_iterate_phdr, but its fresh code is unpatched. */
static int is_known(struct dl_phdr_info *info)
{
    for (uint32_t i = nobjs; i-- > 0;) {
        struct obj *o = &objs[i];
        if (o->bias != info->dlpi_addr || o->phdr != info->dlpi_phdr)
            continue;
        if (o->skipped || !o->first_sled)
            return 1;
        return contains(info, o->first_sled) &&
               (sf_ctl_enabled() ? sf_arch_sled_ours : sf_arch_sled_patched)(o->first_sled);
    }
    return 0;
}

static int contains(struct dl_phdr_info *info, const void *addr)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (uintptr_t)addr >= lo && (uintptr_t)addr < lo + ph->p_memsz)
            return 1;
    }
    return 0;
}

static uintptr_t sled_addr(const struct xray_entry *e)
{
    return e->version >= 2 ? (uintptr_t)e + (uintptr_t)e->address : (uintptr_t)e->address;
}

static uintptr_t func_addr(const struct xray_entry *e)
{
    return e->version >= 2 ? (uintptr_t)e + 8 + (uintptr_t)e->function : (uintptr_t)e->function;
}

static void write_object_chunk(struct obj *o, const char *path, const uint8_t *bid, size_t bidlen,
                               const struct xray_entry *map, size_t n, uintptr_t bias, int main,
                               uint32_t nsleds, int keys)
{
    size_t plen = strlen(path);
    size_t size = (sizeof(struct sf_object) + 8 * (size_t)o->nfuncs + plen + bidlen + 7) & ~7ul;
    struct sf_object *c = sf_map(size);
    if (!c)
        return;
    c->h.magic = SF_CHUNK_MAGIC;
    c->h.type = SF_CHUNK_OBJECT;
    c->h.flags = (uint16_t)((main ? SF_OBJ_MAIN : 0) | (keys ? SF_OBJ_KEYS : 0));
    c->h.size = (uint32_t)size;
    c->h.pid = (uint32_t)sf_g.pid;
    c->load_bias = bias;
    c->fid_base = o->fid_base;
    c->nfuncs = o->nfuncs;
    c->nsleds = nsleds;
    c->path_len = (uint32_t)plen;
    c->build_id_len = (uint32_t)bidlen;
    uint64_t *fa = (uint64_t *)(c + 1);
    uint32_t f = 0;
    uintptr_t prev = 0;
    uintptr_t base = map[0].version >= 2 ? 0 : bias;
    for (size_t i = 0; i < n; i++) {
        uintptr_t fn = func_addr(&map[i]) + base;
        if (i == 0 || fn != prev)
            fa[f++] = fn - bias;
        prev = fn;
    }
    memcpy((char *)(fa + o->nfuncs), path, plen);
    memcpy((char *)(fa + o->nfuncs) + plen, bid, bidlen);
    sf_ensure_process_chunk(); /* a forked child's dlopen: PROCESS goes first */
    o->chunk = c;
    o->chunk_size = size;
    sf_log_write(c, size, NULL, 0);
}

/* Is `addr` inside an executable segment of a loaded object (of this
 * namespace)? Then its bytes can be read. */
struct exec_ctx {
    uintptr_t addr;
    int found;
};

static int exec_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct exec_ctx *c = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && c->addr >= lo &&
            c->addr + 16 <= lo + ph->p_filesz)
            c->found = 1;
    }
    return c->found;
}

/*
 * Does the tail call after this tail sled land on an instrumented function
 * (whose sleds then run on the caller's behalf in descendants mode)? XRay
 * puts the jump right after the sled. A direct `jmp` to an entry
 * sled (patched or not) counts; so does a jump through the GOT, directly
 * (-fno-plt) or through a PLT entry of this object, to one in any object,
 * if the GOT slot is already bound (BIND_NOW: -z now, or a call made it).
 * Anything else (an unbound slot, other indirect jumps, uninstrumented
 * code) is not known to be traced.
 */
static int tail_target_traced(struct dl_phdr_info *info, const uint8_t *sled)
{
    const uint8_t *j = sled + SF_SLED_SIZE;
    uintptr_t target = sf_arch_branch_target(j);
    if (!target)
        target = (uintptr_t)j; /* maybe -fno-plt's jmp *GOT */
    struct exec_ctx c = {target, 0};
    if (!contains(info, (const void *)target) || (exec_cb(info, 0, &c), !c.found))
        return 0;
    if (target != (uintptr_t)j && sf_arch_is_entry_sled((const uint8_t *)target))
        return 1;
    uintptr_t bound = sf_arch_got_jump((const uint8_t *)target);
    if (!bound)
        return 0;
    c.addr = bound;
    c.found = 0;
    if (contains(info, (const void *)bound))
        exec_cb(info, 0, &c); /* e.g. a lazy slot: back into our own PLT */
    else
        dl_iterate_phdr(exec_cb, &c);
    return c.found && sf_arch_is_entry_sled((const uint8_t *)bound);
}

static int mark_listed(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    int other = *(const int *)data;
    /* the newest entry of that identity only: an older one was unloaded
     * for the newer to be loaded where it was */
    for (uint32_t i = nobjs; i-- > 0;)
        if (objs[i].other_ns == other && objs[i].bias == info->dlpi_addr &&
            objs[i].phdr == info->dlpi_phdr) {
            objs[i].listed = 1;
            break;
        }
    return 0;
}

/* The table is full: forget the objects no longer loaded (a program that
 * dlopens and dlcloses plugins over and over), so that later ones are
 * patched too. Called inside dl_iterate_phdr's callback (the list lock is
 * held: the lists cannot change meanwhile); if the other namespaces cannot
 * be listed, their objects are kept. */
static void compact(void)
{
    for (uint32_t i = 0; i < nobjs; i++)
        objs[i].listed = 0;
    int other = 0;
    dl_iterate_phdr(mark_listed, &other);
    other = 1;
    int ns = sf_each_other_namespace(mark_listed, &other);
    uint32_t k = 0;
    for (uint32_t i = 0; i < nobjs; i++) {
        struct obj *o = &objs[i];
        if (o->listed || (o->other_ns && ns < 0)) {
            objs[k++] = *o;
            continue;
        }
        if (o->chunk)
            sf_unmap(o->chunk, o->chunk_size);
    }
    nobjs = k;
}

static void patch_object(struct dl_phdr_info *info, uint8_t *slot)
{
    if (nobjs == MAX_OBJS)
        compact();
    if (nobjs == MAX_OBJS)
        return;
    struct obj *o = &objs[nobjs];
    memset(o, 0, sizeof *o);
    o->bias = info->dlpi_addr;
    o->phdr = info->dlpi_phdr;
    o->skipped = 1;
    o->other_ns = in_other_ns;
    nobjs++;

    int main = !info->dlpi_name || !info->dlpi_name[0];
    char path[4096];
    if (main) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        path[n > 0 ? n : 0] = 0;
    } else {
        snprintf(path, sizeof path, "%s", info->dlpi_name);
    }
    int fd = open(main ? "/proc/self/exe" : path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* the vDSO, or a deleted file: nothing we can read */
    Elf64_Shdr sh;
    int has_map = find_section(fd, "xray_instr_map", &sh) == 0 && sh.sh_size >= 32;
    const uint8_t *mid = NULL;
    size_t midlen = mem_build_id(info, &mid);
    uint8_t fbid[256];
    size_t fbidlen = has_map && midlen ? file_build_id(fd, fbid, sizeof fbid) : 0;
    close(fd);
    if (!has_map)
        return;
    if (midlen && fbidlen && (midlen != fbidlen || memcmp(mid, fbid, midlen))) {
        sf_msg("%s: the file on disk is not the one loaded (build-id differs); not tracing it",
               path);
        return;
    }
    const struct xray_entry *map = (const struct xray_entry *)(info->dlpi_addr + sh.sh_addr);
    size_t n = sh.sh_size / sizeof *map;
    if (map[0].version > 2) {
        sf_msg("%s: xray_instr_map version %u is not supported; not tracing it", path,
               map[0].version);
        return;
    }
    if (sf_patch_early && map[0].version < 2) {
        /* before relocation (attach.c's rendezvous hook): an older map holds
         * absolute addresses, not relocated yet; the next pass patches it */
        nobjs--;
        sf_patch_deferred = 1;
        return;
    }
    uintptr_t base = map[0].version >= 2 ? 0 : info->dlpi_addr;
    const struct sf_filter *filt = NULL;
    int desc_only = 0; /* an object no filter names, in descendants mode */
    /* functions whose sleds also record a key register (flows) */
    const struct sf_filter *keys = midlen ? sf_keys_for(mid, midlen) : NULL;
    if (sf_filters_active()) {
        filt = midlen ? sf_filter_for(mid, midlen) : NULL;
        if (!filt && !sf_filters_descendants())
            return; /* filters given, none for this object: not traced */
        desc_only = !filt;
    }

    /* Count functions and find the span of the sleds. */
    uintptr_t lo = UINTPTR_MAX, hi = 0, prev = 0;
    uint32_t nfuncs = 0, nfsleds = 0;
    for (size_t i = 0; i < n; i++) {
        uintptr_t s = sled_addr(&map[i]) + base, fn = func_addr(&map[i]) + base;
        if (i == 0 || fn != prev)
            nfuncs++;
        if (map[i].kind <= XRAY_LOG_ARGS)
            nfsleds++; /* the OBJECT chunk's nsleds, known before any is patched */
        prev = fn;
        if (s < lo)
            lo = s;
        if (s > hi)
            hi = s;
    }
    if (fid_next + (uint64_t)nfuncs > SF_FID_MAX) {
        sf_msg("%s: too many instrumented functions (%u); not tracing it", path, nfuncs);
        return;
    }
    /* what the text is mapped with again after patching (PROT_BTI, say) */
    int rx = PROT_READ | PROT_EXEC |
             sf_arch_text_prot(info->dlpi_phdr, info->dlpi_phnum, info->dlpi_addr);
    uint8_t *stub = NULL;
    if (slot && !filt && !desc_only && !keys && !sf_ctl_triggers() &&
        sf_arch_in_reach(lo, hi + SF_SLED_SIZE, (uintptr_t)slot))
        stub = stub_in_slot(slot, rx);
    if (!stub)
        stub = stub_near(lo, hi + SF_SLED_SIZE);
    if (!stub) {
        sf_msg("%s: no memory within reach of its sleds for a trampoline stub; not tracing it",
               path);
        return;
    }
    o->fid_base = fid_next;
    o->nfuncs = nfuncs;
    fid_next += nfuncs;

    /* Make the text writable, page range once for the whole object. */
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t plo = lo & ~(uintptr_t)(pg - 1);
    size_t plen = ((hi + SF_SLED_SIZE - plo) + (size_t)pg - 1) & ~(size_t)(pg - 1);
    if (mprotect((void *)plo, plen, PROT_READ | PROT_WRITE | PROT_EXEC)) {
        sf_msg("%s: cannot make its code writable (%s); not tracing it", path, strerror(errno));
        return;
    }
    uint32_t f = 0, nsleds = 0, bad = 0;
    int selected = 1;
    uint8_t fflags = 0, kflags = 0;
    prev = 0;
    /* live control: an object it cannot track (stop, detach) is not patched */
    struct ctl_obj *co = sf_ctl_obj_begin(plo, plen, rx, n, mid, midlen, info->dlpi_addr,
                                          info->dlpi_phdr, in_other_ns);
    if (!co && sf_ctl_enabled()) {
        mprotect((void *)plo, plen, rx);
        sf_msg("%s: too many objects to keep track of; not tracing it", path);
        return;
    }
    /* Describe the object in the log before any of its events can exist. */
    write_object_chunk(o, path, mid, midlen, map, n, info->dlpi_addr, main, nfsleds, keys != NULL);
    for (size_t i = 0; i < n; i++) {
        uintptr_t fn = func_addr(&map[i]) + base;
        if (i > 0 && fn != prev)
            f++;
        if (filt && (i == 0 || fn != prev)) {
            fflags = 0;
            selected = sf_filter_lookup(filt, fn - info->dlpi_addr, &fflags);
        }
        if (keys && (i == 0 || fn != prev)) {
            kflags = 0;
            sf_filter_lookup(keys, fn - info->dlpi_addr, &kflags);
        }
        prev = fn;
        int kind = map[i].kind;
        if (kind == XRAY_LOG_ARGS)
            kind = XRAY_ENTRY;
        if (kind > XRAY_TAIL)
            continue; /* custom and typed event sleds stay as they are */
        uint8_t *sled = (uint8_t *)(sled_addr(&map[i]) + base);
        kind = sf_arch_sled_kind(sled, kind);
        if (sf_arch_sled_check(sled, kind)) {
            bad++;
            continue;
        }
        static const enum sf_kind kinds[] = {SF_KIND_ENTRY, SF_KIND_EXIT, SF_KIND_TAIL};
        int t = T_NORMAL;
        int trig =
            !desc_only && !(filt && filt->descendants) &&
            sf_ctl_obj_trigger(co, fn - info->dlpi_addr, kind, o->fid_base + f, !filt || selected);
        if (trig) {
            t = T_TRIG; /* a trace-on / trace-off sled (ctl.c), whatever the filter says */
        } else if (desc_only || (filt && filt->descendants)) {
            /* a tail call stays inside the scope only if its callee's
             * sleds will see it; otherwise the tail call ends the frame */
            int keep = kind == XRAY_TAIL && tail_target_traced(info, sled);
            int selected_here = filt && selected;
            int args = selected_here && (fflags & SF_FILTER_ARGS);
            if (kind == XRAY_ENTRY)
                t = selected_here ? (args ? T_ARGS_ENTER : T_ENTER) : T_DESC;
            else if (kind == XRAY_EXIT)
                t = selected_here ? (args ? T_RET_LEAVE : T_LEAVE) : T_DESC_LEAVE;
            else if (selected_here)
                t = keep ? T_NORMAL : T_LEAVE_TAIL;
            else
                t = keep ? T_DESC : T_DESC_LEAVE_TAIL;
            /* a flow function of the keys file: follow its jobs (follow.c) */
            int kr = sf_filter_key(kflags);
            if (sf_filter_role(kflags) && !selected_here && kr >= 0 &&
                (kind == XRAY_ENTRY ? kr < SF_KEY_RET : kind == XRAY_EXIT && kr == SF_KEY_RET)) {
                t = kind == XRAY_ENTRY ? T_DESC_KEY : T_DESC_KEY_LEAVE;
                sf_follow_add(o->fid_base + f, kflags);
            }
        } else if (filt) {
            if (!selected)
                continue; /* stays a NOP: costs nothing */
            if (fflags & SF_FILTER_ARGS)
                t = kind == XRAY_ENTRY ? T_ARGS : (kind == XRAY_EXIT ? T_RET : T_NORMAL);
        }
        /* a key register (k0..k5 at the entry, kr at the exit), from a keys
         * file or the filter's own line; with ARGS the slow path has it */
        int kreg = sf_filter_key((uint8_t)((filt ? fflags : 0) | kflags));
        if (t == T_NORMAL && kreg >= 0) {
            if (kind == XRAY_ENTRY && kreg < SF_KEY_RET)
                t = T_KEY0 + kreg;
            else if (kind == XRAY_EXIT && kreg == SF_KEY_RET)
                t = T_KEYR;
        }
        sf_ctl_obj_sled(co, sled, kind, trig); /* before: it keeps the original bytes */
        sf_arch_sled_patch(sled, kind, sf_w1_event(o->fid_base + f, kinds[kind]),
                           stub + t * SF_STUB_SIZE);
        if (!o->first_sled)
            o->first_sled = sled;
        nsleds++;
    }
    sf_arch_patch_flush();
    sf_ctl_obj_end(co);
    mprotect((void *)plo, plen, rx);
    __builtin___clear_cache((char *)plo, (char *)plo + plen);
    if (bad)
        sf_msg("%s: %u sleds did not look like XRay sleds and were left alone", path, bad);
    o->skipped = 0;
}

static int scan_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct scan_ctx *ctx = data;
    if (ctx->want && !contains(info, ctx->want))
        return 0;
    ctx->found = 1;
    if (!is_known(info))
        patch_object(info, ctx->slot);
    return ctx->want ? 1 : 0;
}

void sf_patch_all_objects(void)
{
    if (!sf_g.enabled)
        return;
    pthread_mutex_lock(&patch_lock);
    sf_patch_all_objects_held();
    pthread_mutex_unlock(&patch_lock);
}

/* The same; the caller holds the patch lock (sf_patch_trylock). */
void sf_patch_all_objects_held(void)
{
    struct scan_ctx ctx = {0};
    if (sf_g.enabled)
        dl_iterate_phdr(scan_cb, &ctx);
}

/*
 * dl_iterate_phdr(cb, data) as seen from each link-map namespace but the
 * base one (objects dlmopen loaded), found through the dynamic linker's
 * debugger interface: _r_debug's r_next chain (glibc 2.35 and later,
 * r_version 2) lists each namespace's objects. dl_iterate_phdr is entered
 * with a return address inside the first object of the namespace whose
 * code has a `ret` (sf_call_as), which makes it list that namespace. The
 * caller is inside a dl_iterate_phdr callback: the list lock is held, so no
 * namespace's list changes meanwhile. The ELF headers are read with
 * process_vm_readv, which fails instead of faulting on an object laid out
 * unusually (no header at its load bias). Returns the namespaces walked;
 * -1 if they cannot be (a shadow stack forbids the faked return address).
 */
int sf_each_other_namespace(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
    if (sf_shadow_stack_on())
        return -1;
    /* _r_debug is the first member of glibc's r_debug_extended (the
     * declared type is the older, shorter struct: the compiler is told no
     * more about the pointer) */
    const struct r_debug_extended *r = (const struct r_debug_extended *)(void *)&_r_debug;
    __asm__("" : "+r"(r));
    if (r->base.r_version < 2)
        return 0; /* no r_next: no namespace but the base one was ever made */
    int n = 0;
    pid_t self = getpid();
    for (r = r->r_next; r; r = r->r_next) {
        for (const struct link_map *lm = r->base.r_map; lm; lm = lm->l_next) {
            ElfW(Ehdr) eh;
            ElfW(Phdr) ph[64];
            struct iovec l = {&eh, sizeof eh}, rem = {(void *)lm->l_addr, sizeof eh};
            if (!lm->l_addr || process_vm_readv(self, &l, 1, &rem, 1, 0) != (ssize_t)sizeof eh ||
                memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_phentsize != sizeof(ElfW(Phdr)) ||
                !eh.e_phnum || eh.e_phnum > 64)
                continue;
            l.iov_base = ph;
            l.iov_len = rem.iov_len = eh.e_phnum * sizeof *ph;
            rem.iov_base = (void *)(lm->l_addr + eh.e_phoff);
            if (process_vm_readv(self, &l, 1, &rem, 1, 0) != (ssize_t)l.iov_len)
                continue;
            const void *g = sf_ret_gadget_in(lm->l_addr, ph, eh.e_phnum, 0);
            if (!g)
                continue;
            sf_call_as((void *)cb, data, NULL, (void *)dl_iterate_phdr, g);
            n++;
            break;
        }
    }
    return n;
}

/* The objects of the other namespaces not patched yet (attach.c's watcher,
 * inside a dl_iterate_phdr callback, holding the patch lock). */
void sf_patch_other_namespaces_held(void)
{
    struct scan_ctx ctx = {0};
    if (!sf_g.enabled)
        return;
    in_other_ns = 1;
    sf_each_other_namespace(scan_cb, &ctx);
    in_other_ns = 0;
}

/*
 * Objects dlmopen loaded into another link-map namespace. dl_iterate_phdr
 * lists only the namespace of its caller, found from its return address,
 * so it is entered (sf_call_as) with a return address inside the new
 * object: a `ret` of its code, located through its ELF header.
 */
void sf_patch_namespace_of(void *handle)
{
    struct link_map *lm = NULL;
    if (!sf_g.enabled || sf_shadow_stack_on() || dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
        return;
    Dl_info di;
    void *extra = NULL;
    if (!lm->l_ld || !dladdr1(lm->l_ld, &di, &extra, RTLD_DL_LINKMAP) || !di.dli_fbase)
        return;
    const ElfW(Ehdr) *eh = di.dli_fbase; /* the object's first page: its ELF header */
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_phentsize != sizeof(ElfW(Phdr)))
        return;
    const void *g = sf_ret_gadget_in(lm->l_addr, (const char *)eh + eh->e_phoff, eh->e_phnum, 0);
    if (!g)
        return;
    pthread_mutex_lock(&patch_lock);
    struct scan_ctx ctx = {0};
    in_other_ns = 1;
    sf_call_as((void *)scan_cb, &ctx, NULL, (void *)dl_iterate_phdr, g);
    in_other_ns = 0;
    pthread_mutex_unlock(&patch_lock);
}

int sf_patch_object_at(const void *addr, const void *stub_slot)
{
    if (!sf_g.enabled)
        return -1;
    pthread_mutex_lock(&patch_lock);
    struct scan_ctx ctx = {addr, (uint8_t *)stub_slot, 0};
    dl_iterate_phdr(scan_cb, &ctx);
    pthread_mutex_unlock(&patch_lock);
    return ctx.found ? 0 : -1;
}

/* A forked child describes the objects again, under its own pid. */
void sf_rewrite_object_chunks(void)
{
    for (uint32_t i = 0; i < nobjs; i++) {
        struct obj *o = &objs[i];
        if (o->skipped || !o->chunk)
            continue;
        ((struct sf_chunk *)o->chunk)->pid = (uint32_t)sf_g.pid;
        sf_log_write(o->chunk, o->chunk_size, NULL, 0);
    }
}

void sf_patch_lock(void)
{
    pthread_mutex_lock(&patch_lock);
}

int sf_patch_trylock(void)
{
    return pthread_mutex_trylock(&patch_lock);
}

void sf_patch_unlock(void)
{
    pthread_mutex_unlock(&patch_lock);
}

/* The OBJECT chunks again, under another pid: a vfork child runs in our
 * memory, so our objects are its objects. */
void sf_write_object_chunks_as(uint32_t pid)
{
    for (uint32_t i = 0; i < nobjs; i++) {
        struct obj *o = &objs[i];
        if (o->skipped || !o->chunk)
            continue;
        struct sf_chunk h; /* a copy of the header; the rest as it is */
        memcpy(&h, o->chunk, sizeof h);
        h.pid = pid;
        sf_log_write(&h, sizeof h, (const uint8_t *)o->chunk + sizeof h, o->chunk_size - sizeof h);
    }
}

void sf_patch_after_fork(void)
{
    pthread_mutex_init(&patch_lock, NULL);
}
