/*
 * xraymap.c - reads an object's instrumented functions from its
 * xray_instr_map section with libelf. See xraymap.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gelf.h>
#include <libelf.h>

#include "xraymap.h"

#define ENTRY_SIZE 32

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int fail(struct sf_xraymap *m, int rc, char *err, size_t errlen, const char *msg)
{
    free(m->funcs);
    memset(m, 0, sizeof *m);
    snprintf(err, errlen, "%s", msg);
    return rc;
}

int sf_xraymap_read(Elf *elf, struct sf_xraymap *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    char msg[256];
    GElf_Ehdr eh;
    if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh))
        return fail(m, SF_XRAYMAP_ERROR, err, errlen, "not an ELF file");
    /* libelf quietly shows no sections when their headers are cut off. */
    size_t fsize = 0, shnum = 0, shstrndx;
    elf_rawfile(elf, &fsize);
    size_t want = (size_t)(eh.e_shnum ? eh.e_shnum : 1) * eh.e_shentsize;
    if (eh.e_shoff && fsize && (eh.e_shoff > fsize || fsize - eh.e_shoff < want))
        return fail(m, SF_XRAYMAP_ERROR, err, errlen,
                    "truncated file: its section headers lie beyond its end");
    if (eh.e_shoff == 0 || elf_getshdrnum(elf, &shnum) != 0 || shnum == 0)
        return fail(m, SF_XRAYMAP_ERROR, err, errlen,
                    "has no section headers, so its xray_instr_map cannot be found");
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return fail(m, SF_XRAYMAP_ERROR, err, errlen, "cannot read its section headers");
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    while ((scn = elf_nextscn(elf, scn))) {
        const char *name;
        if (gelf_getshdr(scn, &sh) && (name = elf_strptr(elf, shstrndx, sh.sh_name)) &&
            !strcmp(name, "xray_instr_map"))
            break;
    }
    if (!scn)
        return fail(m, SF_XRAYMAP_NONE, err, errlen,
                    "no xray_instr_map section: not built with XRay instrumentation");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return fail(m, SF_XRAYMAP_ERROR, err, errlen,
                    "not a 64-bit little-endian ELF file (the only kind supported)");
    if (eh.e_type == ET_REL)
        return fail(m, SF_XRAYMAP_ERROR, err, errlen,
                    "a relocatable object: its xray_instr_map is only complete once linked; "
                    "give the executable or shared object");
    if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
        return fail(m, SF_XRAYMAP_ERROR, err, errlen, "neither an executable nor a shared object");
    if (sh.sh_type == SHT_NOBITS || sh.sh_size % ENTRY_SIZE) {
        snprintf(msg, sizeof msg,
                 "xray_instr_map has a bad size (%llu bytes, not a multiple of %d)",
                 (unsigned long long)sh.sh_size, ENTRY_SIZE);
        return fail(m, SF_XRAYMAP_ERROR, err, errlen, msg);
    }
    Elf_Data *d = elf_rawdata(scn, NULL);
    if (sh.sh_size && (!d || !d->d_buf || d->d_size != sh.sh_size))
        return fail(m, SF_XRAYMAP_ERROR, err, errlen,
                    "cannot read xray_instr_map (truncated file?)");
    size_t n = sh.sh_size / ENTRY_SIZE;
    m->nsleds = n;
    m->funcs = malloc((n ? n : 1) * sizeof *m->funcs);
    if (!m->funcs)
        return fail(m, SF_XRAYMAP_ERROR, err, errlen, "out of memory");
    const unsigned char *p = d ? d->d_buf : NULL;
    for (size_t i = 0; i < n; i++, p += ENTRY_SIZE) {
        unsigned version = p[18];
        uint64_t fn = le64(p + 8);
        if (version > 2) {
            snprintf(msg, sizeof msg,
                     "xray_instr_map entry %zu has version %u (at most 2 is known)", i, version);
            return fail(m, SF_XRAYMAP_ERROR, err, errlen, msg);
        }
        if (version > m->version)
            m->version = version;
        if (version == 2) {
            fn += sh.sh_addr + (uint64_t)i * ENTRY_SIZE + 8; /* wraps like the int64 sum */
        } else if (!fn) {
            /* Absolute addresses of a shared object or PIE may be left to
             * dynamic relocations: the file then holds no address. */
            snprintf(msg, sizeof msg,
                     "xray_instr_map entry %zu (version %u) holds no function address "
                     "(left to relocations, not supported)",
                     i, version);
            return fail(m, SF_XRAYMAP_ERROR, err, errlen, msg);
        }
        if (!m->nfuncs || m->funcs[m->nfuncs - 1] != fn)
            m->funcs[m->nfuncs++] = fn;
    }
    return 0;
}

int sf_xraymap_read_file(const char *path, struct sf_xraymap *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return SF_XRAYMAP_ERROR;
    }
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    char why[256];
    int rc;
    if (!elf) {
        snprintf(why, sizeof why, "not an ELF file (%s)", elf_errmsg(-1));
        rc = SF_XRAYMAP_ERROR;
    } else {
        rc = sf_xraymap_read(elf, m, why, sizeof why);
        elf_end(elf);
    }
    close(fd);
    if (rc)
        snprintf(err, errlen, "%s: %s", path, why);
    return rc;
}

void sf_xraymap_free(struct sf_xraymap *m)
{
    free(m->funcs);
    memset(m, 0, sizeof *m);
}
