/*
 * linked.c - calls an instrumented shared library it is linked against
 * (plugin.so, a DT_NEEDED dependency loaded before main, not dlopen'd).
 * main calls plugin_work() CALLS times (each makes two plugin_helper()
 * calls) and local_work() CALLS times. Prints "pid", "tid", "calls", "acc".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

#define CALLS 250

long plugin_work(long x);

static volatile long sink;

__attribute__((noinline)) long local_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

int main(void)
{
    long acc = 0;
    for (long i = 0; i < CALLS; i++)
        acc += plugin_work(i) + local_work(i);
    printf("pid %d\ntid %d\ncalls %d\nacc %ld\n", getpid(), gettid(), CALLS, acc);
    return 0;
}
