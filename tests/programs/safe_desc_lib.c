/*
 * safe_desc_lib.c - a shared library that safe_desc_plt.c tail-calls
 * through the PLT (tests/t_safe.py): lib_compute(n) makes n calls of
 * lib_leaf() and returns normally.
 */
static volatile long sink;

__attribute__((noinline)) long lib_leaf(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x + 1;
}

long lib_compute(long n)
{
    long s = 0;
    for (long i = 0; i < n; i++)
        s += lib_leaf(i);
    __asm__ volatile("" : "+r"(s));
    return s;
}
