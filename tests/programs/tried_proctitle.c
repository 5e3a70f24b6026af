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

extern char **environ;
static long calls;

__attribute__((noinline)) void work(void)
{
    calls++;
}

static void set_title(int argc, char **argv, const char *title)
{
    char *end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
    int n = 0;
    while (environ[n])
        n++;
    if (n)
        end = environ[n - 1] + strlen(environ[n - 1]) + 1;
    char **copy = malloc((n + 1) * sizeof *copy);
    for (int i = 0; i < n; i++)
        copy[i] = strdup(environ[i]);
    copy[n] = NULL;
    environ = copy;
    memset(argv[0], 0, (size_t)(end - argv[0]));
    snprintf(argv[0], (size_t)(end - argv[0]), "%s", title);
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
