/*
 * readme_prog.c - the `prog.c` of README.md's "Use" section for
 * tests/t_docs.py: built with README's clang line exactly as written (no
 * extra flags or libraries), so it needs nothing but libc.
 *
 * main: parse_args (parse_num per argument), load_config (a stage for
 * `memory --milestone '^load|^run'`), run_jobs (two threads, each calling
 * parse_line 100 times), then a forked child that calls parse_line once.
 * Allocation events go through sftrace_alloc_event, a weak symbol that
 * record's preloaded runtime defines: without sftrace the program does the
 * same and reports nothing.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void sftrace_alloc_event(uint8_t kind, size_t size, size_t align, uint8_t *ptr)
    __attribute__((weak));

static volatile int sink;

static void *alloc(size_t n)
{
    void *p = malloc(n);
    if (sftrace_alloc_event)
        sftrace_alloc_event(1, n, 16, p);
    sink++;
    return p;
}

static void release(void *p, size_t n)
{
    if (sftrace_alloc_event)
        sftrace_alloc_event(2, n, 16, p);
    free(p);
    sink++;
}

__attribute__((noinline)) int parse_num(const char *s)
{
    __asm__ volatile("");
    return atoi(s);
}

__attribute__((noinline)) int parse_args(int argc, char **argv)
{
    int t = 0;
    for (int i = 1; i < argc; i++)
        t += parse_num(argv[i]);
    __asm__ volatile("");
    return t;
}

__attribute__((noinline)) int parse_line(int i)
{
    __asm__ volatile("");
    return i * 7 % 13;
}

static char *config; /* 4096 bytes, still live at exit */

__attribute__((noinline)) void load_config(void)
{
    config = alloc(4096);
    void *tmp = alloc(1000);
    release(tmp, 1000);
    __asm__ volatile("");
}

__attribute__((noinline)) void *worker(void *arg)
{
    int s = 0;
    for (int i = 0; i < 100; i++)
        s += parse_line(i);
    __asm__ volatile("");
    return (void *)(intptr_t)(s + (int)(intptr_t)arg);
}

__attribute__((noinline)) void run_jobs(void)
{
    pthread_t t[2];
    void *buf = alloc(256);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    release(buf, 256);
    __asm__ volatile("");
}

int main(int argc, char **argv)
{
    int n = parse_args(argc, argv);
    load_config();
    run_jobs();
    pid_t c = fork();
    if (c == 0) {
        sink = parse_line(1);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("args %d, child %d\n", n, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
