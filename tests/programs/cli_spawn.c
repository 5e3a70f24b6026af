/*
 * cli_spawn.c - processes and process images for record's summary.
 *
 * usage: cli_spawn             the parent
 *        cli_spawn child N     call child_work() N times and exit
 * The parent calls parent_work() PARENT_CALLS times, forks a child that
 * calls forked_work() FORKED_CALLS times (so its forked image records) and
 * then execs this program as `child 4`; waits for it; then starts `child 5`
 * with posix_spawn (a vfork-style clone and exec) and waits. Prints
 * "parent pid P fork F spawn S". So: 3 processes, 4 images.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PARENT_CALLS 3
#define FORKED_CALLS 2

extern char **environ;
static volatile long sink;

__attribute__((noinline)) static void parent_work(int i)
{
    sink += i;
}
__attribute__((noinline)) static void forked_work(int i)
{
    sink += 2 * i;
}
__attribute__((noinline)) static void child_work(int i)
{
    sink += 3 * i;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "child")) {
        for (int i = 0; i < atoi(argv[2]); i++)
            child_work(i);
        return 0;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 2;
    self[n] = 0;
    for (int i = 0; i < PARENT_CALLS; i++)
        parent_work(i);
    fflush(stdout);
    pid_t f = fork();
    if (f == 0) {
        for (int i = 0; i < FORKED_CALLS; i++)
            forked_work(i);
        execl(self, self, "child", "4", (char *)NULL);
        _exit(127);
    }
    int st;
    if (f < 0 || waitpid(f, &st, 0) != f || !WIFEXITED(st) || WEXITSTATUS(st))
        return 3;
    pid_t s;
    char *args[] = {self, "child", "5", NULL};
    if (posix_spawn(&s, self, NULL, NULL, args, environ) || waitpid(s, &st, 0) != s ||
        !WIFEXITED(st) || WEXITSTATUS(st))
        return 4;
    printf("parent pid %d fork %d spawn %d\n", (int)getpid(), (int)f, (int)s);
    return 0;
}
