/*
 * filter_uselib.c - linked against filter_lib.so (t_filter.py): main calls
 * lib_work(i) and main_work(i) CALLS times each. Prints "calls".
 */
#include <stdio.h>

#define NOINLINE __attribute__((noinline))
#define CALLS 40

long lib_work(long x);

static volatile long sink;

NOINLINE long main_work(long x)
{
    sink += x;
    return x * 3;
}

int main(void)
{
    long s = 0;
    for (long i = 0; i < CALLS; i++) {
        s += lib_work(i);
        s += main_work(i);
    }
    sink += s;
    printf("calls %d\n", CALLS);
    return 0;
}
