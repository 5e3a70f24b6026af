/*
 * plugin.c - an instrumented shared object, loaded with dlopen by dlopen.c.
 * plugin_work(x) calls plugin_helper() twice.
 */
static volatile long plugin_sink;

__attribute__((noinline)) long plugin_helper(long x)
{
    plugin_sink += x;
    __asm__ volatile("" : "+r"(x));
    return x + 1;
}

__attribute__((noinline)) long plugin_work(long x)
{
    long a = plugin_helper(x);
    long b = plugin_helper(a);
    __asm__ volatile("" : "+r"(b));
    return a + b;
}
