/*
 * safe_dl_dep.c - a library that is only findable through the search path
 * of whoever dlopens it (tests/t_safe.py). dep_work() is instrumented so
 * the test sees that a dlopen'd library is patched and traced.
 * Built with -DDEP_TAG=N so each copy says which directory it came from.
 * Its constructor calls dep_ctor_work() (a place to stop inside dlopen).
 */
#ifndef DEP_TAG
#define DEP_TAG 0
#endif

static volatile long sink;

__attribute__((noinline)) long dep_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x + DEP_TAG;
}

int dep_tag(void)
{
    return DEP_TAG;
}

/* Runs inside dlopen: tests/t_safe.py stops gdb here and unwinds to main. */
__attribute__((noinline)) void dep_ctor_work(void)
{
    sink++;
    __asm__ volatile("");
}

__attribute__((constructor)) static void dep_ctor(void)
{
    dep_ctor_work();
}
