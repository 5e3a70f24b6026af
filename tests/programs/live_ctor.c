/*
 * live_ctor.c - plugin.c's functions, and a constructor that calls
 * plugin_work(10) while the object is being dlopen'd (t_live.py: an object
 * loaded while attached is patched before its constructors run).
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

__attribute__((constructor)) static void plugin_ctor(void)
{
    plugin_sink += plugin_work(10);
}
