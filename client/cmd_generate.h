/*
 * cmd_generate.h — the llmos CLI's remote model commands (cmd_generate.c).
 */
#ifndef LLMOS_CLIENT_CMD_GENERATE_H
#define LLMOS_CLIENT_CMD_GENERATE_H

#include <stdint.h>

/* `llmos [--endpoint E] generate ...` (cmd "generate") and `llmos
 * [--endpoint E] model stats|load|unload` (cmd "model"); argv starts after
 * cmd.  --help anywhere prints the usage on stdout (exit 0).  Returns the
 * exit code. */
int cmd_generate_main(const char *endpoint, uint32_t timeout_ms, const char *cmd, int argc, char **argv);

#endif
