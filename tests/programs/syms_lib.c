/* syms_lib.c - the second compile unit of the C program of t_syms.py (also
 * built alone as a shared object). Declarations span lines, so a
 * declaration line (the name's) differs from the brace and body lines. */
#include "syms.h"

int syms_lib_add(int a,
                 int b)
{ // @syms_lib_add
    return a + syms_hdr_twice(b);
}

static __attribute__((noinline)) int
syms_lib_static(int x)
{ // @syms_lib_static
    int s = 0;
    for (int i = 0; i < x; i++)
        s += syms_lib_add(i, x);
    return s;
}

int syms_lib_run(int x)
{ // @syms_lib_run
    return syms_lib_static(x) + syms_hdr_twice(x);
}
