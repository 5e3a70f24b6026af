/*
 * inv_stack.c - how much stack tracing takes from a program (t_invisible.py).
 *
 * `inv_stack depth N`: a thread with a PTHREAD_STACK_MIN stack recurses N
 * deep in rec(), whose frames are about 280 bytes, and prints "reached N"
 * (or dies of SIGSEGV on the guard page).
 * `inv_stack paint N`: the same thread first fills its unused stack with a
 * pattern, recurses N deep, and prints "used B": the bytes of stack below
 * the thread function's frame that were written (the recursion's frames,
 * and whatever tracing added to them); twice, with two patterns, so that
 * a written byte equal to the pattern is not missed.
 * rec()'s deepest call calls leaf(), which has no frame: what tracing adds
 * below it is what the trampoline takes from the program's stack.
 * `inv_stack altstack N SIZE`: a SIGUSR1 handler running on a sigaltstack of
 * SIZE bytes (a guard page below it) makes N nested calls of small(), and
 * prints "handled N" (or dies of SIGSEGV).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile int sink;
static int depth;
static long used;
static int painting;

__attribute__((noinline)) int leaf(int n)
{
    return n + 1;
}

__attribute__((noinline)) int rec(int n)
{
    char frame[256];
    frame[0] = (char)n;
    frame[255] = (char)n;
    __asm__ volatile("" : : "r"(frame) : "memory"); /* the frame is real */
    if (n <= 1)
        return leaf(frame[0]);
    int r = rec(n - 1);
    __asm__ volatile("" : : "r"(frame) : "memory");
    return r + frame[255];
}

__attribute__((noinline)) int small(int n)
{
    if (n <= 1)
        return 1;
    return small(n - 1) + 1;
}

__attribute__((noinline)) long scratch(long a, long b, long c, long d)
{
    __asm__ volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d));
    return a ^ b ^ c ^ d;
}

/* The painted region: from a little above the stack's low end to a little
 * below our own frame. */
static uint8_t *low, *high;

__attribute__((noinline)) static void paint(int pattern)
{
    uint8_t here;
    pthread_attr_t a;
    void *addr;
    size_t size;
    pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getstack(&a, &addr, &size);
    pthread_attr_destroy(&a);
    low = (uint8_t *)addr + 64;
    high = &here - 512; /* below paint()'s own frame and memset's */
    memset(low, pattern, (size_t)(high - low));
}

__attribute__((noinline)) void *thread_fn(void *arg)
{
    (void)arg;
    if (painting) {
        /* twice, with two patterns: a byte written may equal one of them */
        static const int patterns[2] = {0xa5, 0x5a};
        for (int i = 0; i < 2; i++) {
            paint(patterns[i]);
            /* memset left the pattern in argument registers, which the
             * trampoline saves: load others */
            sink = scratch(0x1111, 0x2222, 0x3333, 0x4444);
            sink = rec(depth);
            uint8_t *p = low;
            while (p < high && *p == patterns[i])
                p++;
            p = (uint8_t *)((uintptr_t)p & ~(uintptr_t)7); /* the whole 8-byte slot */
            if (high - p > used)
                used = high - p; /* measured from `high`: only differences matter */
        }
    } else {
        sink = rec(depth);
    }
    return NULL;
}

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
    (void)sig;
    sink = small(depth);
    handled = 1;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    depth = atoi(argv[2]);
    if (!strcmp(argv[1], "altstack") && argc == 4) {
        long page = sysconf(_SC_PAGESIZE);
        size_t size = (size_t)atol(argv[3]);
        size_t map = ((size + page - 1) / page + 1) * page;
        uint8_t *m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        mprotect(m, page, PROT_NONE); /* a guard page below the alternate stack */
        stack_t ss = {.ss_sp = m + map - size, .ss_size = size};
        if (sigaltstack(&ss, NULL) != 0)
            return 3;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sa.sa_flags = SA_ONSTACK;
        sigaction(SIGUSR1, &sa, NULL);
        raise(SIGUSR1);
        printf("handled %d\n", handled ? depth : 0);
        return 0;
    }
    painting = !strcmp(argv[1], "paint");
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, PTHREAD_STACK_MIN);
    pthread_t t;
    if (pthread_create(&t, &a, thread_fn, NULL) != 0)
        return 3;
    pthread_join(t, NULL);
    if (painting)
        printf("used %ld\n", used);
    else
        printf("reached %d\n", depth);
    return 0;
}
