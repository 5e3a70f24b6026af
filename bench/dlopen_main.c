/* dlopen_main.c - time one dlopen(argv[1], RTLD_NOW) with CLOCK_MONOTONIC
 * and print "dlopen_ns=N". Not instrumented itself: under `sftrace record`
 * the runtime finds the object's sleds inside dlopen and patches them
 * before dlopen returns, so the difference to an untraced run is the cost
 * of patching it. */
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: dlopen_main OBJECT.so\n");
        return 2;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    void *h = dlopen(argv[1], RTLD_NOW);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    printf("dlopen_ns=%lld\n",
           (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
    return 0;
}
