/* tried_proctitle.c - redis's (and postgres's, nginx's) setproctitle for
 * tests/t_tried.py: the environment is copied to the heap and the original
 * argv + environ area is overwritten with a title, so /proc/PID/cmdline
 * shows the title and /proc/PID/environ no longer has the variables the
 * process started with (getenv still finds them, in the copy).
 * Then, line by line on stdin: "pid" -> "pid N", "work" -> one call of
 * work() -> "ok N" (calls so far), "quit" -> exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tried_title.h"

static long calls;

__attribute__((noinline)) void work(void)
{
    calls++;
}

int main(int argc, char **argv)
{
    set_title(argc, argv, "tried_proctitle: serving 127.0.0.1:7379");
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "pid", 3))
            printf("pid %d\n", (int)getpid());
        else if (!strncmp(line, "work", 4)) {
            work();
            printf("ok %ld\n", calls);
        } else if (!strncmp(line, "quit", 4))
            break;
        fflush(stdout);
    }
    return 0;
}
