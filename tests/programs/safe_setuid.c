/*
 * safe_setuid.c - a program linked with -lsftrace that tests/t_safe.py makes
 * setuid (or setgid): then the runtime must record nothing and open no file
 * the environment names. It makes CALLS calls of work(), prints whether it
 * runs with AT_SECURE and whether SFTRACE_OUTPUT_FILE is still in its
 * environment, and exits with status 3. Not setuid, with only
 * SFTRACE_OUTPUT_FILE set, it records itself (SFTRACE_SETUP_HERE).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>

#include "sftrace.h"

SFTRACE_SETUP_HERE()

#define CALLS 40

static volatile long sink;

__attribute__((noinline)) long work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

int main(void)
{
    long s = 0;
    for (long i = 0; i < CALLS; i++)
        s += work(i);
    printf("sum %ld secure %lu env %s\n", s, getauxval(AT_SECURE),
           getenv("SFTRACE_OUTPUT_FILE") ? "kept" : "dropped");
    return 3;
}
