/*
 * cli.h — what every `llmos` command shares on its command line (llmos.c,
 * cmd_*.c): recognising a request for help.  Not part of the library.
 */
#ifndef LLMOS_CLIENT_CLI_H
#define LLMOS_CLIENT_CLI_H

#include <string.h>

/* 1 when the arguments after a command ask for its usage: "--help" or "-h"
 * anywhere (commands with subcommands also take "help" as one).  Every
 * command then prints its usage on stdout and exits 0 without talking to a
 * node. */
static inline int cli_help_asked(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

#endif
