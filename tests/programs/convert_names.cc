// convert_names.cc - C++ names for t_convert.py: namespaces, class templates,
// function templates, methods, operators and a lambda, each called a known
// number of times. A "// @NAME" comment marks the line where each function is
// defined, so the test can check the source line in the trace.
#include <cstdio>

namespace geo
{
namespace detail
{

template <typename T> struct Vec2 {
    T x, y;
    __attribute__((noinline)) T dot(const Vec2 &o) const // @dot
    {
        return x * o.x + y * o.y;
    }
    __attribute__((noinline)) Vec2 operator+(const Vec2 &o) const // @plus
    {
        return Vec2{x + o.x, y + o.y};
    }
};

template <typename T, int N> __attribute__((noinline)) T scale(T v) // @scale
{
    return v * N;
}

} // namespace detail

class Shape
{
  public:
    explicit Shape(int s) : sides_(s) {}
    __attribute__((noinline)) int sides() const; // declared here, defined below
  private:
    int sides_;
};

__attribute__((noinline)) int Shape::sides() const // @sides
{
    return sides_;
}

} // namespace geo

static volatile long sink;

int main(int argc, char **)
{
    geo::detail::Vec2<int> a{argc, 2}, b{3, argc};
    geo::detail::Vec2<double> c{0.5, 1.5};
    geo::Shape s(argc + 2);
    auto twice = [](long v) __attribute__((noinline))
    {
        return v * 2;
    };
    for (int i = 0; i < 7; i++)
        sink += a.dot(b);
    for (int i = 0; i < 5; i++)
        sink += (long)c.dot(c);
    for (int i = 0; i < 3; i++)
        sink += (a + b).x;
    for (int i = 0; i < 4; i++)
        sink += geo::detail::scale<long, 3>(i) + (long)geo::detail::scale<double, 2>(i);
    for (int i = 0; i < 6; i++)
        sink += s.sides() + twice(i);
    std::printf("sink %ld\n", (long)sink);
    return 0;
}
