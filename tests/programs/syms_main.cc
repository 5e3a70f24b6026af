// syms_main.cc - the first compile unit of the C++ program of t_syms.py.
#include <cstdio>

#include "syms.hh"

struct Counter {
    Counter() : n(0) {}
    __attribute__((noinline)) void bump();
    int n;
};

void Counter::bump() // @Counter::bump()
{
    n++;
}

__attribute__((noinline)) static int file_static(int x) // @file_static(int)
{
    return x - 1;
}

int main(int argc, char **argv) // @main
{
    (void)argv;
    Counter c;
    c.bump();
    shapes::Rect r(argc, 2);
    std::printf("%d\n", lib_entry(argc) + r.area() + shapes::twice(argc) + (int)shapes::twice(1.5) +
                            hdr_inline(argc) + file_static(argc) + c.n);
    return 0;
}
