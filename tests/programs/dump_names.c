/*
 * dump_names.c - a small XRay-instrumented program whose function names the
 * dump tests (t_dump.py) resolve from synthesized logs.
 */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int alpha(int x)
{
    return x * 3 + 1;
}

__attribute__((noinline)) int beta(int x)
{
    return alpha(x) + alpha(x + 1);
}

__attribute__((noinline)) static int gamma_local(int x)
{
    return beta(x) ^ 0x55;
}

__attribute__((noinline)) int delta_recursive(int n)
{
    return n <= 0 ? 0 : 1 + delta_recursive(n - 1);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3;
    int sum = 0;
    for (int i = 0; i < n; i++)
        sum += gamma_local(i) + delta_recursive(i);
    printf("%d\n", sum);
    return 0;
}
