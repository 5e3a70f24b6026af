/*
 * attach_arch_stub.c - cmd/attach.c built for another machine than x86_64
 * (t_live.py builds it for aarch64 and runs it under qemu-user): stands in
 * for the rest of sftrace, so that `sftrace attach PID` as an aarch64 build
 * runs and says attaching is not supported there.
 *
 * The object reader is a stand-in that finds an xray_instr_map in the files
 * that have that section name in them (enough to tell an instrumented
 * program from `sleep`); record -p PID is attach's own start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "xraymap.h"

int sf_xraymap_read_file(const char *path, struct sf_xraymap *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return SF_XRAYMAP_ERROR;
    }
    static char buf[1 << 16];
    const char want[] = "xray_instr_map";
    int found = 0;
    size_t n, keep = 0;
    while (!found && (n = fread(buf + keep, 1, sizeof buf - keep, f)) > 0) {
        n += keep;
        for (size_t i = 0; i + sizeof want - 1 <= n && !found; i++)
            found = !memcmp(buf + i, want, sizeof want - 1);
        keep = n < sizeof want ? n : sizeof want - 1;
        memmove(buf, buf + n - keep, keep);
    }
    fclose(f);
    return found ? 0 : SF_XRAYMAP_NONE;
}

void sf_xraymap_free(struct sf_xraymap *m)
{
    (void)m;
}

int cmd_record(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "-p"))
            return sf_attach_start(atoi(argv[i + 1]), "libsftrace.so", "sf.log", "1") == 0 ? 0 : 1;
    return 2;
}

int main(int argc, char **argv)
{
    return cmd_attach(argc, argv);
}
