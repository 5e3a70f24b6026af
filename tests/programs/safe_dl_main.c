/*
 * safe_dl_main.c - dlopen by bare name, resolved through the caller's
 * RUNPATH/RPATH (tests/t_safe.py builds it with several rpaths).
 *
 *   safe_dl_main open NAME     dlopen(NAME) from the executable
 *   safe_dl_main mopen NAME    dlmopen(LM_ID_NEWLM, NAME) from the executable
 *   safe_dl_main mid NAME      mid_open(NAME): dlopen from libsafe_dl_mid.so
 *   safe_dl_main both NAME     mid_open(NAME), then dlopen(NAME) from the
 *                              executable: glibc returns the loaded object
 * After a successful open it calls dep_work() CALLS times and prints
 * "tag N" (the DEP_TAG of the copy found) and "calls N"; a failed open
 * prints dlerror() and exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define CALLS 25

#ifdef WITH_MID
void *mid_open(const char *name);
#endif

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    void *h = NULL;
    if (!strcmp(argv[1], "open"))
        h = dlopen(argv[2], RTLD_NOW);
    else if (!strcmp(argv[1], "mopen"))
        h = dlmopen(LM_ID_NEWLM, argv[2], RTLD_NOW);
#ifdef WITH_MID
    else if (!strcmp(argv[1], "mid"))
        h = mid_open(argv[2]);
    else if (!strcmp(argv[1], "both") && mid_open(argv[2]))
        h = dlopen(argv[2], RTLD_NOW); /* the loaded one wins over our own path */
#endif
    if (!h) {
        printf("error %s\n", dlerror());
        return 1;
    }
    long (*work)(long) = (long (*)(long))dlsym(h, "dep_work");
    int (*tag)(void) = (int (*)(void))dlsym(h, "dep_tag");
    if (!work || !tag) {
        printf("error %s\n", dlerror());
        return 1;
    }
    long s = 0;
    for (long i = 0; i < CALLS; i++)
        s += work(i);
    printf("tag %d\ncalls %d\nsum %ld\n", tag(), CALLS, s);
    return 0;
}
