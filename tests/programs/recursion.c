/*
 * recursion.c - deep and wide recursion with exact, printed call counts.
 *
 * usage: recursion [N [DEPTH]]   (defaults 20 and 3000)
 * fib(N) makes 2*F(N+1)-1 calls (21891 for N=20); descend(DEPTH) nests
 * DEPTH+1 frames. The asm barriers stop clang from turning either function
 * into a loop, so every call is a real call with its own entry and exit.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile long fib_calls;
static volatile long descend_calls;

__attribute__((noinline)) long fib(int n)
{
    fib_calls++;
    if (n < 2)
        return n;
    long a = fib(n - 1);
    long b = fib(n - 2);
    __asm__ volatile("" : "+r"(a));
    return a + b;
}

__attribute__((noinline)) long descend(int depth)
{
    descend_calls++;
    if (depth == 0)
        return 0;
    long r = descend(depth - 1);
    __asm__ volatile("" : "+r"(r));
    return r + 1;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20;
    int depth = argc > 2 ? atoi(argv[2]) : 3000;
    long f = fib(n);
    long d = descend(depth);
    printf("pid %d\n", getpid());
    printf("tid %d\n", gettid());
    printf("fib %d = %ld\n", n, f);
    printf("fib_calls %ld\n", fib_calls);
    printf("descend %d = %ld\n", depth, d);
    printf("descend_calls %ld\n", descend_calls);
    return 0;
}
