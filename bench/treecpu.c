/* treecpu.c - run a command and wait for every process it leaves behind, so
 * the caller's wait4() counts the CPU time of the whole tree.
 *
 *   treecpu CMD [ARG...]
 *
 * sftrace's helper process double-forks away from the traced program, so a
 * plain wait4() on `sftrace record` never sees its CPU time and the
 * benchmark would under-report sftrace's cost. This wrapper makes itself a
 * child subreaper (prctl PR_SET_CHILD_SUBREAPER): orphaned descendants are
 * re-parented to it, it reaps them all, and their rusage is added to its
 * own children's, which is what its parent's wait4() reports. Exits with
 * the command's status (128 + signal if it was killed). */
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: treecpu CMD [ARG...]\n");
        return 2;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("treecpu: prctl(PR_SET_CHILD_SUBREAPER)");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("treecpu: fork");
        return 2;
    }
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        fprintf(stderr, "treecpu: cannot run %s: ", argv[1]);
        perror(NULL);
        _exit(127);
    }
    int rc = 127, st;
    for (;;) {
        pid_t p = wait(&st);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: the whole tree is gone */
        }
        if (p == pid)
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return rc;
}
