/*
 * fatal.c - make calls, then die of a signal.
 *
 * usage: fatal MODE
 * Every mode first calls pre_work() PRE_CALLS times from main, prints
 * "pid", "tid" and "pre_calls", flushes stdout, then:
 *   segv     crash_here() writes through a null pointer      (SIGSEGV)
 *   abort    crash_here() calls abort()                      (SIGABRT)
 *   fpe      crash_here() divides by zero                    (SIGFPE)
 *   ill      crash_here() executes ud2                       (SIGILL)
 *   bus      crash_here() touches a mapped page past EOF     (SIGBUS)
 *   int      crash_here() raises SIGINT                      (SIGINT)
 *   term     main calls spin_work() in an endless loop; after SPIN_MIN
 *            calls it wakes a killer thread, which sends SIGTERM to the
 *            process while main keeps calling                (SIGTERM)
 *            prints "spin_min" first
 *   handler  main installs its own SIGSEGV handler, on_segv(), which writes
 *            "handled SIGSEGV" to stdout and _exit(3)s; then crash_here()
 *            segfaults                                      (status 3)
 *   thread   a helper thread makes HELPER_CALLS calls of helper_work() and
 *            blocks; then a second thread makes CRASHER_CALLS calls of
 *            crasher_work() and segfaults in crash_here()    (SIGSEGV)
 *            prints "helper_tid", "crasher_tid" first
 * crash_here() is entered and never left.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PRE_CALLS 321
#define HELPER_CALLS 150
#define CRASHER_CALLS 250
#define SPIN_MIN 5000

static volatile long sink;
static volatile int zero;
static const char *mode;
static sem_t killer_go, helper_ready, crasher_ready, crasher_go, never;
static volatile pid_t helper_tid, crasher_tid;

__attribute__((noinline)) long pre_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}
__attribute__((noinline)) long spin_work(long x)
{
    sink ^= x;
    __asm__ volatile("" : "+r"(x));
    return x;
}
__attribute__((noinline)) long helper_work(long x)
{
    sink += x;
    __asm__ volatile("" : "+r"(x));
    return x;
}
__attribute__((noinline)) long crasher_work(long x)
{
    sink -= x;
    __asm__ volatile("" : "+r"(x));
    return x;
}

__attribute__((noinline)) void handler_report(void)
{
    static const char msg[] = "handled SIGSEGV\n";
    ssize_t r = write(1, msg, sizeof msg - 1);
    (void)r;
}

__attribute__((noinline)) void on_segv(int sig)
{
    (void)sig;
    handler_report();
    _exit(3);
}

__attribute__((noinline)) void crash_here(void)
{
    if (!strcmp(mode, "segv") || !strcmp(mode, "handler") || !strcmp(mode, "thread")) {
        *(volatile int *)(long)zero = 1;
    } else if (!strcmp(mode, "abort")) {
        abort();
    } else if (!strcmp(mode, "fpe")) {
        sink = 100 / zero;
    } else if (!strcmp(mode, "ill")) {
        __builtin_trap();
    } else if (!strcmp(mode, "bus")) {
        char path[] = "/tmp/sftrace-bus-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) {
            perror("mkstemp");
            exit(2);
        }
        unlink(path);
        long page = sysconf(_SC_PAGESIZE);
        if (ftruncate(fd, page) != 0) {
            perror("ftruncate");
            exit(2);
        }
        volatile char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            perror("mmap");
            exit(2);
        }
        p[page] = 1; /* past the end of the file */
    } else if (!strcmp(mode, "int")) {
        raise(SIGINT);
    }
    sink++;
}

static void *killer(void *arg)
{
    (void)arg;
    while (sem_wait(&killer_go) != 0)
        ;
    kill(getpid(), SIGTERM);
    for (;;)
        pause();
    return NULL;
}

static void *helper(void *arg)
{
    (void)arg;
    helper_tid = gettid();
    for (long i = 0; i < HELPER_CALLS; i++)
        helper_work(i);
    sem_post(&helper_ready);
    for (;;)
        sem_wait(&never);
    return NULL;
}

static void *crasher(void *arg)
{
    (void)arg;
    crasher_tid = gettid();
    sem_post(&crasher_ready);
    while (sem_wait(&crasher_go) != 0)
        ;
    for (long i = 0; i < CRASHER_CALLS; i++)
        crasher_work(i);
    crash_here();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fatal segv|abort|fpe|ill|bus|int|term|handler|thread\n");
        return 2;
    }
    mode = argv[1];
    if (!strcmp(mode, "handler")) {
        struct sigaction sa = {0};
        sa.sa_handler = on_segv;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL);
    }
    for (long i = 0; i < PRE_CALLS; i++)
        pre_work(i);
    printf("pid %d\ntid %d\npre_calls %d\n", getpid(), gettid(), PRE_CALLS);

    if (!strcmp(mode, "term")) {
        pthread_t th;
        printf("spin_min %d\n", SPIN_MIN);
        fflush(stdout);
        sem_init(&killer_go, 0, 0);
        pthread_create(&th, NULL, killer, NULL);
        for (long i = 0;; i++) {
            spin_work(i);
            if (i + 1 == SPIN_MIN)
                sem_post(&killer_go);
        }
    }
    if (!strcmp(mode, "thread")) {
        pthread_t a, b;
        sem_init(&helper_ready, 0, 0);
        sem_init(&crasher_ready, 0, 0);
        sem_init(&crasher_go, 0, 0);
        sem_init(&never, 0, 0);
        pthread_create(&a, NULL, helper, NULL);
        pthread_create(&b, NULL, crasher, NULL);
        while (sem_wait(&helper_ready) != 0)
            ;
        while (sem_wait(&crasher_ready) != 0)
            ;
        printf("helper_tid %d\nhelper_calls %d\n", helper_tid, HELPER_CALLS);
        printf("crasher_tid %d\ncrasher_calls %d\n", crasher_tid, CRASHER_CALLS);
        fflush(stdout);
        sem_post(&crasher_go);
        pthread_join(b, NULL);
        return 1; /* not reached */
    }
    fflush(stdout);
    crash_here();
    printf("survived %s\n", mode);
    return 1;
}
