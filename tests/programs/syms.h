/* syms.h - shared by syms_main.c and syms_lib.c (t_syms.py). A static
 * function in a header gets one copy per compile unit that calls it; both
 * must name this file and its line. */
#ifndef SYMS_H
#define SYMS_H

static __attribute__((noinline)) int
syms_hdr_twice(int x) // @syms_hdr_twice
{
    return 2 * x;
}

int syms_lib_add(int a, int b);
int syms_lib_run(int x);

#endif
