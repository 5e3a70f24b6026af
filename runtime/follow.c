/*
 * follow.c - descendants mode follows jobs and tasks across threads
 * (docs/design.md, Flows): a rayon job or tokio task made inside a selected
 * function's call records on whatever thread runs it.
 *
 * The keys file (lib/flows.c) marks each flow function's key register with
 * its role. In descendants mode those functions' sleds take the slow path
 * (few functions: a job's push and execute, a task's creation and polls):
 * a producer inside the scope puts its key into a fixed table shared by
 * the process's threads; a consumer outside the scope whose key is there
 * opens the scope at its own frame, exactly as a selected function's entry
 * does, so it and everything beneath it record, and the job's own pushes
 * are followed in turn. A job's key is used up by its run (rayon reuses job
 * addresses: stack jobs), a task's lives until its retire (tokio's dealloc).
 *
 * No locks, no allocation: the tables are static arrays with open
 * addressing and compare-and-swap. A full key table follows nothing more
 * (once said in the log's messages), never blocks.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "filterfmt.h"
#include "runtime.h"

#define NFN 4096   /* flow functions (a keys file names a few dozen) */
#define NKEY 65536 /* keys followed at one time */
#define TOMB UINT64_MAX

static _Atomic uint64_t fn_key[NFN]; /* fid + 1 << 8 | flags */
static _Atomic uint64_t keys[NKEY];  /* key (0: free, TOMB: was used) */
static atomic_int full_said;

static uint64_t mix(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return v;
}

void sf_follow_add(uint32_t fid, uint8_t flags)
{
    uint64_t want = ((uint64_t)fid + 1) << 8 | flags;
    for (uint32_t i = 0, h = (uint32_t)mix(fid); i < NFN; i++) {
        _Atomic uint64_t *s = &fn_key[(h + i) % NFN];
        uint64_t cur = atomic_load(s);
        if (cur >> 8 == (uint64_t)fid + 1)
            return;
        if (!cur && atomic_compare_exchange_strong(s, &cur, want))
            return;
    }
}

static int flags_of(uint32_t fid)
{
    for (uint32_t i = 0, h = (uint32_t)mix(fid); i < NFN; i++) {
        uint64_t cur = atomic_load(&fn_key[(h + i) % NFN]);
        if (!cur)
            return -1;
        if (cur >> 8 == (uint64_t)fid + 1)
            return (int)(cur & 0xff);
    }
    return -1;
}

static void key_add(uint64_t k)
{
    if (!k || k == TOMB)
        return;
    uint32_t h = (uint32_t)mix(k);
    for (uint32_t i = 0; i < NKEY / 4; i++) { /* a short probe: the table is sparse */
        _Atomic uint64_t *s = &keys[(h + i) % NKEY];
        uint64_t cur = atomic_load(s);
        if (cur == k)
            return;
        if ((!cur || cur == TOMB) && atomic_compare_exchange_strong(s, &cur, k))
            return;
    }
    if (!atomic_exchange(&full_said, 1))
        sf_msg("descendants mode: more than %d jobs pending at once; the rest are not followed",
               NKEY / 4);
}

/* Is k followed? use: take it out. */
static int key_take(uint64_t k, int use)
{
    if (!k || k == TOMB)
        return 0;
    uint32_t h = (uint32_t)mix(k);
    for (uint32_t i = 0; i < NKEY / 4; i++) {
        _Atomic uint64_t *s = &keys[(h + i) % NKEY];
        uint64_t cur = atomic_load(s);
        if (!cur)
            return 0;
        if (cur == k)
            return use ? atomic_compare_exchange_strong(s, &cur, TOMB) : 1;
    }
    return 0;
}

int sf_follow_event(uint32_t fid, int inside, const uint64_t *args, uint64_t ret, int exit)
{
    int fl = flags_of(fid);
    int reg = fl < 0 ? -1 : sf_filter_key((uint8_t)fl);
    if (reg < 0)
        return 0;
    int role = sf_filter_role((uint8_t)fl);
    uint64_t k = reg == SF_KEY_RET ? ret : args[reg];
    uint64_t k2 = (fl & SF_FILTER_PAIR) && reg < 5 ? args[reg + 1] : 0;
    if (exit != (reg == SF_KEY_RET))
        return 0; /* not where this function's key is */
    switch (role) {
    case SF_FILTER_PRODUCER:
        if (inside) {
            key_add(k);
            key_add(k2);
        }
        return 0;
    case SF_FILTER_CONSUMER: {
        /* a job run inside the scope uses its key up too (rayon reuses
         * the addresses of stack jobs) */
        int had = key_take(k, !(fl & SF_FILTER_TASK));
        return !inside && had;
    }
    case SF_FILTER_RETIRE:
        key_take(k, 1);
        return 0;
    }
    return 0;
}
