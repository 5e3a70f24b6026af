/*
 * version.c - the runtime's version: the ELF note `sftrace record` checks
 * before preloading us (common/vnote.h), and the check the other way: when
 * record started us (it exports its version), a runtime of another version
 * refuses to record, with one line on stderr, before sf_init can start.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "version.h"
#include "vnote.h"

#define SF_ALIGN4(n) (((n) + 3u) & ~3u)

/* The assembler gives sections named .note* the type SHT_NOTE; `used` keeps
 * it from being dropped, aligned(4) is the note layout's. */
__attribute__((section(".note.sftrace"), used, aligned(4))) static const struct {
    uint32_t namesz, descsz, type;
    char name[SF_ALIGN4(sizeof SF_NOTE_OWNER)];
    char desc[SF_ALIGN4(sizeof SFTRACE_VERSION)];
} sf_version_note = {
    sizeof SF_NOTE_OWNER, sizeof SFTRACE_VERSION, SF_NOTE_VERSION, SF_NOTE_OWNER, SFTRACE_VERSION,
};

int sf_version_ok(void)
{
    static int checked, ok = 1;
    if (checked)
        return ok;
    checked = 1;
    const char *want = getenv(SF_ENV_RECORD_VERSION);
    const char *out = getenv("SFTRACE_OUTPUT_FILE");
    if (!want || !out || !*out || !strcmp(want, SFTRACE_VERSION))
        return ok;
    ok = 0;
    Dl_info info;
    const char *self =
        dladdr(&sf_version_note, &info) && info.dli_fname ? info.dli_fname : "libsftrace.so";
    sf_msg("not tracing: the runtime %s is version %s but sftrace record is %s;"
           " run `sftrace record --install-solib` or pass --solib",
           self, SFTRACE_VERSION, want);
    /* sf_init then stays inert, in this process and in everything it
     * starts (which would only say the same again). */
    unsetenv("SFTRACE_OUTPUT_FILE");
    return ok;
}

/* Before init.c's constructor (constructors with a priority run first). */
__attribute__((constructor(101))) static void sf_version_constructor(void)
{
    sf_version_ok();
}
