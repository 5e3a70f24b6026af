/*
 * main.c - `sftrace` entry point: dispatches to the subcommand in cmd/.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"record", cmd_record, "run a program with the tracing runtime, write a log"},
    {"dump", cmd_dump, "print every event of a log, one a line"},
    {"convert", cmd_convert, "turn a log into a Perfetto or Chrome trace"},
    {"filter", cmd_filter, "choose the functions to trace"},
    {"info", cmd_info, "what a log holds: processes, threads, objects, clock, size"},
    {"report", cmd_report, "time per function: calls, total, self, min, max"},
    {"graph", cmd_graph, "the calling-context tree as indented text"},
    {"flame", cmd_flame, "a flame graph (interactive SVG) or folded stacks"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sftrace COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`sftrace COMMAND --help` describes each.\n");
}

const char *sftrace_self_dir(void)
{
    static char dir[PATH_MAX];
    if (!dir[0]) {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
        if (n <= 0)
            return ".";
        dir[n] = 0;
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
    }
    return dir;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sftrace: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
