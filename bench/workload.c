/* workload.c - the call-heavy program every recording benchmark runs.
 *
 *   workload THREADS ITERS
 *
 * Starts THREADS threads; each runs ITERS iterations of `iteration()`, which
 * calls fib(FIB_N) (recursion whose every inner node ends in a tail call to
 * the leaf `leaf_add`) and LEAVES calls of the tiny leaf `leaf_mix`. Every
 * traced function is noinline with external linkage and contains an empty
 * volatile asm, so the compiler can neither inline, merge, hoist nor drop a
 * call: the number of calls is exact and printed as `calls=N` on stdout
 * (2 events per call). main and the thread routine are never instrumented,
 * so every tool records exactly the same calls.
 *
 * Built four ways by bench/bench.py: plain (no sleds), XRay (sleds; used
 * untraced, with sftrace and with XRay basic mode), XRay FDR (-DWITH_FDR:
 * main starts FDR mode through compiler-rt's API, see fdr_start.cc), and -pg
 * (uftrace).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FIB_N 12
#define LEAVES 16

#if defined(__has_attribute) && __has_attribute(xray_never_instrument)
#define NOTRACE __attribute__((xray_never_instrument, no_instrument_function))
#else
#define NOTRACE __attribute__((no_instrument_function))
#endif
#define TRACED __attribute__((noinline))
#define KEEP() __asm__ volatile("")

#ifdef WITH_FDR
void bench_fdr_start(uint64_t events, int threads);
void bench_fdr_stop(void);
#endif

TRACED uint64_t leaf_add(uint64_t a, uint64_t b)
{
    KEEP();
    return a + b;
}

TRACED uint64_t leaf_mix(uint64_t x)
{
    KEEP();
    return (x * 0x9E3779B97F4A7C15ull) ^ (x >> 29);
}

TRACED uint64_t fib(unsigned n)
{
    KEEP();
    if (n < 2)
        return n;
    return leaf_add(fib(n - 1), fib(n - 2)); /* a tail call */
}

TRACED uint64_t iteration(uint64_t acc)
{
    KEEP();
    acc += fib(FIB_N);
    for (unsigned j = 0; j < LEAVES; j++)
        acc = leaf_mix(acc + j);
    return acc;
}

struct job {
    pthread_t th;
    uint64_t iters, result;
};

NOTRACE static void *worker(void *p)
{
    struct job *j = p;
    uint64_t acc = (uint64_t)(uintptr_t)p;
    for (uint64_t i = 0; i < j->iters; i++)
        acc = iteration(acc);
    j->result = acc;
    return NULL;
}

/* Calls made by one fib(n): itself, its subtrees, and one leaf_add per inner
 * node. */
NOTRACE static uint64_t fib_calls(unsigned n)
{
    uint64_t a = 1, b = 1; /* calls of fib(0), fib(1) */
    for (unsigned k = 2; k <= n; k++) {
        uint64_t c = b + a + 2;
        a = b;
        b = c;
    }
    return n == 0 ? a : b;
}

NOTRACE int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: workload THREADS ITERS\n");
        return 2;
    }
    int nth = atoi(argv[1]);
    uint64_t iters = strtoull(argv[2], NULL, 10);
    if (nth < 1 || nth > 64) {
        fprintf(stderr, "workload: 1..64 threads\n");
        return 2;
    }
    uint64_t per_iter = 1 + fib_calls(FIB_N) + LEAVES;
    uint64_t calls = per_iter * iters * (uint64_t)nth;
#ifdef WITH_FDR
    bench_fdr_start(2 * calls, nth);
#endif
    struct job jobs[64];
    for (int t = 0; t < nth; t++) {
        jobs[t].iters = iters;
        if (pthread_create(&jobs[t].th, NULL, worker, &jobs[t]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    uint64_t sum = 0;
    for (int t = 0; t < nth; t++) {
        pthread_join(jobs[t].th, NULL);
        sum ^= jobs[t].result;
    }
#ifdef WITH_FDR
    bench_fdr_stop();
#endif
    printf("calls=%llu events=%llu checksum=%llx\n", (unsigned long long)calls,
           (unsigned long long)(2 * calls), (unsigned long long)sum);
    return 0;
}
