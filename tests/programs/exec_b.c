/*
 * exec_b.c - the image exec_a replaces itself with. Its functions are laid
 * out unlike exec_a's (padding functions first), so a reader that kept
 * exec_a's function ids after the exec would print wrong names.
 * b_work() is called B_CALLS times. Prints "b pid <pid> tid <tid> calls N arg <argv[1]>".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

#define B_CALLS 20

static volatile long sink;

__attribute__((noinline)) long b_unused_1(long x)
{
    sink += x;
    return x;
}
__attribute__((noinline)) long b_unused_2(long x)
{
    sink -= x;
    return b_unused_1(x) + 1;
}
__attribute__((noinline)) long b_unused_3(long x)
{
    sink ^= x;
    return b_unused_2(x) + 1;
}
__attribute__((noinline)) long b_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

int main(int argc, char **argv)
{
    for (long i = 0; i < B_CALLS; i++)
        b_work(i);
    printf("b pid %d tid %d calls %d arg %s\n", getpid(), gettid(), B_CALLS,
           argc > 1 ? argv[1] : "(none)");
    return 0;
}
