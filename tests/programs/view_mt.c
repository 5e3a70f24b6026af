/*
 * view_mt.c - the multi-threaded C program of the viewer checks (t_viewers.py):
 * recursion, tail calls and named threads, with small, known call counts so a
 * viewer's tables stay short.
 *
 * Threads "fib-a" and "fib-b" each call fib(FIB_A) / fib(FIB_B) once
 * (recursive: fib(n) makes fib(n-1) and fib(n-2)). Main calls is_even(PARITY_N)
 * TAIL_ROUNDS times (is_even and is_odd tail-call each other down to 0) and
 * top() TAIL_ROUNDS times (top calls mid, mid tail-calls leaf), then joins.
 * Prints "pid", "main_tid" and "tid <name> <tid>" for each thread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define FIB_A 11
#define FIB_B 9
#define PARITY_N 7
#define TAIL_ROUNDS 5

static volatile long sink;

__attribute__((noinline)) long fib(long n)
{
    if (n < 2)
        return n;
    long a = fib(n - 1);
    __asm__ volatile("" : "+r"(a)); /* no accumulator loop: both calls stay */
    long b = fib(n - 2);
    __asm__ volatile("" : "+r"(b));
    return a + b;
}

__attribute__((noinline)) long is_odd(long n);

__attribute__((noinline)) long is_even(long n)
{
    __asm__ volatile("" : "+r"(n));
    if (n == 0)
        return 1;
    return is_odd(n - 1); /* tail call */
}

__attribute__((noinline)) long is_odd(long n)
{
    __asm__ volatile("" : "+r"(n));
    if (n == 0)
        return 0;
    return is_even(n - 1); /* tail call */
}

__attribute__((noinline)) long leaf(long x)
{
    __asm__ volatile("" : "+r"(x));
    return x * 7 + 3;
}

__attribute__((noinline)) long mid(long x)
{
    sink += x;
    return leaf(x + 1); /* tail call */
}

__attribute__((noinline)) long top(long x)
{
    long r = mid(x);
    __asm__ volatile("" : "+r"(r));
    return r + 1;
}

struct job {
    const char *name;
    long n;
    pid_t tid;
};

static void *run(void *arg)
{
    struct job *j = arg;
    pthread_setname_np(pthread_self(), j->name);
    j->tid = gettid();
    sink += fib(j->n);
    return NULL;
}

int main(void)
{
    struct job jobs[2] = {{"fib-a", FIB_A, 0}, {"fib-b", FIB_B, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, run, &jobs[i]);
    for (int i = 0; i < TAIL_ROUNDS; i++) {
        sink += is_even(PARITY_N);
        sink += top(i);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("pid %d\nmain_tid %d\n", getpid(), gettid());
    for (int i = 0; i < 2; i++)
        printf("tid %s %d\n", jobs[i].name, jobs[i].tid);
    return 0;
}
