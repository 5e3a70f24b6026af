/* killed_raw.c - raw system calls behind libc's back (t_killed.py):
 *   killed_raw fds DIR     close every descriptor with syscall(SYS_close_range),
 *                          open DIR/data under every number up to 1010, make
 *                          many calls, write one line to each descriptor
 *   killed_raw clonevm     a clone(CLONE_VM) child without its own TLS makes
 *                          100000 calls while the parent waits, then the
 *                          parent makes 10 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline)) void work(int i)
{
    sink += (unsigned long)i;
}

static int child_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        work(i);
    syscall(SYS_exit, 0);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "fds";
    for (int i = 0; i < 1000; i++)
        work(i);
    if (!strcmp(mode, "fds") && argc > 2) {
        char path[4096];
        snprintf(path, sizeof path, "%s/data", argv[2]);
        syscall(SYS_close_range, 3u, ~0u, 0u);
        int top = 2;
        while (top < 1010) {
            int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
            if (fd < 0)
                return 3;
            top = fd;
        }
        for (int i = 0; i < 300000; i++)
            work(i);
        for (int fd = 3; fd <= top; fd++)
            if (write(fd, "data\n", 5) != 5)
                return 4;
        return 0;
    }
    if (!strcmp(mode, "clonevm")) {
        size_t sz = 1 << 20;
        char *stack = malloc(sz);
        pid_t c = clone(child_main, stack + sz, CLONE_VM | SIGCHLD, NULL);
        if (c < 0)
            return 5;
        int st;
        while (waitpid(c, &st, 0) < 0)
            ;
        for (int i = 0; i < 10; i++)
            work(i);
        printf("done %d\n", WEXITSTATUS(st));
        return 0;
    }
    return 2;
}
