/*
 * cmds.h - the subcommands of the `sftrace` command, one file each in cmd/.
 *
 * Adding a subcommand NAME:
 *   1. cmd/NAME.c defines `int cmd_NAME(int argc, char **argv)`: argv[0] is
 *      "NAME", the return value is the exit status. It must answer -h and
 *      --help with its usage on stdout and exit status 0 (`sftrace help
 *      NAME` calls it with exactly {"NAME", "--help"}); usage errors go to
 *      stderr with status 2.
 *   2. Declare it below.
 *   3. Add one row {"NAME", cmd_NAME, "one-line summary"} to `commands` in
 *      cmd/main.c: the general help, `sftrace help NAME` and dispatch all
 *      come from that row. --version is answered there too.
 *   4. Describe it in the man page docs/sftrace.1 (a `.SS NAME` section
 *      under COMMANDS) and in README.md.
 * tests/t_cli.py checks steps 1, 3 and 4 for every row.
 */
#ifndef SFTRACE_CMDS_H
#define SFTRACE_CMDS_H

int cmd_record(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_filter(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_flame(int argc, char **argv);
int cmd_memory(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_attach(int argc, char **argv);
/* attach.c: the runtime into a running process, and out again */
int sf_attach_start(int pid, const char *solib, const char *log, const char *session);
int sf_attach_stop(int pid, const char *solib);
int sf_attach_present(int pid, const char *solib); /* 0: gone (exec) */

/* The path of the running sftrace binary's directory (for finding the runtime). */
const char *sftrace_self_dir(void);

#endif
