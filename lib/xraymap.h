/*
 * xraymap.h - an object's instrumented functions, read from the
 * `xray_instr_map` section of its ELF file with libelf.
 *
 * The section is an array of 32-byte entries (one per sled), little-endian:
 * int64 address; int64 function; uint8 kind, always_instrument, version;
 * 13 bytes of padding. In version 2 both fields are relative to the entry:
 * function = entry_addr + 8 + function, where entry_addr is the entry's ELF
 * address (the section's sh_addr + index * 32). Versions 0 and 1 hold the
 * addresses as linked. Entries of one function are contiguous and start with
 * its entry sled.
 *
 * The functions come out as ELF addresses in map order, an entry whose
 * function is the one of the entry before it adding nothing: the same
 * numbering the runtime gives them (function id = fid_base + index), so the
 * tools can reuse it to name an object's functions without a log.
 */
#ifndef SFTRACE_XRAYMAP_H
#define SFTRACE_XRAYMAP_H

#include <stddef.h>
#include <stdint.h>

#include <libelf.h>

struct sf_xraymap {
    uint64_t *funcs; /* [nfuncs] ELF entry addresses, map order (malloc'd) */
    size_t nfuncs;
    size_t nsleds;    /* entries in the map */
    unsigned version; /* the highest entry version seen */
};

/* sf_xraymap_read's results besides 0 (success). */
#define SF_XRAYMAP_NONE (-1)  /* no xray_instr_map section (not instrumented) */
#define SF_XRAYMAP_ERROR (-2) /* the file or its map is unusable */

/* Read the map of an opened ELF file (elf_version must have been called).
 * 0 and *m filled, or SF_XRAYMAP_NONE / SF_XRAYMAP_ERROR with a message in
 * err (no file name in it) and *m empty. */
int sf_xraymap_read(Elf *elf, struct sf_xraymap *m, char *err, size_t errlen);
/* The same for a path; err then starts with "PATH: ". */
int sf_xraymap_read_file(const char *path, struct sf_xraymap *m, char *err, size_t errlen);
void sf_xraymap_free(struct sf_xraymap *m);

#endif /* SFTRACE_XRAYMAP_H */
