/*
 * signals.c - signal handlers that run instrumented code, delivered while
 * the interrupted thread is itself running instrumented code.
 *
 * Part 1: main (inside raiser()) raises SIGUSR1 RAISE_N times; every 10th
 * SIGUSR1 handler raises SIGUSR2 from inside the handler (a nested handler).
 * Part 2: a sender thread sends SIGUSR2 to the main thread with pthread_kill
 * KILL_N times, each time waiting until the handler has run, while main calls
 * busy_work() in a loop. SIGUSR2 runs on an alternate signal stack.
 * Both handlers call handler_work(), which calls handler_leaf().
 * Prints "pid", "tid", "sender_tid", "kill_n", "usr1 N", "usr2 N",
 * "usr2_nested N" (SIGUSR2 handlers run during part 1), "busy N".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define RAISE_N 200
#ifndef KILL_N
#define KILL_N 10000
#endif

static volatile sig_atomic_t usr1_count, usr2_count;
static volatile int sender_done;
static volatile pid_t sender_tid;
static volatile long sink;
static pthread_t main_thread;

__attribute__((noinline)) long handler_leaf(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

__attribute__((noinline)) long handler_work(int sig)
{
    long r = handler_leaf(sig);
    __asm__ volatile("" : "+r"(r));
    return r;
}

__attribute__((noinline)) void on_usr1(int sig)
{
    int n = usr1_count + 1;
    handler_work(sig);
    if (n % 10 == 0)
        raise(SIGUSR2); /* not a tail call: the store below follows it */
    usr1_count = n;
}

__attribute__((noinline)) void on_usr2(int sig)
{
    handler_work(sig);
    usr2_count = usr2_count + 1;
}

__attribute__((noinline)) void raiser(void)
{
    for (int i = 0; i < RAISE_N; i++)
        raise(SIGUSR1);
}

__attribute__((noinline)) long busy_work(long x)
{
    sink ^= x;
    __asm__ volatile("" : "+r"(x));
    return x + 1;
}

static void *sender(void *arg)
{
    (void)arg;
    sender_tid = gettid();
    for (int i = 0; i < KILL_N; i++) {
        int before = usr2_count;
        pthread_kill(main_thread, SIGUSR2);
        while (usr2_count == before)
            sched_yield();
    }
    sender_done = 1;
    return NULL;
}

int main(void)
{
    static char altstack[1 << 16];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    struct sigaction sa1 = {0}, sa2 = {0};
    pthread_t th;
    long busy = 0;

    main_thread = pthread_self();
    if (sigaltstack(&ss, NULL) != 0) {
        perror("sigaltstack");
        return 1;
    }
    sa1.sa_handler = on_usr1;
    sigemptyset(&sa1.sa_mask);
    sa2.sa_handler = on_usr2;
    sa2.sa_flags = SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa2.sa_mask);
    if (sigaction(SIGUSR1, &sa1, NULL) != 0 || sigaction(SIGUSR2, &sa2, NULL) != 0) {
        perror("sigaction");
        return 1;
    }

    raiser();
    int usr2_after_raise = usr2_count;

    pthread_create(&th, NULL, sender, NULL);
    while (!sender_done) {
        busy_work(busy);
        busy++;
        /* a short uninstrumented pause keeps the log small; signals still
           land inside busy_work() and its sleds a good share of the time */
        for (volatile int spin = 0; spin < 1000; spin++)
            ;
    }
    pthread_join(th, NULL);

    printf("pid %d\n", getpid());
    printf("tid %d\n", gettid());
    printf("sender_tid %d\n", sender_tid);
    printf("kill_n %d\n", KILL_N);
    printf("usr1 %d\n", usr1_count);
    printf("usr2 %d\n", usr2_count);
    printf("usr2_nested %d\n", usr2_after_raise);
    printf("busy %ld\n", busy);
    return usr1_count == RAISE_N && usr2_count == RAISE_N / 10 + KILL_N ? 0 : 1;
}
