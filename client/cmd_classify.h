/*
 * cmd_classify.h — `llmos --endpoint E classify` (cmd_classify.c).
 */
#ifndef LLMOS_CLIENT_CMD_CLASSIFY_H
#define LLMOS_CLIENT_CMD_CLASSIFY_H

#include <stdint.h>

/* argv starts after "classify".  Returns the exit code (0, 1 failed, 2 usage). */
int cmd_classify(const char *endpoint, uint32_t timeout_ms, int argc, char **argv);

#endif
