/* startup_spawn.c - many short processes of every kind, for t_startup.py.
 *
 *   startup_spawn loop N TRUE   N rounds; each round starts, one after the
 *                               other and each reaped before the next:
 *       fork-work    a forked child that calls work() once and _exits 0
 *       fork-quiet   a forked child that calls nothing instrumented, exits 0
 *       fork-true    fork + execv(TRUE)
 *       vfork-true   vfork + execv(TRUE)
 *       spawn-true   posix_spawn(TRUE)
 *       leaf         fork + exec of this program in mode leaf
 *       chain        fork + exec of this program in mode chain, which execs
 *                    itself in mode leaf (two images, one pid)
 *     and prints "KIND PID" for each; the parent calls work() once per round
 *   startup_spawn leaf          work() once, exit 0
 *   startup_spawn chain         execs itself in mode leaf */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static volatile int sink;
static char self[4096];

__attribute__((noinline)) void work(int i)
{
    sink += i;
}

static void reap(const char *kind, pid_t p)
{
    int st;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: failed\n", kind);
        exit(1);
    }
    printf("%s %d\n", kind, (int)p);
    fflush(stdout);
}

static void exec_self(const char *mode)
{
    char *argv[] = {self, (char *)mode, NULL};
    execv(self, argv);
    _exit(127);
}

int main(int argc, char **argv)
{
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = 0;
    if (argc > 1 && !strcmp(argv[1], "leaf")) {
        work(1);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "chain"))
        exec_self("leaf");
    if (argc < 4 || strcmp(argv[1], "loop"))
        return 2;
    int rounds = atoi(argv[2]);
    char *tru = argv[3];
    char *targv[] = {tru, NULL};
    fflush(stdout);
    for (int r = 0; r < rounds; r++) {
        work(r);
        pid_t p = fork();
        if (p == 0) {
            work(r);
            _exit(0);
        }
        reap("fork-work", p);
        if ((p = fork()) == 0)
            _exit(0);
        reap("fork-quiet", p);
        if ((p = fork()) == 0) {
            execv(tru, targv);
            _exit(127);
        }
        reap("fork-true", p);
        if ((p = vfork()) == 0) {
            execv(tru, targv);
            _exit(127);
        }
        reap("vfork-true", p);
        if (posix_spawn(&p, tru, NULL, NULL, targv, environ) != 0)
            p = -1;
        reap("spawn-true", p);
        if ((p = fork()) == 0)
            exec_self("leaf");
        reap("leaf", p);
        if ((p = fork()) == 0)
            exec_self("chain");
        reap("chain", p);
    }
    return 0;
}
