/*
 * cmd_jobs.h — the `llmos` subcommands for jobs (client/cmd_jobs.c) and
 * batches (client/cmd_batch.c).  Each takes the arguments after its name
 * and returns the process exit status: 0 ok, 1 failed, 2 usage (batch: 130
 * when interrupted).
 */
#ifndef LLMOS_CLIENT_CMD_JOBS_H
#define LLMOS_CLIENT_CMD_JOBS_H

#include <stdint.h>
#include <stdio.h>

int cmd_submit(const char *endpoint, uint32_t timeout_ms, int argc, char **argv);
int cmd_wait(const char *endpoint, uint32_t timeout_ms, int argc, char **argv);
int cmd_job_status(const char *endpoint, uint32_t timeout_ms, int argc, char **argv);
int cmd_cancel(const char *endpoint, uint32_t timeout_ms, int argc, char **argv);
int cmd_jobs(const char *endpoint, uint32_t timeout_ms, int argc, char **argv);
/* `llmos batch run IN.jsonl -o OUT.jsonl [...]` (argv[0] is "run"). */
int cmd_batch(const char *endpoint, uint32_t timeout_ms, int argc, char **argv);

/* Prints the usage of job command cmd ("submit", "wait", "status" (of a
 * job), "cancel", "jobs") to f; `llmos CMD --help` prints it on stdout. */
void cmd_jobs_usage(const char *cmd, FILE *f);
/* The same for `llmos batch` (cmd_batch.c). */
void cmd_batch_usage(FILE *f);

/* True when argv (after `status`) names a job: `llmos status ID`. */
int cmd_status_names_job(int argc, char **argv);

#endif
