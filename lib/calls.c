/*
 * calls.c - the call engine (calls.h). STUB: the API compiles; the engine
 * follows in the next commit.
 */
#include <stdlib.h>
#include <string.h>

#include "calls.h"

struct sf_calls {
    struct sf_log *log;
};

struct sf_calls *sf_calls_new(struct sf_log *log, struct sf_syms *syms, const struct sf_select *sel,
                              const struct sf_calls_ops *ops, void *ctx)
{
    (void)syms, (void)sel, (void)ops, (void)ctx;
    struct sf_calls *e = calloc(1, sizeof *e);
    if (e)
        e->log = log;
    return e;
}
void sf_calls_set_max_depth(struct sf_calls *e, uint32_t max_depth)
{
    (void)e, (void)max_depth;
}
void sf_calls_set_tick(struct sf_calls *e, int (*tick)(void *ctx), void *ctx)
{
    (void)e, (void)tick, (void)ctx;
}
int sf_calls_run(struct sf_calls *e)
{
    (void)e;
    return 0;
}
const char *sf_calls_error(const struct sf_calls *e)
{
    (void)e;
    return "";
}
const struct sf_func *sf_calls_func(struct sf_calls *e, uint32_t func)
{
    (void)e, (void)func;
    return NULL;
}
uint32_t sf_calls_nfuncs(const struct sf_calls *e)
{
    (void)e;
    return 0;
}
uint64_t sf_calls_origin_ns(const struct sf_calls *e)
{
    (void)e;
    return 0;
}
void sf_calls_stats(const struct sf_calls *e, struct sf_calls_stats *st)
{
    (void)e;
    memset(st, 0, sizeof *st);
}
void sf_calls_free(struct sf_calls *e)
{
    free(e);
}
