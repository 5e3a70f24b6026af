// dump_names.cc - C++ functions in namespaces, templates and classes, for the
// demangling test of t_dump.py.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace outer
{
namespace inner
{

template <typename T> struct Box {
    T value;
    __attribute__((noinline)) T get() const { return value; }
};

template <typename T> __attribute__((noinline)) T twice(T x)
{
    return x + x;
}

__attribute__((noinline)) int plain(int x)
{
    return x * 7;
}

} // namespace inner
} // namespace outer

__attribute__((noinline)) static size_t total(const std::vector<std::string> &v)
{
    size_t n = 0;
    for (const auto &s : v)
        n += s.size();
    return n;
}

int main(int argc, char **argv)
{
    outer::inner::Box<int> b{argc};
    outer::inner::Box<double> d{argc * 0.5};
    std::vector<std::string> v(argv, argv + argc);
    long r = outer::inner::twice(b.get()) + outer::inner::twice(d.get()) +
             outer::inner::plain(argc) + (long)total(v);
    std::printf("%ld\n", r);
    return 0;
}
