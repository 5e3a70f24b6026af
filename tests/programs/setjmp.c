/*
 * setjmp.c - longjmp and siglongjmp out of nested instrumented frames.
 *
 * Part 1: ROUNDS times, main setjmp()s and calls dive(DEPTH), which recurses
 * down to dive(0) and longjmp()s back: DEPTH+1 dive() entries per round and
 * no dive() exit. After each round, after_jump() is called once (it enters
 * and exits normally).
 * Part 2: SIG_ROUNDS times, main sigsetjmp()s and calls sig_dive(SIG_DEPTH),
 * which at depth 0 raises SIGUSR1; the handler on_usr1() calls
 * handler_work() and siglongjmp()s out of the handler: SIG_DEPTH+1 sig_dive()
 * entries, one on_usr1() and one handler_work() entry/exit per round.
 * Prints "pid", "tid", and each constant and counter.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#define ROUNDS 100
#define DEPTH 20
#define SIG_ROUNDS 50
#define SIG_DEPTH 7

static jmp_buf env;
static sigjmp_buf sigenv;
static volatile long sink;
static volatile long dive_calls, sig_dive_calls, handler_calls, after_calls;

__attribute__((noinline)) void dive(int d)
{
    dive_calls++;
    if (d == 0)
        longjmp(env, 1);
    dive(d - 1);
    __asm__ volatile("" ::: "memory");
    sink++;
}

__attribute__((noinline)) long after_jump(long x)
{
    after_calls++;
    __asm__ volatile("" : "+r"(x));
    return x;
}

__attribute__((noinline)) long handler_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

__attribute__((noinline)) void on_usr1(int sig)
{
    handler_calls++;
    handler_work(sig);
    siglongjmp(sigenv, 1);
}

__attribute__((noinline)) void sig_dive(int d)
{
    sig_dive_calls++;
    if (d == 0)
        raise(SIGUSR1);
    else
        sig_dive(d - 1);
    __asm__ volatile("" ::: "memory");
    sink++;
}

int main(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    for (volatile int r = 0; r < ROUNDS; r++) {
        if (setjmp(env) == 0)
            dive(DEPTH);
        after_jump(r);
    }
    for (volatile int r = 0; r < SIG_ROUNDS; r++) {
        if (sigsetjmp(sigenv, 1) == 0)
            sig_dive(SIG_DEPTH);
        after_jump(r);
    }
    printf("pid %d\n", getpid());
    printf("tid %d\n", gettid());
    printf("rounds %d depth %d dive_calls %ld\n", ROUNDS, DEPTH, dive_calls);
    printf("sig_rounds %d sig_depth %d sig_dive_calls %ld handler_calls %ld\n", SIG_ROUNDS,
           SIG_DEPTH, sig_dive_calls, handler_calls);
    printf("after_calls %ld\n", after_calls);
    return 0;
}
