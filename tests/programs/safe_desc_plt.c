/*
 * safe_desc_plt.c - a selected function that tail-calls into a shared
 * library through the PLT (tests/t_safe.py, descendants mode):
 * to_lib(n) ends with `return lib_compute(n);`. main calls to_lib(N), then
 * lib_compute(N) itself (outside any selected function). Prints "n".
 */
#include <stdio.h>

#define N 5

long lib_compute(long n);

__attribute__((noinline)) long to_lib(long n)
{
    __asm__ volatile("");
    return lib_compute(n); /* tail call through the PLT */
}

int main(void)
{
    long r = to_lib(N);
    r += lib_compute(N);
    printf("n %d\nr %ld\n", N, r);
    return 0;
}
