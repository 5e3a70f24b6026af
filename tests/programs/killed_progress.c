/* killed_progress.c - threads that call instrumented functions forever and
 * report their progress on stdout, to be killed at any moment (t_killed.py).
 *
 *   killed_progress threads N      N threads in this process
 *   killed_progress child N        a forked child runs them; the parent waits
 *                                  and exits 128+N if signal N killed it
 *   killed_progress grandchild N   a grandchild runs them
 *   killed_progress alloc N        like threads, each also allocating 1 MiB per
 *                                  report until memory runs out (then it spins)
 * Every line "P pid tid calls" is written after `calls` calls of work() on
 * that thread have returned, so they are all in the thread's buffers. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int alloc_mode;
static volatile unsigned long sink;

__attribute__((noinline)) void work(unsigned long i)
{
    sink += i * 3;
}

__attribute__((noinline)) void batch(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        work(i);
}

static void report(unsigned long calls)
{
    char line[96];
    int n =
        snprintf(line, sizeof line, "P %d %ld %lu\n", (int)getpid(), syscall(SYS_gettid), calls);
    if (write(1, line, (size_t)n) != n)
        _exit(3);
}

static void *worker(void *arg)
{
    (void)arg;
    unsigned long calls = 0;
    for (;;) {
        batch(997);
        calls += 997;
        if (alloc_mode) {
            char *p = malloc(1 << 20);
            if (p)
                memset(p, 1, 1 << 20);
        }
        report(calls);
    }
    return NULL;
}

static void run(int n)
{
    pthread_t t[64];
    for (int i = 1; i < n && i < 64; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    worker(NULL);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "threads";
    int n = argc > 2 ? atoi(argv[2]) : 3;
    if (!strcmp(mode, "alloc")) {
        alloc_mode = 1;
        run(n);
    }
    if (!strcmp(mode, "threads"))
        run(n);
    int depth = !strcmp(mode, "grandchild") ? 2 : 1;
    for (int d = 0; d < depth; d++) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid > 0) {
            /* reap it as a shell would, and end the same way */
            int st;
            while (waitpid(pid, &st, 0) < 0)
                ;
            return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
        }
    }
    run(n);
    return 0;
}
