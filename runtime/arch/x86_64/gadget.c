/*
 * gadget.c - x86_64: the return address dlopen is entered with (callas.S):
 * a `ret` of the caller's object, preferably an epilogue's; and whether a
 * CET shadow stack would make such a faked return fault.
 */
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../runtime.h"

/* Does a `ret` at p look like a function's final instruction: padding, the
 * next function's endbr64, or the zeros before the next section after it? */
static int ends_function(const uint8_t *p, const uint8_t *end)
{
    if (p + 5 > end)
        return 0;
    return p[1] == 0xcc || p[1] == 0x90 || (p[1] == 0x0f && p[2] == 0x1f) ||
           (p[1] == 0x66 && (p[2] == 0x90 || p[2] == 0x0f || p[2] == 0x2e)) ||
           (p[1] == 0xf3 && p[2] == 0x0f && p[3] == 0x1e && p[4] == 0xfa) ||
           (p[1] == 0 && p[2] == 0 && p[3] == 0);
}

/* The end of an epilogue, `pop reg; ret` or `leave; ret`? Unwinders look
 * up the row at the pop (CFA = rsp + 16, or rbp + 16), which sf_call_as's
 * stack layout answers. */
static int epilogue_ret(const uint8_t *p, const uint8_t *lo, const uint8_t *end)
{
    return *p == 0xc3 && p > lo && ((p[-1] >= 0x58 && p[-1] <= 0x5f) || p[-1] == 0xc9) &&
           ends_function(p, end);
}

/* Best an epilogue's ret after `from` (the caller's own, usually), then
 * one anywhere in the segment, then any function end, then any ret. */
const uint8_t *sf_arch_find_ret(const uint8_t *lo, const uint8_t *from, const uint8_t *end)
{
    const uint8_t *fend = NULL, *any = NULL;
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *p = pass ? lo : from, *stop = pass ? from : end;
        for (size_t n = 0; p < stop && n < (1u << 20); p++, n++) {
            if (*p != 0xc3)
                continue;
            if (epilogue_ret(p, lo, end))
                return p;
            if (!fend && ends_function(p, end))
                fend = p;
            if (!any)
                any = p;
        }
    }
    return fend ? fend : any;
}

/* With a CET shadow stack the faked return would fault: call directly. */
int sf_shadow_stack_on(void)
{
    static int state; /* 0 unknown, 1 off, 2 on */
    if (!state) {
        unsigned long features = 0;
        int saved = errno; /* EINVAL on kernels without shadow stacks */
        long rc = syscall(SYS_arch_prctl, 0x5005 /* ARCH_SHSTK_STATUS */, &features);
        errno = saved;
        state = rc == 0 && (features & 1) ? 2 : 1;
    }
    return state == 2;
}
