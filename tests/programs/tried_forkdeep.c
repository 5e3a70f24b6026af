/* tried_forkdeep.c - redis's daemonize and BGSAVE for tests/t_tried.py: the
 * fork happens three instrumented frames deep (main -> start -> spawn ->
 * fork); the child returns through spawn and start into main and works
 * there (child_work 3 times), then exits; the parent waits for it and
 * calls parent_work once. Prints the child's status. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

volatile long sink;

__attribute__((noinline)) void child_work(int i)
{
    sink += i;
}
__attribute__((noinline)) void parent_work(void)
{
    sink++;
}

__attribute__((noinline)) pid_t spawn(void)
{
    pid_t p = fork();
    sink++;
    return p;
}

__attribute__((noinline)) pid_t start(void)
{
    pid_t p = spawn();
    sink++;
    return p;
}

int main(void)
{
    pid_t p = start();
    if (p == 0) {
        for (int i = 0; i < 3; i++)
            child_work(i);
        fflush(stdout);
        _exit(5);
    }
    int st = 0;
    waitpid(p, &st, 0);
    parent_work();
    printf("child %d\n", WEXITSTATUS(st));
    return 0;
}
