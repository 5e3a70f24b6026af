/*
 * safe_dl_mid.c - a shared library with its own RUNPATH that dlopens a
 * library by bare name (tests/t_safe.py): glibc must search with this
 * library's path, not the executable's (nor libsftrace.so's).
 */
#include <dlfcn.h>
#include <stdio.h>

void *mid_open(const char *name)
{
    void *h = dlopen(name, RTLD_NOW);
    if (!h)
        fprintf(stderr, "mid_open: %s\n", dlerror());
    return h;
}
