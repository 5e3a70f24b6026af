/* an_twoobj_lib.c - the shared object of t_report_objs.py's program. */
#include "an_twoobj.h"

static __attribute__((noinline)) int lib_leaf(int x)
{
    __asm__ volatile("");
    return twice(x) + 1;
}

/* n calls of lib_leaf, each calling twice */
int lib_work(int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += lib_leaf(i);
    return s;
}
