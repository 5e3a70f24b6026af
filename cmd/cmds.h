/*
 * cmds.h - the subcommands of the `sftrace` command, one file each in cmd/.
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

/* The path of the running sftrace binary's directory (for finding the runtime). */
const char *sftrace_self_dir(void);

#endif
