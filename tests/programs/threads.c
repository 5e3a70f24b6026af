/*
 * threads.c - five worker threads plus main, each making a different, known
 * number of instrumented calls at the same time.
 *
 * Thread i calls worker() CALLS(i) times; every worker() call makes one
 * work_leaf() call. Threads 0..3 name themselves "work-<i>" before working;
 * thread 4 names itself "late-4" only after half of its calls. Main calls
 * worker() MAIN_CALLS times while the others run. After joining, main prints
 * one line per thread: "thread <i> tid <tid> calls <n> name <name>", then
 * "main tid <tid> calls <n>" and "pid <pid>".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NTHREADS 5
#define CALLS(i) (4000 * ((i) + 1) + (i))
#define MAIN_CALLS 3333

static pthread_barrier_t start;

struct result {
    int index;
    pid_t tid;
    long calls;
    char name[16];
};

__attribute__((noinline)) long work_leaf(long x)
{
    __asm__ volatile("" : "+r"(x));
    return x * 3 + 1;
}

__attribute__((noinline)) long worker(long x)
{
    long r = work_leaf(x);
    __asm__ volatile("" : "+r"(r));
    return r ^ x;
}

static void *thread_main(void *arg)
{
    struct result *res = arg;
    char name[16];
    long n = CALLS(res->index);
    long acc = 0;

    res->tid = gettid();
    if (res->index < 4) {
        snprintf(name, sizeof name, "work-%d", res->index);
        pthread_setname_np(pthread_self(), name);
    }
    pthread_barrier_wait(&start);
    for (long i = 0; i < n; i++) {
        if (res->index == 4 && i == n / 2) {
            snprintf(name, sizeof name, "late-%d", res->index);
            pthread_setname_np(pthread_self(), name);
        }
        acc += worker(i);
        res->calls++;
    }
    pthread_getname_np(pthread_self(), res->name, sizeof res->name);
    return (void *)acc;
}

int main(void)
{
    pthread_t th[NTHREADS];
    struct result res[NTHREADS];
    long main_calls = 0;

    pthread_barrier_init(&start, NULL, NTHREADS + 1);
    for (int i = 0; i < NTHREADS; i++) {
        memset(&res[i], 0, sizeof res[i]);
        res[i].index = i;
        if (pthread_create(&th[i], NULL, thread_main, &res[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    pthread_barrier_wait(&start);
    for (long i = 0; i < MAIN_CALLS; i++) {
        worker(i);
        main_calls++;
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        printf("thread %d tid %d calls %ld name %s\n", res[i].index, res[i].tid, res[i].calls,
               res[i].name);
    printf("main tid %d calls %ld\n", gettid(), main_calls);
    printf("pid %d\n", getpid());
    return 0;
}
