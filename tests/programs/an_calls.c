/*
 * an_calls.c - a program of known call structure for report, graph and flame.
 *
 * main calls top() ROUNDS times. Each top() makes:
 *   mid(3), mid(2)          -> 5 leaf() calls beneath mid
 *   rec(RDEPTH)             -> RDEPTH+1 nested rec() calls, the innermost calls leaf()
 *   tail_a(i)               -> tail_a leaves by a tail call to tail_b, which calls leaf()
 *   ping(PDEPTH)            -> ping/pong mutual recursion, PDEPTH+1 calls in all
 * and, every other round, slow() (which spins) so that times differ.
 * With an argument "threads", two threads named "an-w0" and "an-w1" also run
 * top() ROUNDS times each. Prints "rounds N", "rdepth N", "pdepth N".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ROUNDS 10
#define RDEPTH 4
#define PDEPTH 5

static volatile long sink;

__attribute__((noinline)) void leaf(void)
{
    sink++;
}

__attribute__((noinline)) void mid(int n)
{
    for (int i = 0; i < n; i++)
        leaf();
    __asm__ volatile("");
}

__attribute__((noinline)) int rec(int n)
{
    if (n == 0) {
        leaf();
        return 0;
    }
    int r = rec(n - 1);
    __asm__ volatile("" : "+r"(r));
    return r + 1;
}

__attribute__((noinline)) long tail_b(long x)
{
    leaf();
    __asm__ volatile("" : "+r"(x));
    return x * 3;
}

__attribute__((noinline)) long tail_a(long x)
{
    sink += x;
    return tail_b(x + 1); /* tail call */
}

__attribute__((noinline)) int pong(int n);

__attribute__((noinline)) int ping(int n)
{
    if (n == 0)
        return 0;
    int r = pong(n - 1);
    __asm__ volatile("" : "+r"(r));
    return r + 1;
}

__attribute__((noinline)) int pong(int n)
{
    if (n == 0)
        return 0;
    int r = ping(n - 1);
    __asm__ volatile("" : "+r"(r));
    return r + 1;
}

__attribute__((noinline)) void slow(void)
{
    for (int i = 0; i < 20000; i++)
        __asm__ volatile("");
}

__attribute__((noinline)) void top(int i)
{
    mid(3);
    mid(2);
    rec(RDEPTH);
    tail_a(i);
    ping(PDEPTH);
    if (i % 2)
        slow();
}

static void *worker(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "an-w%d", (int)(long)arg);
    pthread_setname_np(pthread_self(), name);
    for (int i = 0; i < ROUNDS; i++)
        top(i);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t th[2];
    int threads = argc > 1 && !strcmp(argv[1], "threads");
    if (threads)
        for (long i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, worker, (void *)i);
    for (int i = 0; i < ROUNDS; i++)
        top(i);
    if (threads)
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
    printf("rounds %d\nrdepth %d\npdepth %d\n", ROUNDS, RDEPTH, PDEPTH);
    return 0;
}
