/* tried_pausedfork.c - PostgreSQL's postmaster under `record --paused`: the
 * parent forks a child per connection and the user starts the recording of
 * one child (a backend) with `sftrace ctl CHILD start`. The parent forks
 * one child, which answers stdin lines: "pid" (its pid), "work" (calls
 * work(), says "ok N"), "quit"; the parent waits for it. With an argument
 * the child first sets its title as a backend does ("postgres: user db
 * [local] idle"), over argv and the environment block, and takes SIGUSR1
 * for itself as every postgres process does ("usr1" raises one and says
 * how many its handler saw). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tried_title.h"

volatile long sink;
static volatile sig_atomic_t usr1s;

static void on_usr1(int sig)
{
    (void)sig;
    usr1s++;
}

__attribute__((noinline)) void work(int n)
{
    sink += n;
}

__attribute__((noinline)) static int serve(void)
{
    char line[64];
    int n = 0;
    while (fgets(line, sizeof line, stdin)) {
        if (!strcmp(line, "pid\n"))
            printf("pid %d\n", (int)getpid());
        else if (!strcmp(line, "work\n"))
            work(++n), printf("ok %d\n", n);
        else if (!strcmp(line, "usr1\n"))
            raise(SIGUSR1), printf("usr1 %d\n", (int)usr1s);
        else if (!strcmp(line, "quit\n"))
            break;
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    pid_t c = fork();
    if (c == 0) {
        if (argc > 1) {
            set_title(argc, argv, "tried_pausedfork: backend [local] idle");
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_usr1;
            sa.sa_flags = SA_RESTART; /* as postgres's pqsignal */
            sigaction(SIGUSR1, &sa, NULL);
        }
        return serve();
    }
    int st;
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
