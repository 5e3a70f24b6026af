/* killed_misc.c - endings the log must record exactly (t_killed.py):
 *   killed_misc seqthreads N  N threads one after another, each one call
 *   killed_misc execfail      exec of a missing file fails; the program goes on
 *   killed_misc vfork         a vfork child calls work() 10 times, then _exit(3)
 *   killed_misc vforkexec     a vfork child calls work() 10 times, then execs
 *                             this program in mode "after"
 *   killed_misc vforkraw      a vfork child calls work() 10 times, then ends by
 *                             a raw exit_group(5) the runtime does not see
 *   killed_misc after         calls work() 5 times, returns 4
 * Each prints "pid <pid>" (and "child <pid> status <n>" for vfork); main and
 * the parent call work() once before the vfork and twice after. */
#define _GNU_SOURCE
#include <pthread.h>
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

static void *one(void *arg)
{
    work((int)(long)arg);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "seqthreads";
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    if (!strcmp(mode, "seqthreads")) {
        int n = argc > 2 ? atoi(argv[2]) : 1000;
        for (int i = 0; i < n; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, one, (void *)(long)i) != 0)
                return 1;
            pthread_join(t, NULL);
        }
        return 0;
    }
    if (!strcmp(mode, "execfail")) {
        for (int i = 0; i < 10; i++)
            work(i);
        char *av[] = {"/nonexistent/program", NULL};
        execv(av[0], av);
        for (int i = 0; i < 10; i++)
            work(i);
        return 0;
    }
    if (!strcmp(mode, "after")) {
        for (int i = 0; i < 5; i++)
            work(i);
        return 4;
    }
    if (!strncmp(mode, "vfork", 5)) {
        work(0);
        pid_t c = vfork();
        if (c == 0) {
            for (int i = 0; i < 10; i++)
                work(i);
            if (!strcmp(mode, "vforkexec")) {
                char *av[] = {argv[0], "after", NULL};
                execv(argv[0], av);
                _exit(127);
            }
            if (!strcmp(mode, "vforkraw"))
                syscall(SYS_exit_group, 5);
            _exit(3);
        }
        int st;
        waitpid(c, &st, 0);
        work(1);
        work(2);
        printf("child %d status %d\n", (int)c, WEXITSTATUS(st));
        return 0;
    }
    return 2;
}
