/* tinyprog.c - the smallest instrumented program: a few calls, then exit.
 * Built with XRay sleds; its start and exit under `sftrace record` are
 * what bench/startup.py measures for an instrumented process. */
#include <stdio.h>

__attribute__((noinline)) int leaf(int i)
{
    return i * 3 + 1;
}

__attribute__((noinline)) int work(int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += leaf(i);
    return s;
}

int main(void)
{
    return work(10) == 145 ? 0 : 1;
}
