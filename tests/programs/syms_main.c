/* syms_main.c - the first compile unit of the C program of t_syms.py. */
#include <stdio.h>

#include "syms.h"

__attribute__((noinline)) static int
syms_leaf(int x)
{ // @syms_leaf
    return x * 7 + 1;
}

__attribute__((noinline)) int syms_mid(int x) { return syms_leaf(x) + 2; } // @syms_mid

int
main(int argc,
     char **argv)
{ // @main
    (void)argv;
    printf("%d\n", syms_mid(argc) + syms_lib_run(argc) + syms_hdr_twice(argc));
    return 0;
}
