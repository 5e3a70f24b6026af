/*
 * mem_stages.c - a known allocation pattern for tests/t_memory.py, reported
 * through sftrace_alloc_event (as an instrumented allocator would) at made-up
 * addresses, so every figure of `sftrace memory` is known exactly.
 *
 * Stages (milestones: the entries of stage_a, stage_b, stage_c):
 *   stage_a: alloc_a allocates 1000, 2000, 3000 bytes (A1, A2, A3); free A1.
 *   stage_b: grow_b reallocs A2 from 2000 to 8000 bytes at a new address;
 *            leak_b allocates 500 (never freed); a worker thread allocates
 *            700 in worker_alloc, which main frees after the join (a free
 *            across threads); free A3.
 *   stage_c: temp_c allocates 4096 and frees it (the peak, 12596 bytes, is
 *            reached in between); leak_c allocates 100 (never freed); then
 *            a free of an unknown block (64 bytes), a double free of A1 and
 *            a realloc of an unknown block (32 -> 48 bytes).
 * With argument "bad" main also frees address 0 (ignored) and allocates at
 * a live address, and a realloc's new block without its old one. With
 * argument "fork" a forked child (child_work) allocates 300 bytes and frees
 * A2's new address: a block of its parent's heap, unknown in its own.
 * At exit: 8648 bytes live in 4 blocks: A2 (8000, alloc_a's), leak_b 500,
 * leak_c 100, the unknown realloc's 48 (bad_c's).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sftrace.h"

#define A1 0x10000
#define A2 0x20000
#define A3 0x30000
#define B1 0x40000
#define L1 0x50000
#define W1 0x60000
#define C1 0x70000
#define L2 0x80000
#define U1 0xdead0000
#define U2 0xbeef0000
#define U3 0xbeef1000

static volatile int sink;

/* Each report is followed by a store, so that the call is not a tail call:
 * the allocation belongs to the function that reports it. */
static inline __attribute__((always_inline)) void ev(uint8_t kind, size_t size, uintptr_t ptr)
{
    sftrace_alloc_event(kind, size, 16, (uint8_t *)ptr);
    sink++;
}

__attribute__((noinline)) void alloc_a(int i)
{
    ev(1, 1000 * (size_t)(i + 1), A1 + 0x10000 * (uintptr_t)i);
}

__attribute__((noinline)) void free_block(uintptr_t p, size_t size)
{
    ev(2, size, p);
}

__attribute__((noinline)) void stage_a(void)
{
    for (int i = 0; i < 3; i++)
        alloc_a(i);
    free_block(A1, 1000);
    sink++;
}

__attribute__((noinline)) void grow_b(void)
{
    ev(4, 2000, A2);
    ev(3, 8000, B1);
}

__attribute__((noinline)) void leak_b(void)
{
    ev(1, 500, L1);
}

__attribute__((noinline)) void worker_alloc(void)
{
    ev(1, 700, W1);
}

__attribute__((noinline)) static void *worker(void *arg)
{
    (void)arg;
    worker_alloc();
    return NULL;
}

__attribute__((noinline)) void stage_b(void)
{
    grow_b();
    leak_b();
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    free_block(W1, 700);
    free_block(A3, 3000);
    sink++;
}

__attribute__((noinline)) void temp_c(void)
{
    ev(1, 4096, C1);
    ev(2, 4096, C1);
}

__attribute__((noinline)) void leak_c(void)
{
    ev(1, 100, L2);
}

__attribute__((noinline)) void bad_c(void)
{
    ev(2, 64, U1);   /* a block never seen */
    ev(2, 1000, A1); /* freed in stage_a already */
    ev(4, 32, U2);   /* realloc of a block never seen */
    ev(3, 48, U3);
}

__attribute__((noinline)) void stage_c(void)
{
    temp_c();
    leak_c();
    bad_c();
    sink++;
}

__attribute__((noinline)) void worse(void)
{
    ev(2, 0, 0);        /* free(NULL) */
    ev(1, 10, L2);      /* L2 is live: a free we did not see */
    ev(3, 20, 0x90000); /* a realloc's new block without its old block */
    sink++;
}

__attribute__((noinline)) void child_work(void)
{
    ev(1, 300, 0xa0000);
    ev(2, 8000, B1);
    sink++;
}

int main(int argc, char **argv)
{
    stage_a();
    stage_b();
    stage_c();
    if (argc > 1 && !strcmp(argv[1], "bad"))
        worse();
    if (argc > 1 && !strcmp(argv[1], "fork")) {
        pid_t pid = fork();
        if (pid == 0) {
            child_work();
            _exit(0);
        }
        waitpid(pid, NULL, 0);
    }
    sink++;
    printf("done\n");
    return 0;
}
