/*
 * running_at_exit.c - threads that are still alive when main returns.
 *
 * "blocker" makes BLOCK_CALLS calls of blocked_work(), then tells main and
 * blocks forever inside blocker_wait() (entered, never left).
 * "spinner" calls spin_step() in an endless loop; main waits until it has
 * made at least SPIN_MIN calls, then prints how many it had made at that
 * moment ("spin_seen N", a lower bound for what the log must hold) and
 * returns from main while both threads are still running.
 * Prints "pid", "main_tid", "blocker_tid", "spinner_tid", "block_calls".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <unistd.h>

#define BLOCK_CALLS 1234
#define SPIN_MIN 20000

static sem_t blocker_done, never;
static volatile long spin_count;
static volatile pid_t blocker_tid, spinner_tid;
static volatile long sink;

__attribute__((noinline)) long blocked_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

__attribute__((noinline)) void blocker_wait(void)
{
    sem_post(&blocker_done);
    for (;;)
        sem_wait(&never);
}

__attribute__((noinline)) void spin_step(void)
{
    spin_count++; /* counted inside the function: N means N entries happened */
    __asm__ volatile("" ::: "memory");
}

static void *blocker(void *arg)
{
    (void)arg;
    blocker_tid = gettid();
    for (long i = 0; i < BLOCK_CALLS; i++)
        blocked_work(i);
    blocker_wait();
    return NULL;
}

static void *spinner(void *arg)
{
    (void)arg;
    spinner_tid = gettid();
    for (;;)
        spin_step();
    return NULL;
}

int main(void)
{
    pthread_t a, b;
    sem_init(&blocker_done, 0, 0);
    sem_init(&never, 0, 0);
    pthread_create(&a, NULL, blocker, NULL);
    pthread_create(&b, NULL, spinner, NULL);
    while (sem_wait(&blocker_done) != 0)
        ;
    while (spin_count < SPIN_MIN)
        sched_yield();
    long seen = spin_count;
    printf("pid %d\n", getpid());
    printf("main_tid %d\n", gettid());
    printf("blocker_tid %d\n", blocker_tid);
    printf("spinner_tid %d\n", spinner_tid);
    printf("block_calls %d\n", BLOCK_CALLS);
    printf("spin_seen %ld\n", seen);
    fflush(stdout);
    return 0;
}
