/* rdtsc.c - the floor: what one `rdtsc` (and one `rdtscp`, which XRay FDR
 * uses) costs on this machine, in a tight loop, and what a minimal
 * rdtsc-based recorder costs (call, rdtsc, 8-byte store, return). Prints
 * "rdtsc_ns=X rdtscp_ns=Y call_rdtsc_store_ns=Z loop_ns=L" (L: the same loop
 * without the instruction, already subtracted from X, Y and Z). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static uint64_t loop_rdtsc(uint64_t n)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        s += lo;
    }
    return s;
}

__attribute__((noinline)) static uint64_t loop_rdtscp(uint64_t n)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t lo, hi, aux;
        __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
        s += lo;
    }
    return s;
}

/* The least an rdtsc-based tracer can do per event: a call, rdtsc, an
 * 8-byte store into a buffer, a return. */
static uint32_t buf[1 << 14];
__attribute__((noinline)) static void record(uint32_t word)
{
    static unsigned pos;
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    buf[pos] = lo;
    buf[pos + 1] = word;
    pos = (pos + 2) & ((1 << 14) - 1);
}

__attribute__((noinline)) static uint64_t loop_record(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        record((uint32_t)i);
    return buf[5];
}

__attribute__((noinline)) static uint64_t loop_empty(uint64_t n)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t lo = (uint32_t)i;
        __asm__ volatile("" : "+r"(lo));
        s += lo;
    }
    return s;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000;
    volatile uint64_t sink;
    double t0 = now();
    sink = loop_empty(n);
    double t1 = now();
    sink = loop_rdtsc(n);
    double t2 = now();
    sink = loop_rdtscp(n);
    double t3 = now();
    sink = loop_record(n);
    double t4 = now();
    (void)sink;
    double empty = (t1 - t0) / n * 1e9;
    printf("rdtsc_ns=%.3f rdtscp_ns=%.3f call_rdtsc_store_ns=%.3f loop_ns=%.3f\n",
           (t2 - t1) / n * 1e9 - empty, (t3 - t2) / n * 1e9 - empty, (t4 - t3) / n * 1e9 - empty,
           empty);
    return 0;
}
