/* graph.c - placeholder */
#include <stdio.h>
#include "cmds.h"
int cmd_graph(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "sftrace graph: not yet\n");
    return 1;
}
