/*
 * records.h — the job log's records as protobuf: a task's record, a task's
 * input built from earlier results, a job's status.
 *
 * The log (jobs/joblog.h) stores bytes; these functions read and write
 * them as llmos.TaskResult and llmos.JobStatus, so the scheduler actor only
 * moves messages.  Texts longer than a reply's budget travel in parts:
 * TaskResult.text_total and text_offset mark a part, JobRef.task/offset ask
 * for the next one.
 *
 * Thread-safety: that of the log (one thread at a time).
 */
#ifndef LLMOS_JOBS_RECORDS_H
#define LLMOS_JOBS_RECORDS_H

#include "jobs/joblog.h"
#include "jobs/sched.h"
#include "jobs/tasks.h"
#include "llmos/job.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes task i's record: its state, attempts, crash count and start time
 * from v, with the result (text, tokens, error ...) in r when given (r's
 * name, kind and those fields are set here).  Errors: the log's. */
int jobs_record_task(joblog_t *log, const char *id, uint32_t i, const Llmos__Task *t, const jobs_task_view_t *v,
                     Llmos__TaskResult *r, llmos_error_t *err);

/* Task i's input: the outputs of its input_from tasks, each ending in a
 * newline, then its text when with_text, in one allocation (*out, caller
 * frees; "" when there is nothing).  ETOOBIG naming the sizes when it
 * would pass `max` bytes (nothing is copied before the check), ENOMEM. */
int jobs_task_input(joblog_t *log, const char *id, const Llmos__Job *spec, uint32_t i, bool with_text, uint64_t max,
                    char **out, llmos_error_t *err);

/* Cuts r's text (unpacked, so writable unless empty) to at most *room bytes
 * from `offset` on, marking a part with text_total/text_offset, and takes
 * what it keeps from *room.  EINVAL for an offset past the end. */
int jobs_text_part(Llmos__TaskResult *r, uint64_t offset, uint64_t *room, llmos_error_t *err);

/* Packs job id's JobStatus from the log (*buf caller frees); the states of
 * a job still running in core (may be NULL) are its live ones.  results:
 * with task outputs, their texts within `budget` bytes (the rest as
 * parts); without: states only (list pages).  only_task: that task alone,
 * its text from `offset` on.  Errors: ENOTFOUND (no such job, or no such
 * task), EINVAL (offset), EFORMAT (a logged spec that does not decode),
 * ENOMEM. */
int jobs_status_pack(joblog_t *log, const jobs_sched_t *core, const char *id, bool results, const char *only_task,
                     uint64_t offset, uint64_t budget, uint8_t **buf, size_t *len, llmos_error_t *err);

/* Packs the JobEvent of task i's logged result (a stream that starts late
 * gets those of the tasks already done), its text within budget.  *buf
 * caller frees.  ENOTFOUND when the task has no record. */
int jobs_event_pack(joblog_t *log, const char *id, uint32_t i, uint64_t budget, uint8_t **buf, size_t *len,
                    llmos_error_t *err);

/* Builds task i's ask: its input from the log (see jobs_task_input, capped
 * at input_max) packed into its request (jobs_task_request); request_id
 * "id/task".  *buf caller frees.  Errors: those two's. */
int jobs_task_ask(joblog_t *log, const char *id, const Llmos__Job *spec, uint32_t i, uint64_t input_max,
                  uint32_t *type, uint8_t **buf, size_t *len, llmos_error_t *err);

/* Packs a JobList page (the jobs' statuses without results, live states
 * from core for jobs in memory) of tenant/state (empty/0 = all) after id
 * `after`, at most `limit` jobs, scanning at most `scan_max` records.
 * *buf caller frees.  Errors: the log's, ENOMEM. */
int jobs_list_pack(joblog_t *log, const jobs_sched_t *core, const char *tenant, uint32_t state, const char *after,
                   uint32_t limit, uint32_t scan_max, uint8_t **buf, size_t *len, llmos_error_t *err);

/* Start-up: hands every unfinished job of the log to the core, in
 * submission order (jobs_sched_restore: done tasks keep their results,
 * tasks found running count a crash), and sets its next sequence number.
 * A job whose spec does not decode is marked failed in the log.  The
 * caller takes the core's actions and commits before anything runs.
 * Errors: the log's, the core's, ENOMEM. */
int jobs_recover(joblog_t *log, jobs_sched_t *core, uint64_t now, llmos_error_t *err);

#endif
