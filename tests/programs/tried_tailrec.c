/*
 * tried_tailrec.c - the shape of rayon's par_sort (mergesort::recurse ->
 * in_worker -> StackJob::run_inline -> recurse, then a tail jump to
 * par_merge) in C: rec calls run, which calls rec, and every rec ends with
 * a tail jump to merge. Nothing unwinds, but the program imports longjmp
 * (as every C++ and Rust program imports an unwinder), which turns the call
 * engine's unwinding rule on: an entry of merge right after rec's tail
 * call must go beneath run, rec's caller, and end nothing.
 *
 * Output: the sum (the same with and without tracing).
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

volatile long sink;
static jmp_buf jb;

__attribute__((noinline)) void merge(int n)
{
    sink += n;
}

void rec(int n);

__attribute__((noinline)) void run(int n)
{
    rec(n);
    sink++; /* not a tail call: run stays on the stack under rec */
}

__attribute__((noinline)) void rec(int n)
{
    if (n > 0)
        run(n - 1);
    merge(n); /* a tail jump */
}

int main(int argc, char **argv)
{
    if (setjmp(jb))
        return 1;
    if (argc > 5)
        longjmp(jb, 1); /* never: only makes the program import longjmp */
    int depth = argc > 1 ? atoi(argv[1]) : 3;
    rec(depth);
    printf("%ld\n", sink);
    return 0;
}
