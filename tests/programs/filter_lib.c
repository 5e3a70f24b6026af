/*
 * filter_lib.c - an instrumented shared library for the filter tests
 * (t_filter.py): lib_work(x) calls lib_leaf(x) twice.
 */
#define NOINLINE __attribute__((noinline))

static volatile long sink;

NOINLINE long lib_leaf(long x)
{
    sink += x;
    return x + 1;
}

NOINLINE long lib_work(long x)
{
    long r = lib_leaf(x) + lib_leaf(x + 1);
    sink += r;
    return r;
}
