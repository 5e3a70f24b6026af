/* flame.c - placeholder */
#include <stdio.h>
#include "cmds.h"
int cmd_flame(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "sftrace flame: not yet\n");
    return 1;
}
