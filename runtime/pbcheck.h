/*
 * pbcheck.h — checks a packed protobuf message's strings before they are
 * used as C strings.
 *
 * protobuf-c accepts any bytes in a `string` field and unpacks them into a
 * NUL-terminated copy, so "a\0b" reads as "a" (a job id that collides with
 * job "a"), and invalid UTF-8 passes through to JSON output.  This walks
 * the wire bytes with the message's descriptor, into sub-messages and map
 * entries, and refuses both, naming the field ("job.tasks[2].text").
 * Fields the descriptor does not know are skipped.  Thread-safe.
 */
#ifndef LLMOS_RUNTIME_PBCHECK_H
#define LLMOS_RUNTIME_PBCHECK_H

#include "runtime/base/err.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* 0 when every string field of the message in data[0..len) is valid UTF-8
 * without NUL; LLMOS_EINVAL naming the field and the byte offset in the
 * string; LLMOS_EFORMAT when the bytes are not protobuf wire format. */
int rt_pb_check_strings(const ProtobufCMessageDescriptor *desc, const void *data, size_t len, llmos_error_t *err);

#endif
