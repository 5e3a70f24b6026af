// syms.hh - shared by syms_main.cc and syms_lib.cc (t_syms.py): a class
// with methods defined in the class (inline, in this header) and declared
// here but defined in syms_lib.cc, a template, and an inline function.
#pragma once

namespace shapes {

struct Shape {
    virtual ~Shape() {} // @shapes::Shape::~Shape()
    virtual int area() const = 0;
    int scaled(int k) const;
};

struct Rect : Shape { // @shapes::Rect::~Rect()
    Rect(int w, int h) : w(w), h(h) {}
    __attribute__((noinline)) int area() const override { return w * h; } // @shapes::Rect::area() const
    int w, h;
};

template <class T> __attribute__((noinline)) T twice(T x) // @int shapes::twice<int>(int) | double shapes::twice<double>(double)
{
    return x + x;
}

} // namespace shapes

__attribute__((noinline)) inline int hdr_inline(int x) // @hdr_inline(int)
{
    return x ^ 0x5a;
}

int lib_entry(int x);
