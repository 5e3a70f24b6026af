/* spawnloop.c - start a program N times, one after the other, and print
 * the median and the spread of the wall time of one start-to-reaped.
 *
 *   spawnloop N fork|vfork PROG [ARG...]
 *
 * fork: fork, execve in the child, waitpid (a shell's way); vfork: vfork,
 * execve, waitpid (posix_spawn's, make's). Not instrumented: under
 * `sftrace record` it is one of the uninstrumented processes a build runs.
 * Prints "spawnloop MODE n=N median_us=M p10_us=A p90_us=B" on stdout. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: spawnloop N fork|vfork PROG [ARG...]\n");
        return 2;
    }
    int n = atoi(argv[1]), use_vfork = !strcmp(argv[2], "vfork");
    if (n < 1 || n > 1000000)
        return 2;
    double *d = malloc(sizeof *d * (size_t)n);
    if (!d)
        return 1;
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        pid_t p = use_vfork ? vfork() : fork();
        if (p < 0)
            return 1;
        if (p == 0) {
            execv(argv[3], argv + 3);
            _exit(127);
        }
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "spawnloop: %s failed\n", argv[3]);
            return 1;
        }
        d[i] = now_us() - t0;
    }
    qsort(d, (size_t)n, sizeof *d, cmp);
    printf("spawnloop %s n=%d median_us=%.1f p10_us=%.1f p90_us=%.1f\n", argv[2], n, d[n / 2],
           d[n / 10], d[n * 9 / 10]);
    return 0;
}
