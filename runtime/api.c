/*
 * api.c - the exported C ABI (include/sftrace.h), compatible with the
 * sftrace-setup Rust crate: sftrace_setup and sftrace_alloc_event.
 */
#include <stdlib.h>

#include "sftrace.h"
#include "runtime.h"

SF_EXPORT void sftrace_setup(void (*entry_slot)(void), void (*exit_slot)(void),
                             void (*tailcall_slot)(void))
{
    (void)exit_slot;
    (void)tailcall_slot;
    if (!sf_version_ok())
        return;
    sf_init();
    if (!sf_g.enabled)
        return;
    /* One slot is enough: the sled word carries the event kind. */
    sf_patch_object_at((const void *)entry_slot, (const void *)entry_slot);
    if (sf_g.setup_thread_only)
        sf_thread_enable(1);
}

SF_EXPORT void sftrace_alloc_event(uint8_t kind, size_t size, size_t align, uint8_t *ptr)
{
    if (sf_g.enabled && kind >= 1 && kind <= 4)
        sf_alloc_event(kind, size, align, (uint64_t)(uintptr_t)ptr);
}
