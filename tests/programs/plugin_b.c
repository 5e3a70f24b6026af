/*
 * plugin_b.c - a second instrumented shared object for dlopen.c, laid out
 * differently from plugin.c (other function names, other order, extra
 * functions first), so that a reader that confused the two objects, which
 * are likely to be mapped at the same address one after the other, would
 * print wrong names. plugin_work() calls b_helper() twice.
 */
static volatile long b_sink;

__attribute__((noinline)) long b_pad_one(long x)
{
    b_sink += x;
    return x * 5;
}

__attribute__((noinline)) long b_pad_two(long x)
{
    b_sink -= x;
    return b_pad_one(x) + 2;
}

__attribute__((noinline)) long b_helper(long x)
{
    b_sink ^= x;
    __asm__ volatile("" : "+r"(x));
    return x + 1;
}

__attribute__((noinline)) long plugin_work(long x)
{
    long a = b_helper(x);
    long b = b_helper(a);
    __asm__ volatile("" : "+r"(b));
    return a + b;
}
