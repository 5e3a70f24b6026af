/*
 * symbols.h - function names and source lines for the addresses in a log.
 *
 * A symbolizer (struct sf_syms) caches one struct sf_symobj per object file
 * (path + expected GNU build-id). An object's symbols come, first match wins,
 * from:
 *   1. a symbol file the user named (sf_syms_add_file, `-s FILE`) whose
 *      build-id is the recorded one, or whose basename is the object's when
 *      no build-id was recorded;
 *   2. the object file itself, if its build-id is the recorded one (or none
 *      was recorded) and it has a .symtab;
 *   3. its separate debug file: DEBUGROOT/.build-id/xx/rest.debug, then the
 *      .gnu_debuglink name in the object's directory, in DIR/.debug/ and in
 *      DEBUGROOT/DIR/ (DEBUGROOT is /usr/lib/debug unless set); the debug
 *      file must carry the same build-id (or the link's CRC when there is
 *      none);
 *   4. the object's .dynsym.
 * When the object is missing and no symbol file matches, or its build-id
 * differs from the recorded one, or nothing has symbols, the symbolizer warns
 * once for the object on stderr ("sftrace: warning: PATH: build-id differs
 * from the recorded one; showing addresses") and names functions "0x%lx"
 * (their ELF address). Names are demangled (C++ and Rust, both the legacy and
 * v0 manglings; the legacy ::h<hash> suffix is dropped).
 *
 * Source lines come from the DWARF of the first of (1), the object file and
 * its separate debug file that has .debug_info, read when first asked for:
 * each compile unit once (its top-level DIEs' ranges and its line table,
 * sorted), then each question reads only its function's own DIEs, so asking
 * for every function of an object costs O(n log n) in its debug info.
 *
 * Strings returned live until sf_syms_free. Thread-safe once set up: the
 * questions (objects, names, lines) take the symbolizer's lock, so the
 * workers of a run share one (lib/runcalls.c); the sf_syms_set_* calls and
 * sf_syms_add_file come before it is shared.
 */
#ifndef SFTRACE_SYMBOLS_H
#define SFTRACE_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

#include <gelf.h>

#include "logread.h"

/* Call fn for every defined function symbol (FUNC or IFUNC, non-zero value,
 * with a name) of elf's .symtab, or .dynsym when dynsym is set. rank: 0
 * global, 1 weak, 2 local (lower is preferred as an address's name). */
typedef void sf_func_sym_fn(void *ctx, const GElf_Sym *sym, const char *name, int rank);
void sf_elf_func_syms(Elf *elf, int dynsym, sf_func_sym_fn *fn, void *ctx);

struct sf_syms;
struct sf_symobj;

struct sf_syms *sf_syms_new(void);
void sf_syms_free(struct sf_syms *s);
/* Where separate debug files live (default /usr/lib/debug). */
void sf_syms_set_debug_root(struct sf_syms *s, const char *dir);
/* Do not print warnings (they are still made, see sf_symobj_warning). */
void sf_syms_set_quiet(struct sf_syms *s, int quiet);
/* Whether to look up source lines (default 1). With 0, sf_symobj_srcline
 * and sf_syms_obj_srcline answer 0 at once and no DWARF is read: what
 * `--no-lines` needs. */
void sf_syms_set_lines(struct sf_syms *s, int lines);
/* Add a user symbol file (`-s FILE`). -1 and a message in err if it cannot
 * be read as ELF. */
int sf_syms_add_file(struct sf_syms *s, const char *path, char *err, size_t errlen);

/* The cached entry for an object (made, and its symbols read, on first use).
 * build_id may be NULL / 0 when none was recorded. Never NULL. */
struct sf_symobj *sf_syms_object(struct sf_syms *s, const char *path, const uint8_t *build_id,
                                 size_t build_id_len);
/* Name of the function at ELF address vaddr: demangled symbol, "sym+0x10"
 * inside a symbol, else "0x%lx". Computed once per address. Never NULL. */
const char *sf_symobj_name(struct sf_symobj *o, uint64_t vaddr);
/* Source file and line of the function at vaddr: its DWARF declaration
 * (decl_file, decl_line), else the first line-table row with a line at most
 * 64 bytes after vaddr (the XRay sled at an entry has line 0). The
 * declaration is that of the innermost DW_TAG_subprogram among the scopes
 * libdw's dwarf_getscopes gives for vaddr, which never looks inside a
 * namespace or class DIE: Rust functions and C++ functions in namespaces
 * get the line-table answer (symbols.c, "source lines", has the details).
 * File names are absolute (joined to the CU's DW_AT_comp_dir).
 * 1 if known, else 0 (*file NULL, *line 0); always 0 after
 * sf_syms_set_lines(s, 0). */
int sf_symobj_srcline(struct sf_symobj *o, uint64_t vaddr, const char **file, int *line);
/* 1 if the object's functions get names (no warning was due). */
int sf_symobj_ok(const struct sf_symobj *o);
/* The warning made for the object, without the "sftrace: warning: " prefix,
 * or NULL. */
const char *sf_symobj_warning(const struct sf_symobj *o);
/* The file the symbols were read from, or NULL. */
const char *sf_symobj_symfile(const struct sf_symobj *o);

/* Name of function idx of a log object (func_addr[idx]), cached in
 * o->names so each function is symbolized once. */
const char *sf_syms_obj_name(struct sf_syms *s, struct sf_obj *o, uint32_t idx);
/* Source file and line of function idx of a log object, as sf_symobj_srcline. */
int sf_syms_obj_srcline(struct sf_syms *s, struct sf_obj *o, uint32_t idx, const char **file,
                        int *line);

/* Demangle a symbol (C++, Rust legacy and v0); a malloc'd copy of sym if it
 * is not mangled. */
char *sf_demangle(const char *sym);

#endif /* SFTRACE_SYMBOLS_H */
