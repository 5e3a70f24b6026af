/* killed_invisible.c - things a program can see that tracing must not
 * change (t_killed.py):
 *   killed_invisible tasks        print the number of /proc/self/task entries
 *   killed_invisible unshare      unshare(CLONE_NEWUSER); print "ok" or errno
 *   killed_invisible pthread_exit main calls pthread_exit while a worker runs;
 *                                 the worker exits the process with status 7
 *   killed_invisible waitany      fork a child; waitpid(-1) must see only it
 *                                 and SIGCHLD must come once */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long sink;
static volatile sig_atomic_t nchld;

__attribute__((noinline)) void work(int i)
{
    sink += (unsigned long)i;
}

static int count_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

static void *late_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        work(i);
    usleep(100 * 1000);
    for (int i = 0; i < 1000; i++)
        work(i);
    exit(7);
}

static void on_chld(int sig)
{
    (void)sig;
    nchld++;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "tasks";
    for (int i = 0; i < 100; i++)
        work(i);
    if (!strcmp(mode, "tasks")) {
        printf("tasks %d\n", count_tasks());
        return 0;
    }
    if (!strcmp(mode, "unshare")) {
        if (unshare(CLONE_NEWUSER) == 0)
            printf("unshare ok\n");
        else
            printf("unshare failed %s\n", strerror(errno));
        return 0;
    }
    if (!strcmp(mode, "pthread_exit")) {
        pthread_t t;
        pthread_create(&t, NULL, late_worker, NULL);
        pthread_exit(NULL);
    }
    if (!strcmp(mode, "waitany")) {
        signal(SIGCHLD, on_chld);
        pid_t c = fork();
        if (c == 0) {
            for (int i = 0; i < 100; i++)
                work(i);
            _exit(5);
        }
        int st;
        pid_t w;
        while ((w = waitpid(-1, &st, 0)) < 0 && errno == EINTR)
            ;
        pid_t again = waitpid(-1, &st, WNOHANG);
        printf("waited %s status %d more %d sigchld %d\n", w == c ? "child" : "other",
               WEXITSTATUS(st), (int)again, (int)nchld);
        return 0;
    }
    return 2;
}
