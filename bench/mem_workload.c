/*
 * mem_workload.c - the workload of bench/memory.sh: N allocation events
 * (argument 1, default 10M) reported through sftrace_alloc_event by two
 * threads, each keeping a ring of RING live blocks (argument 2, default
 * free of the block allocated 65536 allocations earlier), from a few
 * instrumented functions so that the events have call paths.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "sftrace.h"

static volatile int sink;

__attribute__((noinline)) void small_alloc(uintptr_t p, size_t n)
{
    sftrace_alloc_event(1, n, 16, (uint8_t *)p);
    sink++;
}

__attribute__((noinline)) void release(uintptr_t p, size_t n)
{
    sftrace_alloc_event(2, n, 16, (uint8_t *)p);
    sink++;
}

static long per_thread, ring;
static int direct; /* argument 3 = 1: report from work() itself, no call per event */

static void *work(void *arg)
{
    uintptr_t base = (uintptr_t)arg;
    for (long i = 0; i < per_thread / 2; i++) {
        uintptr_t slot = (uintptr_t)(i % ring);
        if (direct) {
            if (i >= ring)
                sftrace_alloc_event(2, 64, 16, (uint8_t *)(base + slot * 64));
            sftrace_alloc_event(1, 64, 16, (uint8_t *)(base + slot * 64));
            continue;
        }
        if (i >= ring)
            release(base + slot * 64, 64);
        small_alloc(base + slot * 64, 64);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    ring = argc > 2 ? atol(argv[2]) : 4096;
    direct = argc > 3 && atoi(argv[3]) == 1;
    per_thread = n / 2;
    pthread_t t;
    pthread_create(&t, NULL, work, (void *)(uintptr_t)0x10000000);
    work((void *)(uintptr_t)0x80000000);
    pthread_join(t, NULL);
    return 0;
}
