/*
 * tailcall.c - functions that leave through a tail call (`jmp`), which clang
 * -O2 emits with an XRay tail-call sled in front of the jump.
 *
 * Per round (ROUNDS rounds):
 *   top() calls mid(); mid() tail-calls leaf()            -> mid: 1 tailcall
 *   is_even(PARITY_N) tail-calls is_odd/is_even alternately down to 0:
 *     PARITY_N+1 entries, PARITY_N tailcalls, 1 exit
 *   to_libc() tail-calls getpid(), which is not instrumented
 * Prints "pid", "tid", "rounds", "parity_n", and the results.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ROUNDS 500
#define PARITY_N 9

static volatile long sink;

__attribute__((noinline)) long leaf(long x)
{
    __asm__ volatile("" : "+r"(x));
    return x * 7 + 3;
}

__attribute__((noinline)) long mid(long x)
{
    sink += x;
    return leaf(x + 1); /* tail call */
}

__attribute__((noinline)) long top(long x)
{
    long r = mid(x);
    __asm__ volatile("" : "+r"(r));
    return r + 1;
}

__attribute__((noinline)) int is_odd(unsigned n);

__attribute__((noinline)) int is_even(unsigned n)
{
    sink++;
    if (n == 0)
        return 1;
    return is_odd(n - 1); /* tail call */
}

__attribute__((noinline)) int is_odd(unsigned n)
{
    sink++;
    if (n == 0)
        return 0;
    return is_even(n - 1); /* tail call */
}

__attribute__((noinline)) pid_t to_libc(void)
{
    sink++;
    return getpid(); /* tail call into uninstrumented code */
}

int main(void)
{
    long acc = 0;
    int even = 0;
    pid_t p = 0;
    for (int i = 0; i < ROUNDS; i++) {
        acc += top(i);
        even += is_even(PARITY_N);
        p = to_libc();
    }
    printf("pid %d\n", getpid());
    printf("tid %d\n", gettid());
    printf("rounds %d\n", ROUNDS);
    printf("parity_n %d\n", PARITY_N);
    printf("acc %ld even %d to_libc %d\n", acc, even, p == getpid());
    return 0;
}
