/*
 * dlopen.c - loads an instrumented shared object with dlopen, calls into it,
 * closes it, and calls instrumented code of its own afterwards.
 *
 * usage: dlopen PLUGIN.so [PLUGIN2.so]
 * Round 1: dlopen PLUGIN, plugin_work() FIRST_CALLS times, dlclose.
 * Round 2: dlopen PLUGIN2 (or PLUGIN again), plugin_work() SECOND_CALLS
 * times, dlclose. Then after_close() AFTER_CALLS times. plugin.c's
 * plugin_work() makes two plugin_helper() calls, plugin_b.c's two b_helper()
 * calls. Prints the counts, whether each dlclose really
 * unloaded the object ("unloaded 1"), and pid/tid.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FIRST_CALLS 100
#define SECOND_CALLS 30
#define AFTER_CALLS 50

static volatile long sink;

__attribute__((noinline)) long after_close(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

__attribute__((noinline)) long run_plugin(const char *path, int calls, int round)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        exit(2);
    }
    long (*work)(long) = (long (*)(long))dlsym(h, "plugin_work");
    if (!work) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        exit(2);
    }
    long acc = 0;
    for (int i = 0; i < calls; i++)
        acc += work(i);
    if (dlclose(h) != 0) {
        fprintf(stderr, "dlclose: %s\n", dlerror());
        exit(2);
    }
    void *again = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    printf("round %d calls %d acc %ld unloaded %d work %p\n", round, calls, acc, again == NULL,
           (void *)work);
    if (again)
        dlclose(again);
    return acc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: dlopen PLUGIN.so [PLUGIN2.so]\n");
        return 2;
    }
    run_plugin(argv[1], FIRST_CALLS, 1);
    run_plugin(argc > 2 ? argv[2] : argv[1], SECOND_CALLS, 2);
    for (int i = 0; i < AFTER_CALLS; i++)
        after_close(i);
    printf("after_calls %d\n", AFTER_CALLS);
    printf("pid %d\n", getpid());
    printf("tid %d\n", gettid());
    return 0;
}
