/*
 * tasks.h — a task as messages: the request its target is asked, and the
 * TaskResult read from the answer.
 *
 *   echo        JOB_MSG_ECHO       EchoTask{input}            -> EchoTask
 *   generate    MODEL_MSG_GENERATE GenerateRequest{prompt = text,
 *                                  context = input_from outputs} -> GenerateResult
 *   classify    MODEL_MSG_SCORE    ScoreRequest{input, labels} -> ScoreResult
 *   embed       MODEL_MSG_EMBED    EmbedRequest{input}         -> EmbedResult
 *   graph_query GRAPH_MSG_QUERY    GraphQueryRequest{input}    -> GraphResult
 *   link        GRAPH_MSG_LINK     GraphLinkRequest{input}     -> GraphResult (fact sentences kept)
 *
 * A generation gets its inputs as droppable context lines in front of the
 * prompt (facts that do not fit the model's context are dropped, see
 * model.proto); every other kind gets them joined in front of its text.
 * Pure functions; thread-safe.
 */
#ifndef LLMOS_JOBS_TASKS_H
#define LLMOS_JOBS_TASKS_H

#include "llmos/job.pb-c.h"
#include "runtime/base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when the task's input_from outputs go in a separate context field
 * (generate), false when they are joined to its text. */
bool jobs_task_input_is_context(const Llmos__Task *t);

/* Packs task t's request: *type the message type, *buf (caller frees) and
 * *len the payload.  input: the outputs of its input_from tasks (context
 * for a generation) or those joined with its text (the others), see
 * jobs_task_input.  request_id names a generation for cancels ("job/task").
 * LLMOS_EUNSUPPORTED for an unknown kind, ENOMEM. */
int jobs_task_request(const Llmos__Task *t, const char *input, const char *request_id, uint32_t *type, uint8_t **buf,
                      size_t *len, llmos_error_t *err);

/* Fills r from the answer to a task of `kind`; the unpacked answer, which
 * r points into, is kept in *hold (caller frees it with
 * protobuf_c_message_free_unpacked after r's last use).  EFORMAT when the
 * payload does not decode as the kind's result, EUNSUPPORTED. */
int jobs_task_result(uint32_t kind, const void *data, size_t len, Llmos__TaskResult *r, ProtobufCMessage **hold);

#endif
