/*
 * abi_thread_only.c - NTHREADS threads run the same functions; only thread
 * SETUP_THREAD calls sftrace_setup() (with slots defined here, not through
 * SFTRACE_SETUP_HERE()), before any thread starts working. Run with
 * SFTRACE_SETUP_THREAD_ONLY=1, the trace must hold that thread's calls only.
 *
 * Thread t calls run(t) once, which calls work() 10 + t times; work() calls
 * leaf() twice. The main thread calls work() MAIN_WORK times after joining.
 * Prints each thread's tid and the setup thread's.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sftrace.h"

#define NTHREADS 4
#define SETUP_THREAD 2
#define MAIN_WORK 7
#define NOINLINE __attribute__((noinline))

/* Our own slots: 16 bytes each, 16-byte aligned, in this executable. */
__asm__(".pushsection .text.abi_slots,\"ax\",@progbits\n\t"
        ".p2align 4\n"
        "abi_slot_entry:\n\tret\n\t.fill 15,1,0x90\n"
        "abi_slot_exit:\n\tret\n\t.fill 15,1,0x90\n"
        "abi_slot_tail:\n\tret\n\t.fill 15,1,0x90\n\t"
        ".popsection");
void abi_slot_entry(void) __asm__("abi_slot_entry");
void abi_slot_exit(void) __asm__("abi_slot_exit");
void abi_slot_tail(void) __asm__("abi_slot_tail");

static pthread_barrier_t ready;
static volatile long sink;
static long tids[NTHREADS];

NOINLINE long leaf(long x)
{
    sink += x;
    return x + 1;
}

NOINLINE long work(long x)
{
    return leaf(x) + leaf(x * 2);
}

NOINLINE long run(long t)
{
    long s = 0;
    for (long i = 0; i < 10 + t; i++)
        s += work(i);
    return s;
}

static void *thread(void *arg)
{
    long t = (long)arg;
    tids[t] = syscall(SYS_gettid);
    if (t == SETUP_THREAD) {
        sftrace_setup(abi_slot_entry, abi_slot_exit, abi_slot_tail);
        sftrace_setup(abi_slot_entry, abi_slot_exit, abi_slot_tail); /* twice: harmless */
    }
    pthread_barrier_wait(&ready); /* nobody works before setup */
    sink += run(t);
    return NULL;
}

int main(void)
{
    pthread_t th[NTHREADS];
    pthread_barrier_init(&ready, NULL, NTHREADS);
    for (long t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, thread, (void *)t);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    for (long i = 0; i < MAIN_WORK; i++)
        sink += work(i);
    for (int t = 0; t < NTHREADS; t++)
        printf("thread %d tid %ld\n", t, tids[t]);
    printf("setup_thread %d tid %ld\n", SETUP_THREAD, tids[SETUP_THREAD]);
    printf("pid %ld\n", (long)getpid());
    return 0;
}
