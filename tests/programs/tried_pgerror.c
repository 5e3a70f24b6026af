/* tried_pgerror.c - PostgreSQL's error handling: ereport(ERROR) ends in
 * errfinish -> pg_re_throw -> siglongjmp to the sigsetjmp in PostgresMain,
 * whose recovery code (EmitErrorReport, AbortCurrentTransaction ...) runs
 * next. The executable is linked with -rdynamic (postgres exports every
 * function for its extensions), so every function is in .dynsym. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

static sigjmp_buf *exception_stack;
volatile long sink;

__attribute__((noinline)) void re_throw(void)
{
    if (exception_stack)
        siglongjmp(*exception_stack, 1);
    abort();
}

__attribute__((noinline)) void errfinish(int code)
{
    sink += code;
    re_throw();
}

__attribute__((noinline)) int int4div(int a, int b)
{
    if (b == 0)
        errfinish(1);
    return a / b;
}

__attribute__((noinline)) void exec_query(int i)
{
    sink += int4div(10, i % 2);
}

__attribute__((noinline)) void emit_error_report(void)
{
    sink += 100;
}

__attribute__((noinline)) void abort_transaction(void)
{
    sink += 1000;
}

__attribute__((noinline)) void ready_for_query(void)
{
    sink += 10000;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4;
    sigjmp_buf local;
    volatile int i = 0;
    if (sigsetjmp(local, 1) != 0) {
        /* the error's recovery: PostgresMain's, not a callee of re_throw */
        emit_error_report();
        abort_transaction();
        i++;
    }
    exception_stack = &local;
    for (; i < n; i++) {
        ready_for_query();
        exec_query(i);
    }
    printf("%ld\n", sink);
    return 0;
}
