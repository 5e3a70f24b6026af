/*
 * mem_many.c - long allocation patterns for tests/t_memory.py (the heap
 * model's queue and its memory bound), reported through sftrace_alloc_event
 * at made-up addresses so every figure is known.
 *
 *   mem_many lone N   one thread, one call (churn) makes N allocations in a
 *                     ring of RING blocks: before allocation i (i >= RING)
 *                     it frees allocation i - RING, which had the same
 *                     address; sizes SIZE(i). Many allocation events in
 *                     few calls (the heap model is the busy side), and, as
 *                     the only thread, one long run of events.
 *   mem_many calls N  N calls of step(); every EVERY-th call (k = 0, EVERY,
 *                     ...) allocates in rare_alloc(), freeing the block of
 *                     RARE_RING rare allocations before: few allocation
 *                     events in many calls (the log's reader is).
 *   mem_many two N    main and a second thread (thread_main) each run churn
 *                     over N allocations at their own addresses.
 * At exit the last RING (RARE_RING) blocks of each ring are live (leaked).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sftrace.h"

#define RING 1024
#define SIZE(i) (16 + ((i) % 13) * 8)
#define EVERY 64
#define RARE_RING 16

static volatile long sink;

__attribute__((noinline)) void churn(uintptr_t base, long n)
{
    for (long i = 0; i < n; i++) {
        uintptr_t a = base + (uintptr_t)(i % RING) * 256;
        if (i >= RING)
            sftrace_alloc_event(2, SIZE(i - RING), 16, (void *)a);
        sftrace_alloc_event(1, SIZE(i), 16, (void *)a);
    }
}

__attribute__((noinline)) void rare_alloc(long j)
{
    uintptr_t a = 0x40000000 + (uintptr_t)(j % RARE_RING) * 4096;
    if (j >= RARE_RING)
        sftrace_alloc_event(2, SIZE(j - RARE_RING), 16, (void *)a);
    sftrace_alloc_event(1, SIZE(j), 16, (void *)a);
    sink++; /* no tail call: the events are rare_alloc's */
}

__attribute__((noinline)) void step(long k)
{
    if (k % EVERY == 0)
        rare_alloc(k / EVERY);
    sink += k;
}

static long n_each;

static void *thread_main(void *arg)
{
    churn((uintptr_t)arg, n_each);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mem_many lone|calls|two N\n");
        return 2;
    }
    long n = atol(argv[2]);
    if (!strcmp(argv[1], "lone")) {
        churn(0x10000000, n);
    } else if (!strcmp(argv[1], "calls")) {
        for (long k = 0; k < n; k++)
            step(k);
    } else if (!strcmp(argv[1], "two")) {
        pthread_t t;
        n_each = n;
        if (pthread_create(&t, NULL, thread_main, (void *)(uintptr_t)0x20000000))
            return 1;
        churn(0x10000000, n);
        pthread_join(t, NULL);
    } else {
        return 2;
    }
    printf("done\n");
    return 0;
}
