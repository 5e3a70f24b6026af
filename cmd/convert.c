/*
 * convert.c - `sftrace convert` (not written yet).
 */
#include <stdio.h>

#include "cmds.h"

int cmd_convert(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "sftrace convert: not implemented yet\n");
    return 2;
}
