/*
 * filter_ns.cc - C++ functions in namespaces, a class, templates and a
 * static function, for the name matching tests of t_filter.py (mangled and
 * demangled names). main calls:
 *   app::parse::line(s) x LINES  -> app::parse::token(int) x 3 each
 *   app::Engine::run(n) x 1      -> app::Engine::helper(long) x n
 *   app::twice<int>, app::twice<double> x 1 each
 *   util::token(int) x 2, util::log(char const*) x 1, local_fn(int) x 1
 * Prints "lines", "n".
 */
#include <cstdio>
#include <cstdlib>

#define NOINLINE __attribute__((noinline))

static volatile long sink;

namespace app
{
namespace parse
{
NOINLINE int token(int x)
{
    sink += x;
    return x + 1;
}
NOINLINE int line(const char *s)
{
    int r = token(s[0]) + token(s[1]) + token(s[2]);
    sink += r;
    return r;
}
} // namespace parse

struct Engine {
    NOINLINE int run(int n);
    NOINLINE static long helper(long v);
    int base;
};

NOINLINE long Engine::helper(long v)
{
    sink += v;
    return v * 2;
}

NOINLINE int Engine::run(int n)
{
    long s = base;
    for (int i = 0; i < n; i++)
        s += helper(i);
    sink += s;
    return (int)s;
}

template <typename T> NOINLINE T twice(T x)
{
    sink += (long)x;
    return x + x;
}
} // namespace app

namespace util
{
NOINLINE int token(int x)
{
    sink += x;
    return x - 1;
}
NOINLINE void log(const char *msg)
{
    sink += msg[0];
}
} // namespace util

static NOINLINE int local_fn(int x)
{
    sink += x;
    return x ^ 1;
}

int main(int argc, char **argv)
{
    int lines = argc > 1 ? atoi(argv[1]) : 4, n = argc > 2 ? atoi(argv[2]) : 6;
    long s = 0;
    for (int i = 0; i < lines; i++)
        s += app::parse::line("abc");
    app::Engine e{1};
    s += e.run(n);
    s += app::twice<int>(3) + (long)app::twice<double>(1.5);
    s += util::token(1) + util::token(2);
    util::log("x");
    s += local_fn(5);
    sink += s;
    std::printf("lines %d\nn %d\n", lines, n);
    return 0;
}
