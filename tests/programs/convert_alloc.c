/*
 * convert_alloc.c - allocation events for t_convert.py's heap counter test.
 *
 * main reports (through sftrace_alloc_event, as an instrumented allocator
 * would) ALLOCS allocations of 100, 200, ... bytes, then frees every other
 * one, then a realloc of the last block from its size to 5000 bytes (the old
 * block freed, the new one allocated); a second thread allocates 64 bytes
 * THREAD_ALLOCS times (or argument 1 times) after main is done. Each report happens inside
 * note_alloc(), an instrumented function. Prints "pid", "tid",
 * "heap_main" (main's net bytes) and "heap_total" (the process's).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sftrace.h"

#define ALLOCS 40
#define THREAD_ALLOCS 25

__attribute__((noinline)) void note_alloc(uint8_t kind, size_t size, uintptr_t ptr)
{
    sftrace_alloc_event(kind, size, 16, (uint8_t *)ptr);
}

static long thread_allocs = THREAD_ALLOCS;

static void *thread_main(void *arg)
{
    (void)arg;
    for (long i = 0; i < thread_allocs; i++)
        note_alloc(1, 64, 0x200000 + 64 * (uintptr_t)i);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        thread_allocs = strtol(argv[1], NULL, 10);
    long heap = 0;
    for (int i = 0; i < ALLOCS; i++) {
        note_alloc(1, 100 * (size_t)(i + 1), 0x100000 + 0x1000 * (uintptr_t)i);
        heap += 100 * (i + 1);
    }
    for (int i = 0; i < ALLOCS; i += 2) {
        note_alloc(2, 100 * (size_t)(i + 1), 0x100000 + 0x1000 * (uintptr_t)i);
        heap -= 100 * (i + 1);
    }
    note_alloc(4, 100 * ALLOCS, 0x100000 + 0x1000 * (ALLOCS - 1));
    note_alloc(3, 5000, 0x900000);
    heap += 5000 - 100 * ALLOCS;
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    printf("pid %d\ntid %d\nheap_main %ld\nheap_total %ld\n", getpid(), gettid(), heap,
           heap + 64L * thread_allocs);
    return 0;
}
