/*
 * solib.c - find libsftrace.so and read its version note (solib.h).
 *
 * The check reads the ELF file with libelf before anything loads it, so a
 * stale copy of the runtime or a file that is no runtime at all is named
 * with what is wrong with it, instead of being preloaded silently (or, for
 * a non-runtime, leaving record to blame the program for having no
 * instrumented code).
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "solib.h"
#include "vnote.h"

const char *sf_solib_where_text(enum sf_solib_where w)
{
    switch (w) {
    case SF_SOLIB_GIVEN:
        return "given with --solib";
    case SF_SOLIB_INSTALL_DIR:
        return "found in the install directory";
    case SF_SOLIB_BESIDE:
        return "found beside the sftrace binary";
    case SF_SOLIB_PREFIX_LIB:
        return "found in ../lib beside the sftrace binary";
    case SF_SOLIB_BUILD_TREE:
        return "found in the build tree of the sftrace binary";
    default:
        return "found";
    }
}

void sf_solib_install_dir(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(buf, len, "%s/sftrace", xdg);
    else
        snprintf(buf, len, "%s/.local/share/sftrace", home && *home ? home : ".");
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int sf_solib_find(const char *self_dir, enum sf_solib_where from, char *out, size_t len,
                  enum sf_solib_where *where)
{
    for (int w = from > SF_SOLIB_INSTALL_DIR ? (int)from : SF_SOLIB_INSTALL_DIR;
         w < SF_SOLIB_NWHERE; w++) {
        char p[PATH_MAX];
        if (w == SF_SOLIB_INSTALL_DIR) {
            char dir[PATH_MAX - 32];
            sf_solib_install_dir(dir, sizeof dir);
            snprintf(p, sizeof p, "%s/libsftrace.so", dir);
        } else {
            static const char *const rel[] = {
                [SF_SOLIB_BESIDE] = "",
                [SF_SOLIB_PREFIX_LIB] = "/../lib",
                [SF_SOLIB_BUILD_TREE] = "/../build",
            };
            snprintf(p, sizeof p, "%s%s/libsftrace.so", self_dir, rel[w]);
        }
        if (is_file(p)) {
            char real[PATH_MAX];
            snprintf(out, len, "%s", realpath(p, real) ? real : p);
            if (where)
                *where = (enum sf_solib_where)w;
            return 0;
        }
    }
    return -1;
}

/* Does the dynamic symbol table define `name`? (Tells an old runtime from
 * another library.) */
static int defines(Elf *elf, const char *name)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Sym s;
            const char *n;
            if (gelf_getsym(d, (int)i, &s) && s.st_shndx != SHN_UNDEF &&
                (n = elf_strptr(elf, sh.sh_link, s.st_name)) && !strcmp(n, name))
                return 1;
        }
    }
    return 0;
}

/* The descriptor of the sftrace version note, NUL-terminated, or NULL. */
static const char *version_note(Elf *elf, size_t *dlen)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        GElf_Nhdr nh;
        size_t off = 0, name_off, desc_off;
        while (d && (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
            const char *base = d->d_buf;
            if (nh.n_type == SF_NOTE_VERSION && nh.n_namesz == sizeof SF_NOTE_OWNER &&
                !memcmp(base + name_off, SF_NOTE_OWNER, sizeof SF_NOTE_OWNER) && nh.n_descsz &&
                memchr(base + desc_off, 0, nh.n_descsz)) {
                *dlen = nh.n_descsz;
                return base + desc_off;
            }
        }
    }
    return NULL;
}

int sf_solib_version(const char *path, char *ver, size_t vlen, char *err, size_t elen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, elen, "cannot read it: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, elen, "not a regular file");
        close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        snprintf(err, elen, "not an ELF file (it is empty)");
        close(fd);
        return -1;
    }
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    int rc = -1;
    GElf_Ehdr eh;
    const char *v;
    size_t dlen = 0, shnum = 0;
    if (!elf || elf_kind(elf) != ELF_K_ELF)
        snprintf(err, elen, "not an ELF file");
    else if (!gelf_getehdr(elf, &eh))
        snprintf(err, elen, "a damaged ELF file (%s)", elf_errmsg(-1));
    else if (!eh.e_shoff)
        snprintf(err, elen, "an ELF file without section headers, so not the sftrace runtime");
    else if (elf_getshdrnum(elf, &shnum) != 0 || !shnum ||
             eh.e_shoff + (uint64_t)shnum * eh.e_shentsize > (uint64_t)st.st_size)
        snprintf(err, elen,
                 "a truncated or damaged ELF file (its section headers are not within its %lld "
                 "bytes)",
                 (long long)st.st_size);
    else if (eh.e_type != ET_DYN || (eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64) ||
             eh.e_ident[EI_CLASS] != ELFCLASS64)
        /* aarch64: a cross-built runtime, preloaded into a program run by qemu */
        snprintf(err, elen, "not an x86-64 or aarch64 shared library, so not the sftrace runtime");
    else if ((v = version_note(elf, &dlen))) {
        snprintf(ver, vlen, "%s", v);
        rc = 0;
    } else if (defines(elf, "sftrace_setup"))
        snprintf(err, elen,
                 "an sftrace runtime from before version checks (no " SF_NOTE_OWNER
                 " version note)");
    else
        snprintf(err, elen,
                 "not the sftrace runtime (no " SF_NOTE_OWNER
                 " version note, no sftrace_setup symbol)");
    if (elf)
        elf_end(elf);
    close(fd);
    return rc;
}
