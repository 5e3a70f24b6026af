/*
 * safe_shellout.c - children that run no instrumented code before they exit
 * or exec (tests/t_safe.py): system("true"), popen("echo"), fork + _exit,
 * fork + exit, fork + execl("/bin/true"), between instrumented calls of
 * step(). None of these children may write a chunk of its pid before a
 * PROCESS chunk. Prints "pid P", one "child K PID" line per child and
 * "steps N" (N calls of step()).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile long sink;
static int steps;

__attribute__((noinline)) void step(void)
{
    sink++;
    steps++;
}

static void reap(const char *kind, pid_t pid)
{
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("%s failed\n", kind);
        exit(1);
    }
    printf("child %s %d\n", kind, (int)pid);
}

int main(void)
{
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    step();
    if (system("true") != 0)
        return 1;
    step();
    FILE *f = popen("echo popen-ok", "r");
    char line[64] = "";
    if (!f || !fgets(line, sizeof line, f) || pclose(f) != 0)
        return 1;
    step();
    fflush(stdout);
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    reap("fork_exit_", p);
    step();
    fflush(stdout);
    p = fork();
    if (p == 0)
        exit(0);
    reap("fork_exit", p);
    step();
    fflush(stdout);
    p = fork();
    if (p == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    reap("fork_exec", p);
    step();
    printf("%s", line);
    printf("steps %d\n", steps);
    return 0;
}
