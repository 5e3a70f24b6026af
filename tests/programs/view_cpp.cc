// view_cpp.cc - the C++ program of the viewer checks (t_viewers.py): names
// that only read well demangled (a namespace, a class template, a function
// template with a non-type parameter, an operator, a lambda), with characters
// a viewer must show as they are (<, >, &, ::, commas, braces), nested
// three deep and called a known number of times.
//
// main: 3 x shapes::total<int, 3>() and 2 x shapes::total<double, 2>();
// each total<T, N>() makes N calls of Poly<T>::area() and one of
// Poly<T>::operator+=(Poly<T> const&); main then calls the lambda 4 times.
#include <cstdio>

namespace shapes
{
template <typename T> struct Poly {
    T side;
    __attribute__((noinline)) T area() const { return side * side; }
    __attribute__((noinline)) Poly &operator+=(const Poly &o)
    {
        side += o.side;
        return *this;
    }
};

template <typename T, int N> __attribute__((noinline)) T total(T side)
{
    Poly<T> p{side};
    T sum = 0;
    for (int i = 0; i < N; i++)
        sum += p.area();
    p += Poly<T>{side};
    return sum + p.side;
}
} // namespace shapes

static volatile double sink;

int main(int argc, char **)
{
    auto twice = [](long v) __attribute__((noinline)) { return v * 2; };
    for (int i = 0; i < 3; i++)
        sink += shapes::total<int, 3>(argc + i);
    for (int i = 0; i < 2; i++)
        sink += shapes::total<double, 2>(argc + 0.5 * i);
    for (int i = 0; i < 4; i++)
        sink += twice(i);
    std::printf("sink %g\n", (double)sink);
    return 0;
}
