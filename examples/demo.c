/*
 * demo.c - the example `make demo` records: a small multi-threaded program
 * with recursion, a worker pool and named threads.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>

__attribute__((noinline)) static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__attribute__((noinline)) static long square(long x)
{
    __asm__ volatile("");
    return x * x;
}

__attribute__((noinline)) static long sum_squares(int n)
{
    long s = 0;
    for (int i = 0; i < n; i++)
        s += square(i);
    return s;
}

static void *worker(void *arg)
{
    long id = (long)arg;
    char name[16];
    snprintf(name, sizeof name, "worker-%ld", id);
    pthread_setname_np(pthread_self(), name);
    long r = 0;
    for (int i = 0; i < 50; i++)
        r += sum_squares(100 + (int)id);
    return (void *)r;
}

int main(void)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    long f = fib(18);
    long total = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("fib(18) = %ld, sum of squares = %ld\n", f, total);
    return 0;
}
