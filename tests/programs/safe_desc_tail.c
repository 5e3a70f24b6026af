/*
 * safe_desc_tail.c - descendants filters and tail calls (tests/t_safe.py).
 * Built with -O2 so `return f(x);` is a jmp behind an XRay tail sled.
 *
 *   worker(n)   thread function; tail-calls compute(n)
 *   compute(n)  N calls of leaf(), then tail-calls finish()
 *   finish(s)   two calls of leaf(), returns normally
 *   to_libc()   tail-calls getpid() (not instrumented, through the PLT)
 *   sibling(x)  one call of leaf()
 * main: runs worker(N) as a thread, calls worker(N) itself, then compute(N)
 * (outside any worker), then to_libc() and sibling(1) from the same
 * frame (sibling's return-address slot is where to_libc's was).
 * Prints "pid", "tid", "worker_tid", "n".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define N 6
#define NOINLINE __attribute__((noinline))

static volatile long sink;
static volatile pid_t worker_tid;

NOINLINE long leaf(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x + 1;
}

NOINLINE void *finish(long s)
{
    long a = leaf(s);
    sink += a;
    long b = leaf(a);
    __asm__ volatile("" : "+r"(b));
    return (void *)b;
}

NOINLINE void *compute(void *arg)
{
    long s = 0;
    for (long i = 0; i < (long)arg; i++)
        s += leaf(i);
    return finish(s); /* tail call */
}

NOINLINE void *worker(void *arg)
{
    if (!worker_tid)
        worker_tid = gettid();
    sink++;
    return compute(arg); /* tail call */
}

NOINLINE pid_t to_libc(void)
{
    sink++;
    return getpid(); /* tail call into libc */
}

NOINLINE long sibling(long x)
{
    long r = leaf(x);
    __asm__ volatile("" : "+r"(r));
    return r * 2;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, worker, (void *)(long)N) || pthread_join(t, NULL))
        return 1;
    long r = (long)worker((void *)(long)N);
    r += (long)compute((void *)(long)N);
    r += to_libc() > 0;
    r += sibling(1);
    printf("pid %d\ntid %d\nworker_tid %d\nn %d\nr %ld\n", (int)getpid(), (int)gettid(),
           (int)worker_tid, N, r);
    return 0;
}
