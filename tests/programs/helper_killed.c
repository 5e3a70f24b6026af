/*
 * helper_killed.c - the program goes on as untraced when its helper dies.
 *
 * usage: helper_killed N   prints "pid P", waits for a line on stdin (the
 * test kills the helper meanwhile), then makes N calls of work(), enough to
 * fill and hand over many buffers, and prints "done N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile long sink;

__attribute__((noinline)) void work(long i)
{
    sink += i;
    __asm__ volatile("");
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 3;
    for (long i = 0; i < n; i++)
        work(i);
    printf("done %ld\n", n);
    return 0;
}
