/*
 * filter_calls.c - a known call tree for the filter tests (t_filter.py).
 *
 * With N = argv[1] (default 5) and the worker thread's W = 7 calls:
 *   main -> outer(N) -> worker thread started and joined inside outer:
 *                         worker -> leaf x W            (another thread)
 *                    -> inner_a x N -> leaf
 *                    -> inner_b     -> leaf x 2
 *                    -> rec(3) -> rec(2) -> rec(1) -> rec(0) -> leaf
 *        -> other(N) -> leaf x N
 *                    -> inner_b     -> leaf x 2
 *                    -> rec(3) -> ... -> rec(0) -> leaf
 * Every function is noinline and does work after its calls, and the tests
 * build it with -fno-optimize-sibling-calls: no tail calls. VARIANT (a -D
 * define, default 0) changes the code, hence the build-id, for the stale
 * filter test. Prints "pid", "tid", "worker_tid", "n", "variant", "sum".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef VARIANT
#define VARIANT 0
#endif

#define NOINLINE __attribute__((noinline))
#define W 7

static volatile long sink;
static int worker_tid;

NOINLINE long leaf(long x)
{
    sink += x + VARIANT;
    return x + 1;
}

NOINLINE void *worker(void *arg)
{
    worker_tid = gettid();
    long s = 0;
    for (long i = 0; i < W; i++)
        s += leaf(i);
    sink += s;
    return arg;
}

NOINLINE long inner_a(long i)
{
    long r = leaf(i);
    sink += r;
    return r;
}

NOINLINE long inner_b(long n)
{
    long r = leaf(n) + leaf(n + 1);
    sink += r;
    return r;
}

NOINLINE long rec(long d)
{
    long r = d ? rec(d - 1) : leaf(d);
    sink += r;
    return r + 1;
}

NOINLINE long outer(long n)
{
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL)) {
        perror("pthread_create");
        exit(1);
    }
    long s = 0;
    for (long i = 0; i < n; i++)
        s += inner_a(i);
    s += inner_b(n);
    s += rec(3);
    pthread_join(t, NULL);
    sink += s;
    return s;
}

NOINLINE long other(long n)
{
    long s = 0;
    for (long i = 0; i < n; i++)
        s += leaf(i);
    s += inner_b(n);
    s += rec(3);
    sink += s;
    return s;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 5;
    long sum = outer(n) + other(n);
    printf("pid %d\ntid %d\nworker_tid %d\nn %ld\nvariant %d\nsum %ld\n", getpid(), gettid(),
           worker_tid, n, VARIANT, sum);
    return 0;
}
