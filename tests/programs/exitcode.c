/*
 * exitcode.c - end with a chosen exit status.
 *
 * usage: exitcode [return|exit|thread] [STATUS]   (defaults: return 42)
 * First calls status_work() WORK_CALLS times from main, then:
 *   return  main returns STATUS
 *   exit    leave() calls exit(STATUS) from inside an instrumented frame
 *   thread  a second thread calls thread_work() THREAD_CALLS times and then
 *           exit(STATUS) while main waits in pthread_join
 * Prints "pid", "tid", "work_calls", and for thread "thread_tid",
 * "thread_calls", flushed before the end.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORK_CALLS 10
#define THREAD_CALLS 17

static volatile long sink;
static int status = 42;

__attribute__((noinline)) long status_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}
__attribute__((noinline)) long thread_work(long x)
{
    sink -= x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

__attribute__((noinline)) void leave(int st)
{
    fflush(stdout);
    exit(st);
}

static void *thread_main(void *arg)
{
    (void)arg;
    for (long i = 0; i < THREAD_CALLS; i++)
        thread_work(i);
    printf("thread_tid %d\nthread_calls %d\n", gettid(), THREAD_CALLS);
    leave(status);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "return";
    if (argc > 2)
        status = atoi(argv[2]);
    for (long i = 0; i < WORK_CALLS; i++)
        status_work(i);
    printf("pid %d\ntid %d\nwork_calls %d\n", getpid(), gettid(), WORK_CALLS);
    if (!strcmp(how, "exit"))
        leave(status);
    if (!strcmp(how, "thread")) {
        pthread_t th;
        pthread_create(&th, NULL, thread_main, NULL);
        pthread_join(th, NULL);
        return 1; /* not reached */
    }
    return status;
}
