/* tried_title.h - what setproctitle does (redis, nginx, postgres after
 * fork), for the t_tried programs: the environment is copied to the heap
 * and the original argv + environ area is overwritten with a title, so
 * /proc/PID/cmdline shows the title and /proc/PID/environ no longer has the
 * variables the process started with. */
#ifndef TRIED_TITLE_H
#define TRIED_TITLE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

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

#endif
