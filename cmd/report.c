/* report.c - placeholder */
#include <stdio.h>
#include "cmds.h"
int cmd_report(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "sftrace report: not yet\n");
    return 1;
}
