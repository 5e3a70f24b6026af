// syms_lib.cc - the second compile unit of the C++ program of t_syms.py.
#include "syms.hh"

int shapes::Shape::scaled(int k) const // @shapes::Shape::scaled(int) const
{
    return area() * k;
}

namespace shapes {
namespace detail {

__attribute__((noinline)) long widen(int x) // @shapes::detail::widen(int)
{
    return (long)x << 3;
}

} // namespace detail
} // namespace shapes

int lib_entry(int x) // @lib_entry(int)
{
    shapes::Rect r(x, 3);
    return r.scaled(2) + (int)shapes::detail::widen(x) + hdr_inline(x) + shapes::twice(x);
}
