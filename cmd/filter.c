/*
 * filter.c - `sftrace filter` (not written yet).
 */
#include <stdio.h>

#include "cmds.h"

int cmd_filter(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "sftrace filter: not implemented yet\n");
    return 2;
}
