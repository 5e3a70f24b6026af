/* callcount.c - the exact event count of a generated workload whose calls
 * depend on its data (bench/gen_calls.py rspack): linked into a build of the
 * same sources compiled with -finstrument-functions instead of XRay sleds,
 * it counts every function entry and exit. main prints
 * the count (events_counted()), and bench.py checks sftrace's log against it:
 * one entry and one exit or tail event per call. Not instrumented itself. */
#include <stdatomic.h>
#include <stdint.h>

#define NOTRACE __attribute__((no_instrument_function))

static _Atomic uint64_t entries, exits;

NOTRACE void __cyg_profile_func_enter(void *fn, void *site)
{
    (void)fn;
    (void)site;
    atomic_fetch_add_explicit(&entries, 1, memory_order_relaxed);
}

NOTRACE void __cyg_profile_func_exit(void *fn, void *site)
{
    (void)fn;
    (void)site;
    atomic_fetch_add_explicit(&exits, 1, memory_order_relaxed);
}

NOTRACE uint64_t events_counted(void)
{
    return atomic_load(&entries) + atomic_load(&exits);
}
