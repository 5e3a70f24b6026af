/* tried_shortjmp.c - postgres's fmgr_info: a function whose last act is a
 * call of the function placed right after it, which clang makes a short
 * tail jump (eb rel8) right after the tail sled. The program imports
 * longjmp (as postgres does), so the engine's unwinding rule is on, and
 * main calls next_fn directly too: an entry of next_fn beneath outer()
 * must be read as outer's callee's tail jump, not as outer left by a
 * longjmp. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

static jmp_buf jb;
volatile long sink;

__attribute__((noinline)) static void next_fn(long x);

__attribute__((noinline)) void jumper(long x)
{
    sink += x;
    next_fn(x + 1);
}

__attribute__((noinline)) static void next_fn(long x)
{
    sink += x * 2;
}

__attribute__((noinline)) void outer(long x)
{
    jumper(x);
    sink++;
}

int main(int argc, char **argv)
{
    if (setjmp(jb))
        return 1;
    if (argc > 5)
        longjmp(jb, 1);
    int n = argc > 1 ? atoi(argv[1]) : 3;
    for (int i = 0; i < n; i++) {
        outer(i);
        next_fn(i);
    }
    printf("%ld\n", sink);
    return 0;
}
