/* tried_plcatch.c - PL/pgSQL's EXCEPTION block: the executable (linked
 * -rdynamic, as postgres) throws with siglongjmp to the sigsetjmp of a
 * function in a shared object (plpgsql.so's exec_stmt_block), which then
 * calls the executable's functions by name (CopyErrorData,
 * RollbackAndReleaseCurrentSubTransaction) through its PLT. Linked with
 * tried_plcatch_lib.c built as a shared object (t_tried.py). */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

sigjmp_buf *exception_stack;
volatile long sink;

void exec_stmt_block(int i); /* the shared object's */

__attribute__((noinline)) void re_throw(void)
{
    if (exception_stack)
        siglongjmp(*exception_stack, 1);
    abort();
}

__attribute__((noinline)) void errfinish(void)
{
    sink += 1;
    re_throw();
}

__attribute__((noinline)) int int4div(int a, int b)
{
    if (b == 0)
        errfinish();
    return a / b;
}

__attribute__((noinline)) void spi_exec(int i)
{
    sink += int4div(10, i % 2);
}

__attribute__((noinline)) void copy_error_data(void)
{
    sink += 100;
}

__attribute__((noinline)) void rollback_subxact(void)
{
    sink += 1000;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4;
    for (int i = 0; i < n; i++)
        exec_stmt_block(i);
    copy_error_data(); /* an outer frame of the executable that calls it too */
    printf("%ld\n", sink);
    return 0;
}
