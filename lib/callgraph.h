/*
 * callgraph.h - which functions of an object file can call which, read from
 * its code, for the call engine's unwinding rule (calls.c).
 *
 * A log has no return addresses, so when an exception, a Rust panic or a
 * longjmp skips frames, nothing in the events says so until an outer frame
 * does something. The engine asks: can the function on top of the stack
 * call the function being entered? If the code says no, but an outer frame
 * can, the frames above that one were left by unwinding.
 *
 * "Can call" is read from the object file the log names (its build-id must
 * match): call and jmp rel32 instructions (and conditional tail jumps) give
 * direct edges; the function containing a site is the symbol (.symtab, else
 * .dynsym) whose [value, value + size) holds it. Calls through functions
 * that are not instrumented (not in the XRay map) are followed, since the
 * log does not show them. A function whose address is taken (a
 * rip-relative or absolute reference in code or data, a relocation addend,
 * or an exported .dynsym symbol, which other objects and the PLT reach) can
 * be called from anywhere. The scan looks at every byte offset, so a stray
 * match can only add an edge or make a function "taken": an error makes the
 * rule do less, never pop frames that were not left.
 */
#ifndef SFTRACE_CALLGRAPH_H
#define SFTRACE_CALLGRAPH_H

#include <stdint.h>

struct sf_callgraph;
struct sf_cgwalk;

/* Read path's code for the nfuncs functions at func_addr (ELF addresses, as
 * in an OBJECT chunk). A graph is read in a thread of its own: this returns
 * at once, and the first question (any function below) waits until it is
 * read, so the caller can do other work meanwhile. A file that cannot be
 * read, has no symbols, or whose GNU build-id is not build_id (when
 * build_id_len) gives answers as for a NULL graph (not known; may be
 * NULL). A graph is read-only once loaded and shared: a second load of the
 * same file, id and functions (another worker's engine, runcalls.c) takes
 * a reference to the first, and waits for it if it is being read.
 * Thread-safe. */
struct sf_callgraph *sf_callgraph_load(const char *path, const uint8_t *build_id,
                                       uint32_t build_id_len, const uint64_t *func_addr,
                                       uint32_t nfuncs);
/* 1 if the object imports something that unwinds or jumps out of frames
 * (longjmp, siglongjmp, _Unwind_*, __cxa_throw ...): only then is the rule
 * worth its cost. */
int sf_callgraph_unwinds(const struct sf_callgraph *g);
/* 1 if function caller (index in func_addr) may call callee, directly or
 * through functions that are not instrumented, or callee's address is
 * taken; 0 if its code cannot. The answers of searches beyond caller's own
 * edges are kept in *w, the user's (one thread's) state: NULL at first,
 * made when needed, freed with sf_cgwalk_free. */
int sf_callgraph_may_call(const struct sf_callgraph *g, struct sf_cgwalk **w, uint32_t caller,
                          uint32_t callee);
void sf_cgwalk_free(struct sf_cgwalk *w);
/* The name of function idx if the object exports it (other objects call it
 * by that name), else NULL. */
const char *sf_callgraph_export_name(const struct sf_callgraph *g, uint32_t idx);
/* 1 if function caller (index in func_addr), directly or through functions
 * that are not instrumented, calls through its object's PLT a function
 * named name (another object's): plpgsql.so's PG_CATCH calling the
 * backend's CopyErrorData. */
int sf_callgraph_may_call_import(const struct sf_callgraph *g, struct sf_cgwalk **w,
                                 uint32_t caller, const char *name);
/* 1 if sf_callgraph_may_call is 1 for callee whatever the caller: its
 * address is taken (an exported function of a cdylib, a callback), or it is
 * not known. */
int sf_callgraph_may_call_any(const struct sf_callgraph *g, uint32_t callee);
/* Drop a reference (the graph is freed with the last). */
void sf_callgraph_free(struct sf_callgraph *g);

#endif /* SFTRACE_CALLGRAPH_H */
