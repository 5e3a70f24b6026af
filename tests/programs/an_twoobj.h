/* an_twoobj.h - shared by an_twoobj.c and an_twoobj_lib.c (t_report_objs.py).
 * A static function in a header gets one copy per object that calls it: two
 * functions of the same name in two objects, which report, graph and flame
 * show as one (matched by name). */
#ifndef AN_TWOOBJ_H
#define AN_TWOOBJ_H

static __attribute__((noinline)) int twice(int x)
{
    __asm__ volatile("");
    return 2 * x;
}

int lib_work(int n);

#endif
