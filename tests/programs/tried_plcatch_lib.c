/* tried_plcatch_lib.c - plpgsql.so's exec_stmt_block for tried_plcatch.c:
 * PG_TRY / PG_CATCH around a call into the executable. */
#include <setjmp.h>

extern sigjmp_buf *exception_stack;
void spi_exec(int i);
void copy_error_data(void);
void rollback_subxact(void);

__attribute__((noinline)) void exec_stmt_block(int i)
{
    sigjmp_buf local, *save = exception_stack;
    if (sigsetjmp(local, 1) == 0) {
        exception_stack = &local;
        spi_exec(i);
    } else {
        exception_stack = save;
        copy_error_data();
        rollback_subxact();
    }
    exception_stack = save;
}
