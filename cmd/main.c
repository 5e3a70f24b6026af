/*
 * main.c - `sftrace` entry point: dispatches to the subcommand in cmd/, and
 * answers --help, --version and `help CMD` itself.
 *
 * Every subcommand is one row of `commands` below (cmds.h says how to add
 * one). The general help lists the rows; `sftrace help CMD` runs
 * `sftrace CMD --help`, so a subcommand's help text lives once, in its own
 * file.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "logfmt.h"
#include "version.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"record", cmd_record, "run a program with the tracing runtime, write a log"},
    {"dump", cmd_dump, "print every event of a log, one a line"},
    {"convert", cmd_convert, "turn a log into a Perfetto or Chrome trace, or an SQLite database"},
    {"filter", cmd_filter, "choose the functions to trace"},
    {"info", cmd_info, "what a log holds: processes, threads, objects, clock, size"},
    {"report", cmd_report, "time per function: calls, total, self, min, max"},
    {"graph", cmd_graph, "the calling-context tree as indented text"},
    {"flame", cmd_flame, "a flame graph (interactive SVG) or folded stacks"},
    {"memory", cmd_memory, "heap use by call path: peak, leaks, stages, flame graphs"},
    {"ctl", cmd_ctl, "start or stop the recording of a running process"},
    {"attach", cmd_attach, "record a running process (record -p PID)"},
    {"snapshot", cmd_snapshot, "make a flight recorder (record --ring) write a snapshot"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: sftrace COMMAND [ARGS...]\n"
               "       sftrace help COMMAND | --help | --version\n"
               "\n"
               "Traces every function entry and exit of programs built with LLVM XRay\n"
               "instrumentation (clang -fxray-instrument -fxray-instruction-threshold=1,\n"
               "rustc -Zinstrument-xray=always).\n"
               "\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`sftrace help COMMAND` (or `sftrace COMMAND --help`) describes each;\n"
               "`man sftrace` describes them all and the environment variables.\n");
}

static void version(void)
{
    printf("sftrace %s\n"
           "log format %d.%d\n",
           SFTRACE_VERSION, SF_VERSION_MAJOR, SF_VERSION_MINOR);
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

static int find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(name, commands[i].name))
            return (int)i;
    return -1;
}

static int unknown(const char *name)
{
    fprintf(stderr, "sftrace: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *a = argv[1];
    if (!strcmp(a, "-h") || !strcmp(a, "--help") || (!strcmp(a, "help") && argc == 2)) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(a, "-V") || !strcmp(a, "--version") || !strcmp(a, "version")) {
        version();
        return 0;
    }
    if (!strcmp(a, "help")) {
        int k = find(argv[2]);
        if (k < 0)
            return unknown(argv[2]);
        char *help_argv[] = {argv[2], "--help", NULL};
        return commands[k].fn(2, help_argv);
    }
    int k = find(a);
    if (k < 0)
        return unknown(a);
    return commands[k].fn(argc - 1, argv + 1);
}
