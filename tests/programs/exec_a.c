/*
 * exec_a.c - makes calls, then replaces itself with another instrumented
 * program (exec_b) from inside two instrumented frames.
 *
 * usage: exec_a PATH_TO_EXEC_B
 * a_outer() is called A_CALLS times, each calling a_inner() once, and a
 * helper thread calls a_helper_work() HELPER_CALLS times and then blocks;
 * nothing has been flushed when execv() runs (the exec ends the helper).
 * Prints "a pid <pid> tid <tid> calls N helper_tid <tid> helper_calls N"
 * (flushed before the exec).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define A_CALLS 30
#define HELPER_CALLS 25

static volatile long sink;
static sem_t helper_ready, never;
static volatile pid_t helper_tid;

__attribute__((noinline)) long a_inner(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

__attribute__((noinline)) long a_helper_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

static void *helper(void *arg)
{
    (void)arg;
    helper_tid = gettid();
    for (long i = 0; i < HELPER_CALLS; i++)
        a_helper_work(i);
    sem_post(&helper_ready);
    for (;;)
        sem_wait(&never);
    return NULL;
}

__attribute__((noinline)) long a_outer(long x)
{
    long r = a_inner(x);
    __asm__ volatile("" : "+r"(r));
    return r + 1;
}

__attribute__((noinline)) void a_exec(const char *path)
{
    char *args[] = {(char *)path, "from-exec-a", NULL};
    execv(path, args);
    perror("execv");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: exec_a PATH_TO_EXEC_B\n");
        return 2;
    }
    pthread_t th;
    sem_init(&helper_ready, 0, 0);
    sem_init(&never, 0, 0);
    pthread_create(&th, NULL, helper, NULL);
    for (long i = 0; i < A_CALLS; i++)
        a_outer(i);
    while (sem_wait(&helper_ready) != 0)
        ;
    printf("a pid %d tid %d calls %d helper_tid %d helper_calls %d\n", getpid(), gettid(), A_CALLS,
           helper_tid, HELPER_CALLS);
    fflush(stdout);
    a_exec(argv[1]);
    return 1;
}
