/*
 * fork.c - parent and child each make a known number of calls.
 *
 * Before fork, main makes BEFORE_CALLS calls of before_fork(), and a helper
 * thread makes HELPER_CALLS calls of helper_work() and then waits; neither
 * has been flushed when fork() runs (the buffers are far from full). The
 * child calls child_work() CHILD_CALLS times and exits; the parent calls
 * parent_work() PARENT_CALLS times, releases the helper (which then calls
 * helper_work() HELPER_AFTER more times), joins it and waits for the child.
 * The child prints "child pid <pid> ppid <ppid> tid <tid>" and flushes before
 * exiting; the parent prints the rest after the child has finished.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define BEFORE_CALLS 77
#define HELPER_CALLS 40
#define HELPER_AFTER 9
#define CHILD_CALLS 33
#define PARENT_CALLS 55

static sem_t helper_ready, helper_go;
static volatile pid_t helper_tid;
static volatile long sink;

__attribute__((noinline)) long before_fork(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}
__attribute__((noinline)) long helper_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}
__attribute__((noinline)) long child_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}
__attribute__((noinline)) long parent_work(long x)
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
        helper_work(i);
    sem_post(&helper_ready);
    while (sem_wait(&helper_go) != 0)
        ;
    for (long i = 0; i < HELPER_AFTER; i++)
        helper_work(i);
    return NULL;
}

int main(void)
{
    pthread_t th;
    sem_init(&helper_ready, 0, 0);
    sem_init(&helper_go, 0, 0);
    pthread_create(&th, NULL, helper, NULL);
    for (long i = 0; i < BEFORE_CALLS; i++)
        before_fork(i);
    while (sem_wait(&helper_ready) != 0)
        ;
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        for (long i = 0; i < CHILD_CALLS; i++)
            child_work(i);
        printf("child pid %d ppid %d tid %d\n", getpid(), getppid(), gettid());
        fflush(stdout);
        exit(0);
    }
    for (long i = 0; i < PARENT_CALLS; i++)
        parent_work(i);
    sem_post(&helper_go);
    pthread_join(th, NULL);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child failed: status %#x\n", status);
        return 1;
    }
    printf("parent pid %d tid %d child %d helper_tid %d\n", getpid(), gettid(), child, helper_tid);
    printf("before_calls %d helper_calls %d helper_after %d child_calls %d parent_calls %d\n",
           BEFORE_CALLS, HELPER_CALLS, HELPER_AFTER, CHILD_CALLS, PARENT_CALLS);
    return 0;
}
